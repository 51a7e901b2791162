//! The two architectures as data: names, layer list, output shapes and parameter counts.

use crate::Error;

/// Which network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    /// conv 1→10, pool, conv 10→20, pool, linear 980→10 (11,730 parameters).
    SmallCnn,
    /// conv 1→10, pool, conv 10→20, pool, conv 20→40, linear 1960→128, dropout, linear 128→10.
    MediumCnn,
}

/// One layer of an architecture, for diagrams and summaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// Variable prefix (`conv1`) or a descriptive name for parameter-free layers (`pool1`).
    pub name: String,
    /// What the layer does, e.g. `Conv2d 3x3, pad 1`.
    pub kind: String,
    /// Output shape for one image, without the batch dimension.
    pub output_shape: Vec<usize>,
    /// Trainable parameters in this layer.
    pub params: usize,
}

impl Arch {
    /// Both architectures.
    pub const ALL: [Arch; 2] = [Arch::SmallCnn, Arch::MediumCnn];

    /// The name used on the command line and in checkpoints.
    pub fn name(self) -> &'static str {
        match self {
            Arch::SmallCnn => "small_cnn",
            Arch::MediumCnn => "medium_cnn",
        }
    }

    /// Output channels of each 3x3 convolution.
    pub fn conv_channels(self) -> &'static [usize] {
        match self {
            Arch::SmallCnn => &[10, 20],
            Arch::MediumCnn => &[10, 20, 40],
        }
    }

    /// Whether the network ends with a hidden linear layer and dropout.
    pub fn has_hidden(self) -> bool {
        matches!(self, Arch::MediumCnn)
    }

    /// Width of the hidden linear layer of `medium_cnn`.
    pub const HIDDEN: usize = 128;

    /// Length of the flattened features entering the first linear layer.
    pub fn flat_features(self) -> usize {
        let c = *self.conv_channels().last().unwrap_or(&1);
        c * 7 * 7
    }

    /// Every layer, in order, with output shapes and parameter counts.
    pub fn layers(self) -> Vec<LayerInfo> {
        let mut out = vec![LayerInfo {
            name: "input".into(),
            kind: "Input".into(),
            output_shape: vec![1, 28, 28],
            params: 0,
        }];
        let (mut c, mut side) = (1usize, 28usize);
        for (i, &co) in self.conv_channels().iter().enumerate() {
            out.push(LayerInfo {
                name: format!("conv{}", i + 1),
                kind: "Conv2d 3x3, pad 1, ReLU".into(),
                output_shape: vec![co, side, side],
                params: co * c * 9 + co,
            });
            c = co;
            if i < 2 {
                side /= 2;
                out.push(LayerInfo {
                    name: format!("pool{}", i + 1),
                    kind: "MaxPool 2x2".into(),
                    output_shape: vec![c, side, side],
                    params: 0,
                });
            }
        }
        let flat = c * side * side;
        out.push(LayerInfo {
            name: "flatten".into(),
            kind: "Flatten".into(),
            output_shape: vec![flat],
            params: 0,
        });
        if self.has_hidden() {
            out.push(LayerInfo {
                name: "fc1".into(),
                kind: "Linear, ReLU".into(),
                output_shape: vec![Self::HIDDEN],
                params: flat * Self::HIDDEN + Self::HIDDEN,
            });
            out.push(LayerInfo {
                name: "dropout".into(),
                kind: "Dropout 0.5 (training only)".into(),
                output_shape: vec![Self::HIDDEN],
                params: 0,
            });
            out.push(LayerInfo {
                name: "fc2".into(),
                kind: "Linear".into(),
                output_shape: vec![10],
                params: Self::HIDDEN * 10 + 10,
            });
        } else {
            out.push(LayerInfo {
                name: "fc1".into(),
                kind: "Linear".into(),
                output_shape: vec![10],
                params: flat * 10 + 10,
            });
        }
        out
    }

    /// Total trainable parameters.
    pub fn num_params(self) -> usize {
        self.layers().iter().map(|l| l.params).sum()
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Arch {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "small_cnn" | "small" => Ok(Arch::SmallCnn),
            "medium_cnn" | "medium" => Ok(Arch::MediumCnn),
            other => Err(Error::UnknownArch(other.to_string())),
        }
    }
}
