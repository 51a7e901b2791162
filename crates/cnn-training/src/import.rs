//! Networks trained elsewhere: a PyTorch `state_dict` saved with safetensors, its module
//! names mapped to the spec's, other float types converted to `f32`.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use cnn_models::{Cnn, NetSpec};

use crate::model_file::{is_counter, read_weights, safetensors_of, weights_into};
use crate::state::RunState;
use crate::{Error, Result, RunFolder, TrainConfig, checkpoint, history_csv};

/// How the tensor names of a state dict map to the spec's (`conv1`, `bn1`, `fc2`, ...):
/// module prefixes, so one entry renames a layer's weight, bias and running statistics.
///
/// Real PyTorch modules are rarely named as a spec names them; `nn.Sequential` numbers its
/// children (`features.0.weight`). Names no entry matches are kept; the longest matching
/// prefix wins.
///
/// ```
/// let renames = cnn_training::Renames::from_toml(r#"
///     "features.0" = "conv1"
///     "features.1" = "bn1"
///     "classifier" = "fc1"
/// "#)?;
/// assert_eq!(renames.apply("features.1.running_var"), "bn1.running_var");
/// assert_eq!(renames.apply("classifier.bias"), "fc1.bias");
/// assert_eq!(renames.apply("fc2.weight"), "fc2.weight");
/// # Ok::<(), cnn_training::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Renames {
    pairs: Vec<(String, String)>,
}

impl Renames {
    /// No renaming: the file's names are the spec's.
    pub fn new() -> Self {
        Self::default()
    }

    /// These renames and `from` → `to` (a module prefix, without the trailing dot).
    pub fn with(mut self, from: impl Into<String>, to: impl Into<String>) -> Self {
        self.pairs.push((from.into(), to.into()));
        self
    }

    /// A table of `"from" = "to"` lines, as in a rename file.
    pub fn from_toml(text: &str) -> Result<Self> {
        let bad = |reason: String| Error::BadRenames { reason };
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| bad(e.message().to_string()))?;
        let mut renames = Self::new();
        for (from, to) in table {
            match to {
                toml::Value::String(to) => renames = renames.with(from, to),
                other => {
                    return Err(bad(format!(
                        "`{from}` must map to a name in quotes, not to a TOML {}",
                        other.type_str()
                    )));
                }
            }
        }
        Ok(renames)
    }

    /// `name` renamed by the longest prefix that matches it whole (`features.1` matches
    /// `features.1.bias`, not `features.10.bias`).
    pub fn apply(&self, name: &str) -> String {
        let matches = |from: &str| {
            name == from || (name.starts_with(from) && name[from.len()..].starts_with('.'))
        };
        match self
            .pairs
            .iter()
            .filter(|(from, _)| matches(from))
            .max_by_key(|(from, _)| from.len())
        {
            Some((from, to)) => format!("{to}{}", &name[from.len()..]),
            None => name.to_string(),
        }
    }
}

/// A network built from a state dict, and what had to be done to its tensors.
#[derive(Debug)]
pub struct Imported {
    /// The network, its classes named by number.
    pub model: Cnn,
    /// Tensors stored in another float type than `f32` (name in the file, type), converted.
    pub converted: Vec<(String, String)>,
}

/// Builds the network `spec` (input and classes given) from the state dict in `path`
/// (safetensors, as `safetensors.torch.save_file(model.state_dict(), path)` writes it), its
/// names mapped by `renames`. Strict: a spec tensor missing from the file, a file tensor the
/// spec has no place for, or a shape that differs is an error naming the tensor (and both
/// shapes); batch norms' `num_batches_tracked` counters are skipped; `f64`, `f16` and
/// `bf16` tensors are converted to `f32` and listed in [`Imported::converted`].
pub fn import_state_dict(
    spec: &NetSpec,
    path: &Path,
    renames: &Renames,
    device: &Device,
) -> Result<Imported> {
    let bytes = read_weights(spec, path)?;
    let st = safetensors_of(&bytes, path)?;
    let mut converted = Vec::new();
    let found = checkpoint::tensors_of(&st, is_counter, path, device, Some(&mut converted))?;
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    let mut sources: HashMap<String, String> = HashMap::new();
    let mut names: Vec<String> = found.keys().cloned().collect();
    names.sort();
    for name in names {
        let renamed = renames.apply(&name);
        if let Some(first) = sources.insert(renamed.clone(), name.clone()) {
            return Err(Error::RenamedTwice {
                path: path.to_path_buf(),
                first,
                second: name,
                name: renamed,
            });
        }
        if let Some(t) = found.get(&name) {
            tensors.insert(renamed, t.clone());
        }
    }
    let model = weights_into(spec, tensors, path, device)?;
    Ok(Imported { model, converted })
}

impl RunFolder {
    /// Makes this (claimed) folder the run folder of a network trained elsewhere: its
    /// `final_state.safetensors` (the weights, `cfg` as the recipe with the network's class
    /// names, no epochs trained here) and a `history.csv` without epochs. Everything that
    /// reads a run's weights then works on it; there is no checkpoint to resume from.
    pub fn save_imported(&self, model: &Cnn, cfg: TrainConfig) -> Result<()> {
        let state = RunState {
            config: TrainConfig {
                class_names: model.class_names().to_vec(),
                ..cfg
            },
            spec: Some(model.spec().clone()),
            step: 0,
            rng_state: 0,
            dropout_calls: 0,
            n_train: 0,
            data_fingerprint: None,
            history: Vec::new(),
        };
        let mut tensors = model.named_tensors().to_vec();
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        checkpoint::write_atomic(&self.history(), history_csv(&[]).as_bytes())?;
        let bytes = checkpoint::encode(&tensors, &state, false)?;
        checkpoint::write_atomic(&self.final_state(), &bytes)
    }
}
