//! `cnn-train`'s flags: the clap definition, the recipe they make, and the check that a
//! resumed run's flags agree with what it recorded.

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use cnn_cli::DeviceArg;
use cnn_data::DataSource;
use cnn_models::OpsPath;
use cnn_training::TrainConfig;

/// Train and evaluate small CNNs on MNIST-format data.
///
/// Defaults reach >= 99.0% (small_cnn) and >= 99.3% (medium_cnn) on MNIST.
#[derive(Debug, Parser)]
#[command(version, allow_negative_numbers = true)]
pub(crate) struct Cli {
    /// Network: small_cnn, medium_cnn, or a spec file (TOML, see assets/models/)
    /// [default: small_cnn; with --final-state or --resume: the one in the checkpoint].
    #[arg(long, value_name = "NAME|FILE")]
    pub(crate) model: Option<String>,
    /// Passes over the training set [default: 15].
    #[arg(long)]
    pub(crate) epochs: Option<usize>,
    /// Images per SGD step [default: 64].
    #[arg(long)]
    pub(crate) batch_size: Option<usize>,
    /// Peak learning rate of the warm-up + cosine schedule, applied to the momentum-averaged
    /// gradient (so 0.5 with momentum 0.9 equals PyTorch's lr=0.05, momentum=0.9)
    /// [default: 0.3 on MNIST and for medium_cnn on Fashion-MNIST, 0.5 on other data and
    /// with --augment none].
    #[arg(long)]
    pub(crate) lr: Option<f64>,
    /// Momentum μ in v = μv + (1-μ)g; 0 is plain SGD [default: 0.9].
    #[arg(long)]
    pub(crate) momentum: Option<f64>,
    /// L2 regularisation λ as in the original project: adds λ/(2n)·Σw² to the loss, n = number
    /// of training images, i.e. weight decay λ/n on weights (λ=6 → 1e-4 on MNIST) [default: 6].
    #[arg(long)]
    l2: Option<f64>,
    /// Seed for initialisation, shuffling, augmentation and dropout [default: 0].
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// Epochs of linear learning-rate warm-up [default: 1].
    #[arg(long)]
    pub(crate) warmup_epochs: Option<f64>,
    /// Random translation of training images by up to N whole pixels [default: 0].
    #[arg(long)]
    pub(crate) shift: Option<usize>,
    /// Augmentation preset: none (the recipe before augmentation: no warp, no label
    /// smoothing, peak learning rate 0.5) or light (±5°, ±5% size, ±1.5 px); the flags
    /// below adjust it [default: light on the shipped MNIST, none on other data].
    #[arg(long, value_enum)]
    pub(crate) augment: Option<AugmentArg>,
    /// Random rotation of each training image by up to ±DEG degrees [default: 5 on MNIST, else 0].
    #[arg(long, value_name = "DEG")]
    pub(crate) rotate: Option<f64>,
    /// Random scaling of each training image by up to ±F (0.1: 90% to 110%) [default: 0.05 on
    /// MNIST, else 0].
    #[arg(long, value_name = "F")]
    pub(crate) scale: Option<f64>,
    /// Random translation of each training image by up to ±PX pixels along each axis,
    /// resampled between pixels [default: 1.5 on MNIST, else 0].
    #[arg(long, value_name = "PX")]
    pub(crate) translate: Option<f64>,
    /// Elastic distortion of each training image: the points of a 4x4 grid over it move by
    /// up to ±PX pixels along each axis, the pixels between follow smoothly [default: 0].
    #[arg(long, value_name = "PX")]
    pub(crate) elastic: Option<f64>,
    /// Train the last N epochs on the images as they are, without the augmentation above
    /// (nor --shift), so the final low-learning-rate steps fit undistorted images
    /// [default: 3 of 15 on MNIST (a fifth of --epochs, rounded down), else 0].
    #[arg(long, value_name = "N")]
    pub(crate) clean_epochs: Option<usize>,
    /// Label smoothing ε: 1−ε on the label, ε spread over all classes [default: 0.05 for
    /// medium_cnn on MNIST, else 0].
    #[arg(long, value_name = "EPS")]
    pub(crate) label_smoothing: Option<f64>,
    /// Hold out the last N training images and report validation loss and accuracy after
    /// every epoch (choose a recipe on these, not on the test set) [default: 0].
    #[arg(long, value_name = "N")]
    pub(crate) validation: Option<usize>,
    /// Train on the first N training images only (quick runs).
    #[arg(long, value_name = "N")]
    pub(crate) train_limit: Option<usize>,
    /// Dataset: mnist (shipped in assets/) or fashion (/usr/share/datasets/fashion-mnist)
    /// [default: mnist; with --final-state or --resume: the run's].
    #[arg(long)]
    pub(crate) dataset: Option<DatasetArg>,
    /// Folder holding the four MNIST-format files, raw or .gz (any image size and class
    /// count; an optional classes.txt names the classes).
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Output folder [default: runs/<model>, or runs/fashion/<model>].
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, value_name = "cpu|cuda|cuda:N")]
    pub(crate) device: Option<DeviceArg>,
    /// Number of GPUs, as in the original project: 0 = CPU, 1 = first CUDA GPU.
    #[arg(long, value_name = "N")]
    pub(crate) ngpus: Option<usize>,
    /// Do not train: load <out>/final_state.safetensors and evaluate it on the test set.
    #[arg(long)]
    pub(crate) final_state: bool,
    /// Layer implementation: fast (fused CPU ops; candle's ops on other devices) or
    /// reference (candle-nn layers everywhere).
    #[arg(long, value_enum, default_value_t = Ops::Fast)]
    pub(crate) ops: Ops,
    /// Continue the run in <out> from its checkpoint.safetensors (its recorded recipe, model
    /// and data are used; recipe flags are ignored).
    #[arg(long, conflicts_with = "final_state")]
    pub(crate) resume: bool,
    /// Checkpoint to evaluate with --final-state [default: <out>/final_state.safetensors].
    #[arg(long, value_name = "FILE")]
    pub(crate) checkpoint: Option<PathBuf>,
    /// Start a fresh run even if <out> holds one (its files are replaced).
    #[arg(long, conflicts_with_all = ["resume", "final_state"])]
    pub(crate) overwrite: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum AugmentArg {
    /// No augmentation, no label smoothing, peak learning rate 0.5.
    None,
    /// ±5° rotation, ±5% size, ±1.5 px translation.
    Light,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum DatasetArg {
    /// The shipped MNIST digits.
    Mnist,
    /// Fashion-MNIST (Debian's dataset-fashion-mnist).
    #[value(alias = "fashion-mnist")]
    Fashion,
}

impl Cli {
    /// The dataset name of `--dataset`, MNIST when not given.
    pub(crate) fn dataset(&self) -> &'static str {
        match self.dataset {
            Some(DatasetArg::Fashion) => "fashion",
            Some(DatasetArg::Mnist) | None => "mnist",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Ops {
    Fast,
    Reference,
}

/// The preset trained, and looked for in `runs/`, when `--model` is not given.
pub(crate) const DEFAULT_MODEL: &str = "small_cnn";

pub(crate) fn config(cli: &Cli, source: &DataSource) -> TrainConfig {
    let preset = cnn_models::Arch::from_name(cli.model.as_deref().unwrap_or(DEFAULT_MODEL));
    // The digits' recipe was chosen on the shipped MNIST; a folder of one's own (any size,
    // any classes) starts from the project's plain recipe.
    let known = if cli.data_dir.is_some() {
        "own data"
    } else {
        source.kind.name()
    };
    let mut d = TrainConfig::for_dataset(known, preset);
    match cli.augment {
        Some(AugmentArg::None) => {
            // The recipe from before augmentation, whole: no warp, no smoothing, its peak.
            let before = TrainConfig::default();
            d.augment = before.augment;
            d.label_smoothing = before.label_smoothing;
            d.lr = before.lr;
            d.clean_epochs = before.clean_epochs;
        }
        Some(AugmentArg::Light) => d.augment = cnn_training::Affine::LIGHT,
        None => {}
    }
    // --shift is the older, whole-pixel augmentation: asked for alone, it takes the place of
    // the default warp rather than clashing with it.
    let warp_flags = [cli.rotate, cli.scale, cli.translate, cli.elastic];
    if cli.shift.is_some_and(|s| s > 0)
        && cli.augment.is_none()
        && warp_flags.iter().all(Option::is_none)
    {
        d.augment = cnn_training::Affine::NONE;
    }
    // Recorded absolute, so --final-state and the report find the data from anywhere.
    let data_dir = cli
        .data_dir
        .as_ref()
        .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()));
    // Fewer or more epochs keep the recipe's share of clean ones.
    let d = match cli.epochs {
        Some(epochs) => d.with_epochs(epochs),
        None => d,
    };
    TrainConfig {
        epochs: d.epochs,
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
            elastic: cli.elastic.unwrap_or(d.augment.elastic),
        },
        clean_epochs: cli.clean_epochs.unwrap_or(d.clean_epochs),
        label_smoothing: cli.label_smoothing.unwrap_or(d.label_smoothing),
        validation: cli.validation.unwrap_or(d.validation),
        dataset: source.kind.name().to_string(),
        data_dir,
        class_names: Vec::new(),
        ops: ops_path(cli.ops),
    }
}

pub(crate) fn ops_name(ops: OpsPath) -> &'static str {
    match ops {
        OpsPath::Fast => "fast",
        OpsPath::Reference => "reference",
    }
}

pub(crate) fn ops_path(ops: Ops) -> OpsPath {
    match ops {
        Ops::Fast => OpsPath::Fast,
        Ops::Reference => OpsPath::Reference,
    }
}

/// A resumed run repeats its recorded recipe: a recipe flag that differs from it (and would
/// be ignored) is an error; one that repeats it, as the printed resume command does, is fine.
pub(crate) fn refuse_recipe_flags(cli: &Cli, recorded: &TrainConfig) -> Result<()> {
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
            "--elastic",
            cli.elastic.is_some_and(|v| v != r.augment.elastic),
        ),
        (
            "--clean-epochs",
            cli.clean_epochs.is_some_and(|v| v != r.clean_epochs),
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
