//! Where a training step's time goes: building the batch, the forward pass, the loss,
//! candle's backward pass, and the optimizer's update.

use std::time::Instant;

use anyhow::Result;
use candle_core::Device;
use cnn_data::Dataset;
use cnn_models::NetSpec;
use cnn_training::{TrainConfig, Trainer, batch_tensor, label_tensor};

use super::median;

/// Median milliseconds of each part of a training step.
pub struct Parts {
    pub batch: f64,
    pub forward: f64,
    pub loss: f64,
    pub backward: f64,
    /// A whole `Trainer::step` (forward, loss, backward and update).
    pub step: f64,
}

impl Parts {
    /// The optimizer's update: what a whole step costs beyond its measured parts.
    pub fn update(&self) -> f64 {
        self.step - self.forward - self.loss - self.backward
    }
}

/// Times `steps` steps of `spec` with the bench's recipe, alternating: one step timed part
/// by part (forward, loss, backward, with no update), the next as a whole `Trainer::step`.
/// Alternating keeps both kinds on the same weights and caches.
pub fn parts(data: &Dataset, spec: &NetSpec, steps: usize) -> Result<Parts> {
    let dev = Device::Cpu;
    let cfg = TrainConfig::default();
    let bs = cfg.batch_size;
    let mut trainer = Trainer::new(cfg, spec, &dev, &data.train)?;
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3;
    let (mut batch, mut forward, mut loss, mut backward, mut step) =
        (vec![], vec![], vec![], vec![], vec![]);
    // The first steps warm up allocations and the thread pool, and are not counted.
    let warm_up = 10;
    for s in 0..warm_up + 2 * steps {
        let idx: Vec<usize> = (s * bs..(s + 1) * bs)
            .map(|i| i % data.train.len())
            .collect();
        let t = Instant::now();
        let x = batch_tensor(&data.train, &idx, &dev)?;
        let y = label_tensor(&data.train, &idx, &dev)?;
        let counted = s >= warm_up;
        if counted {
            batch.push(ms(t));
        }
        if s % 2 == 1 {
            let t = Instant::now();
            trainer.step(&x, &y)?;
            if counted {
                step.push(ms(t));
            }
            continue;
        }
        let t = Instant::now();
        let logits = trainer.model().forward_t(&x, true)?;
        let f = ms(t);
        let t = Instant::now();
        let l = candle_nn::loss::cross_entropy(&logits, &y)?;
        l.to_scalar::<f32>()?;
        let lt = ms(t);
        let t = Instant::now();
        drop(l.backward()?);
        if counted {
            forward.push(f);
            loss.push(lt);
            backward.push(ms(t));
        }
    }
    Ok(Parts {
        batch: median(batch),
        forward: median(forward),
        loss: median(loss),
        backward: median(backward),
        step: median(step),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each part has timed steps behind it (a median of none would be NaN).
    #[test]
    fn every_part_of_a_real_step_is_timed() -> Result<()> {
        let data = cnn_data::load(&cnn_data::DataSource::new(
            crate::repo_root().join("assets/mnist"),
            cnn_data::DatasetKind::Mnist,
        ))?;
        let p = parts(&data, &cnn_models::Arch::SmallCnn.spec(), 3)?;
        for (name, ms) in [
            ("batch", p.batch),
            ("forward", p.forward),
            ("loss", p.loss),
            ("backward", p.backward),
            ("step", p.step),
        ] {
            assert!(ms.is_finite() && ms > 0.0, "{name}: {ms} ms");
        }
        Ok(())
    }
}
