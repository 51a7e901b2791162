//! ONNX export of the networks of `cnn-models`: the evaluation graph of a [`Cnn`](cnn_models::Cnn), its
//! weights as initializers named after the checkpoint's tensors.
//!
//! The contract of the file:
//! - input `input`: `float32 [N, C, H, W]`, `N` dynamic; pixels scaled as in training,
//!   value / 255 (said in the model's `metadata_props`, with the class names and the spec);
//! - output `logits`: `[N, classes]`, before softmax;
//! - opset 17; dropout left out; batch norm as `BatchNormalization` (evaluation: the running
//!   statistics), not folded into the conv, so the file keeps the checkpoint's tensors;
//! - GELU (erf form) and SiLU written out in opset-17 operators (`Erf`, `Sigmoid`).
//!
//! ```
//! use cnn_models::{Arch, Cnn, DType, Device, ModelConfig, VarBuilder, VarMap};
//! let varmap = VarMap::new();
//! let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
//! let model = Cnn::new(&ModelConfig::new(Arch::SmallCnn.mnist_spec()), vb)?;
//! let bytes = cnn_onnx::to_onnx(&model)?;
//! assert!(bytes.len() > 4 * 11_000); // the weights are in it
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod graph;

pub use graph::{OPSET, to_onnx};

/// The ONNX message types, generated from `onnx.proto` at build time.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
}

/// Errors of the export.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The network's spec or tensors could not be read.
    #[error(transparent)]
    Model(#[from] cnn_models::Error),
    /// A tensor's values could not be read.
    #[error("tensor {name} cannot be read")]
    Tensor {
        /// The tensor.
        name: String,
        /// Why.
        #[source]
        source: cnn_models::candle_core::Error,
    },
    /// A tensor the graph needs is not in the network.
    #[error("the network has no tensor {0}")]
    MissingTensor(String),
    /// The spec could not be written into the metadata.
    #[error("the spec cannot be written as JSON")]
    Spec(#[source] serde_json::Error),
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, Error>;
