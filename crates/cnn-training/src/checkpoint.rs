//! Checkpoint files: safetensors with our metadata, written atomically, read defensively.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use cnn_data::DatasetKind;
use cnn_models::{Arch, NetSpec};
use safetensors::SafeTensors;
use safetensors::tensor::{Dtype, TensorView};

use crate::state::RunState;
use crate::{Error, Result, TrainConfig};

pub use cnn_data::atomic::remove_stale_temps;

/// Value of the `format` metadata key in every file we write.
pub const FORMAT: &str = "cnn-mnist";
/// Checkpoint format version this build writes; newer versions are refused. Version 3 keeps
/// the run state as one typed value; version 2 added the network spec; version 1 files
/// name a preset, which is rebuilt for MNIST's shape.
pub const FORMAT_VERSION: u32 = 3;
/// Checkpoints up to this size are read without further ado (the presets' are under 2 MB);
/// a larger one must be the size its recorded network implies (see [`read`]).
pub const MAX_CHECKPOINT_BYTES: u64 = 64 * 1024 * 1024;
/// Largest safetensors header read: our metadata (spec, recipe, history of every epoch) and
/// one entry per tensor.
pub const MAX_HEADER_BYTES: u64 = 64 * 1024 * 1024;
/// The single safetensors metadata key under which our metadata is stored, as one JSON object
/// with sorted keys. (safetensors writes its metadata map in `HashMap` order, which changes
/// from process to process; one key keeps the file bytes reproducible.)
pub const METADATA_KEY: &str = "cnn_mnist";
/// Name recorded for a model defined in code (it has no spec).
pub const CUSTOM_MODEL: &str = "custom";

/// A checkpoint read from disk: its tensors, metadata and what they describe.
#[derive(Debug)]
pub struct RawCheckpoint {
    /// Tensors by name, on the requested device.
    pub tensors: HashMap<String, Tensor>,
    /// The metadata (`format`, `format_version`, `model`, `state`, ...).
    pub metadata: HashMap<String, String>,
    /// The network's name (a spec's name, or `custom` for a model defined in code).
    pub name: String,
    /// The network's spec (input shape and classes filled in), unless the model was
    /// defined in code.
    pub spec: Option<NetSpec>,
    /// The recipe the run was trained with, when recorded.
    pub config: Option<TrainConfig>,
    /// The full run state (every file since format 3; full checkpoints before).
    pub state: Option<RunState>,
}

impl RawCheckpoint {
    /// Names of the network's `classes`: those the run recorded, else the dataset's own
    /// (digits, Fashion-MNIST's clothes), else numbers. The second value is a note when the
    /// names had to fall back to numbers for a dataset this crate does not know.
    pub fn class_names(&self, classes: usize) -> (Vec<String>, Option<String>) {
        if let Some(cfg) = &self.config
            && cfg.class_names.len() == classes
        {
            return (cfg.class_names.clone(), None);
        }
        // A network saved on its own records its names beside its spec.
        if let Some(names) = self
            .metadata
            .get("class_names")
            .and_then(|n| serde_json::from_str::<Vec<String>>(n).ok())
            .filter(|n| n.len() == classes)
        {
            return (names, None);
        }
        let numbers = || (0..classes).map(|c| c.to_string()).collect();
        // The name as written: a recipe reads a name it does not know as data of one's own.
        let recorded = self
            .metadata
            .get("config")
            .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
            .and_then(|c| {
                c.get("dataset")
                    .and_then(|d| d.as_str())
                    .map(str::to_string)
            })
            .or_else(|| self.metadata.get("dataset").cloned());
        let kind = match recorded.as_deref() {
            None => DatasetKind::Mnist,
            Some(name) => match DatasetKind::from_name(name) {
                Some(kind) => kind,
                None => {
                    let note = format!(
                        "the run names dataset `{name}` and records no class names; classes are shown by number"
                    );
                    return (numbers(), Some(note));
                }
            },
        };
        let known = kind.class_names();
        if known.len() == classes {
            (known.iter().map(|s| s.to_string()).collect(), None)
        } else {
            (numbers(), None)
        }
    }
}

fn tensor_bytes(t: &Tensor) -> Result<Vec<u8>> {
    let values = t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
    Ok(values.iter().flat_map(|v| v.to_le_bytes()).collect())
}

/// Serialises `tensors` with the run `state` (and `format`, `format_version`, `model`,
/// `epoch`, `dataset` and `test_accuracy` for readers that want a glance) to safetensors.
///
/// A `full` file (to resume from) records the whole state; otherwise only the recipe and
/// the spec, so that weights files hold no timings and repeat byte for byte.
// Byte-level: for the page's engine, the fuzz targets and tests, not the documented API.
#[doc(hidden)]
pub fn encode(tensors: &[(String, Tensor)], state: &RunState, full: bool) -> Result<Vec<u8>> {
    let name = state
        .spec
        .as_ref()
        .map_or(CUSTOM_MODEL, |s| s.name.as_str());
    let mut meta: BTreeMap<String, String> = BTreeMap::new();
    meta.insert("format".into(), FORMAT.into());
    meta.insert("format_version".into(), FORMAT_VERSION.to_string());
    meta.insert("model".into(), name.into());
    meta.insert("epoch".into(), state.history.len().to_string());
    meta.insert("dataset".into(), state.config.dataset.name().into());
    if let Some(last) = state.history.last() {
        meta.insert("test_accuracy".into(), format!("{:.6}", last.test_accuracy));
    }
    if full {
        meta.insert("state".into(), to_json(state)?);
    } else {
        meta.insert("config".into(), to_json(&state.config)?);
        if let Some(spec) = &state.spec {
            meta.insert("spec".into(), to_json(spec)?);
        }
    }
    encode_raw(tensors, meta)
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(Error::EncodeState)
}

/// Serialises `tensors` with `metadata` exactly as given, under [`METADATA_KEY`].
// Byte-level: for the page's engine, the fuzz targets and tests, not the documented API.
#[doc(hidden)]
pub fn encode_raw(
    tensors: &[(String, Tensor)],
    metadata: BTreeMap<String, String>,
) -> Result<Vec<u8>> {
    let json = serde_json::to_string(&metadata).map_err(Error::EncodeState)?;
    let metadata: HashMap<String, String> = [(METADATA_KEY.to_string(), json)].into();
    let buffers = tensors
        .iter()
        .map(|(name, t)| Ok((name.clone(), t.dims().to_vec(), tensor_bytes(t)?)))
        .collect::<Result<Vec<_>>>()?;
    let views = buffers
        .iter()
        .map(|(name, shape, bytes)| {
            TensorView::new(Dtype::F32, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(Error::Encode)
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize(views, Some(metadata)).map_err(Error::Encode)
}

/// Writes `bytes` to `path` atomically (see [`cnn_data::atomic::write_atomic`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    cnn_data::atomic::write_atomic(path, bytes).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads and checks a checkpoint file: exists, is small enough, then [`decode`].
pub fn read(path: &Path, device: &Device) -> Result<RawCheckpoint> {
    let bytes = read_bytes(path, || implied_len(path))?;
    decode(&bytes, path, device)
}

/// The bytes of a file of tensors, refused when it is a folder, not a plain file, or over
/// [`MAX_CHECKPOINT_BYTES`] and over the size `implied` (that of the network it holds).
pub(crate) fn read_bytes(path: &Path, implied: impl FnOnce() -> Option<u64>) -> Result<Vec<u8>> {
    let read_err = |source| Error::ReadCheckpoint {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if meta.is_dir() {
        return Err(Error::CheckpointIsFolder {
            path: path.to_path_buf(),
        });
    }
    // A FIFO or device would bypass the size check below, or block forever.
    if !meta.is_file() {
        return Err(Error::CheckpointNotAFile {
            path: path.to_path_buf(),
        });
    }
    if meta.len() > MAX_CHECKPOINT_BYTES && meta.len() > implied().unwrap_or(0) {
        return Err(Error::CheckpointTooLarge {
            path: path.to_path_buf(),
            len: meta.len(),
        });
    }
    std::fs::read(path).map_err(read_err)
}

/// The most bytes a checkpoint of the network its header records can hold: the header, and
/// four bytes for each weight and running statistic, and in a full checkpoint for each of
/// the optimizer's buffers (one per weight for SGD, two for Adam). Only the header is read (at most
/// [`MAX_HEADER_BYTES`]); `None` when it records no network whose size can be worked out.
fn implied_len(path: &Path) -> Option<u64> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).ok()?;
    let mut n = [0u8; 8];
    file.read_exact(&mut n).ok()?;
    let n = u64::from_le_bytes(n);
    if n > MAX_HEADER_BYTES {
        return None;
    }
    let mut header = Vec::new();
    file.take(n).read_to_end(&mut header).ok()?;
    let header: serde_json::Value = serde_json::from_slice(&header).ok()?;
    let ours = header.get("__metadata__")?.get(METADATA_KEY)?.as_str()?;
    let ours: serde_json::Value = serde_json::from_str(ours).ok()?;
    // A weights file records the spec on its own, a full checkpoint inside its state.
    let (spec, buffers) = match ours.get("spec") {
        Some(spec) => (serde_json::from_str(spec.as_str()?).ok()?, 0),
        None => {
            let state: serde_json::Value =
                serde_json::from_str(ours.get("state")?.as_str()?).ok()?;
            let sgd = state.get("config")?.get("optimizer").is_none();
            (state.get("spec")?.clone(), if sgd { 1 } else { 2 })
        }
    };
    let spec: NetSpec = serde_json::from_value(spec).ok()?;
    let params = spec.num_params().ok()? as u64;
    let stats: usize = spec
        .layers
        .iter()
        .map(|l| match l {
            cnn_models::LayerSpec::Conv(c) if c.batchnorm => 2 * c.channels,
            _ => 0,
        })
        .sum();
    Some(8 + n + 4 * ((1 + buffers) * params + stats as u64))
}

/// Our metadata map, from the single key or (files from before it) the top level.
fn metadata_of(bytes: &[u8], path: &Path) -> Result<HashMap<String, String>> {
    let (_, header) =
        SafeTensors::read_metadata(bytes).map_err(|source| Error::NotSafetensors {
            path: path.to_path_buf(),
            source,
        })?;
    let raw = header.metadata().clone().unwrap_or_default();
    match raw.get(METADATA_KEY) {
        Some(json) => serde_json::from_str(json).map_err(|source| Error::MalformedMetadata {
            path: path.to_path_buf(),
            key: METADATA_KEY,
            source,
        }),
        None => Ok(raw),
    }
}

/// The format version, checked: ours, and not newer than this build.
fn version_of(metadata: &HashMap<String, String>, path: &Path) -> Result<u32> {
    if metadata.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(Error::NotOurs {
            path: path.to_path_buf(),
        });
    }
    let version: u32 = metadata
        .get("format_version")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Error::MissingMetadata {
            path: path.to_path_buf(),
            key: "format_version",
            full: false,
        })?;
    if version > FORMAT_VERSION {
        return Err(Error::NewerVersion {
            path: path.to_path_buf(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    Ok(version)
}

/// The network a file describes: its spec checked, or a preset named before specs existed.
fn checked_spec(name: &str, spec: Option<NetSpec>, path: &Path) -> Result<Option<NetSpec>> {
    let bad = |source| Error::BadNetwork {
        path: path.to_path_buf(),
        source,
    };
    match spec {
        Some(spec) => {
            spec.check().and_then(|()| spec.shape()).map_err(bad)?;
            Ok(Some(spec))
        }
        // A model defined in code has no spec; it is rebuilt by its own code.
        None if name == CUSTOM_MODEL => Ok(None),
        // Before specs (version 1), checkpoints named one of the presets, trained on MNIST.
        None => Ok(Some(name.parse::<Arch>().map_err(bad)?.mnist_spec())),
    }
}

/// Parses the JSON metadata entry `key`, if present.
fn parse_key<T: serde::de::DeserializeOwned>(
    metadata: &HashMap<String, String>,
    key: &'static str,
    path: &Path,
) -> Result<Option<T>> {
    metadata
        .get(key)
        .map(|json| {
            serde_json::from_str(json).map_err(|source| Error::MalformedMetadata {
                path: path.to_path_buf(),
                key,
                source,
            })
        })
        .transpose()
}

/// The network, recipe and run state: the typed `state` (format 3) or the text keys
/// before it.
type Described = (Option<NetSpec>, Option<TrainConfig>, Option<RunState>);

fn state_of(metadata: &HashMap<String, String>, name: &str, path: &Path) -> Result<Described> {
    if let Some(state) = parse_key::<RunState>(metadata, "state", path)? {
        let spec = checked_spec(name, state.spec.clone(), path)?;
        return Ok((spec, Some(state.config.clone()), Some(state)));
    }
    let spec = checked_spec(name, parse_key(metadata, "spec", path)?, path)?;
    let config = parse_key(metadata, "config", path)?;
    let state = RunState::from_legacy(metadata, spec.clone(), path)?;
    Ok((spec, config, state))
}

/// Checks checkpoint `bytes`: safetensors of f32 tensors carrying our metadata with a known
/// version and a buildable network. `path` is only used in errors. Never panics on any input.
// Byte-level: for the page's engine, the fuzz targets and tests, not the documented API.
#[doc(hidden)]
pub fn decode(bytes: &[u8], path: &Path, device: &Device) -> Result<RawCheckpoint> {
    let st = SafeTensors::deserialize(bytes).map_err(|source| Error::NotSafetensors {
        path: path.to_path_buf(),
        source,
    })?;
    let metadata = metadata_of(bytes, path)?;
    version_of(&metadata, path)?;
    let name = metadata
        .get("model")
        .ok_or_else(|| Error::MissingMetadata {
            path: path.to_path_buf(),
            key: "model",
            full: false,
        })?
        .clone();
    let (spec, config, state) = state_of(&metadata, &name, path)?;
    let tensors = tensors_of(&st, |_| false, path, device, None)?;
    Ok(RawCheckpoint {
        tensors,
        metadata,
        name,
        spec,
        config,
        state,
    })
}

/// The `f32` tensors of `st` by name, leaving out those `skip` names. Other types are
/// refused, naming the tensor, unless `converted` is given: then `f64`, `f16` and `bf16`
/// tensors become `f32` and are listed there with their type.
pub(crate) fn tensors_of(
    st: &SafeTensors<'_>,
    skip: impl Fn(&str) -> bool,
    path: &Path,
    device: &Device,
    mut converted: Option<&mut Vec<(String, String)>>,
) -> Result<HashMap<String, Tensor>> {
    let mut tensors = HashMap::new();
    let mut names: Vec<(String, _)> = st.tensors();
    names.sort_by(|a, b| a.0.cmp(&b.0));
    for (tname, view) in names {
        if skip(&tname) {
            continue;
        }
        let dtype = match (view.dtype(), converted.is_some()) {
            (Dtype::F32, _) => DType::F32,
            (Dtype::F64, true) => DType::F64,
            (Dtype::F16, true) => DType::F16,
            (Dtype::BF16, true) => DType::BF16,
            (other, _) => {
                return Err(Error::NotF32 {
                    path: path.to_path_buf(),
                    name: tname,
                    dtype: format!("{other:?}"),
                });
            }
        };
        let t = Tensor::from_raw_buffer(view.data(), dtype, view.shape(), device)?;
        if let (Some(list), false) = (converted.as_deref_mut(), dtype == DType::F32) {
            list.push((tname.clone(), format!("{:?}", view.dtype())));
        }
        tensors.insert(tname, t.to_dtype(DType::F32)?);
    }
    Ok(tensors)
}

/// Copies the model weights from `ckpt` into the variables of `varmap`, checking that every
/// variable is present with its exact shape.
// Byte-level: for the page's engine, the fuzz targets and tests, not the documented API.
#[doc(hidden)]
pub fn restore_weights(varmap: &VarMap, ckpt: &RawCheckpoint, path: &Path) -> Result<()> {
    let vars = varmap.data().lock().map_err(|_| Error::LockPoisoned)?;
    // In name order, so the error for a wrong checkpoint is the same every time.
    let mut sorted: Vec<_> = vars.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    for (name, var) in sorted {
        let t = ckpt.tensors.get(name).ok_or_else(|| Error::MissingTensor {
            path: path.to_path_buf(),
            name: name.clone(),
        })?;
        if t.dims() != var.dims() {
            return Err(Error::TensorShape {
                path: path.to_path_buf(),
                name: name.clone(),
                found: t.dims().to_vec(),
                expected: var.dims().to_vec(),
            });
        }
        check_finite(t, name, path)?;
        var.set(t)?;
    }
    Ok(())
}

/// Refuses a tensor holding NaN or an infinity: such weights would "evaluate" to a NaN
/// loss and a 0% prediction instead of an error.
pub(crate) fn check_finite(t: &Tensor, name: &str, path: &Path) -> Result<()> {
    let values = t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
    if let Some(index) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            path: path.to_path_buf(),
            name: name.to_string(),
            index,
        });
    }
    Ok(())
}

// The networks built from checkpoints live beside the one-file format; their paths here are
// the ones the page's engine and the fuzz targets have always used.
pub use crate::model_file::{inference_model, load_model, model_from};
