//! The recipe flags: the one place that turns them into a [`TrainConfig`], for a fresh run
//! (over the dataset's default recipe) and for a resumed one (over the recorded recipe,
//! which they must then repeat).

use anyhow::{Result, bail};
use cnn_data::{DataSource, DatasetKind};
use cnn_models::Arch;
use cnn_training::{Affine, OptimizerKind, TrainConfig};

use crate::flags::{AugmentArg, Cli, DEFAULT_MODEL};

/// The recipe flags as given; `None` keeps the value of the recipe they apply to.
pub(crate) struct Recipe {
    preset: Option<Arch>,
    epochs: Option<usize>,
    batch_size: Option<usize>,
    lr: Option<f64>,
    optimizer: Option<OptimizerKind>,
    momentum: Option<f64>,
    l2: Option<f64>,
    seed: Option<u64>,
    warmup_epochs: Option<f64>,
    shift: Option<usize>,
    augment: Option<AugmentArg>,
    rotate: Option<f64>,
    scale: Option<f64>,
    translate: Option<f64>,
    elastic: Option<f64>,
    clean_epochs: Option<usize>,
    label_smoothing: Option<f64>,
    validation: Option<usize>,
}

impl Recipe {
    pub(crate) fn from_flags(cli: &Cli) -> Self {
        Self {
            preset: Arch::from_name(cli.model.as_deref().unwrap_or(DEFAULT_MODEL)),
            epochs: cli.epochs,
            batch_size: cli.batch_size,
            lr: cli.lr,
            optimizer: cli.optimizer,
            momentum: cli.momentum,
            l2: cli.l2,
            seed: cli.seed,
            warmup_epochs: cli.warmup_epochs,
            shift: cli.shift,
            augment: cli.augment,
            rotate: cli.rotate,
            scale: cli.scale,
            translate: cli.translate,
            elastic: cli.elastic,
            clean_epochs: cli.clean_epochs,
            label_smoothing: cli.label_smoothing,
            validation: cli.validation,
        }
    }

    /// The recipe of a fresh run on `source`: the dataset's default recipe (the plain one
    /// for a folder of one's own: the digits' recipe was chosen on the shipped MNIST), with
    /// the flags applied, checked.
    pub(crate) fn fresh(&self, source: &DataSource, own_data: bool) -> Result<TrainConfig> {
        let known = if own_data {
            DatasetKind::Own
        } else {
            source.kind
        };
        let mut cfg = self.over(TrainConfig::for_dataset(known, self.preset));
        cfg.dataset = source.kind;
        // Recorded absolute, so --final-state and the report find the data from anywhere.
        cfg.data_dir = own_data
            .then(|| std::fs::canonicalize(&source.dir).unwrap_or_else(|_| source.dir.clone()));
        cfg.validate().map_err(cnn_cli::explain)?;
        Ok(cfg)
    }

    /// Refuses flags that would change a resumed run's `recorded` recipe (repeating it, as
    /// the printed resume command does, is fine).
    pub(crate) fn check_repeats(&self, recorded: &TrainConfig) -> Result<()> {
        let asked = self.over(recorded.clone());
        if let Some(field) = recorded.recipe_differences(&asked).first() {
            bail!(
                "{} differs from the run's recorded recipe, which --resume continues unchanged (start a new run with --overwrite to change it)",
                self.flag_for(field)
            );
        }
        Ok(())
    }

    /// `base` with the flags applied.
    fn over(&self, base: TrainConfig) -> TrainConfig {
        let mut d = base;
        match self.augment {
            Some(AugmentArg::None) => {
                // The recipe from before augmentation, whole: no warp, no smoothing, its peak.
                let before = TrainConfig::default();
                d.augment = before.augment;
                d.label_smoothing = before.label_smoothing;
                d.lr = before.lr;
                d.clean_epochs = before.clean_epochs;
            }
            Some(AugmentArg::Light) => d.augment = Affine::LIGHT,
            None => {}
        }
        // --shift is the older, whole-pixel augmentation: asked for alone, it takes the place
        // of the default warp rather than clashing with it.
        let warp_flags = [self.rotate, self.scale, self.translate, self.elastic];
        if self.shift.is_some_and(|s| s > 0)
            && self.augment.is_none()
            && warp_flags.iter().all(Option::is_none)
        {
            d.augment = Affine::NONE;
        }
        // Fewer or more epochs keep the recipe's share of clean ones.
        let d = match self.epochs {
            Some(epochs) => d.with_epochs(epochs),
            None => d,
        };
        let d = match self.optimizer {
            Some(kind) => d.with_optimizer(kind),
            None => d,
        };
        TrainConfig {
            batch_size: self.batch_size.unwrap_or(d.batch_size),
            lr: self.lr.unwrap_or(d.lr),
            momentum: self.momentum.unwrap_or(d.momentum),
            l2: self.l2.unwrap_or(d.l2),
            seed: self.seed.unwrap_or(d.seed),
            warmup_epochs: self.warmup_epochs.unwrap_or(d.warmup_epochs),
            shift: self.shift.unwrap_or(d.shift),
            augment: Affine {
                rotate: self.rotate.unwrap_or(d.augment.rotate),
                scale: self.scale.unwrap_or(d.augment.scale),
                translate: self.translate.unwrap_or(d.augment.translate),
                elastic: self.elastic.unwrap_or(d.augment.elastic),
            },
            clean_epochs: self.clean_epochs.unwrap_or(d.clean_epochs),
            label_smoothing: self.label_smoothing.unwrap_or(d.label_smoothing),
            validation: self.validation.unwrap_or(d.validation),
            ..d
        }
    }

    /// The flag to blame for a recipe field that came out different: its own flag when
    /// given, else the flag that changes it along with others.
    fn flag_for(&self, field: &str) -> &'static str {
        let own = match field {
            "epochs" => self.epochs.map(|_| "--epochs"),
            "batch_size" => self.batch_size.map(|_| "--batch-size"),
            "lr" => self.lr.map(|_| "--lr"),
            "optimizer" => self.optimizer.map(|_| "--optimizer"),
            "momentum" => self.momentum.map(|_| "--momentum"),
            "l2" => self.l2.map(|_| "--l2"),
            "seed" => self.seed.map(|_| "--seed"),
            "warmup_epochs" => self.warmup_epochs.map(|_| "--warmup-epochs"),
            "shift" => self.shift.map(|_| "--shift"),
            "augment.rotate" => self.rotate.map(|_| "--rotate"),
            "augment.scale" => self.scale.map(|_| "--scale"),
            "augment.translate" => self.translate.map(|_| "--translate"),
            "augment.elastic" => self.elastic.map(|_| "--elastic"),
            "clean_epochs" => self.clean_epochs.map(|_| "--clean-epochs"),
            "label_smoothing" => self.label_smoothing.map(|_| "--label-smoothing"),
            "validation" => self.validation.map(|_| "--validation"),
            _ => None,
        };
        own.unwrap_or(match (self.augment, self.shift, self.epochs) {
            (Some(_), ..) => "--augment",
            (None, Some(_), _) => "--shift",
            _ => "--epochs",
        })
    }
}
