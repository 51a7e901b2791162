//! The fast CPU path: fused conv+bias+ReLU(+max-pool), linear(+ReLU) and 2x2 max-pool as
//! candle custom ops, for odd kernels (1 to 7 in the specs) with same padding.
//!
//! Plain candle-nn spends most of a training step in conv2d's backward (through
//! conv_transpose2d) and in max-pool's backward (upsample, compare, average-pool), and its
//! autograd allocates and zeroes a gradient buffer for every intermediate tensor. Here a conv
//! layer with its bias, ReLU and pool is one graph node, computed image by image as im2col +
//! GEMM forward, and GEMMs + col2im backward. The ops run on CPU `f32` tensors only; on any
//! other device or dtype they fall back to candle's own ops, so CUDA keeps working unchanged.

mod kernels;
mod linear;
mod matmul;
mod ops;

pub use matmul::matmul;
pub use ops::{
    conv_relu, conv_relu_pool2, conv_relu_pool2_eval, is_fast_capable, linear, maxpool2,
    reference_maxpool2,
};
