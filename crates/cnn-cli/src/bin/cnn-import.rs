//! `cnn-import`: makes a run folder from a network trained elsewhere (a PyTorch `state_dict`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use candle_core::Device;
use clap::Parser;
use cnn_data::DatasetKind;
use cnn_models::NetSpec;
use cnn_training::{Claim, Renames, RunFolder, TrainConfig};

// The allocator every binary here uses (see cnn-train).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Make a run folder from a network trained elsewhere: a PyTorch state_dict saved with
/// safetensors.torch.save_file, and a spec file listing the same layers.
///
/// Tensors are named as the spec names them (conv1.weight, bn1.running_mean, fc2.bias, ...);
/// --rename maps other names. Every tensor must fit the spec, and the spec must find all
/// of its own; f64, f16 and bf16 tensors become f32. The folder then works with
/// cnn-train --final-state, cnn-predict --run and cargo xtask report --run.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// The network's layers: a spec file (or small_cnn, medium_cnn).
    #[arg(long, value_name = "FILE|NAME")]
    model: String,
    /// The state dict, a safetensors file.
    #[arg(long, value_name = "FILE")]
    weights: PathBuf,
    /// Run folder to create.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Rename table, a TOML file of lines "features.0" = "conv1": each maps a module of the
    /// file (a name prefix) to a layer of the spec.
    #[arg(long, value_name = "FILE")]
    rename: Option<PathBuf>,
    /// Dataset whose images the network takes and whose classes it names: mnist or fashion
    /// [default: mnist].
    #[arg(long, value_parser = cnn_cli::parse_dataset, value_name = "mnist|fashion")]
    dataset: Option<DatasetKind>,
    /// Folder of the four MNIST-format files instead (an optional classes.txt names the
    /// classes), or of pictures: train/ and test/, each with one folder per class.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    pictures: cnn_cli::pictures::PictureArgs,
    /// Replace the run the folder holds.
    #[arg(long)]
    overwrite: bool,
}

fn main() -> ExitCode {
    cnn_cli::main_with(import)
}

fn import(cli: Cli) -> Result<ExitCode> {
    let spec = cnn_cli::model_spec(&cli.model)?;
    let pictures = cli.pictures.options(spec.input)?;
    let renames = read_renames(cli.rename.as_ref())?;
    // Claimed first, so that a folder it may not write costs nothing; given back (and
    // removed again if this created it) however the import ends.
    let mut folder = RunFolder::new(&cli.out);
    let claim = if cli.overwrite {
        Claim::Replace
    } else {
        Claim::Fresh
    };
    folder.claim(claim).map_err(|e| folder_error(e, &cli))?;
    let source = cnn_cli::select_data(cli.dataset, cli.data_dir.clone()).with_pictures(pictures);
    let (data, report) = cnn_cli::pictures::load_reported(&source)?;
    cnn_cli::pictures::check_used(&cli.pictures, report.as_ref(), &source)?;
    let spec = spec
        .resolve(data.train.image_shape(), data.classes())
        .map_err(|e| cnn_cli::spec_error(&cli.model, e))?;
    let mut imported = import_weights(&spec, &cli, &renames)?;
    imported
        .model
        .set_class_names(data.class_names.iter().cloned())?;
    let eval = cnn_training::evaluate_in(
        &imported.model,
        &data.test,
        &Device::Cpu,
        cnn_training::eval_batch(&spec),
    )?;
    let cfg = TrainConfig {
        epochs: 0,
        dataset: source.kind,
        data_dir: (source.kind == DatasetKind::Own).then(|| source.dir.clone()),
        pictures: report
            .as_ref()
            .map(|r| cnn_cli::pictures::resolved(&source.pictures, r)),
        ..TrainConfig::default()
    };
    folder.save_imported(&imported.model, cfg)?;
    folder.release();
    cnn_cli::say!(
        "imported {} ({} parameters) from {} into {}",
        spec.name,
        spec.num_params()?,
        cli.weights.display(),
        cli.out.display()
    )?;
    cnn_cli::say!(
        "test accuracy {:.2}% ({}/{}) on {} test images",
        100.0 * eval.accuracy(),
        eval.correct,
        eval.total,
        source.kind.title()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The network with the file's weights; a note for each tensor converted to f32.
fn import_weights(spec: &NetSpec, cli: &Cli, renames: &Renames) -> Result<cnn_training::Imported> {
    let imported = cnn_training::import_state_dict(spec, &cli.weights, renames, &Device::Cpu)
        .map_err(|e| match e {
            cnn_training::Error::Model(_) => anyhow!("--weights {}: {e}", cli.weights.display()),
            e => anyhow!(e),
        })?;
    if !imported.converted.is_empty() {
        let list: Vec<String> = imported
            .converted
            .iter()
            .map(|(name, dtype)| format!("{name} ({dtype})"))
            .collect();
        cnn_cli::warn(format_args!(
            "note: {}: converted to f32: {}",
            cli.weights.display(),
            list.join(", ")
        ));
    }
    Ok(imported)
}

/// Largest rename table read: a line per module.
const MAX_RENAME_BYTES: u64 = 1 << 20;

fn read_renames(path: Option<&PathBuf>) -> Result<Renames> {
    let Some(path) = path else {
        return Ok(Renames::new());
    };
    let text = cnn_data::read_text(path, MAX_RENAME_BYTES)
        .with_context(|| format!("--rename {}", path.display()))?
        .ok_or_else(|| anyhow!("--rename {}: larger than 1 MiB", path.display()))?;
    Renames::from_toml(&text).with_context(|| format!("--rename {}", path.display()))
}

fn folder_error(e: cnn_training::Error, cli: &Cli) -> anyhow::Error {
    match e {
        cnn_training::Error::RunExists { file, .. } => anyhow!(
            "--out {}: already holds {file}, which a run writes; pass --overwrite to replace it",
            cli.out.display()
        ),
        e => cnn_cli::explain(e),
    }
}
