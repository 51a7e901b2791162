//! Time to accuracy: seconds of training with the default recipe until the test accuracy
//! first reaches a target, checked after every epoch.

use std::sync::atomic::AtomicBool;

use anyhow::Result;
use candle_core::Device;
use cnn_data::Dataset;
use cnn_models::Arch;
use cnn_training::{TrainConfig, Trainer};

use super::TimeTo;

/// Trains `arch` with its MNIST default recipe (`TrainConfig::for_dataset`) until
/// its test accuracy first reaches `target` % or the recipe's epochs run out.
pub fn ours(data: &Dataset, arch: Arch, target: f64) -> Result<TimeTo> {
    let cfg = TrainConfig::for_dataset(cnn_data::DatasetKind::Mnist, Some(arch));
    let mut trainer = Trainer::new(cfg, &arch.spec(), &Device::Cpu, &data.train)?;
    let stop = AtomicBool::new(false);
    let mut result = TimeTo::default();
    for _ in 0..trainer.config().epochs {
        let Some(m) = trainer.train_epoch(data, &stop, &mut |_| {})? else {
            break;
        };
        result.record(m.train_seconds, 100.0 * m.test_accuracy);
        if 100.0 * m.test_accuracy >= target {
            break;
        }
    }
    Ok(result)
}
