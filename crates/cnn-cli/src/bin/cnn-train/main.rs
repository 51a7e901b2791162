//! `cnn-train`: trains a network (a preset or a spec file) on MNIST-format data, or
//! evaluates a saved one. Flags become one [`Settings`] value, then one function per mode.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use cnn_cli::explain;
use cnn_data::pictures::PictureReport;
use cnn_data::{DataSource, Dataset, DatasetKind};
use cnn_training::checkpoint::RawCheckpoint;
use cnn_training::{Claim, RunFolder, TrainConfig, Trainer};

mod flags;
mod progress;
mod recipe;

use flags::{Cli, DEFAULT_MODEL, Mode, Settings, ops_name};

// mimalloc keeps freed memory for reuse. glibc's malloc hands the megabyte-sized buffers of
// each training step (gradients, activations) back to the kernel and faults them in again,
// zeroed, on the next: a quarter of `medium_cnn`'s hidden-layer backward went to that.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    cnn_cli::main_with(|cli: Cli| {
        let settings = cli.settings()?;
        match settings.mode.clone() {
            Mode::Evaluate { checkpoint } => evaluate(&settings, checkpoint.as_deref()),
            Mode::Train(claim) => train(settings, claim),
        }
    })
}

/// `--final-state`: the saved network's loss and accuracy on the test set.
fn evaluate(s: &Settings, checkpoint: Option<&Path>) -> Result<ExitCode> {
    let path = checkpoint.map_or_else(|| s.folder.final_state(), Path::to_path_buf);
    let (mut model, ckpt) =
        cnn_training::load_model(&path, s.expected_model(), &s.device).map_err(explain)?;
    cnn_cli::check_same_layers(s.spec.as_ref(), model.spec(), &path)?;
    model.set_ops(s.ops);
    let source = data_for(s, &ckpt, &path)?;
    let (data, _) = load(s, &source)?;
    cnn_training::check_fit(model.spec(), &data).map_err(|e| {
        anyhow::anyhow!(
            "{e} ({} holds them; pass the --data-dir it was trained on)",
            source.dir.display()
        )
    })?;
    let batch = cnn_training::eval_batch(model.spec());
    let eval = cnn_training::evaluate_in(&model, &data.test, &s.device, batch)?;
    let ops = ops_name(model.ops());
    cnn_cli::say!("loaded {} from {} (ops {ops})", ckpt.name, path.display())?;
    cnn_cli::say!("test loss: {:.4}", eval.loss)?;
    cnn_cli::say!("{}", progress::accuracy_line(eval.correct, eval.total))?;
    Ok(ExitCode::SUCCESS)
}

/// Trains into the run folder: claimed (created, locked, checked) first, given back after.
fn train(mut s: Settings, claim: Claim) -> Result<ExitCode> {
    let mut folder = std::mem::replace(&mut s.folder, RunFolder::new(""));
    if claim != Claim::Resume && folder.holds_other_files() {
        cnn_cli::warn(format_args!(
            "note: {} holds other files; the run adds only {} and {} there, and leaves the rest alone",
            folder.dir().display(),
            cnn_training::RUN_FILES.join(", "),
            cnn_training::LOCK_FILE
        ));
    }
    folder
        .claim(claim)
        .map_err(|e| folder_error(e, folder.dir()))?;
    let (mut trainer, (data, report), source) = match claim {
        Claim::Resume => resumed(&s, &folder)?,
        Claim::Fresh | Claim::Replace => fresh(&s)?,
    };
    let stop = progress::ctrl_c_flag()?;
    progress::header(&trainer, &data, &source, &s.device, folder.dir())?;
    if let Some(report) = &report {
        cnn_cli::say!("{}", cnn_cli::pictures::report_line(report))?;
    }
    let code = progress::train(&mut trainer, &data, folder.dir(), stop);
    folder.release();
    code
}

/// The data of a run, and what reading a folder of pictures found.
type Loaded = (Dataset, Option<PictureReport>);

/// A fresh run: the network of `--model`, the data of `--dataset`/`--data-dir`.
fn fresh(s: &Settings) -> Result<(Trainer, Loaded, DataSource)> {
    let spec = match &s.spec {
        Some(spec) => spec.clone(),
        None => cnn_cli::model_spec(DEFAULT_MODEL)?,
    };
    let source = match &s.data {
        Some(source) => source.clone(),
        None => cnn_cli::select_data(None, None),
    };
    let source = source.with_pictures(s.pictures.options(spec.input)?);
    let mut cfg = s.recipe.fresh(&source, s.own_data)?;
    cfg.ops = s.ops;
    let (data, report) = load(s, &source)?;
    cfg.pictures = report
        .as_ref()
        .map(|r| cnn_cli::pictures::resolved(&source.pictures, r));
    let spec = spec
        .resolve(data.train.image_shape(), data.classes())
        .map_err(|e| cnn_cli::spec_error(&s.model_arg, e))?;
    let trainer = Trainer::new(cfg, &spec, &s.device, &data.train).map_err(|e| match e {
        cnn_training::Error::OneClass => anyhow::anyhow!(
            "--data-dir {}: every label is the same, a single class; a classifier needs at least two",
            source.dir.display()
        ),
        e @ cnn_training::Error::ActivationMemory { .. } => {
            explain(e).context(format!("--model {}", s.model_arg))
        }
        other => explain(other),
    })?;
    Ok((trainer, (data, report), source))
}

/// A resumed run: model, recipe and data from the folder's checkpoint.
fn resumed(s: &Settings, folder: &RunFolder) -> Result<(Trainer, Loaded, DataSource)> {
    let path = folder.checkpoint();
    let ckpt = folder
        .resume_checkpoint(s.spec.as_ref(), &s.device)
        .map_err(explain)?;
    if let Some(spec) = &ckpt.spec {
        cnn_cli::check_same_layers(s.spec.as_ref(), spec, &path)?;
    }
    let recorded = recorded_config(&ckpt, &path)?;
    s.recipe.check_repeats(&recorded)?;
    if let Some(kind) = s.dataset
        && kind != recorded.dataset
    {
        anyhow::bail!(
            "{} holds a run on {}, not {kind} ({})",
            path.display(),
            recorded.dataset,
            match recorded.dataset {
                DatasetKind::Own => "leave --dataset out".to_string(),
                other => format!("pass --dataset {other}"),
            }
        );
    }
    // A folder given alone holds the recorded dataset (a copy moved elsewhere, say).
    let source = match (&s.data, s.dataset) {
        (Some(given), None) => DataSource::new(&given.dir, recorded.dataset)
            .with_pictures(s.pictures.over_recorded(recorded.pictures.as_ref())?),
        _ => data_for(s, &ckpt, &path)?,
    };
    let (data, report) = load(s, &source)?;
    let mut t =
        Trainer::from_checkpoint(&ckpt, &path, &s.device, data.train.len()).map_err(explain)?;
    t.set_ops(s.ops);
    cnn_cli::say!(
        "resuming {} after epoch {} of {}",
        path.display(),
        t.epochs_done(),
        t.config().epochs
    )?;
    Ok((t, (data, report), source))
}

/// The data, cut to `--train-limit` images when given; picture flags refused for IDX data.
fn load(s: &Settings, source: &DataSource) -> Result<Loaded> {
    let (mut data, report) = cnn_cli::pictures::load_reported(source)?;
    cnn_cli::pictures::check_used(&s.pictures, report.as_ref(), source)?;
    if let Some(n) = s.train_limit {
        data.train = data.train.take(n);
    }
    Ok((data, report))
}

/// The data to use with a saved run: the flags when given, else what the run recorded;
/// a folder of pictures read as the run read it.
fn data_for(s: &Settings, ckpt: &RawCheckpoint, path: &Path) -> Result<DataSource> {
    let recorded = ckpt.config.as_ref().and_then(|c| c.pictures.as_ref());
    let source = match &s.data {
        Some(source) => source.clone(),
        None => cnn_cli::recorded_data(&recorded_config(ckpt, path)?),
    };
    Ok(source.with_pictures(s.pictures.over_recorded(recorded)?))
}

fn recorded_config(ckpt: &RawCheckpoint, path: &Path) -> Result<TrainConfig> {
    ckpt.config.clone().with_context(|| {
        format!(
            "{} records no recipe; pass --dataset or --data-dir",
            path.display()
        )
    })
}

/// A run folder that cannot be used, as a line naming `--out`.
fn folder_error(e: cnn_training::Error, dir: &Path) -> anyhow::Error {
    match e {
        cnn_training::Error::Write { path, source } if path == dir => anyhow::Error::new(source)
            .context(format!("--out {}: cannot create the folder", dir.display())),
        other => explain(other),
    }
}
