//! What the page and the test suite need beyond Rust, checked and installed where it can be:
//! the wasm32 target (through rustup), Chromium, Node.js, npm and Fashion-MNIST (through
//! Debian's apt-get), and the browser test's npm lock.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// The target the page's engine is compiled for.
pub const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// Makes sure the toolchain of `root` (its rust-toolchain.toml) can build for
/// [`WASM_TARGET`]: rustup adds the target once when it is missing. `rust-toolchain.toml`'s
/// `targets` is applied only when rustup installs the toolchain, not to one already there.
#[allow(clippy::print_stdout)]
pub fn ensure_wasm_target(root: &Path) -> Result<()> {
    if wasm_target_installed(root) {
        return Ok(());
    }
    if !runs(Command::new("rustup").arg("--version")) {
        bail!(
            "the page needs the Rust target {WASM_TARGET}, which this toolchain lacks, and \
             there is no rustup to add it: install the target for your Rust toolchain"
        );
    }
    println!("setup: adding the Rust target {WASM_TARGET} with rustup (once; the page's engine)");
    let status = Command::new("rustup")
        .current_dir(root)
        .args(["target", "add", WASM_TARGET])
        .status()
        .context("cannot run rustup")?;
    if !status.success() || !wasm_target_installed(root) {
        bail!("`rustup target add {WASM_TARGET}` failed; run it by hand and try again");
    }
    Ok(())
}

/// Whether the standard library for [`WASM_TARGET`] is in the toolchain's sysroot.
fn wasm_target_installed(root: &Path) -> bool {
    let out = Command::new("rustc")
        .current_dir(root)
        .args(["--print", "target-libdir", "--target", WASM_TARGET])
        .stderr(Stdio::null())
        .output();
    let Ok(out) = out else { return false };
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    out.status.success()
        && std::fs::read_dir(&dir).is_ok_and(|mut entries| {
            entries.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("libcore")))
        })
}

/// A program or data set the test suite needs, and the Debian package that provides it.
struct Need {
    what: &'static str,
    package: &'static str,
    present: fn() -> bool,
}

/// Where the browser test looks for Chromium: `CHROMIUM`, or Debian's path.
pub fn chromium_path() -> PathBuf {
    std::env::var_os("CHROMIUM").map_or_else(|| "/usr/bin/chromium".into(), PathBuf::from)
}

const NEEDS: [Need; 4] = [
    Need {
        what: "Chromium (the page's browser test)",
        package: "chromium",
        present: || chromium_path().is_file(),
    },
    Need {
        what: "Node.js (the page's browser test)",
        package: "nodejs",
        present: || runs(Command::new("node").arg("--version")),
    },
    Need {
        what: "npm (installs the browser test's playwright-core)",
        package: "npm",
        present: || runs(Command::new("npm").arg("--version")),
    },
    Need {
        what: "Fashion-MNIST (the --dataset fashion tests)",
        package: "dataset-fashion-mnist",
        present: || Path::new(cnn_data::FASHION_SYSTEM_DIR).is_dir(),
    },
];

/// Installs the missing [`NEEDS`] with apt-get where it can; fails with one line per thing
/// still missing.
#[allow(clippy::print_stdout, clippy::print_stderr)]
pub fn ensure_system_tools() -> Result<()> {
    let missing: Vec<&Need> = NEEDS.iter().filter(|n| !(n.present)()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let packages: Vec<&str> = missing.iter().map(|n| n.package).collect();
    if runs(Command::new("apt-get").arg("--version")) {
        println!("setup: installing {} with apt-get", packages.join(", "));
        apt_install(&packages);
    }
    let still: Vec<&&Need> = missing.iter().filter(|n| !(n.present)()).collect();
    for need in &still {
        eprintln!(
            "error: missing {}: install the Debian package `{}` (or your system's equivalent)",
            need.what, need.package
        );
    }
    if !still.is_empty() {
        bail!("{} required tool(s) missing, see above", still.len());
    }
    Ok(())
}

/// `apt-get install`, after an `apt-get update` when the package lists are stale; as root,
/// or through `sudo -n` when that works without a password.
fn apt_install(packages: &[&str]) {
    let apt = |args: &[&str]| {
        let mut cmd = if is_root() {
            Command::new("apt-get")
        } else {
            let mut c = Command::new("sudo");
            c.args(["-n", "apt-get"]);
            c
        };
        cmd.args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd.status().is_ok_and(|s| s.success())
    };
    let mut install = vec!["install", "-y", "-q"];
    install.extend_from_slice(packages);
    if !apt(&install) {
        let _ = apt(&["update", "-q"]) && apt(&install);
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Installs the browser test's playwright-core from its committed lock file, when it is not
/// installed yet or the lock file changed since.
#[allow(clippy::print_stdout)]
pub fn ensure_npm_lock(e2e: &Path) -> Result<()> {
    let lock = e2e.join("package-lock.json");
    let installed = e2e.join("node_modules/.package-lock.json");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let fresh = e2e.join("node_modules/playwright-core").is_dir()
        && matches!((modified(&installed), modified(&lock)), (Some(i), Some(l)) if i >= l);
    if fresh {
        return Ok(());
    }
    println!(
        "setup: installing the browser test's npm lock (npm ci in {})",
        e2e.display()
    );
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--prefix"])
        .arg(e2e)
        .stdout(Stdio::null())
        .status()
        .context("cannot run npm")?;
    if !status.success() {
        bail!("`npm ci --prefix {}` failed", e2e.display());
    }
    Ok(())
}

/// Whether a command starts and exits with success.
fn runs(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
