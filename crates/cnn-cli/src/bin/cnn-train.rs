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
use clap::Parser;
use cnn_cli::DeviceArg;
use cnn_cli::explain;
use cnn_data::{DataSource, Dataset};
use cnn_models::{NetSpec, OpsPath};
use cnn_training::checkpoint::RawCheckpoint;
use cnn_training::{Event, FINAL_STATE_FILE, RunOutcome, TrainConfig, Trainer};
use indicatif::{ProgressBar, ProgressStyle};

/// Train and evaluate small CNNs on MNIST-format data.
///
/// Defaults reach >= 99.0% (small_cnn) and >= 99.3% (medium_cnn) on MNIST.
#[derive(Debug, Parser)]
#[command(version, allow_negative_numbers = true)]
struct Cli {
    /// Network: small_cnn, medium_cnn, or a spec file (TOML, see assets/models/)
    /// [default: small_cnn; with --final-state or --resume: the one in the checkpoint].
    #[arg(long, value_name = "NAME|FILE")]
    model: Option<String>,
    /// Passes over the training set [default: 15].
    #[arg(long)]
    epochs: Option<usize>,
    /// Images per SGD step [default: 64].
    #[arg(long)]
    batch_size: Option<usize>,
    /// Peak learning rate of the warm-up + cosine schedule, applied to the momentum-averaged
    /// gradient (so 0.5 with momentum 0.9 equals PyTorch's lr=0.05, momentum=0.9) [default: 0.5].
    #[arg(long)]
    lr: Option<f64>,
    /// Momentum μ in v = μv + (1-μ)g; 0 is plain SGD [default: 0.9].
    #[arg(long)]
    momentum: Option<f64>,
    /// L2 regularisation λ as in the original project: adds λ/(2n)·Σw² to the loss, n = number
    /// of training images, i.e. weight decay λ/n on weights (λ=6 → 1e-4 on MNIST) [default: 6].
    #[arg(long)]
    l2: Option<f64>,
    /// Seed for initialisation, shuffling, augmentation and dropout [default: 0].
    #[arg(long)]
    seed: Option<u64>,
    /// Epochs of linear learning-rate warm-up [default: 1].
    #[arg(long)]
    warmup_epochs: Option<f64>,
    /// Random translation of training images by up to N whole pixels [default: 0].
    #[arg(long)]
    shift: Option<usize>,
    /// Augmentation preset: none (no augmentation, no label smoothing: the recipe before
    /// augmentation) or light (±5°, ±5% size, ±1.5 px); the flags below adjust it
    /// [default: the dataset's default recipe].
    #[arg(long, value_enum)]
    augment: Option<AugmentArg>,
    /// Random rotation of each training image by up to ±DEG degrees [default: 0].
    #[arg(long, value_name = "DEG")]
    rotate: Option<f64>,
    /// Random scaling of each training image by up to ±F (0.1: 90% to 110%) [default: 0].
    #[arg(long, value_name = "F")]
    scale: Option<f64>,
    /// Random translation of each training image by up to ±PX pixels along each axis,
    /// resampled between pixels [default: 0].
    #[arg(long, value_name = "PX")]
    translate: Option<f64>,
    /// Label smoothing ε: 1−ε on the label, ε spread over all classes [default: 0].
    #[arg(long, value_name = "EPS")]
    label_smoothing: Option<f64>,
    /// Hold out the last N training images and report validation loss and accuracy after
    /// every epoch (choose a recipe on these, not on the test set) [default: 0].
    #[arg(long, value_name = "N")]
    validation: Option<usize>,
    /// Train on the first N training images only (quick runs).
    #[arg(long, value_name = "N")]
    train_limit: Option<usize>,
    /// Dataset: mnist (shipped in assets/) or fashion (/usr/share/datasets/fashion-mnist)
    /// [default: mnist; with --final-state or --resume: the run's].
    #[arg(long)]
    dataset: Option<DatasetArg>,
    /// Folder holding the four MNIST-format files, raw or .gz (any image size and class
    /// count; an optional classes.txt names the classes).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Output folder [default: runs/<model>, or runs/fashion/<model>].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, value_name = "cpu|cuda|cuda:N")]
    device: Option<DeviceArg>,
    /// Number of GPUs, as in the original project: 0 = CPU, 1 = first CUDA GPU.
    #[arg(long, value_name = "N")]
    ngpus: Option<usize>,
    /// Do not train: load <out>/final_state.safetensors and evaluate it on the test set.
    #[arg(long)]
    final_state: bool,
    /// Layer implementation: fast (fused CPU ops; candle's ops on other devices) or
    /// reference (candle-nn layers everywhere).
    #[arg(long, value_enum, default_value_t = Ops::Fast)]
    ops: Ops,
    /// Continue the run in <out> from its checkpoint.safetensors (its recorded recipe, model
    /// and data are used; recipe flags are ignored).
    #[arg(long, conflicts_with = "final_state")]
    resume: bool,
    /// Checkpoint to evaluate with --final-state [default: <out>/final_state.safetensors].
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<PathBuf>,
    /// Start a fresh run even if <out> holds one (its files are replaced).
    #[arg(long, conflicts_with_all = ["resume", "final_state"])]
    overwrite: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum AugmentArg {
    /// No augmentation and no label smoothing.
    None,
    /// ±5° rotation, ±5% size, ±1.5 px translation.
    Light,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum DatasetArg {
    /// The shipped MNIST digits.
    Mnist,
    /// Fashion-MNIST (Debian's dataset-fashion-mnist).
    #[value(alias = "fashion-mnist")]
    Fashion,
}

impl Cli {
    /// The dataset name of `--dataset`, MNIST when not given.
    fn dataset(&self) -> &'static str {
        match self.dataset {
            Some(DatasetArg::Fashion) => "fashion",
            Some(DatasetArg::Mnist) | None => "mnist",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Ops {
    Fast,
    Reference,
}

/// The preset trained, and looked for in `runs/`, when `--model` is not given.
const DEFAULT_MODEL: &str = "small_cnn";

fn config(cli: &Cli, source: &DataSource) -> TrainConfig {
    let mut d = TrainConfig::for_dataset(source.kind.name());
    match cli.augment {
        Some(AugmentArg::None) => {
            d.augment = cnn_training::Affine::NONE;
            d.label_smoothing = 0.0;
        }
        Some(AugmentArg::Light) => d.augment = cnn_training::Affine::LIGHT,
        None => {}
    }
    // Recorded absolute, so --final-state and the report find the data from anywhere.
    let data_dir = cli
        .data_dir
        .as_ref()
        .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()));
    TrainConfig {
        epochs: cli.epochs.unwrap_or(d.epochs),
        batch_size: cli.batch_size.unwrap_or(d.batch_size),
        lr: cli.lr.unwrap_or(d.lr),
        momentum: cli.momentum.unwrap_or(d.momentum),
        l2: cli.l2.unwrap_or(d.l2),
        seed: cli.seed.unwrap_or(d.seed),
        warmup_epochs: cli.warmup_epochs.unwrap_or(d.warmup_epochs),
        shift: cli.shift.unwrap_or(d.shift),
        augment: cnn_training::Affine {
            rotate: cli.rotate.unwrap_or(d.augment.rotate),
            scale: cli.scale.unwrap_or(d.augment.scale),
            translate: cli.translate.unwrap_or(d.augment.translate),
        },
        label_smoothing: cli.label_smoothing.unwrap_or(d.label_smoothing),
        validation: cli.validation.unwrap_or(d.validation),
        dataset: source.kind.name().to_string(),
        data_dir,
        class_names: Vec::new(),
        ops: ops_path(cli.ops),
    }
}

fn ops_name(ops: OpsPath) -> &'static str {
    match ops {
        OpsPath::Fast => "fast",
        OpsPath::Reference => "reference",
    }
}

fn ops_path(ops: Ops) -> OpsPath {
    match ops {
        Ops::Fast => OpsPath::Fast,
        Ops::Reference => OpsPath::Reference,
    }
}

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

/// A resumed run repeats its recorded recipe: a recipe flag that differs from it (and would
/// be ignored) is an error; one that repeats it, as the printed resume command does, is fine.
fn refuse_recipe_flags(cli: &Cli, recorded: &TrainConfig) -> Result<()> {
    let r = recorded;
    let differs = [
        ("--epochs", cli.epochs.is_some_and(|v| v != r.epochs)),
        (
            "--batch-size",
            cli.batch_size.is_some_and(|v| v != r.batch_size),
        ),
        ("--lr", cli.lr.is_some_and(|v| v != r.lr)),
        ("--momentum", cli.momentum.is_some_and(|v| v != r.momentum)),
        ("--l2", cli.l2.is_some_and(|v| v != r.l2)),
        ("--seed", cli.seed.is_some_and(|v| v != r.seed)),
        (
            "--warmup-epochs",
            cli.warmup_epochs.is_some_and(|v| v != r.warmup_epochs),
        ),
        ("--shift", cli.shift.is_some_and(|v| v != r.shift)),
        (
            "--rotate",
            cli.rotate.is_some_and(|v| v != r.augment.rotate),
        ),
        ("--scale", cli.scale.is_some_and(|v| v != r.augment.scale)),
        (
            "--translate",
            cli.translate.is_some_and(|v| v != r.augment.translate),
        ),
        (
            "--label-smoothing",
            cli.label_smoothing.is_some_and(|v| v != r.label_smoothing),
        ),
        (
            "--validation",
            cli.validation.is_some_and(|v| v != r.validation),
        ),
    ];
    if let Some((flag, _)) = differs.iter().find(|(_, d)| *d) {
        anyhow::bail!(
            "{flag} differs from the run's recorded recipe, which --resume continues unchanged (start a new run with --overwrite to change it)"
        );
    }
    Ok(())
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
                " rotate {} scale {} translate {}",
                a.rotate, a.scale, a.translate
            )
        }),
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
