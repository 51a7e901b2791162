//! The two CNN architectures, `small_cnn` and `medium_cnn`, for 1x28x28 inputs, in candle-nn style.
//!
//! Models are built from a [`VarBuilder`](candle_nn::VarBuilder) with layers named
//! `conv1`, `conv2`, `conv3`, `fc1`, `fc2`, and implement [`candle_nn::ModuleT`] (the train flag
//! switches dropout on). [`Cnn::first_layer_maps`] exposes the first-layer activations for
//! plotting, and [`Arch::layers`] describes each layer's output shape and parameter count.
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use candle_nn::{ModuleT, VarBuilder, VarMap};
//! use cnn_models::{Arch, Cnn, ModelConfig};
//!
//! let varmap = VarMap::new();
//! let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
//! let model = Cnn::new(&ModelConfig::new(Arch::SmallCnn), vb)?;
//! let logits = model.forward_t(&Tensor::zeros((2, 1, 28, 28), DType::F32, &Device::Cpu)?, false)?;
//! assert_eq!(logits.dims(), &[2, 10]);
//! # Ok::<(), cnn_models::Error>(())
//! ```
#![deny(missing_docs)]

mod arch;
mod cnn;
mod dropout;
pub mod fast;

pub use arch::{Arch, LayerInfo};
pub use cnn::{Cnn, ModelConfig, OpsPath};
pub use dropout::Dropout;

/// Errors from building or running a model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor operation failed (shape mismatch, device error, ...).
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// The input is not `N x 1 x 28 x 28`.
    #[error("expected input of shape [N, 1, 28, 28], got {0:?}")]
    BadInput(Vec<usize>),
    /// An architecture name that is neither `small_cnn` nor `medium_cnn`.
    #[error("unknown model `{0}` (expected small_cnn or medium_cnn)")]
    UnknownArch(String),
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, Error>;
