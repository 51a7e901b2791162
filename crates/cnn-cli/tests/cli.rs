//! End-to-end tests of the `cnn-train` binary: quick real runs, `--final-state`, bad input.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::Path;
use std::process::{Command, Output};

fn cnn_train(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cnn-train"))
        .args(args)
        .output()
        .expect("cnn-train runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Asserts a clean failure: non-zero exit, one `error:` line on stderr naming `needle`, no panic.
fn assert_clean_error(out: &Output, needle: &str) {
    let err = text(&out.stderr);
    assert!(
        !out.status.success(),
        "expected failure, got success; stderr: {err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "panic: {err}"
    );
    let first = err.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("error"),
        "first line should be the error: {err}"
    );
    assert!(
        first.contains(needle),
        "error should mention {needle:?}: {err}"
    );
}

fn last_line(out: &Output) -> String {
    text(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

fn accuracy_of(line: &str) -> f64 {
    // "test accuracy: 93.12% (9312/10000)"
    let pct = line
        .strip_prefix("test accuracy: ")
        .and_then(|r| r.split('%').next())
        .unwrap_or_else(|| panic!("not an accuracy line: {line}"));
    pct.parse().unwrap()
}

#[test]
fn quick_training_then_final_state_evaluates_the_same_model() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().to_str().unwrap();
    let train = cnn_train(&[
        "--model",
        "small_cnn",
        "--epochs",
        "2",
        "--train-limit",
        "3000",
        "--out",
        out_dir,
    ]);
    assert!(train.status.success(), "{}", text(&train.stderr));
    let line = last_line(&train);
    let trained = accuracy_of(&line);
    assert!(trained > 80.0, "{line}");
    for f in [
        "history.csv",
        "final_state.safetensors",
        "checkpoint.safetensors",
    ] {
        assert!(dir.path().join(f).is_file(), "{f} missing");
    }
    // The original project's evaluation line, verbatim but for the CPU.
    let eval = cnn_train(&[
        "--ngpus=0",
        "--model=small_cnn",
        "--final-state",
        "--out",
        out_dir,
    ]);
    assert!(eval.status.success(), "{}", text(&eval.stderr));
    assert_eq!(
        last_line(&eval),
        line,
        "evaluation of the saved state must match training's"
    );

    // --ops is honoured when evaluating (it was once ignored there): same model, same
    // predictions up to rounding.
    let reference = cnn_train(&["--final-state", "--ops", "reference", "--out", out_dir]);
    assert!(reference.status.success(), "{}", text(&reference.stderr));
    assert!(
        text(&reference.stdout).contains("(ops reference)"),
        "{}",
        text(&reference.stdout)
    );
    assert!((accuracy_of(&last_line(&reference)) - trained).abs() < 0.05);

    // A checkpoint of the other model is refused, naming the file and the right flag.
    let wrong = cnn_train(&["--model", "medium_cnn", "--final-state", "--out", out_dir]);
    assert_clean_error(&wrong, "final_state.safetensors");
    assert!(text(&wrong.stderr).contains("--model small_cnn"));
}

#[test]
fn the_original_training_line_parses_and_trains_stably() {
    let dir = tempfile::tempdir().unwrap();
    let out = cnn_train(&[
        "--epochs=2",
        "--ngpus=0",
        "--lr=0.5",
        "--l2=1",
        "--model=small_cnn",
        "--train-limit=3000",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        accuracy_of(&last_line(&out)) > 90.0,
        "{}",
        text(&out.stdout)
    );
    let stdout = text(&out.stdout);
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("epoch ")).count(),
        2,
        "{stdout}"
    );
}

#[test]
fn bad_flags_end_in_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let o = dir.path().to_str().unwrap();
    assert_clean_error(&cnn_train(&["--lr", "-1", "--out", o]), "--lr");
    assert_clean_error(&cnn_train(&["--lr", "NaN", "--out", o]), "--lr");
    assert_clean_error(&cnn_train(&["--epochs", "0", "--out", o]), "--epochs");
    assert_clean_error(
        &cnn_train(&["--batch-size", "0", "--out", o]),
        "--batch-size",
    );
    assert_clean_error(&cnn_train(&["--momentum", "1.5", "--out", o]), "--momentum");
    assert_clean_error(&cnn_train(&["--model", "big_cnn", "--out", o]), "big_cnn");
    assert_clean_error(&cnn_train(&["--dataset", "cifar", "--out", o]), "--dataset");
    assert_clean_error(&cnn_train(&["--epochs", "many", "--out", o]), "--epochs");
    assert_clean_error(
        &cnn_train(&["--train-limit", "0", "--out", o]),
        "--train-limit",
    );
    #[cfg(not(feature = "cuda"))]
    assert_clean_error(&cnn_train(&["--ngpus", "1", "--out", o]), "CUDA");
    assert_clean_error(&cnn_train(&["--ngpus", "2", "--out", o]), "--ngpus");
    assert!(
        !dir.path().join("final_state.safetensors").exists(),
        "nothing trained"
    );
}

fn copy_mnist(to: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/mnist");
    for name in [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ] {
        std::fs::copy(
            src.join(format!("{name}.gz")),
            to.join(format!("{name}.gz")),
        )
        .unwrap();
    }
}

#[test]
fn bad_data_files_end_in_one_clear_line_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let d = data.to_str().unwrap();
    let out = dir.path().join("out");
    let o = out.to_str().unwrap();

    assert_clean_error(
        &cnn_train(&["--data-dir", "/no/such/folder", "--out", o]),
        "/no/such/folder",
    );

    copy_mnist(&data);
    std::fs::remove_file(data.join("t10k-labels-idx1-ubyte.gz")).unwrap();
    assert_clean_error(
        &cnn_train(&["--data-dir", d, "--out", o]),
        "t10k-labels-idx1-ubyte",
    );

    // Corrupted gzip: the real file cut in half.
    copy_mnist(&data);
    let f = data.join("t10k-images-idx3-ubyte.gz");
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..bytes.len() / 2]).unwrap();
    assert_clean_error(
        &cnn_train(&["--data-dir", d, "--out", o]),
        "t10k-images-idx3-ubyte.gz",
    );

    // Wrong magic: a label file where the test images should be (raw files take precedence).
    std::fs::remove_file(&f).unwrap();
    std::fs::write(
        data.join("t10k-images-idx3-ubyte"),
        [0u8, 0, 8, 1, 0, 0, 0, 1, 3],
    )
    .unwrap();
    assert_clean_error(&cnn_train(&["--data-dir", d, "--out", o]), "magic");
    assert!(!out.exists(), "no run folder for a run that never started");
}

#[test]
fn bad_checkpoints_end_in_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let o = dir.path().to_str().unwrap();
    assert_clean_error(
        &cnn_train(&["--final-state", "--out", o]),
        "final_state.safetensors",
    );
    let garbage = dir.path().join("final_state.safetensors");
    std::fs::write(&garbage, b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage").unwrap();
    assert_clean_error(
        &cnn_train(&["--final-state", "--out", o]),
        "final_state.safetensors",
    );
}

#[test]
fn one_and_two_threads_train_the_same_weights_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let run = |threads: &str| {
        let out = dir.path().join(format!("t{threads}"));
        let o = Command::new(env!("CARGO_BIN_EXE_cnn-train"))
            .args([
                "--model",
                "medium_cnn",
                "--epochs",
                "1",
                "--train-limit",
                "1500",
                "--out",
            ])
            .arg(&out)
            .env("RAYON_NUM_THREADS", threads)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o.stderr));
        std::fs::read(out.join("final_state.safetensors")).unwrap()
    };
    assert!(run("1") == run("2"), "weights depend on the thread count");
}

#[test]
fn a_second_run_into_a_busy_folder_is_refused_and_the_first_is_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let out_s = out.to_str().unwrap();
    // The header is printed once the folder is locked.
    let mut first = started(Command::new(env!("CARGO_BIN_EXE_cnn-train")).args([
        "--epochs",
        "2",
        "--train-limit",
        "4000",
        "--out",
        out_s,
    ]));
    // Even told to overwrite, a second process must not write into a folder in use.
    let overwrite = [
        "--epochs",
        "1",
        "--train-limit",
        "500",
        "--overwrite",
        "--out",
        out_s,
    ];
    let second = cnn_train(&overwrite);
    assert_clean_error(&second, "another run is using this folder");
    let rest: Vec<String> = first.lines.by_ref().map(|l| l.unwrap()).collect();
    assert!(
        first.child.wait().unwrap().success(),
        "{:?} {rest:?}",
        first.seen
    );
    assert!(
        rest.iter().any(|l| l.starts_with("epoch   2/2")),
        "{rest:?}"
    );
    // The lock ends with the process: the folder is free again, for --resume or --overwrite.
    let third = cnn_train(&overwrite);
    assert!(third.status.success(), "{}", text(&third.stderr));
}

#[test]
fn a_closed_pipe_ends_training_quietly_and_a_full_stdout_is_one_line() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    // `cnn-train ... | head -n 3`: the reader goes after the first epoch's line.
    let mut child = Command::new(env!("CARGO_BIN_EXE_cnn-train"))
        .args(["--epochs", "4", "--train-limit", "3000", "--out"])
        .arg(&out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let first: Vec<String> = std::io::BufReader::new(stdout)
        .lines()
        .take(3)
        .map(|l| l.unwrap())
        .collect();
    assert!(first[2].starts_with("epoch   1/4"), "{first:?}");
    let end = child.wait_with_output().unwrap();
    assert_eq!(end.status.code(), Some(141), "{}", text(&end.stderr));
    assert!(text(&end.stderr).is_empty(), "{}", text(&end.stderr));
    // The last finished epoch is on disk and continues.
    let resumed = cnn_train(&[
        "--resume",
        "--train-limit",
        "3000",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(resumed.status.success(), "{}", text(&resumed.stderr));
    assert!(last_line(&resumed).starts_with("test accuracy: "));

    let full = Command::new(env!("CARGO_BIN_EXE_cnn-train"))
        .args(["--final-state", "--out", out.to_str().unwrap()])
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .output()
        .unwrap();
    assert_clean_error(&full, "cannot write to standard output");
    assert_eq!(text(&full.stderr).lines().count(), 1);
}

#[test]
fn sigterm_stops_like_ctrl_c_and_a_fifo_checkpoint_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let child = Command::new(env!("CARGO_BIN_EXE_cnn-train"))
        .args(["--epochs", "30", "--train-limit", "3000", "--out"])
        .arg(&out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !out.join("history.csv").exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let end = child.wait_with_output().unwrap();
    assert_eq!(end.status.code(), Some(130), "{}", text(&end.stderr));
    assert!(text(&end.stdout).contains("interrupted after epoch "));

    let fifo = dir.path().join("fifo.safetensors");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let read = cnn_train(&["--final-state", "--checkpoint", fifo.to_str().unwrap()]);
    assert_clean_error(&read, "is not a regular file");
}

#[test]
fn an_empty_or_relative_cache_setting_never_writes_into_the_current_folder() {
    let dir = tempfile::tempdir().unwrap();
    let (cwd, home) = (dir.path().join("cwd"), dir.path().join("home"));
    std::fs::create_dir_all(&cwd).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cnn-train"))
        .args(["--epochs", "1", "--train-limit", "200", "--out", "run"])
        .current_dir(&cwd)
        .env("CNN_DATA_CACHE", "")
        .env("XDG_CACHE_HOME", "relative/cache")
        .env("HOME", &home)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let entries: Vec<String> = std::fs::read_dir(&cwd)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries, ["run"]);
    assert!(home.join(".cache/cnn-mnist").is_dir());
}

#[test]
fn a_file_size_limit_is_one_line_not_a_silent_kill() {
    use std::os::unix::process::ExitStatusExt;
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("run");
    // 40 blocks of 512 bytes: too small for the data cache's copies and the checkpoint.
    let out = Command::new("sh")
        .arg("-c")
        .arg("ulimit -f 40 && exec \"$0\" --epochs 1 --train-limit 500 --out \"$1\"")
        .arg(env!("CARGO_BIN_EXE_cnn-train"))
        .arg(&out_dir)
        .env("CNN_DATA_CACHE", tmp.path().join("cache"))
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), None, "killed by a signal: {out:?}");
    assert_clean_error(&out, "File too large");
    assert_eq!(
        text(&out.stderr).lines().count(),
        1,
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn ctrl_c_before_the_first_epoch_says_nothing_was_saved_and_leaves_no_folder() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    // The recipe line comes once the data is loaded and the folder locked: a whole epoch of
    // 60,000 images is still ahead.
    let mut run = started(
        Command::new(env!("CARGO_BIN_EXE_cnn-train"))
            .args(["--epochs", "1", "--out"])
            .arg(&out),
    );
    assert!(out.join("run.lock").exists(), "{:?}", run.seen);
    let (status, seen) = run.interrupt();
    assert_eq!(status.code(), Some(130), "{seen:?}");
    let last = seen.last().unwrap();
    assert_eq!(
        last, "interrupted before the first epoch ended; nothing was saved",
        "{seen:?}"
    );
    assert!(!out.exists(), "the folder the run made is gone: {seen:?}");
}

#[cfg(unix)]
#[test]
fn a_data_folder_whose_path_is_not_utf8_is_refused_before_training() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir
        .path()
        .join(std::ffi::OsStr::from_bytes(b"caf\xe9-digits"));
    std::fs::create_dir_all(&data).unwrap();
    copy_mnist(&data);
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_cnn-train"))
        .args(["--epochs", "1", "--data-dir"])
        .arg(&data)
        .arg("--out")
        .arg(dir.path().join("run"))
        .output()
        .unwrap();
    assert_clean_error(&out, "--data-dir");
    assert!(text(&out.stderr).contains("not valid UTF-8"));
    assert!(text(&out.stdout).is_empty(), "nothing trained");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert!(!dir.path().join("run").exists());
}

#[test]
fn a_spec_file_edited_after_training_is_refused_on_resume_and_evaluation() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(
        dir.path(),
        "mine",
        "name = \"mine\"\n[[layer]]\nconv = 4\n[[layer]]\nmaxpool = 2\n",
    );
    let (spec_s, run) = (spec.to_str().unwrap(), dir.path().join("run"));
    let run_s = run.to_str().unwrap();
    let trained = train_spec(spec_s, "2", "500", run_s);
    assert!(trained.status.success(), "{}", text(&trained.stderr));
    // The same name, other layers.
    std::fs::write(
        &spec,
        "name = \"mine\"\n[[layer]]\nconv = 8\n[[layer]]\nmaxpool = 2\n",
    )
    .unwrap();
    let resumed = cnn_train(&[
        "--resume",
        "--model",
        spec_s,
        "--train-limit",
        "500",
        "--out",
        run_s,
    ]);
    assert_clean_error(&resumed, "other layers than --model gives");
    let evaluated = cnn_train(&["--final-state", "--model", spec_s, "--out", run_s]);
    assert_clean_error(&evaluated, "other layers than --model gives");
    // Without --model the run's own network is used.
    let evaluated = cnn_train(&["--final-state", "--out", run_s]);
    assert!(evaluated.status.success(), "{}", text(&evaluated.stderr));
}

#[test]
fn a_network_above_64_mib_of_checkpoint_resumes_and_evaluates() {
    // 784 x 16384 weights: a 104 MB checkpoint, once refused on reading by its own tool.
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(
        dir.path(),
        "wide",
        "name = \"wide\"\n[[layer]]\nlinear = 16384\n",
    );
    let (spec_s, run) = (spec.to_str().unwrap(), dir.path().join("run"));
    let run_s = run.to_str().unwrap();
    let trained = train_spec(spec_s, "1", "128", run_s);
    assert!(trained.status.success(), "{}", text(&trained.stderr));
    let size = std::fs::metadata(run.join("checkpoint.safetensors"))
        .unwrap()
        .len();
    assert!(size > 64 << 20, "{size} bytes");
    let resumed = cnn_train(&["--resume", "--train-limit", "128", "--out", run_s]);
    assert!(resumed.status.success(), "{}", text(&resumed.stderr));
    assert!(text(&resumed.stdout).contains("resuming"));
    let evaluated = cnn_train(&["--final-state", "--out", run_s]);
    assert!(evaluated.status.success(), "{}", text(&evaluated.stderr));
    // Padding a checkpoint beyond what its network implies is still refused.
    let padded = dir.path().join("padded.safetensors");
    let mut bytes = std::fs::read(run.join("final_state.safetensors")).unwrap();
    bytes.resize(bytes.len() + (60 << 20), 0);
    std::fs::write(&padded, bytes).unwrap();
    let refused = cnn_train(&["--final-state", "--checkpoint", padded.to_str().unwrap()]);
    assert_clean_error(&refused, "too large for a checkpoint");
}

#[test]
fn ctrl_c_during_the_evaluation_stops_there_and_keeps_nothing_of_that_epoch() {
    // Three wide convolutions over 28x28 maps: one training batch takes a moment, the
    // evaluation over 10,000 test images about 15 s on 2 cores.
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(
        dir.path(),
        "wide",
        "name = \"wide\"\n[[layer]]\nconv = 64\n[[layer]]\nconv = 128\n[[layer]]\nconv = 128\n",
    );
    let out = dir.path().join("run");
    let mut run = started(
        Command::new(env!("CARGO_BIN_EXE_cnn-train"))
            .args(["--epochs", "1", "--train-limit", "64", "--model"])
            .arg(&spec)
            .arg("--out")
            .arg(&out),
    );
    // Past the single training batch, inside the evaluation.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let (status, seen) = run.interrupt();
    assert_eq!(status.code(), Some(130), "{seen:?}");
    assert!(!seen.iter().any(|l| l.starts_with("epoch ")), "{seen:?}");
    assert_eq!(
        seen.last().unwrap(),
        "interrupted before the first epoch ended; nothing was saved"
    );
    assert!(!out.exists());
}

#[test]
fn a_run_leaves_other_files_alone_and_a_failed_start_leaves_no_lock_or_folder() {
    let dir = tempfile::tempdir().unwrap();
    let mine = dir.path().join("mine");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), "mine").unwrap();
    let mine_s = mine.to_str().unwrap();
    let out = cnn_train(&["--epochs", "1", "--train-limit", "200", "--out", mine_s]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("holds other files"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(mine.join("notes.txt")).unwrap(),
        "mine"
    );

    // Loading fails: the folder the run would have made is not left behind, and a folder
    // that was there keeps no lock.
    let missing = dir.path().join("no-data");
    let fresh = dir.path().join("fresh");
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    for folder in [&fresh, &empty] {
        let out = Command::new(env!("CARGO_BIN_EXE_cnn-train"))
            .args(["--epochs", "1", "--data-dir"])
            .arg(&missing)
            .arg("--out")
            .arg(folder)
            .output()
            .unwrap();
        assert_clean_error(&out, "does not exist");
        assert!(!folder.join("run.lock").exists(), "{}", folder.display());
    }
    assert!(!fresh.exists());
    assert!(empty.is_dir());
}

/// A `cnn-train` started and read up to its recipe line (data loaded, folder locked).
struct Started {
    child: std::process::Child,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
    seen: Vec<String>,
}

fn started(cmd: &mut Command) -> Started {
    use std::io::BufRead;
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push(line.clone());
        if line.starts_with("recipe:") {
            break;
        }
    }
    Started { child, lines, seen }
}

impl Started {
    /// Ctrl-C, then the exit status and every line printed.
    fn interrupt(&mut self) -> (std::process::ExitStatus, Vec<String>) {
        let killed = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let mut seen = std::mem::take(&mut self.seen);
        seen.extend(self.lines.by_ref().map(Result::unwrap));
        (self.child.wait().unwrap(), seen)
    }
}

/// Writes a spec file `<name>.toml` holding `text` into `dir`.
fn write_spec(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let spec = dir.join(format!("{name}.toml"));
    std::fs::write(&spec, text).unwrap();
    spec
}

/// Trains the spec file `spec` for `epochs` on the first `limit` images into `run`.
fn train_spec(spec: &str, epochs: &str, limit: &str, run: &str) -> Output {
    cnn_train(&[
        "--model",
        spec,
        "--epochs",
        epochs,
        "--train-limit",
        limit,
        "--out",
        run,
    ])
}

#[test]
fn tiny_and_huge_recipe_values_print_as_typed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let run = cnn_train(&[
        "--rotate",
        "1e-300",
        "--l2",
        "1e-9",
        "--epochs",
        "1",
        "--train-limit",
        "200",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let recipe = text(&run.stdout)
        .lines()
        .find(|l| l.starts_with("recipe:"))
        .unwrap()
        .to_string();
    assert!(
        recipe.contains(" rotate 1e-300 ") && recipe.contains(" l2 1e-9 "),
        "{recipe}"
    );
    assert!(recipe.len() < 200, "{recipe}");
}

#[test]
fn a_spec_carries_its_recipe_and_flags_win_over_it() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("own_recipe.toml");
    std::fs::write(
        &spec,
        "name = \"own_recipe\"\n\n[[layer]]\nconv = 8\n\n[[layer]]\nmaxpool = 2\n\n[train]\noptimizer = \"adam\"\nepochs = 1\naugment = \"none\"\nbatch_size = 32\n",
    )
    .unwrap();
    let out = dir.path().join("run");
    let (spec_s, out_s) = (spec.to_str().unwrap(), out.to_str().unwrap());
    let base = ["--model", spec_s, "--train-limit", "1000", "--out", out_s];
    // The `recipe:` line of a successful run with `args`.
    let recipe_line = |args: &[&str]| {
        let o = cnn_train(args);
        assert!(o.status.success(), "{}", text(&o.stderr));
        let s = text(&o.stdout);
        s.lines()
            .find(|l| l.starts_with("recipe: "))
            .unwrap_or_default()
            .to_string()
    };
    let line = recipe_line(&base);
    assert!(
        line.starts_with("recipe: epochs 1 batch 32 lr 0.01 optimizer adam"),
        "{line}"
    );
    assert!(!line.contains("flip"), "{line}");
    let mut flags = base.to_vec();
    flags.extend([
        "--overwrite",
        "--epochs",
        "2",
        "--optimizer",
        "sgd",
        "--flip",
    ]);
    let line = recipe_line(&flags);
    assert!(
        line.starts_with("recipe: epochs 2 batch 32 lr 0.5 momentum 0.9"),
        "{line}"
    );
    // Mirroring alone: no warp printed, and the run records it.
    assert!(line.contains(" shift 0 flip;"), "{line}");
    let recorded = std::fs::read(out.join("final_state.safetensors")).unwrap();
    assert!(String::from_utf8_lossy(&recorded).contains("flip"));
}
