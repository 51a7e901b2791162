//! Evaluation and prediction with any model: loss, accuracy and class probabilities.

use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::{DType, Device, Tensor};
use candle_nn::ModuleT;
use cnn_data::Split;

use crate::batch::{batch_tensor, label_tensor};
use crate::{Error, Result};

/// Loss and accuracy on a split.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Mean cross-entropy.
    pub loss: f64,
    /// Correctly classified items.
    pub correct: usize,
    /// Items.
    pub total: usize,
}

impl Evaluation {
    /// `correct / total`.
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.total.max(1) as f64
    }
}

/// Images per evaluation batch, at most (wide networks get fewer: [`eval_batch`]).
pub const EVAL_BATCH: usize = 1000;

/// Bytes the activations of one batch may take, training or evaluating. Fixed rather than
/// read from the machine, so that the same spec is accepted or refused everywhere.
pub const ACTIVATION_BUDGET: u64 = 2 << 30;

/// Copies of its activations an evaluation batch holds per image.
const EVAL_COPIES: u64 = 4;

/// Copies of its activations a training step holds per image: the forward values kept for
/// the backward pass, their gradients, and the fused ops' scratch.
pub(crate) const TRAIN_COPIES: u64 = 4;

/// Bytes of one layer's output for a whole evaluation batch, at most: larger buffers come
/// from the allocator as freshly mapped pages, which the kernel zeroes on first touch, every
/// batch (a fifth of LeNet-5's inference time at 1000 images a batch); smaller ones are
/// reused.
pub const EVAL_LAYER_BYTES: u64 = 8 << 20;

/// Images per evaluation batch for `spec`: [`EVAL_BATCH`], or fewer when one layer's output
/// for the batch would take more than [`EVAL_LAYER_BYTES`], or the batch's activations
/// more than [`ACTIVATION_BUDGET`] (a forward pass holds several copies of a layer's
/// activations at once: its input, its output, the loss's softmax and candle's
/// temporaries; four, as measured). The batch size changes no prediction.
///
/// ```
/// let small = cnn_models::Arch::SmallCnn.mnist_spec();
/// assert_eq!(cnn_training::eval_batch(&small), 267); // 10 x 28 x 28 floats an image
/// let wide = cnn_models::NetSpec::builder("wide").conv(1024).conv(1024).input([1, 28, 28]).classes(10).build()?;
/// assert!(cnn_training::eval_batch(&wide) < 10);
/// # Ok::<(), cnn_models::Error>(())
/// ```
pub fn eval_batch(spec: &cnn_models::NetSpec) -> usize {
    let per_image = 4 * EVAL_COPIES * spec.activation_values().unwrap_or(0) as u64;
    let fits = ACTIVATION_BUDGET / per_image.max(1);
    let layers = spec.layers().unwrap_or_default();
    let widest = layers
        .iter()
        .map(|l| l.output_shape.iter().product::<usize>() as u64)
        .max()
        .unwrap_or(1);
    let per_layer = EVAL_LAYER_BYTES / (4 * widest).max(1);
    (fits.min(per_layer) as usize).clamp(1, EVAL_BATCH)
}

fn logits<M: ModuleT + ?Sized>(model: &M, x: &Tensor, classes: usize) -> Result<Tensor> {
    let logits = model.forward_t(x, false)?.detach();
    let outputs = logits.dims().get(1).copied().unwrap_or(0);
    if outputs < classes {
        return Err(Error::TooFewOutputs { outputs, classes });
    }
    Ok(logits)
}

/// Evaluates `model` on all of `split` (no dropout), in batches of [`EVAL_BATCH`] images;
/// [`evaluate_in`] takes another batch size ([`eval_batch`] suits a network of a spec).
pub fn evaluate<M: ModuleT + ?Sized>(
    model: &M,
    split: &Split,
    device: &Device,
) -> Result<Evaluation> {
    evaluate_in(model, split, device, EVAL_BATCH)
}

/// [`evaluate`] in batches of `batch` images.
pub fn evaluate_in<M: ModuleT + ?Sized>(
    model: &M,
    split: &Split,
    device: &Device,
    batch: usize,
) -> Result<Evaluation> {
    let never = AtomicBool::new(false);
    let done = evaluate_unless_stopped(model, split, device, batch, &never)?;
    done.ok_or(Error::EmptySplit("evaluation"))
}

/// [`evaluate`], giving up between batches once `stop` is set (`None` then): a wide
/// network's evaluation can take most of a minute, too long to ignore Ctrl-C.
pub(crate) fn evaluate_unless_stopped<M: ModuleT + ?Sized>(
    model: &M,
    split: &Split,
    device: &Device,
    batch: usize,
    stop: &AtomicBool,
) -> Result<Option<Evaluation>> {
    let mut loss_sum = 0.0f64;
    let mut correct = 0usize;
    let idx: Vec<usize> = (0..split.len()).collect();
    for chunk in idx.chunks(batch.max(1)) {
        if stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let x = batch_tensor(split, chunk, device)?;
        let y = label_tensor(split, chunk, device)?;
        let logits = logits(model, &x, split.classes())?;
        let loss = candle_nn::loss::cross_entropy(&logits, &y)?.to_scalar::<f32>()?;
        loss_sum += f64::from(loss) * chunk.len() as f64;
        let pred = logits.argmax(1)?;
        correct += pred
            .eq(&y)?
            .to_dtype(DType::U32)?
            .sum_all()?
            .to_scalar::<u32>()? as usize;
    }
    Ok(Some(Evaluation {
        loss: loss_sum / split.len().max(1) as f64,
        correct,
        total: split.len(),
    }))
}

/// Class probabilities (softmax of the logits), one row per item of `indices`, for any
/// model ([`Cnn::predict_batch`](cnn_models::Cnn::predict_batch) does the same for a
/// [`Cnn`](cnn_models::Cnn), from pixels).
///
/// ```
/// use cnn_training::prelude::*;
/// let split = Split::new(vec![7; 3 * 5 * 5], vec![0, 1, 1], 5, 5, 2)?;
/// let spec = NetSpec::builder("net").conv(2).build()?;
/// let trainer = Trainer::new(TrainConfig::default(), &spec, &Device::Cpu, &split)?;
/// let probs = cnn_training::predict_proba(trainer.model(), &split, &[0, 2], &Device::Cpu)?;
/// assert_eq!((probs.len(), probs[0].len()), (2, 2));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn predict_proba<M: ModuleT + ?Sized>(
    model: &M,
    split: &Split,
    indices: &[usize],
    device: &Device,
) -> Result<Vec<Vec<f32>>> {
    let x = batch_tensor(split, indices, device)?;
    let probs = candle_nn::ops::softmax_last_dim(&logits(model, &x, split.classes())?)?;
    Ok(probs.to_vec2::<f32>()?)
}
