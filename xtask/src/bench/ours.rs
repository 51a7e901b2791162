//! Our side of the bench: training and inference throughput of one preset, the arithmetic a
//! training image costs, and the machine's GEMM peak through the same kernels.

use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::Device;
use cnn_data::Dataset;
use cnn_models::{NetSpec, OpsPath};
use cnn_training::{TrainConfig, Trainer, batch_tensor, eval_batch, evaluate_in, label_tensor};

use super::{Figures, Options, median};

/// Training and inference images per second of `spec` on `ops` (medians of `o.runs`).
pub fn throughput(data: &Dataset, spec: &NetSpec, ops: OpsPath, o: &Options) -> Result<Figures> {
    let dev = Device::Cpu;
    let cfg = TrainConfig {
        ops,
        ..TrainConfig::default()
    };
    let bs = cfg.batch_size;
    let mut trainer = Trainer::new(cfg, spec, &dev, &data.train)?;
    let batch = |b: usize| -> Vec<usize> {
        (b * bs..(b + 1) * bs)
            .map(|i| i % data.train.len())
            .collect()
    };
    // Warm-up: first-touch allocations, thread pools, caches.
    for b in 0..5 {
        let idx = batch(b);
        trainer.step(
            &batch_tensor(&data.train, &idx, &dev)?,
            &label_tensor(&data.train, &idx, &dev)?,
        )?;
    }
    let mut train = Vec::new();
    for r in 0..o.runs {
        let start = Instant::now();
        for b in 0..o.batches {
            let idx = batch(5 + r * o.batches + b);
            // Batch assembly is part of an epoch, so it is timed too.
            let x = batch_tensor(&data.train, &idx, &dev)?;
            let y = label_tensor(&data.train, &idx, &dev)?;
            trainer.step(&x, &y)?;
        }
        train.push((o.batches * bs) as f64 / start.elapsed().as_secs_f64());
    }
    // Batches as training's evaluation and `--final-state` take them for this network.
    let batch = eval_batch(spec);
    let _ = evaluate_in(trainer.model(), &data.test, &dev, batch)?;
    let mut infer = Vec::new();
    for _ in 0..o.runs {
        let start = Instant::now();
        let e = evaluate_in(trainer.model(), &data.test, &dev, batch)?;
        infer.push(e.total as f64 / start.elapsed().as_secs_f64());
    }
    Ok(Figures {
        train: median(train),
        infer: median(infer),
    })
}

/// Floating-point operations to train on one MNIST image: multiply-adds of the conv and
/// linear layers, times 2 (multiply and add), times 3 (forward, input gradient, weight
/// gradient). Pools, ReLUs, the loss and the update are left out: they are memory-bound
/// and small beside the products.
pub fn train_flops_per_image(spec: &NetSpec) -> f64 {
    let layers = spec.layers().unwrap_or_default();
    let macs: usize = layers
        .iter()
        .map(
            |l| match (l.kind.split_whitespace().next(), &l.output_shape[..]) {
                // A conv's weights (its parameters less one bias per channel, and a batch
                // norm's two) each meet every output pixel once.
                (Some("Conv2d"), &[c, h, w]) => {
                    let extra = if l.kind.contains("BatchNorm") { 3 } else { 1 };
                    (l.params - extra * c) * h * w
                }
                (Some("Linear" | "Linear,"), &[out]) => l.params - out,
                _ => 0,
            },
        )
        .sum();
    6.0 * macs as f64
}

/// GFLOP/s of a large square SGEMM through the fast path's kernels (median of `runs` after
/// one warm-up): the ceiling that a training step's arithmetic is measured against.
pub fn gemm_peak(runs: usize) -> Result<f64> {
    const N: usize = 2048;
    let a: Vec<f32> = (0..N * N).map(|i| ((i % 17) as f32 - 8.0) / 8.0).collect();
    let b: Vec<f32> = (0..N * N).map(|i| ((i % 13) as f32 - 6.0) / 6.0).collect();
    let mut gflops = Vec::new();
    for r in 0..=runs {
        let start = Instant::now();
        let c = cnn_models::fast::matmul(&a, &b, N, N, N).context("GEMM peak: sizes")?;
        let secs = start.elapsed().as_secs_f64();
        std::hint::black_box(c);
        if r > 0 {
            gflops.push(2.0 * (N * N * N) as f64 / secs / 1e9);
        }
    }
    Ok(median(gflops))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_epoch_costs_what_the_layers_add_up_to() {
        // small_cnn: conv 1→10 on 28x28, conv 10→20 on 14x14, linear 980→10 (multiply-adds).
        let small = 9 * 10 * 784 + 90 * 20 * 196 + 980 * 10;
        let spec = |a: cnn_models::Arch| a.mnist_spec();
        assert_eq!(
            train_flops_per_image(&spec(cnn_models::Arch::SmallCnn)),
            6.0 * small as f64
        );
        // medium_cnn adds conv 20→40 on 7x7 and linears 1960→128→10: about 371 GFLOP an epoch.
        let medium = small - 980 * 10 + 180 * 40 * 49 + 1960 * 128 + 128 * 10;
        let epoch = 60_000.0 * train_flops_per_image(&spec(cnn_models::Arch::MediumCnn));
        assert_eq!(epoch, 60_000.0 * 6.0 * medium as f64);
        assert!((epoch / 1e9 - 370.2).abs() < 0.1, "{epoch}");
    }
}
