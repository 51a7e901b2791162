//! `cnn-predict`: classifies your own pictures (PNG, JPEG) with a trained run.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use candle_core::Device;
use clap::Parser;
use cnn_cli::DeviceArg;
use cnn_data::pictures::{ImageFormat, PictureFormat};
use cnn_data::preprocess::load_image;
use cnn_models::{Arch, Cnn, NetSpec};
use cnn_training::checkpoint::RawCheckpoint;
use cnn_training::{RunFolder, Source};

// mimalloc keeps freed memory for reuse. glibc's malloc hands the megabyte-sized buffers of
// each training step (gradients, activations) back to the kernel and faults them in again,
// zeroed, on the next: a quarter of `medium_cnn`'s hidden-layer backward went to that.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Classify pictures with a trained model: digits (or clothes, for a Fashion-MNIST model), or
/// the classes of a run trained on a folder of pictures.
///
/// For a run on a folder of pictures, each picture is read as its training pictures were:
/// brought to the run's size, channels and fit. Otherwise it is preprocessed as MNIST was
/// made: grayscale, inverted if the ink is darker than the page, cropped to the ink, longer
/// side scaled to 20 px, centred by centre of mass in 28x28. Prints one line per file: path, prediction, probability, top 3. A file that
/// cannot be used gets an error line and the others go on; the exit code is then 1.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Network expected in the run: small_cnn, medium_cnn or a spec file [default: the
    /// one in the run; without --run, medium_cnn].
    #[arg(long, value_name = "NAME|FILE")]
    model: Option<String>,
    /// Run folder holding final_state.safetensors [default: runs/<model>; when there is
    /// none there, a preset's shipped weights (built into this program), or for a spec file
    /// X.toml the weights X.safetensors beside it (as assets/models/ ships mnist_best)].
    #[arg(long, value_name = "DIR")]
    run: Option<PathBuf>,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, value_name = "cpu|cuda|cuda:N", default_value = "cpu")]
    device: DeviceArg,
    /// Print JSON (one array) instead of lines.
    #[arg(long)]
    json: bool,
    /// Also write each input as the model saw it (its own image size), as DIR/<file stem>.png,
    /// or <stem>-2.png and so on where that name is taken: no file is replaced.
    #[arg(long, value_name = "DIR")]
    save_preprocessed: Option<PathBuf>,
    /// Pictures to classify.
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<PathBuf>,
}

/// What became of one picture: its top 3 classes with probabilities, or why it failed.
struct Outcome {
    path: PathBuf,
    result: Result<Vec<(usize, f32)>, String>,
}

/// The trained network `--model`/`--run` name, its checkpoint, and a label for messages:
/// the run folder's; without `--run`, when `runs/<model>` has none, a preset's weights built
/// into this program or a spec file's weights shipped beside it (`X.toml`, `X.safetensors`).
fn load_network(
    cli: &Cli,
    spec: Option<&NetSpec>,
    device: &Device,
) -> Result<(Cnn, RawCheckpoint, String)> {
    let name = spec.map_or("medium_cnn", |s| s.name.as_str());
    let expected = spec.map(|s| s.name.as_str());
    let folder = RunFolder::new(match &cli.run {
        Some(dir) => dir.clone(),
        None => PathBuf::from("runs").join(name),
    });
    let fallback = cli.run.is_none() && !folder.final_state().exists();
    let model_arg = cli.model.as_deref();
    if let Some(weights) = model_arg
        .and_then(cnn_cli::weights_beside)
        .filter(|_| fallback)
    {
        let (model, ckpt) =
            cnn_training::load_model(&weights, expected, device).map_err(cnn_cli::explain)?;
        // After loading: a file that cannot serve gets its error line alone.
        cnn_cli::warn(format_args!(
            "note: no {} yet; using {}",
            folder.final_state().display(),
            weights.display()
        ));
        return Ok((model, ckpt, weights.display().to_string()));
    }
    let shipped = model_arg
        .map_or(Some(Arch::MediumCnn), Arch::from_name)
        .filter(|_| cli.run.is_none())
        .map(cnn_cli::shipped_weights);
    let loaded = folder
        .load_model(expected, shipped, device)
        .map_err(cnn_cli::explain)?;
    let label = match loaded.source {
        Source::Folder => folder.final_state().display().to_string(),
        Source::Shipped => {
            cnn_cli::warn(format_args!(
                "note: no {} yet; using the shipped weights of {name} (built into cnn-predict)",
                folder.final_state().display()
            ));
            format!("the shipped {name} weights")
        }
    };
    Ok((loaded.model, loaded.checkpoint, label))
}

/// The trained network of the run, the names of its classes, and how its training pictures
/// were read (`None` for IDX data: pictures are then prepared as MNIST was made).
fn load(cli: &Cli, device: &Device) -> Result<(Cnn, Vec<String>, Option<PictureFormat>)> {
    let spec = cli.model.as_deref().map(cnn_cli::model_spec).transpose()?;
    let (model, ckpt, label) = load_network(cli, spec.as_ref(), device)?;
    cnn_cli::check_same_layers(spec.as_ref(), model.spec(), Path::new(&label))?;
    let [channels, rows, cols] = model.input_shape();
    let format = ckpt
        .config
        .as_ref()
        .and_then(|c| c.pictures.as_ref())
        .map(|p| PictureFormat {
            channels,
            height: rows as u32,
            width: cols as u32,
            fit: p.fit,
        });
    if channels != 1 && format.is_none() {
        anyhow::bail!(
            "{label}: the model takes {channels}-channel images but its run records no folder of pictures to say how to prepare them"
        );
    }
    // The network carries the names; the note says when they are numbers for want of any.
    if let (_, Some(note)) = ckpt.class_names(model.classes()) {
        cnn_cli::warn(format_args!("note: {label}: {note}"));
    }
    let names = model.class_names().to_vec();
    Ok((model, names, format))
}

/// The network's input for one picture, written to `--save-preprocessed` when asked: for a
/// run on a folder of pictures, the picture brought to the run's size, channels and fit;
/// otherwise its MNIST-style 28x28 preparation, scaled to the network's `rows x cols`.
fn prepare(
    cli: &Cli,
    i: usize,
    path: &Path,
    (shape, format): ([usize; 3], Option<&PictureFormat>),
    taken: &mut HashSet<String>,
) -> Result<Vec<u8>> {
    let pixels = match format {
        Some(format) => cnn_data::pictures::load_picture(path, format)?,
        None => cnn_data::preprocess::resized(&load_image(path)?, shape[1], shape[2]),
    };
    if let Some(dir) = &cli.save_preprocessed {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("image{i}"));
        save_new(dir, &stem, &pixels, shape, taken)?;
    }
    Ok(pixels)
}

/// Writes `pixels` as a PNG in `dir` under a name that neither an earlier picture of this
/// command took nor any file there holds (`7.png`, else `7-2.png`, ...): a file this
/// command did not create is never replaced, the picture being classified included.
fn save_new(
    dir: &Path,
    stem: &str,
    pixels: &[u8],
    shape: [usize; 3],
    taken: &mut HashSet<String>,
) -> Result<()> {
    use std::io::Write;
    let png = cnn_data::pictures::encode_planes(
        pixels,
        shape,
        ImageFormat::Png,
        &dir.join(format!("{stem}.png")),
    )?;
    for n in 1..=10_000 {
        let name = match n {
            1 => format!("{stem}.png"),
            n => format!("{stem}-{n}.png"),
        };
        if taken.contains(&name) {
            continue;
        }
        let target = dir.join(&name);
        // create_new: refused, not replaced, when the name exists, even if it appeared
        // after the search began.
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&target)
        {
            Ok(mut file) => {
                taken.insert(name);
                return file
                    .write_all(&png)
                    .with_context(|| format!("cannot write {}", target.display()));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot write {}", target.display())),
        }
    }
    anyhow::bail!(
        "--save-preprocessed {}: {stem}.png to {stem}-10000.png all exist",
        dir.display()
    )
}

/// Classifies every picture; a picture that cannot be read or saved fails alone.
fn classify(cli: &Cli, model: &Cnn, format: Option<&PictureFormat>) -> Result<Vec<Outcome>> {
    let mut taken = HashSet::new();
    let shape = model.input_shape();
    let mut outcomes = Vec::new();
    let mut ready: Vec<(usize, Vec<u8>)> = Vec::new();
    for (i, path) in cli.images.iter().enumerate() {
        let result = match prepare(cli, i, path, (shape, format), &mut taken) {
            Ok(pixels) => {
                ready.push((i, pixels));
                Ok(Vec::new())
            }
            Err(e) => Err(cnn_cli::one_line_error(&e)),
        };
        outcomes.push(Outcome {
            path: path.clone(),
            result,
        });
    }
    let pixels: Vec<&[u8]> = ready.iter().map(|(_, p)| p.as_slice()).collect();
    for ((i, _), p) in ready.iter().zip(model.predict_batch(&pixels)?) {
        outcomes[*i].result = Ok(p.top_k(3));
    }
    Ok(outcomes)
}

fn print_json(outcomes: &[Outcome], names: &[String]) -> Result<()> {
    let items: Vec<serde_json::Value> = outcomes
        .iter()
        .map(|o| match &o.result {
            Ok(top) => serde_json::json!({
                "path": o.path.display().to_string(),
                "prediction": names[top[0].0],
                "class": top[0].0,
                "probability": top[0].1,
                "top3": top.iter().map(|&(c, p)| serde_json::json!({"class": c, "name": names[c], "probability": p})).collect::<Vec<_>>(),
            }),
            Err(e) => serde_json::json!({"path": o.path.display().to_string(), "error": e}),
        })
        .collect();
    cnn_cli::say!("{}", serde_json::to_string_pretty(&items)?)
}

fn print_lines(outcomes: &[Outcome], names: &[String]) -> Result<()> {
    for o in outcomes {
        match &o.result {
            Ok(top) => {
                let rest: Vec<String> = top
                    .iter()
                    .map(|&(c, p)| format!("{} {:.1}%", names[c], 100.0 * p))
                    .collect();
                cnn_cli::say!(
                    "{}: {} ({:.1}%)  top 3: {}",
                    o.path.display(),
                    names[top[0].0],
                    100.0 * top[0].1,
                    rest.join(", ")
                )?;
            }
            Err(e) => cnn_cli::warn(format_args!("error: {}", e.replace('\n', " "))),
        }
    }
    Ok(())
}

fn run(cli: Cli) -> Result<bool> {
    let device = cnn_cli::select_device(None, Some(cli.device))?;
    let (model, names, format) = load(&cli, &device)?;
    if let Some(dir) = &cli.save_preprocessed {
        if dir.exists() && !dir.is_dir() {
            anyhow::bail!(
                "--save-preprocessed {}: is a file, not a folder",
                dir.display()
            );
        }
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--save-preprocessed {}", dir.display()))?;
    }
    let outcomes = classify(&cli, &model, format.as_ref())?;
    if cli.json {
        print_json(&outcomes, &names)?;
    } else {
        print_lines(&outcomes, &names)?;
    }
    Ok(outcomes.iter().all(|o| o.result.is_ok()))
}

fn main() -> ExitCode {
    cnn_cli::main_with(|cli| {
        run(cli).map(|ok| {
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        })
    })
}
