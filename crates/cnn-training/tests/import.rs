//! A network trained in PyTorch, imported: the fixture of xtask/interop/torch_fixture.py
//! (batch norm, `nn.Sequential` names, one float64 tensor) gives PyTorch's logits here.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::{Path, PathBuf};

use cnn_training::prelude::*;
use cnn_training::{DataSource, DatasetKind, Error, Renames, import_state_dict};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/torch_import")
        .join(name)
}

fn spec() -> NetSpec {
    NetSpec::from_toml(
        &std::fs::read_to_string(fixture("spec.toml")).unwrap(),
        "spec",
    )
    .unwrap()
}

fn renames() -> Renames {
    Renames::from_toml(&std::fs::read_to_string(fixture("renames.toml")).unwrap()).unwrap()
}

#[test]
fn a_pytorch_state_dict_gives_pytorchs_logits() {
    let imported = import_state_dict(
        &spec(),
        &fixture("state_dict.safetensors"),
        &renames(),
        &Device::Cpu,
    )
    .unwrap();
    assert_eq!(
        imported.converted,
        [("classifier.bias".to_string(), "F64".to_string())]
    );
    let expected = candle_core::safetensors::load(fixture("logits.safetensors"), &Device::Cpu)
        .unwrap()["logits"]
        .to_vec2::<f32>()
        .unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/mnist");
    let test = cnn_training::cnn_data::load(&DataSource::new(dir, DatasetKind::Mnist))
        .unwrap()
        .test;
    let x = cnn_training::batch_tensor(&test, &(0..8).collect::<Vec<_>>(), &Device::Cpu).unwrap();
    let ours = imported
        .model
        .forward_t(&x, false)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    for (a, b) in ours.iter().zip(&expected) {
        let diff = a
            .iter()
            .zip(b)
            .map(|(p, q)| (p - q).abs())
            .fold(0f32, f32::max);
        assert!(diff <= 1e-4, "logits differ by {diff}: {a:?} vs {b:?}");
        let argmax = |v: &[f32]| (0..v.len()).max_by(|&i, &j| v[i].total_cmp(&v[j]));
        assert_eq!(argmax(a), argmax(b));
    }
}

#[test]
fn names_shapes_and_renames_are_checked_one_tensor_at_a_time() {
    let path = fixture("state_dict.safetensors");
    // Without the renames, the file's first name the spec has no place for.
    match import_state_dict(&spec(), &path, &Renames::new(), &Device::Cpu) {
        Err(Error::UnexpectedTensor { name, .. }) => assert_eq!(name, "classifier.bias"),
        other => panic!("{other:?}"),
    }
    // A spec of another width: the tensor and both shapes.
    let narrow = spec()
        .to_toml()
        .unwrap()
        .replacen("conv = 8", "conv = 4", 1);
    let narrow = NetSpec::from_toml(&narrow, "narrow").unwrap();
    let err = import_state_dict(&narrow, &path, &renames(), &Device::Cpu).unwrap_err();
    assert!(
        matches!(&err, Error::TensorShape { name, found, expected, .. }
            if name == "bn1.bias" && found == &[8] && expected == &[4]),
        "{err}"
    );
    // Two file tensors onto one name.
    let twice = renames().with("features.4", "conv1");
    match import_state_dict(&spec(), &path, &twice, &Device::Cpu) {
        Err(Error::RenamedTwice { name, .. }) => assert_eq!(name, "conv1.bias"),
        other => panic!("{other:?}"),
    }
    // Strict f32 loading refuses what the import converts.
    let strict = Cnn::load_weights(&spec(), &path, &Device::Cpu).unwrap_err();
    assert!(
        matches!(
            strict,
            Error::NotF32 { .. } | Error::UnexpectedTensor { .. }
        ),
        "{strict}"
    );
    assert!(matches!(
        Renames::from_toml("a = 3"),
        Err(Error::BadRenames { .. })
    ));
    assert!(matches!(
        Renames::from_toml("= ="),
        Err(Error::BadRenames { .. })
    ));
}
