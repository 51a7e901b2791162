//! The network built from a [`NetSpec`]: blocks made from a `VarBuilder`, and forward passes.

use candle_core::{Module, ModuleT, Tensor};
use candle_nn::{Conv2d, Conv2dConfig, Linear, VarBuilder};

use crate::plan::Stage;
use crate::{Dropout, Error, LayerInfo, NetSpec, Result};

/// Which implementation of the convolution, pooling and linear layers to run.
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
    /// The network; its input shape and classes must be known (see [`NetSpec::resolve`]).
    pub spec: NetSpec,
    /// Seed of the dropout masks.
    pub dropout_seed: u64,
    /// Layer implementation.
    pub ops: OpsPath,
}

impl ModelConfig {
    /// The network with dropout seed 0 and the fast path.
    pub fn new(spec: NetSpec) -> Self {
        Self {
            spec,
            dropout_seed: 0,
            ops: OpsPath::default(),
        }
    }
}

/// A convolution with bias and ReLU, and the 2x2 max-pool that follows it when the spec puts
/// one right after it (fused into one op on the fast path).
#[derive(Debug)]
pub struct ConvBlock {
    conv: Conv2d,
    pool: bool,
}

impl ConvBlock {
    fn new(
        c_in: usize,
        c_out: usize,
        kernel: usize,
        pool: bool,
        vb: VarBuilder<'_>,
    ) -> Result<Self> {
        let cfg = Conv2dConfig {
            padding: kernel / 2,
            ..Default::default()
        };
        Ok(Self {
            conv: candle_nn::conv2d(c_in, c_out, kernel, cfg, vb)?,
            pool,
        })
    }

    /// The kernel, `[C_out, C_in, k, k]`.
    pub fn weight(&self) -> &Tensor {
        self.conv.weight()
    }

    /// Whether a max-pool follows the convolution.
    pub fn pooled(&self) -> bool {
        self.pool
    }

    /// Convolution and ReLU, without the pool.
    fn conv_relu(&self, h: &Tensor, ops: OpsPath) -> Result<Tensor> {
        match (ops, self.conv.bias()) {
            (OpsPath::Fast, Some(b)) => Ok(crate::fast::conv_relu(h, self.conv.weight(), b)?),
            _ => Ok(self.conv.forward(h)?.relu()?),
        }
    }

    /// The block's output; `train: false` tells the fast path no backward will follow.
    fn forward(&self, h: &Tensor, ops: OpsPath, train: bool) -> Result<Tensor> {
        match (ops, self.conv.bias(), self.pool) {
            (OpsPath::Fast, Some(b), true) if train => {
                Ok(crate::fast::conv_relu_pool2(h, self.conv.weight(), b)?)
            }
            (OpsPath::Fast, Some(b), true) => {
                Ok(crate::fast::conv_relu_pool2_eval(h, self.conv.weight(), b)?)
            }
            (_, _, true) => pool(&self.conv_relu(h, ops)?, ops),
            (_, _, false) => self.conv_relu(h, ops),
        }
    }
}

/// A linear layer (flattening its input), with ReLU for hidden layers.
#[derive(Debug)]
pub struct LinearBlock {
    linear: Linear,
    relu: bool,
}

impl LinearBlock {
    fn forward(&self, h: &Tensor, ops: OpsPath) -> Result<Tensor> {
        let h = if h.rank() > 2 {
            h.flatten_from(1)?
        } else {
            h.clone()
        };
        let l = &self.linear;
        match (ops, l.bias()) {
            (OpsPath::Fast, Some(b)) => Ok(crate::fast::linear(&h, l.weight(), b, self.relu)?),
            _ => {
                let y = l.forward(&h)?;
                Ok(if self.relu { y.relu()? } else { y })
            }
        }
    }
}

fn pool(h: &Tensor, ops: OpsPath) -> Result<Tensor> {
    match ops {
        OpsPath::Fast => Ok(crate::fast::maxpool2(h)?),
        OpsPath::Reference => Ok(crate::fast::reference_maxpool2(h)?),
    }
}

/// One stage of the network.
#[derive(Debug)]
enum Block {
    Conv(ConvBlock),
    Pool,
    Linear(LinearBlock),
    Dropout(Dropout),
}

/// A network built from a [`NetSpec`]: `small_cnn`, `medium_cnn` or your own.
#[derive(Debug)]
pub struct Cnn {
    spec: NetSpec,
    input: [usize; 3],
    blocks: Vec<Block>,
    layers: Vec<LayerInfo>,
    ops: OpsPath,
}

impl Cnn {
    /// Builds the network; variables are named `conv1.weight`, `conv1.bias`, ..., `fc1.weight`,
    /// `fc1.bias`, ... in order, as PyTorch names a module's layers.
    pub fn new(cfg: &ModelConfig, vb: VarBuilder<'_>) -> Result<Self> {
        let plan = cfg.spec.plan()?;
        let (input, _) = cfg.spec.shape()?;
        let mut blocks = Vec::with_capacity(plan.stages.len());
        let mut dropouts = 0u64;
        for stage in plan.stages {
            blocks.push(match stage {
                Stage::Conv {
                    name,
                    c_in,
                    c_out,
                    kernel,
                    pool,
                } => Block::Conv(ConvBlock::new(c_in, c_out, kernel, pool, vb.pp(name))?),
                Stage::Pool => Block::Pool,
                Stage::Linear {
                    name,
                    fin,
                    fout,
                    relu,
                } => Block::Linear(LinearBlock {
                    linear: candle_nn::linear(fin, fout, vb.pp(name))?,
                    relu,
                }),
                Stage::Dropout { p } => {
                    // The first dropout keeps the plain seed, so runs of the presets repeat
                    // those made before specs existed.
                    let seed = cfg.dropout_seed ^ dropouts.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                    dropouts += 1;
                    Block::Dropout(Dropout::new(p, seed))
                }
            });
        }
        Ok(Self {
            spec: cfg.spec.clone(),
            input,
            blocks,
            layers: plan.layers,
            ops: cfg.ops,
        })
    }

    /// The spec the network was built from (input shape and classes filled in).
    pub fn spec(&self) -> &NetSpec {
        &self.spec
    }

    /// Every layer with its output shape and parameter count (see [`NetSpec::layers`]).
    pub fn layers(&self) -> &[LayerInfo] {
        &self.layers
    }

    /// Input shape `[channels, height, width]`.
    pub fn input_shape(&self) -> [usize; 3] {
        self.input
    }

    /// Number of classes (outputs).
    pub fn classes(&self) -> usize {
        self.layers.last().map_or(0, |l| l.output_shape[0])
    }

    fn convs(&self) -> impl Iterator<Item = &ConvBlock> {
        self.blocks.iter().filter_map(|b| match b {
            Block::Conv(c) => Some(c),
            _ => None,
        })
    }

    /// Weights of convolution `i` (0-based), `[C_out, C_in, k, k]`; `None` past the last.
    pub fn conv_weight(&self, i: usize) -> Option<&Tensor> {
        self.convs().nth(i).map(ConvBlock::weight)
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

    /// Masks drawn so far by the dropout layers (each draws one per training forward pass, so
    /// one number describes them all); save it to resume a run exactly.
    pub fn dropout_calls(&self) -> u64 {
        self.blocks
            .iter()
            .find_map(|b| match b {
                Block::Dropout(d) => Some(d.calls()),
                _ => None,
            })
            .unwrap_or(0)
    }

    /// Restores the count saved with [`Cnn::dropout_calls`].
    pub fn set_dropout_calls(&self, calls: u64) {
        for b in &self.blocks {
            if let Block::Dropout(d) = b {
                d.set_calls(calls);
            }
        }
    }

    fn check_input(&self, xs: &Tensor) -> Result<()> {
        let dims = xs.dims();
        if dims.len() != 4 || dims[1..] != self.input {
            return Err(Error::BadInput {
                expected: self.input,
                got: dims.to_vec(),
            });
        }
        Ok(())
    }

    /// First-layer feature maps after ReLU, `N x C x H x W`; an error if the first layer is
    /// not a convolution.
    pub fn first_layer_maps(&self, xs: &Tensor) -> Result<Tensor> {
        self.check_input(xs)?;
        match self.blocks.first() {
            Some(Block::Conv(c)) => c.conv_relu(xs, self.ops),
            _ => Err(Error::NoFirstConv {
                name: self.spec.name.clone(),
            }),
        }
    }

    /// The output of every layer, in the order of [`Cnn::layers`] (input excluded), in eval
    /// mode.
    pub fn activations(&self, xs: &Tensor) -> Result<Vec<Tensor>> {
        self.check_input(xs)?;
        let mut out = Vec::new();
        let mut h = xs.clone();
        for b in &self.blocks {
            match b {
                Block::Conv(c) => {
                    h = c.conv_relu(&h, self.ops)?;
                    out.push(h.clone());
                    if c.pool {
                        h = pool(&h, self.ops)?;
                        out.push(h.clone());
                    }
                }
                Block::Pool => {
                    h = pool(&h, self.ops)?;
                    out.push(h.clone());
                }
                Block::Linear(l) => {
                    if h.rank() > 2 {
                        h = h.flatten_from(1)?;
                        out.push(h.clone());
                    }
                    h = l.forward(&h, self.ops)?;
                    out.push(h.clone());
                }
                // Dropout is the identity in eval mode.
                Block::Dropout(_) => out.push(h.clone()),
            }
        }
        Ok(out)
    }

    /// Logits, `N x classes`.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        self.check_input(xs)?;
        let mut h = xs.clone();
        for b in &self.blocks {
            h = match b {
                Block::Conv(c) => c.forward(&h, self.ops, train)?,
                Block::Pool => pool(&h, self.ops)?,
                Block::Linear(l) => l.forward(&h, self.ops)?,
                Block::Dropout(d) => d.forward_t(&h, train)?,
            };
        }
        Ok(h)
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
