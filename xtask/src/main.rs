//! `cargo xtask`: project automation (figures, benchmarks), run from anywhere in the repository.

mod bench;
mod report;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

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
