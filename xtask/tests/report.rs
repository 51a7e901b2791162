//! `cargo xtask report --quick`: every figure is drawn from real model outputs, at its size,
//! and is not blank.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::process::Command;

/// Variance of the grey level over all pixels: a blank (single-colour) image has 0.
fn pixel_variance(img: &image::RgbImage) -> f64 {
    let grey: Vec<f64> = img
        .pixels()
        .map(|p| (f64::from(p[0]) + f64::from(p[1]) + f64::from(p[2])) / 3.0)
        .collect();
    let mean = grey.iter().sum::<f64>() / grey.len() as f64;
    grey.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / grey.len() as f64
}

#[test]
fn quick_report_draws_every_figure() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["report", "--quick", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = [
        ("architecture", None),
        ("learning_curves", Some((1200, 480))),
        ("predictions", Some((1100, 620))),
        ("kernels", Some((1000, 470))),
        ("feature_maps_0", Some((900, 720))),
        ("feature_maps_3", Some((900, 720))),
        ("confusion", Some((820, 760))),
        ("misclassified", Some((1100, 620))),
    ];
    for arch in ["small_cnn", "medium_cnn"] {
        for (name, size) in expected {
            let path = dir.path().join(format!("{arch}_{name}.png"));
            let img = image::open(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                .to_rgb8();
            if let Some((w, h)) = size {
                assert_eq!(img.dimensions(), (w, h), "{}", path.display());
            }
            let v = pixel_variance(&img);
            assert!(v > 100.0, "{} looks blank (variance {v})", path.display());
        }
    }
    let md = std::fs::read_to_string(dir.path().join("results.md")).unwrap();
    assert!(
        md.contains("| `small_cnn` | 11730 |") && md.contains("| `medium_cnn` | 261458 |"),
        "{md}"
    );
}
