//! `cnn-train`: trains a network (a preset or a spec file) on MNIST-format data, or
//! evaluates a saved one.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use candle_core::Device;
use cnn_cli::explain;
use cnn_data::{DataSource, Dataset};
use cnn_models::NetSpec;
use cnn_training::checkpoint::RawCheckpoint;
use cnn_training::{Event, FINAL_STATE_FILE, RunOutcome, TrainConfig, Trainer};
use indicatif::{ProgressBar, ProgressStyle};

mod flags;

// mimalloc keeps freed memory for reuse. glibc's malloc hands the megabyte-sized buffers of
// each training step (gradients, activations) back to the kernel and faults them in again,
// zeroed, on the next: a quarter of `medium_cnn`'s hidden-layer backward went to that.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use flags::{Cli, DEFAULT_MODEL, config, ops_name, ops_path, refuse_recipe_flags};

fn accuracy_line(correct: usize, total: usize) -> String {
    format!(
        "test accuracy: {:.2}% ({correct}/{total})",
        100.0 * correct as f64 / total.max(1) as f64
    )
}

/// Exit code of a run stopped by Ctrl-C, as shells report a SIGINT death (128 + 2).
const INTERRUPTED: u8 = 130;

/// `--out`, or `runs/<name>` (`runs/fashion/<name>` for Fashion-MNIST).
fn out_dir(cli: &Cli, name: &str, dataset: &str) -> PathBuf {
    cli.out.clone().unwrap_or_else(|| match dataset {
        "fashion" | "fashion-mnist" => PathBuf::from("runs/fashion").join(name),
        _ => PathBuf::from("runs").join(name),
    })
}

/// The spec `--model` names, if given.
fn given_spec(cli: &Cli) -> Result<Option<NetSpec>> {
    cli.model.as_deref().map(cnn_cli::model_spec).transpose()
}

/// The data to use with a saved run: the flags when given, else what the run recorded.
fn data_for(cli: &Cli, ckpt: &RawCheckpoint, path: &Path) -> Result<DataSource> {
    if cli.dataset.is_some() || cli.data_dir.is_some() {
        return cnn_cli::select_data(cli.dataset(), cli.data_dir.clone());
    }
    let cfg = recorded_config(ckpt, path)?;
    cnn_cli::recorded_data(&cfg)
}

fn recorded_config(ckpt: &RawCheckpoint, path: &Path) -> Result<TrainConfig> {
    ckpt.config.clone().with_context(|| {
        format!(
            "{} records no recipe; pass --dataset or --data-dir",
            path.display()
        )
    })
}

/// The data, with the model's input shape and classes checked against it.
fn check_fits(model: &cnn_models::Cnn, data: &Dataset, source: &DataSource) -> Result<()> {
    let (input, classes) = (model.input_shape(), model.classes());
    if data.test.image_shape() != input || data.classes() != classes {
        anyhow::bail!(
            "model {} takes {input:?} images with {classes} classes, but {} holds {:?} images with {} classes (pass the --data-dir it was trained on)",
            model.spec().name,
            source.dir.display(),
            data.test.image_shape(),
            data.classes()
        );
    }
    Ok(())
}

fn final_state(cli: &Cli, device: &Device) -> Result<ExitCode> {
    let spec = given_spec(cli)?;
    let name = spec.as_ref().map_or(DEFAULT_MODEL, |s| s.name.as_str());
    let out = out_dir(cli, name, cli.dataset());
    let path = cli
        .checkpoint
        .clone()
        .unwrap_or_else(|| out.join(FINAL_STATE_FILE));
    let expected = spec.as_ref().map(|s| s.name.as_str());
    let (mut model, ckpt) = cnn_training::load_model(&path, expected, device).map_err(explain)?;
    model.set_ops(ops_path(cli.ops));
    let source = data_for(cli, &ckpt, &path)?;
    let data = cnn_cli::load_data(&source)?;
    check_fits(&model, &data, &source)?;
    let eval = cnn_training::evaluate(&model, &data.test, device)?;
    cnn_cli::say!(
        "loaded {} from {} (ops {})",
        ckpt.name,
        path.display(),
        ops_name(model.ops())
    )?;
    cnn_cli::say!("test loss: {:.4}", eval.loss)?;
    cnn_cli::say!("{}", accuracy_line(eval.correct, eval.total))?;
    Ok(ExitCode::SUCCESS)
}

/// A fresh run: the network of `--model`, the data of `--dataset`/`--data-dir`.
fn fresh(cli: &Cli, spec: Option<NetSpec>, device: &Device) -> Result<(Trainer, Dataset)> {
    let spec = match spec {
        Some(s) => s,
        None => cnn_cli::model_spec(DEFAULT_MODEL)?,
    };
    let source = cnn_cli::select_data(cli.dataset(), cli.data_dir.clone())?;
    let mut cfg = config(cli, &source);
    cfg.validate().map_err(explain)?;
    if cli.train_limit == Some(0) {
        anyhow::bail!("invalid --train-limit 0: must be at least 1");
    }
    let mut data = cnn_cli::load_data(&source)?;
    if let Some(n) = cli.train_limit {
        data.train = data.train.head(n);
    }
    cfg.class_names = data.class_names.clone();
    let arg = cli.model.as_deref().unwrap_or(DEFAULT_MODEL);
    let spec = spec
        .resolve(data.train.image_shape(), data.classes())
        .map_err(|e| cnn_cli::spec_error(arg, e))?;
    let trainer = Trainer::new(cfg, &spec, device, &data.train).map_err(explain)?;
    Ok((trainer, data))
}

/// A resumed run: model, recipe and data from `<out>/checkpoint.safetensors`.
fn resumed(
    cli: &Cli,
    spec: Option<&NetSpec>,
    out: &Path,
    device: &Device,
) -> Result<(Trainer, Dataset)> {
    let path = out.join(cnn_training::CHECKPOINT_FILE);
    let ckpt = cnn_training::checkpoint::read(&path, device).map_err(explain)?;
    if let Some(spec) = &spec
        && spec.name != ckpt.name
    {
        anyhow::bail!(
            "{} holds a {} run, not {} (pass --model {}, or leave --model out)",
            path.display(),
            ckpt.name,
            spec.name,
            ckpt.name
        );
    }
    let recorded = recorded_config(&ckpt, &path)?;
    refuse_recipe_flags(cli, &recorded)?;
    let source = data_for(cli, &ckpt, &path)?;
    if recorded.dataset != source.kind.name() {
        anyhow::bail!(
            "{} holds a run on {}, not {} (pass --dataset {})",
            path.display(),
            recorded.dataset,
            source.kind.name(),
            recorded.dataset
        );
    }
    let mut data = cnn_cli::load_data(&source)?;
    if let Some(n) = cli.train_limit {
        data.train = data.train.head(n);
    }
    let mut t =
        Trainer::from_checkpoint(&ckpt, &path, device, data.train.len()).map_err(explain)?;
    t.set_ops(ops_path(cli.ops));
    cnn_cli::say!(
        "resuming {} after epoch {} of {}",
        path.display(),
        t.epochs_done(),
        t.config().epochs
    )?;
    Ok((t, data))
}

fn run(cli: Cli) -> Result<ExitCode> {
    let device = cnn_cli::select_device(cli.ngpus, cli.device)?;
    if cli.final_state {
        return final_state(&cli, &device);
    }
    if cli.checkpoint.is_some() {
        anyhow::bail!(
            "--checkpoint is read only with --final-state (to evaluate that file); training would ignore it"
        );
    }
    let spec = given_spec(&cli)?;
    let out = out_of_run(&cli, spec.as_ref())?;
    // Held until the process ends: a second run into the folder is refused. A folder that
    // does not exist yet is created (and locked) only once the data has loaded.
    let mut lock = if out.is_dir() {
        Some(lock_out(&out)?)
    } else {
        None
    };
    if !cli.resume && !cli.overwrite {
        refuse_existing_run(&out)?;
    }
    let (mut trainer, data) = if cli.resume {
        resumed(&cli, spec.as_ref(), &out, &device)?
    } else {
        fresh(&cli, spec, &device)?
    };
    if lock.is_none() {
        std::fs::create_dir_all(&out)
            .with_context(|| format!("--out {}: cannot create the folder", out.display()))?;
        lock = Some(lock_out(&out)?);
        if !cli.resume && !cli.overwrite {
            refuse_existing_run(&out)?;
        }
    }
    print_header(&trainer, &data, &device, &out)?;
    let code = train(&mut trainer, &data, &out);
    drop(lock);
    code
}

/// The run folder of a training or resumed run, checked to be a folder (when it exists)
/// before any data is loaded or any epoch trained.
fn out_of_run(cli: &Cli, spec: Option<&NetSpec>) -> Result<PathBuf> {
    let name = spec.map_or(DEFAULT_MODEL, |s| s.name.as_str());
    let out = out_dir(cli, name, cli.dataset());
    if out.exists() && !out.is_dir() {
        anyhow::bail!("--out {}: is a file, not a folder", out.display());
    }
    Ok(out)
}

/// Name of the lock file a run holds in its folder.
const LOCK_FILE: &str = "run.lock";

/// An advisory lock on `<out>/run.lock`, released when the process ends (however it ends).
fn lock_out(out: &Path) -> Result<std::fs::File> {
    let path = out.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("--out {}: cannot create {LOCK_FILE}", out.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "--out {}: another run is using this folder (it holds {LOCK_FILE}); wait for it to end or pick another --out",
            out.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("--out {}: cannot lock {LOCK_FILE}", out.display()))
        }
    }
}

/// A fresh run must not silently replace a run already in `out`.
fn refuse_existing_run(out: &Path) -> Result<()> {
    for file in [cnn_training::CHECKPOINT_FILE, FINAL_STATE_FILE] {
        if out.join(file).exists() {
            anyhow::bail!(
                "--out {}: already holds a run ({file}); continue it with --resume, or pass --overwrite to replace it",
                out.display()
            );
        }
    }
    Ok(())
}

fn print_header(trainer: &Trainer, data: &Dataset, device: &Device, out: &Path) -> Result<()> {
    let cfg = trainer.config();
    let spec = trainer.model().spec();
    cnn_cli::say!(
        "training {} ({} parameters) on {} {} images of {}x{} in {} classes{}, testing on {}; device {:?}; output {}",
        spec.name,
        trainer
            .model()
            .layers()
            .iter()
            .map(|l| l.params)
            .sum::<usize>(),
        trainer.n_train(),
        data.kind.name(),
        data.train.rows(),
        data.train.cols(),
        data.classes(),
        if cfg.validation > 0 {
            format!(" ({} more held out to validate)", cfg.validation)
        } else {
            String::new()
        },
        data.test.len(),
        device,
        out.display()
    )?;
    let a = &cfg.augment;
    let extra = [
        (!a.is_none()).then(|| {
            format!(
                " rotate {} scale {} translate {}{}",
                a.rotate,
                a.scale,
                a.translate,
                if a.elastic > 0.0 {
                    format!(" elastic {}", a.elastic)
                } else {
                    String::new()
                }
            )
        }),
        (cfg.clean_epochs > 0).then(|| format!(" clean_epochs {}", cfg.clean_epochs)),
        (cfg.label_smoothing > 0.0).then(|| format!(" label_smoothing {}", cfg.label_smoothing)),
        (cfg.validation > 0).then(|| format!(" validation {}", cfg.validation)),
    ]
    .into_iter()
    .flatten()
    .collect::<String>();
    cnn_cli::say!(
        "recipe: epochs {} batch {} lr {} momentum {} l2 {} seed {} warmup {} shift {}{extra}; ops {}",
        cfg.epochs,
        cfg.batch_size,
        cfg.lr,
        cfg.momentum,
        cfg.l2,
        cfg.seed,
        cfg.warmup_epochs,
        cfg.shift,
        ops_name(trainer.model().ops())
    )
}

fn train(trainer: &mut Trainer, data: &Dataset, out: &Path) -> Result<ExitCode> {
    let cfg = trainer.config().clone();
    let interactive = std::io::stdout().is_terminal();
    let mut bar: Option<ProgressBar> = None;
    let style = ProgressStyle::with_template(
        "epoch {prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed}<{eta})",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    let epochs = cfg.epochs;
    let trained = trainer.n_train();
    let stop = Arc::new(AtomicBool::new(false));
    // A failed epoch line stops training as Ctrl-C does; the failure is reported after.
    let mut write_failed: Option<anyhow::Error> = None;
    let mut on_event = |ev: &Event| match ev {
        Event::EpochStart { epoch, batches } if interactive => {
            let b = ProgressBar::new(*batches as u64).with_style(style.clone());
            b.set_prefix(format!("{epoch}/{epochs}"));
            b.enable_steady_tick(Duration::from_millis(200));
            bar = Some(b);
        }
        Event::Batch(p) => {
            if let Some(b) = &bar {
                b.set_position(p.batch as u64);
                if p.batch % 10 == 0 || p.batch == p.batches {
                    b.set_message(format!("loss {:.4} {:.0} img/s", p.loss, p.images_per_sec));
                }
            }
        }
        Event::EpochEnd(m) => {
            if let Some(b) = bar.take() {
                b.finish_and_clear();
            }
            let val = match (m.val_loss, m.val_accuracy) {
                (Some(l), Some(a)) => format!("  val_loss {l:.4}  val_acc {:.2}%", 100.0 * a),
                _ => String::new(),
            };
            let line = cnn_cli::say!(
                "epoch {:>3}/{epochs}  train_loss {:.4}{val}  test_loss {:.4}  test_acc {:.2}%  lr {:.4}  {:.1} s ({:.0} img/s)",
                m.epoch,
                m.train_loss,
                m.test_loss,
                100.0 * m.test_accuracy,
                m.learning_rate,
                m.train_seconds,
                trained as f64 / m.train_seconds.max(1e-9),
            );
            if let Err(e) = line {
                write_failed.get_or_insert(e);
                stop.store(true, Ordering::Relaxed);
            }
        }
        _ => {}
    };
    {
        let stop = Arc::clone(&stop);
        // Ctrl-C stops between batches; the last finished epoch's files stay on disk.
        ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed))
            .context("installing the Ctrl-C handler")?;
    }
    let outcome = cnn_training::run(trainer, data, Some(out), &stop, &mut on_event);
    if let Some(b) = bar.take() {
        b.finish_and_clear();
    }
    let outcome = diverged_explained(outcome, out)?;
    if let Some(e) = write_failed {
        // The epochs before the failed line are on disk, as after Ctrl-C.
        return Err(e);
    }
    if outcome == RunOutcome::Interrupted {
        cnn_cli::say!(
            "interrupted after epoch {}; its files are in {}; continue with:\n  {}",
            trainer.epochs_done(),
            out.display(),
            cnn_cli::resume_command()
        )?;
        return Ok(ExitCode::from(INTERRUPTED));
    }
    cnn_cli::say!(
        "wrote {}/{{history.csv,final_state.safetensors,checkpoint.safetensors}}",
        out.display()
    )?;
    if let Some(m) = trainer.history().last() {
        cnn_cli::say!("{}", accuracy_line(m.test_correct, m.test_total))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A diverged run as one line that says what is kept and how to train again; other errors
/// mapped to the flags to blame.
fn diverged_explained(outcome: cnn_training::Result<RunOutcome>, out: &Path) -> Result<RunOutcome> {
    match outcome {
        Err(cnn_training::Error::Diverged {
            epoch,
            batch,
            loss,
            lr,
            suggest,
        }) => {
            let kept = if out.join(FINAL_STATE_FILE).exists() {
                format!("epoch {}'s files are kept in {}", epoch - 1, out.display())
            } else {
                "no epoch finished, so nothing was saved".to_string()
            };
            anyhow::bail!(
                "training diverged: the loss became {loss} at epoch {epoch}, batch {batch} (learning rate {lr:.4}); {kept}; train again with a lower --lr, e.g. --lr {suggest} --overwrite"
            )
        }
        other => other.map_err(explain),
    }
}

fn main() -> ExitCode {
    cnn_cli::main_with(run)
}
