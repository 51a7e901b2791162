//! `cargo xtask`: project automation (figures, benchmarks, the page, the test suite), run from
//! anywhere in the repository.
#![forbid(unsafe_code)]

mod bench;
mod downstream;
mod pictures;
mod report;
mod setup;
mod test;
mod web;

// mimalloc keeps freed memory for reuse. glibc's malloc hands the megabyte-sized buffers of
// each training step (gradients, activations) back to the kernel and faults them in again,
// zeroed, on the next: a quarter of `medium_cnn`'s hidden-layer backward went to that.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

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
    /// Run the whole test suite (`cargo test --workspace --release`), first installing what
    /// it needs where missing: Chromium, Node.js, npm and Fashion-MNIST (apt-get), the
    /// wasm32 target (rustup) and the browser test's npm lock; then, unless given test
    /// arguments, build and run examples/downstream (the library used by another project).
    Test(test::TestArgs),
    /// Write the shipped MNIST as class folders of pictures (train/ and test/, one folder per
    /// digit), to try `cnn-train --data-dir` on pictures; with --bench, time decoding and the
    /// cache on all 70,000.
    Pictures(pictures::PicturesArgs),
}

fn main() -> ExitCode {
    cnn_cli::main_with(|cli: Xtask| {
        match cli.command {
            Command::Report(args) => report::main(args),
            Command::Bench(args) => bench::main(args),
            Command::Web(args) => web::main(args),
            Command::Test(args) => test::main(args),
            Command::Pictures(args) => pictures::main(args),
        }?;
        Ok(ExitCode::SUCCESS)
    })
}
