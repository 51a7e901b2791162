//! Shape inference: a spec walked layer by layer into the stages to build and the layers
//! to describe, with every shape and parameter count.

use crate::spec::LayerInfo;
use crate::{Activation, ConvSpec, Error, PoolKind, Result};

/// One stage of a planned network: what to build, with every shape known.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Stage {
    /// Convolution (`name`), its batch norm (`bn`), activation, and the 2x2 max-pool that
    /// follows a ReLU conv without batch norm when `pool`.
    Conv {
        name: String,
        bn: Option<String>,
        c_in: usize,
        conv: ConvSpec,
        pool: bool,
    },
    /// A pool with a `window` (height, width) and the same stride, not fused into a conv.
    Pool { kind: PoolKind, window: [usize; 2] },
    /// Linear layer (`name`), flattening its input, then `act`.
    Linear {
        name: String,
        fin: usize,
        fout: usize,
        act: Activation,
    },
    /// Dropout.
    Dropout { p: f32 },
}

/// The planned network: its stages (to build) and its layers (to describe).
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub stages: Vec<Stage>,
    pub layers: Vec<LayerInfo>,
}

/// Shape inference state while walking the layers.
pub(crate) struct Walk {
    pub(crate) stages: Vec<Stage>,
    pub(crate) layers: Vec<LayerInfo>,
    /// `[c, h, w]` while spatial; `[n]` once flattened.
    shape: Vec<usize>,
    convs: usize,
    bns: usize,
    pools: usize,
    /// Layer number of a global pool already walked: nothing spatial may follow.
    global: Option<usize>,
    fcs: usize,
    dropouts: usize,
    pub(crate) params: usize,
}

impl Walk {
    /// The walk's start: the input, of shape `input`.
    pub(crate) fn new(input: [usize; 3]) -> Self {
        let mut w = Walk {
            stages: Vec::new(),
            layers: Vec::new(),
            shape: input.to_vec(),
            convs: 0,
            bns: 0,
            pools: 0,
            global: None,
            fcs: 0,
            dropouts: 0,
            params: 0,
        };
        w.push("input".into(), "Input".into(), 0);
        w
    }

    fn push(&mut self, name: String, kind: String, params: usize) {
        self.params = self.params.saturating_add(params);
        self.layers.push(LayerInfo {
            name,
            kind,
            output_shape: self.shape.clone(),
            params,
        });
    }

    fn flat(&self) -> usize {
        self.shape.iter().fold(1usize, |a, &b| a.saturating_mul(b))
    }

    /// The `[c, h, w]` map a spatial layer `layer` (of kind `what`) takes.
    fn map(&self, layer: usize, what: &'static str) -> Result<[usize; 3]> {
        if let Some(after) = self.global {
            return Err(Error::AfterGlobalPool { layer, what, after });
        }
        match self.shape[..] {
            [c, h, w] => Ok([c, h, w]),
            _ => Err(Error::SpatialAfterLinear { layer, what }),
        }
    }

    pub(crate) fn conv(&mut self, layer: usize, conv: ConvSpec) -> Result<()> {
        let [c, h, w] = self.map(layer, "conv")?;
        let (k, s, p) = (conv.kernel, conv.stride, conv.pad());
        let side = |n: usize| (n + 2 * p).checked_sub(k).map(|r| r / s + 1);
        let (Some(oh), Some(ow)) = (side(h), side(w)) else {
            return Err(Error::MapVanishes { layer, h, w });
        };
        self.convs += 1;
        let name = format!("conv{}", self.convs);
        let bn = conv.batchnorm.then(|| {
            self.bns += 1;
            format!("bn{}", self.bns)
        });
        let channels = conv.channels;
        let params = channels
            .saturating_mul(c)
            .saturating_mul(k * k)
            .saturating_add(channels)
            .saturating_add(if conv.batchnorm { 2 * channels } else { 0 });
        self.stages.push(Stage::Conv {
            name: name.clone(),
            bn,
            c_in: c,
            conv,
            pool: false,
        });
        self.shape = vec![channels, oh, ow];
        self.push(name, conv_kind(&conv), params);
        Ok(())
    }

    pub(crate) fn pool(&mut self, layer: usize, kind: PoolKind, size: usize) -> Result<()> {
        let what = kind.key();
        let [c, h, w] = self.map(layer, what)?;
        if h < size || w < size {
            return Err(Error::PoolTooSmall {
                layer,
                what,
                size,
                h,
                w,
            });
        }
        match self.stages.last_mut() {
            Some(Stage::Conv {
                pool: pool @ false,
                conv,
                ..
            }) if conv.takes_pool() && kind == PoolKind::Max && size == 2 => *pool = true,
            _ => self.stages.push(Stage::Pool {
                kind,
                window: [size, size],
            }),
        }
        self.pools += 1;
        self.shape = vec![c, h / size, w / size];
        self.push(
            format!("pool{}", self.pools),
            format!("{} {size}x{size}", kind.label()),
            0,
        );
        Ok(())
    }

    pub(crate) fn global_pool(&mut self, layer: usize) -> Result<()> {
        let [c, h, w] = self.map(layer, "globalavgpool")?;
        self.stages.push(Stage::Pool {
            kind: PoolKind::Avg,
            window: [h, w],
        });
        self.global = Some(layer);
        self.shape = vec![c, 1, 1];
        self.push("gap".into(), "GlobalAvgPool".into(), 0);
        Ok(())
    }

    fn flatten(&mut self) {
        if self.shape.len() == 3 {
            self.shape = vec![self.flat()];
            self.push("flatten".into(), "Flatten".into(), 0);
        }
    }

    pub(crate) fn linear(&mut self, width: usize, act: Activation) {
        self.flatten();
        let fin = self.flat();
        self.fcs += 1;
        let name = format!("fc{}", self.fcs);
        self.stages.push(Stage::Linear {
            name: name.clone(),
            fin,
            fout: width,
            act,
        });
        self.shape = vec![width];
        let kind = match act {
            Activation::None => "Linear".to_string(),
            a => format!("Linear, {}", a.label()),
        };
        self.push(name, kind, fin.saturating_mul(width).saturating_add(width));
    }

    pub(crate) fn dropout(&mut self, p: f32) {
        self.dropouts += 1;
        self.stages.push(Stage::Dropout { p });
        let name = match self.dropouts {
            1 => "dropout".to_string(),
            n => format!("dropout{n}"),
        };
        self.push(name, format!("Dropout {p} (training only)"), 0);
    }
}

/// How diagrams describe a conv layer: `Conv2d 3x3, pad 1, ReLU` for the plain kind, with
/// the stride, batch norm and activation when they differ.
fn conv_kind(c: &ConvSpec) -> String {
    let k = c.kernel;
    let mut kind = format!("Conv2d {k}x{k}");
    if c.stride != 1 {
        kind += &format!(", stride {}", c.stride);
    }
    kind += &format!(", pad {}", c.pad());
    if c.batchnorm {
        kind += ", BatchNorm";
    }
    if c.activation != Activation::None {
        kind += &format!(", {}", c.activation.label());
    }
    kind
}
