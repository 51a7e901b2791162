//! Shape inference: a spec walked layer by layer into the stages to build and the layers
//! to describe, with every shape and parameter count.

use crate::spec::LayerInfo;
use crate::{Error, Result};

/// One stage of a planned network: what to build, with every shape known.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Stage {
    /// Convolution (`name`), ReLU, and the max-pool that follows it when `pool`.
    Conv {
        name: String,
        c_in: usize,
        c_out: usize,
        kernel: usize,
        pool: bool,
    },
    /// A max-pool that does not follow a convolution.
    Pool,
    /// Linear layer (`name`), flattening its input, with ReLU when `relu`.
    Linear {
        name: String,
        fin: usize,
        fout: usize,
        relu: bool,
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
    pools: usize,
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
            pools: 0,
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

    pub(crate) fn conv(&mut self, layer: usize, channels: usize, kernel: usize) -> Result<()> {
        let [c, h, w] = match self.shape[..] {
            [c, h, w] => [c, h, w],
            _ => {
                return Err(Error::SpatialAfterLinear {
                    layer,
                    what: "conv",
                });
            }
        };
        self.convs += 1;
        let name = format!("conv{}", self.convs);
        let params = channels
            .saturating_mul(c)
            .saturating_mul(kernel * kernel)
            .saturating_add(channels);
        self.stages.push(Stage::Conv {
            name: name.clone(),
            c_in: c,
            c_out: channels,
            kernel,
            pool: false,
        });
        self.shape = vec![channels, h, w];
        let kind = format!("Conv2d {kernel}x{kernel}, pad {}, ReLU", kernel / 2);
        self.push(name, kind, params);
        Ok(())
    }

    pub(crate) fn pool(&mut self, layer: usize) -> Result<()> {
        let [c, h, w] = match self.shape[..] {
            [c, h, w] => [c, h, w],
            _ => {
                return Err(Error::SpatialAfterLinear {
                    layer,
                    what: "maxpool",
                });
            }
        };
        if h < 2 || w < 2 {
            return Err(Error::PoolTooSmall { layer, h, w });
        }
        match self.stages.last_mut() {
            Some(Stage::Conv {
                pool: pool @ false, ..
            }) => *pool = true,
            _ => self.stages.push(Stage::Pool),
        }
        self.pools += 1;
        self.shape = vec![c, h / 2, w / 2];
        self.push(format!("pool{}", self.pools), "MaxPool 2x2".into(), 0);
        Ok(())
    }

    fn flatten(&mut self) {
        if self.shape.len() == 3 {
            self.shape = vec![self.flat()];
            self.push("flatten".into(), "Flatten".into(), 0);
        }
    }

    pub(crate) fn linear(&mut self, width: usize, relu: bool) {
        self.flatten();
        let fin = self.flat();
        self.fcs += 1;
        let name = format!("fc{}", self.fcs);
        self.stages.push(Stage::Linear {
            name: name.clone(),
            fin,
            fout: width,
            relu,
        });
        self.shape = vec![width];
        let kind = if relu { "Linear, ReLU" } else { "Linear" };
        self.push(
            name,
            kind.into(),
            fin.saturating_mul(width).saturating_add(width),
        );
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
