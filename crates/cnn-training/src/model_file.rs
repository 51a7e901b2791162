//! One-file networks: a [`Cnn`] saved with its spec and class names, loaded back, or built
//! from plain safetensors weights (candle's `VarMap::save`, PyTorch's `save_file`), and the
//! networks a checkpoint describes.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use cnn_models::{Cnn, ModelConfig, NetSpec};
use safetensors::SafeTensors;

use crate::checkpoint::{
    self, FORMAT, FORMAT_VERSION, RawCheckpoint, check_finite, read, read_bytes, restore_weights,
};
use crate::{Error, Result};

/// Saving and loading a [`Cnn`] as one safetensors file: the weights and running statistics
/// under their PyTorch names, the spec and the class names in the file's metadata.
///
/// Bring it into scope (`use cnn_training::CnnFile;`, or `cnn_training::prelude::*`) and
/// call `model.save(path)` and `Cnn::load(path, &device)`. [`CnnFile::load`] also reads a
/// run's `final_state.safetensors` and `checkpoint.safetensors`; [`CnnFile::load_weights`]
/// reads a file without our metadata, given the spec.
///
/// ```
/// use cnn_training::prelude::*;
/// let spec = NetSpec::builder("tiny").conv(4).maxpool().input([1, 8, 8]).classes(3).build()?;
/// let varmap = VarMap::new();
/// let mut model = Cnn::new(&ModelConfig::new(spec), VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu))?;
/// model.set_class_names(["cat", "dog", "owl"])?;
/// let path = std::env::temp_dir().join(format!("tiny-{}.safetensors", std::process::id()));
/// model.save(&path)?;
/// let back = Cnn::load(&path, &Device::Cpu)?;
/// assert_eq!(back.class_names(), model.class_names());
/// assert_eq!(back.predict(&[9; 64])?.probabilities, model.predict(&[9; 64])?.probabilities);
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait CnnFile: Sized {
    /// Writes the network to `path` atomically (a temporary file renamed into place).
    fn save(&self, path: impl AsRef<Path>) -> Result<()>;
    /// Reads a network written by [`CnnFile::save`] or by a training run, rebuilt from the
    /// spec in the file.
    fn load(path: impl AsRef<Path>, device: &Device) -> Result<Self>;
    /// Builds the network `spec` (input shape and classes given: see [`NetSpec::resolve`])
    /// from a plain safetensors file of `f32` tensors named as [`Cnn::named_tensors`] names
    /// them, as candle's `VarMap::save` or PyTorch's `safetensors.torch.save_file` of a
    /// `state_dict` with those attribute names writes it. Strict, like PyTorch's
    /// `load_state_dict`: every tensor must be there with its shape, and no other (batch
    /// norms' `num_batches_tracked` counters are ignored). Classes are named by number.
    fn load_weights(spec: &NetSpec, path: impl AsRef<Path>, device: &Device) -> Result<Self>;
}

impl CnnFile for Cnn {
    fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let spec = serde_json::to_string(self.spec()).map_err(Error::EncodeState)?;
        let names = serde_json::to_string(self.class_names()).map_err(Error::EncodeState)?;
        let mut meta = BTreeMap::new();
        meta.insert("format".into(), FORMAT.into());
        meta.insert("format_version".into(), FORMAT_VERSION.to_string());
        meta.insert("model".into(), self.spec().name.clone());
        meta.insert("spec".into(), spec);
        meta.insert("class_names".into(), names);
        let bytes = checkpoint::encode_raw(self.named_tensors(), meta)?;
        checkpoint::write_atomic(path.as_ref(), &bytes)
    }

    fn load(path: impl AsRef<Path>, device: &Device) -> Result<Self> {
        Ok(load_model(path.as_ref(), None, device)?.0)
    }

    fn load_weights(spec: &NetSpec, path: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let path = path.as_ref();
        let bytes = read_weights(spec, path)?;
        let st = safetensors_of(&bytes, path)?;
        let tensors = checkpoint::tensors_of(&st, is_counter, path, device, None)?;
        weights_into(spec, tensors, path, device)
    }
}

/// A batch norm's `num_batches_tracked`: PyTorch's count of batches seen, which no layer
/// here uses.
pub(crate) fn is_counter(name: &str) -> bool {
    name.ends_with(".num_batches_tracked")
}

/// The bytes of a plain weights file for `spec`, which must say its input and classes.
pub(crate) fn read_weights(spec: &NetSpec, path: &Path) -> Result<Vec<u8>> {
    spec.shape()?;
    let implied = || {
        let params = spec.num_params().ok()? as u64;
        Some(checkpoint::MAX_HEADER_BYTES + 8 * params)
    };
    read_bytes(path, implied)
}

pub(crate) fn safetensors_of<'a>(bytes: &'a [u8], path: &Path) -> Result<SafeTensors<'a>> {
    SafeTensors::deserialize(bytes).map_err(|source| Error::NotSafetensors {
        path: path.to_path_buf(),
        source,
    })
}

/// The network `spec` with `tensors` as its weights: every one of its tensors there with
/// its shape, and no other (strict, like PyTorch's `load_state_dict`); classes by number.
pub(crate) fn weights_into(
    spec: &NetSpec,
    tensors: HashMap<String, Tensor>,
    path: &Path,
    device: &Device,
) -> Result<Cnn> {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
    let model = Cnn::new(&ModelConfig::new(spec.clone()), vb)?;
    let mut names: Vec<&String> = tensors.keys().collect();
    names.sort();
    if let Some(extra) = names
        .into_iter()
        .find(|n| !model.named_tensors().iter().any(|(m, _)| m == *n))
    {
        return Err(Error::UnexpectedTensor {
            path: path.to_path_buf(),
            name: extra.clone(),
        });
    }
    let raw = RawCheckpoint {
        tensors,
        metadata: Default::default(),
        name: spec.name.clone(),
        spec: Some(spec.clone()),
        config: None,
        state: None,
    };
    restore_weights(&varmap, &raw, path)?;
    Ok(model)
}

/// Builds the network a decoded checkpoint describes straight from its tensors, for
/// inference only: no trainable variables, and no random initialisation first (which a
/// browser's wasm could not seed). `path` is only used in errors.
// Byte-level: for the page's engine, the fuzz targets and tests, not the documented API.
#[doc(hidden)]
pub fn inference_model(ckpt: &RawCheckpoint, path: &Path, device: &Device) -> Result<Cnn> {
    let spec = ckpt.spec.clone().ok_or_else(|| Error::NoSpec {
        path: path.to_path_buf(),
    })?;
    let mut names: Vec<&String> = ckpt.tensors.keys().collect();
    names.sort();
    for name in names {
        check_finite(&ckpt.tensors[name], name, path)?;
    }
    let vb = VarBuilder::from_tensors(ckpt.tensors.clone(), DType::F32, device);
    let mut model = Cnn::new(&ModelConfig::new(spec), vb)?;
    model.set_class_names(ckpt.class_names(model.classes()).0)?;
    Ok(model)
}

/// Loads a trained network from a `final_state.safetensors` (or a full checkpoint), rebuilt
/// from the spec stored in it.
///
/// If `expected` names a network and the file holds another, fails with
/// [`Error::WrongModel`]. Returns the checkpoint too, for its recipe and history; for the
/// network alone, [`crate::CnnFile::load`] is shorter.
///
/// ```no_run
/// use cnn_training::{Device, load_model};
/// let path = std::path::Path::new("runs/small_cnn/final_state.safetensors");
/// let (model, ckpt) = load_model(path, Some("small_cnn"), &Device::Cpu)?;
/// println!("{} classes, recipe {:?}", model.classes(), ckpt.config);
/// # Ok::<(), cnn_training::Error>(())
/// ```
pub fn load_model(
    path: &Path,
    expected: Option<&str>,
    device: &Device,
) -> Result<(Cnn, RawCheckpoint)> {
    model_from(read(path, device)?, expected, path, device)
}

/// Builds the network a decoded checkpoint describes and loads its weights, as
/// [`load_model`] does for a file; `path` is only used in errors.
// Byte-level: for the page's engine, the fuzz targets and tests, not the documented API.
#[doc(hidden)]
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
    let spec = ckpt.spec.clone().ok_or_else(|| Error::NoSpec {
        path: path.to_path_buf(),
    })?;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
    let mut model = Cnn::new(&ModelConfig::new(spec), vb)?;
    restore_weights(&varmap, &ckpt, path)?;
    model.set_class_names(ckpt.class_names(model.classes()).0)?;
    Ok((model, ckpt))
}
