//! Training and evaluation of the `cnn-models` networks: seeded SGD, metrics and artifacts.
//!
//! The [`Trainer`] owns the variables, the optimizer, the random generator and the history;
//! [`run`] drives it epoch by epoch and writes the run's artifacts after every epoch:
//! `history.csv`, `final_state.safetensors` (weights and configuration) and
//! `checkpoint.safetensors` (everything needed to continue). Progress is reported through a
//! callback; this crate prints nothing.
#![deny(missing_docs)]

pub mod checkpoint;
mod history;
mod optim;
pub mod rng;
mod schedule;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use cnn_data::{Dataset, IMAGE_SIDE, Split};
use cnn_models::{Arch, Cnn, ModelConfig, OpsPath};
use serde::{Deserialize, Serialize};

pub use checkpoint::load_model;
pub use history::{EpochMetrics, HISTORY_HEADER, history_csv, parse_history_csv};
pub use optim::{Sgd, Slot};
pub use rng::Rng;
pub use schedule::lr_at;

/// Errors from training, evaluation and checkpoint files.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// Building or running the model failed.
    #[error(transparent)]
    Model(#[from] cnn_models::Error),
    /// A configuration value is out of range; `flag` is its command-line name.
    #[error("invalid --{flag} {value}: {reason}")]
    InvalidConfig {
        /// Command-line name of the setting.
        flag: &'static str,
        /// The value given.
        value: String,
        /// What is allowed.
        reason: &'static str,
    },
    /// The loss stopped being finite.
    #[error(
        "training diverged: the loss became {loss} at epoch {epoch}, batch {batch} (learning rate {lr:.4}); \
         try a lower --lr (e.g. --lr {suggest}); the last good checkpoint is kept"
    )]
    Diverged {
        /// 1-based epoch.
        epoch: usize,
        /// 1-based batch within the epoch.
        batch: usize,
        /// The loss value (NaN or infinite).
        loss: f32,
        /// Learning rate at that step.
        lr: f64,
        /// A suggested lower peak learning rate.
        suggest: f64,
    },
    /// Writing an artifact failed.
    #[error("cannot write {path}: {error}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The underlying error (shown in the message, so not chained as a source).
        error: std::io::Error,
    },
    /// A checkpoint could not be read.
    #[error("cannot read checkpoint {path}: {error}")]
    ReadCheckpoint {
        /// The file.
        path: PathBuf,
        /// The underlying error (shown in the message, so not chained as a source).
        error: std::io::Error,
    },
    /// A checkpoint is malformed.
    #[error("{path} is not a usable checkpoint: {reason}")]
    BadCheckpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A checkpoint holds another architecture than the one asked for.
    #[error("{path} holds a {found} model, not {expected} (pass --model {found})")]
    WrongModel {
        /// The file.
        path: PathBuf,
        /// Architecture in the file.
        found: Arch,
        /// Architecture asked for.
        expected: Arch,
    },
    /// Serialising a checkpoint failed.
    #[error("cannot encode checkpoint: {0}")]
    Encode(String),
    /// The training or test split is empty.
    #[error("the {0} split is empty")]
    EmptySplit(&'static str),
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, Error>;

mod arch_name {
    //! Serialises an [`Arch`](cnn_models::Arch) as its name.
    use cnn_models::Arch;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(arch: &Arch, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(arch.name())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arch, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(D::Error::custom)
    }
}

fn default_dataset() -> String {
    "mnist".into()
}

/// The training recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Architecture.
    #[serde(with = "arch_name")]
    pub arch: Arch,
    /// Passes over the training set.
    pub epochs: usize,
    /// Images per SGD step.
    pub batch_size: usize,
    /// Peak learning rate (reached after warm-up, then cosine-annealed to zero).
    pub lr: f64,
    /// Momentum μ in `v = μv + (1-μ)g`; 0 is plain SGD.
    pub momentum: f64,
    /// L2 regularisation λ as in the original project and Nielsen's book: the loss gains
    /// `λ/(2n)·Σw²` over weights (not biases), `n` the number of training images; that is a
    /// weight decay of `λ/n` (λ = 6 on MNIST is 1e-4).
    pub l2: f64,
    /// Seed of initialisation, shuffling, augmentation and dropout.
    pub seed: u64,
    /// Epochs of linear learning-rate warm-up (may be fractional).
    pub warmup_epochs: f64,
    /// Random translation of each training image by up to this many pixels (0 disables).
    pub shift: usize,
    /// Dataset name (`mnist` or `fashion`), recorded so a checkpoint knows its class names.
    #[serde(default = "default_dataset")]
    pub dataset: String,
    /// Layer implementation (not saved: it does not change the function computed).
    #[serde(skip)]
    pub ops: OpsPath,
}

impl TrainConfig {
    /// The project's default recipe for `arch`.
    pub fn default_for(arch: Arch) -> Self {
        Self {
            arch,
            epochs: 15,
            batch_size: 64,
            lr: 0.5,
            momentum: 0.9,
            l2: 6.0,
            seed: 0,
            warmup_epochs: 1.0,
            shift: 0,
            dataset: default_dataset(),
            ops: OpsPath::default(),
        }
    }

    /// Checks every value; the error names the command-line flag.
    pub fn validate(&self) -> Result<()> {
        fn bad(flag: &'static str, value: impl ToString, reason: &'static str) -> Result<()> {
            Err(Error::InvalidConfig {
                flag,
                value: value.to_string(),
                reason,
            })
        }
        if !(1..=100_000).contains(&self.epochs) {
            return bad("epochs", self.epochs, "must be between 1 and 100000");
        }
        if !(1..=60_000).contains(&self.batch_size) {
            return bad("batch-size", self.batch_size, "must be between 1 and 60000");
        }
        // Shown as the user would type them: 1e300, not three hundred digits.
        let num = |v: f64| {
            if v.is_finite() && v != 0.0 && !(1e-4..1e6).contains(&v.abs()) {
                format!("{v:e}")
            } else {
                v.to_string()
            }
        };
        if !(self.lr.is_finite() && self.lr > 0.0 && self.lr <= 100.0) {
            return bad("lr", num(self.lr), "must be a number in (0, 100]");
        }
        if !(self.momentum.is_finite() && (0.0..1.0).contains(&self.momentum)) {
            return bad("momentum", num(self.momentum), "must be in [0, 1)");
        }
        if !(self.l2.is_finite() && (0.0..=1e6).contains(&self.l2)) {
            return bad("l2", num(self.l2), "must be a number in [0, 1e6]");
        }
        if !(self.warmup_epochs.is_finite() && (0.0..=1e5).contains(&self.warmup_epochs)) {
            return bad(
                "warmup-epochs",
                num(self.warmup_epochs),
                "must be a number in [0, 1e5]",
            );
        }
        if self.shift > 8 {
            return bad("shift", self.shift, "must be between 0 and 8 pixels");
        }
        Ok(())
    }
}

/// Progress inside an epoch, reported after every batch.
#[derive(Debug, Clone)]
pub struct BatchProgress {
    /// 1-based epoch.
    pub epoch: usize,
    /// Batches done in this epoch.
    pub batch: usize,
    /// Batches in the epoch.
    pub batches: usize,
    /// Loss of this batch.
    pub loss: f32,
    /// Training images per second so far in this epoch.
    pub images_per_sec: f64,
}

/// What [`run`] reports.
#[derive(Debug, Clone)]
pub enum Event {
    /// An epoch starts (1-based), with its number of batches.
    EpochStart {
        /// The epoch.
        epoch: usize,
        /// Batches in it.
        batches: usize,
    },
    /// A batch finished.
    Batch(BatchProgress),
    /// An epoch finished and its artifacts are written.
    EpochEnd(EpochMetrics),
}

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

/// Images per evaluation batch.
pub const EVAL_BATCH: usize = 1000;

/// Builds an `N x 1 x 28 x 28` tensor of items `indices`, in `[0, 1]`.
pub fn batch_tensor(split: &Split, indices: &[usize], device: &Device) -> Result<Tensor> {
    let mut buf = Vec::new();
    split.fill_batch(indices, &mut buf);
    Ok(Tensor::from_vec(
        buf,
        (indices.len(), 1, IMAGE_SIDE, IMAGE_SIDE),
        device,
    )?)
}

/// Labels of items `indices`, as a `u32` tensor.
pub fn label_tensor(split: &Split, indices: &[usize], device: &Device) -> Result<Tensor> {
    let labels: Vec<u32> = indices.iter().map(|&i| u32::from(split.label(i))).collect();
    Ok(Tensor::from_vec(labels, indices.len(), device)?)
}

/// Evaluates `model` on all of `split` (no dropout), in batches of [`EVAL_BATCH`].
pub fn evaluate(model: &Cnn, split: &Split, device: &Device) -> Result<Evaluation> {
    let mut loss_sum = 0.0f64;
    let mut correct = 0usize;
    let idx: Vec<usize> = (0..split.len()).collect();
    for chunk in idx.chunks(EVAL_BATCH) {
        let x = batch_tensor(split, chunk, device)?;
        let y = label_tensor(split, chunk, device)?;
        let logits = model.forward_t(&x, false)?.detach();
        let loss = candle_nn::loss::cross_entropy(&logits, &y)?.to_scalar::<f32>()?;
        loss_sum += f64::from(loss) * chunk.len() as f64;
        let pred = logits.argmax(1)?;
        correct += pred
            .eq(&y)?
            .to_dtype(DType::U32)?
            .sum_all()?
            .to_scalar::<u32>()? as usize;
    }
    Ok(Evaluation {
        loss: loss_sum / split.len().max(1) as f64,
        correct,
        total: split.len(),
    })
}

/// Class probabilities (`N x 10`, softmax of the logits) for items `indices`.
pub fn predict_proba(
    model: &Cnn,
    split: &Split,
    indices: &[usize],
    device: &Device,
) -> Result<Vec<[f32; 10]>> {
    let x = batch_tensor(split, indices, device)?;
    let probs = candle_nn::ops::softmax_last_dim(&model.forward_t(&x, false)?.detach())?;
    let rows = probs.to_vec2::<f32>()?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let mut a = [0f32; 10];
            for (d, s) in a.iter_mut().zip(r) {
                *d = s;
            }
            a
        })
        .collect())
}

/// Class probabilities for 28x28 images given as raw `u8` pixels (0 background, 255 ink).
pub fn predict_pixels(model: &Cnn, images: &[Vec<u8>], device: &Device) -> Result<Vec<[f32; 10]>> {
    let labels = vec![0u8; images.len()];
    let pixels: Vec<u8> = images.iter().flat_map(|i| i.iter().copied()).collect();
    let split = Split::from_raw(pixels, labels).ok_or(Error::EmptySplit("prediction"))?;
    let idx: Vec<usize> = (0..images.len()).collect();
    predict_proba(model, &split, &idx, device)
}

/// Copies image `src` into `dst` translated by `(dx, dy)`, filling uncovered pixels with 0.
fn shift_image(src: &[u8], dst: &mut [u8], dx: isize, dy: isize) {
    let side = IMAGE_SIDE as isize;
    for y in 0..side {
        for x in 0..side {
            let (sx, sy) = (x - dx, y - dy);
            dst[(y * side + x) as usize] = if (0..side).contains(&sx) && (0..side).contains(&sy) {
                src[(sy * side + sx) as usize]
            } else {
                0
            };
        }
    }
}

/// A training run in progress: model, variables, optimizer, generator and history.
pub struct Trainer {
    cfg: TrainConfig,
    device: Device,
    varmap: VarMap,
    model: Cnn,
    opt: Sgd,
    rng: Rng,
    n_train: usize,
    step: usize,
    history: Vec<EpochMetrics>,
}

impl Trainer {
    /// A fresh run for `n_train` training images, initialised from `cfg.seed`.
    ///
    /// Weights and biases are drawn uniformly from `±1/sqrt(fan_in)` (PyTorch's default for
    /// these layers) by our own seeded generator, because candle's CPU generator cannot be
    /// seeded.
    pub fn new(cfg: TrainConfig, device: &Device, n_train: usize) -> Result<Self> {
        cfg.validate()?;
        if n_train == 0 {
            return Err(Error::EmptySplit("training"));
        }
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let mcfg = ModelConfig {
            arch: cfg.arch,
            dropout_seed: cfg.seed ^ 0xD50_D50,
            ops: cfg.ops,
        };
        let model = Cnn::new(&mcfg, vb)?;
        let mut rng = Rng::new(cfg.seed);
        let mut vars: Vec<(String, candle_core::Var)> = {
            let data = varmap
                .data()
                .lock()
                .map_err(|_| Error::Encode("variable map lock poisoned".into()))?;
            data.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, var) in &vars {
            let dims = var.dims().to_vec();
            // fan_in is the same for a layer's weight and bias: take it from the weight.
            let weight_dims = if name.ends_with("bias") {
                let wname = name.replace("bias", "weight");
                vars.iter()
                    .find(|(n, _)| *n == wname)
                    .map(|(_, v)| v.dims().to_vec())
                    .unwrap_or_else(|| dims.clone())
            } else {
                dims.clone()
            };
            let fan_in: usize = weight_dims[1..].iter().product::<usize>().max(1);
            let bound = 1.0 / (fan_in as f32).sqrt();
            let n: usize = dims.iter().product();
            let values: Vec<f32> = (0..n).map(|_| rng.uniform(-bound, bound)).collect();
            var.set(&Tensor::from_vec(values, dims, device)?)?;
        }
        let weight_decay = cfg.l2 / n_train as f64;
        let opt = Sgd::new(vars, cfg.momentum, weight_decay)?;
        Ok(Self {
            cfg,
            device: device.clone(),
            varmap,
            model,
            opt,
            rng,
            n_train,
            step: 0,
            history: Vec::new(),
        })
    }

    /// Continues a run from its `checkpoint.safetensors`: weights, momentum buffers, step,
    /// generator state, dropout counter and history are restored, so the rest of the run is
    /// bit-for-bit the one that was interrupted (same thread count, same device).
    ///
    /// `n_train` must be the number of training images the run was started with.
    pub fn resume(path: &Path, device: &Device, n_train: usize) -> Result<Self> {
        Self::from_checkpoint(&checkpoint::read(path, device)?, path, device, n_train)
    }

    /// Continues a run from a decoded checkpoint, as [`Trainer::resume`] does from a file;
    /// `path` is only used in errors.
    pub fn from_checkpoint(
        ckpt: &checkpoint::RawCheckpoint,
        path: &Path,
        device: &Device,
        n_train: usize,
    ) -> Result<Self> {
        let bad = |reason: String| Error::BadCheckpoint {
            path: path.to_path_buf(),
            reason,
        };
        let meta = |key: &str| {
            ckpt.metadata
                .get(key)
                .ok_or_else(|| bad(format!("metadata has no {key} (not a full checkpoint?)")))
        };
        let num = |key: &str| -> Result<u64> {
            meta(key)?
                .parse()
                .map_err(|_| bad(format!("metadata {key} is not a number")))
        };
        let cfg: TrainConfig =
            serde_json::from_str(meta("config")?).map_err(|e| bad(format!("bad config ({e})")))?;
        let saved_n = num("n_train")? as usize;
        if saved_n != n_train {
            return Err(bad(format!(
                "the run was trained on {saved_n} images, not {n_train} (use the same --train-limit and data)"
            )));
        }
        let mut t = Trainer::new(cfg, device, n_train)?;
        checkpoint::restore_weights(&t.varmap, ckpt, path)?;
        let slots: Vec<(String, Vec<usize>)> = t
            .opt
            .slots()
            .iter()
            .map(|s| (s.name.clone(), s.var.dims().to_vec()))
            .collect();
        for (name, dims) in slots {
            let v = ckpt
                .tensors
                .get(&format!("optim.velocity.{name}"))
                .ok_or_else(|| bad(format!("momentum buffer of {name} is missing")))?;
            if v.dims() != dims.as_slice() {
                return Err(bad(format!(
                    "momentum buffer of {name} has shape {:?}, the model expects {dims:?}",
                    v.dims()
                )));
            }
            t.opt.set_velocity(&name, v)?;
        }
        t.step = num("step")? as usize;
        t.rng = Rng::new(num("rng_state")?);
        t.model.dropout().set_calls(num("dropout_calls")?);
        let test_total = ckpt
            .metadata
            .get("test_total")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        t.history = parse_history_csv(meta("history")?, test_total)
            .ok_or_else(|| bad("malformed history".into()))?;
        if t.step != t.history.len() * t.batches_per_epoch() {
            return Err(bad("step count does not match the epochs done".into()));
        }
        Ok(t)
    }

    /// The recipe.
    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    /// The model being trained.
    pub fn model(&self) -> &Cnn {
        &self.model
    }

    /// The optimizer (variables and momentum buffers).
    pub fn optimizer(&self) -> &Sgd {
        &self.opt
    }

    /// The variables, by name.
    pub fn varmap(&self) -> &VarMap {
        &self.varmap
    }

    /// Metrics of the epochs done so far.
    pub fn history(&self) -> &[EpochMetrics] {
        &self.history
    }

    /// Epochs completed.
    pub fn epochs_done(&self) -> usize {
        self.history.len()
    }

    /// Batches per epoch (the last one may be smaller).
    pub fn batches_per_epoch(&self) -> usize {
        self.n_train.div_ceil(self.cfg.batch_size)
    }

    fn total_steps(&self) -> usize {
        self.batches_per_epoch() * self.cfg.epochs
    }

    fn warmup_steps(&self) -> usize {
        (self.cfg.warmup_epochs * self.batches_per_epoch() as f64).round() as usize
    }

    /// Learning rate of the next step.
    pub fn current_lr(&self) -> f64 {
        lr_at(
            self.step,
            self.total_steps(),
            self.warmup_steps(),
            self.cfg.lr,
        )
    }

    /// One SGD step on the given batch; returns the batch loss (before the step).
    pub fn step(&mut self, x: &Tensor, y: &Tensor) -> Result<f32> {
        let lr = self.current_lr();
        let logits = self.model.forward_t(x, true)?;
        let loss = candle_nn::loss::cross_entropy(&logits, y)?;
        let value = loss.to_scalar::<f32>()?;
        if !value.is_finite() {
            let suggest = (self.cfg.lr / 4.0 * 1e4).round() / 1e4;
            return Err(Error::Diverged {
                epoch: self.history.len() + 1,
                batch: self.step % self.batches_per_epoch() + 1,
                loss: value,
                lr,
                suggest,
            });
        }
        self.opt.backward_step(&loss, lr)?;
        self.step += 1;
        Ok(value)
    }

    /// Builds the next training batch from `indices`, with random shifts if configured.
    fn train_batch(&mut self, split: &Split, indices: &[usize]) -> Result<Tensor> {
        if self.cfg.shift == 0 {
            return batch_tensor(split, indices, &self.device);
        }
        let s = self.cfg.shift as u64;
        let mut pixels = vec![0u8; indices.len() * cnn_data::IMAGE_PIXELS];
        for (k, &i) in indices.iter().enumerate() {
            let dx = self.rng.below(2 * s + 1) as isize - s as isize;
            let dy = self.rng.below(2 * s + 1) as isize - s as isize;
            let dst = &mut pixels[k * cnn_data::IMAGE_PIXELS..(k + 1) * cnn_data::IMAGE_PIXELS];
            shift_image(split.image(i), dst, dx, dy);
        }
        let values: Vec<f32> = pixels.iter().map(|&p| f32::from(p) / 255.0).collect();
        Ok(Tensor::from_vec(
            values,
            (indices.len(), 1, IMAGE_SIDE, IMAGE_SIDE),
            &self.device,
        )?)
    }

    /// Trains one epoch on `data.train`, then evaluates on `data.test`.
    ///
    /// `stop` is polled between batches; when set, the epoch ends early and `Ok(None)` is
    /// returned with the model left at the last completed step.
    pub fn train_epoch(
        &mut self,
        data: &Dataset,
        stop: &AtomicBool,
        on_event: &mut dyn FnMut(&Event),
    ) -> Result<Option<EpochMetrics>> {
        let train = &data.train;
        if train.len() != self.n_train {
            return Err(Error::EmptySplit("training"));
        }
        if data.test.is_empty() {
            return Err(Error::EmptySplit("test"));
        }
        let epoch = self.history.len() + 1;
        let mut order: Vec<usize> = (0..train.len()).collect();
        self.rng.shuffle(&mut order);
        let batches = self.batches_per_epoch();
        on_event(&Event::EpochStart { epoch, batches });
        let start = Instant::now();
        let mut loss_sum = 0.0f64;
        let mut seen = 0usize;
        let mut lr = self.current_lr();
        for (b, idx) in order.chunks(self.cfg.batch_size).enumerate() {
            if stop.load(Ordering::Relaxed) {
                return Ok(None);
            }
            let x = self.train_batch(train, idx)?;
            let y = label_tensor(train, idx, &self.device)?;
            lr = self.current_lr();
            let loss = self.step(&x, &y)?;
            loss_sum += f64::from(loss) * idx.len() as f64;
            seen += idx.len();
            on_event(&Event::Batch(BatchProgress {
                epoch,
                batch: b + 1,
                batches,
                loss,
                images_per_sec: seen as f64 / start.elapsed().as_secs_f64().max(1e-9),
            }));
        }
        let train_seconds = start.elapsed().as_secs_f64();
        let eval_start = Instant::now();
        let test = evaluate(&self.model, &data.test, &self.device)?;
        let metrics = EpochMetrics {
            epoch,
            train_loss: loss_sum / seen.max(1) as f64,
            test_loss: test.loss,
            test_accuracy: test.accuracy(),
            test_correct: test.correct,
            test_total: test.total,
            learning_rate: lr,
            train_seconds,
            eval_seconds: eval_start.elapsed().as_secs_f64(),
        };
        self.history.push(metrics.clone());
        Ok(Some(metrics))
    }

    fn metadata(&self) -> Result<HashMap<String, String>> {
        let mut m = HashMap::new();
        m.insert("model".into(), self.cfg.arch.name().into());
        m.insert(
            "config".into(),
            serde_json::to_string(&self.cfg).map_err(|e| Error::Encode(e.to_string()))?,
        );
        m.insert("epoch".into(), self.history.len().to_string());
        m.insert("dataset".into(), self.cfg.dataset.clone());
        if let Some(last) = self.history.last() {
            m.insert("test_accuracy".into(), format!("{:.6}", last.test_accuracy));
        }
        Ok(m)
    }

    fn weights(&self) -> Vec<(String, Tensor)> {
        self.opt
            .slots()
            .iter()
            .map(|s| (s.name.clone(), s.var.as_tensor().clone()))
            .collect()
    }

    /// Writes `history.csv`, `final_state.safetensors` and `checkpoint.safetensors` into `dir`,
    /// each atomically.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|error| Error::Write {
            path: dir.to_path_buf(),
            error,
        })?;
        let meta = self.metadata()?;
        let weights = self.weights();
        let mut full = weights.clone();
        for s in self.opt.slots() {
            full.push((format!("optim.velocity.{}", s.name), s.velocity.clone()));
        }
        let mut full_meta = meta.clone();
        full_meta.insert("step".into(), self.step.to_string());
        full_meta.insert("rng_state".into(), self.rng.state().to_string());
        full_meta.insert(
            "dropout_calls".into(),
            self.model.dropout().calls().to_string(),
        );
        full_meta.insert("n_train".into(), self.n_train.to_string());
        full_meta.insert("history".into(), history_csv(&self.history));
        if let Some(last) = self.history.last() {
            full_meta.insert("test_total".into(), last.test_total.to_string());
        }
        checkpoint::write_atomic(
            &dir.join(CHECKPOINT_FILE),
            &checkpoint::encode(&full, full_meta)?,
        )?;
        checkpoint::write_atomic(
            &dir.join(FINAL_STATE_FILE),
            &checkpoint::encode(&weights, meta)?,
        )?;
        checkpoint::write_atomic(
            &dir.join(HISTORY_FILE),
            history_csv(&self.history).as_bytes(),
        )?;
        Ok(())
    }
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("cfg", &self.cfg)
            .field("step", &self.step)
            .field("epochs_done", &self.history.len())
            .finish_non_exhaustive()
    }
}

/// Weights and configuration of the latest epoch.
pub const FINAL_STATE_FILE: &str = "final_state.safetensors";
/// Everything needed to continue the run.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
/// Per-epoch metrics.
pub const HISTORY_FILE: &str = "history.csv";

/// How a [`run`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// All epochs done.
    Finished,
    /// `stop` was set; artifacts of the last completed epoch are on disk.
    Interrupted,
}

/// Trains until `trainer`'s configured number of epochs, saving artifacts to `out` after each.
///
/// On divergence the artifacts of the last good epoch stay on disk and the error says so.
pub fn run(
    trainer: &mut Trainer,
    data: &Dataset,
    out: &Path,
    stop: &AtomicBool,
    on_event: &mut dyn FnMut(&Event),
) -> Result<RunOutcome> {
    // A run killed while writing leaves a temporary file beside the intact previous one.
    checkpoint::remove_stale_temps(out, &[CHECKPOINT_FILE, FINAL_STATE_FILE, HISTORY_FILE]);
    while trainer.epochs_done() < trainer.config().epochs {
        match trainer.train_epoch(data, stop, on_event)? {
            Some(metrics) => {
                trainer.save(out)?;
                on_event(&Event::EpochEnd(metrics));
            }
            None => return Ok(RunOutcome::Interrupted),
        }
    }
    Ok(RunOutcome::Finished)
}
