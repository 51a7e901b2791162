//! The error type of the training crate.

use std::path::PathBuf;

/// Errors from training, evaluation and checkpoint files.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// Building a split (for prediction) failed.
    #[error(transparent)]
    Data(#[from] cnn_data::Error),
    /// Building or running the model failed.
    #[error(transparent)]
    Model(#[from] cnn_models::Error),
    /// A configuration value is out of range; `field` is its name in [`crate::TrainConfig`].
    #[error("invalid {field} {value}: {reason}")]
    InvalidConfig {
        /// Name of the setting.
        field: &'static str,
        /// The value given.
        value: String,
        /// What is allowed.
        reason: &'static str,
    },
    /// The loss stopped being finite.
    #[error(
        "training diverged: the loss became {loss} at epoch {epoch}, batch {batch} (learning rate {lr:.4}); \
         try a lower --lr (e.g. --lr {suggest}); the last good checkpoint is kept"
    )]
    Diverged {
        /// 1-based epoch.
        epoch: usize,
        /// 1-based batch within the epoch.
        batch: usize,
        /// The loss value (NaN or infinite).
        loss: f32,
        /// Learning rate at that step.
        lr: f64,
        /// A suggested lower peak learning rate.
        suggest: f64,
    },
    /// Writing an artifact failed.
    #[error("cannot write {path}: {error}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The underlying error (shown in the message, so not chained as a source).
        error: std::io::Error,
    },
    /// A checkpoint could not be read.
    #[error("cannot read checkpoint {path}: {error}")]
    ReadCheckpoint {
        /// The file.
        path: PathBuf,
        /// The underlying error (shown in the message, so not chained as a source).
        error: std::io::Error,
    },
    /// A checkpoint is malformed.
    #[error("{path} is not a usable checkpoint: {reason}")]
    BadCheckpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A checkpoint holds another network than the one asked for.
    #[error("{path} holds a {found} model, not {expected}")]
    WrongModel {
        /// The file.
        path: PathBuf,
        /// Network in the file.
        found: String,
        /// Network asked for.
        expected: String,
    },
    /// A checkpoint of a model defined in code has no spec to rebuild it from.
    #[error("{path} holds no network spec (it was written for a model defined in code)")]
    NoSpec {
        /// The file.
        path: PathBuf,
    },
    /// Serialising a checkpoint failed.
    #[error("cannot encode checkpoint: {0}")]
    Encode(String),
    /// The training or test split is empty.
    #[error("the {0} split is empty")]
    EmptySplit(&'static str),
    /// The training split does not have the size the run was set up for.
    #[error("the training split has {found} items, the run was set up for {expected}")]
    TrainSize {
        /// Items the run expects.
        expected: usize,
        /// Items given.
        found: usize,
    },
    /// The data's image shape or class count is not the model's.
    #[error(
        "the {split} images are {data_input:?} with {data_classes} classes, but model {model} takes {model_input:?} with {model_classes} classes"
    )]
    DataMismatch {
        /// `training` or `test`.
        split: &'static str,
        /// Network name.
        model: String,
        /// The model's input shape.
        model_input: [usize; 3],
        /// The model's classes.
        model_classes: usize,
        /// The data's image shape.
        data_input: [usize; 3],
        /// The data's classes.
        data_classes: usize,
    },
    /// An image given for prediction does not have the model's size.
    #[error("image {index} has {len} pixels, not {rows}x{cols}")]
    ImageSize {
        /// Index of the image.
        index: usize,
        /// Pixels it has.
        len: usize,
        /// Rows expected.
        rows: usize,
        /// Columns expected.
        cols: usize,
    },
    /// The model has fewer outputs than the data has classes.
    #[error("the model has {outputs} outputs but the data has {classes} classes")]
    TooFewOutputs {
        /// Outputs of the model.
        outputs: usize,
        /// Classes of the data.
        classes: usize,
    },
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, Error>;
