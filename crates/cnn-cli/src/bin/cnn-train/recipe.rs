//! The recipe flags and the spec file's `[train]` table: the one place that turns them into
//! a [`TrainConfig`] (through `cnn_training::RecipeChanges`), for a fresh run (the dataset's
//! default recipe, then the table, then the flags) and for a resumed one (the recorded
//! recipe, which the flags must then repeat).

use anyhow::{Result, bail};
use cnn_data::{DataSource, DatasetKind};
use cnn_models::Arch;
use cnn_training::{AugmentPreset, RecipeChanges, TrainConfig};

use crate::flags::{AugmentArg, Cli, DEFAULT_MODEL};

/// The recipe flags as given, and the `[train]` table of the spec file `--model` names.
pub(crate) struct Recipe {
    preset: Option<Arch>,
    /// The flags; `None` keeps the value of the recipe they apply to.
    flags: RecipeChanges,
    /// The spec file's `[train]` table, applied before the flags on a fresh run.
    spec: Option<RecipeChanges>,
    /// `--model` as given, to name the spec file in errors about its `[train]`.
    model_arg: String,
}

impl Recipe {
    pub(crate) fn from_flags(cli: &Cli, spec: Option<RecipeChanges>) -> Self {
        Self {
            preset: Arch::from_name(cli.model.as_deref().unwrap_or(DEFAULT_MODEL)),
            flags: RecipeChanges {
                epochs: cli.epochs,
                batch_size: cli.batch_size,
                lr: cli.lr,
                optimizer: cli.optimizer,
                momentum: cli.momentum,
                l2: cli.l2,
                seed: cli.seed,
                warmup_epochs: cli.warmup_epochs,
                shift: cli.shift,
                augment: cli.augment.map(|a| match a {
                    AugmentArg::None => AugmentPreset::None,
                    AugmentArg::Light => AugmentPreset::Light,
                }),
                rotate: cli.rotate,
                scale: cli.scale,
                translate: cli.translate,
                elastic: cli.elastic,
                flip: cli.flip.then_some(true),
                clean_epochs: cli.clean_epochs,
                label_smoothing: cli.label_smoothing,
                validation: cli.validation,
            },
            spec,
            model_arg: cli.model.clone().unwrap_or_else(|| DEFAULT_MODEL.into()),
        }
    }

    /// The recipe of a fresh run on `source`: the dataset's default recipe (the plain one
    /// for a folder of one's own: the digits' recipe was chosen on the shipped MNIST), then
    /// the spec file's `[train]` table, then the flags, checked.
    pub(crate) fn fresh(&self, source: &DataSource, own_data: bool) -> Result<TrainConfig> {
        let known = if own_data {
            DatasetKind::Own
        } else {
            source.kind
        };
        let mut base = TrainConfig::for_dataset(known, self.preset);
        if let Some(spec) = &self.spec {
            base = spec.apply(base);
            if let Err(cnn_training::Error::InvalidConfig {
                field,
                value,
                reason,
            }) = base.validate()
            {
                bail!(
                    "--model {}: [train] {field} = {value}: {reason}",
                    self.model_arg
                );
            }
        }
        let mut cfg = self.over(base);
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
        self.flags.apply(base)
    }

    /// The flag to blame for a recipe field that came out different: its own flag when
    /// given, else the flag that changes it along with others.
    fn flag_for(&self, field: &str) -> &'static str {
        let f = &self.flags;
        let own = match field {
            "epochs" => f.epochs.map(|_| "--epochs"),
            "batch_size" => f.batch_size.map(|_| "--batch-size"),
            "lr" => f.lr.map(|_| "--lr"),
            "optimizer" => f.optimizer.map(|_| "--optimizer"),
            "momentum" => f.momentum.map(|_| "--momentum"),
            "l2" => f.l2.map(|_| "--l2"),
            "seed" => f.seed.map(|_| "--seed"),
            "warmup_epochs" => f.warmup_epochs.map(|_| "--warmup-epochs"),
            "shift" => f.shift.map(|_| "--shift"),
            "augment.rotate" => f.rotate.map(|_| "--rotate"),
            "augment.scale" => f.scale.map(|_| "--scale"),
            "augment.translate" => f.translate.map(|_| "--translate"),
            "augment.elastic" => f.elastic.map(|_| "--elastic"),
            "augment.flip" => f.flip.map(|_| "--flip"),
            "clean_epochs" => f.clean_epochs.map(|_| "--clean-epochs"),
            "label_smoothing" => f.label_smoothing.map(|_| "--label-smoothing"),
            "validation" => f.validation.map(|_| "--validation"),
            _ => None,
        };
        own.unwrap_or(match (f.augment, f.shift, f.epochs) {
            (Some(_), ..) => "--augment",
            (None, Some(_), _) => "--shift",
            _ => "--epochs",
        })
    }
}
