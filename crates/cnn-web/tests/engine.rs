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
