//! Training and evaluation of networks from `cnn-models`: seeded SGD, metrics and artifacts.
//!
//! The [`Trainer`] owns the variables, the optimizer, the random generator and the history,
//! for a [`Cnn`](cnn_models::Cnn) built from a [`NetSpec`](cnn_models::NetSpec) or for any
//! [`Model`] of your own. [`run`] drives it epoch by epoch and, when given an output folder,
//! writes the run's artifacts after every epoch: `history.csv`, `final_state.safetensors`
//! (weights, recipe and spec) and `checkpoint.safetensors` (everything needed to continue).
//! Progress is reported through a callback; this crate prints nothing and writes nothing
//! unless asked.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

// The crates this one builds on, and their everyday types, so that a project depending on
// `cnn-training` alone names the very versions it was built with.
pub use cnn_data::{self, DataSource, Dataset, DatasetKind, Split};
pub use cnn_models::{
    self, Cnn, DType, Device, ModelConfig, NetSpec, Prediction, Tensor, VarBuilder, VarMap,
    candle_core, candle_nn,
};

/// The short path in one `use`: a spec, data, a trainer, a network that saves, loads and
/// predicts, and candle's device and tensor types.
pub mod prelude {
    pub use crate::{
        Cnn, CnnFile, DType, Dataset, Device, ModelConfig, NetSpec, Prediction, Split, Tensor,
        TrainConfig, Trainer, VarBuilder, VarMap,
    };
}

mod augment;
mod batch;
pub mod checkpoint;
mod config;
mod error;
mod eval;
mod history;
mod model;
mod model_file;
mod optim;
mod resume;
pub mod rng;
mod run;
mod run_folder;
mod schedule;
mod state;
mod trainer;

pub use augment::{Affine, affine_batch};
pub use batch::{batch_tensor, label_tensor};
pub use checkpoint::load_model;
pub use config::{
    ADAM_LR, DIGITS_CLEAN_EPOCHS, DIGITS_LABEL_SMOOTHING, DIGITS_LR, FASHION_MEDIUM_LR,
    TrainConfig, display_number,
};
pub use error::{Error, OptimBuffer, Result};
pub use eval::{
    ACTIVATION_BUDGET, EVAL_BATCH, EVAL_LAYER_BYTES, Evaluation, eval_batch, evaluate, evaluate_in,
    predict_proba,
};
pub use history::{EpochMetrics, HISTORY_HEADER, history_csv, parse_history_csv};
pub use model::Model;
pub use model_file::CnnFile;
pub use optim::{ADAM_BETAS, ADAM_EPS, Optimizer, OptimizerKind, Slot};
pub use resume::{CHECKPOINT_FILE, FINAL_STATE_FILE, HISTORY_FILE};
pub use rng::Rng;
pub use run::{RunOutcome, run};
pub use run_folder::{Claim, LOCK_FILE, Loaded, RUN_FILES, RunFolder, Source};
pub use schedule::lr_at;
pub use state::RunState;
pub use trainer::{BatchProgress, Event, Trainer, check_fit};
