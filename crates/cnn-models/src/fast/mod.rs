//! The fast CPU path: fused conv3x3+bias+ReLU and 2x2 max-pool as candle custom ops.
//!
//! Plain candle-nn spends most of a training step in conv2d's backward (through
//! conv_transpose2d) and in max-pool's backward (upsample, compare, average-pool). These ops
//! do each layer as one im2col and one batched GEMM forward, and two GEMMs and one col2im
//! backward. They run on CPU `f32` tensors only; [`conv3x3_relu`] and [`maxpool2`] fall back
//! to candle's own ops on every other device or dtype, so CUDA keeps working unchanged.

mod kernels;
mod ops;

pub use ops::{conv3x3_relu, is_fast_capable, maxpool2, reference_maxpool2};
