//! `cargo xtask`: project automation (figures, benchmarks), run from the repository root.

use std::process::ExitCode;

#[allow(clippy::print_stderr)]
fn main() -> ExitCode {
    let task = std::env::args().nth(1);
    eprintln!("usage: cargo xtask <report|bench>; got {task:?}");
    ExitCode::from(2)
}
