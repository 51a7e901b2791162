//! Every exported network, run by tract (a pure-Rust ONNX runtime), gives our logits on 100
//! test digits: both presets with their shipped weights, and every shipped spec after a
//! short training (so batch norms hold real running statistics).

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::{Path, PathBuf};

use cnn_training::prelude::*;
use cnn_training::{DataSource, DatasetKind};

const IMAGES: usize = 100;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn mnist() -> Dataset {
    cnn_training::cnn_data::load(&DataSource::new(
        root().join("assets/mnist"),
        DatasetKind::Mnist,
    ))
    .unwrap()
}

/// Largest |logit difference| between tract on the exported file and our forward pass, and
/// whether every argmax agrees.
fn compare(model: &Cnn, test: &Split) -> (f32, bool) {
    let bytes = cnn_onnx::to_onnx(model).unwrap();
    let idx: Vec<usize> = (0..IMAGES).collect();
    let x = cnn_training::batch_tensor(test, &idx, &Device::Cpu).unwrap();
    let ours = model
        .forward_t(&x, false)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    let values = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let [c, h, w] = model.input_shape();
    let shape = [IMAGES, c, h, w];
    let theirs = tract_run::logits(&bytes, shape, &values);
    let argmax = |v: &[f32]| (0..v.len()).max_by(|&i, &j| v[i].total_cmp(&v[j])).unwrap();
    let (mut worst, mut same) = (0f32, true);
    for (i, row) in ours.iter().enumerate() {
        let other = &theirs[i * row.len()..(i + 1) * row.len()];
        for (a, b) in row.iter().zip(other) {
            worst = worst.max((a - b).abs());
        }
        same &= argmax(row) == argmax(other);
    }
    (worst, same)
}

/// `spec` trained for one short epoch on `data` (so batch norms hold real statistics), then
/// compared with tract.
fn briefly_trained_agrees(spec: &NetSpec, data: &Dataset) {
    let cfg = TrainConfig {
        epochs: 1,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(cfg, spec, &Device::Cpu, &data.train).unwrap();
    trainer.fit(data).unwrap();
    let (worst, same) = compare(trainer.model(), &data.test);
    let name = &spec.name;
    assert!(
        worst <= 1e-4 && same,
        "{name}: logits differ by {worst}, argmax same: {same}"
    );
}

#[test]
fn the_presets_shipped_weights_run_in_tract_as_here() {
    let data = mnist();
    for preset in ["small_cnn", "medium_cnn"] {
        let path = root().join(format!("assets/models/{preset}.safetensors"));
        let model = Cnn::load(&path, &Device::Cpu).unwrap();
        let (worst, same) = compare(&model, &data.test);
        assert!(
            worst <= 1e-4 && same,
            "{preset}: logits differ by {worst}, argmax same: {same}"
        );
    }
}

#[test]
fn every_shipped_spec_runs_in_tract_as_here() {
    let data = mnist();
    let small = Dataset::new(
        data.train.take(640),
        data.test.take(IMAGES),
        data.class_names.clone(),
    )
    .unwrap();
    for name in [
        "lenet5",
        "pytorch_example",
        "allconv_bn",
        "mnist_tiny",
        "mnist_fast",
        "mnist_best",
        "fashion_best",
    ] {
        let file = root().join(format!("assets/models/{name}.toml"));
        let spec = NetSpec::from_toml(&std::fs::read_to_string(file).unwrap(), name).unwrap();
        briefly_trained_agrees(&spec, &small);
    }
}

/// tract's side, in a module of its own: its prelude names `Tensor` too.
mod tract_run {
    use tract_onnx::prelude::*;

    /// The model's output for `values` of `shape`, row after row.
    pub fn logits(bytes: &[u8], shape: [usize; 4], values: &[f32]) -> Vec<f32> {
        let runnable = tract_onnx::onnx()
            .model_for_read(&mut &bytes[..])
            .unwrap()
            .with_input_fact(0, f32::fact(shape).into())
            .unwrap()
            .into_optimized()
            .unwrap()
            .into_runnable()
            .unwrap();
        let input = Tensor::from_shape(&shape, values).unwrap();
        let out = runnable.run(tvec!(input.into())).unwrap();
        out[0]
            .to_plain_array_view::<f32>()
            .unwrap()
            .iter()
            .copied()
            .collect()
    }
}

#[test]
fn every_activation_pool_and_padding_runs_in_tract_as_here() {
    use cnn_training::cnn_models::{Activation, ConvSpec, LayerSpec, Padding};
    let data = mnist();
    let small = Dataset::new(
        data.train.take(320),
        data.test.take(IMAGES),
        data.class_names.clone(),
    )
    .unwrap();
    let spec = NetSpec::builder("every_kind")
        .conv_with(
            ConvSpec::new(6)
                .kernel(5)
                .padding(Padding::Valid)
                .activation(Activation::Gelu),
        )
        .conv_with(
            ConvSpec::new(8)
                .stride(2)
                .padding(Padding::Pixels(2))
                .activation(Activation::Silu)
                .batchnorm(true),
        )
        .avgpool(3)
        .conv_with(ConvSpec::new(8).kernel(1).activation(Activation::None))
        .layer(LayerSpec::Linear {
            width: 16,
            activation: Activation::Tanh,
        })
        .dropout(0.3)
        .build()
        .unwrap();
    briefly_trained_agrees(&spec, &small);
}
