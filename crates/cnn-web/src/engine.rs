//! A trained network with what the page shows about it: its kernels, and for each drawing the
//! input it sees, its probabilities and its first-layer feature maps.

use std::path::Path;

use candle_core::{D, Device};
use cnn_data::Split;
use cnn_data::preprocess::{resized, to_mnist};
use cnn_models::{Cnn, LayerSpec};
use image::GrayImage;

use crate::paint::{Panel, diverging_tiles, sequential_tiles};
use crate::{Error, Result};

/// A network loaded from a weights file, ready to analyse drawings.
#[derive(Debug)]
pub struct Engine {
    model: Cnn,
    name: String,
    class_names: Vec<String>,
    kernels: Option<Panel>,
    device: Device,
}

/// What the network makes of one drawing.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// The preprocessed input the network sees, `rows x cols` gray levels (ink white).
    pub input: Vec<u8>,
    /// Rows and columns of [`Analysis::input`].
    pub input_shape: (usize, usize),
    /// One probability per class, summing to 1.
    pub probabilities: Vec<f32>,
    /// The most probable class.
    pub prediction: usize,
    /// First-layer feature maps after the layer's batch norm and activation (as
    /// [`Engine::maps_after`] says) on one shared scale, when the first layer is a
    /// convolution.
    pub maps: Option<Panel>,
}

impl Engine {
    /// Loads a weights file written by `cnn-train` (`final_state.safetensors`, or a
    /// checkpoint) from its bytes; `label` names it in errors.
    pub fn from_bytes(bytes: &[u8], label: &str) -> Result<Self> {
        let device = Device::Cpu;
        let path = Path::new(label);
        let ckpt = cnn_training::checkpoint::decode(bytes, path, &device).map_err(Error::Load)?;
        let model =
            cnn_training::checkpoint::inference_model(&ckpt, path, &device).map_err(Error::Load)?;
        let channels = model.input_shape()[0];
        if channels != 1 {
            return Err(Error::NotGrayscale { channels });
        }
        let (class_names, _) = ckpt.class_names(model.classes());
        let kernels = first_kernels(&model)?;
        Ok(Engine {
            name: model.spec().name.clone(),
            model,
            class_names,
            kernels,
            device,
        })
    }

    /// The network's name (`small_cnn`, or a spec's name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Names of the classes, in order.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// Trainable parameters.
    pub fn parameters(&self) -> usize {
        self.model.layers().iter().map(|l| l.params).sum()
    }

    /// The first-layer kernels on the report's zero-centred diverging scale (one tile per
    /// output channel), when the first layer is a convolution.
    pub fn kernels(&self) -> Option<&Panel> {
        self.kernels.as_ref()
    }

    /// What the first-layer feature maps are taken after, in words for the page: "after
    /// ReLU", "after batch norm and tanh", "straight from the convolution", ...; `None`
    /// when the first layer is not a convolution.
    pub fn maps_after(&self) -> Option<String> {
        let Some(LayerSpec::Conv(c)) = self.model.spec().layers.first() else {
            return None;
        };
        let act = c.activation.label();
        Some(match (c.batchnorm, act.is_empty()) {
            (true, false) => format!("after batch norm and {act}"),
            (true, true) => "after batch norm".to_string(),
            (false, false) => format!("after {act}"),
            (false, true) => "straight from the convolution".to_string(),
        })
    }

    /// Preprocesses `picture` as `cnn-predict` does and runs the network on it; `Ok(None)`
    /// when the picture holds no ink.
    pub fn analyse(&self, picture: &GrayImage) -> Result<Option<Analysis>> {
        let pre = match to_mnist(picture, Path::new("drawing")) {
            Ok(p) => p,
            Err(cnn_data::Error::NoInk { .. }) => return Ok(None),
            Err(e) => return Err(Error::Preprocess(e)),
        };
        let [_, rows, cols] = self.model.input_shape();
        let input = resized(&pre, rows, cols);
        let split = Split::new(input.clone(), vec![0], rows, cols, 1).map_err(Error::Preprocess)?;
        let infer = |e: cnn_models::Error| Error::Inference(e.into());
        let x = cnn_training::batch_tensor(&split, &[0], &self.device).map_err(Error::Inference)?;
        // One pass gives both ends: the first layer's maps and the logits.
        let acts = self.model.activations(&x).map_err(infer)?;
        let (Some(first), Some(logits)) = (acts.first(), acts.last()) else {
            return Err(Error::NoOutput);
        };
        let probs = candle_nn::ops::softmax(logits, D::Minus1).map_err(Error::Tensor)?;
        let probabilities: Vec<f32> = probs
            .flatten_all()
            .and_then(|p| p.to_vec1())
            .map_err(Error::Tensor)?;
        let prediction = probabilities
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i);
        let maps = match self.kernels {
            Some(_) => Some(map_panel(first)?),
            None => None,
        };
        Ok(Some(Analysis {
            input,
            input_shape: (rows, cols),
            probabilities,
            prediction,
            maps,
        }))
    }
}

/// The first layer's kernels as tiles, `None` when the first layer is not a convolution.
fn first_kernels(model: &Cnn) -> Result<Option<Panel>> {
    let first_is_conv = matches!(model.spec().layers.first(), Some(LayerSpec::Conv { .. }));
    let (true, Some(w)) = (first_is_conv, model.conv_weight(0)) else {
        return Ok(None);
    };
    let dims = w.dims().to_vec();
    let values: Vec<f32> = w
        .flatten_all()
        .and_then(|w| w.to_vec1())
        .map_err(Error::Tensor)?;
    Ok(Some(diverging_tiles(&values, dims[0], dims[2], dims[3])))
}

/// `1 x C x H x W` feature maps as `C` tiles on one shared scale.
fn map_panel(maps: &candle_core::Tensor) -> Result<Panel> {
    let dims = maps.dims().to_vec();
    let values: Vec<f32> = maps
        .flatten_all()
        .and_then(|m| m.to_vec1())
        .map_err(Error::Tensor)?;
    Ok(sequential_tiles(&values, dims[1], dims[2], dims[3]))
}
