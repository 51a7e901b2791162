//! `cargo xtask`: project automation (figures, benchmarks), run from anywhere in the repository.

mod bench;
mod report;

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

const USAGE: &str = "usage: cargo xtask <command> [options]

commands:
  report   train the models whose checkpoints are missing, evaluate them, and regenerate
           every figure into assets/figures/ (with results.md)
           options: --retrain  --quick (1 epoch on 2,000 images, into target/)  --dataset mnist|fashion
                    --out DIR
                    --run DIR [--data-dir DIR]: the figures of one run folder (any spec, any
                    data), from what it recorded, into DIR/figures (or --out)
                    --device cpu|cuda|cuda:N: where training and evaluation run (a GPU needs
                    `cargo run --release -p xtask --features cuda -- report --device cuda`)
  bench    training and inference throughput of both models, fast and reference paths,
           beside PyTorch when a Python with torch is found
           options: --models small_cnn,medium_cnn  --runs N (5)  --batches N (60)
                    --no-reference  --torch-python PATH (or $CNN_TORCH_PYTHON)";

#[allow(clippy::print_stderr)]
fn main() -> ExitCode {
    // args_os: `std::env::args` panics on a non-UTF-8 argument.
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let result = match args.first().map(String::as_str) {
        Some("bench") => bench::main(&args[1..]),
        Some("report") => report::main(&args[1..]),
        Some("-h" | "--help") | None => {
            eprintln!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(anyhow::anyhow!("unknown command `{other}`\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
