//! The last step of `cargo xtask test`: `examples/downstream`, a project outside the
//! workspace, built the way any other project builds on these crates, run on a small subset,
//! and its outputs checked.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use cnn_training::prelude::*;

/// Training images the run uses: enough for the predictions to mean something, few enough
/// for seconds.
const TRAIN_IMAGES: &str = "1200";

/// Builds and runs the example in a temporary folder, then checks what it printed and wrote.
pub fn check(root: &Path, cargo: &str) -> Result<()> {
    let manifest = root.join("examples/downstream/Cargo.toml");
    // The workspace's target folder: the example shares its lock file versions and release
    // profile, so what the two feature sets have in common is compiled once. (They differ:
    // the workspace's build gives libc `extra_traits`, through cnn-cli's ctrlc, and the
    // example's does not, so candle and what it builds on compile again, about 3 minutes.)
    let status = Command::new(cargo)
        .env("CARGO_TARGET_DIR", root.join("target"))
        .args(["build", "--release", "--locked", "--manifest-path"])
        .arg(&manifest)
        .status()
        .context("cannot run cargo build for examples/downstream")?;
    ensure!(status.success(), "examples/downstream does not build");
    let out = tempfile::tempdir()?;
    let run = Command::new(root.join("target/release/downstream"))
        .arg(root.join("assets/mnist"))
        .arg(TRAIN_IMAGES)
        .current_dir(out.path())
        .output()
        .context("cannot run examples/downstream")?;
    let stdout = String::from_utf8_lossy(&run.stdout);
    if !run.status.success() {
        bail!(
            "examples/downstream failed: {}",
            String::from_utf8_lossy(&run.stderr).trim()
        );
    }
    check_outputs(out.path(), &stdout)
}

/// Five prediction lines naming the classes, two PNG figures, and a network file that loads
/// with its class names.
fn check_outputs(dir: &Path, stdout: &str) -> Result<()> {
    let names = ["zero", "one", "two", "three", "four", "five"];
    let lines: Vec<&str> = stdout.lines().collect();
    ensure!(
        lines.len() == 5,
        "expected 5 prediction lines, got:\n{stdout}"
    );
    for line in &lines {
        let (truth, rest) = line.split_once(" -> ").context("a line without ` -> `")?;
        let predicted = rest.split(' ').next().unwrap_or_default();
        ensure!(
            names.contains(&truth) && names.contains(&predicted) && rest.ends_with("%)"),
            "unexpected prediction line `{line}`"
        );
    }
    for figure in ["kernels.png", "curves.png"] {
        let bytes = std::fs::read(dir.join(figure)).with_context(|| format!("no {figure}"))?;
        ensure!(bytes.starts_with(b"\x89PNG"), "{figure} is not a PNG");
    }
    let model = Cnn::load(dir.join("six.safetensors"), &Device::Cpu)?;
    ensure!(
        model.class_names() == names,
        "six.safetensors names its classes {:?}",
        model.class_names()
    );
    Ok(())
}
