//! Crash safety: a run killed with SIGKILL at a random moment (also during a checkpoint
//! write) and resumed ends bit-for-bit where the uninterrupted run ends.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

const ARGS: [&str; 8] = [
    "--model",
    "medium_cnn",
    "--epochs",
    "4",
    "--train-limit",
    "1500",
    "--seed",
    "11",
];

fn train(out: &Path, resume: bool) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cnn-train"));
    c.args(ARGS).arg("--out").arg(out);
    if resume {
        c.arg("--resume");
    }
    c
}

/// history.csv without its timing column.
fn history_without_times(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("history.csv"))
        .unwrap()
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string())
        .collect()
}

#[test]
fn killed_and_resumed_runs_equal_the_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (whole, broken) = (tmp.path().join("whole"), tmp.path().join("broken"));
    let start = Instant::now();
    assert!(train(&whole, false).output().unwrap().status.success());
    let full_time = start.elapsed();

    // A seed for the kill times, printed so a failure can be replayed.
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let mut state = seed | 1;
    let mut kills = 0;
    loop {
        let resume = broken.join("checkpoint.safetensors").exists();
        let mut child = train(&broken, resume)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let wait = Duration::from_millis(200 + state % (full_time.as_millis() as u64 / 2).max(1));
        std::thread::sleep(wait);
        match child.try_wait().unwrap() {
            Some(status) => {
                assert!(status.success(), "seed {seed}: run failed");
                break;
            }
            None => {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
            }
        }
        assert!(kills < 50, "seed {seed}: never finished");
    }
    // Finish whatever epochs are left after the last kill.
    let out = train(&broken, broken.join("checkpoint.safetensors").exists())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "seed {seed}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(kills > 0, "seed {seed}: the run was never interrupted");
    assert_eq!(
        std::fs::read(whole.join("final_state.safetensors")).unwrap(),
        std::fs::read(broken.join("final_state.safetensors")).unwrap(),
        "seed {seed}: weights differ after {kills} kills"
    );
    assert_eq!(
        history_without_times(&whole),
        history_without_times(&broken),
        "seed {seed}"
    );
}

#[test]
fn resume_without_a_checkpoint_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = train(tmp.path(), true).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.starts_with("error:")
            && err.contains("checkpoint.safetensors"),
        "{err}"
    );
}
