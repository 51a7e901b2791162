//! The training recipe and its validation.

use std::path::PathBuf;

use cnn_data::DatasetKind;
use cnn_data::pictures::PictureOptions;
use cnn_models::{Arch, OpsPath};
use serde::{Deserialize, Serialize};

use crate::{Affine, Error, OptimizerKind, Result};

/// Peak learning rate of the MNIST default recipe (see [`TrainConfig::for_dataset`]).
pub const DIGITS_LR: f64 = 0.3;

/// Peak learning rate of Adam and AdamW when none is given (see
/// [`TrainConfig::with_optimizer`]); chosen on validation data (`docs/recipe.md`).
pub const ADAM_LR: f64 = 0.01;

/// Label smoothing of the MNIST default recipe for `medium_cnn` (see
/// [`TrainConfig::for_dataset`]); the other networks train without.
pub const DIGITS_LABEL_SMOOTHING: f64 = 0.05;

/// Peak learning rate of the Fashion-MNIST default recipe for `medium_cnn` (see
/// [`TrainConfig::for_dataset`]); the other networks keep the project's 0.5 there.
pub const FASHION_MEDIUM_LR: f64 = 0.3;

/// Epochs at the end of the MNIST default recipe trained without augmentation (see
/// [`TrainConfig::for_dataset`] and [`TrainConfig::clean_epochs`]).
pub const DIGITS_CLEAN_EPOCHS: usize = 3;

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

fn is_zero_count(v: &usize) -> bool {
    *v == 0
}

/// [`DatasetKind`] as its name, as checkpoints have always recorded it; a name this build
/// does not know (a library user's own) reads as [`DatasetKind::Own`].
mod dataset_name {
    use cnn_data::DatasetKind;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(kind: &DatasetKind, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(kind.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DatasetKind, D::Error> {
        let name = String::deserialize(d)?;
        Ok(DatasetKind::from_name(&name).unwrap_or(DatasetKind::Own))
    }
}

/// The training recipe, and what the run was trained on.
///
/// Each field says its [`Default`]; [`TrainConfig::for_dataset`] adds what was chosen per
/// dataset on validation data. Change what you need with struct update syntax:
///
/// ```
/// use cnn_training::{OptimizerKind, TrainConfig};
/// let cfg = TrainConfig { epochs: 5, seed: 7, ..TrainConfig::default() };
/// assert_eq!((cfg.batch_size, cfg.lr, cfg.momentum), (64, 0.5, 0.9));
/// let adam = cfg.with_optimizer(OptimizerKind::Adam);
/// assert_eq!(adam.lr, cnn_training::ADAM_LR);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Passes over the training set. Default 15.
    pub epochs: usize,
    /// Images per optimizer step. Default 64.
    pub batch_size: usize,
    /// Peak learning rate (reached after warm-up, then cosine-annealed to zero). Default 0.5
    /// (SGD; [`ADAM_LR`] for Adam through [`TrainConfig::with_optimizer`]).
    pub lr: f64,
    /// The optimizer. Default [`OptimizerKind::Sgd`] (recorded only when it is not SGD).
    #[serde(default, skip_serializing_if = "OptimizerKind::is_sgd")]
    pub optimizer: OptimizerKind,
    /// SGD's momentum μ in `v = μv + (1-μ)g`; 0 is plain SGD. Adam's β are fixed at
    /// [`crate::ADAM_BETAS`]. Default 0.9.
    pub momentum: f64,
    /// L2 regularisation λ as in the original project and Nielsen's book: the loss gains
    /// `λ/(2n)·Σw²` over weights (not biases), `n` the number of training images; that is a
    /// weight decay of `λ/n` (λ = 6 on MNIST is 1e-4). Default 6.
    pub l2: f64,
    /// Seed of initialisation, shuffling, augmentation and dropout. Default 0.
    pub seed: u64,
    /// Epochs of linear learning-rate warm-up (may be fractional). Default 1.
    pub warmup_epochs: f64,
    /// Random translation of each training image by up to this many pixels (0 disables).
    /// Default 0.
    pub shift: usize,
    /// Random affine augmentation of each training image. Default [`Affine::NONE`].
    #[serde(default, skip_serializing_if = "Affine::is_none")]
    pub augment: Affine,
    /// Epochs at the end of the run that train on the images as they are, without the
    /// augmentation (`augment` and `shift`), so that the last, low-learning-rate steps fit
    /// the undistorted images the network will be judged on (0: augment every epoch).
    /// Default 0.
    #[serde(default, skip_serializing_if = "is_zero_count")]
    pub clean_epochs: usize,
    /// Label smoothing ε: the target puts `1 − ε` on the label and `ε` spread evenly over
    /// all classes (0 disables). Default 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub label_smoothing: f64,
    /// Training images held out, from the end of the training set, to validate on after
    /// every epoch (0: none). The rest are trained on. Default 0.
    #[serde(default, skip_serializing_if = "is_zero_count")]
    pub validation: usize,
    /// The dataset, recorded with the run by name (`mnist`, `fashion`, `own`). Default
    /// [`DatasetKind::Mnist`].
    #[serde(default, with = "dataset_name")]
    pub dataset: DatasetKind,
    /// Folder the data came from, when not a built-in dataset, recorded with the run.
    /// Default `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// How the folder of pictures was read (its size, channels and fit, the size resolved),
    /// recorded so that a resumed run reads the pictures the same way and a prediction
    /// prepares a new picture as the network saw its training pictures; `None` for IDX data.
    /// Default `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pictures: Option<PictureOptions>,
    /// Name of each class, by label, recorded so predictions and figures can name them.
    /// Training fills them in from the [`Dataset`](cnn_data::Dataset). Default empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub class_names: Vec<String>,
    /// Layer implementation (not saved: it does not change the function computed). Default
    /// [`OpsPath::Fast`].
    #[serde(skip)]
    pub ops: OpsPath,
}

impl Default for TrainConfig {
    /// The plain recipe (the one before augmentation was chosen on validation data):
    /// 15 epochs, batch 64, peak learning rate 0.5, momentum 0.9, L2 λ = 6, seed 0, one
    /// warm-up epoch, no augmentation, no label smoothing, no validation split. Programs
    /// start from [`TrainConfig::for_dataset`], which adds what was chosen per dataset.
    fn default() -> Self {
        Self {
            epochs: 15,
            batch_size: 64,
            lr: 0.5,
            optimizer: OptimizerKind::Sgd,
            momentum: 0.9,
            l2: 6.0,
            seed: 0,
            warmup_epochs: 1.0,
            shift: 0,
            augment: Affine::NONE,
            clean_epochs: 0,
            label_smoothing: 0.0,
            validation: 0,
            dataset: DatasetKind::Mnist,
            data_dir: None,
            pictures: None,
            class_names: Vec::new(),
            ops: OpsPath::default(),
        }
    }
}

impl TrainConfig {
    /// The default recipe for `dataset` and, when it
    /// is one of the presets, the network `preset`: the project's [`Default`], with what
    /// was chosen on validation data (`docs/recipe.md`). For MNIST digits that is
    /// [`Affine::DIGITS`] with the last [`DIGITS_CLEAN_EPOCHS`] epochs unwarped, and a peak
    /// learning rate of [`DIGITS_LR`], plus label smoothing of [`DIGITS_LABEL_SMOOTHING`]
    /// for `medium_cnn` (it costs the narrower `small_cnn` accuracy). For Fashion-MNIST,
    /// the project's default without augmentation (every warp tried cost accuracy there),
    /// with a peak of [`FASHION_MEDIUM_LR`] for `medium_cnn` (0.3 costs `small_cnn`
    /// accuracy there); for data of one's own, the project's default unchanged. To change the
    /// number of epochs, use [`TrainConfig::with_epochs`], which scales the clean ones along.
    pub fn for_dataset(dataset: DatasetKind, preset: Option<Arch>) -> Self {
        let mut cfg = TrainConfig {
            dataset,
            ..TrainConfig::default()
        };
        if dataset == DatasetKind::Mnist {
            cfg.augment = Affine::DIGITS;
            cfg.lr = DIGITS_LR;
            cfg.clean_epochs = DIGITS_CLEAN_EPOCHS;
            if preset == Some(Arch::MediumCnn) {
                cfg.label_smoothing = DIGITS_LABEL_SMOOTHING;
            }
        }
        if dataset == DatasetKind::Fashion && preset == Some(Arch::MediumCnn) {
            cfg.lr = FASHION_MEDIUM_LR;
        }
        cfg
    }

    /// This recipe for `epochs` epochs, its clean epochs scaled along: the recipe's share of
    /// clean epochs (`clean_epochs / self.epochs`), rounded down, so a short run is not all
    /// clean (from the MNIST recipe's 3 of 15: none of 4, 10 of 50).
    pub fn with_epochs(mut self, epochs: usize) -> Self {
        if self.epochs > 0 {
            // In u128: no epoch count a user can type overflows it.
            let share = epochs as u128 * self.clean_epochs as u128 / self.epochs as u128;
            self.clean_epochs = share as usize;
        }
        self.epochs = epochs;
        self
    }

    /// This recipe trained by `optimizer`: moving between SGD and the Adam family also
    /// moves the peak learning rate to the other's default (SGD's from
    /// [`TrainConfig::default`], Adam's [`ADAM_LR`]), since the two take rates a hundred
    /// times apart. Set `lr` after this to choose your own.
    pub fn with_optimizer(self, optimizer: OptimizerKind) -> Self {
        let lr = match (self.optimizer.is_sgd(), optimizer.is_sgd()) {
            (true, false) => ADAM_LR,
            (false, true) => TrainConfig::default().lr,
            _ => self.lr,
        };
        Self {
            optimizer,
            lr,
            ..self
        }
    }

    /// The recipe fields in which `other` differs from this recipe, by name (`augment`'s
    /// parts as `augment.rotate` and so on). What the run was trained on (`dataset`,
    /// `data_dir`, `pictures`, `class_names`) and `ops` (which does not change what is computed) are
    /// not part of the recipe. A resumed run compares the recipe asked for with the one
    /// it recorded this way.
    pub fn recipe_differences(&self, other: &TrainConfig) -> Vec<&'static str> {
        // Destructured whole, so a new field cannot be left out of the comparison.
        let TrainConfig {
            epochs,
            batch_size,
            lr,
            optimizer,
            momentum,
            l2,
            seed,
            warmup_epochs,
            shift,
            augment:
                Affine {
                    rotate,
                    scale,
                    translate,
                    elastic,
                    flip,
                },
            clean_epochs,
            label_smoothing,
            validation,
            dataset: _,
            data_dir: _,
            pictures: _,
            class_names: _,
            ops: _,
        } = self;
        let o = other;
        [
            ("epochs", *epochs != o.epochs),
            ("batch_size", *batch_size != o.batch_size),
            // Before lr, which a change of optimizer moves along with it.
            ("optimizer", *optimizer != o.optimizer),
            ("lr", *lr != o.lr),
            ("momentum", *momentum != o.momentum),
            ("l2", *l2 != o.l2),
            ("seed", *seed != o.seed),
            ("warmup_epochs", *warmup_epochs != o.warmup_epochs),
            ("shift", *shift != o.shift),
            ("augment.rotate", *rotate != o.augment.rotate),
            ("augment.scale", *scale != o.augment.scale),
            ("augment.translate", *translate != o.augment.translate),
            ("augment.elastic", *elastic != o.augment.elastic),
            ("augment.flip", *flip != o.augment.flip),
            ("clean_epochs", *clean_epochs != o.clean_epochs),
            ("label_smoothing", *label_smoothing != o.label_smoothing),
            ("validation", *validation != o.validation),
        ]
        .into_iter()
        .filter_map(|(name, differs)| differs.then_some(name))
        .collect()
    }

    /// Checks every value; the error names the field.
    pub fn validate(&self) -> Result<()> {
        if !(1..=100_000).contains(&self.epochs) {
            return bad("epochs", self.epochs, "must be between 1 and 100000");
        }
        if !(1..=60_000).contains(&self.batch_size) {
            return bad("batch_size", self.batch_size, "must be between 1 and 60000");
        }
        if !(self.lr.is_finite() && self.lr > 0.0 && self.lr <= 100.0) {
            return bad("lr", num(self.lr), "must be a number in (0, 100]");
        }
        if !(self.momentum.is_finite() && (0.0..1.0).contains(&self.momentum)) {
            return bad("momentum", num(self.momentum), "must be in [0, 1)");
        }
        if !(self.l2.is_finite() && (0.0..=1e6).contains(&self.l2)) {
            return bad("l2", num(self.l2), "must be a number in [0, 1e6]");
        }
        if !(self.warmup_epochs.is_finite() && (0.0..=1e5).contains(&self.warmup_epochs)) {
            return bad(
                "warmup_epochs",
                num(self.warmup_epochs),
                "must be a number in [0, 1e5]",
            );
        }
        if self.shift > 8 {
            return bad("shift", self.shift, "must be between 0 and 8 pixels");
        }
        self.validate_augment()?;
        if self.clean_epochs > self.epochs {
            return bad(
                "clean_epochs",
                self.clean_epochs,
                "must be at most the number of epochs",
            );
        }
        if !(self.label_smoothing.is_finite() && (0.0..1.0).contains(&self.label_smoothing)) {
            return bad(
                "label_smoothing",
                num(self.label_smoothing),
                "must be in [0, 1)",
            );
        }
        Ok(())
    }

    /// The augmentation's part of [`TrainConfig::validate`].
    fn validate_augment(&self) -> Result<()> {
        let a = &self.augment;
        if !(a.rotate.is_finite() && (0.0..=180.0).contains(&a.rotate)) {
            return bad("rotate", num(a.rotate), "must be between 0 and 180 degrees");
        }
        if !(a.scale.is_finite() && (0.0..=0.5).contains(&a.scale)) {
            return bad("scale", num(a.scale), "must be between 0 and 0.5");
        }
        if !(a.translate.is_finite() && (0.0..=8.0).contains(&a.translate)) {
            return bad(
                "translate",
                num(a.translate),
                "must be between 0 and 8 pixels",
            );
        }
        if !(a.elastic.is_finite() && (0.0..=8.0).contains(&a.elastic)) {
            return bad("elastic", num(a.elastic), "must be between 0 and 8 pixels");
        }
        if self.shift > 0 && !a.is_none() {
            return bad(
                "shift",
                self.shift,
                "cannot be combined with the warp or mirroring (use translate)",
            );
        }
        Ok(())
    }
}

fn bad(field: &'static str, value: impl ToString, reason: &'static str) -> Result<()> {
    Err(Error::InvalidConfig {
        field,
        value: value.to_string(),
        reason,
    })
}

/// A value shown as the user would type it: `1e300` and `1e-300`, not three hundred digits.
///
/// ```
/// assert_eq!(cnn_training::display_number(1e-300), "1e-300");
/// assert_eq!(cnn_training::display_number(0.05), "0.05");
/// ```
pub fn display_number(v: f64) -> String {
    num(v)
}

fn num(v: f64) -> String {
    if v.is_finite() && v != 0.0 && !(1e-4..1e6).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_recipe_field_that_changes_is_named_and_nothing_else() {
        let base = TrainConfig::for_dataset(DatasetKind::Mnist, Some(Arch::MediumCnn));
        type Change = (&'static str, fn(&mut TrainConfig));
        let changes: [Change; 17] = [
            ("epochs", |c| c.epochs += 1),
            ("batch_size", |c| c.batch_size += 1),
            ("lr", |c| c.lr *= 2.0),
            ("optimizer", |c| c.optimizer = OptimizerKind::AdamW),
            ("momentum", |c| c.momentum = 0.5),
            ("l2", |c| c.l2 += 1.0),
            ("seed", |c| c.seed += 1),
            ("warmup_epochs", |c| c.warmup_epochs += 0.5),
            ("shift", |c| c.shift += 1),
            ("augment.rotate", |c| c.augment.rotate += 1.0),
            ("augment.scale", |c| c.augment.scale += 0.01),
            ("augment.translate", |c| c.augment.translate += 0.5),
            ("augment.elastic", |c| c.augment.elastic += 0.5),
            ("augment.flip", |c| c.augment.flip = !c.augment.flip),
            ("clean_epochs", |c| c.clean_epochs += 1),
            ("label_smoothing", |c| c.label_smoothing += 0.1),
            ("validation", |c| c.validation += 10),
        ];
        for (name, change) in changes {
            let mut other = base.clone();
            change(&mut other);
            assert_eq!(base.recipe_differences(&other), vec![name]);
        }
        let mut data_only = base.clone();
        data_only.dataset = DatasetKind::Fashion;
        data_only.data_dir = Some("elsewhere".into());
        data_only.class_names = vec!["a".into()];
        data_only.ops = OpsPath::Reference;
        assert!(base.recipe_differences(&data_only).is_empty());
        let none = TrainConfig::for_dataset(DatasetKind::Mnist, None);
        assert_eq!(
            none.recipe_differences(&TrainConfig::default()),
            vec![
                "lr",
                "augment.rotate",
                "augment.scale",
                "augment.translate",
                "clean_epochs"
            ]
        );
    }

    #[test]
    fn the_digits_clean_epochs_keep_their_share_of_the_run() {
        let cfg = TrainConfig::for_dataset(DatasetKind::Mnist, Some(Arch::SmallCnn));
        assert_eq!((cfg.epochs, cfg.clean_epochs), (15, DIGITS_CLEAN_EPOCHS));
        let share = |epochs| cfg.clone().with_epochs(epochs).clean_epochs;
        assert_eq!(share(50), 10);
        assert_eq!(share(15), 3);
        assert_eq!(share(4), 0);
        assert_eq!(share(usize::MAX), usize::MAX / 5);
        for epochs in [1, 2, 7, 50, 100_000] {
            assert!(
                cfg.clone().with_epochs(epochs).validate().is_ok(),
                "{epochs}"
            );
        }
        // Other data: no augmentation, so none are clean.
        assert_eq!(
            TrainConfig::for_dataset(DatasetKind::Fashion, None).clean_epochs,
            0
        );
    }

    #[test]
    fn each_dataset_and_preset_gets_the_peak_chosen_for_it() {
        let lr = |data: DatasetKind, preset| TrainConfig::for_dataset(data, preset).lr;
        let (small, medium) = (Some(Arch::SmallCnn), Some(Arch::MediumCnn));
        assert_eq!(
            (
                lr(DatasetKind::Mnist, small),
                lr(DatasetKind::Mnist, medium)
            ),
            (DIGITS_LR, DIGITS_LR)
        );
        assert_eq!(lr(DatasetKind::Fashion, medium), FASHION_MEDIUM_LR);
        let plain = TrainConfig::default().lr;
        assert_eq!(
            (
                lr(DatasetKind::Fashion, small),
                lr(DatasetKind::Fashion, None)
            ),
            (plain, plain)
        );
        assert_eq!(lr(DatasetKind::Own, medium), plain);
        // Fashion-MNIST trains unwarped whatever the network.
        assert!(
            TrainConfig::for_dataset(DatasetKind::Fashion, medium)
                .augment
                .is_none()
        );
    }
}
