//! Crash safety: a run killed with SIGKILL at a random moment, or during a checkpoint write,
//! or stopped with Ctrl-C, and resumed ends bit-for-bit where the uninterrupted run ends; a
//! write that fails (full disk) keeps the previous checkpoint.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

/// A run that draws from its generator at every batch: shuffling, dropout (medium_cnn),
/// the affine augmentation; and smooths its labels.
const ARGS: [&str; 16] = [
    "--model",
    "medium_cnn",
    "--epochs",
    "4",
    "--train-limit",
    "1500",
    "--seed",
    "11",
    "--rotate",
    "8",
    "--scale",
    "0.08",
    "--translate",
    "1.5",
    "--label-smoothing",
    "0.05",
];

/// A batch-normalised all-conv net with strides and a global pool, trained by Adam: its
/// running statistics and both moments must come back from the checkpoint.
const BN_ADAM_ARGS: [&str; 12] = [
    "--model",
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../assets/models/allconv_bn.toml"
    ),
    "--optimizer",
    "adam",
    "--epochs",
    "3",
    "--train-limit",
    "1000",
    "--seed",
    "5",
    "--rotate",
    "8",
];

mod common;

fn train_with(args: &[&str], out: &Path, resume: bool) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cnn-train"));
    c.args(args).arg("--out").arg(out);
    if resume {
        c.arg("--resume");
    }
    c
}

fn train(out: &Path, resume: bool) -> Command {
    train_with(&ARGS, out, resume)
}

/// history.csv without its timing column.
fn history_without_times(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("history.csv"))
        .unwrap()
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string())
        .collect()
}

/// The uninterrupted run of `args` in `folder`: its folder and duration.
fn uninterrupted(args: &[&str], folder: &str) -> (PathBuf, Duration) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(folder);
    let _ = std::fs::remove_dir_all(&dir);
    let start = Instant::now();
    let out = train_with(args, &dir, false).output().unwrap();
    common::assert_success(&out, "cnn-train");
    (dir, start.elapsed())
}

/// The uninterrupted run, done once for all tests of this file: its folder and duration.
fn whole_run() -> &'static (PathBuf, Duration) {
    static WHOLE: OnceLock<(PathBuf, Duration)> = OnceLock::new();
    WHOLE.get_or_init(|| uninterrupted(&ARGS, "resume-whole-run"))
}

/// Checks that `dir` finished with the uninterrupted run's weights and history, and that
/// no temporary file of an interrupted write is left behind.
fn assert_same_as_whole_run(dir: &Path, what: &str) {
    assert_same_as(&whole_run().0, dir, what);
}

/// [`assert_same_as_whole_run`] against the run in `whole`.
fn assert_same_as(whole: &Path, dir: &Path, what: &str) {
    assert_eq!(
        std::fs::read(whole.join("final_state.safetensors")).unwrap(),
        std::fs::read(dir.join("final_state.safetensors")).unwrap(),
        "{what}: weights differ"
    );
    assert_eq!(
        history_without_times(whole),
        history_without_times(dir),
        "{what}"
    );
    let temps: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(temps.is_empty(), "{what}: left behind {temps:?}");
}

/// Temporary files of an atomic write in progress in `dir`.
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().contains(".tmp-"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn killed_and_resumed_runs_equal_the_uninterrupted_run() {
    kill_and_resume_until_done(&ARGS, whole_run());
}

#[test]
fn a_batch_norm_net_trained_by_adam_resumes_bit_for_bit() {
    let whole = uninterrupted(&BN_ADAM_ARGS, "resume-bn-adam-run");
    kill_and_resume_until_done(&BN_ADAM_ARGS, &whole);
}

/// Runs `args` killed with SIGKILL at random moments and resumed until it finishes, then
/// checks it ended exactly as the uninterrupted run `whole` (folder, duration).
fn kill_and_resume_until_done(args: &[&str], whole: &(PathBuf, Duration)) {
    let tmp = tempfile::tempdir().unwrap();
    let broken = tmp.path().join("broken");
    let full_time = whole.1;

    // A seed for the kill times, printed so a failure can be replayed.
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let mut state = seed | 1;
    let mut kills = 0u64;
    loop {
        let resume = broken.join("checkpoint.safetensors").exists();
        let mut child = train_with(args, &broken, resume)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        // Random within half a run, plus a tenth of a run per kill so far: every restart
        // spends its first moments loading data, and with fast epochs a run killed only
        // inside that window could be restarted 50 times without finishing an epoch.
        let full_ms = full_time.as_millis() as u64;
        let wait = Duration::from_millis(200 + state % (full_ms / 2).max(1) + kills * full_ms / 10);
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
    let resume = broken.join("checkpoint.safetensors").exists();
    let out = train_with(args, &broken, resume).output().unwrap();
    common::assert_success(&out, &format!("seed {seed}"));
    assert!(kills > 0, "seed {seed}: the run was never interrupted");
    assert_same_as(&whole.0, &broken, &format!("seed {seed}, {kills} kills"));
}

#[test]
fn a_run_killed_while_writing_a_checkpoint_resumes_from_the_previous_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    // Kill as soon as a temporary file appears; retry until a kill lands before the rename
    // (the temporary file is still there afterwards), at least twice.
    let mut caught = 0;
    for attempt in 0..40 {
        if caught == 2 {
            break;
        }
        let resume = dir.join("checkpoint.safetensors").exists();
        // Left by an earlier kill; the new process removes them, and they are not its writes.
        let stale = temp_files(&dir);
        let fresh = || -> Vec<PathBuf> {
            temp_files(&dir)
                .into_iter()
                .filter(|p| !stale.contains(p))
                .collect()
        };
        let mut child = train(&dir, resume).stdout(Stdio::null()).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut seen = false;
        while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
            if !fresh().is_empty() {
                seen = true;
                break;
            }
            std::thread::yield_now();
        }
        if !seen {
            // Every write slipped between two polls and the run finished: start afresh.
            assert!(child.wait().unwrap().success(), "attempt {attempt}");
            if caught > 0 {
                break;
            }
            std::fs::remove_dir_all(&dir).unwrap();
            continue;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if !fresh()
            .iter()
            .any(|p| p.to_string_lossy().contains(".checkpoint.safetensors.tmp-"))
        {
            continue; // the rename won the race, or another file was being written
        }
        caught += 1;
        // The file being replaced is whole: absent before the first epoch's write, else a
        // checkpoint that decodes completely. (Which epoch it holds depends on how long this
        // thread took to notice the write; the final comparison checks the rest.)
        let path = dir.join("checkpoint.safetensors");
        if path.exists() {
            let read = cnn_training::checkpoint::read(&path, &candle_core::Device::Cpu);
            assert!(read.is_ok(), "attempt {attempt}: {read:?}");
        }
    }
    assert!(caught > 0, "never killed inside a checkpoint write");
    let out = train(&dir, dir.join("checkpoint.safetensors").exists())
        .output()
        .unwrap();
    common::assert_success(&out, "cnn-train");
    assert_same_as_whole_run(&dir, &format!("{caught} kills inside a write"));
}

#[test]
fn ctrl_c_stops_cleanly_prints_the_resume_command_and_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let child = train(&dir, false)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt during the second epoch, once the first one is on disk.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !dir.join("history.csv").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{stdout}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    let command = stdout
        .lines()
        .find(|l| l.contains("--resume"))
        .unwrap_or_else(|| panic!("no resume command in: {stdout}"));
    assert!(command.contains(&*dir.to_string_lossy()), "{command}");
    // Usually epoch 1; a busy machine may let another epoch finish before the signal lands.
    assert!(stdout.contains("interrupted after epoch "), "{stdout}");
    assert!(temp_files(&dir).is_empty());
    // Run the printed command itself (its first word is the binary).
    let words: Vec<&str> = command.split_whitespace().collect();
    assert!(
        words.iter().all(|w| !w.starts_with('\'')),
        "unexpected quoting: {command}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_cnn-train"))
        .args(&words[1..])
        .output()
        .unwrap();
    common::assert_success(&out, "cnn-train");
    assert_same_as_whole_run(&dir, "after Ctrl-C");
}

#[test]
fn a_failing_write_keeps_the_previous_checkpoint_and_says_why() {
    // A full disk, simulated without privileges: the file-size limit (RLIMIT_FSIZE) makes
    // any write past 32 KiB fail with EFBIG, as ENOSPC would; SIGXFSZ is ignored so the
    // write returns the error instead of killing the process.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let cache = tmp.path().join("cache");
    let args = ["--model", "small_cnn", "--train-limit", "600", "--epochs"];
    let mut first = args.to_vec();
    first.push("1");
    common::train_ok(&first, &dir, &cache);
    let files = [
        "checkpoint.safetensors",
        "final_state.safetensors",
        "history.csv",
    ];
    let before: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect();

    let out = Command::new("sh")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 64; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_cnn-train"))
        .args(args)
        .arg("2")
        .arg("--overwrite")
        .arg("--out")
        .arg(&dir)
        .env("CNN_DATA_CACHE", &cache)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: cannot write ")
            && stderr.contains("checkpoint.safetensors")
            && stderr.contains("File too large"),
        "{stderr}"
    );
    for (f, old) in files.iter().zip(&before) {
        assert_eq!(&std::fs::read(dir.join(f)).unwrap(), old, "{f} changed");
    }
    assert!(temp_files(&dir).is_empty(), "{:?}", temp_files(&dir));
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
