//! Plot functions on plain data: sizes, non-blank output, and typed errors for bad input.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use cnn_plot::{Digit, EpochPoint, Error, LayerBox};

fn variance(path: &std::path::Path) -> (u32, u32, f64) {
    let img = image::open(path).unwrap().to_luma8();
    let v: Vec<f64> = img.pixels().map(|p| f64::from(p[0])).collect();
    let m = v.iter().sum::<f64>() / v.len() as f64;
    (
        img.width(),
        img.height(),
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64,
    )
}

#[test]
fn learning_curves_and_architecture_render() {
    let dir = tempfile::tempdir().unwrap();
    let pts: Vec<EpochPoint> = (1..=5)
        .map(|e| EpochPoint {
            epoch: e,
            train_loss: 1.0 / e as f64,
            test_loss: 0.8 / e as f64,
            test_accuracy: 0.9 + 0.01 * e as f64,
        })
        .collect();
    let p = dir.path().join("c.png");
    cnn_plot::save_png(&p, (800, 400), |a| cnn_plot::learning_curves(a, "t", &pts)).unwrap();
    let (w, h, v) = variance(&p);
    assert_eq!((w, h), (800, 400));
    assert!(v > 50.0);
    let layers = [LayerBox {
        name: "conv1".into(),
        kind: "Conv2d".into(),
        output_shape: vec![10, 28, 28],
        params: 100,
    }];
    let p = dir.path().join("a.png");
    cnn_plot::save_png(&p, (600, 300), |a| cnn_plot::architecture(a, "t", &layers)).unwrap();
    assert!(variance(&p).2 > 50.0);
}

#[test]
fn bad_data_is_a_typed_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.png");
    let nan = [EpochPoint {
        epoch: 1,
        train_loss: f64::NAN,
        test_loss: 0.1,
        test_accuracy: 0.9,
    }];
    assert!(matches!(
        cnn_plot::save_png(&p, (400, 300), |a| cnn_plot::learning_curves(a, "t", &nan)),
        Err(Error::BadData { .. })
    ));
    assert!(matches!(
        cnn_plot::save_png(&p, (400, 300), |a| cnn_plot::learning_curves(a, "t", &[])),
        Err(Error::BadData { .. })
    ));
    assert!(matches!(
        cnn_plot::save_png(&p, (400, 300), |a| cnn_plot::kernel_grid(
            a,
            "t",
            &[vec![0.0; 4]],
            3
        )),
        Err(Error::BadData { .. })
    ));
    let ragged = vec![vec![1u64, 2], vec![3]];
    assert!(matches!(
        cnn_plot::save_png(&p, (400, 300), |a| cnn_plot::confusion_matrix(
            a,
            "t",
            &ragged,
            &["a", "b"]
        )),
        Err(Error::BadData { .. })
    ));
    let none: [Digit<'_>; 0] = [];
    assert!(matches!(
        cnn_plot::save_png(&p, (400, 300), |a| cnn_plot::digit_grid(a, "t", &none, 4)),
        Err(Error::BadData { .. })
    ));
}
