//! What a user asks of a built network: class names, predictions, kernels and tensors.

use candle_core::{Device, Tensor};

use crate::{Cnn, Error, Result};

/// Images per forward pass in [`Cnn::predict_batch`]: enough to keep the cores busy, few
/// enough that a wide network's activations stay small.
const PREDICT_BATCH: usize = 256;

/// The network's answer for one image.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The most probable class (the first of equals).
    pub class: usize,
    /// Its name (see [`Cnn::class_names`]).
    pub name: String,
    /// Probability of every class, by label (the softmax of the logits; they sum to 1).
    pub probabilities: Vec<f32>,
}

impl Prediction {
    /// Probability of the predicted class.
    pub fn probability(&self) -> f32 {
        self.probabilities.get(self.class).copied().unwrap_or(0.0)
    }

    /// The `k` most probable classes with their probabilities, most probable first (fewer
    /// when there are fewer classes).
    ///
    /// ```
    /// let p = cnn_models::Prediction { class: 2, name: "two".into(), probabilities: vec![0.2, 0.1, 0.7] };
    /// assert_eq!(p.top_k(2), vec![(2, 0.7), (0, 0.2)]);
    /// ```
    pub fn top_k(&self, k: usize) -> Vec<(usize, f32)> {
        let mut ranked: Vec<(usize, f32)> =
            self.probabilities.iter().copied().enumerate().collect();
        // Stable: equal probabilities keep label order.
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        ranked.truncate(k);
        ranked
    }
}

impl Cnn {
    /// Name of each class, by label: numbers (`"0"`, `"1"`, ...) unless set with
    /// [`Cnn::set_class_names`] (a trained or loaded network carries its data's).
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// Names the classes, one name per class.
    pub fn set_class_names<S: Into<String>>(
        &mut self,
        names: impl IntoIterator<Item = S>,
    ) -> Result<()> {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        if names.len() != self.classes() {
            return Err(Error::ClassNames {
                given: names.len(),
                classes: self.classes(),
            });
        }
        self.class_names = names;
        Ok(())
    }

    /// Every parameter and running statistic by its PyTorch-style name (`conv1.weight`,
    /// `bn1.running_mean`, `fc2.bias`, ...), in layer order: what a checkpoint holds.
    pub fn named_tensors(&self) -> &[(String, Tensor)] {
        &self.tensors
    }

    /// The kernels of convolution `i` (0-based), one `C_in x k x k` list of weights per
    /// output channel, as `cnn_plot::kernel_grid` takes them.
    pub fn kernels(&self, i: usize) -> Result<Vec<Vec<f32>>> {
        let w = self.conv_weight(i).ok_or(Error::NoSuchConv {
            index: i,
            convs: self.convs().count(),
        })?;
        Ok(w.flatten_from(1)?.to_vec2::<f32>()?)
    }

    /// Classifies one image of `u8` values (0-255, scaled by 1/255 as in training), laid
    /// out `channels x height x width` as [`Cnn::input_shape`] says. An `image::GrayImage`
    /// of the right size passes as it is (`&gray` derefs to its pixels).
    ///
    /// ```
    /// use cnn_models::{Arch, Cnn, ModelConfig};
    /// use candle_nn::{VarBuilder, VarMap};
    /// let varmap = VarMap::new();
    /// let vb = VarBuilder::from_varmap(&varmap, candle_core::DType::F32, &cnn_models::Device::Cpu);
    /// let model = Cnn::new(&ModelConfig::new(Arch::SmallCnn.mnist_spec()), vb)?;
    /// let p = model.predict(&[0u8; 28 * 28])?;
    /// assert_eq!(p.probabilities.len(), 10);
    /// assert_eq!(p.name, model.class_names()[p.class]);
    /// # Ok::<(), cnn_models::Error>(())
    /// ```
    pub fn predict(&self, image: &[u8]) -> Result<Prediction> {
        let mut all = self.predict_batch(&[image])?;
        Ok(all.remove(0))
    }

    /// Classifies each of `images` (see [`Cnn::predict`]), in batches.
    pub fn predict_batch(&self, images: &[&[u8]]) -> Result<Vec<Prediction>> {
        let per: usize = self.input_shape().iter().product();
        if let Some((index, image)) = images.iter().enumerate().find(|(_, i)| i.len() != per) {
            return Err(Error::ImageLen {
                index,
                len: image.len(),
                expected: self.input_shape(),
            });
        }
        let device = self
            .tensors
            .first()
            .map_or(Device::Cpu, |(_, t)| t.device().clone());
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(PREDICT_BATCH) {
            let values: Vec<f32> = chunk
                .iter()
                .flat_map(|i| i.iter().map(|&p| f32::from(p) / 255.0))
                .collect();
            let [c, h, w] = self.input_shape();
            let x = Tensor::from_vec(values, (chunk.len(), c, h, w), &device)?;
            let logits = self.forward_t(&x, false)?;
            let probs = candle_nn::ops::softmax_last_dim(&logits)?.to_vec2::<f32>()?;
            out.extend(probs.into_iter().map(|p| self.prediction(p)));
        }
        Ok(out)
    }

    fn prediction(&self, probabilities: Vec<f32>) -> Prediction {
        let class = probabilities.iter().enumerate().fold(0, |best, (i, p)| {
            if *p > probabilities[best] { i } else { best }
        });
        Prediction {
            class,
            name: self.class_names.get(class).cloned().unwrap_or_default(),
            probabilities,
        }
    }
}
