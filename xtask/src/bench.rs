//! `cargo xtask bench`: medians of training and inference throughput, ours beside PyTorch's.

use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use candle_core::Device;
use cnn_data::{DataSource, Dataset};
use cnn_models::{Arch, OpsPath};
use cnn_training::{TrainConfig, Trainer, batch_tensor, evaluate, label_tensor};

/// Options of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Presets to time, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "small_cnn,medium_cnn")]
    models: Vec<String>,
    /// Timed runs of each measurement (the median is reported).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Training steps per timed run.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..))]
    batches: u32,
    /// Skip candle-nn's reference path (slow).
    #[arg(long)]
    no_reference: bool,
    /// A Python with torch, for the PyTorch columns [default: $CNN_TORCH_PYTHON, else python3].
    #[arg(long, value_name = "PATH")]
    torch_python: Option<String>,
}

/// The bench's settings, checked once.
struct Options {
    models: Vec<Arch>,
    runs: usize,
    batches: usize,
    reference: bool,
    torch_python: Option<String>,
}

impl BenchArgs {
    fn settings(self) -> Result<Options> {
        Ok(Options {
            models: self
                .models
                .iter()
                .map(|m| m.parse::<Arch>().map_err(anyhow::Error::from))
                .collect::<Result<_>>()
                .context("--models")?,
            runs: self.runs as usize,
            batches: self.batches as usize,
            reference: !self.no_reference,
            torch_python: self
                .torch_python
                .or_else(|| std::env::var("CNN_TORCH_PYTHON").ok()),
        })
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// CPU model name, logical cores, and the widest SIMD level `gemm` can pick at run time.
pub fn machine() -> (String, usize, &'static str) {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    #[cfg(target_arch = "x86_64")]
    let simd = if std::arch::is_x86_feature_detected!("avx512f") {
        "AVX-512"
    } else if std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
    {
        "AVX2+FMA"
    } else if std::arch::is_x86_feature_detected!("avx") {
        "AVX"
    } else {
        "SSE2"
    };
    #[cfg(not(target_arch = "x86_64"))]
    let simd = "NEON/scalar";
    (model, cores, simd)
}

struct Figures {
    train: f64,
    infer: f64,
}

fn bench_ours(data: &Dataset, arch: Arch, ops: OpsPath, o: &Options) -> Result<Figures> {
    let dev = Device::Cpu;
    let cfg = TrainConfig {
        ops,
        ..TrainConfig::default()
    };
    let bs = cfg.batch_size;
    let mut trainer = Trainer::new(cfg, &arch.spec(), &dev, &data.train)?;
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
    let _ = evaluate(trainer.model(), &data.test, &dev)?;
    let mut infer = Vec::new();
    for _ in 0..o.runs {
        let start = Instant::now();
        let e = evaluate(trainer.model(), &data.test, &dev)?;
        infer.push(e.total as f64 / start.elapsed().as_secs_f64());
    }
    Ok(Figures {
        train: median(train),
        infer: median(infer),
    })
}

fn torch_python(o: &Options) -> Option<String> {
    let candidates = o
        .torch_python
        .iter()
        .cloned()
        .chain(["python3".to_string()]);
    candidates.into_iter().find(|py| {
        Command::new(py)
            .args(["-c", "import torch"])
            .output()
            .map(|out| out.status.success())
            .unwrap_or(false)
    })
}

fn bench_torch(py: &str, arch: Arch, o: &Options) -> Result<Figures> {
    let script = crate::repo_root().join("xtask/bench/torch_bench.py");
    let threads = candle_core::utils::get_num_threads().to_string();
    let out = Command::new(py)
        .arg(&script)
        .args([
            arch.name(),
            &o.runs.to_string(),
            &o.batches.to_string(),
            &threads,
        ])
        .arg(crate::repo_root().join("assets/mnist"))
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| -> Result<f64> {
        text.split_whitespace()
            .skip_while(|w| *w != name)
            .nth(1)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("no {name} in torch_bench output: {text}"))
    };
    Ok(Figures {
        train: field("train_img_per_s")?,
        infer: field("infer_img_per_s")?,
    })
}

#[allow(clippy::print_stdout)]
pub fn main(args: BenchArgs) -> Result<()> {
    let o = args.settings()?;
    let (cpu, cores, simd) = machine();
    let threads = candle_core::utils::get_num_threads();
    println!("machine: {cpu}, {cores} logical cores, SIMD {simd}; {threads} threads; batch 64");
    println!(
        "method: median of {} runs of {} training steps (after 5 warm-up steps), and of {} passes over the 10k test set (batches of 1000)",
        o.runs, o.batches, o.runs
    );
    let data = cnn_data::load(&DataSource::new(
        crate::repo_root().join("assets/mnist"),
        cnn_data::DatasetKind::Mnist,
    ))?;
    let py = torch_python(&o);
    if py.is_none() {
        println!(
            "note: no Python with torch found (set --torch-python PATH or CNN_TORCH_PYTHON); PyTorch columns skipped"
        );
    }
    println!();
    println!(
        "| model | path | train img/s | epoch s (60k) | 10k inference img/s | train time vs PyTorch | inference vs PyTorch |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|");
    for &arch in &o.models {
        let torch = match &py {
            Some(py) => Some(bench_torch(py, arch, &o)?),
            None => None,
        };
        let mut paths = vec![("fast", OpsPath::Fast)];
        if o.reference {
            paths.push(("candle-nn reference", OpsPath::Reference));
        }
        for (name, ops) in paths {
            let f = bench_ours(&data, arch, ops, &o)?;
            let (rt, ri) = match &torch {
                Some(t) => (
                    format!("{:.2}x", t.train / f.train),
                    format!("{:.2}x", f.infer / t.infer),
                ),
                None => ("-".into(), "-".into()),
            };
            println!(
                "| {arch} | {name} | {:.0} | {:.1} | {:.0} | {rt} | {ri} |",
                f.train,
                60_000.0 / f.train,
                f.infer
            );
        }
        if let Some(t) = torch {
            println!(
                "| {arch} | PyTorch | {:.0} | {:.1} | {:.0} | 1.00x | 1.00x |",
                t.train,
                60_000.0 / t.train,
                t.infer
            );
        }
    }
    println!();
    println!(
        "train time vs PyTorch: our epoch time / PyTorch's (lower is better); inference: our img/s / PyTorch's (higher is better)"
    );
    Ok(())
}
