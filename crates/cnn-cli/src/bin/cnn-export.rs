//! `cnn-export`: writes a trained network as an ONNX file.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, anyhow, bail};
use candle_core::Device;
use clap::Parser;
use cnn_models::Arch;
use cnn_training::RunFolder;

// The allocator every binary here uses (see cnn-train).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Write a trained network as an ONNX file (opset 17), for onnxruntime, tract or any other
/// ONNX runtime.
///
/// Input `input`: float32 [N, C, H, W], pixels / 255 as in training. Output `logits`:
/// [N, classes], before softmax. Batch norm is a BatchNormalization node, dropout is left
/// out; the class names and the spec are in the model's metadata_props.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Run folder holding final_state.safetensors.
    #[arg(long, value_name = "DIR", conflicts_with = "model")]
    run: Option<PathBuf>,
    /// Without --run: a preset (small_cnn or medium_cnn), exported with its shipped weights
    /// (those of runs/<model> when trained there).
    #[arg(long, value_name = "NAME")]
    model: Option<String>,
    /// The ONNX file to write.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Replace --out if it exists.
    #[arg(long)]
    overwrite: bool,
}

fn main() -> ExitCode {
    cnn_cli::main_with(export)
}

fn export(cli: Cli) -> Result<ExitCode> {
    check_out(&cli)?;
    let (folder, shipped) = match (&cli.run, cli.model.as_deref()) {
        (Some(dir), _) => (RunFolder::new(dir), None),
        (None, Some(name)) => {
            let arch = Arch::from_name(name)
                .ok_or_else(|| anyhow!("--model {name}: expected small_cnn or medium_cnn (for a run of your own, pass --run DIR)"))?;
            let dir = RunFolder::default_dir(arch.name(), cnn_data::DatasetKind::Mnist);
            (RunFolder::new(dir), Some(cnn_cli::shipped_weights(arch)))
        }
        (None, None) => bail!("pass --run DIR (a run folder) or --model small_cnn|medium_cnn"),
    };
    let expected = cli.model.as_deref();
    let loaded = folder
        .load_model(expected, shipped, &Device::Cpu)
        .map_err(|e| match e {
            cnn_training::Error::ReadCheckpoint { path, source }
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                anyhow!(
                    "--run {}: no {} there (is it a run folder?)",
                    folder.dir().display(),
                    path.display()
                )
            }
            e => cnn_cli::explain(e),
        })?;
    let bytes = cnn_onnx::to_onnx(&loaded.model)?;
    cnn_data::atomic::write_atomic(&cli.out, &bytes)
        .map_err(|e| anyhow!("--out {}: cannot write it: {e}", cli.out.display()))?;
    cnn_cli::say!(
        "wrote {} ({}, {} parameters, {} classes, {:.1} kB)",
        cli.out.display(),
        loaded.model.spec().name,
        loaded.model.spec().num_params()?,
        loaded.model.classes(),
        bytes.len() as f64 / 1e3
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Refuses an --out that exists (without --overwrite), is a folder, or lies in a missing
/// folder, before anything is loaded.
fn check_out(cli: &Cli) -> Result<()> {
    let out = &cli.out;
    if out.is_dir() {
        bail!(
            "--out {}: is a folder; name the .onnx file to write",
            out.display()
        );
    }
    if out.exists() && !cli.overwrite {
        bail!(
            "--out {}: exists; pass --overwrite to replace it",
            out.display()
        );
    }
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(parent) = parent
        && !parent.is_dir()
    {
        bail!(
            "--out {}: the folder {} does not exist",
            out.display(),
            parent.display()
        );
    }
    Ok(())
}
