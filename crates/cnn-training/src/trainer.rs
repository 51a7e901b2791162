//! The trainer: variables, seeded initialisation, optimizer, schedule, one epoch at a time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use cnn_data::{Dataset, Split};
use cnn_models::{Cnn, NetSpec};

use crate::augment::affine_batch;
use crate::batch::{batch_tensor, label_tensor, shifted_batch};
use crate::eval::evaluate_unless_stopped;
use crate::{EpochMetrics, Error, Model, Optimizer, Result, Rng, TrainConfig, lr_at};

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

/// What training reports.
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
    /// An epoch finished (and, in [`crate::run`], its artifacts are written).
    EpochEnd(EpochMetrics),
}

/// A training run in progress: model, variables, optimizer, generator and history.
///
/// `M` is the network: a [`Cnn`] built from a [`NetSpec`] ([`Trainer::new`]), or any
/// [`Model`] of your own ([`Trainer::with_model`]). Nothing is written to disk unless
/// [`Trainer::save`] (or [`crate::run`] with an output folder) is called.
///
/// ```
/// use cnn_training::prelude::*;
/// let split = Split::new(vec![0; 6 * 10 * 10], vec![0, 1, 2, 0, 1, 2], 10, 10, 3)?;
/// let spec = NetSpec::builder("net").conv(4).maxpool().build()?; // shape from the data
/// let trainer = Trainer::new(TrainConfig::default(), &spec, &Device::Cpu, &split)?;
/// assert_eq!(trainer.model().input_shape(), [1, 10, 10]);
/// assert_eq!((trainer.batches_per_epoch(), trainer.epochs_done()), (1, 0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Trainer<M: Model = Cnn> {
    pub(crate) cfg: TrainConfig,
    pub(crate) device: Device,
    pub(crate) varmap: VarMap,
    pub(crate) model: M,
    /// The network's spec (input and classes filled in), for models built from one.
    pub(crate) spec: Option<NetSpec>,
    pub(crate) opt: Optimizer,
    pub(crate) rng: Rng,
    pub(crate) n_train: usize,
    /// Fingerprint of the training images, once [`crate::run`] has seen them.
    pub(crate) data_fingerprint: Option<String>,
    pub(crate) step: usize,
    pub(crate) history: Vec<EpochMetrics>,
    /// Built from a checkpoint and not stepped or saved since: [`crate::run`] writes the run's
    /// files once first, so a run killed between writing its checkpoint and its other files
    /// ends with all three in agreement.
    pub(crate) from_checkpoint: bool,
}

/// Gives every variable its initial value: uniform in `±1/sqrt(fan_in)` (PyTorch's default
/// for conv and linear layers), drawn in name order by our seeded generator, because
/// candle's CPU generator cannot be seeded. Returns the variables in that order.
fn init_vars(
    varmap: &VarMap,
    rng: &mut Rng,
    device: &Device,
) -> Result<Vec<(String, candle_core::Var)>> {
    let mut vars: Vec<(String, candle_core::Var)> = {
        let data = varmap.data().lock().map_err(|_| Error::LockPoisoned)?;
        data.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    };
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, var) in &vars {
        let dims = var.dims().to_vec();
        if let Some(value) = batchnorm_init(name, &vars) {
            var.set(&Tensor::full(value, dims, device)?)?;
            continue;
        }
        // fan_in is the same for a layer's weight and bias: take it from the weight.
        // Found by binary search in the sorted names: a linear search made building a net
        // of many layers quadratic.
        let weight_dims = match name.strip_suffix("bias") {
            Some(prefix) => {
                let weight = format!("{prefix}weight");
                vars.binary_search_by(|(n, _)| n.as_str().cmp(&weight))
                    .map_or_else(|_| dims.clone(), |i| vars[i].1.dims().to_vec())
            }
            None => dims.clone(),
        };
        let fan_in: usize = weight_dims.iter().skip(1).product::<usize>().max(1);
        let bound = 1.0 / (fan_in as f32).sqrt();
        let n: usize = dims.iter().product();
        let values: Vec<f32> = (0..n).map(|_| rng.uniform(-bound, bound)).collect();
        var.set(&Tensor::from_vec(values, dims, device)?)?;
    }
    Ok(vars)
}

/// PyTorch's starting value of a batch norm's variable (scale and running variance 1,
/// shift and running mean 0), or `None` for any other: a batch norm is a prefix with a
/// `running_mean`.
fn batchnorm_init(name: &str, sorted: &[(String, candle_core::Var)]) -> Option<f32> {
    let (prefix, leaf) = name.rsplit_once('.')?;
    let stats = format!("{prefix}.running_mean");
    sorted
        .binary_search_by(|(n, _)| n.as_str().cmp(&stats))
        .ok()?;
    match leaf {
        "weight" | "running_var" => Some(1.0),
        _ => Some(0.0),
    }
}

impl Trainer<Cnn> {
    /// A fresh run of the network `spec` on `train` (its image shape and classes fill in or
    /// are checked against the spec's), initialised from `cfg.seed`.
    pub fn new(cfg: TrainConfig, spec: &NetSpec, device: &Device, train: &Split) -> Result<Self> {
        if train.classes() < 2 {
            // One class is learnt perfectly by any network, and says nothing.
            return Err(Error::OneClass);
        }
        let spec = spec.resolve(train.image_shape(), train.classes())?;
        check_activations(&spec, cfg.batch_size.min(train.len()))?;
        let mut mcfg = Self::model_config(cfg.seed, spec.clone());
        mcfg.ops = cfg.ops;
        let mut t = Self::with_model(cfg, device, train.len(), |vb| Ok(Cnn::new(&mcfg, vb)?))?;
        t.spec = Some(spec);
        Ok(t)
    }
}

impl Trainer<Cnn> {
    /// Switches the layer implementation (not recorded in checkpoints: both compute the same
    /// function), for a run built from a checkpoint.
    pub fn set_ops(&mut self, ops: cnn_models::OpsPath) {
        self.cfg.ops = ops;
        self.model.set_ops(ops);
    }
}

impl<M: Model> Trainer<M> {
    /// A fresh run on a training split of `n_train` images (the last `cfg.validation` of
    /// them held out) of a model of your own: `build` creates it from a [`VarBuilder`] whose
    /// variables the trainer then initialises and trains.
    pub fn with_model(
        cfg: TrainConfig,
        device: &Device,
        n_train: usize,
        build: impl FnOnce(VarBuilder<'_>) -> Result<M>,
    ) -> Result<Self> {
        cfg.validate()?;
        if n_train == 0 {
            return Err(Error::EmptySplit("training"));
        }
        if cfg.validation >= n_train {
            return Err(Error::InvalidConfig {
                field: "validation",
                value: cfg.validation.to_string(),
                reason: "must leave at least one training image",
            });
        }
        let n_train = n_train - cfg.validation;
        let varmap = VarMap::new();
        let model = build(VarBuilder::from_varmap(&varmap, DType::F32, device))?;
        let mut rng = Rng::new(cfg.seed);
        let mut vars = init_vars(&varmap, &mut rng, device)?;
        vars.retain(|(name, _)| !cnn_models::is_running_stat(name));
        let weight_decay = cfg.l2 / n_train as f64;
        let opt = Optimizer::new(cfg.optimizer, vars, cfg.momentum, weight_decay)?;
        Ok(Self {
            cfg,
            device: device.clone(),
            varmap,
            model,
            spec: None,
            opt,
            rng,
            n_train,
            data_fingerprint: None,
            step: 0,
            history: Vec::new(),
            from_checkpoint: false,
        })
    }

    /// Records `names` (one per class; none leaves them as they are) in the recipe and
    /// gives them to the network.
    pub(crate) fn record_class_names(&mut self, names: &[String]) -> Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        self.model.set_class_names(names)?;
        self.cfg.class_names = names.to_vec();
        Ok(())
    }

    /// The network's spec, with input shape and classes filled in (`None` for a model
    /// defined in code).
    pub fn spec(&self) -> Option<&NetSpec> {
        self.spec.as_ref()
    }

    /// The recipe.
    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    /// The model being trained.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The optimizer (variables and their momentum buffers or moments).
    pub fn optimizer(&self) -> &Optimizer {
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

    /// Training images per epoch (the held-out validation images excluded).
    pub fn n_train(&self) -> usize {
        self.n_train
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
        let loss = smoothed_cross_entropy(&logits, y, self.cfg.label_smoothing)?;
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
        self.from_checkpoint = false;
        Ok(value)
    }

    /// Whether the 1-based `epoch` is one of the last `clean_epochs`, trained unaugmented.
    fn is_clean(&self, epoch: usize) -> bool {
        epoch + self.cfg.clean_epochs > self.cfg.epochs
    }

    /// Builds the next training batch of the 1-based `epoch` from `indices`, augmented as
    /// configured.
    fn train_batch(&mut self, epoch: usize, split: &Split, indices: &[usize]) -> Result<Tensor> {
        if self.is_clean(epoch) {
            return batch_tensor(split, indices, &self.device);
        }
        if !self.cfg.augment.is_none() {
            return affine_batch(
                split,
                indices,
                &self.cfg.augment,
                &mut self.rng,
                &self.device,
            );
        }
        if self.cfg.shift == 0 {
            return batch_tensor(split, indices, &self.device);
        }
        shifted_batch(split, indices, self.cfg.shift, &mut self.rng, &self.device)
    }

    /// Checks that `data` fits the run: the training size it was set up for and, for a model
    /// built from a spec, its input shape and classes.
    fn check_data(&self, data: &Dataset) -> Result<()> {
        if data.train.len() != self.n_train + self.cfg.validation {
            return Err(Error::TrainSize {
                expected: self.n_train + self.cfg.validation,
                found: data.train.len(),
            });
        }
        if data.test.is_empty() {
            return Err(Error::EmptySplit("test"));
        }
        if let Some(spec) = &self.spec {
            check_fit(spec, data)?;
        }
        Ok(())
    }

    /// Trains one epoch on `data.train`, then evaluates on `data.test`, reporting
    /// `EpochStart`, every `Batch` and `EpochEnd` through `on_event`.
    ///
    /// `stop` is polled between batches; when set, the epoch ends early and `Ok(None)` is
    /// returned with the model left at the last completed step.
    pub fn train_epoch(
        &mut self,
        data: &Dataset,
        stop: &AtomicBool,
        on_event: &mut dyn FnMut(&Event),
    ) -> Result<Option<EpochMetrics>> {
        self.check_data(data)?;
        let train = &data.train;
        let epoch = self.history.len() + 1;
        let mut order: Vec<usize> = (0..self.n_train).collect();
        self.rng.shuffle(&mut order);
        let batches = self.batches_per_epoch();
        on_event(&Event::EpochStart { epoch, batches });
        let start = Instant::now();
        let (mut loss_sum, mut seen) = (0.0f64, 0usize);
        let mut lr = self.current_lr();
        for (b, idx) in order.chunks(self.cfg.batch_size).enumerate() {
            if stop.load(Ordering::Relaxed) {
                return Ok(None);
            }
            let x = self.train_batch(epoch, train, idx)?;
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
        // Stopped during evaluation, the epoch is not finished: nothing of it is kept, and a
        // resumed run trains it again from the last saved epoch.
        let batch = self
            .spec
            .as_ref()
            .map_or(crate::EVAL_BATCH, crate::eval_batch);
        let Some(test) =
            evaluate_unless_stopped(&self.model, &data.test, &self.device, batch, stop)?
        else {
            return Ok(None);
        };
        let val = if self.cfg.validation > 0 {
            let held_out: Vec<usize> = (self.n_train..train.len()).collect();
            let split = train.select(&held_out);
            match evaluate_unless_stopped(&self.model, &split, &self.device, batch, stop)? {
                Some(v) => Some(v),
                None => return Ok(None),
            }
        } else {
            None
        };
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
            val_loss: val.as_ref().map(|v| v.loss),
            val_accuracy: val.as_ref().map(|v| v.accuracy()),
        };
        self.history.push(metrics.clone());
        on_event(&Event::EpochEnd(metrics.clone()));
        Ok(Some(metrics))
    }
}

/// Cross-entropy against targets that put `1 − eps` on the label and `eps` spread evenly
/// over the classes (plain cross-entropy when `eps` is 0), averaged over the batch.
fn smoothed_cross_entropy(logits: &Tensor, labels: &Tensor, eps: f64) -> Result<Tensor> {
    if eps == 0.0 {
        return Ok(candle_nn::loss::cross_entropy(logits, labels)?);
    }
    let logp = candle_nn::ops::log_softmax(logits, candle_core::D::Minus1)?;
    let nll = logp.gather(&labels.unsqueeze(1)?, 1)?.squeeze(1)?.neg()?;
    let uniform = logp.mean(candle_core::D::Minus1)?.neg()?;
    let mixed = ((nll * (1.0 - eps))? + (uniform * eps)?)?;
    Ok(mixed.mean_all()?)
}

impl<M: Model> std::fmt::Debug for Trainer<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("cfg", &self.cfg)
            .field("spec", &self.spec)
            .field("step", &self.step)
            .field("epochs_done", &self.history.len())
            .finish_non_exhaustive()
    }
}

/// Checks that both splits of `data` have the input shape and the classes of the network
/// `spec` describes ([`Error::DataMismatch`] otherwise).
///
/// ```
/// # use cnn_data::{Dataset, Split};
/// let spec = cnn_models::Arch::SmallCnn.mnist_spec();
/// let split = Split::new(vec![0; 2 * 28 * 28], vec![0, 1], 28, 28, 10)?;
/// let data = Dataset::new(split.clone(), split, Vec::<String>::new())?;
/// assert!(cnn_training::check_fit(&spec, &data).is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn check_fit(spec: &NetSpec, data: &Dataset) -> Result<()> {
    let (input, classes) = spec.shape()?;
    for (name, split) in [("training", &data.train), ("test", &data.test)] {
        if split.image_shape() != input || split.classes() != classes {
            return Err(Error::DataMismatch {
                split: name,
                model: spec.name.clone(),
                model_input: input,
                model_classes: classes,
                data_input: split.image_shape(),
                data_classes: split.classes(),
            });
        }
    }
    Ok(())
}

/// Refuses a network whose activations for one training batch would take more than
/// [`crate::ACTIVATION_BUDGET`]: the parameter count alone says nothing of them (a single
/// `conv = 2048` layer has 205k parameters and 6 MB of activations an image).
fn check_activations(spec: &NetSpec, batch_size: usize) -> Result<()> {
    let per_image = 4 * crate::eval::TRAIN_COPIES * spec.activation_values()? as u64;
    let bytes = per_image.saturating_mul(batch_size as u64);
    if bytes > crate::ACTIVATION_BUDGET {
        return Err(Error::ActivationMemory {
            batch: batch_size,
            bytes,
            per_image,
        });
    }
    Ok(())
}
