//! Checkpoint files: safetensors with our metadata, written atomically, read defensively.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use cnn_models::{Arch, Cnn, ModelConfig, NetSpec};
use safetensors::SafeTensors;
use safetensors::tensor::{Dtype, TensorView};

use crate::{Error, Result};

/// Value of the `format` metadata key in every file we write.
pub const FORMAT: &str = "cnn-mnist";
/// Checkpoint format version this build writes; newer versions are refused. Version 2 added
/// the network spec; version 1 files name a preset, which is rebuilt for MNIST's shape.
pub const FORMAT_VERSION: u32 = 2;
/// Checkpoints above this size are refused before reading them (ours are under 2 MB).
pub const MAX_CHECKPOINT_BYTES: u64 = 64 * 1024 * 1024;

/// A checkpoint read from disk: its tensors and metadata.
#[derive(Debug)]
pub struct RawCheckpoint {
    /// Tensors by name, on the requested device.
    pub tensors: HashMap<String, Tensor>,
    /// The metadata (`format`, `format_version`, `model`, `spec`, `config`, ...).
    pub metadata: HashMap<String, String>,
    /// The network's name (a spec's name, or `custom` for a model defined in code).
    pub name: String,
    /// The network's spec (input shape and classes filled in), unless the model was
    /// defined in code.
    pub spec: Option<NetSpec>,
}

fn tensor_bytes(t: &Tensor) -> Result<Vec<u8>> {
    let values = t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
    Ok(values.iter().flat_map(|v| v.to_le_bytes()).collect())
}

/// The single safetensors metadata key under which our metadata is stored, as one JSON object
/// with sorted keys. (safetensors writes its metadata map in `HashMap` order, which changes
/// from process to process; one key keeps the file bytes reproducible.)
pub const METADATA_KEY: &str = "cnn_mnist";

/// Serialises `tensors` with `metadata` (plus `format` and `format_version`) to safetensors.
pub fn encode(tensors: &[(String, Tensor)], metadata: HashMap<String, String>) -> Result<Vec<u8>> {
    let mut sorted: std::collections::BTreeMap<String, String> = metadata.into_iter().collect();
    sorted.insert("format".into(), FORMAT.into());
    sorted.insert("format_version".into(), FORMAT_VERSION.to_string());
    let json = serde_json::to_string(&sorted).map_err(|e| Error::Encode(e.to_string()))?;
    let metadata: HashMap<String, String> =
        [(METADATA_KEY.to_string(), json)].into_iter().collect();
    let buffers = tensors
        .iter()
        .map(|(name, t)| Ok((name.clone(), t.dims().to_vec(), tensor_bytes(t)?)))
        .collect::<Result<Vec<_>>>()?;
    let views = buffers
        .iter()
        .map(|(name, shape, bytes)| {
            TensorView::new(Dtype::F32, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| Error::Encode(e.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize(views, Some(metadata)).map_err(|e| Error::Encode(e.to_string()))
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, fsync, rename,
/// then fsync of the folder. A crash at any point leaves either the old file or the new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |error| Error::Write {
        path: path.to_path_buf(),
        error,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        // The rename is durable only once the folder itself is synced.
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

/// Removes the temporary files that [`write_atomic`] leaves when a process is killed
/// mid-write (`.<name>.tmp-<pid>` for each of `names` in `dir`); returns how many went.
///
/// Best effort: a temporary file that cannot be removed is harmless, so failures are skipped.
pub fn remove_stale_temps(dir: &Path, names: &[&str]) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        let stale = names.iter().any(|name| {
            file_name
                .strip_prefix(&format!(".{name}.tmp-"))
                .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
        });
        if stale && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Reads and checks a checkpoint file: exists, is small enough, then [`decode`].
pub fn read(path: &Path, device: &Device) -> Result<RawCheckpoint> {
    let bad = |reason: String| Error::BadCheckpoint {
        path: path.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|error| Error::ReadCheckpoint {
        path: path.to_path_buf(),
        error,
    })?;
    if meta.is_dir() {
        return Err(bad("it is a folder, not a file".into()));
    }
    if meta.len() > MAX_CHECKPOINT_BYTES {
        return Err(bad(format!(
            "{} bytes is too large for a checkpoint",
            meta.len()
        )));
    }
    let bytes = std::fs::read(path).map_err(|error| Error::ReadCheckpoint {
        path: path.to_path_buf(),
        error,
    })?;
    decode(&bytes, path, device)
}

/// Checks checkpoint `bytes`: safetensors of f32 tensors carrying our metadata with a known
/// version and a known model. `path` is only used in errors. Never panics on any input.
pub fn decode(bytes: &[u8], path: &Path, device: &Device) -> Result<RawCheckpoint> {
    let bad = |reason: String| Error::BadCheckpoint {
        path: path.to_path_buf(),
        reason,
    };
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| bad(format!("not a safetensors file ({e})")))?;
    let (_, header) = SafeTensors::read_metadata(bytes)
        .map_err(|e| bad(format!("not a safetensors file ({e})")))?;
    let raw = header.metadata().clone().unwrap_or_default();
    // Files from before METADATA_KEY kept the same keys at the top level.
    let metadata: HashMap<String, String> = match raw.get(METADATA_KEY) {
        Some(json) => serde_json::from_str(json)
            .map_err(|e| bad(format!("malformed {METADATA_KEY} metadata ({e})")))?,
        None => raw,
    };
    if metadata.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(bad(
            "no cnn-mnist metadata (was it written by cnn-train?)".into()
        ));
    }
    let version: u32 = metadata
        .get("format_version")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| bad("missing or malformed format_version".into()))?;
    if version > FORMAT_VERSION {
        return Err(bad(format!(
            "format version {version} is newer than this build understands ({FORMAT_VERSION}); upgrade cnn-train"
        )));
    }
    let name = metadata
        .get("model")
        .ok_or_else(|| bad("metadata names no model".into()))?
        .clone();
    let spec = match metadata.get("spec") {
        Some(json) => {
            let spec: NetSpec =
                serde_json::from_str(json).map_err(|e| bad(format!("malformed spec ({e})")))?;
            spec.check()
                .and_then(|()| spec.shape())
                .map_err(|e| bad(format!("spec: {e}")))?;
            Some(spec)
        }
        // A model defined in code has no spec; it is rebuilt by its own code.
        None if name == crate::resume::CUSTOM_MODEL => None,
        // Before specs (version 1), checkpoints named one of the presets, trained on MNIST.
        None => {
            let arch: Arch = name
                .parse()
                .map_err(|e: cnn_models::Error| bad(e.to_string()))?;
            Some(arch.mnist_spec())
        }
    };
    let mut tensors = HashMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(bad(format!(
                "tensor {name} is {:?}, expected F32",
                view.dtype()
            )));
        }
        let t = Tensor::from_raw_buffer(view.data(), DType::F32, view.shape(), device)?;
        tensors.insert(name, t);
    }
    Ok(RawCheckpoint {
        tensors,
        metadata,
        name,
        spec,
    })
}

/// Copies the model weights from `ckpt` into the variables of `varmap`, checking that every
/// variable is present with its exact shape.
pub fn restore_weights(varmap: &VarMap, ckpt: &RawCheckpoint, path: &Path) -> Result<()> {
    let vars = varmap
        .data()
        .lock()
        .map_err(|_| Error::Encode("variable map lock poisoned".into()))?;
    // In name order, so the error for a wrong checkpoint is the same every time.
    let mut sorted: Vec<_> = vars.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    for (name, var) in sorted {
        let t = ckpt.tensors.get(name).ok_or_else(|| Error::BadCheckpoint {
            path: path.to_path_buf(),
            reason: format!("tensor {name} is missing"),
        })?;
        if t.dims() != var.dims() {
            return Err(Error::BadCheckpoint {
                path: path.to_path_buf(),
                reason: format!(
                    "tensor {name} has shape {:?}, the model expects {:?}",
                    t.dims(),
                    var.dims()
                ),
            });
        }
        var.set(t)?;
    }
    Ok(())
}

/// Loads a trained network from a `final_state.safetensors` (or a full checkpoint), rebuilt
/// from the spec stored in it.
///
/// If `expected` names a network and the file holds another, fails with
/// [`Error::WrongModel`].
pub fn load_model(
    path: &Path,
    expected: Option<&str>,
    device: &Device,
) -> Result<(Cnn, RawCheckpoint)> {
    model_from(read(path, device)?, expected, path, device)
}

/// Builds the network a decoded checkpoint describes and loads its weights, as
/// [`load_model`] does for a file; `path` is only used in errors.
pub fn model_from(
    ckpt: RawCheckpoint,
    expected: Option<&str>,
    path: &Path,
    device: &Device,
) -> Result<(Cnn, RawCheckpoint)> {
    if let Some(expected) = expected
        && expected != ckpt.name
    {
        return Err(Error::WrongModel {
            path: path.to_path_buf(),
            found: ckpt.name.clone(),
            expected: expected.to_string(),
        });
    }
    let spec = crate::resume::spec_of(&ckpt, path)?;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
    let model = Cnn::new(&ModelConfig::new(spec), vb)?;
    restore_weights(&varmap, &ckpt, path)?;
    Ok((model, ckpt))
}
