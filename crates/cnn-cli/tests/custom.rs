//! Your own network on your own data, end to end: a spec file and a 14x14, 5-class IDX
//! folder; then `--final-state`, `--resume` and `cnn-predict` from the run folder alone.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::AtomicBool;

use candle_core::Device;
use cnn_data::{DataSource, DatasetKind, FILE_NAMES, Split};
use cnn_training::{TrainConfig, Trainer};

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Digits 0-4 of `split` at half resolution (2x2 means), the first `n` of them.
fn small_digits(split: &Split, n: usize) -> Split {
    let keep: Vec<usize> = (0..split.len())
        .filter(|&i| split.label(i) < 5)
        .take(n)
        .collect();
    let mut images = Vec::new();
    for &i in &keep {
        let d = split.image(i);
        for y in 0..14 {
            for x in 0..14 {
                let at = |dy: usize, dx: usize| u32::from(d[(2 * y + dy) * 28 + 2 * x + dx]);
                images.push(((at(0, 0) + at(0, 1) + at(1, 0) + at(1, 1) + 2) / 4) as u8);
            }
        }
    }
    let labels = keep.iter().map(|&i| split.label(i)).collect();
    Split::new(images, labels, 14, 14, 5).unwrap()
}

/// A folder of 14x14 digits 0-4 with class names, as a user's own scans would be.
fn write_dataset(dir: &Path) {
    let m = cnn_data::load(&DataSource::new(
        cnn_cli::assets_dir().join("mnist"),
        DatasetKind::Mnist,
    ))
    .unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let (train, test) = (small_digits(&m.train, 8000), small_digits(&m.test, 1000));
    train
        .write_idx(&dir.join(FILE_NAMES[0]), &dir.join(FILE_NAMES[1]))
        .unwrap();
    test.write_idx(&dir.join(FILE_NAMES[2]), &dir.join(FILE_NAMES[3]))
        .unwrap();
    std::fs::write(dir.join("classes.txt"), "zero\none\ntwo\nthree\nfour\n").unwrap();
    // One test digit as a picture, for cnn-predict.
    let big: Vec<u8> = (0..28 * 28).map(|i| m.test.image(1)[i]).collect();
    image::GrayImage::from_raw(28, 28, big)
        .unwrap()
        .save(dir.join("two.png"))
        .unwrap();
}

const SPEC: &str = "name = \"tiny14\"\ninput = [1, 14, 14]\nclasses = 5\n\n[[layer]]\nconv = 8\nkernel = 5\n\n[[layer]]\nmaxpool = 2\n\n[[layer]]\nconv = 16\n\n[[layer]]\nmaxpool = 2\n\n[[layer]]\nlinear = 32\n";

fn train(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cnn-train"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_spec_file_trains_on_a_custom_folder_and_the_run_folder_is_enough_afterwards() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("digits14");
    write_dataset(&data);
    let spec = tmp.path().join("tiny14.toml");
    std::fs::write(&spec, SPEC).unwrap();
    let run = tmp.path().join("run");
    let (spec_s, data_s, run_s) = (
        spec.to_str().unwrap(),
        data.to_str().unwrap(),
        run.to_str().unwrap(),
    );
    let out = train(&[
        "--model",
        spec_s,
        "--data-dir",
        data_s,
        "--epochs",
        "2",
        "--out",
        run_s,
    ]);
    common::assert_success(&out, "training the spec");
    let stdout = text(&out);
    assert!(stdout.contains("training tiny14 ("), "{stdout}");
    assert!(
        stdout.contains("images from ") && stdout.contains(" of 14x14 in 5 classes"),
        "{stdout}"
    );
    let last = stdout.lines().last().unwrap().to_string();
    let acc: f64 = last[15..].split('%').next().unwrap().parse().unwrap();
    assert!(acc > 95.0, "{last}");

    // --final-state from the run folder alone: no --model, no --data-dir.
    let out = train(&["--final-state", "--out", run_s]);
    common::assert_success(&out, "--final-state");
    assert_eq!(text(&out).lines().last().unwrap(), last);

    // cnn-predict names the classes from classes.txt, recorded in the run.
    let out = Command::new(env!("CARGO_BIN_EXE_cnn-predict"))
        .args(["--run", run_s])
        .arg(data.join("two.png"))
        .output()
        .unwrap();
    common::assert_success(&out, "cnn-predict");
    assert!(text(&out).contains(": two ("), "{}", text(&out));

    // What the network saw is saved at its own size; the picture itself is never replaced,
    // even when it sits in the folder the copies go to.
    let before = std::fs::read(data.join("two.png")).unwrap();
    for _ in 0..2 {
        let out = Command::new(env!("CARGO_BIN_EXE_cnn-predict"))
            .args(["--run", run_s, "--save-preprocessed"])
            .arg(&data)
            .arg(data.join("two.png"))
            .output()
            .unwrap();
        common::assert_success(&out, "cnn-predict --save-preprocessed");
    }
    assert_eq!(std::fs::read(data.join("two.png")).unwrap(), before);
    for copy in ["two-2.png", "two-3.png"] {
        let seen = image::open(data.join(copy)).unwrap();
        assert_eq!((seen.width(), seen.height()), (14, 14), "{copy}");
    }
}

#[test]
fn a_custom_run_resumes_from_its_folder_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("digits14");
    write_dataset(&data_dir);
    let data = cnn_data::load(&DataSource::new(&data_dir, DatasetKind::Mnist)).unwrap();
    let spec = cnn_models::NetSpec::from_toml(SPEC, "x").unwrap();
    let run = tmp.path().join("run");
    // One epoch of two, recorded as the CLI records it, then the CLI continues.
    let cfg = TrainConfig {
        epochs: 2,
        data_dir: Some(data_dir.clone()),
        class_names: data.class_names.clone(),
        ..TrainConfig::default()
    };
    let mut t = Trainer::new(cfg, &spec, &Device::Cpu, &data.train).unwrap();
    t.train_epoch(&data, &AtomicBool::new(false), &mut |_| {})
        .unwrap();
    t.save(&run).unwrap();
    let out = train(&[
        "--resume",
        "--ops",
        "reference",
        "--out",
        run.to_str().unwrap(),
    ]);
    common::assert_success(&out, "--resume");
    let stdout = text(&out);
    assert!(
        stdout.contains("; ops reference"),
        "--ops is honoured on resume: {stdout}"
    );
    assert!(stdout.contains("after epoch 1 of 2"), "{stdout}");
    assert!(stdout.contains("epoch   2/2"), "{stdout}");
}
