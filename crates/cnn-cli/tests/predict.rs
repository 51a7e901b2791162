//! `cnn-predict` on real test digits rendered as pictures, and on bad pictures.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::Path;
use std::process::{Command, Output};

use cnn_data::{DataSource, MNIST_SIDE as IMAGE_SIDE};
use common::png_header;
use image::GrayImage;

mod common;

fn bin(name: &str) -> Command {
    Command::new(match name {
        "train" => env!("CARGO_BIN_EXE_cnn-train"),
        _ => env!("CARGO_BIN_EXE_cnn-predict"),
    })
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Digit `d` enlarged 3x as dark ink on a light page, off centre in a larger canvas.
fn page(d: &[u8], shift: u32) -> GrayImage {
    let mut img = GrayImage::from_pixel(160, 120, image::Luma([230]));
    for y in 0..84 {
        for x in 0..84 {
            let v = d[(y / 3) as usize * IMAGE_SIDE + (x / 3) as usize];
            img.put_pixel(
                8 + shift + x,
                20 + y,
                image::Luma([230 - (u16::from(v) * 210 / 255) as u8]),
            );
        }
    }
    img
}

/// The shipped MNIST.
/// The first ten test digits as pictures in `dir`, with their labels.
fn ten_digits(dir: &Path) -> Vec<(std::path::PathBuf, u8)> {
    let data = mnist();
    (0..10)
        .map(|i| {
            let f = dir.join(format!("digit{i}.png"));
            page(data.test.image(i), 10).save(&f).unwrap();
            (f, data.test.label(i))
        })
        .collect()
}

/// How many of `--json`'s predictions in `stdout` match the labels of `files`.
fn right_of(stdout: &str, files: &[(std::path::PathBuf, u8)]) -> usize {
    let items: Vec<serde_json::Value> = serde_json::from_str(stdout).unwrap();
    items
        .iter()
        .zip(files)
        .filter(|(item, (_, label))| item["class"] == u64::from(*label))
        .count()
}

fn mnist() -> cnn_data::Dataset {
    cnn_data::load(&DataSource::new(
        cnn_cli::assets_dir().join("mnist"),
        cnn_data::DatasetKind::Mnist,
    ))
    .unwrap()
}

fn train_quick(dir: &Path, dataset: &str) -> Output {
    bin("train")
        .args([
            "--model",
            "small_cnn",
            "--epochs",
            "2",
            "--train-limit",
            "6000",
            "--dataset",
            dataset,
            "--out",
        ])
        .arg(dir)
        .output()
        .unwrap()
}

#[test]
fn digits_drawn_outside_mnist_are_classified_and_bad_pictures_fail_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let trained = train_quick(&run, "mnist");
    assert!(trained.status.success(), "{}", text(&trained).1);
    let data = mnist();
    let mut files = Vec::new();
    for i in 0..12 {
        let f = tmp.path().join(format!("digit{i}.png"));
        page(data.test.image(i), (i as u32 * 5) % 60)
            .save(&f)
            .unwrap();
        files.push((f, data.test.label(i)));
    }
    let out = bin("predict")
        .args(["--model", "small_cnn", "--json", "--run"])
        .arg(&run)
        .args(files.iter().map(|f| &f.0))
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let items: Vec<serde_json::Value> = serde_json::from_str(&stdout).unwrap();
    let right = items
        .iter()
        .zip(&files)
        .filter(|(it, (_, label))| it["class"].as_u64() == Some(u64::from(*label)))
        .count();
    assert!(right >= 11, "{right}/12 right: {stdout}");
    assert_eq!(items[0]["top3"].as_array().unwrap().len(), 3);

    // Plain lines, the preprocessed inputs saved, and bad files reported one by one.
    let notimg = tmp.path().join("notes.png");
    std::fs::write(&notimg, "hello, not a picture").unwrap();
    let empty = tmp.path().join("empty.jpg");
    std::fs::write(&empty, b"").unwrap();
    let blank = tmp.path().join("blank.png");
    GrayImage::from_pixel(64, 64, image::Luma([250]))
        .save(&blank)
        .unwrap();
    let huge = tmp.path().join("huge.png");
    std::fs::write(&huge, png_header(100_000, 100_000)).unwrap();
    let seen = tmp.path().join("seen");
    let out = bin("predict")
        .args(["--model", "small_cnn", "--run"])
        .arg(&run)
        .arg("--save-preprocessed")
        .arg(&seen)
        .args([&files[0].0, &notimg, &empty, &blank, &huge, &files[1].0])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "some files failed: exit 1");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].starts_with(&format!("{}: {}", files[0].0.display(), files[0].1)),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with(&format!("{}: {}", files[1].0.display(), files[1].1)),
        "{stdout}"
    );
    for (f, why) in [
        (&notimg, "not a valid image"),
        (&empty, "empty"),
        (&blank, "no ink"),
        (&huge, "above the limit"),
    ] {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains(&*f.to_string_lossy()) && l.contains(why)),
            "{why}: {stderr}"
        );
    }
    assert!(!stderr.contains("panicked"));
    let saved = image::open(seen.join("digit0.png")).unwrap();
    assert_eq!((saved.width(), saved.height()), (28, 28));
}

#[test]
fn fashion_mnist_trains_on_a_subset_and_names_its_classes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = train_quick(tmp.path(), "fashion");
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "Fashion-MNIST must be installed (apt-get install dataset-fashion-mnist): {stderr}"
    );
    let last = stdout.lines().last().unwrap();
    let acc: f64 = last
        .trim_start_matches("test accuracy: ")
        .split('%')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(acc > 75.0, "{last}");
    // The checkpoint remembers its dataset, so predictions use clothing names: each
    // prediction and each of its top 3 is named by its own class's name. (Accuracy is not
    // asserted here: the MNIST-style preprocessing, which fits a digit into 20x20, shrinks
    // clothes that fill their 28x28 frame.)
    let data = cnn_data::load(&DataSource::fashion_system()).unwrap();
    let files: Vec<_> = (0..10)
        .map(|i| {
            let f = tmp.path().join(format!("item{i}.png"));
            GrayImage::from_raw(28, 28, data.test.image(i).to_vec())
                .unwrap()
                .save(&f)
                .unwrap();
            f
        })
        .collect();
    let out = bin("predict")
        .args(["--model", "small_cnn", "--json", "--run"])
        .arg(tmp.path())
        .args(&files)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out).1);
    let names = cnn_data::DatasetKind::Fashion.class_names();
    let items: Vec<serde_json::Value> = serde_json::from_str(&text(&out).0).unwrap();
    assert_eq!(items.len(), 10);
    for item in &items {
        let class = item["class"].as_u64().unwrap() as usize;
        assert_eq!(item["prediction"], names[class], "{item}");
        for top in item["top3"].as_array().unwrap() {
            assert_eq!(
                top["name"],
                names[top["class"].as_u64().unwrap() as usize],
                "{item}"
            );
        }
    }
}

#[test]
fn a_failed_save_fails_that_picture_alone_and_an_unknown_dataset_is_noted() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let trained = train_quick(&run, "mnist");
    assert!(trained.status.success(), "{}", text(&trained).1);
    let data = mnist();
    // The preprocessed copy of the first picture cannot be written: its name, 252 letters
    // and `.png`, is longer than a file name may be (a taken name would only move it on).
    let stem = "a".repeat(252);
    let (a, b) = (
        tmp.path().join(format!("{stem}.p")),
        tmp.path().join("b.png"),
    );
    page(data.test.image(0), 0)
        .save_with_format(&a, image::ImageFormat::Png)
        .unwrap();
    page(data.test.image(1), 0).save(&b).unwrap();
    let seen = tmp.path().join("seen");
    std::fs::create_dir_all(&seen).unwrap();
    let out = bin("predict")
        .args(["--run"])
        .arg(&run)
        .arg("--save-preprocessed")
        .arg(&seen)
        .args([&a, &b])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stdout.starts_with(&format!("{}: 2 (", b.display())),
        "{stdout}"
    );
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stderr.starts_with("error: ") && stderr.contains(&format!("seen/{stem}.png")),
        "{stderr}"
    );
    assert!(seen.join("b.png").is_file());

    // A run on a dataset this build does not know, with no class names recorded.
    let state = run.join("final_state.safetensors");
    let bytes = std::fs::read(&state).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let json = &header.metadata().as_ref().unwrap()["cnn_mnist"];
    let mut meta: std::collections::BTreeMap<String, String> = serde_json::from_str(json).unwrap();
    let mut cfg: serde_json::Value = serde_json::from_str(&meta["config"]).unwrap();
    cfg["dataset"] = "letters".into();
    cfg.as_object_mut().unwrap().remove("class_names");
    meta.insert("config".into(), cfg.to_string());
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let tensors: Vec<_> = st.tensors();
    let edited = safetensors::serialize(
        tensors,
        Some(
            [(
                "cnn_mnist".to_string(),
                serde_json::to_string(&meta).unwrap(),
            )]
            .into(),
        ),
    )
    .unwrap();
    std::fs::write(&state, edited).unwrap();
    let out = bin("predict")
        .arg("--run")
        .arg(&run)
        .arg(&b)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("note: ") && stderr.contains("dataset `letters`"),
        "{stderr}"
    );
    assert!(stdout.contains(": 2 ("), "{stdout}");

    let out = bin("predict")
        .args(["--device", "tpu", "--run"])
        .arg(&run)
        .arg(&b)
        .output()
        .unwrap();
    // A usage error, found by the flag parser: exit code 2, naming the flag.
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out)
            .1
            .starts_with("error: invalid value 'tpu' for '--device"),
        "{}",
        text(&out).1
    );
}

#[test]
fn a_fresh_clone_predicts_with_the_shipped_weights() {
    // An empty working folder: no runs/ at all, as on a fresh clone.
    let tmp = tempfile::tempdir().unwrap();
    let files = ten_digits(tmp.path());
    // A copy of the program elsewhere, as `cargo install` makes: the weights travel inside it.
    let copy = tmp.path().join("cnn-predict");
    std::fs::copy(env!("CARGO_BIN_EXE_cnn-predict"), &copy).unwrap();
    for model in ["small_cnn", "medium_cnn"] {
        let out = std::process::Command::new(&copy)
            .current_dir(tmp.path())
            .args(["--model", model, "--json"])
            .args(files.iter().map(|(f, _)| f))
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{model}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "using the shipped weights of {model} (built into cnn-predict)"
            )),
            "{stderr}"
        );
        let right = right_of(&stdout, &files);
        assert!(right >= 9, "{model}: {right}/10 digits right: {stdout}");
    }
}

#[test]
fn a_spec_file_uses_the_weights_shipped_beside_it() {
    let tmp = tempfile::tempdir().unwrap();
    let files = ten_digits(tmp.path());
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/models");
    // No runs/ in the working folder: mnist_best.toml's neighbour mnist_best.safetensors.
    let out = bin("predict")
        .current_dir(tmp.path())
        .arg("--model")
        .arg(assets.join("mnist_best.toml"))
        .arg("--json")
        .args(files.iter().map(|(f, _)| f))
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("mnist_best.safetensors"), "{stderr}");
    let right = right_of(&stdout, &files);
    assert!(right >= 9, "{right}/10 digits right: {stdout}");

    // Weights of another network beside a spec: refused, naming the file and both networks.
    let spec = tmp.path().join("mnist_best.toml");
    std::fs::copy(assets.join("mnist_best.toml"), &spec).unwrap();
    let wrong = tmp.path().join("mnist_best.safetensors");
    std::fs::copy(assets.join("small_cnn.safetensors"), &wrong).unwrap();
    let out = bin("predict")
        .current_dir(tmp.path())
        .arg("--model")
        .arg(&spec)
        .arg(&files[0].0)
        .output()
        .unwrap();
    let stderr = text(&out).1;
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let error = stderr.lines().last().unwrap();
    assert!(
        error.contains("mnist_best.safetensors")
            && error.contains("small_cnn")
            && error.contains("mnist_best"),
        "{stderr}"
    );
}

#[test]
fn pictures_sharing_a_file_name_keep_their_own_preprocessed_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let data = mnist();
    // Two different digits, both called digit.png, in two folders.
    let mut files = Vec::new();
    for (i, folder) in ["a", "b"].iter().enumerate() {
        let f = tmp.path().join(folder).join("digit.png");
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        page(data.test.image(i), 0).save(&f).unwrap();
        files.push(f);
    }
    let seen = tmp.path().join("seen");
    let out = bin("predict")
        .current_dir(tmp.path())
        .args(["--model", "small_cnn", "--save-preprocessed"])
        .arg(&seen)
        .args(&files)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out).1);
    let first = image::open(seen.join("digit.png")).unwrap().into_luma8();
    let second = image::open(seen.join("digit-2.png")).unwrap().into_luma8();
    assert_ne!(first, second, "each picture keeps its own copy");
    for (saved, path) in [(&first, &files[0]), (&second, &files[1])] {
        let expected = cnn_data::preprocess::load_image(path).unwrap();
        assert_eq!(saved.as_raw(), &expected.pixels, "{}", path.display());
    }
}

#[test]
fn pictures_with_data_after_their_end_marker_are_classified() {
    let tmp = tempfile::tempdir().unwrap();
    let data = mnist();
    let img = page(data.test.image(0), 10);
    let mut files = Vec::new();
    for (format, ext, tail) in [
        (image::ImageFormat::Png, "png", vec![7u8; 70]),
        (image::ImageFormat::Jpeg, "jpg", vec![0u8; 100]),
    ] {
        let mut bytes = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut bytes), format)
            .unwrap();
        bytes.extend(tail);
        let file = tmp.path().join(format!("padded.{ext}"));
        std::fs::write(&file, bytes).unwrap();
        files.push(file);
    }
    let out = bin("predict")
        .current_dir(tmp.path())
        .args(["--model", "small_cnn"])
        .args(&files)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout.matches(": 7 (").count(), 2, "{stdout}");
}
