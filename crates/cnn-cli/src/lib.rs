//! Glue shared by the command-line programs: device, dataset and model choice from flags,
//! and library errors turned into advice that names flags.
//!
//! Only the binaries print; this module returns errors.
#![deny(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use candle_core::Device;
use cnn_data::{DataSource, DatasetKind};
use cnn_models::{Arch, NetSpec};
use cnn_training::TrainConfig;

pub mod pictures;

/// The repository's `assets/` folder (shipped MNIST, preset spec files), found from where
/// this crate was built.
pub fn assets_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets")
}

/// The trained weights of a preset (`final_state.safetensors` of seed 0's run, as shipped
/// in `assets/models/`), compiled into the programs so that a copied or installed
/// `cnn-predict` works from any folder. 1.1 MB for both.
pub fn shipped_weights(arch: Arch) -> &'static [u8] {
    match arch {
        Arch::SmallCnn => include_bytes!("../../../assets/models/small_cnn.safetensors"),
        Arch::MediumCnn => include_bytes!("../../../assets/models/medium_cnn.safetensors"),
    }
}

/// The trained weights shipped beside a spec file, as `assets/models/` ships `mnist_best`:
/// `X.safetensors` next to `--model X.toml`, when it exists. `None` for a preset name.
pub fn weights_beside(model_arg: &str) -> Option<PathBuf> {
    if Arch::from_name(model_arg).is_some() {
        return None;
    }
    let weights = Path::new(model_arg).with_extension("safetensors");
    (weights != Path::new(model_arg) && weights.is_file()).then_some(weights)
}

/// Largest spec file read (a spec is a few hundred bytes).
const MAX_SPEC_BYTES: u64 = 1 << 20;

/// The network for `--model`: a preset name (`small_cnn`, `medium_cnn`) or a TOML spec file.
pub fn model_spec(arg: &str) -> Result<NetSpec> {
    model_spec_with_recipe(arg).map(|(spec, _)| spec)
}

/// [`model_spec`], and the spec file's `[train]` table (its own recipe), if it has one.
pub fn model_spec_with_recipe(arg: &str) -> Result<(NetSpec, Option<cnn_training::RecipeChanges>)> {
    if let Some(arch) = Arch::from_name(arg) {
        return Ok((arch.spec(), None));
    }
    let path = Path::new(arg);
    let looks_like_file = path.extension().is_some() || arg.contains(std::path::MAIN_SEPARATOR);
    if !looks_like_file && !path.exists() {
        return Err(cnn_models::Error::UnknownArch(arg.to_string())).context("--model");
    }
    let meta = std::fs::metadata(path)
        .with_context(|| format!("--model {arg}: cannot read the spec file"))?;
    if !meta.is_file() {
        bail!("--model {arg}: is not a file");
    }
    if meta.len() > MAX_SPEC_BYTES {
        bail!(
            "--model {arg}: {} bytes is too large for a spec file",
            meta.len()
        );
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--model {arg}: cannot read the spec file"))?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    let spec = NetSpec::from_toml(&text, &stem).with_context(|| format!("--model {arg}"))?;
    let recipe = cnn_training::RecipeChanges::from_spec_toml(&text)
        .with_context(|| format!("--model {arg}"))?;
    if let Some(preset) = Arch::from_name(&spec.name)
        && spec.layers != preset.spec().layers
    {
        // Runs are found and matched by name: a file calling itself small_cnn would pass for
        // the preset in `runs/small_cnn`, its shipped weights and its figures.
        bail!(
            "--model {arg}: is named `{}`, a preset's name, but its layers differ from the preset's; give it a `name` of its own",
            spec.name
        );
    }
    Ok((spec, recipe))
}

/// Refuses a run whose recorded network has other layers than the spec `--model` gave
/// (the file was edited since, say): names alone would match.
pub fn check_same_layers(given: Option<&NetSpec>, recorded: &NetSpec, path: &Path) -> Result<()> {
    match given {
        Some(spec) if spec.layers != recorded.layers => bail!(
            "{} holds a {} run with other layers than --model gives (was the spec file changed?); pass --model as the run was trained, or leave it out",
            path.display(),
            recorded.name
        ),
        _ => Ok(()),
    }
}

/// The data source a run recorded: its data folder, else its dataset's default folder.
pub fn recorded_data(cfg: &TrainConfig) -> DataSource {
    let source = select_data(Some(cfg.dataset), cfg.data_dir.clone());
    match &cfg.pictures {
        Some(opts) => source.with_pictures(opts.clone()),
        None => source,
    }
}

/// A library error with the flag to blame, and advice a user can act on.
pub fn explain(e: cnn_training::Error) -> anyhow::Error {
    use cnn_training::Error as E;
    match e {
        E::InvalidConfig {
            field,
            value,
            reason,
        } => anyhow::anyhow!("invalid --{} {value}: {reason}", field.replace('_', "-")),
        E::WrongModel {
            path,
            found,
            expected,
        } => anyhow::anyhow!(
            "{} holds a {found} model, not {expected} (pass --model {found}, or leave --model out)",
            path.display()
        ),
        E::NewerVersion { .. } | E::TrainSizeChanged { .. } => {
            let advice = match &e {
                E::NewerVersion { .. } => "; upgrade cnn-train",
                _ => " (use the same --train-limit and data)",
            };
            anyhow::anyhow!("{e}{advice}")
        }
        E::ActivationMemory {
            batch,
            bytes,
            per_image,
        } => anyhow::anyhow!(
            "a training batch of {batch} images needs about {:.1} GB for its activations ({:.1} MB an image), more than the {} GB allowed: lower --batch-size, or use narrower layers or smaller images",
            bytes as f64 / 1e9,
            per_image as f64 / 1e6,
            cnn_training::ACTIVATION_BUDGET >> 30
        ),
        E::RunFolderIsFile { path } => {
            anyhow::anyhow!("--out {}: is a file, not a folder", path.display())
        }
        E::RunExists { path, file } => anyhow::anyhow!(
            "--out {}: already holds {file}, which a run writes; continue that run with --resume, or pass --overwrite to replace its files",
            path.display()
        ),
        E::RunBusy { path } => anyhow::anyhow!(
            "--out {}: another run is using this folder (it holds {}); wait for it to end or pick another --out",
            path.display(),
            cnn_training::LOCK_FILE
        ),
        other => other.into(),
    }
}

/// A spec that does not fit the data, blamed on `--model <arg>`, with advice.
pub fn spec_error(arg: &str, e: cnn_models::Error) -> anyhow::Error {
    use cnn_models::Error as E;
    match e {
        E::InputMismatch { spec, data, .. } => anyhow::anyhow!(
            "--model {arg}: takes input {spec:?} but the data's images are {data:?} (change `input` in the spec, or pass another --data-dir)"
        ),
        E::ClassesMismatch { spec, data, .. } => anyhow::anyhow!(
            "--model {arg}: has classes = {spec} but the data's labels make {data} classes (change `classes` in the spec, or pass another --data-dir)"
        ),
        other => anyhow::Error::new(other).context(format!("--model {arg}")),
    }
}

/// Where to run, as `--device` takes it: `cpu`, `cuda` (or `gpu`: the first GPU) or `cuda:N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceArg {
    /// The CPU.
    Cpu,
    /// CUDA GPU number N.
    Cuda(usize),
}

impl std::str::FromStr for DeviceArg {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "cpu" => Ok(DeviceArg::Cpu),
            "cuda" | "gpu" => Ok(DeviceArg::Cuda(0)),
            _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(i)) => Ok(DeviceArg::Cuda(i)),
                _ => Err("expected cpu, cuda or cuda:N".into()),
            },
        }
    }
}

impl std::fmt::Display for DeviceArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceArg::Cpu => f.write_str("cpu"),
            DeviceArg::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

/// Picks the device from `--ngpus` (0 = CPU, 1 = first CUDA GPU) and `--device`. Asking for
/// a GPU in a build without the `cuda` feature is an error, never a silent fallback.
pub fn select_device(ngpus: Option<usize>, device: Option<DeviceArg>) -> Result<Device> {
    let device = match (ngpus, device) {
        (Some(n), Some(d)) => {
            if (d != DeviceArg::Cpu) != (n > 0) {
                bail!("--ngpus {n} contradicts --device {d}; give one of them");
            }
            d
        }
        (Some(0), None) | (None, None) => DeviceArg::Cpu,
        (Some(1), None) => DeviceArg::Cuda(0),
        (Some(n), None) => {
            bail!("--ngpus {n}: training on several GPUs is not supported; use --ngpus 1")
        }
        (None, Some(d)) => d,
    };
    match device {
        DeviceArg::Cpu => Ok(Device::Cpu),
        DeviceArg::Cuda(i) => cuda_device(i),
    }
}

#[cfg(feature = "cuda")]
fn cuda_device(i: usize) -> Result<Device> {
    Device::new_cuda(i).with_context(|| format!("cannot open CUDA device {i}"))
}

#[cfg(not(feature = "cuda"))]
fn cuda_device(i: usize) -> Result<Device> {
    let _ = i;
    Err(anyhow::anyhow!(
        "this build has no CUDA support: rebuild with `--features cuda`, or train on the CPU with --ngpus 0"
    ))
    .context("GPU requested")
}

/// `--dataset`'s value: `mnist` or `fashion` (`fashion-mnist`); a folder of one's own is
/// given with `--data-dir` alone. A clap value parser.
pub fn parse_dataset(s: &str) -> std::result::Result<DatasetKind, String> {
    match DatasetKind::from_name(s) {
        Some(DatasetKind::Own) | None => Err("expected mnist or fashion".into()),
        Some(kind) => Ok(kind),
    }
}

/// The data source for `--dataset` and `--data-dir`: a folder alone is data of one's own,
/// a dataset alone is read from where it ships (MNIST in `assets/`, Fashion-MNIST from
/// Debian's package), both together are that dataset in that folder.
pub fn select_data(dataset: Option<DatasetKind>, data_dir: Option<PathBuf>) -> DataSource {
    match (dataset, data_dir) {
        (Some(kind), Some(dir)) => DataSource::new(dir, kind),
        (None, Some(dir)) => DataSource::new(dir, DatasetKind::Own),
        (Some(DatasetKind::Fashion), None) => DataSource::fashion_system(),
        (_, None) => DataSource::new(assets_dir().join("mnist"), DatasetKind::Mnist),
    }
}

/// Loads the dataset, with the flag to blame in the error context.
pub fn load_data(source: &DataSource) -> Result<cnn_data::Dataset> {
    pictures::load_reported(source).map(|(data, _)| data)
}

/// The reader of standard output has gone (a closed pipe, as in `cnn-train | head -n 3`):
/// the program ends quietly, as command-line tools do, with the exit code a shell reports
/// for a SIGPIPE death.
#[derive(Debug, thiserror::Error)]
#[error("standard output was closed")]
pub struct PipeClosed;

/// Exit code for [`PipeClosed`]: 128 + SIGPIPE (13).
pub const PIPE_CLOSED: u8 = 141;

/// Writes one line to standard output. A closed pipe is [`PipeClosed`]; any other failure
/// (a full disk behind `>`, `/dev/full`) is an error naming standard output. `println!`
/// would panic on either.
pub fn say(args: std::fmt::Arguments<'_>) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let written = out
        .write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    match written {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(PipeClosed.into()),
        Err(e) => Err(anyhow::Error::new(e).context("cannot write to standard output")),
    }
}

/// [`say()`] with `format!` arguments.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::say(format_args!($($arg)*))
    };
}

/// Writes one line to standard error, ignoring failure: there is nowhere left to report it.
pub fn warn(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| err.write_all(b"\n"));
}

/// The `main` of every binary: parses flags (clap prints help or a usage error, exit 2), runs
/// `run`, and prints a failure as one `error: ...` line (exit 1). `run` returns the exit code
/// of an outcome it has already reported (a partial failure, an interruption).
pub fn main_with<C: clap::Parser>(run: impl FnOnce(C) -> Result<ExitCode>) -> ExitCode {
    ignore_file_size_signal();
    let cli = match C::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match check_thread_count().and_then(|()| run(cli)) {
        Ok(code) => code,
        Err(e) if e.downcast_ref::<PipeClosed>().is_some() => ExitCode::from(PIPE_CLOSED),
        Err(e) => {
            // One line, whatever the paths in it hold.
            warn(format_args!("error: {}", one_line_error(&e)));
            ExitCode::FAILURE
        }
    }
}

/// Threads per logical core above which `RAYON_NUM_THREADS` is refused: past a few per
/// core, candle's pool only adds switching (200 threads on 2 cores made an epoch 56x
/// slower) and, at thousands, memory for stacks it cannot get.
const MAX_THREADS_PER_CORE: usize = 4;

/// Refuses a `RAYON_NUM_THREADS` (the thread count candle reads) that is not a number, or
/// is more than [`MAX_THREADS_PER_CORE`] threads per logical core; 0 means every core.
fn check_thread_count() -> Result<()> {
    let Some(value) = std::env::var_os("RAYON_NUM_THREADS") else {
        return Ok(());
    };
    let text = value.to_string_lossy();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let most = MAX_THREADS_PER_CORE * cores;
    match text.trim().parse::<usize>() {
        Ok(n) if n <= most => Ok(()),
        Ok(n) => bail!(
            "RAYON_NUM_THREADS={n}: more than {MAX_THREADS_PER_CORE} threads per logical core only slows training down; set fewer, or unset it to use every core"
        ),
        Err(_) => bail!(
            "RAYON_NUM_THREADS={text}: expected a whole number of threads (0 or unset: every core)"
        ),
    }
}

/// An error and its causes on one line, as anyhow's `{:#}` writes them, less the causes
/// whose text the previous part already ends with (the `image` crate repeats its source in
/// its own message) and with line breaks (a path may hold one) made spaces.
pub fn one_line_error(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if parts.last().is_some_and(|prev| prev.ends_with(&text)) {
            continue;
        }
        parts.push(text);
    }
    parts.join(": ").replace('\n', " ")
}

/// A file-size limit (`ulimit -f`) kills with SIGXFSZ by default, silently; ignored, the
/// write fails with "File too large" instead, which our error path reports in one line
/// naming the file (atomic writes leave the previous file intact).
fn ignore_file_size_signal() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to SIG_IGN installs no handler code; it is
    // done once, at start-up, before any thread that could race on it exists.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// The command line that continues this process's run: its own arguments with `--resume`,
/// quoted for a POSIX shell. Recipe flags may stay; a resumed run uses its recorded recipe.
pub fn resume_command() -> String {
    resume_command_from(std::env::args_os())
}

fn resume_command_from(args: impl IntoIterator<Item = std::ffi::OsString>) -> String {
    let mut args: Vec<std::ffi::OsString> = args.into_iter().collect();
    if !args.iter().any(|a| a == "--resume") {
        args.push("--resume".into());
    }
    args.iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `arg` quoted for a POSIX shell, byte for byte: bytes that are not UTF-8 (a path, say)
/// are spelled with `printf`, which every POSIX shell has.
fn shell_quote(arg: &std::ffi::OsStr) -> String {
    #[cfg(unix)]
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(arg).to_vec();
    #[cfg(not(unix))]
    let bytes = arg.to_string_lossy().into_owned().into_bytes();
    let quote = |text: &str| {
        let plain = !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_=./,:+@%".contains(c));
        if plain {
            text.to_string()
        } else {
            format!("'{}'", text.replace('\'', "'\\''"))
        }
    };
    if let Ok(text) = std::str::from_utf8(&bytes) {
        return quote(text);
    }
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        if !chunk.valid().is_empty() {
            out.push_str(&quote(chunk.valid()));
        }
        if !chunk.invalid().is_empty() {
            let octal: String = chunk
                .invalid()
                .iter()
                .map(|b| format!("\\{b:03o}"))
                .collect();
            out.push_str(&format!("\"$(printf '{octal}')\""));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[cfg(unix)]
    #[test]
    fn the_resume_command_gives_the_shell_back_every_byte() -> std::io::Result<()> {
        use std::ffi::OsString;
        use std::os::unix::ffi::{OsStrExt, OsStringExt};
        let args = vec![
            OsString::from("cnn-train"),
            OsString::from("--out"),
            OsString::from_vec(b"runs/caf\xe9 'x' \xff\xfe/r\xc3\xa9".to_vec()),
        ];
        let command = super::resume_command_from(args.clone());
        // The shell prints each word it parsed, NUL-terminated.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf '%s\\0' {command}"))
            .output()?;
        assert!(out.status.success(), "{command}");
        let words: Vec<&[u8]> = out
            .stdout
            .split(|&b| b == 0)
            .filter(|w| !w.is_empty())
            .collect();
        let mut expected: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        expected.push(b"--resume");
        assert_eq!(words, expected, "{command}");
        Ok(())
    }
}
