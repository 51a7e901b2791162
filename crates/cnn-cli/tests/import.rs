//! `cnn-import` on the PyTorch fixture of cnn-training's tests, and on what goes wrong.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../cnn-training/tests/fixtures/torch_import")
        .join(name)
}

fn import(out: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cnn-import"))
        .arg("--model")
        .arg(fixture("spec.toml"))
        .arg("--weights")
        .arg(fixture("state_dict.safetensors"))
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn an_imported_run_evaluates_and_predicts_like_a_trained_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("torch");
    let renames = fixture("renames.toml");
    let o = import(&out, &["--rename", renames.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let said = String::from_utf8_lossy(&o.stdout);
    let accuracy = said
        .lines()
        .find_map(|l| l.strip_prefix("test accuracy "))
        .and_then(|l| l.split('%').next())
        .unwrap()
        .to_string();
    assert!(
        stderr(&o).contains("converted to f32: classifier.bias (F64)"),
        "{}",
        stderr(&o)
    );
    // cnn-train --final-state finds the same accuracy in the folder.
    let eval = Command::new(env!("CARGO_BIN_EXE_cnn-train"))
        .args(["--final-state", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(eval.status.success(), "{}", stderr(&eval));
    let evaluated = String::from_utf8_lossy(&eval.stdout);
    assert!(
        evaluated.contains(&format!("test accuracy: {accuracy}%")),
        "{evaluated} vs {accuracy}"
    );
    // A second import into it is refused, and replaces it with --overwrite.
    let again = import(&out, &["--rename", renames.to_str().unwrap()]);
    assert!(!again.status.success());
    assert_eq!(stderr(&again).lines().count(), 1, "{}", stderr(&again));
    assert!(
        stderr(&again).contains("pass --overwrite"),
        "{}",
        stderr(&again)
    );
    let replaced = import(
        &out,
        &["--rename", renames.to_str().unwrap(), "--overwrite"],
    );
    assert!(replaced.status.success(), "{}", stderr(&replaced));
}

#[test]
fn names_that_do_not_fit_are_one_line_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("torch");
    let o = import(&out, &[]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("classifier.bias") && err.contains("no place for"),
        "{err}"
    );
    assert!(!out.exists());
    let bad = dir.path().join("renames.toml");
    std::fs::write(&bad, "\"features.0\" = 3\n").unwrap();
    let o = import(&out, &["--rename", bad.to_str().unwrap()]);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("--rename") && err.contains("features.0"),
        "{err}"
    );
    assert!(!out.exists());
}
