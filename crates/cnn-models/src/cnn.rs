//! The network built from a [`NetSpec`]: blocks made from a `VarBuilder`, and forward passes.

use candle_core::{Module, ModuleT, Tensor};
use candle_nn::{Conv2d, Conv2dConfig, Linear, VarBuilder};

use crate::batchnorm::BatchNorm;
use crate::plan::Stage;
use crate::{Activation, ConvSpec, Dropout, Error, LayerInfo, NetSpec, PoolKind, Result};

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

/// A convolution with bias, its batch norm and activation, and the 2x2 max-pool that
/// follows a ReLU conv without batch norm when the spec puts one right after it (fused into
/// one op on the fast path).
#[derive(Debug)]
pub struct ConvBlock {
    conv: Conv2d,
    spec: ConvSpec,
    bn: Option<BatchNorm>,
    pool: bool,
}

impl ConvBlock {
    fn new(
        c_in: usize,
        spec: ConvSpec,
        bn: Option<VarBuilder<'_>>,
        pool: bool,
        vb: VarBuilder<'_>,
    ) -> Result<Self> {
        let cfg = Conv2dConfig {
            padding: spec.pad(),
            stride: spec.stride,
            ..Default::default()
        };
        Ok(Self {
            conv: candle_nn::conv2d(c_in, spec.channels, spec.kernel, cfg, vb)?,
            bn: bn.map(|vb| BatchNorm::new(spec.channels, vb)).transpose()?,
            spec,
            pool,
        })
    }

    /// The kernel, `[C_out, C_in, k, k]`.
    pub fn weight(&self) -> &Tensor {
        self.conv.weight()
    }

    /// The layer's options.
    pub fn spec(&self) -> &ConvSpec {
        &self.spec
    }

    /// The batch norm, if the layer has one.
    pub fn batchnorm(&self) -> Option<&BatchNorm> {
        self.bn.as_ref()
    }

    /// Whether a max-pool follows the convolution.
    pub fn pooled(&self) -> bool {
        self.pool
    }

    /// Appends the block's tensors under PyTorch's names: `name.weight`, `name.bias`, and
    /// the batch norm's under `bn`.
    fn named_tensors(&self, name: &str, bn: Option<&str>, out: &mut Vec<(String, Tensor)>) {
        named_layer(name, self.conv.weight(), self.conv.bias(), out);
        if let (Some(prefix), Some(norm)) = (bn, &self.bn) {
            for (leaf, t) in norm.tensors() {
                out.push((format!("{prefix}.{leaf}"), t.clone()));
            }
        }
    }

    /// Convolution, batch norm and activation, without the pool.
    fn features(&self, h: &Tensor, ops: OpsPath, train: bool) -> Result<Tensor> {
        let (w, relu) = (self.conv.weight(), self.spec.activation == Activation::Relu);
        let bias = self.conv.bias();
        if self.spec.is_plain()
            && let (OpsPath::Fast, Some(b)) = (ops, bias)
        {
            return Ok(crate::fast::conv_relu(h, w, b)?);
        }
        let (act, (s, p)) = (self.spec.activation, (self.spec.stride, self.spec.pad()));
        if !train && let (OpsPath::Fast, Some(b), Some(bn)) = (ops, bias, &self.bn) {
            let (w, b) = bn.fold_into_conv(w, b)?;
            return Ok(crate::fast::conv(h, &w, &b, s, p, act)?);
        }
        let y = match (ops, bias, &self.bn) {
            // Without batch norm the activation goes into the conv's op.
            (OpsPath::Fast, Some(b), None) => return Ok(crate::fast::conv(h, w, b, s, p, act)?),
            (OpsPath::Fast, Some(b), Some(_)) => {
                crate::fast::conv(h, w, b, s, p, Activation::None)?
            }
            (_, Some(b), None) => return Ok(crate::fast::reference_conv(h, w, b, s, p, act)?),
            (_, Some(b), Some(_)) => crate::fast::reference_conv(h, w, b, s, p, Activation::None)?,
            (_, None, _) => self.conv.forward(h)?,
        };
        match &self.bn {
            // ReLU goes into the batch norm's op.
            Some(bn) => {
                let y = bn.forward(&y, ops, train, relu)?;
                if relu { Ok(y) } else { activate(&y, act, ops) }
            }
            None => activate(&y, act, ops),
        }
    }

    /// The block's output; `train: false` tells the fast path no backward will follow.
    fn forward(&self, h: &Tensor, ops: OpsPath, train: bool) -> Result<Tensor> {
        let w = self.conv.weight();
        match (ops, self.conv.bias(), self.pool) {
            (OpsPath::Fast, Some(b), true) if self.spec.is_plain() && train => {
                Ok(crate::fast::conv_relu_pool2(h, w, b)?)
            }
            (OpsPath::Fast, Some(b), true) if self.spec.is_plain() => {
                Ok(crate::fast::conv_relu_pool2_eval(h, w, b)?)
            }
            (OpsPath::Fast, Some(b), true) => {
                let (s, p) = (self.spec.stride, self.spec.pad());
                Ok(crate::fast::conv_relu_pool2_with(h, w, b, s, p, train)?)
            }
            (_, _, true) => pool(&self.features(h, ops, train)?, ops, PoolKind::Max, [2, 2]),
            (_, _, false) => self.features(h, ops, train),
        }
    }
}

/// Appends a conv's or linear layer's weight and bias as `name.weight` and `name.bias`.
fn named_layer(name: &str, w: &Tensor, b: Option<&Tensor>, out: &mut Vec<(String, Tensor)>) {
    out.push((format!("{name}.weight"), w.clone()));
    if let Some(b) = b {
        out.push((format!("{name}.bias"), b.clone()));
    }
}

/// `act` applied to `x` (ReLU is fused into the op before it where it can be).
fn activate(x: &Tensor, act: Activation, ops: OpsPath) -> Result<Tensor> {
    Ok(match ops {
        OpsPath::Fast => crate::fast::activation(x, act)?,
        OpsPath::Reference => crate::fast::reference_activation(x, act)?,
    })
}

/// A linear layer (flattening its input), then its activation.
#[derive(Debug)]
pub struct LinearBlock {
    linear: Linear,
    act: Activation,
}

impl LinearBlock {
    fn forward(&self, h: &Tensor, ops: OpsPath) -> Result<Tensor> {
        let h = if h.rank() > 2 {
            h.flatten_from(1)?
        } else {
            h.clone()
        };
        let l = &self.linear;
        let relu = self.act == Activation::Relu;
        match (ops, l.bias()) {
            (OpsPath::Fast, Some(b)) => {
                let y = crate::fast::linear(&h, l.weight(), b, relu)?;
                if relu {
                    Ok(y)
                } else {
                    activate(&y, self.act, ops)
                }
            }
            _ => activate(&l.forward(&h)?, self.act, ops),
        }
    }
}

/// A pool: the 2x2 max-pool keeps its own kernels (the presets' results depend on them).
fn pool(h: &Tensor, ops: OpsPath, kind: PoolKind, window: [usize; 2]) -> Result<Tensor> {
    let two = kind == PoolKind::Max && window == [2, 2];
    Ok(match (ops, two) {
        (OpsPath::Fast, true) => crate::fast::maxpool2(h)?,
        (OpsPath::Reference, true) => crate::fast::reference_maxpool2(h)?,
        (OpsPath::Fast, false) => crate::fast::pool(h, kind, window)?,
        (OpsPath::Reference, false) => crate::fast::reference_pool(h, kind, window)?,
    })
}

/// One stage of the network.
#[derive(Debug)]
enum Block {
    Conv(ConvBlock),
    Pool { kind: PoolKind, window: [usize; 2] },
    Linear(LinearBlock),
    Dropout(Dropout),
}

/// A network built from a [`NetSpec`]: `small_cnn`, `medium_cnn` or your own, with a name
/// for each class it tells apart.
///
/// Build one from a [`VarBuilder`] ([`Cnn::new`]), get one trained from
/// `cnn_training::Trainer`, or load one from a file with `cnn_training`'s `CnnFile`. Then
/// [`Cnn::predict`] classifies an image, [`Cnn::kernels`] gives the kernels to draw, and the
/// network is a [`ModuleT`] for anything candle does.
#[derive(Debug)]
pub struct Cnn {
    spec: NetSpec,
    input: [usize; 3],
    blocks: Vec<Block>,
    layers: Vec<LayerInfo>,
    ops: OpsPath,
    /// Every parameter and running statistic, by its PyTorch-style name, sharing storage
    /// with the blocks (so training updates show here).
    pub(crate) tensors: Vec<(String, Tensor)>,
    pub(crate) class_names: Vec<String>,
}

impl Cnn {
    /// Builds the network; variables are named `conv1.weight`, `conv1.bias`, ..., `fc1.weight`,
    /// `fc1.bias`, ... in order, as PyTorch names a module's layers.
    pub fn new(cfg: &ModelConfig, vb: VarBuilder<'_>) -> Result<Self> {
        let plan = cfg.spec.plan()?;
        let (input, _) = cfg.spec.shape()?;
        let mut blocks = Vec::with_capacity(plan.stages.len());
        let mut tensors = Vec::new();
        let mut dropouts = 0u64;
        for stage in plan.stages {
            blocks.push(match stage {
                Stage::Conv {
                    name,
                    bn,
                    c_in,
                    conv,
                    pool,
                } => {
                    let bn_vb = bn.as_deref().map(|n| vb.pp(n));
                    let block = ConvBlock::new(c_in, conv, bn_vb, pool, vb.pp(&name))?;
                    block.named_tensors(&name, bn.as_deref(), &mut tensors);
                    Block::Conv(block)
                }
                Stage::Pool { kind, window } => Block::Pool { kind, window },
                Stage::Linear {
                    name,
                    fin,
                    fout,
                    act,
                } => {
                    let linear = candle_nn::linear(fin, fout, vb.pp(&name))?;
                    named_layer(&name, linear.weight(), linear.bias(), &mut tensors);
                    Block::Linear(LinearBlock { linear, act })
                }
                Stage::Dropout { p } => {
                    // The first dropout keeps the plain seed, so runs of the presets repeat
                    // those made before specs existed.
                    let seed = cfg.dropout_seed ^ dropouts.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                    dropouts += 1;
                    Block::Dropout(Dropout::new(p, seed))
                }
            });
        }
        let classes = plan.layers.last().map_or(0, |l| l.output_shape[0]);
        Ok(Self {
            spec: cfg.spec.clone(),
            input,
            blocks,
            layers: plan.layers,
            ops: cfg.ops,
            tensors,
            class_names: (0..classes).map(|c| c.to_string()).collect(),
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

    pub(crate) fn convs(&self) -> impl Iterator<Item = &ConvBlock> {
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

    /// First-layer feature maps after its batch norm and activation, `N x C x H x W`; an
    /// error if the first layer is not a convolution.
    pub fn first_layer_maps(&self, xs: &Tensor) -> Result<Tensor> {
        self.check_input(xs)?;
        match self.blocks.first() {
            Some(Block::Conv(c)) => c.features(xs, self.ops, false),
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
                    h = c.features(&h, self.ops, false)?;
                    out.push(h.clone());
                    if c.pool {
                        h = pool(&h, self.ops, PoolKind::Max, [2, 2])?;
                        out.push(h.clone());
                    }
                }
                Block::Pool { kind, window } => {
                    h = pool(&h, self.ops, *kind, *window)?;
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
                Block::Pool { kind, window } => pool(&h, self.ops, *kind, *window)?,
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
