//! The file form of a spec (TOML, and the JSON inside checkpoints): one `[[layer]]` table
//! per layer with exactly one kind key, converted to and from [`NetSpec`] with errors that
//! name the layer.

use serde::{Deserialize, Serialize};

use crate::{Activation, ConvSpec, Error, LayerSpec, NetSpec, Padding, Result};

/// The file form of a spec: one `[[layer]]` table per layer with one kind key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "three_sides"
    )]
    input: Option<[usize; 3]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    classes: Option<usize>,
    #[serde(default, rename = "layer")]
    layers: Vec<RawLayer>,
    /// The training recipe (`[train]`), read by `cnn-training`'s `RecipeChanges`; the
    /// network does not depend on it.
    #[serde(default, skip_serializing)]
    #[allow(dead_code)] // present only so that the key is accepted
    train: Option<serde::de::IgnoredAny>,
}

/// `input` as exactly three positive integers: serde's fixed-size arrays read the first
/// three elements of a longer TOML array and ignore the rest.
fn three_sides<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<[usize; 3]>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Side {
        Count(usize),
        Other(serde::de::IgnoredAny),
    }
    let sides: Vec<Side> = Vec::deserialize(d)?;
    let counts: Vec<usize> = sides
        .iter()
        .filter_map(|s| match s {
            Side::Count(n) if *n > 0 => Some(*n),
            _ => None,
        })
        .collect();
    match <[usize; 3]>::try_from(counts.as_slice()) {
        Ok(shape) if sides.len() == 3 => Ok(Some(shape)),
        _ => Err(serde::de::Error::custom(format!(
            "`input` must be exactly three positive integers [channels, height, width], not {} element(s)",
            sides.len()
        ))),
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLayer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    conv: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kernel: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stride: Option<usize>,
    /// `"same"`, `"valid"` or pixels: read as any value so that a wrong one gets our message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    padding: Option<toml::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    batchnorm: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    activation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    maxpool: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    avgpool: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    globalavgpool: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    linear: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dropout: Option<f32>,
}

fn padding(layer: usize, v: &toml::Value) -> Result<Padding> {
    match v {
        toml::Value::String(s) if s == "same" => Ok(Padding::Same),
        toml::Value::String(s) if s == "valid" => Ok(Padding::Valid),
        toml::Value::Integer(p) if *p >= 0 => Ok(Padding::Pixels(*p as usize)),
        other => Err(Error::PaddingValue {
            layer,
            value: other.to_string(),
        }),
    }
}

impl RawLayer {
    fn kind(&self, layer: usize) -> Result<&'static str> {
        let kinds: Vec<&'static str> = [
            ("conv", self.conv.is_some()),
            ("maxpool", self.maxpool.is_some()),
            ("avgpool", self.avgpool.is_some()),
            ("globalavgpool", self.globalavgpool.is_some()),
            ("linear", self.linear.is_some()),
            ("dropout", self.dropout.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, set)| set.then_some(k))
        .collect();
        match kinds[..] {
            [one] => Ok(one),
            _ => Err(Error::LayerKind {
                layer,
                found: kinds.join(", "),
            }),
        }
    }

    /// Refuses the option keys that `kind` does not take.
    fn check_keys(&self, layer: usize, kind: &str) -> Result<()> {
        let conv_only = [
            ("kernel", self.kernel.is_some()),
            ("stride", self.stride.is_some()),
            ("padding", self.padding.is_some()),
            ("batchnorm", self.batchnorm.is_some()),
        ];
        for (key, set) in conv_only {
            if set && kind != "conv" {
                let allowed = "conv";
                return Err(Error::KeyOnWrongLayer {
                    layer,
                    key,
                    allowed,
                });
            }
        }
        if self.activation.is_some() && kind != "conv" && kind != "linear" {
            let (key, allowed) = ("activation", "conv or linear");
            return Err(Error::KeyOnWrongLayer {
                layer,
                key,
                allowed,
            });
        }
        for (key, v) in [
            ("batchnorm", self.batchnorm),
            ("globalavgpool", self.globalavgpool),
        ] {
            if v == Some(false) {
                return Err(Error::FalseKind { layer, key });
            }
        }
        Ok(())
    }

    fn activation(&self, layer: usize) -> Result<Activation> {
        match &self.activation {
            None => Ok(Activation::Relu),
            Some(name) => Activation::from_name(name).ok_or_else(|| Error::UnknownActivation {
                layer,
                value: name.clone(),
            }),
        }
    }

    fn into_layer(self, layer: usize) -> Result<LayerSpec> {
        let kind = self.kind(layer)?;
        self.check_keys(layer, kind)?;
        let activation = self.activation(layer)?;
        Ok(match (kind, self) {
            ("conv", l) => LayerSpec::Conv(ConvSpec {
                channels: l.conv.unwrap_or_default(),
                kernel: l.kernel.unwrap_or(3),
                stride: l.stride.unwrap_or(1),
                padding: l
                    .padding
                    .as_ref()
                    .map_or(Ok(Padding::Same), |v| padding(layer, v))?,
                activation,
                batchnorm: l.batchnorm.unwrap_or(false),
            }),
            ("maxpool", l) => LayerSpec::MaxPool {
                size: l.maxpool.unwrap_or_default(),
            },
            ("avgpool", l) => LayerSpec::AvgPool {
                size: l.avgpool.unwrap_or_default(),
            },
            ("globalavgpool", _) => LayerSpec::GlobalAvgPool,
            ("linear", l) => LayerSpec::Linear {
                width: l.linear.unwrap_or_default(),
                activation,
            },
            (_, l) => LayerSpec::Dropout {
                p: l.dropout.unwrap_or_default(),
            },
        })
    }
}

/// The activation key, left out when it is the default.
fn activation_key(a: Activation) -> Option<String> {
    (a != Activation::Relu).then(|| a.name().to_string())
}

impl From<LayerSpec> for RawLayer {
    /// Only keys that differ from their defaults, so that a spec written before a key
    /// existed serialises (into checkpoints too) exactly as it did.
    fn from(l: LayerSpec) -> Self {
        match l {
            LayerSpec::Conv(c) => RawLayer {
                conv: Some(c.channels),
                kernel: (c.kernel != 3).then_some(c.kernel),
                stride: (c.stride != 1).then_some(c.stride),
                padding: match c.padding {
                    Padding::Same => None,
                    Padding::Valid => Some(toml::Value::String("valid".into())),
                    Padding::Pixels(p) => Some(toml::Value::Integer(p as i64)),
                },
                batchnorm: c.batchnorm.then_some(true),
                activation: activation_key(c.activation),
                ..Default::default()
            },
            LayerSpec::MaxPool { size } => RawLayer {
                maxpool: Some(size),
                ..Default::default()
            },
            LayerSpec::AvgPool { size } => RawLayer {
                avgpool: Some(size),
                ..Default::default()
            },
            LayerSpec::GlobalAvgPool => RawLayer {
                globalavgpool: Some(true),
                ..Default::default()
            },
            LayerSpec::Linear { width, activation } => RawLayer {
                linear: Some(width),
                activation: activation_key(activation),
                ..Default::default()
            },
            LayerSpec::Dropout { p } => RawLayer {
                dropout: Some(p),
                ..Default::default()
            },
        }
    }
}

impl TryFrom<RawSpec> for NetSpec {
    type Error = Error;
    fn try_from(raw: RawSpec) -> Result<Self> {
        let layers = raw
            .layers
            .into_iter()
            .enumerate()
            .map(|(i, l)| l.into_layer(i + 1))
            .collect::<Result<_>>()?;
        Ok(NetSpec {
            name: raw.name.ok_or(Error::NoName)?,
            input: raw.input,
            classes: raw.classes,
            layers,
        })
    }
}

impl From<NetSpec> for RawSpec {
    fn from(s: NetSpec) -> Self {
        RawSpec {
            name: Some(s.name),
            input: s.input,
            classes: s.classes,
            layers: s.layers.into_iter().map(RawLayer::from).collect(),
            train: None,
        }
    }
}
