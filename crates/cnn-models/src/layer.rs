//! The options a layer carries: activation, padding and the conv layer's full description.

use std::fmt;

/// The function applied after a conv or linear layer (and after its batch norm).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Activation {
    /// `max(x, 0)`, the default.
    #[default]
    Relu,
    /// Hyperbolic tangent.
    Tanh,
    /// GELU in its exact (erf) form, PyTorch's default.
    Gelu,
    /// SiLU (swish), `x · sigmoid(x)`.
    Silu,
    /// No activation: the layer is affine.
    None,
}

impl Activation {
    /// Every activation, in the order the spec files list them.
    pub const ALL: [Activation; 5] = [
        Activation::Relu,
        Activation::Tanh,
        Activation::Gelu,
        Activation::Silu,
        Activation::None,
    ];

    /// The name spec files use: `relu`, `tanh`, `gelu`, `silu` or `none`.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Tanh => "tanh",
            Activation::Gelu => "gelu",
            Activation::Silu => "silu",
            Activation::None => "none",
        }
    }

    /// The activation named `name` (as [`Activation::name`] spells it).
    pub fn from_name(name: &str) -> Option<Activation> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// How diagrams print it: `ReLU`, `tanh`, `GELU`, `SiLU`, or nothing.
    pub fn label(self) -> &'static str {
        match self {
            Activation::Relu => "ReLU",
            Activation::Tanh => "tanh",
            Activation::Gelu => "GELU",
            Activation::Silu => "SiLU",
            Activation::None => "",
        }
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Zero padding of a convolution, on each side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Padding {
    /// `kernel / 2` on each side, which keeps the map's size at stride 1 (odd kernels only).
    #[default]
    Same,
    /// No padding.
    Valid,
    /// This many pixels on each side.
    Pixels(usize),
}

impl Padding {
    /// The pixels added on each side for a `kernel x kernel` window.
    pub fn pixels(self, kernel: usize) -> usize {
        match self {
            Padding::Same => kernel / 2,
            Padding::Valid => 0,
            Padding::Pixels(p) => p,
        }
    }
}

/// A convolution layer: `channels` outputs of a `kernel x kernel` window at `stride`, with
/// `padding`, a bias, optional batch norm, then `activation`.
///
/// ```
/// use cnn_models::{Activation, ConvSpec, Padding};
/// let c = ConvSpec::new(32).kernel(5).stride(2).padding(Padding::Valid).batchnorm(true);
/// assert_eq!((c.kernel, c.stride, c.activation), (5, 2, Activation::Relu));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvSpec {
    /// Output channels, 1 to [`crate::MAX_CHANNELS`].
    pub channels: usize,
    /// Kernel side, 1 to [`crate::MAX_KERNEL`]; 3 by default.
    pub kernel: usize,
    /// Step between windows; 1 by default.
    pub stride: usize,
    /// Zero padding; [`Padding::Same`] by default.
    pub padding: Padding,
    /// The function after the conv (and its batch norm); ReLU by default.
    pub activation: Activation,
    /// Conv → batch norm (PyTorch's `BatchNorm2d`: eps 1e-5, momentum 0.1) → activation.
    pub batchnorm: bool,
}

impl ConvSpec {
    /// A 3x3, stride 1, same-padded conv with ReLU and no batch norm.
    pub fn new(channels: usize) -> Self {
        Self {
            channels,
            kernel: 3,
            stride: 1,
            padding: Padding::Same,
            activation: Activation::Relu,
            batchnorm: false,
        }
    }
    /// With this kernel side.
    pub fn kernel(self, kernel: usize) -> Self {
        Self { kernel, ..self }
    }
    /// With this stride.
    pub fn stride(self, stride: usize) -> Self {
        Self { stride, ..self }
    }
    /// With this padding.
    pub fn padding(self, padding: Padding) -> Self {
        Self { padding, ..self }
    }
    /// With this activation.
    pub fn activation(self, activation: Activation) -> Self {
        Self { activation, ..self }
    }
    /// With or without batch norm.
    pub fn batchnorm(self, batchnorm: bool) -> Self {
        Self { batchnorm, ..self }
    }
    /// Zero padding on each side, in pixels.
    pub fn pad(&self) -> usize {
        self.padding.pixels(self.kernel)
    }
    /// Whether a following 2x2 max-pool is fused into this conv on the fast path: ReLU
    /// and no batch norm (the pool's maximum commutes with the ReLU).
    pub fn takes_pool(&self) -> bool {
        self.activation == Activation::Relu && !self.batchnorm
    }

    /// Whether this is the original layer kind (same padding, stride 1, ReLU, no batch
    /// norm), whose fused op keeps the kernels and bits it always had.
    pub fn is_plain(&self) -> bool {
        self.stride == 1
            && self.kernel % 2 == 1
            && self.pad() == self.kernel / 2
            && self.activation == Activation::Relu
            && !self.batchnorm
    }
}

/// How a pooling layer combines its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolKind {
    /// The largest value.
    Max,
    /// The mean.
    Avg,
}

impl PoolKind {
    /// Its key in spec files: `maxpool` or `avgpool`.
    pub fn key(self) -> &'static str {
        match self {
            PoolKind::Max => "maxpool",
            PoolKind::Avg => "avgpool",
        }
    }

    /// How diagrams name it: `MaxPool` or `AvgPool`.
    pub fn label(self) -> &'static str {
        match self {
            PoolKind::Max => "MaxPool",
            PoolKind::Avg => "AvgPool",
        }
    }
}
