//! PyTorch's side of the bench: finding a Python with torch, and running the project's
//! `xtask/bench/torch_peer.py` for its throughput and its time to an accuracy.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use std::path::Path;

use super::{Figures, Options, TimeTo};

/// The first of `--torch-python`, `$CNN_TORCH_PYTHON` and `python3` that can import torch.
pub fn python(o: &Options) -> Option<String> {
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

/// PyTorch's training and inference images per second of the spec file `spec`, timed as
/// ours are.
pub fn throughput(py: &str, spec: &Path, o: &Options, threads: usize) -> Result<Figures> {
    let script = peer_script();
    let out = Command::new(py)
        .arg(&script)
        .arg("throughput")
        .arg(spec)
        .args([
            &o.runs.to_string(),
            &o.batches.to_string(),
            &threads.to_string(),
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
        field(&text, name).with_context(|| format!("no {name} in torch_peer.py's output: {text}"))
    };
    Ok(Figures {
        train: field("train_img_per_s")?,
        infer: field("infer_img_per_s")?,
    })
}

/// The number after the word `name` in `text`.
fn field(text: &str, name: &str) -> Option<f64> {
    text.split_whitespace()
        .skip_while(|w| *w != name)
        .nth(1)
        .and_then(|v| v.parse().ok())
}

/// Seconds of training until the network of the spec file `spec` first reaches `target` % test accuracy with
/// `torch_peer.py`'s recipe with its one-cycle schedule (SGD peaking at lr 0.05, momentum
/// 0.9, weight decay 1e-4, batch 64, over `epochs` epochs; the test pass after each epoch is
/// not counted). Stops the run there. (Its constant-rate recipe never reached 99% in 15
/// epochs here: best 98.86%.)
pub fn time_to(
    py: &str,
    spec: &Path,
    target: f64,
    epochs: usize,
    threads: usize,
) -> Result<TimeTo> {
    let script = peer_script();
    let mut child = Command::new(py)
        .arg(&script)
        .arg("time-to")
        .arg(spec)
        .args([&epochs.to_string(), &threads.to_string()])
        .arg(crate::repo_root().join("assets/mnist"))
        .env("OMP_NUM_THREADS", threads.to_string())
        .env("MKL_NUM_THREADS", threads.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("running {}", script.display()))?;
    let stdout = child.stdout.take().context("torch_peer.py: no stdout")?;
    let mut result = TimeTo::default();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading torch_peer.py's output")?;
        let (Some(secs), Some(acc)) = (field(&line, "train_s"), field(&line, "test_acc")) else {
            continue;
        };
        result.record(secs, acc);
        if acc >= target {
            break;
        }
    }
    // Stopped early on purpose, or finished: either way the run's work is done.
    let _ = child.kill();
    let _ = child.wait();
    Ok(result)
}

/// The project's PyTorch peer.
fn peer_script() -> std::path::PathBuf {
    crate::repo_root().join("xtask/bench/torch_peer.py")
}
