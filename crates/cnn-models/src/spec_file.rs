//! The file form of a spec (TOML, and the JSON inside checkpoints): one `[[layer]]` table
//! per layer with exactly one kind key, converted to and from [`NetSpec`] with errors that
//! name the layer.

use serde::{Deserialize, Serialize};

use crate::{Error, LayerSpec, NetSpec, Result};

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
    maxpool: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    linear: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dropout: Option<f32>,
}

impl RawLayer {
    fn into_layer(self, layer: usize) -> Result<LayerSpec> {
        let kinds: Vec<&'static str> = [
            ("conv", self.conv.is_some()),
            ("maxpool", self.maxpool.is_some()),
            ("linear", self.linear.is_some()),
            ("dropout", self.dropout.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, set)| set.then_some(k))
        .collect();
        if kinds.len() != 1 {
            return Err(Error::LayerKind {
                layer,
                found: kinds.join(", "),
            });
        }
        if self.kernel.is_some() && self.conv.is_none() {
            return Err(Error::KernelWithoutConv { layer });
        }
        if let Some(channels) = self.conv {
            let kernel = self.kernel.unwrap_or(3);
            return Ok(LayerSpec::Conv { channels, kernel });
        }
        match (self.maxpool, self.linear, self.dropout) {
            (Some(2), ..) => Ok(LayerSpec::MaxPool),
            (Some(size), ..) => Err(Error::PoolSize { layer, size }),
            (_, Some(width), _) => Ok(LayerSpec::Linear { width }),
            (_, _, Some(p)) => Ok(LayerSpec::Dropout { p }),
            _ => Err(Error::LayerKind {
                layer,
                found: String::new(),
            }),
        }
    }
}

impl From<LayerSpec> for RawLayer {
    fn from(l: LayerSpec) -> Self {
        match l {
            LayerSpec::Conv { channels, kernel } => RawLayer {
                conv: Some(channels),
                kernel: (kernel != 3).then_some(kernel),
                ..Default::default()
            },
            LayerSpec::MaxPool => RawLayer {
                maxpool: Some(2),
                ..Default::default()
            },
            LayerSpec::Linear { width } => RawLayer {
                linear: Some(width),
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
        }
    }
}
