//! `cargo xtask pictures`: the shipped MNIST written out as class folders of pictures (to try
//! `cnn-train --data-dir` on pictures), and the decode-and-cache budget measured on all of it.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use cnn_data::pictures::{ImageFormat, write_class_folders};
use cnn_data::{DataSource, DatasetKind};

/// Options of `cargo xtask pictures`.
#[derive(Debug, clap::Args)]
pub struct PicturesArgs {
    /// Folder to write `train/` and `test/` into (created; no file there is replaced).
    #[arg(long, value_name = "DIR", required_unless_present = "bench")]
    out: Option<PathBuf>,
    /// Picture format: png or jpeg.
    #[arg(long, default_value = "png", value_parser = ["png", "jpeg"])]
    format: String,
    /// Write only the first N training and N/6 test images [default: all 60,000 + 10,000].
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Keep only the digits 0 to N-1 (N classes, 2 to 10) [default: all ten].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(2..=10))]
    classes: Option<u8>,
    /// Write RGB pictures: each digit in one of six ink colours on a dark background of
    /// another, chosen by the picture's position and not its class, so colour tells nothing.
    #[arg(long)]
    tint: bool,
    /// Instead: write all 70,000 digits as PNGs into a temporary folder and time
    /// `cnn-train` from its start to its first training step, with a cold cache and with a
    /// warm one, and the loader's peak memory (the numbers of docs/speed.md).
    #[arg(long)]
    bench: bool,
}

/// Digit names, the class folders' names.
const NAMES: [&str; 10] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
];

/// Runs `cargo xtask pictures`.
pub fn main(args: PicturesArgs) -> Result<()> {
    if args.bench {
        return bench();
    }
    let out = args.out.context("--out is required")?;
    let format = match args.format.as_str() {
        "jpeg" => ImageFormat::Jpeg,
        _ => ImageFormat::Png,
    };
    let n = write(&out, format, args.limit, args.classes, args.tint)?;
    cnn_cli::say!(
        "wrote {n} pictures to {}/train and {}/test; train on them with `cargo run --release -p cnn-cli --bin cnn-train -- --data-dir {}`",
        out.display(),
        out.display(),
        out.display()
    )
}

/// Writes the shipped MNIST (cut to `limit` images of the first `classes` digits, tinted
/// when asked) as class folders under `out`.
fn write(
    out: &Path,
    format: ImageFormat,
    limit: Option<usize>,
    classes: Option<u8>,
    tint: bool,
) -> Result<usize> {
    let source = DataSource::new(crate::repo_root().join("assets/mnist"), DatasetKind::Mnist);
    let data = cnn_data::load(&source).context("loading the shipped MNIST")?;
    let keep: Vec<u8> = (0..classes.unwrap_or(10)).collect();
    let (mut train, mut test) = (
        data.train.filter_classes(&keep)?,
        data.test.filter_classes(&keep)?,
    );
    if let Some(n) = limit {
        (train, test) = (train.take(n), test.take(n.div_ceil(6)));
    }
    if tint {
        (train, test) = (tinted(&train)?, tinted(&test)?);
    }
    let names = &NAMES[..keep.len()];
    let mut n = write_class_folders(&train, names, &out.join("train"), format)?;
    n += write_class_folders(&test, names, &out.join("test"), format)?;
    Ok(n)
}

/// Ink colours of tinted digits; the background is a dark shade of the next one.
const INKS: [[u8; 3]; 6] = [
    [255, 80, 80],
    [80, 255, 80],
    [90, 140, 255],
    [255, 220, 60],
    [255, 90, 255],
    [60, 230, 230],
];

/// Grayscale digits as RGB: image `i` in ink `INKS[i % 6]` over a dark background.
fn tinted(split: &cnn_data::Split) -> Result<cnn_data::Split> {
    let [_, h, w] = split.image_shape();
    let mut images = Vec::with_capacity(split.len() * 3 * h * w);
    for i in 0..split.len() {
        let (ink, paper) = (INKS[i % 6], INKS[(i + 1) % 6]);
        for c in 0..3 {
            images.extend(split.image(i).iter().map(|&v| {
                let t = f32::from(v) / 255.0;
                (f32::from(ink[c]) * t + f32::from(paper[c]) * 0.25 * (1.0 - t)).round() as u8
            }));
        }
    }
    let labels = split.labels().to_vec();
    Ok(cnn_data::Split::with_shape(
        images,
        labels,
        [3, h, w],
        split.classes(),
    )?)
}

/// The budget of the issue: 70,000 28x28 PNGs, first decode within 30 s, training under way
/// within 2 s on the second run, the loader's peak memory within twice the decoded tensor.
fn bench() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let (data, cache) = (tmp.path().join("digits"), tmp.path().join("cache"));
    let started = Instant::now();
    let n = write(&data, ImageFormat::Png, None, None, false)?;
    cnn_cli::say!("wrote {n} PNGs in {:.1} s", started.elapsed().as_secs_f64())?;
    let root = crate::repo_root();
    let status = Command::new("cargo")
        .args([
            "build",
            "--release",
            "-q",
            "-p",
            "cnn-cli",
            "--bin",
            "cnn-train",
        ])
        .args(["-p", "cnn-data", "--example", "load_pictures"])
        .current_dir(&root)
        .status()?;
    if !status.success() {
        bail!("cargo build failed");
    }
    let release = root.join("target/release");
    for run in ["first (cold cache)", "second (cached)"] {
        let to_training = until_training(&release.join("cnn-train"), &data, &cache, tmp.path())?;
        cnn_cli::say!("{run}: cnn-train reached its first training step after {to_training:.2} s")?;
    }
    std::fs::remove_dir_all(&cache)?;
    for run in ["cold", "warm"] {
        let out = Command::new(release.join("examples/load_pictures"))
            .arg(&data)
            .env("CNN_DATA_CACHE", &cache)
            .output()?;
        if !out.status.success() {
            bail!(
                "load_pictures failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        cnn_cli::say!(
            "loader, {run} cache: {}",
            String::from_utf8_lossy(&out.stdout).trim()
        )?;
    }
    Ok(())
}

/// Seconds from starting `cnn-train` on `data` to its line announcing the pictures (printed
/// as training starts); the run is stopped there.
fn until_training(bin: &Path, data: &Path, cache: &Path, tmp: &Path) -> Result<f64> {
    let started = Instant::now();
    let mut child = Command::new(bin)
        .args([
            "--model",
            "small_cnn",
            "--epochs",
            "1",
            "--overwrite",
            "--data-dir",
        ])
        .arg(data)
        .arg("--out")
        .arg(tmp.join("run"))
        .env("CNN_DATA_CACHE", cache)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().context("no standard output")?;
    let mut seen = None;
    for line in std::io::BufReader::new(stdout).lines() {
        if line?.starts_with("pictures:") {
            seen = Some(started.elapsed().as_secs_f64());
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    seen.context("cnn-train ended before training")
}
