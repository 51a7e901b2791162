//! `cargo xtask`: project automation (figures, benchmarks), run from anywhere in the repository.

mod bench;
mod report;
mod web;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The device for `--device`: `cpu`, `cuda` or `cuda:N` (a GPU needs the `cuda` feature).
pub fn device(arg: Option<&str>) -> anyhow::Result<candle_core::Device> {
    let ordinal = match arg {
        Some("cpu") => return Ok(candle_core::Device::Cpu),
        Some("cuda" | "gpu") => 0,
        Some(d) => match d.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(i)) => i,
            _ => anyhow::bail!("--device {d}: expected cpu, cuda or cuda:N"),
        },
        None => anyhow::bail!("--device needs a value"),
    };
    cuda(ordinal)
}

#[cfg(feature = "cuda")]
fn cuda(i: usize) -> anyhow::Result<candle_core::Device> {
    use anyhow::Context;
    candle_core::Device::new_cuda(i).with_context(|| format!("cannot open CUDA device {i}"))
}

#[cfg(not(feature = "cuda"))]
fn cuda(_: usize) -> anyhow::Result<candle_core::Device> {
    anyhow::bail!("this xtask has no CUDA support: run it with `--features cuda`")
}

/// The repository root, from this crate's manifest folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Project automation for cnn-mnist, run from anywhere in the repository.
#[derive(Debug, clap::Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Xtask {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Train the presets whose checkpoints are missing, evaluate them, and regenerate every
    /// figure into assets/figures/ (with results.md); or draw one run folder with --run.
    Report(report::ReportArgs),
    /// Training and inference throughput of the presets, fast and reference paths, beside
    /// PyTorch when a Python with torch is found.
    Bench(bench::BenchArgs),
    /// Build the interactive page (the models running in the browser as wasm) into
    /// target/web/; with --serve, also serve it on 127.0.0.1 and print the URL.
    Web(web::WebArgs),
}

#[allow(clippy::print_stderr)]
fn main() -> ExitCode {
    use clap::Parser;
    let cli = match Xtask::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let result = match cli.command {
        Command::Report(args) => report::main(args),
        Command::Bench(args) => bench::main(args),
        Command::Web(args) => web::main(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
