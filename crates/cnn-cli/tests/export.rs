//! `cnn-export`: a preset's shipped weights and a run folder to ONNX, and what it refuses.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::Path;
use std::process::{Command, Output};

fn export(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cnn-export"))
        .args(args)
        .output()
        .unwrap()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn refused(o: &Output, says: &str) {
    assert!(!o.status.success());
    let e = err(o);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.contains(says), "{e}");
}

#[test]
fn a_preset_and_a_run_export_and_nothing_is_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("small.onnx");
    let o = export(&["--model", "small_cnn", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", err(&o));
    let bytes = std::fs::read(&out).unwrap();
    // The protobuf holds the graph's names and every weight (11,730 floats).
    assert!(bytes.len() > 4 * 11_730);
    for name in [&b"conv1.weight"[..], b"fc1.bias", b"logits", b"class_names"] {
        assert!(bytes.windows(name.len()).any(|w| w == name));
    }
    // An existing file is refused, and left as it was, unless --overwrite.
    std::fs::write(&out, b"mine").unwrap();
    refused(
        &export(&["--model", "small_cnn", "--out", out.to_str().unwrap()]),
        "--overwrite",
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"mine");
    let o = export(&[
        "--model",
        "small_cnn",
        "--out",
        out.to_str().unwrap(),
        "--overwrite",
    ]);
    assert!(o.status.success(), "{}", err(&o));
    // A run folder: the shipped weights copied in as a run's final state.
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    let shipped =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/models/medium_cnn.safetensors");
    std::fs::copy(shipped, run.join("final_state.safetensors")).unwrap();
    let out = dir.path().join("medium.onnx");
    let o = export(&[
        "--run",
        run.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(std::fs::metadata(&out).unwrap().len() > 4 * 261_458);
}

#[test]
fn bad_runs_and_outputs_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.onnx");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    refused(
        &export(&[
            "--run",
            empty.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]),
        "no ",
    );
    let missing = dir.path().join("nowhere/x.onnx");
    refused(
        &export(&["--model", "small_cnn", "--out", missing.to_str().unwrap()]),
        "does not exist",
    );
    refused(
        &export(&["--model", "lenet5", "--out", out.to_str().unwrap()]),
        "--model lenet5",
    );
    refused(
        &export(&[
            "--model",
            "small_cnn",
            "--out",
            dir.path().to_str().unwrap(),
        ]),
        "is a folder",
    );
    assert!(!out.exists());
}
