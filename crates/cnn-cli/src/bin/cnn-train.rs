//! `cnn-train`: trains `small_cnn` or `medium_cnn` on MNIST-format data, or evaluates a saved model.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use cnn_models::{Arch, OpsPath};
use cnn_training::{Event, FINAL_STATE_FILE, RunOutcome, TrainConfig, Trainer};
use indicatif::{ProgressBar, ProgressStyle};

/// Train and evaluate small CNNs on MNIST-format data.
///
/// Defaults reach >= 99.0% (small_cnn) and >= 99.3% (medium_cnn) on MNIST.
#[derive(Debug, Parser)]
#[command(version, allow_negative_numbers = true)]
struct Cli {
    /// Architecture: small_cnn or medium_cnn.
    #[arg(long, default_value = "small_cnn")]
    model: String,
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
    /// Random translation of training images by up to N pixels [default: 0].
    #[arg(long)]
    shift: Option<usize>,
    /// Train on the first N training images only (quick runs).
    #[arg(long, value_name = "N")]
    train_limit: Option<usize>,
    /// Dataset: mnist (shipped in assets/) or fashion (/usr/share/datasets/fashion-mnist).
    #[arg(long, default_value = "mnist")]
    dataset: String,
    /// Folder holding the four MNIST-format files, raw or .gz.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Output folder [default: runs/<model>, or runs/fashion/<model>].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long)]
    device: Option<String>,
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
    /// Continue the run in <out> from its checkpoint.safetensors (its recorded recipe is used;
    /// recipe flags are ignored).
    #[arg(long, conflicts_with = "final_state")]
    resume: bool,
    /// Checkpoint to evaluate with --final-state [default: <out>/final_state.safetensors].
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Ops {
    Fast,
    Reference,
}

fn config(cli: &Cli, arch: Arch, dataset: &str) -> TrainConfig {
    let d = TrainConfig::default_for(arch);
    TrainConfig {
        arch,
        epochs: cli.epochs.unwrap_or(d.epochs),
        batch_size: cli.batch_size.unwrap_or(d.batch_size),
        lr: cli.lr.unwrap_or(d.lr),
        momentum: cli.momentum.unwrap_or(d.momentum),
        l2: cli.l2.unwrap_or(d.l2),
        seed: cli.seed.unwrap_or(d.seed),
        warmup_epochs: cli.warmup_epochs.unwrap_or(d.warmup_epochs),
        shift: cli.shift.unwrap_or(d.shift),
        dataset: dataset.to_string(),
        ops: match cli.ops {
            Ops::Fast => OpsPath::Fast,
            Ops::Reference => OpsPath::Reference,
        },
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

#[allow(clippy::print_stdout)]
fn run(cli: Cli) -> Result<ExitCode> {
    let arch: Arch = cli.model.parse().context("--model")?;
    let device = cnn_cli::select_device(cli.ngpus, cli.device.as_deref())?;
    let source = cnn_cli::select_data(&cli.dataset, cli.data_dir.clone())?;
    let out = cli.out.clone().unwrap_or_else(|| match source.kind {
        cnn_data::DatasetKind::Mnist => PathBuf::from("runs").join(arch.name()),
        cnn_data::DatasetKind::Fashion => PathBuf::from("runs/fashion").join(arch.name()),
    });

    if cli.final_state {
        let path = cli
            .checkpoint
            .clone()
            .unwrap_or_else(|| out.join(FINAL_STATE_FILE));
        let (model, _) = cnn_training::load_model(&path, Some(arch), &device)?;
        let data = cnn_cli::load_data(&source)?;
        let eval = cnn_training::evaluate(&model, &data.test, &device)?;
        println!("loaded {} from {}", arch, path.display());
        println!("test loss: {:.4}", eval.loss);
        println!("{}", accuracy_line(eval.correct, eval.total));
        return Ok(ExitCode::SUCCESS);
    }

    let cfg = config(&cli, arch, source.kind.name());
    cfg.validate()?;
    if cli.train_limit == Some(0) {
        anyhow::bail!("invalid --train-limit 0: must be at least 1");
    }
    let mut data = cnn_cli::load_data(&source)?;
    if let Some(n) = cli.train_limit {
        data.train = data.train.head(n);
    }
    let mut trainer = if cli.resume {
        let ckpt = out.join(cnn_training::CHECKPOINT_FILE);
        let t = Trainer::resume(&ckpt, &device, data.train.len())?;
        if t.config().arch != arch {
            anyhow::bail!(
                "{} holds a {} run, not {arch} (pass --model {})",
                ckpt.display(),
                t.config().arch,
                t.config().arch
            );
        }
        if t.config().dataset != source.kind.name() {
            anyhow::bail!(
                "{} holds a run on {}, not {} (pass --dataset {})",
                ckpt.display(),
                t.config().dataset,
                source.kind.name(),
                t.config().dataset
            );
        }
        println!(
            "resuming {} after epoch {} of {}",
            ckpt.display(),
            t.epochs_done(),
            t.config().epochs
        );
        t
    } else {
        Trainer::new(cfg, &device, data.train.len())?
    };
    // Fail before training, not after the first epoch, when the output cannot be written.
    if out.exists() && !out.is_dir() {
        anyhow::bail!("--out {}: is a file, not a folder", out.display());
    }
    std::fs::create_dir_all(&out)
        .with_context(|| format!("--out {}: cannot create the folder", out.display()))?;
    let cfg = trainer.config().clone();
    println!(
        "training {} ({} parameters) on {} {} images, testing on {}; device {:?}; output {}",
        arch,
        arch.num_params(),
        data.train.len(),
        data.kind.name(),
        data.test.len(),
        device,
        out.display()
    );
    println!(
        "recipe: epochs {} batch {} lr {} momentum {} l2 {} seed {} warmup {} shift {}",
        cfg.epochs,
        cfg.batch_size,
        cfg.lr,
        cfg.momentum,
        cfg.l2,
        cfg.seed,
        cfg.warmup_epochs,
        cfg.shift
    );

    let interactive = std::io::stdout().is_terminal();
    let mut bar: Option<ProgressBar> = None;
    let style = ProgressStyle::with_template(
        "epoch {prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed}<{eta})",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    let epochs = cfg.epochs;
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
            println!(
                "epoch {:>3}/{epochs}  train_loss {:.4}  test_loss {:.4}  test_acc {:.2}%  lr {:.4}  {:.1} s ({:.0} img/s)",
                m.epoch,
                m.train_loss,
                m.test_loss,
                100.0 * m.test_accuracy,
                m.learning_rate,
                m.train_seconds,
                data.train.len() as f64 / m.train_seconds.max(1e-9),
            );
        }
        _ => {}
    };
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        // Ctrl-C stops between batches; the last finished epoch's files stay on disk.
        ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed))
            .context("installing the Ctrl-C handler")?;
    }
    let outcome = cnn_training::run(&mut trainer, &data, &out, &stop, &mut on_event);
    if let Some(b) = bar.take() {
        b.finish_and_clear();
    }
    if outcome? == RunOutcome::Interrupted {
        println!(
            "interrupted after epoch {}; its files are in {}; continue with:\n  {}",
            trainer.epochs_done(),
            out.display(),
            cnn_cli::resume_command()
        );
        return Ok(ExitCode::from(INTERRUPTED));
    }
    println!(
        "wrote {}/{{history.csv,final_state.safetensors,checkpoint.safetensors}}",
        out.display()
    );
    if let Some(m) = trainer.history().last() {
        println!("{}", accuracy_line(m.test_correct, m.test_total));
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    cnn_cli::main_with(run)
}
