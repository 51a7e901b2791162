//! The error type of the training crate.

use std::path::PathBuf;

/// Errors from training, evaluation and checkpoint files.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(candle_core::Error),
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
    /// A spec file's `[train]` table cannot be read as recipe changes.
    #[error("[train]: {reason}")]
    TrainTable {
        /// What is wrong (an unknown key, a value of the wrong type).
        reason: String,
    },
    /// The loss stopped being finite.
    #[error(
        "training diverged: the loss became {loss} at epoch {epoch}, batch {batch} (learning rate {lr:.4})"
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
        /// A suggested lower peak learning rate (a quarter of the run's).
        suggest: f64,
    },
    /// Writing an artifact failed.
    #[error("cannot write {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A checkpoint could not be read.
    #[error("cannot read checkpoint {path}")]
    ReadCheckpoint {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A training batch's activations would take more than [`crate::ACTIVATION_BUDGET`].
    #[error(
        "a training batch of {batch} images needs about {:.1} GB for its activations ({:.1} MB an image), more than the {} GB allowed: lower batch_size, or use narrower layers or smaller images",
        *bytes as f64 / 1e9,
        *per_image as f64 / 1e6,
        crate::ACTIVATION_BUDGET >> 30
    )]
    ActivationMemory {
        /// Images per batch.
        batch: usize,
        /// Bytes the batch would need.
        bytes: u64,
        /// Bytes per image.
        per_image: u64,
    },
    /// The training data holds a single class.
    #[error("the data has a single class; a classifier needs at least two")]
    OneClass,
    /// A run folder's path names a file.
    #[error("{path}: is a file, not a folder")]
    RunFolderIsFile {
        /// The path.
        path: PathBuf,
    },
    /// A fresh run was asked for in a folder that holds a run's files.
    #[error(
        "{path}: already holds {file}, which a run writes; continue that run, or replace its files"
    )]
    RunExists {
        /// The folder.
        path: PathBuf,
        /// The first run file found in it.
        file: &'static str,
    },
    /// Another process holds the folder's lock.
    #[error("{path}: another run is using this folder (it holds run.lock)")]
    RunBusy {
        /// The folder.
        path: PathBuf,
    },
    /// A checkpoint path names a folder.
    #[error("{path} is not a usable checkpoint: it is a folder, not a file")]
    CheckpointIsFolder {
        /// The path.
        path: PathBuf,
    },
    /// A checkpoint path names a FIFO, a device or a socket.
    #[error("{path} is not a usable checkpoint: it is not a regular file")]
    CheckpointNotAFile {
        /// The path.
        path: PathBuf,
    },
    /// A checkpoint file is larger than any of ours.
    #[error("{path} is not a usable checkpoint: {len} bytes is too large for a checkpoint")]
    CheckpointTooLarge {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        len: u64,
    },
    /// A file is not safetensors.
    #[error("{path} is not a usable checkpoint: not a safetensors file")]
    NotSafetensors {
        /// The file.
        path: PathBuf,
        /// What the safetensors reader said.
        #[source]
        source: safetensors::SafeTensorError,
    },
    /// A safetensors file without our metadata.
    #[error(
        "{path} is not a usable checkpoint: no cnn-mnist metadata (was it written by cnn-train?)"
    )]
    NotOurs {
        /// The file.
        path: PathBuf,
    },
    /// A metadata entry is not the JSON it should be.
    #[error("{path} is not a usable checkpoint: malformed {key}")]
    MalformedMetadata {
        /// The file.
        path: PathBuf,
        /// The metadata entry.
        key: &'static str,
        /// What the JSON reader said.
        #[source]
        source: serde_json::Error,
    },
    /// A metadata entry that must be there is missing or not a number.
    #[error("{path} is not a usable checkpoint: metadata has no valid {key}{}", if *full { " (not a full checkpoint?)" } else { "" })]
    MissingMetadata {
        /// The file.
        path: PathBuf,
        /// The metadata entry.
        key: &'static str,
        /// Whether only full checkpoints (for resuming) carry it.
        full: bool,
    },
    /// A checkpoint from a newer build.
    #[error(
        "{path} is not a usable checkpoint: format version {found} is newer than this build understands ({supported})"
    )]
    NewerVersion {
        /// The file.
        path: PathBuf,
        /// Version in the file.
        found: u32,
        /// Newest version this build reads.
        supported: u32,
    },
    /// A checkpoint whose network cannot be built: an unknown name without a spec, or an
    /// impossible spec.
    #[error("{path} is not a usable checkpoint: its network cannot be built")]
    BadNetwork {
        /// The file.
        path: PathBuf,
        /// Why the network cannot be built.
        #[source]
        source: cnn_models::Error,
    },
    /// A tensor of another type than `f32`.
    #[error("{path} is not a usable checkpoint: tensor {name} is {dtype}, expected F32")]
    NotF32 {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// Its type.
        dtype: String,
    },
    /// A tensor the network needs is missing.
    #[error("{path} is not a usable checkpoint: tensor {name} is missing")]
    MissingTensor {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
    },
    /// A rename table that cannot be read.
    #[error("the rename table is not usable: {reason}")]
    BadRenames {
        /// What is wrong.
        reason: String,
    },
    /// Two tensors of a state dict are renamed to one name.
    #[error("{path}: tensors {first} and {second} would both become {name}; check the renames")]
    RenamedTwice {
        /// The file.
        path: PathBuf,
        /// The first tensor, by its name in the file.
        first: String,
        /// The second.
        second: String,
        /// The name both map to.
        name: String,
    },
    /// A plain weights file holds a tensor the network does not have.
    #[error(
        "{path} does not fit the network: it holds tensor {name}, which the network has no place for"
    )]
    UnexpectedTensor {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
    },
    /// A tensor holds NaN or an infinity.
    #[error(
        "{path} is not a usable checkpoint: tensor {name} holds a non-finite value (at index {index})"
    )]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// Index of the first non-finite value.
        index: usize,
    },
    /// A tensor has another shape than the network needs.
    #[error(
        "{path} is not a usable checkpoint: tensor {name} has shape {found:?}, the model expects {expected:?}"
    )]
    TensorShape {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// Its shape.
        found: Vec<usize>,
        /// The shape needed.
        expected: Vec<usize>,
    },
    /// The run was trained on another number of images.
    #[error(
        "{path} is not a usable checkpoint: the run was trained on {saved} images, not {given}"
    )]
    TrainSizeChanged {
        /// The file.
        path: PathBuf,
        /// Images the run was trained on.
        saved: usize,
        /// Images given now.
        given: usize,
    },
    /// A checkpoint records a recipe that is not valid (edited, or from a broken writer).
    #[error("{path} is not a usable checkpoint: the recipe it records is invalid")]
    CheckpointConfig {
        /// The file.
        path: PathBuf,
        /// What is wrong with the recipe.
        #[source]
        source: Box<Error>,
    },
    /// The training images differ from those the run was trained on, though as many.
    #[error(
        "the training images are not those this run was trained on (fingerprint {recorded}, now {found}); resume with the same data"
    )]
    DataChanged {
        /// Fingerprint recorded by the run.
        recorded: String,
        /// Fingerprint of the images given now.
        found: String,
    },
    /// The step count does not match the epochs recorded.
    #[error("{path} is not a usable checkpoint: step count does not match the epochs done")]
    StepMismatch {
        /// The file.
        path: PathBuf,
    },
    /// A history recorded as text (format 1 and 2) that cannot be read.
    #[error("{path} is not a usable checkpoint: malformed history")]
    MalformedHistory {
        /// The file.
        path: PathBuf,
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
    /// An optimizer buffer (momentum, Adam's moments) is missing from a full checkpoint.
    #[error(
        "{path} is not a usable checkpoint: {what} of {name} is missing (not a full checkpoint?)"
    )]
    MissingVelocity {
        /// The file.
        path: PathBuf,
        /// Which buffer.
        what: OptimBuffer,
        /// The variable.
        name: String,
    },
    /// An optimizer buffer does not have its variable's shape.
    #[error(
        "{path} is not a usable checkpoint: {what} of {name} has shape {found:?}, the model expects {expected:?}"
    )]
    VelocityShape {
        /// The file.
        path: PathBuf,
        /// Which buffer.
        what: OptimBuffer,
        /// The variable.
        name: String,
        /// Its shape.
        found: Vec<usize>,
        /// The shape needed.
        expected: Vec<usize>,
    },
    /// The variable map's lock was poisoned by a panic elsewhere.
    #[error("the variable map's lock was poisoned by a panic in another thread")]
    LockPoisoned,
    /// Serialising the run state failed.
    #[error("cannot encode the run state")]
    EncodeState(#[source] serde_json::Error),
    /// Serialising a checkpoint failed.
    #[error("cannot encode checkpoint")]
    Encode(#[source] safetensors::SafeTensorError),
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
    /// The model has fewer outputs than the data has classes.
    #[error("the model has {outputs} outputs but the data has {classes} classes")]
    TooFewOutputs {
        /// Outputs of the model.
        outputs: usize,
        /// Classes of the data.
        classes: usize,
    },
}

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        Error::Candle(cnn_models::one_line(e))
    }
}

/// An optimizer's buffer in a full checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptimBuffer {
    /// SGD's momentum buffer, or Adam's first moment.
    Momentum,
    /// Adam's second moment.
    SecondMoment,
}

impl std::fmt::Display for OptimBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OptimBuffer::Momentum => "momentum buffer",
            OptimBuffer::SecondMoment => "second moment",
        })
    }
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, Error>;
