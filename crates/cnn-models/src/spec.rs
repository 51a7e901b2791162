//! A network described as data: input shape, layers and classes, from Rust or from TOML.
//!
//! A [`NetSpec`] lists conv (with stride, padding, batch norm and activation), max- and
//! average-pool, global average pool, linear and dropout layers; a final linear layer with
//! one output per class is always added. Shapes are inferred layer by layer by [`NetSpec::plan`],
//! which refuses any impossible spec with an [`Error`] naming the layer (1-based, as in the
//! file). Parameters are named as PyTorch would name them: `conv1.weight`, `fc2.bias`, ...

use serde::{Deserialize, Serialize};

use crate::plan::{Plan, Walk};
use crate::{Activation, ConvSpec, Error, PoolKind, Result, spec_file};

/// Largest linear width accepted (a typo such as `linear = 1600000` would otherwise try to
/// allocate gigabytes).
pub const MAX_WIDTH: usize = 65_536;
/// Largest number of trainable parameters accepted.
pub const MAX_PARAMS: usize = 200_000_000;
/// Largest input side accepted, in pixels.
pub const MAX_SIDE: usize = 4096;
/// Most layers a spec may list. The deepest plain CNNs of the textbooks (VGG-19: 19 weight
/// layers, with its pools and dropouts under 40 in all) fit well within it; without skip
/// connections, much deeper stacks do not train; and the architecture figure, a box per
/// layer, stays under 5,500 pixels tall.
pub const MAX_LAYERS: usize = 100;

/// Most output channels a conv layer may have.
pub const MAX_CHANNELS: usize = 1024;
/// Largest conv kernel side accepted.
pub const MAX_KERNEL: usize = 11;

/// One layer of a [`NetSpec`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LayerSpec {
    /// Convolution, with its padding, stride, batch norm and activation.
    Conv(ConvSpec),
    /// Max-pool with a `size x size` window and stride `size` (sizes floored, as in PyTorch).
    MaxPool {
        /// Window side and stride.
        size: usize,
    },
    /// Average pool with a `size x size` window and stride `size` (sizes floored).
    AvgPool {
        /// Window side and stride.
        size: usize,
    },
    /// The mean over the whole map, per channel (only linear and dropout layers may follow).
    GlobalAvgPool,
    /// Linear layer (flattening what comes before), then its activation.
    Linear {
        /// Output width.
        width: usize,
        /// The function after it; ReLU by default.
        activation: Activation,
    },
    /// Inverted dropout with drop probability `p` in `[0, 1)` (training only).
    Dropout {
        /// Drop probability.
        p: f32,
    },
}

/// A network: name, optional input shape and class count, and its layers.
///
/// `input` and `classes` may be left out and taken from the data with [`NetSpec::resolve`];
/// a model can only be built from a spec that has both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "spec_file::RawSpec", into = "spec_file::RawSpec")]
pub struct NetSpec {
    /// Name of the network (also the default run folder name).
    pub name: String,
    /// Input shape `[channels, height, width]`.
    pub input: Option<[usize; 3]>,
    /// Number of classes (outputs of the final linear layer).
    pub classes: Option<usize>,
    /// Hidden layers, in order; the final linear layer is implicit.
    pub layers: Vec<LayerSpec>,
}

/// A builder for [`NetSpec`], the Rust counterpart of a spec file.
///
/// ```
/// let spec = cnn_models::NetSpec::builder("wide5")
///     .conv_k(16, 5)
///     .maxpool()
///     .conv(32)
///     .maxpool()
///     .linear(64)
///     .dropout(0.25)
///     .input([1, 28, 28])
///     .classes(10)
///     .build()?;
/// assert_eq!(spec.num_params()?, 16 * 25 + 16 + 32 * 16 * 9 + 32 + 32 * 7 * 7 * 64 + 64 + 64 * 10 + 10);
/// # Ok::<(), cnn_models::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct NetSpecBuilder {
    spec: NetSpec,
}

impl NetSpecBuilder {
    /// Adds a 3x3 convolution with `channels` outputs.
    pub fn conv(self, channels: usize) -> Self {
        self.conv_k(channels, 3)
    }
    /// Adds a `kernel` x `kernel` same-padded convolution with `channels` outputs.
    pub fn conv_k(self, channels: usize, kernel: usize) -> Self {
        self.layer(LayerSpec::Conv(ConvSpec::new(channels).kernel(kernel)))
    }
    /// Adds a convolution with every option of [`ConvSpec`].
    pub fn conv_with(self, conv: ConvSpec) -> Self {
        self.layer(LayerSpec::Conv(conv))
    }
    /// Adds a 2x2 max-pool.
    pub fn maxpool(self) -> Self {
        self.layer(LayerSpec::MaxPool { size: 2 })
    }
    /// Adds a `size x size` average pool.
    pub fn avgpool(self, size: usize) -> Self {
        self.layer(LayerSpec::AvgPool { size })
    }
    /// Adds a global average pool.
    pub fn global_avgpool(self) -> Self {
        self.layer(LayerSpec::GlobalAvgPool)
    }
    /// Adds a hidden linear layer with ReLU.
    pub fn linear(self, width: usize) -> Self {
        self.layer(LayerSpec::Linear {
            width,
            activation: Activation::Relu,
        })
    }
    /// Adds dropout with drop probability `p`.
    pub fn dropout(self, p: f32) -> Self {
        self.layer(LayerSpec::Dropout { p })
    }
    /// Adds any layer.
    pub fn layer(mut self, layer: LayerSpec) -> Self {
        self.spec.layers.push(layer);
        self
    }
    /// Sets the input shape `[channels, height, width]`.
    pub fn input(mut self, input: [usize; 3]) -> Self {
        self.spec.input = Some(input);
        self
    }
    /// Sets the number of classes.
    pub fn classes(mut self, classes: usize) -> Self {
        self.spec.classes = Some(classes);
        self
    }
    /// The spec as built, unchecked (for presets, which a test checks).
    pub(crate) fn unchecked(self) -> NetSpec {
        self.spec
    }
    /// Checks the spec (every layer, and the shapes when the input is known) and returns it.
    pub fn build(self) -> Result<NetSpec> {
        self.spec.check()?;
        Ok(self.spec)
    }
}

/// One layer of a planned network, for diagrams and summaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// Variable prefix (`conv1`) or a descriptive name for parameter-free layers (`pool1`).
    pub name: String,
    /// What the layer does, e.g. `Conv2d 3x3, pad 1, ReLU`.
    pub kind: String,
    /// Output shape for one image, without the batch dimension.
    pub output_shape: Vec<usize>,
    /// Trainable parameters in this layer.
    pub params: usize,
}

fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
}

impl NetSpec {
    /// A builder for a spec named `name`.
    pub fn builder(name: impl Into<String>) -> NetSpecBuilder {
        NetSpecBuilder {
            spec: NetSpec {
                name: name.into(),
                input: None,
                classes: None,
                layers: Vec::new(),
            },
        }
    }

    /// Parses a spec file's text (see the README for the format). `default_name` is used
    /// when the file has no `name` key (the CLI passes the file's stem).
    pub fn from_toml(text: &str, default_name: &str) -> Result<NetSpec> {
        let mut raw: spec_file::RawSpec = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| {
                1 + text.as_bytes()[..s.start.min(text.len())]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count()
            });
            Error::BadToml {
                line,
                message: e.message().trim().replace('\n', " "),
            }
        })?;
        if raw.name.is_none() {
            raw.name = Some(default_name.to_string());
        }
        let spec = NetSpec::try_from(raw)?;
        spec.check()?;
        Ok(spec)
    }

    /// The spec as a TOML file, in the format [`NetSpec::from_toml`] reads.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(&spec_file::RawSpec::from(self.clone())).map_err(|e| Error::EncodeToml {
            message: e.to_string(),
        })
    }

    /// Checks every layer, and the shapes when the input is known.
    pub fn check(&self) -> Result<()> {
        if !is_valid_name(&self.name) {
            return Err(Error::BadName {
                name: self.name.clone(),
            });
        }
        if self.layers.len() > MAX_LAYERS {
            return Err(Error::TooManyLayers {
                layers: self.layers.len(),
                max: MAX_LAYERS,
            });
        }
        for (i, l) in self.layers.iter().enumerate() {
            check_layer(i + 1, l)?;
        }
        if let Some(input) = self.input {
            self.walk(input, self.classes.unwrap_or(1))?;
        }
        if self.classes == Some(0) {
            return Err(Error::NoClasses);
        }
        Ok(())
    }

    /// This spec with the data's input shape and class count filled in, checking any that
    /// the spec already gives, and every shape.
    pub fn resolve(&self, input: [usize; 3], classes: usize) -> Result<NetSpec> {
        if let Some(want) = self.input
            && want != input
        {
            return Err(Error::InputMismatch {
                name: self.name.clone(),
                spec: want,
                data: input,
            });
        }
        if let Some(want) = self.classes
            && want != classes
        {
            return Err(Error::ClassesMismatch {
                name: self.name.clone(),
                spec: want,
                data: classes,
            });
        }
        let spec = NetSpec {
            input: Some(input),
            classes: Some(classes),
            ..self.clone()
        };
        spec.check()?;
        Ok(spec)
    }

    /// The input shape and class count, or an error if the spec does not give both.
    pub fn shape(&self) -> Result<([usize; 3], usize)> {
        match (self.input, self.classes) {
            (Some(i), Some(c)) => Ok((i, c)),
            _ => Err(Error::Unresolved {
                name: self.name.clone(),
            }),
        }
    }

    pub(crate) fn plan(&self) -> Result<Plan> {
        let (input, classes) = self.shape()?;
        self.walk(input, classes)
    }

    fn walk(&self, input: [usize; 3], classes: usize) -> Result<Plan> {
        if input.contains(&0) || input[1] > MAX_SIDE || input[2] > MAX_SIDE || input[0] > 64 {
            return Err(Error::BadInputShape { input });
        }
        let mut w = Walk::new(input);
        for (i, l) in self.layers.iter().enumerate() {
            let layer = i + 1;
            check_layer(layer, l)?;
            match *l {
                LayerSpec::Conv(c) => w.conv(layer, c)?,
                LayerSpec::MaxPool { size } => w.pool(layer, PoolKind::Max, size)?,
                LayerSpec::AvgPool { size } => w.pool(layer, PoolKind::Avg, size)?,
                LayerSpec::GlobalAvgPool => w.global_pool(layer)?,
                LayerSpec::Linear { width, activation } => w.linear(width, activation),
                LayerSpec::Dropout { p } => w.dropout(p),
            }
            if w.params > MAX_PARAMS {
                return Err(Error::TooManyParams {
                    layer,
                    limit: MAX_PARAMS,
                });
            }
        }
        w.linear(classes.max(1), Activation::None);
        if w.params > MAX_PARAMS {
            return Err(Error::TooManyParams {
                layer: self.layers.len() + 1,
                limit: MAX_PARAMS,
            });
        }
        Ok(Plan {
            stages: w.stages,
            layers: w.layers,
        })
    }

    /// Every layer, in order, with output shapes and parameter counts (input first; a
    /// `flatten` entry before the first linear layer). Needs the input shape and classes.
    pub fn layers(&self) -> Result<Vec<LayerInfo>> {
        Ok(self.plan()?.layers)
    }

    /// Total trainable parameters. Needs the input shape and classes.
    pub fn num_params(&self) -> Result<usize> {
        Ok(self.layers()?.iter().map(|l| l.params).sum())
    }

    /// Values one image occupies on its way through the network: the input and every
    /// layer's output (a convolution's whole map, before its pool). Needs the input shape
    /// and classes. Memory for a batch grows with it, whatever the parameter count.
    pub fn activation_values(&self) -> Result<usize> {
        let size = |l: &LayerInfo| {
            l.output_shape
                .iter()
                .fold(1usize, |a, &b| a.saturating_mul(b))
        };
        // The layers begin with the input; a flatten is a view of the values before it.
        let layers = self.layers()?;
        let held = layers.iter().filter(|l| l.name != "flatten");
        Ok(held.map(size).fold(0, usize::saturating_add))
    }
}

fn check_layer(layer: usize, l: &LayerSpec) -> Result<()> {
    match *l {
        LayerSpec::Conv(c) => check_conv(layer, &c),
        LayerSpec::MaxPool { size } | LayerSpec::AvgPool { size } => {
            if (1..=MAX_SIDE).contains(&size) {
                Ok(())
            } else {
                Err(Error::PoolSize { layer, size })
            }
        }
        LayerSpec::GlobalAvgPool => Ok(()),
        LayerSpec::Linear { width, .. } => check_width(layer, "linear", width, MAX_WIDTH),
        LayerSpec::Dropout { p } => {
            if p.is_finite() && (0.0..1.0).contains(&p) {
                Ok(())
            } else {
                Err(Error::BadDropout { layer, p })
            }
        }
    }
}

fn check_conv(layer: usize, c: &ConvSpec) -> Result<()> {
    let kernel = c.kernel;
    if !(1..=MAX_KERNEL).contains(&kernel) {
        return Err(Error::BadKernel {
            layer,
            kernel,
            max: MAX_KERNEL,
        });
    }
    if c.padding == crate::Padding::Same && kernel.is_multiple_of(2) {
        return Err(Error::SameEvenKernel { layer, kernel });
    }
    if c.stride == 0 || c.stride > MAX_SIDE {
        return Err(Error::BadStride {
            layer,
            stride: c.stride,
        });
    }
    if c.pad() >= kernel {
        return Err(Error::BadPadding {
            layer,
            padding: c.pad(),
            kernel,
        });
    }
    check_width(layer, "conv", c.channels, MAX_CHANNELS)
}

fn check_width(layer: usize, what: &'static str, width: usize, max: usize) -> Result<()> {
    if (1..=max).contains(&width) {
        Ok(())
    } else {
        Err(Error::BadWidth {
            layer,
            what,
            width,
            max,
        })
    }
}
