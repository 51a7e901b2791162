//! The two preset networks of the original project, `small_cnn` and `medium_cnn`, as specs.

use crate::{Error, LayerInfo, NetSpec, Result};

/// A preset network. Each is a [`NetSpec`] without input shape or classes, so it fits any
/// single-image dataset; [`Arch::layers`] describes it on MNIST's 1x28x28 digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    /// conv 1→10, pool, conv 10→20, pool, linear 980→10 (11,730 parameters on MNIST).
    SmallCnn,
    /// conv 1→10, pool, conv 10→20, pool, conv 20→40, linear 1960→128, dropout, linear 128→10.
    MediumCnn,
}

/// MNIST's input shape, `[channels, height, width]`.
pub const MNIST_INPUT: [usize; 3] = [1, 28, 28];
/// MNIST's number of classes.
pub const MNIST_CLASSES: usize = 10;

impl Arch {
    /// Both presets.
    pub const ALL: [Arch; 2] = [Arch::SmallCnn, Arch::MediumCnn];

    /// The name used on the command line, in checkpoints and as the spec's name.
    pub fn name(self) -> &'static str {
        match self {
            Arch::SmallCnn => "small_cnn",
            Arch::MediumCnn => "medium_cnn",
        }
    }

    /// The preset's spec (no input shape or classes: they come from the data).
    pub fn spec(self) -> NetSpec {
        let b = NetSpec::builder(self.name())
            .conv(10)
            .maxpool()
            .conv(20)
            .maxpool();
        let b = match self {
            Arch::SmallCnn => b,
            Arch::MediumCnn => b.conv(40).linear(128).dropout(0.5),
        };
        b.unchecked()
    }

    /// The preset resolved for MNIST (1x28x28 inputs, 10 classes).
    pub fn mnist_spec(self) -> NetSpec {
        NetSpec {
            input: Some(MNIST_INPUT),
            classes: Some(MNIST_CLASSES),
            ..self.spec()
        }
    }

    /// Every layer on MNIST, in order, with output shapes and parameter counts.
    pub fn layers(self) -> Vec<LayerInfo> {
        // The presets are valid by construction (a test checks it), so this never falls back.
        self.mnist_spec().layers().unwrap_or_default()
    }

    /// Total trainable parameters on MNIST.
    pub fn num_params(self) -> usize {
        self.layers().iter().map(|l| l.params).sum()
    }

    /// The preset called `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Arch> {
        match name {
            "small_cnn" | "small" => Some(Arch::SmallCnn),
            "medium_cnn" | "medium" => Some(Arch::MediumCnn),
            _ => None,
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Arch {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Arch::from_name(s).ok_or_else(|| Error::UnknownArch(s.to_string()))
    }
}
