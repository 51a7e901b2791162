//! Training and evaluation of networks from `cnn-models`: seeded SGD and Adam, metrics,
//! one-file networks and run folders.
//!
//! The short path: describe a network ([`NetSpec`]), put your images in a [`Dataset`],
//! train with a [`Trainer`], then save, load and ask the [`Cnn`] about images
//! ([`CnnFile`], [`Cnn::predict`]). `use cnn_training::prelude::*` brings all of it, and
//! candle's [`Device`] and [`Tensor`] are re-exported so that versions cannot drift.
//!
//! ```
//! use cnn_training::prelude::*;
//! // 40 grayscale 8x8 images of two classes (bright top half or bright bottom half).
//! let images: Vec<u8> = (0..40).flat_map(|i| (0..64).map(move |p| if (p < 32) == (i % 2 == 0) { 200 } else { 0 })).collect();
//! let labels: Vec<u8> = (0..40).map(|i| (i % 2) as u8).collect();
//! let split = Split::new(images, labels, 8, 8, 2)?;
//! let data = Dataset::new(split.clone(), split, ["top", "bottom"])?;
//! let spec = NetSpec::builder("halves").conv(4).maxpool().linear(8).build()?;
//! let cfg = TrainConfig { epochs: 4, ..TrainConfig::default() };
//! let mut trainer = Trainer::new(cfg, &spec, &Device::Cpu, &data.train)?;
//! let history = trainer.fit(&data)?;
//! assert_eq!(history.len(), 4);
//! let path = std::env::temp_dir().join(format!("halves-{}.safetensors", std::process::id()));
//! trainer.model().save(&path)?;
//! let model = Cnn::load(&path, &Device::Cpu)?;
//! let p = model.predict(data.test.image(1))?;
//! assert_eq!((p.name.as_str(), p.top_k(2).len()), ("bottom", 2));
//! # std::fs::remove_file(&path)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The [`Trainer`] owns the variables, the optimizer, the random generator and the history,
//! for a [`Cnn`] built from a [`NetSpec`] or for any [`Model`] of your own. [`Trainer::fit`]
//! trains to the configured epochs; [`run`] does the same with a stop flag and progress
//! events and, when given an output folder, writes the run's artifacts after every epoch:
//! `history.csv`, `final_state.safetensors` (weights, recipe and spec) and
//! `checkpoint.safetensors` (everything needed to continue). This crate prints nothing and
//! writes nothing unless asked.
//!
//! Build with optimisations: a debug build of a project using this crate trains about 80
//! times slower unless its `Cargo.toml` has `[profile.dev.package."*"] opt-level = 3`
//! ([`is_optimized`] tells).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

// The crates this one builds on, and their everyday types, so that a project depending on
// `cnn-training` alone names the very versions it was built with.
pub use cnn_data::{self, DataSource, Dataset, DatasetKind, Split};
pub use cnn_models::{
    self, Cnn, DType, Device, ModelConfig, NetSpec, Prediction, Tensor, VarBuilder, VarMap,
    candle_core, candle_nn, is_optimized,
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
mod import;
mod model;
mod model_file;
mod optim;
mod recipe;
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
pub use import::{Imported, Renames, import_state_dict};
pub use model::Model;
pub use model_file::CnnFile;
pub use optim::{ADAM_BETAS, ADAM_EPS, Optimizer, OptimizerKind, Slot};
pub use recipe::{AugmentPreset, RecipeChanges};
pub use resume::{CHECKPOINT_FILE, FINAL_STATE_FILE, HISTORY_FILE};
pub use rng::Rng;
pub use run::{RunOutcome, run};
pub use run_folder::{Claim, LOCK_FILE, Loaded, RUN_FILES, RunFolder, Source};
pub use schedule::lr_at;
pub use state::RunState;
pub use trainer::{BatchProgress, Event, Trainer, check_fit};
