//! What the report reads and computes for one trained model: its files, its predictions on
//! the test set, and its row of the results table.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use candle_core::Device;
use cnn_data::Dataset;
use cnn_models::Cnn;
use cnn_training::RunFolder;

/// Everything the figures need from one evaluated model.
pub struct Evaluated {
    pub history: Vec<cnn_training::EpochMetrics>,
    pub probs: Vec<Vec<f32>>,
    pub preds: Vec<u8>,
}

impl Evaluated {
    pub fn correct(&self, data: &Dataset) -> usize {
        self.preds
            .iter()
            .enumerate()
            .filter(|&(i, &p)| p == data.test.label(i))
            .count()
    }
}

/// Where the report finds a model's weights and its training history.
pub struct RunFiles {
    pub state: PathBuf,
    pub history: PathBuf,
}

impl RunFiles {
    /// The files of a run folder, as `cnn-train` writes them.
    pub fn in_run(dir: &Path) -> Self {
        let folder = RunFolder::new(dir);
        RunFiles {
            state: folder.final_state(),
            history: folder.history(),
        }
    }

    /// A network's trained weights and history shipped in assets/models/, so the page,
    /// `cnn-predict` and this report work on a fresh clone without training first.
    pub fn shipped(name: &str) -> Self {
        let dir = crate::repo_root().join("assets/models");
        RunFiles {
            state: dir.join(format!("{name}.safetensors")),
            history: dir.join(format!("{name}.history.csv")),
        }
    }

    pub fn exist(&self) -> bool {
        self.state.is_file() && self.history.is_file()
    }

    /// Copies these files over `to`'s, each atomically.
    pub fn copy_to(&self, to: &RunFiles) -> Result<()> {
        for (from, to) in [(&self.state, &to.state), (&self.history, &to.history)] {
            let bytes =
                std::fs::read(from).with_context(|| format!("reading {}", from.display()))?;
            cnn_data::atomic::write_atomic(to, &bytes)
                .with_context(|| format!("writing {}", to.display()))?;
        }
        Ok(())
    }
}

/// Reads the history in `files` and predicts every test image with `model`.
pub fn evaluate(
    model: &Cnn,
    data: &Dataset,
    files: &RunFiles,
    device: &Device,
) -> Result<Evaluated> {
    let hist_path = &files.history;
    // A history holds a line per epoch: 16 MiB is over 100,000 epochs.
    let text = cnn_data::read_text(hist_path, 16 << 20)
        .with_context(|| format!("reading {}", hist_path.display()))?
        .with_context(|| {
            format!(
                "{} is larger than 16 MiB; not a history",
                hist_path.display()
            )
        })?;
    let history = cnn_training::parse_history_csv(&text, data.test.len())
        .with_context(|| format!("{} is malformed", hist_path.display()))?;
    let mut probs = Vec::with_capacity(data.test.len());
    let idx: Vec<usize> = (0..data.test.len()).collect();
    for chunk in idx.chunks(cnn_training::eval_batch(model.spec())) {
        probs.extend(cnn_training::predict_proba(
            model, &data.test, chunk, device,
        )?);
    }
    let preds = probs
        .iter()
        .map(|p| {
            p.iter()
                .enumerate()
                .fold(0, |b, (i, &v)| if v > p[b] { i } else { b }) as u8
        })
        .collect();
    Ok(Evaluated {
        history,
        probs,
        preds,
    })
}

/// One row of the results table.
pub fn table_row(
    name: &str,
    model: &Cnn,
    data: &Dataset,
    ev: &Evaluated,
    command: &str,
) -> Result<String> {
    let correct = ev.correct(data);
    let params: usize = model.layers().iter().map(|l| l.params).sum();
    // A network trained elsewhere (cnn-import) has no epochs here.
    let (epochs, seconds) = match ev.history.last() {
        Some(last) => {
            let mut secs: Vec<f64> = ev.history.iter().map(|m| m.train_seconds).collect();
            secs.sort_by(f64::total_cmp);
            (
                last.epoch.to_string(),
                format!("{:.1}", secs[secs.len() / 2]),
            )
        }
        None => ("imported".to_string(), "-".to_string()),
    };
    Ok(format!(
        "| `{name}` | {params} | {epochs} | {:.2}% ({correct}/{}) | {seconds} | `{command}` |",
        100.0 * correct as f64 / data.test.len() as f64,
        data.test.len(),
    ))
}
