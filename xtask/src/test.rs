//! `cargo xtask test`: the whole test suite on any machine, after installing what it needs
//! (see [`crate::setup`]).

use std::process::Command;

use anyhow::{Context, Result, bail};

/// Options of `cargo xtask test`.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// Passed on to `cargo test --workspace --release` (a test name filter, `--nocapture`, ...).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CARGO_TEST_ARGS"
    )]
    rest: Vec<String>,
}

/// Installs Chromium, Node.js, npm, Fashion-MNIST, the wasm target and the browser test's
/// npm lock where they are missing, then runs `cargo test --workspace --release`, then
/// builds and runs `examples/downstream` (a project outside the workspace).
pub fn main(args: TestArgs) -> Result<()> {
    let root = crate::repo_root();
    crate::setup::ensure_system_tools()?;
    crate::setup::ensure_wasm_target(&root)?;
    crate::setup::ensure_npm_lock(&root.join("crates/cnn-web/e2e"))?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .current_dir(&root)
        .args(["test", "--workspace", "--release"])
        .args(&args.rest)
        .status()
        .context("cannot run cargo test")?;
    if !status.success() {
        bail!("the test suite failed (`cargo test --workspace --release`)");
    }
    if !args.rest.is_empty() {
        return Ok(()); // a filtered run: the tests asked for only
    }
    // After the suite, not inside it: a cargo run from a test would wait on the lock of the
    // very target folder the suite is using.
    crate::downstream::check(&root, &cargo)
        .context("examples/downstream (the library as another project uses it)")
}
