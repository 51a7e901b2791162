//! `cargo xtask report`: trains what is missing, evaluates, and regenerates every figure,
//! for the presets and the shipped specs, or for any one run folder.

mod eval;
mod figures;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, Result};
use candle_core::Device;
use cnn_data::{DataSource, Dataset, DatasetKind};
use cnn_models::Arch;
use cnn_training::{Claim, Event, RunFolder, TrainConfig, Trainer};
use indicatif::{ProgressBar, ProgressStyle};

use eval::{RunFiles, evaluate, table_row};

/// Options of `cargo xtask report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Train the presets again even when their checkpoints exist.
    #[arg(long)]
    retrain: bool,
    /// One epoch on 2,000 images, into target/ (a smoke test of every figure).
    #[arg(long)]
    quick: bool,
    /// Dataset of the preset runs: mnist (shipped in assets/) or fashion
    /// (/usr/share/datasets/fashion-mnist).
    #[arg(long, value_parser = cnn_cli::parse_dataset, default_value = "mnist", value_name = "mnist|fashion")]
    dataset: DatasetKind,
    /// Folder for the figures [default: assets/figures, or the run's figures/ folder].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Draw one run folder (any spec, any data) from what it recorded, instead of the presets.
    #[arg(long, value_name = "DIR")]
    run: Option<PathBuf>,
    /// Data for --run, instead of the folder the run recorded.
    #[arg(long, value_name = "DIR", requires = "run")]
    data_dir: Option<PathBuf>,
    /// Where training and evaluation run: cpu, cuda or cuda:N (a GPU needs the cuda
    /// feature: `cargo run --release -p xtask --features cuda -- report --device cuda`).
    #[arg(long, value_name = "cpu|cuda|cuda:N", default_value = "cpu")]
    device: cnn_cli::DeviceArg,
}

/// The report's settings, checked once.
struct Options {
    retrain: bool,
    quick: bool,
    dataset: DatasetKind,
    out: Option<PathBuf>,
    run: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    device: Device,
}

impl ReportArgs {
    fn settings(self) -> Result<Options> {
        Ok(Options {
            retrain: self.retrain,
            quick: self.quick,
            dataset: self.dataset,
            out: self.out,
            run: self.run,
            data_dir: self.data_dir,
            device: cnn_cli::select_device(None, Some(self.device))?,
        })
    }
}

/// Images the quick mode trains on (one epoch), so CI exercises every figure in seconds.
const QUICK_TRAIN: usize = 2000;

fn bar(len: u64, prefix: String) -> ProgressBar {
    let b = ProgressBar::new(len).with_prefix(prefix);
    let style = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    b.set_style(style);
    b.enable_steady_tick(Duration::from_millis(200));
    b
}

#[allow(clippy::print_stdout)]
fn train(arch: Arch, data: &Dataset, run_dir: &Path, o: &Options) -> Result<()> {
    let quick = o.quick;
    let defaults = TrainConfig::for_dataset(o.dataset, Some(arch));
    // One epoch when quick, its share of clean epochs scaled along (none).
    let epochs = if quick { 1 } else { defaults.epochs };
    let cfg = defaults.with_epochs(epochs);
    let epochs = cfg.epochs;
    let mut trainer = Trainer::new(cfg, &arch.spec(), &o.device, &data.train)?;
    let total = (trainer.batches_per_epoch() * epochs) as u64;
    let pb = bar(total, format!("training {arch}"));
    let mut on_event = |e: &Event| match e {
        Event::Batch(p) => {
            pb.inc(1);
            if p.batch % 20 == 0 {
                pb.set_message(format!("epoch {} loss {:.4}", p.epoch, p.loss));
            }
        }
        Event::EpochEnd(m) => {
            let line = format!(
                "{arch} epoch {:>2}/{epochs}  test accuracy {:.2}%  {:.1} s",
                m.epoch,
                100.0 * m.test_accuracy,
                m.train_seconds
            );
            // A hidden bar (stdout not a terminal) swallows println: print plainly then.
            if pb.is_hidden() {
                println!("{line}")
            } else {
                pb.println(line)
            }
        }
        _ => {}
    };
    // Locked while training, as cnn-train locks it; --retrain replaces the run there.
    let mut folder = RunFolder::new(run_dir);
    folder.claim(Claim::Replace)?;
    let stop = AtomicBool::new(false);
    cnn_training::run(&mut trainer, data, Some(run_dir), &stop, &mut on_event)?;
    folder.release();
    pb.finish_and_clear();
    Ok(())
}

/// Draws one run's figures into `fig_dir`; returns its table row and captions.
#[allow(clippy::print_stdout)]
fn report_run(
    device: &Device,
    name: &str,
    files: &RunFiles,
    (data, kind): (&Dataset, DatasetKind),
    fig_dir: &Path,
    command: &str,
) -> Result<(String, Vec<String>)> {
    let (model, _) = cnn_training::load_model(&files.state, None, device)?;
    let ev = evaluate(&model, data, files, device)?;
    let run = figures::Run {
        device,
        name,
        model: &model,
        data,
        kind,
        ev: &ev,
        dir: fig_dir,
    };
    let figs = run.all()?;
    println!(
        "{name}: test accuracy {:.2}%, {} figures",
        100.0 * ev.correct(data) as f64 / data.test.len() as f64,
        figs.len()
    );
    let row = table_row(name, &model, data, &ev, command)?;
    let captions = figs
        .into_iter()
        .map(|f| format!("- `{}`: {}", f.file, f.caption))
        .collect();
    Ok((row, captions))
}

const TABLE_HEAD: [&str; 2] = [
    "| model | parameters | epochs | test accuracy | seconds per epoch (median) | command |",
    "|---|---:|---:|---:|---:|---|",
];

#[allow(clippy::print_stdout)]
fn write_results(
    fig_dir: &Path,
    title: &str,
    generated_by: &str,
    rows: &[String],
    captions: &[String],
) -> Result<()> {
    let mut md = format!("# Results ({title})\n\nGenerated by {generated_by}.\n\n");
    md.push_str(&TABLE_HEAD.join("\n"));
    md.push('\n');
    md.push_str(&rows.join("\n"));
    md.push_str("\n\n## Figures\n\n");
    md.push_str(&captions.join("\n"));
    md.push('\n');
    let md_path = fig_dir.join("results.md");
    std::fs::write(&md_path, md).with_context(|| format!("writing {}", md_path.display()))?;
    println!(
        "wrote {} figures and {} into {}",
        captions.len(),
        md_path.display(),
        fig_dir.display()
    );
    Ok(())
}

/// `cargo xtask report --run DIR`: the figures of one run folder, from what it recorded.
fn one_run(o: &Options, run_dir: &Path) -> Result<()> {
    let state = RunFolder::new(run_dir).final_state();
    let ckpt = cnn_training::checkpoint::read(&state, &o.device)?;
    let cfg: TrainConfig = ckpt
        .config
        .clone()
        .with_context(|| format!("{} records no recipe", state.display()))?;
    let source = match &o.data_dir {
        Some(dir) => DataSource::new(dir, cfg.dataset),
        None => cnn_cli::recorded_data(&cfg),
    };
    let data =
        cnn_data::load(&source).with_context(|| format!("loading {}", source.dir.display()))?;
    if let Some(spec) = &ckpt.spec {
        // Before any figure: another class count or image size fails inside candle or the
        // figures otherwise.
        cnn_training::check_fit(spec, &data).with_context(|| {
            format!(
                "{} does not fit the run {} (pass the --data-dir it was trained on)",
                source.dir.display(),
                run_dir.display()
            )
        })?;
    }
    let fig_dir = o.out.clone().unwrap_or_else(|| run_dir.join("figures"));
    std::fs::create_dir_all(&fig_dir).with_context(|| format!("creating {}", fig_dir.display()))?;
    let command = format!("cnn-train --final-state --out {}", run_dir.display());
    let files = RunFiles::in_run(run_dir);
    let (row, captions) = report_run(
        &o.device,
        &ckpt.name,
        &files,
        (&data, cfg.dataset),
        &fig_dir,
        &command,
    )?;
    let by = format!("`cargo xtask report --run {}`", run_dir.display());
    write_results(&fig_dir, &ckpt.name, &by, &[row], &captions)
}

fn default_source(kind: DatasetKind) -> DataSource {
    cnn_cli::select_data(Some(kind), None)
}

/// A preset's weights and history: trained now (with `--retrain`, `--quick`, or when there
/// are none), else those of its run folder, else those shipped in assets/models/. MNIST
/// presets trained here in full are shipped anew.
#[allow(clippy::print_stdout)]
fn preset_files(arch: Arch, data: &Dataset, run_dir: &Path, o: &Options) -> Result<RunFiles> {
    let trained = RunFiles::in_run(run_dir);
    let shipped = RunFiles::shipped(arch.name());
    let mnist = o.dataset == DatasetKind::Mnist;
    if o.retrain || o.quick || !(trained.exist() || (mnist && shipped.exist())) {
        train(arch, data, run_dir, o)?;
        if mnist && !o.quick {
            trained.copy_to(&shipped)?;
            println!("{arch}: shipped as {}", shipped.state.display());
        }
        return Ok(trained);
    }
    let files = if trained.exist() { trained } else { shipped };
    println!(
        "{arch}: using {} (pass --retrain to train again)",
        files.state.display()
    );
    Ok(files)
}

/// Networks of our own design shipped trained in assets/models/ (`NAME.toml`, its weights
/// and history), drawn beside the MNIST presets from those files. They are not trained
/// here: each takes 20 epochs of its own recipe (README, "Results").
const SHIPPED_SPECS: [&str; 1] = ["mnist_best"];

/// The figures and table row of one shipped spec, from its shipped weights.
fn shipped_spec(
    name: &str,
    data: &Dataset,
    fig_dir: &Path,
    device: &Device,
) -> Result<(String, Vec<String>)> {
    let files = RunFiles::shipped(name);
    if !files.exist() {
        anyhow::bail!(
            "{} or {} is missing (a clone ships both)",
            files.state.display(),
            files.history.display()
        );
    }
    let command = format!("cnn-train --model assets/models/{name}.toml");
    report_run(
        device,
        name,
        &files,
        (data, DatasetKind::Mnist),
        fig_dir,
        &command,
    )
}

#[allow(clippy::print_stdout)]
pub fn main(args: ReportArgs) -> Result<()> {
    let o = args.settings()?;
    if let Some(run_dir) = &o.run {
        return one_run(&o, run_dir);
    }
    let root = crate::repo_root();
    let mut data = cnn_data::load(&default_source(o.dataset))?;
    let scratch = root.join("target/xtask-report-quick");
    let (fig_dir, runs_dir) = match (o.quick, o.dataset) {
        (true, _) => (scratch.join("figures"), scratch.join("runs")),
        (false, DatasetKind::Mnist | DatasetKind::Own) => {
            (root.join("assets/figures"), root.join("runs"))
        }
        (false, DatasetKind::Fashion) => (
            root.join("assets/figures/fashion"),
            root.join("runs/fashion"),
        ),
    };
    let fig_dir = o.out.clone().unwrap_or(fig_dir);
    std::fs::create_dir_all(&fig_dir).with_context(|| format!("creating {}", fig_dir.display()))?;
    if o.quick {
        data.train = data.train.take(QUICK_TRAIN);
    }
    let fashion = o.dataset == DatasetKind::Fashion;
    let dataset_flag = if fashion { " --dataset fashion" } else { "" };
    let (mut rows, mut captions) = (Vec::new(), Vec::new());
    for arch in Arch::ALL {
        let run_dir = runs_dir.join(arch.name());
        let files = preset_files(arch, &data, &run_dir, &o)?;
        let command = format!("cnn-train --model {arch}{dataset_flag}");
        let (row, caps) = report_run(
            &o.device,
            arch.name(),
            &files,
            (&data, o.dataset),
            &fig_dir,
            &command,
        )?;
        rows.push(row);
        captions.extend(caps);
    }
    if o.dataset == DatasetKind::Mnist {
        for name in SHIPPED_SPECS {
            let (row, caps) = shipped_spec(name, &data, &fig_dir, &o.device)?;
            rows.push(row);
            captions.extend(caps);
        }
    }
    let title = if fashion { "Fashion-MNIST" } else { "MNIST" };
    let by = if o.quick {
        format!(
            "`cargo xtask report{dataset_flag} --quick` (1 epoch on 2,000 images: a smoke test, not a result)"
        )
    } else {
        format!("`cargo xtask report{dataset_flag}`")
    };
    write_results(&fig_dir, title, &by, &rows, &captions)
}
