//! `cnn-train`'s flags: the clap definition, checked once into [`Settings`].

use std::path::PathBuf;

use anyhow::{Result, bail};
use candle_core::Device;
use clap::Parser;
use cnn_cli::DeviceArg;
use cnn_data::{DataSource, DatasetKind};
use cnn_models::{NetSpec, OpsPath};
use cnn_training::{Claim, OptimizerKind, RunFolder};

use crate::recipe::Recipe;

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
    /// Optimizer: sgd, adam (PyTorch's Adam, L2 coupled) or adamw (decoupled decay), with
    /// PyTorch's betas 0.9/0.999 and eps 1e-8 [default: sgd; adam and adamw change the
    /// default --lr to 0.01].
    #[arg(long, value_parser = parse_optimizer)]
    pub(crate) optimizer: Option<OptimizerKind>,
    /// SGD's momentum μ in v = μv + (1-μ)g; 0 is plain SGD [default: 0.9].
    #[arg(long)]
    pub(crate) momentum: Option<f64>,
    /// L2 regularisation λ as in the original project: adds λ/(2n)·Σw² to the loss, n = number
    /// of training images, i.e. weight decay λ/n on weights (λ=6 → 1e-4 on MNIST) [default: 6].
    #[arg(long)]
    pub(crate) l2: Option<f64>,
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
    /// Mirror each training image left to right with probability ½: for data whose mirror
    /// images are of the same class (clothes, photographs), not digits [default: off; a
    /// spec's `[train]` table may turn it on].
    #[arg(long)]
    pub(crate) flip: bool,
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
    #[arg(long, value_parser = cnn_cli::parse_dataset, value_name = "mnist|fashion")]
    pub(crate) dataset: Option<DatasetKind>,
    /// Folder holding the four MNIST-format files, raw or .gz (any image size and class
    /// count; an optional classes.txt names the classes), or pictures: train/ and test/,
    /// each with one folder per class (PNG, JPEG, BMP, GIF, WebP).
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) pictures: cnn_cli::pictures::PictureArgs,
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
    /// and data are used; a recipe flag that differs from the recorded recipe is refused).
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
pub(crate) enum Ops {
    Fast,
    Reference,
}

/// The preset trained, and looked for in `runs/`, when `--model` is not given.
pub(crate) const DEFAULT_MODEL: &str = "small_cnn";

/// What `cnn-train` was asked to do.
#[derive(Clone)]
pub(crate) enum Mode {
    /// `--final-state`: evaluate a saved network (`--checkpoint`, or the folder's).
    Evaluate { checkpoint: Option<PathBuf> },
    /// Train: a fresh run, a replaced one (`--overwrite`) or a resumed one (`--resume`).
    Train(Claim),
}

/// The flags, checked once.
pub(crate) struct Settings {
    pub(crate) mode: Mode,
    pub(crate) device: Device,
    /// The network `--model` names (a preset or a spec file), when given.
    pub(crate) spec: Option<NetSpec>,
    /// `--model` as given, or the default preset: what errors about the spec name.
    pub(crate) model_arg: String,
    pub(crate) folder: RunFolder,
    /// `--dataset` and `--data-dir`, when either is given.
    pub(crate) data: Option<DataSource>,
    /// `--dataset`, when given.
    pub(crate) dataset: Option<DatasetKind>,
    /// Whether `--data-dir` names a folder of one's own (not a built-in dataset's folder).
    pub(crate) own_data: bool,
    /// How a folder of pictures is read (`--channels`, `--image-size`, ...).
    pub(crate) pictures: cnn_cli::pictures::PictureArgs,
    pub(crate) train_limit: Option<usize>,
    pub(crate) recipe: Recipe,
    pub(crate) ops: OpsPath,
}

impl Settings {
    /// The network's name, when `--model` gave one.
    pub(crate) fn expected_model(&self) -> Option<&str> {
        self.spec.as_ref().map(|s| s.name.as_str())
    }
}

impl Cli {
    /// Checks the flags and reads the spec file; loads no data.
    pub(crate) fn settings(self) -> Result<Settings> {
        let device = cnn_cli::select_device(self.ngpus, self.device)?;
        let mode = match (self.final_state, self.resume, self.overwrite) {
            (true, ..) => Mode::Evaluate {
                checkpoint: self.checkpoint.clone(),
            },
            _ if self.checkpoint.is_some() => bail!(
                "--checkpoint is read only with --final-state (to evaluate that file); training would ignore it"
            ),
            (false, true, _) => Mode::Train(Claim::Resume),
            (false, false, true) => Mode::Train(Claim::Replace),
            (false, false, false) => Mode::Train(Claim::Fresh),
        };
        if let Some(dir) = &self.data_dir
            && dir.to_str().is_none()
        {
            // The run records its data folder as text, to find it again on resume.
            bail!(
                "--data-dir {}: the path is not valid UTF-8, which the run cannot record; rename the folder, or reach it through a link with a UTF-8 name",
                dir.display()
            );
        }
        // The ranges are checked before any folder is claimed; the spec's input joins them later.
        self.pictures.options(None)?;
        if self.train_limit == Some(0) {
            bail!("invalid --train-limit 0: must be at least 1");
        }
        let model_arg = self.model.clone().unwrap_or_else(|| DEFAULT_MODEL.into());
        let (spec, spec_recipe) = match self.model.as_deref() {
            Some(arg) => {
                let (spec, recipe) = cnn_cli::model_spec_with_recipe(arg)?;
                (Some(spec), recipe)
            }
            None => (None, None),
        };
        let name = spec.as_ref().map_or(DEFAULT_MODEL, |s| s.name.as_str());
        let data = (self.dataset.is_some() || self.data_dir.is_some())
            .then(|| cnn_cli::select_data(self.dataset, self.data_dir.clone()));
        let kind = data.as_ref().map_or(DatasetKind::Mnist, |d| d.kind);
        let dir = self
            .out
            .clone()
            .unwrap_or_else(|| RunFolder::default_dir(name, kind));
        let folder = RunFolder::new(dir);
        if matches!(mode, Mode::Train(_)) {
            folder.check().map_err(cnn_cli::explain)?;
        }
        Ok(Settings {
            mode,
            device,
            spec,
            model_arg,
            folder,
            data,
            dataset: self.dataset,
            own_data: self.data_dir.is_some(),
            pictures: self.pictures.clone(),
            train_limit: self.train_limit,
            ops: match self.ops {
                Ops::Fast => OpsPath::Fast,
                Ops::Reference => OpsPath::Reference,
            },
            recipe: Recipe::from_flags(&self, spec_recipe),
        })
    }
}

/// How the layer implementation is named in the header and the evaluation line.
pub(crate) fn ops_name(ops: OpsPath) -> &'static str {
    match ops {
        OpsPath::Fast => "fast",
        OpsPath::Reference => "reference",
    }
}

fn parse_optimizer(s: &str) -> Result<OptimizerKind, String> {
    OptimizerKind::from_name(s).ok_or_else(|| format!("expected sgd, adam or adamw, not `{s}`"))
}
