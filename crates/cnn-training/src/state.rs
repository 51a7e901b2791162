//! The run state a checkpoint carries: one typed value, written and read here only.

use std::collections::HashMap;
use std::path::Path;

use cnn_models::NetSpec;
use serde::{Deserialize, Serialize};

use crate::{EpochMetrics, Error, Result, TrainConfig, parse_history_csv};

/// Everything about a run besides its tensors: recipe, network, position and history.
///
/// Stored as JSON in the checkpoint's metadata (key `state`, format 3). Files of formats 1
/// and 2 kept the same facts as separate text keys; `RunState::from_legacy` (private) reads them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// The recipe, and what the run was trained on.
    pub config: TrainConfig,
    /// The network (`None` for a model defined in code).
    pub spec: Option<NetSpec>,
    /// SGD steps taken.
    pub step: usize,
    /// State of the run's random generator.
    pub rng_state: u64,
    /// Dropout masks drawn so far.
    pub dropout_calls: u64,
    /// Training images per epoch.
    pub n_train: usize,
    /// [`Split::fingerprint`](cnn_data::Split::fingerprint) of the training images (absent
    /// in runs from before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_fingerprint: Option<String>,
    /// Metrics of every epoch done.
    pub history: Vec<EpochMetrics>,
}

impl RunState {
    /// Reads the text keys of format 1 and 2 files: `config`, and for full checkpoints
    /// `step`, `rng_state`, `dropout_calls`, `n_train`, `history` (CSV) and `test_total`.
    /// Returns `Ok(None)` for a weights-only file (no `step`).
    pub(crate) fn from_legacy(
        meta: &HashMap<String, String>,
        spec: Option<NetSpec>,
        path: &Path,
    ) -> Result<Option<RunState>> {
        let (Some(config), Some(_)) = (meta.get("config"), meta.get("step")) else {
            return Ok(None);
        };
        let config: TrainConfig =
            serde_json::from_str(config).map_err(|source| Error::MalformedMetadata {
                path: path.to_path_buf(),
                key: "config",
                source,
            })?;
        let num = |key: &'static str| -> Result<u64> {
            meta.get(key)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| Error::MissingMetadata {
                    path: path.to_path_buf(),
                    key,
                    full: true,
                })
        };
        // Counts were not stored before format 3: they are rebuilt from the accuracy.
        let test_total = meta
            .get("test_total")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let history = meta
            .get("history")
            .and_then(|h| parse_history_csv(h, test_total))
            .ok_or_else(|| Error::MalformedHistory {
                path: path.to_path_buf(),
            })?;
        Ok(Some(RunState {
            config,
            spec,
            step: num("step")? as usize,
            rng_state: num("rng_state")?,
            dropout_calls: num("dropout_calls")?,
            n_train: num("n_train")? as usize,
            data_fingerprint: None,
            history,
        }))
    }
}
