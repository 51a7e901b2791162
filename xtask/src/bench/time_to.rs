//! Time to accuracy: seconds of training with a network's recipe until the test accuracy
//! first reaches a target, checked after every epoch.

use std::sync::atomic::AtomicBool;

use anyhow::Result;
use candle_core::Device;
use cnn_data::Dataset;
use cnn_models::NetSpec;
use cnn_training::{TrainConfig, Trainer};

use super::TimeTo;

/// Trains `spec` with `cfg` until its test accuracy first reaches `target` % or the recipe's
/// epochs run out.
pub fn ours(data: &Dataset, spec: &NetSpec, cfg: TrainConfig, target: f64) -> Result<TimeTo> {
    let mut trainer = Trainer::new(cfg, spec, &Device::Cpu, &data.train)?;
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
