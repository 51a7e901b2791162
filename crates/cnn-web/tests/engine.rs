//! The page's engine, natively: the shipped weights recognise real test digits drawn large
//! as dark ink on a white pad, through the same preprocessing as `cnn-predict`.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::{Path, PathBuf};

use cnn_data::{DataSource, DatasetKind};
use cnn_web::{Engine, Error};
use image::GrayImage;

fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets")
}

fn engine(name: &str) -> Engine {
    let path = assets().join(format!("models/{name}.safetensors"));
    Engine::from_bytes(&std::fs::read(&path).unwrap(), &path.display().to_string()).unwrap()
}

/// Test digit `pixels` (28x28, ink white) as a 280x280 pad: dark ink on white, 10x larger.
fn on_pad(pixels: &[u8]) -> GrayImage {
    GrayImage::from_fn(280, 280, |x, y| {
        image::Luma([255 - pixels[(y / 10) as usize * 28 + (x / 10) as usize]])
    })
}

#[test]
fn shipped_models_recognise_real_test_digits_drawn_on_the_pad() {
    let data =
        cnn_data::load(&DataSource::new(assets().join("mnist"), DatasetKind::Mnist)).unwrap();
    for name in ["small_cnn", "medium_cnn"] {
        let engine = engine(name);
        assert_eq!(engine.name(), name);
        assert_eq!(engine.class_names().len(), 10);
        let kernels = engine.kernels().unwrap();
        assert_eq!((kernels.count, kernels.rows, kernels.cols), (10, 3, 3));
        assert_eq!(kernels.rgba.len(), 10 * 3 * 3 * 4);
        let mut right = 0;
        let n = 100;
        for i in 0..n {
            let a = engine
                .analyse(&on_pad(data.test.image(i)))
                .unwrap()
                .unwrap();
            let sum: f32 = a.probabilities.iter().sum();
            assert!(
                (sum - 1.0).abs() < 1e-4,
                "{name} image {i}: probabilities sum to {sum}"
            );
            assert_eq!(a.input.len(), 784);
            assert_eq!(a.input_shape, (28, 28));
            let maps = a.maps.unwrap();
            assert_eq!((maps.count, maps.rows, maps.cols), (10, 28, 28));
            assert!(maps.scale > 0.0);
            right += usize::from(a.prediction == usize::from(data.test.label(i)));
        }
        // Redrawn and re-centred digits are a little harder than the originals (99%+).
        assert!(
            right >= 97,
            "{name}: {right}/{n} redrawn test digits recognised"
        );
    }
}

#[test]
fn the_input_is_the_preprocessing_of_cnn_predict() {
    let data =
        cnn_data::load(&DataSource::new(assets().join("mnist"), DatasetKind::Mnist)).unwrap();
    let pad = on_pad(data.test.image(0));
    let a = engine("small_cnn").analyse(&pad).unwrap().unwrap();
    let expected = cnn_data::preprocess::to_mnist(&pad, Path::new("pad")).unwrap();
    assert!(expected.inverted);
    assert_eq!(a.input, expected.pixels);
}

#[test]
fn a_blank_pad_has_no_analysis() {
    let blank = GrayImage::from_pixel(280, 280, image::Luma([255]));
    assert_eq!(engine("small_cnn").analyse(&blank).unwrap(), None);
}

#[test]
fn bytes_that_are_not_weights_are_refused_with_their_name() {
    let err = Engine::from_bytes(b"not safetensors", "upload.bin").unwrap_err();
    assert!(matches!(err, Error::Load(_)), "{err:?}");
    let chain = cnn_web::one_line(&err);
    assert!(chain.contains("upload.bin"), "{chain}");
}

#[test]
fn every_shipped_spec_runs_on_the_page_with_its_kernels_and_maps() {
    use candle_core::Device;
    use cnn_training::{TrainConfig, Trainer, batch_tensor, label_tensor};
    let data =
        cnn_data::load(&DataSource::new(assets().join("mnist"), DatasetKind::Mnist)).unwrap();
    let dir = std::env::temp_dir().join(format!("cnn-web-specs-{}", std::process::id()));
    let mut files: Vec<PathBuf> = std::fs::read_dir(assets().join("models"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 6, "{files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let spec = cnn_models::NetSpec::from_toml(&text, "x").unwrap();
        // Two steps, so that batch norms' running statistics move off their start.
        let cfg = TrainConfig::default();
        let mut t = Trainer::new(cfg, &spec, &Device::Cpu, &data.train).unwrap();
        for s in 0..2 {
            let idx: Vec<usize> = (s * 64..(s + 1) * 64).collect();
            let x = batch_tensor(&data.train, &idx, &Device::Cpu).unwrap();
            let y = label_tensor(&data.train, &idx, &Device::Cpu).unwrap();
            t.step(&x, &y).unwrap();
        }
        let run = dir.join(&spec.name);
        t.save(&run).unwrap();
        let weights = run.join(cnn_training::FINAL_STATE_FILE);
        let engine = Engine::from_bytes(&std::fs::read(&weights).unwrap(), "w").unwrap();
        let a = engine
            .analyse(&on_pad(data.test.image(0)))
            .unwrap()
            .unwrap();
        let sum: f32 = a.probabilities.iter().sum();
        assert!((sum - 1.0).abs() < 1e-4, "{}: {sum}", spec.name);
        let first = &t.model().layers()[1];
        let (kernels, maps) = (engine.kernels().unwrap(), a.maps.unwrap());
        let k = t.model().conv_weight(0).unwrap().dims()[3];
        assert_eq!((kernels.rows, kernels.cols), (k, k), "{}", spec.name);
        let shape = &first.output_shape;
        assert_eq!(
            (maps.count, maps.rows, maps.cols),
            (shape[0], shape[1], shape[2])
        );
        // The maps' scale reaches below zero exactly when the activation does (LeNet-5's
        // tanh); after ReLU it starts at 0.
        let relu = first.kind.ends_with("ReLU");
        assert_eq!(maps.low < 0.0, !relu, "{}: low {}", spec.name, maps.low);
        // The page says what the maps are taken after, as the architecture figure names it.
        let after = engine.maps_after().unwrap();
        let expected = match (first.kind.contains("BatchNorm"), relu) {
            (true, true) => "after batch norm and ReLU",
            (false, true) => "after ReLU",
            (false, false) => "after tanh", // LeNet-5, the one shipped spec without ReLU
            (true, false) => panic!("{}: no shipped spec has this", spec.name),
        };
        assert_eq!(after, expected, "{}", spec.name);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
