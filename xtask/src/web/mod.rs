//! `cargo xtask web`: builds the interactive page into target/web/ (the engine as wasm, the
//! page, the models and a few test digits) and, with `--serve`, serves it on 127.0.0.1.

mod serve;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use cnn_data::{DataSource, DatasetKind};
use serde_json::json;

/// Options of `cargo xtask web`.
#[derive(Debug, clap::Args)]
pub struct WebArgs {
    /// Also serve the site on 127.0.0.1 and print its URL (Ctrl-C stops).
    #[arg(long)]
    serve: bool,
    /// Port for --serve (0: any free port).
    #[arg(long, default_value_t = 8080, requires = "serve")]
    port: u16,
    /// A run folder whose model (final_state.safetensors) the page offers too; repeatable.
    #[arg(long = "run", value_name = "DIR")]
    runs: Vec<PathBuf>,
    /// Folder to build the site into [default: target/web].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// The trained networks the page always offers, shipped in assets/models/: the two presets
/// and the most accurate network of our own design.
const SHIPPED: [&str; 3] = ["small_cnn", "medium_cnn", "mnist_best"];
/// Test digits the page's "random test digit" button picks from (the first ones of the
/// test set; 784 bytes each).
const DIGITS: usize = 100;
/// The page's own files, copied as they are.
const PAGE_FILES: [&str; 3] = ["index.html", "app.js", "style.css"];

/// Builds the site, then serves it when asked.
pub fn main(args: WebArgs) -> Result<()> {
    let root = crate::repo_root();
    let out = args.out.unwrap_or_else(|| root.join("target/web"));
    build(&root, &out, &args.runs)?;
    if args.serve {
        serve::serve(&out, args.port)?;
    }
    Ok(())
}

#[allow(clippy::print_stdout)]
fn build(root: &Path, out: &Path, runs: &[PathBuf]) -> Result<()> {
    let wasm = build_wasm(root)?;
    std::fs::create_dir_all(out.join("models"))
        .with_context(|| format!("cannot create {}", out.join("models").display()))?;
    copy(&wasm, &out.join("cnn_web.wasm"))?;
    for file in PAGE_FILES {
        copy(&root.join("crates/cnn-web/www").join(file), &out.join(file))?;
    }
    let mut models = Vec::new();
    for preset in SHIPPED {
        let weights = root
            .join("assets/models")
            .join(format!("{preset}.safetensors"));
        models.push(add_model(&weights, preset, preset, out)?);
    }
    for run in runs {
        let weights = run.join(cnn_training::FINAL_STATE_FILE);
        let id = format!("run-{}", models.len() - SHIPPED.len() + 1);
        let folder = run.file_name().map_or_else(
            || run.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        models.push(add_model(&weights, &id, &folder, out)?);
    }
    let digits = write_digits(root, out)?;
    let manifest = json!({ "models": models, "digits": digits });
    write(
        &out.join("models.json"),
        serde_json::to_string_pretty(&manifest)?.as_bytes(),
    )?;
    let (files, bytes) = site_size(out)?;
    println!(
        "built {} ({files} files, {:.2} MB)",
        out.display(),
        bytes as f64 / 1e6
    );
    Ok(())
}

/// Compiles crates/cnn-web for wasm32 with the small `wasm` profile; returns the module.
fn build_wasm(root: &Path) -> Result<PathBuf> {
    const TARGET: &str = crate::setup::WASM_TARGET;
    crate::setup::ensure_wasm_target(root)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .args([
            "build",
            "-p",
            "cnn-web",
            "--target",
            TARGET,
            "--profile",
            "wasm",
        ])
        .status()
        .context("cannot run cargo to build the page's wasm")?;
    if !status.success() {
        bail!("building crates/cnn-web for {TARGET} failed (cargo's errors above)");
    }
    Ok(root.join("target").join(TARGET).join("wasm/cnn_web.wasm"))
}

/// Checks that `weights` loads in the page's engine, copies it into the site and returns
/// its entry for models.json.
fn add_model(weights: &Path, id: &str, label: &str, out: &Path) -> Result<serde_json::Value> {
    let bytes = std::fs::read(weights).with_context(|| {
        format!(
            "cannot read {} (the page needs trained weights: `cargo xtask report --retrain` \
             writes the presets', `cnn-train` a run's)",
            weights.display()
        )
    })?;
    let engine = cnn_web::Engine::from_bytes(&bytes, &weights.display().to_string())
        .map_err(anyhow::Error::from)
        .with_context(|| format!("{} cannot be shown on the page", weights.display()))?;
    let ckpt = cnn_training::checkpoint::decode(&bytes, weights, &candle_core::Device::Cpu)?;
    let file = format!("models/{id}.safetensors");
    write(&out.join(&file), &bytes)?;
    let label = if label == engine.name() {
        label.to_string()
    } else {
        format!("{label} ({})", engine.name())
    };
    let accuracy = ckpt
        .metadata
        .get("test_accuracy")
        .and_then(|a| a.parse::<f64>().ok());
    Ok(json!({
        "id": id,
        "label": label,
        "file": file,
        "test_accuracy": accuracy,
        "dataset": ckpt.metadata.get("dataset"),
    }))
}

/// The first [`DIGITS`] MNIST test images then their labels, as digits.bin.
fn write_digits(root: &Path, out: &Path) -> Result<serde_json::Value> {
    let source = DataSource::new(root.join("assets/mnist"), DatasetKind::Mnist);
    let data = cnn_data::load(&source)
        .with_context(|| format!("loading the test digits from {}", source.dir.display()))?;
    let test = &data.test;
    let count = DIGITS.min(test.len());
    let (rows, cols) = (test.rows(), test.cols());
    let mut bytes = test.images()[..count * rows * cols].to_vec();
    bytes.extend_from_slice(&test.labels()[..count]);
    write(&out.join("digits.bin"), &bytes)?;
    Ok(json!({ "file": "digits.bin", "count": count, "rows": rows, "cols": cols, "first": 0 }))
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    let bytes = std::fs::read(from).with_context(|| format!("cannot read {}", from.display()))?;
    write(to, &bytes)
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    cnn_data::atomic::write_atomic(path, bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Files and bytes of what the page loads: the page, the wasm, the models, the digits.
fn site_size(out: &Path) -> Result<(usize, u64)> {
    let mut files = vec![
        out.join("cnn_web.wasm"),
        out.join("models.json"),
        out.join("digits.bin"),
    ];
    files.extend(PAGE_FILES.iter().map(|f| out.join(f)));
    for entry in std::fs::read_dir(out.join("models"))? {
        files.push(entry?.path());
    }
    let mut bytes = 0;
    for f in &files {
        bytes += std::fs::metadata(f)
            .with_context(|| format!("{}", f.display()))?
            .len();
    }
    Ok((files.len(), bytes))
}
