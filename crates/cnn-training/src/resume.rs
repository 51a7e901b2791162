//! Saving a trainer to its run folder and building one back from a checkpoint.

use std::path::Path;

use candle_core::{Device, Tensor};
use candle_nn::VarBuilder;
use cnn_models::{Cnn, ModelConfig};

use crate::checkpoint::{self, RawCheckpoint};
use crate::state::RunState;
use crate::{Error, Model, OptimBuffer, Result, Rng, Trainer, history_csv};

/// Weights, recipe and spec of the latest epoch.
pub const FINAL_STATE_FILE: &str = "final_state.safetensors";
/// Everything needed to continue the run.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
/// Per-epoch metrics.
pub const HISTORY_FILE: &str = "history.csv";

/// Seed of a run's dropout masks, from its seed.
fn dropout_seed(seed: u64) -> u64 {
    seed ^ 0xD50_D50
}

impl Trainer<Cnn> {
    /// The model configuration a run with `seed` and `spec` builds.
    pub(crate) fn model_config(seed: u64, spec: cnn_models::NetSpec) -> ModelConfig {
        ModelConfig {
            spec,
            dropout_seed: dropout_seed(seed),
            ops: Default::default(),
        }
    }
}

impl<M: Model> Trainer<M> {
    /// The run's state, as checkpoints record it.
    pub fn state(&self) -> RunState {
        RunState {
            config: self.cfg.clone(),
            spec: self.spec.clone(),
            step: self.step,
            rng_state: self.rng.state(),
            dropout_calls: self.model.dropout_calls(),
            n_train: self.n_train,
            data_fingerprint: self.data_fingerprint.clone(),
            history: self.history.clone(),
        }
    }

    /// Every variable of the model by name: the trained ones and batch norms' running
    /// statistics.
    fn weights(&self) -> Result<Vec<(String, Tensor)>> {
        let vars = self.varmap.data().lock().map_err(|_| Error::LockPoisoned)?;
        let mut all: Vec<(String, Tensor)> = vars
            .iter()
            .map(|(name, var)| (name.clone(), var.as_tensor().clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(all)
    }

    /// Writes `history.csv`, `final_state.safetensors` (weights, recipe and spec) and
    /// `checkpoint.safetensors` (also the optimizer's buffers) into `dir`, each atomically:
    /// a run folder, which `cnn-train --resume` and [`Trainer::resume`] continue and
    /// [`crate::load_model`] reads. To keep the network alone, in one file, save
    /// [`Trainer::model`] with [`crate::CnnFile::save`].
    ///
    /// ```
    /// use cnn_training::prelude::*;
    /// let split = Split::new(vec![0; 4 * 6 * 6], vec![0, 1, 0, 1], 6, 6, 2)?;
    /// let spec = NetSpec::builder("net").conv(2).build()?;
    /// let trainer = Trainer::new(TrainConfig::default(), &spec, &Device::Cpu, &split)?;
    /// let dir = std::env::temp_dir().join(format!("run-{}", std::process::id()));
    /// trainer.save(&dir)?;
    /// assert!(dir.join(cnn_training::CHECKPOINT_FILE).exists());
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        let state = self.state();
        let weights = self.weights()?;
        let mut full = weights.clone();
        for s in self.opt.slots() {
            full.push((format!("{VELOCITY_PREFIX}{}", s.name), s.velocity.clone()));
            if let Some(second) = &s.second {
                full.push((format!("{SECOND_PREFIX}{}", s.name), second.clone()));
            }
        }
        checkpoint::write_atomic(
            &dir.join(CHECKPOINT_FILE),
            &checkpoint::encode(&full, &state, true)?,
        )?;
        checkpoint::write_atomic(
            &dir.join(FINAL_STATE_FILE),
            &checkpoint::encode(&weights, &state, false)?,
        )?;
        checkpoint::write_atomic(
            &dir.join(HISTORY_FILE),
            history_csv(&self.history).as_bytes(),
        )
    }

    /// Continues a run of a model of your own from a decoded checkpoint: `build` creates the
    /// model as [`Trainer::with_model`] does, then weights, momentum buffers, step, generator
    /// state, dropout counter and history are restored. `path` is only used in errors.
    pub fn from_checkpoint_with(
        ckpt: &RawCheckpoint,
        path: &Path,
        device: &Device,
        n_train: usize,
        build: impl FnOnce(VarBuilder<'_>) -> Result<M>,
    ) -> Result<Self> {
        let state = ckpt.state.clone().ok_or_else(|| Error::MissingMetadata {
            path: path.to_path_buf(),
            key: "state",
            full: true,
        })?;
        let trained_on = n_train.checked_sub(state.config.validation);
        if trained_on != Some(state.n_train) {
            return Err(Error::TrainSizeChanged {
                path: path.to_path_buf(),
                saved: state.n_train + state.config.validation,
                given: n_train,
            });
        }
        state
            .config
            .validate()
            .map_err(|source| Error::CheckpointConfig {
                path: path.to_path_buf(),
                source: Box::new(source),
            })?;
        let mut t = Trainer::with_model(state.config, device, n_train, build)?;
        t.data_fingerprint = state.data_fingerprint;
        t.spec = ckpt.spec.clone();
        checkpoint::restore_weights(&t.varmap, ckpt, path)?;
        t.step = state.step;
        t.restore_velocities(ckpt, path)?;
        t.rng = Rng::new(state.rng_state);
        t.model.set_dropout_calls(state.dropout_calls);
        t.history = state.history;
        t.from_checkpoint = true;
        if t.step != t.history.len() * t.batches_per_epoch() {
            return Err(Error::StepMismatch {
                path: path.to_path_buf(),
            });
        }
        Ok(t)
    }

    fn restore_velocities(&mut self, ckpt: &RawCheckpoint, path: &Path) -> Result<()> {
        let slots: Vec<(String, Vec<usize>, bool)> = self
            .opt
            .slots()
            .iter()
            .map(|s| (s.name.clone(), s.var.dims().to_vec(), s.second.is_some()))
            .collect();
        for (name, dims, second) in slots {
            let v = buffer(
                ckpt,
                path,
                OptimBuffer::Momentum,
                VELOCITY_PREFIX,
                &name,
                &dims,
            )?;
            self.opt.set_velocity(&name, v)?;
            if second {
                let v = buffer(
                    ckpt,
                    path,
                    OptimBuffer::SecondMoment,
                    SECOND_PREFIX,
                    &name,
                    &dims,
                )?;
                self.opt.set_second(&name, v)?;
            }
        }
        self.opt.set_steps(self.step as u64);
        Ok(())
    }
}

impl Trainer<Cnn> {
    /// Continues a run from its `checkpoint.safetensors`: the network is rebuilt from the
    /// spec stored in it, and weights, momentum buffers, step, generator state, dropout
    /// counter and history are restored, so the rest of the run is bit-for-bit the one that
    /// was interrupted (same thread count, same device).
    ///
    /// `n_train` must be the number of training images the run was started with.
    pub fn resume(path: &Path, device: &Device, n_train: usize) -> Result<Self> {
        Self::from_checkpoint(&checkpoint::read(path, device)?, path, device, n_train)
    }

    /// Continues a run from a decoded checkpoint, as [`Trainer::resume`] does from a file;
    /// `path` is only used in errors.
    pub fn from_checkpoint(
        ckpt: &RawCheckpoint,
        path: &Path,
        device: &Device,
        n_train: usize,
    ) -> Result<Self> {
        let spec = ckpt.spec.clone().ok_or_else(|| Error::NoSpec {
            path: path.to_path_buf(),
        })?;
        let seed = ckpt.config.as_ref().map_or(0, |c| c.seed);
        let mcfg = Self::model_config(seed, spec);
        Self::from_checkpoint_with(ckpt, path, device, n_train, |vb| Ok(Cnn::new(&mcfg, vb)?))
    }
}

/// Prefix of the momentum buffers (Adam's first moments) in a full checkpoint.
const VELOCITY_PREFIX: &str = "optim.velocity.";
/// Prefix of Adam's second moments in a full checkpoint.
const SECOND_PREFIX: &str = "optim.second.";

/// The optimizer buffer `prefix` + `name` of a checkpoint, checked for shape and values.
fn buffer<'a>(
    ckpt: &'a RawCheckpoint,
    path: &Path,
    what: OptimBuffer,
    prefix: &str,
    name: &str,
    dims: &[usize],
) -> Result<&'a candle_core::Tensor> {
    let v = ckpt
        .tensors
        .get(&format!("{prefix}{name}"))
        .ok_or_else(|| Error::MissingVelocity {
            path: path.to_path_buf(),
            what,
            name: name.to_string(),
        })?;
    if v.dims() != dims {
        return Err(Error::VelocityShape {
            path: path.to_path_buf(),
            what,
            name: name.to_string(),
            found: v.dims().to_vec(),
            expected: dims.to_vec(),
        });
    }
    checkpoint::check_finite(v, name, path)?;
    Ok(v)
}
