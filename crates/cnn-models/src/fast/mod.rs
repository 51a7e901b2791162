//! The fast CPU path: fused conv+bias+ReLU(+max-pool), convolutions of any stride and
//! padding, batch norm, pools of any window, and linear(+ReLU), as candle custom ops.
//!
//! Plain candle-nn spends most of a training step in conv2d's backward (through
//! conv_transpose2d) and in max-pool's backward (upsample, compare, average-pool), and its
//! autograd allocates and zeroes a gradient buffer for every intermediate tensor. Here a conv
//! layer with its bias, ReLU and pool is one graph node, computed image by image as im2col +
//! GEMM forward, and GEMMs + col2im backward. The ops run on CPU `f32` tensors only; on any
//! other device or dtype they fall back to candle's own ops, so CUDA keeps working unchanged.

mod act;
mod kernels;
mod linear;
mod matmul;
mod norm_pool;
mod ops;

pub use act::{activation, reference_activation};
pub use matmul::matmul;
pub use norm_pool::{
    BN_EPS, batchnorm, batchnorm_eval, maxpool2, pool, reference_batchnorm,
    reference_batchnorm_eval, reference_maxpool2, reference_pool,
};
pub use ops::{
    conv, conv_relu, conv_relu_pool2, conv_relu_pool2_eval, conv_relu_pool2_with, is_fast_capable,
    linear, reference_conv,
};
