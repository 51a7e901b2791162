//! The network itself: layers built from a `VarBuilder`, and its forward passes.

use candle_core::{Module, ModuleT, Tensor};
use candle_nn::{Conv2d, Conv2dConfig, Linear, VarBuilder};

use crate::{Arch, Dropout, Error, Result};

/// Which implementation of the convolution and pooling layers to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OpsPath {
    /// Fused custom ops on CPU `f32` tensors ([`crate::fast`]), candle's ops on other devices.
    #[default]
    Fast,
    /// candle-nn's own layers everywhere (max-pool from candle reductions, see
    /// [`crate::fast::reference_maxpool2`]): the reference the fast path is tested against.
    Reference,
}

/// How to build a [`Cnn`].
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// The architecture.
    pub arch: Arch,
    /// Seed of the dropout masks (only `medium_cnn` uses dropout).
    pub dropout_seed: u64,
    /// Layer implementation.
    pub ops: OpsPath,
}

impl ModelConfig {
    /// The architecture with dropout seed 0.
    pub fn new(arch: Arch) -> Self {
        Self {
            arch,
            dropout_seed: 0,
            ops: OpsPath::default(),
        }
    }
}

/// `small_cnn` or `medium_cnn`.
#[derive(Debug)]
pub struct Cnn {
    arch: Arch,
    convs: Vec<Conv2d>,
    fc1: Linear,
    fc2: Option<Linear>,
    dropout: Dropout,
    ops: OpsPath,
}

fn conv3x3(c_in: usize, c_out: usize, vb: VarBuilder<'_>) -> Result<Conv2d> {
    let cfg = Conv2dConfig {
        padding: 1,
        ..Default::default()
    };
    Ok(candle_nn::conv2d(c_in, c_out, 3, cfg, vb)?)
}

impl Cnn {
    /// Builds the network; variables are named `conv1.weight`, `conv1.bias`, ..., `fc1.weight`,
    /// `fc1.bias` and, for `medium_cnn`, `fc2.*`.
    pub fn new(cfg: &ModelConfig, vb: VarBuilder<'_>) -> Result<Self> {
        let arch = cfg.arch;
        let mut convs = Vec::new();
        let mut c_in = 1;
        for (i, &c_out) in arch.conv_channels().iter().enumerate() {
            convs.push(conv3x3(c_in, c_out, vb.pp(format!("conv{}", i + 1)))?);
            c_in = c_out;
        }
        let flat = arch.flat_features();
        let (fc1, fc2) = if arch.has_hidden() {
            (
                candle_nn::linear(flat, Arch::HIDDEN, vb.pp("fc1"))?,
                Some(candle_nn::linear(Arch::HIDDEN, 10, vb.pp("fc2"))?),
            )
        } else {
            (candle_nn::linear(flat, 10, vb.pp("fc1"))?, None)
        };
        Ok(Self {
            arch,
            convs,
            fc1,
            fc2,
            dropout: Dropout::new(0.5, cfg.dropout_seed),
            ops: cfg.ops,
        })
    }

    /// The architecture.
    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// Weights of convolution `i` (0-based), `[C_out, C_in, 3, 3]`; `None` past the last.
    pub fn conv_weight(&self, i: usize) -> Option<&Tensor> {
        self.convs.get(i).map(Conv2d::weight)
    }

    /// The layer implementation in use.
    pub fn ops(&self) -> OpsPath {
        self.ops
    }

    /// Switches the layer implementation (the weights are shared, so both give the same
    /// function up to floating-point rounding).
    pub fn set_ops(&mut self, ops: OpsPath) {
        self.ops = ops;
    }

    fn conv_relu(&self, i: usize, h: &Tensor) -> Result<Tensor> {
        let conv = &self.convs[i];
        match (self.ops, conv.bias()) {
            (OpsPath::Fast, Some(b)) => Ok(crate::fast::conv3x3_relu(h, conv.weight(), b)?),
            _ => Ok(conv.forward(h)?.relu()?),
        }
    }

    fn pool(&self, h: &Tensor) -> Result<Tensor> {
        match self.ops {
            OpsPath::Fast => Ok(crate::fast::maxpool2(h)?),
            OpsPath::Reference => Ok(crate::fast::reference_maxpool2(h)?),
        }
    }

    /// Conv layer `i` with ReLU, and the 2x2 pool after it for the first two layers.
    fn block(&self, i: usize, h: &Tensor) -> Result<Tensor> {
        let conv = &self.convs[i];
        match (self.ops, conv.bias(), i < 2) {
            (OpsPath::Fast, Some(b), true) => {
                Ok(crate::fast::conv3x3_relu_pool2(h, conv.weight(), b)?)
            }
            (_, _, true) => self.pool(&self.conv_relu(i, h)?),
            (_, _, false) => self.conv_relu(i, h),
        }
    }

    /// The dropout layer (to save and restore its mask counter).
    pub fn dropout(&self) -> &Dropout {
        &self.dropout
    }

    fn check_input(xs: &Tensor) -> Result<()> {
        let dims = xs.dims();
        if dims.len() != 4 || dims[1..] != [1, 28, 28] {
            return Err(Error::BadInput(dims.to_vec()));
        }
        Ok(())
    }

    /// First-layer feature maps after ReLU: `N x 10 x 28 x 28`.
    pub fn first_layer_maps(&self, xs: &Tensor) -> Result<Tensor> {
        Self::check_input(xs)?;
        self.conv_relu(0, xs)
    }

    /// The output of every stage, in the order of [`Arch::layers`] (input excluded), in eval mode.
    pub fn activations(&self, xs: &Tensor) -> Result<Vec<Tensor>> {
        Self::check_input(xs)?;
        let mut out = Vec::new();
        let mut h = xs.clone();
        for i in 0..self.convs.len() {
            h = self.conv_relu(i, &h)?;
            out.push(h.clone());
            if i < 2 {
                h = self.pool(&h)?;
                out.push(h.clone());
            }
        }
        h = h.flatten_from(1)?;
        out.push(h.clone());
        h = self.fc1.forward(&h)?;
        if let Some(fc2) = &self.fc2 {
            h = h.relu()?;
            out.push(h.clone());
            out.push(h.clone()); // dropout is the identity in eval mode
            h = fc2.forward(&h)?;
        }
        out.push(h);
        Ok(out)
    }

    /// Logits, `N x 10`.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        Self::check_input(xs)?;
        let mut h = xs.clone();
        for i in 0..self.convs.len() {
            h = self.block(i, &h)?;
        }
        let h = h.flatten_from(1)?;
        match (self.ops, &self.fc2) {
            (OpsPath::Fast, None) => Ok(self.fast_linear(&self.fc1, &h, false)?),
            (OpsPath::Fast, Some(fc2)) => {
                let h = self
                    .dropout
                    .forward_t(&self.fast_linear(&self.fc1, &h, true)?, train)?;
                Ok(self.fast_linear(fc2, &h, false)?)
            }
            (OpsPath::Reference, None) => Ok(self.fc1.forward(&h)?),
            (OpsPath::Reference, Some(fc2)) => {
                let h = self
                    .dropout
                    .forward_t(&self.fc1.forward(&h)?.relu()?, train)?;
                Ok(fc2.forward(&h)?)
            }
        }
    }

    fn fast_linear(&self, layer: &Linear, h: &Tensor, relu: bool) -> Result<Tensor> {
        match layer.bias() {
            Some(b) => Ok(crate::fast::linear(h, layer.weight(), b, relu)?),
            None => {
                let y = layer.forward(h)?;
                Ok(if relu { y.relu()? } else { y })
            }
        }
    }
}

impl ModuleT for Cnn {
    fn forward_t(&self, xs: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        Cnn::forward_t(self, xs, train).map_err(|e| match e {
            Error::Candle(e) => e,
            other => candle_core::Error::Msg(other.to_string()),
        })
    }
}
