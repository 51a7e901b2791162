//! `cargo xtask bench`: medians of training and inference throughput, ours beside PyTorch's,
//! the machine's GEMM peak and each step's share of it, per thread count; optionally the
//! time to an accuracy and where a training step's time goes.

mod breakdown;
mod ours;
mod time_to;
mod torch;

use std::process::Command;

use anyhow::{Context, Result, bail};
use cnn_data::{DataSource, Dataset, DatasetKind};
use cnn_training::{RecipeChanges, TrainConfig};
use std::path::PathBuf;

use cnn_models::{Arch, MNIST_CLASSES, MNIST_INPUT, NetSpec, OpsPath};

/// Set in the environment of the bench's own child processes, one per `--threads` value.
const CHILD: &str = "XTASK_BENCH_THREADS";

/// Options of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Networks to time, comma-separated: preset names or spec files (`PATH.toml`, built
    /// for PyTorch from the same file by `xtask/bench/spec_net.py`).
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
    /// Thread counts to measure, comma-separated, each in its own process (ours and
    /// PyTorch's alike) [default: $RAYON_NUM_THREADS, else every logical core].
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..=1024))]
    threads: Vec<u32>,
    /// Also time training each of --models, with its own recipe (the MNIST default, with a
    /// spec file's `[train]` table applied), until its test accuracy first reaches this
    /// percentage (checked after each epoch), against PyTorch's reference: `torch_peer.py`
    /// training `small_cnn`.
    #[arg(long, value_name = "PERCENT")]
    time_to: Option<f64>,
    /// Also split a training step of each model into batch, forward, loss, backward and
    /// update (medians over the timed steps).
    #[arg(long)]
    breakdown: bool,
}

/// The bench's settings, checked once.
pub struct Options {
    models: Vec<BenchModel>,
    runs: usize,
    batches: usize,
    reference: bool,
    torch_python: Option<String>,
    threads: Vec<usize>,
    time_to: Option<f64>,
    breakdown: bool,
}

impl BenchArgs {
    fn settings(self) -> Result<Options> {
        if let Some(t) = self.time_to
            && !(t.is_finite() && 0.0 < t && t < 100.0)
        {
            bail!("--time-to {t}: give a test accuracy in percent, above 0 and below 100");
        }
        Ok(Options {
            models: self
                .models
                .iter()
                .map(|m| BenchModel::new(m))
                .collect::<Result<_>>()
                .context("--models")?,
            runs: self.runs as usize,
            batches: self.batches as usize,
            reference: !self.no_reference,
            torch_python: self
                .torch_python
                .or_else(|| std::env::var("CNN_TORCH_PYTHON").ok()),
            threads: self.threads.iter().map(|&t| t as usize).collect(),
            time_to: self.time_to,
            breakdown: self.breakdown,
        })
    }
}

/// A network to time: its name, its spec on MNIST, and the spec file PyTorch builds it from.
pub struct BenchModel {
    pub name: String,
    pub spec: NetSpec,
    pub file: PathBuf,
    /// The recipe `--time-to` trains it with: the MNIST default for its preset or for any
    /// network, with a spec file's `[train]` table applied.
    pub recipe: TrainConfig,
}

impl BenchModel {
    /// A preset by name, or the spec file at `arg`.
    fn new(arg: &str) -> Result<Self> {
        let preset = Arch::from_name(arg);
        let mut recipe = TrainConfig::for_dataset(DatasetKind::Mnist, preset);
        let (spec, file) = match preset {
            Some(arch) => {
                let file = crate::repo_root().join(format!("assets/models/{}.toml", arch.name()));
                (arch.spec(), file)
            }
            None => {
                let file = PathBuf::from(arg);
                let text = std::fs::read_to_string(&file).with_context(|| {
                    format!("{arg}: not a preset, and not a readable spec file")
                })?;
                let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("spec");
                if let Some(changes) =
                    RecipeChanges::from_spec_toml(&text).with_context(|| arg.to_string())?
                {
                    recipe = changes.apply(recipe);
                }
                (
                    NetSpec::from_toml(&text, stem).with_context(|| arg.to_string())?,
                    file,
                )
            }
        };
        let spec = spec
            .resolve(MNIST_INPUT, MNIST_CLASSES)
            .with_context(|| format!("{arg} on MNIST"))?;
        Ok(Self {
            name: spec.name.clone(),
            spec,
            file,
            recipe,
        })
    }
}

/// The middle value (the mean of the two middle ones for an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Images per second, training and inference.
pub struct Figures {
    train: f64,
    infer: f64,
}

/// Seconds of training, epochs and the best test accuracy (%) so far of a run that stops
/// when it first reaches a target accuracy.
#[derive(Default)]
pub struct TimeTo {
    seconds: f64,
    epochs: usize,
    best: f64,
}

impl TimeTo {
    /// Adds one epoch of `secs` seconds of training that ended at `acc` % test accuracy.
    fn record(&mut self, secs: f64, acc: f64) {
        self.seconds += secs;
        self.epochs += 1;
        self.best = self.best.max(acc);
    }

    fn describe(&self, target: f64) -> String {
        if self.best >= target {
            let unit = if self.epochs == 1 { "epoch" } else { "epochs" };
            format!("{:.1} s ({} {unit})", self.seconds, self.epochs)
        } else {
            format!(
                "not reached in {} epochs (best {:.2}%)",
                self.epochs, self.best
            )
        }
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

pub fn main(args: BenchArgs) -> Result<()> {
    let o = args.settings()?;
    // Thread pools are sized once per process, so each requested count runs in a child.
    if !o.threads.is_empty() && std::env::var_os(CHILD).is_none() {
        return per_thread_count(&o.threads);
    }
    bench(&o)
}

/// Runs this same command once per thread count, in a child process whose thread pools
/// (candle's, rayon's, PyTorch's) are sized by the environment.
fn per_thread_count(threads: &[usize]) -> Result<()> {
    let exe = std::env::current_exe().context("finding the xtask binary")?;
    for &n in threads {
        let status = Command::new(&exe)
            .args(std::env::args_os().skip(1))
            .env(CHILD, n.to_string())
            .env("RAYON_NUM_THREADS", n.to_string())
            .env("CANDLE_NUM_THREADS", n.to_string())
            .status()
            .with_context(|| format!("running the bench with {n} threads"))?;
        if !status.success() {
            bail!("the bench with {n} threads failed ({status})");
        }
    }
    Ok(())
}

#[allow(clippy::print_stdout)]
fn bench(o: &Options) -> Result<()> {
    let (cpu, cores, simd) = machine();
    let threads = candle_core::utils::get_num_threads();
    println!("## {threads} threads");
    println!();
    println!("machine: {cpu}, {cores} logical cores, SIMD {simd}; {threads} threads; batch 64");
    println!(
        "method: median of {} runs of {} training steps (after 5 warm-up steps), and of {} passes over the 10k test set (in the batches training evaluates with: up to 1000 images, fewer where one layer's output would pass 8 MiB)",
        o.runs, o.batches, o.runs
    );
    let peak = ours::gemm_peak(o.runs)?;
    println!(
        "GEMM peak: {peak:.0} GFLOP/s (2048x2048x2048 SGEMM through the fast path's kernels, median of {})",
        o.runs
    );
    let data = cnn_data::load(&DataSource::new(
        crate::repo_root().join("assets/mnist"),
        cnn_data::DatasetKind::Mnist,
    ))?;
    let py = torch::python(o);
    if py.is_none() {
        println!(
            "note: no Python with torch found (set --torch-python PATH or CNN_TORCH_PYTHON); PyTorch columns skipped"
        );
    }
    println!();
    println!(
        "| model | path | train img/s | epoch s (60k) | train GFLOP/s (share of peak) | 10k inference img/s | train time vs PyTorch | inference vs PyTorch |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for m in &o.models {
        table_rows(&data, m, o, py.as_deref(), threads, peak)?;
    }
    println!();
    println!(
        "train time vs PyTorch: our epoch time / PyTorch's (lower is better); inference: our img/s / PyTorch's (higher is better); GFLOP/s counts the conv and linear products only ({})",
        o.models
            .iter()
            .map(|m| format!(
                "{}: {:.2} MFLOP a training image",
                m.name,
                ours::train_flops_per_image(&m.spec) / 1e6
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if o.breakdown {
        breakdown_rows(&data, o)?;
    }
    if let Some(target) = o.time_to {
        time_to_rows(&data, target, &o.models, py.as_deref(), threads)?;
    }
    println!();
    Ok(())
}

/// One row per model: median milliseconds of each part of a training step.
#[allow(clippy::print_stdout)]
fn breakdown_rows(data: &Dataset, o: &Options) -> Result<()> {
    let steps = o.runs * o.batches / 2;
    println!();
    println!(
        "a training step, part by part (median ms of {steps} steps timed by parts and {steps} whole; update = whole step - forward - loss - backward):"
    );
    println!();
    println!("| model | batch | forward | loss | backward | update | whole step |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for m in &o.models {
        let p = breakdown::parts(data, &m.spec, steps)?;
        println!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            m.name,
            p.batch,
            p.forward,
            p.loss,
            p.backward,
            p.update(),
            p.step,
        );
    }
    Ok(())
}

/// One table row per path of `m` (ours, candle-nn's, PyTorch's).
#[allow(clippy::print_stdout)]
fn table_rows(
    data: &Dataset,
    m: &BenchModel,
    o: &Options,
    py: Option<&str>,
    threads: usize,
    peak: f64,
) -> Result<()> {
    let torch = py
        .map(|py| torch::throughput(py, &m.file, o, threads))
        .transpose()?;
    let flops = ours::train_flops_per_image(&m.spec);
    let arch = &m.name;
    let gflops = |img_per_s: f64| {
        let g = img_per_s * flops / 1e9;
        format!("{g:.0} ({:.0}%)", 100.0 * g / peak)
    };
    let mut paths = vec![("fast", OpsPath::Fast)];
    if o.reference {
        paths.push(("candle-nn reference", OpsPath::Reference));
    }
    for (name, ops) in paths {
        let f = ours::throughput(data, &m.spec, ops, o)?;
        let (rt, ri) = match &torch {
            Some(t) => (
                format!("{:.2}x", t.train / f.train),
                format!("{:.2}x", f.infer / t.infer),
            ),
            None => ("-".into(), "-".into()),
        };
        println!(
            "| {arch} | {name} | {:.0} | {:.1} | {} | {:.0} | {rt} | {ri} |",
            f.train,
            60_000.0 / f.train,
            gflops(f.train),
            f.infer
        );
    }
    if let Some(t) = torch {
        println!(
            "| {arch} | PyTorch | {:.0} | {:.1} | {} | {:.0} | 1.00x | 1.00x |",
            t.train,
            60_000.0 / t.train,
            gflops(t.train),
            t.infer
        );
    }
    Ok(())
}

/// Seconds of training to `target` % test accuracy: PyTorch's reference (`torch_peer.py`
/// training `small_cnn`) once, then each model with its own recipe, as a ratio to it.
#[allow(clippy::print_stdout)]
fn time_to_rows(
    data: &Dataset,
    target: f64,
    models: &[BenchModel],
    py: Option<&str>,
    threads: usize,
) -> Result<()> {
    println!();
    println!("time to {target}% test accuracy (training seconds, test passes not counted):");
    let reference = match py {
        Some(py) => {
            let file = crate::repo_root().join("assets/models/small_cnn.toml");
            let theirs = torch::time_to(py, &file, target, 15, threads)?;
            println!(
                "- PyTorch's reference, torch_peer.py training small_cnn (one-cycle SGD peaking at lr 0.05, momentum 0.9, weight decay 1e-4): {}",
                theirs.describe(target)
            );
            Some(theirs).filter(|t| t.best >= target)
        }
        None => {
            println!("- PyTorch's reference: skipped (no Python with torch)");
            None
        }
    };
    for m in models {
        let ours = time_to::ours(data, &m.spec, m.recipe.clone(), target)?;
        let ratio = match &reference {
            Some(r) if ours.best >= target => {
                format!("; {:.2}x PyTorch's reference", ours.seconds / r.seconds)
            }
            _ => String::new(),
        };
        println!(
            "- ours, {} with its recipe: {}{ratio}",
            m.name,
            ours.describe(target)
        );
    }
    Ok(())
}
