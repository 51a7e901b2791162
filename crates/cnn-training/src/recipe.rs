//! Changes to a recipe: the `[train]` table a spec file carries (its recipe travels with
//! it), or a program's flags; applied over a base recipe in one place.

use serde::{Deserialize, Serialize};

use crate::{Affine, Error, OptimizerKind, Result, TrainConfig};

/// A named augmentation recipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AugmentPreset {
    /// The recipe from before augmentation, whole: no warp, no label smoothing, the plain
    /// peak learning rate, no clean epochs.
    None,
    /// [`Affine::LIGHT`]: ±5° rotation, ±5% size, ±1.5 px translation.
    Light,
}

/// Changes to a [`TrainConfig`]: each field given replaces the base recipe's, the rest keep
/// it. As a spec file's `[train]` table (same names):
///
/// ```
/// use cnn_training::{OptimizerKind, RecipeChanges, TrainConfig};
/// let text = "name = \"tiny\"\n[[layer]]\nconv = 8\n[train]\noptimizer = \"adam\"\nepochs = 20\n";
/// let changes = RecipeChanges::from_spec_toml(text)?.unwrap_or_default();
/// let cfg = changes.apply(TrainConfig::default());
/// assert_eq!((cfg.optimizer, cfg.epochs, cfg.lr), (OptimizerKind::Adam, 20, cnn_training::ADAM_LR));
/// # Ok::<(), cnn_training::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // each field is the TrainConfig field of the same name
pub struct RecipeChanges {
    pub epochs: Option<usize>,
    pub batch_size: Option<usize>,
    pub lr: Option<f64>,
    /// Moves the learning rate to the optimizer's default too, unless `lr` is given.
    pub optimizer: Option<OptimizerKind>,
    pub momentum: Option<f64>,
    pub l2: Option<f64>,
    pub seed: Option<u64>,
    pub warmup_epochs: Option<f64>,
    /// Given alone (no `augment` and no warp field), replaces the base's warp.
    pub shift: Option<usize>,
    /// Applied first; the warp fields then adjust it.
    pub augment: Option<AugmentPreset>,
    pub rotate: Option<f64>,
    pub scale: Option<f64>,
    pub translate: Option<f64>,
    pub elastic: Option<f64>,
    pub flip: Option<bool>,
    pub clean_epochs: Option<usize>,
    pub label_smoothing: Option<f64>,
    pub validation: Option<usize>,
}

impl RecipeChanges {
    /// The `[train]` table of a spec file's text, if it has one; other keys are left to
    /// [`NetSpec::from_toml`](cnn_models::NetSpec::from_toml). An unknown key or a value of
    /// the wrong type is [`Error::TrainTable`].
    pub fn from_spec_toml(text: &str) -> Result<Option<Self>> {
        #[derive(Deserialize)]
        struct Outer {
            train: Option<RecipeChanges>,
        }
        toml::from_str::<Outer>(text)
            .map(|o| o.train)
            .map_err(|e| Error::TrainTable {
                reason: e.message().trim_end().to_string(),
            })
    }

    /// `base` with these changes: `augment` first, then `epochs` (scaling the clean epochs
    /// along, [`TrainConfig::with_epochs`]), `optimizer` ([`TrainConfig::with_optimizer`]),
    /// then every other field given.
    pub fn apply(&self, base: TrainConfig) -> TrainConfig {
        let mut d = base;
        match self.augment {
            Some(AugmentPreset::None) => {
                let before = TrainConfig::default();
                d.augment = before.augment;
                d.label_smoothing = before.label_smoothing;
                d.lr = before.lr;
                d.clean_epochs = before.clean_epochs;
            }
            Some(AugmentPreset::Light) => d.augment = Affine::LIGHT,
            None => {}
        }
        // `shift` is the older, whole-pixel augmentation: asked for alone, it takes the
        // place of the base's warp rather than clashing with it.
        let warp = [self.rotate, self.scale, self.translate, self.elastic];
        if self.shift.is_some_and(|s| s > 0)
            && self.augment.is_none()
            && warp.iter().all(Option::is_none)
            && self.flip.is_none()
        {
            d.augment = Affine::NONE;
        }
        if let Some(epochs) = self.epochs {
            d = d.with_epochs(epochs);
        }
        if let Some(kind) = self.optimizer {
            d = d.with_optimizer(kind);
        }
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
                flip: self.flip.unwrap_or(d.augment.flip),
            },
            clean_epochs: self.clean_epochs.unwrap_or(d.clean_epochs),
            label_smoothing: self.label_smoothing.unwrap_or(d.label_smoothing),
            validation: self.validation.unwrap_or(d.validation),
            ..d
        }
    }
}
