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

/// `n` epochs of falling losses and rising accuracy.
fn points(n: usize) -> Vec<EpochPoint> {
    (1..=n)
        .map(|e| EpochPoint {
            epoch: e,
            train_loss: 1.0 / e as f64,
            test_loss: 0.8 / e as f64,
            test_accuracy: 0.9 + 0.01 * e as f64,
        })
        .collect()
}

#[test]
fn learning_curves_and_architecture_render() {
    let dir = tempfile::tempdir().unwrap();
    let pts = points(5);
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

/// How many pixels of `path` have exactly the colour `rgb`.
fn count_colour(path: &std::path::Path, rgb: [u8; 3]) -> usize {
    image::open(path)
        .unwrap()
        .to_rgb8()
        .pixels()
        .filter(|p| p.0 == rgb)
        .count()
}

#[test]
fn each_figure_draws_what_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let png = |name: &str| dir.path().join(name);

    // Learning curves: the train, test and accuracy lines in their colours.
    let pts = points(6);
    cnn_plot::save_png(png("c.png"), (1000, 420), |a| {
        cnn_plot::learning_curves(a, "t", &pts)
    })
    .unwrap();
    for (what, rgb) in [
        ("train", [31, 119, 180]),
        ("test", [214, 39, 40]),
        ("accuracy", [44, 160, 44]),
    ] {
        assert!(
            count_colour(&png("c.png"), rgb) > 100,
            "{what} line missing"
        );
    }

    // Architecture: one box per layer, filled by kind.
    let boxes = |kind: &str, name: &str| LayerBox {
        name: name.into(),
        kind: kind.into(),
        output_shape: vec![10, 28, 28],
        params: 100,
    };
    let layers = [
        boxes("Conv2d", "conv1"),
        boxes("MaxPool2d", "pool1"),
        boxes("Linear", "fc1"),
    ];
    cnn_plot::save_png(png("a.png"), (900, 300), |a| {
        cnn_plot::architecture(a, "t", &layers)
    })
    .unwrap();
    for (kind, rgb) in [
        ("conv", [198, 219, 239]),
        ("pool", [199, 233, 192]),
        ("linear", [253, 208, 162]),
    ] {
        assert!(count_colour(&png("a.png"), rgb) > 500, "no {kind} box");
    }
    assert_eq!(
        count_colour(&png("a.png"), [218, 218, 235]),
        0,
        "no dropout layer was given"
    );

    // Kernels: +1 everywhere is the scale's red end, -1 its blue end.
    let kernels = vec![vec![1.0f32; 9], vec![-1.0; 9], vec![0.0; 9]];
    cnn_plot::save_png(png("k.png"), (600, 300), |a| {
        cnn_plot::kernel_grid(a, "t", &kernels, 3)
    })
    .unwrap();
    for (sign, t) in [("positive", 1.0), ("negative", -1.0)] {
        let n = count_colour(&png("k.png"), cnn_plot::diverging_rgb(t));
        assert!(n > 1000, "{sign} kernel tile: {n} pixels of its colour");
    }

    // Feature maps: a map at the maximum is the sequential scale's top colour.
    let maps = vec![vec![2.0f32; 16], vec![0.0; 16]];
    let original = vec![255u8; 16];
    cnn_plot::save_png(png("f.png"), (600, 400), |a| {
        cnn_plot::feature_maps(a, "t", &maps, 4, &original, 4)
    })
    .unwrap();
    assert!(count_colour(&png("f.png"), cnn_plot::sequential_rgb(1.0)) > 1000);
    assert!(count_colour(&png("f.png"), cnn_plot::sequential_rgb(0.0)) > 1000);

    // Digit grid: a wrong prediction's label is red, a right one's is not.
    let pixels = vec![200u8; 784];
    let digit = |predicted: &str| Digit {
        pixels: &pixels,
        side: 28,
        truth: "7".into(),
        predicted: predicted.into(),
        confidence: None,
    };
    cnn_plot::save_png(png("right.png"), (300, 300), |a| {
        cnn_plot::digit_grid(a, "t", &[digit("7")], 1)
    })
    .unwrap();
    cnn_plot::save_png(png("wrong.png"), (300, 300), |a| {
        cnn_plot::digit_grid(a, "t", &[digit("1")], 1)
    })
    .unwrap();
    assert_eq!(count_colour(&png("right.png"), [200, 20, 20]), 0);
    assert!(count_colour(&png("wrong.png"), [200, 20, 20]) > 5);

    // Confusion matrix: the fullest cell has the scale's top colour.
    let counts = vec![vec![90, 10], vec![0, 100]];
    cnn_plot::save_png(png("m.png"), (500, 500), |a| {
        cnn_plot::confusion_matrix(a, "t", &counts, &["a", "b"])
    })
    .unwrap();
    assert!(count_colour(&png("m.png"), cnn_plot::sequential_rgb(1.0)) > 1000);
}
