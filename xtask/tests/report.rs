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

/// Runs `cargo xtask report` with `args` then `path`, and asserts it succeeded.
fn report(args: &[&str], path: &std::path::Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("report")
        .args(args)
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn quick_report_draws_every_figure() {
    let dir = tempfile::tempdir().unwrap();
    report(&["--quick", "--out"], dir.path());
    // Figures of a fixed size, then those that grow with the first layer's channels.
    let fixed = [
        ("architecture", None),
        ("learning_curves", Some((1200, 480))),
        ("predictions", Some((1100, 620))),
        ("confusion", Some((820, 760))),
        ("misclassified", Some((1100, 620))),
    ];
    // The presets, trained for the smoke test (10 kernels and maps), and the shipped spec,
    // drawn from its shipped weights (16).
    for (arch, kernels_h, maps_h) in [
        ("small_cnn", 470, 720),
        ("medium_cnn", 470, 720),
        ("mnist_best", 890, 1200),
    ] {
        let grown = [
            ("kernels", Some((1000, kernels_h))),
            ("feature_maps_0", Some((900, maps_h))),
            ("feature_maps_3", Some((900, maps_h))),
        ];
        for (name, size) in fixed.into_iter().chain(grown) {
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
        md.contains("| `small_cnn` | 11730 |")
            && md.contains("| `medium_cnn` | 261458 |")
            && md.contains("| `mnist_best` | 72890 | 20 |"),
        "{md}"
    );
}

#[test]
fn a_run_of_any_spec_gets_its_figures_from_the_run_folder_alone() {
    use std::sync::atomic::AtomicBool;

    use candle_core::Device;
    use cnn_data::{DataSource, DatasetKind};
    use cnn_training::{TrainConfig, Trainer};

    let mnist = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/mnist");
    let mut data = cnn_data::load(&DataSource::new(&mnist, DatasetKind::Mnist)).unwrap();
    data.train = data.train.take(2000);
    let spec = cnn_models::NetSpec::builder("wide5")
        .conv_k(16, 5)
        .maxpool()
        .conv(32)
        .maxpool()
        .linear(64)
        .build()
        .unwrap();
    let cfg = TrainConfig {
        epochs: 1,
        data_dir: Some(mnist.clone()),
        class_names: data.class_names.clone(),
        ..TrainConfig::default()
    };
    let run = tempfile::tempdir().unwrap();
    let mut t = Trainer::new(cfg, &spec, &Device::Cpu, &data.train).unwrap();
    cnn_training::run(
        &mut t,
        &data,
        Some(run.path()),
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .unwrap();

    report(&["--run"], run.path());
    let figs = run.path().join("figures");
    for (name, size) in [
        ("architecture", None),
        ("kernels", Some((1000, 890))),
        ("feature_maps_0", Some((900, 1200))),
        ("predictions", Some((1100, 620))),
        ("confusion", Some((820, 760))),
    ] {
        let path = figs.join(format!("wide5_{name}.png"));
        let img = image::open(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .to_rgb8();
        if let Some((w, h)) = size {
            assert_eq!(img.dimensions(), (w, h), "{}", path.display());
        }
        assert!(
            pixel_variance(&img) > 100.0,
            "{} looks blank",
            path.display()
        );
    }
    let md = std::fs::read_to_string(figs.join("results.md")).unwrap();
    assert!(md.contains("| `wide5` |"), "{md}");
    assert!(md.contains("the 16 first-layer 5x5 kernels"), "{md}");
    hostile_runs_end_in_one_line(run.path());
}

/// Runs `cargo xtask report` with `args`; its output.
fn report_output(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("report")
        .args(args)
        .output()
        .unwrap()
}

/// Data of another class count, a FIFO or extreme losses in the history: one error line
/// (or figures), never a panic or a hang.
fn hostile_runs_end_in_one_line(run: &std::path::Path) {
    let other = tempfile::tempdir().unwrap();
    let split = cnn_data::Split::new(vec![0; 4 * 28 * 28], vec![0, 1, 2, 0], 28, 28, 3).unwrap();
    for set in ["train", "t10k"] {
        let at = |kind: &str| other.path().join(format!("{set}-{kind}"));
        split
            .write_idx(&at("images-idx3-ubyte"), &at("labels-idx1-ubyte"))
            .unwrap();
    }
    let out = report_output(&[
        "--run".as_ref(),
        run.as_os_str(),
        "--data-dir".as_ref(),
        other.path().as_os_str(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && !stderr.contains("panicked"),
        "{stderr}"
    );
    assert!(
        stderr.contains("does not fit the run") && stderr.contains("--data-dir"),
        "{stderr}"
    );

    let history = run.join("history.csv");
    let text = std::fs::read_to_string(&history).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut fields: Vec<String> = lines[1].split(',').map(str::to_string).collect();
    (fields[1], fields[2]) = ("1e308".into(), "1e-300".into());
    lines[1] = fields.join(",");
    std::fs::write(&history, lines.join("\n") + "\n").unwrap();
    let started = std::time::Instant::now();
    let out = report_output(&["--run".as_ref(), run.as_os_str()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(120));

    std::fs::remove_file(&history).unwrap();
    let made = Command::new("mkfifo").arg(&history).status().unwrap();
    assert!(made.success());
    let out = report_output(&["--run".as_ref(), run.as_os_str()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("history.csv") && stderr.contains("not a regular file"),
        "{stderr}"
    );
}
