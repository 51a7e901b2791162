//! Saving a trainer to its run folder and building one back from a checkpoint.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use candle_nn::VarBuilder;
use cnn_models::{Cnn, ModelConfig, NetSpec};

use crate::checkpoint::{self, RawCheckpoint};
use crate::{Error, Model, Result, Rng, TrainConfig, Trainer, history_csv, parse_history_csv};

/// Weights, recipe and spec of the latest epoch.
pub const FINAL_STATE_FILE: &str = "final_state.safetensors";
/// Everything needed to continue the run.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
/// Per-epoch metrics.
pub const HISTORY_FILE: &str = "history.csv";

/// Name recorded for a model defined in code (it has no spec).
pub(crate) const CUSTOM_MODEL: &str = "custom";

impl<M: Model> Trainer<M> {
    fn metadata(&self) -> Result<HashMap<String, String>> {
        let mut m = HashMap::new();
        let name = self.spec.as_ref().map_or(CUSTOM_MODEL, |s| s.name.as_str());
        m.insert("model".into(), name.to_string());
        if let Some(spec) = &self.spec {
            m.insert(
                "spec".into(),
                serde_json::to_string(spec).map_err(|e| Error::Encode(e.to_string()))?,
            );
        }
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
            self.model.dropout_calls().to_string(),
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
        let mut t = Trainer::with_model(cfg, device, n_train, build)?;
        t.spec = ckpt.spec.clone();
        checkpoint::restore_weights(&t.varmap, ckpt, path)?;
        t.restore_velocities(ckpt, path)?;
        t.step = num("step")? as usize;
        t.rng = Rng::new(num("rng_state")?);
        t.model.set_dropout_calls(num("dropout_calls")?);
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

    fn restore_velocities(&mut self, ckpt: &RawCheckpoint, path: &Path) -> Result<()> {
        let slots: Vec<(String, Vec<usize>)> = self
            .opt
            .slots()
            .iter()
            .map(|s| (s.name.clone(), s.var.dims().to_vec()))
            .collect();
        for (name, dims) in slots {
            let bad = |reason: String| Error::BadCheckpoint {
                path: path.to_path_buf(),
                reason,
            };
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
            self.opt.set_velocity(&name, v)?;
        }
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
        let spec = spec_of(ckpt, path)?;
        let seed = checkpoint_seed(ckpt, path)?;
        let mcfg = ModelConfig {
            spec,
            dropout_seed: seed ^ 0xD50_D50,
            ops: Default::default(),
        };
        Self::from_checkpoint_with(ckpt, path, device, n_train, |vb| Ok(Cnn::new(&mcfg, vb)?))
    }
}

/// The spec a checkpoint holds, or [`Error::NoSpec`].
pub(crate) fn spec_of(ckpt: &RawCheckpoint, path: &Path) -> Result<NetSpec> {
    ckpt.spec.clone().ok_or_else(|| Error::NoSpec {
        path: path.to_path_buf(),
    })
}

fn checkpoint_seed(ckpt: &RawCheckpoint, path: &Path) -> Result<u64> {
    let bad = |reason: String| Error::BadCheckpoint {
        path: path.to_path_buf(),
        reason,
    };
    let text = ckpt
        .metadata
        .get("config")
        .ok_or_else(|| bad("metadata has no config (not a full checkpoint?)".into()))?;
    let cfg: TrainConfig =
        serde_json::from_str(text).map_err(|e| bad(format!("bad config ({e})")))?;
    Ok(cfg.seed)
}
