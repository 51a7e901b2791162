//! Small CNNs described as data ([`NetSpec`]), built in candle-nn style, with a fast CPU path.
//!
//! A [`NetSpec`] lists conv (with stride, padding, batch norm and activation), max- and
//! average-pool, global average pool, linear and dropout layers (from Rust with
//! [`NetSpec::builder`], or from a TOML file with [`NetSpec::from_toml`]); [`Cnn::new`] builds
//! it from a [`VarBuilder`] with PyTorch-style parameter names
//! (`conv1.weight`, ..., `bn1.running_mean`, ..., `fc1.bias`), and it implements
//! [`candle_nn::ModuleT`] (the train flag switches dropout on and batch norms to the batch's
//! statistics). The original project's two networks are the presets [`Arch::SmallCnn`]
//! and [`Arch::MediumCnn`]. [`Cnn::first_layer_maps`] exposes the first-layer activations
//! for plotting, and [`NetSpec::layers`] describes each layer's output shape and parameters.
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use candle_nn::{ModuleT, VarBuilder, VarMap};
//! use cnn_models::{Arch, Cnn, ModelConfig};
//!
//! let varmap = VarMap::new();
//! let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
//! let spec = Arch::SmallCnn.spec().resolve([1, 28, 28], 10)?;
//! let model = Cnn::new(&ModelConfig::new(spec), vb)?;
//! let logits = model.forward_t(&Tensor::zeros((2, 1, 28, 28), DType::F32, &Device::Cpu)?, false)?;
//! assert_eq!(logits.dims(), &[2, 10]);
//! # Ok::<(), cnn_models::Error>(())
//! ```
#![deny(missing_docs)]

// candle, re-exported so that users name the very version this crate builds on.
pub use candle_core::{self, DType, Device, Tensor};
pub use candle_nn::{self, VarBuilder, VarMap};

/// The optimisation level (`opt-level`) this crate was compiled at: `"0"` in a debug build
/// unless the project's profile raises it.
pub const OPT_LEVEL: &str = env!("CNN_MODELS_OPT_LEVEL");

/// Whether this crate was compiled with optimisations (`opt-level` 2, 3, `"s"` or `"z"`).
/// Without them training is about 80 times slower; a project that depends on these crates
/// keeps debug builds fast with, in its `Cargo.toml`:
///
/// ```toml
/// [profile.dev.package."*"]
/// opt-level = 3
/// ```
pub fn is_optimized() -> bool {
    matches!(OPT_LEVEL, "2" | "3" | "s" | "z")
}

mod arch;
mod batchnorm;
mod cnn;
mod dropout;
mod error;
pub mod fast;
mod layer;
pub mod par;
mod plan;
mod predict;
mod spec;
mod spec_file;

pub use arch::{Arch, MNIST_CLASSES, MNIST_INPUT};
pub use batchnorm::{BN_MOMENTUM, BatchNorm, is_running_stat};
pub use cnn::{Cnn, ConvBlock, LinearBlock, ModelConfig, OpsPath};
pub use dropout::{Dropout, splitmix64};
pub use error::{Error, Result, one_line};
pub use layer::{Activation, ConvSpec, Padding, PoolKind};
pub use predict::Prediction;
pub use spec::{
    LayerInfo, LayerSpec, MAX_CHANNELS, MAX_KERNEL, MAX_LAYERS, MAX_PARAMS, MAX_SIDE, MAX_WIDTH,
    NetSpec, NetSpecBuilder,
};
