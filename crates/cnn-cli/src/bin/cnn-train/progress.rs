//! What `cnn-train` shows while it trains: the header, a progress bar on a terminal, one
//! line per epoch, and how the run ended.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use candle_core::Device;
use cnn_data::{DataSource, Dataset, DatasetKind};
use cnn_training::{Event, FINAL_STATE_FILE, OptimizerKind, RunOutcome, Trainer};
use indicatif::{ProgressBar, ProgressStyle};

use crate::flags::ops_name;

/// Exit code of a run stopped by Ctrl-C, as shells report a SIGINT death (128 + 2).
const INTERRUPTED: u8 = 130;

pub(crate) fn accuracy_line(correct: usize, total: usize) -> String {
    format!(
        "test accuracy: {:.2}% ({correct}/{total})",
        100.0 * correct as f64 / total.max(1) as f64
    )
}

/// The two lines before the first epoch: what is trained on what, and the recipe.
pub(crate) fn header(
    t: &Trainer,
    data: &Dataset,
    source: &DataSource,
    device: &Device,
    out: &Path,
) -> Result<()> {
    let cfg = t.config();
    let images = match source.kind {
        DatasetKind::Own => format!("images from {}", source.dir.display()),
        builtin => format!("{} images", builtin.title()),
    };
    let params: usize = t.model().layers().iter().map(|l| l.params).sum();
    let held_out = if cfg.validation > 0 {
        format!(" ({} more held out to validate)", cfg.validation)
    } else {
        String::new()
    };
    cnn_cli::say!(
        "training {} ({params} parameters) on {} {images} of {}x{} in {} classes{held_out}, testing on {}; device {device:?}; output {}",
        t.model().spec().name,
        t.n_train(),
        data.train.rows(),
        data.train.cols(),
        data.classes(),
        data.test.len(),
        out.display()
    )?;
    let a = &cfg.augment;
    let num = cnn_training::display_number;
    let elastic = if a.elastic > 0.0 {
        format!(" elastic {}", num(a.elastic))
    } else {
        String::new()
    };
    let extra: String = [
        a.warps().then(|| {
            format!(
                " rotate {} scale {} translate {}{elastic}",
                num(a.rotate),
                num(a.scale),
                num(a.translate)
            )
        }),
        a.flip.then(|| " flip".to_string()),
        (cfg.clean_epochs > 0).then(|| format!(" clean_epochs {}", cfg.clean_epochs)),
        (cfg.label_smoothing > 0.0)
            .then(|| format!(" label_smoothing {}", num(cfg.label_smoothing))),
        (cfg.validation > 0).then(|| format!(" validation {}", cfg.validation)),
    ]
    .into_iter()
    .flatten()
    .collect();
    cnn_cli::say!(
        "recipe: epochs {} batch {} lr {} {} l2 {} seed {} warmup {} shift {}{extra}; ops {}",
        cfg.epochs,
        cfg.batch_size,
        num(cfg.lr),
        match cfg.optimizer {
            OptimizerKind::Sgd => format!("momentum {}", num(cfg.momentum)),
            other => format!("optimizer {}", other.name()),
        },
        num(cfg.l2),
        cfg.seed,
        num(cfg.warmup_epochs),
        cfg.shift,
        ops_name(t.model().ops())
    )
}

/// The flag Ctrl-C (SIGINT), SIGTERM and SIGHUP set, its handlers installed: before the
/// header is printed, so that a Ctrl-C right after it (a script that waits for the recipe
/// line) stops cleanly too.
pub(crate) fn ctrl_c_flag() -> Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let stop = Arc::new(AtomicBool::new(false));
    // Each stops training between batches; the last finished epoch's files stay on disk.
    for signal in [SIGINT, SIGTERM, SIGHUP] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("installing the Ctrl-C handler")?;
    }
    Ok(stop)
}

/// Trains to the end (or to Ctrl-C, which sets `stop`), showing progress; returns the
/// exit code.
pub(crate) fn train(
    trainer: &mut Trainer,
    data: &Dataset,
    out: &Path,
    stop: Arc<AtomicBool>,
) -> Result<ExitCode> {
    let started_at = trainer.epochs_done();
    let mut view = View::new(
        trainer.config().epochs,
        trainer.n_train(),
        Arc::clone(&stop),
    );
    let outcome = cnn_training::run(trainer, data, Some(out), &stop, &mut |e| view.show(e));
    view.clear();
    let decay_step = trainer.config().lr * trainer.config().l2 / trainer.n_train() as f64;
    let outcome = diverged_explained(outcome, out, decay_step)?;
    if let Some(e) = view.write_failed {
        // The epochs before the failed line are on disk, as after Ctrl-C.
        return Err(e);
    }
    if outcome == RunOutcome::Interrupted {
        if trainer.epochs_done() == started_at && started_at == 0 {
            cnn_cli::say!("interrupted before the first epoch ended; nothing was saved")?;
        } else {
            cnn_cli::say!(
                "interrupted after epoch {}; its files are in {}; continue with:\n  {}",
                trainer.epochs_done(),
                out.display(),
                cnn_cli::resume_command()
            )?;
        }
        return Ok(ExitCode::from(INTERRUPTED));
    }
    cnn_cli::say!(
        "wrote {}/{{history.csv,final_state.safetensors,checkpoint.safetensors}}",
        out.display()
    )?;
    if let Some(m) = trainer.history().last() {
        cnn_cli::say!("{}", accuracy_line(m.test_correct, m.test_total))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The progress bar (on a terminal only) and the epoch lines.
struct View {
    epochs: usize,
    trained: usize,
    bar: Option<ProgressBar>,
    style: Option<ProgressStyle>,
    stop: Arc<AtomicBool>,
    /// A failed epoch line stops training as Ctrl-C does; the failure is reported after.
    write_failed: Option<anyhow::Error>,
}

impl View {
    fn new(epochs: usize, trained: usize, stop: Arc<AtomicBool>) -> Self {
        let style = std::io::stdout().is_terminal().then(|| {
            ProgressStyle::with_template(
                "epoch {prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed}<{eta})",
            )
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar())
        });
        Self {
            epochs,
            trained,
            bar: None,
            style,
            stop,
            write_failed: None,
        }
    }

    fn show(&mut self, ev: &Event) {
        match ev {
            Event::EpochStart { epoch, batches } => {
                if let Some(style) = &self.style {
                    let b = ProgressBar::new(*batches as u64).with_style(style.clone());
                    b.set_prefix(format!("{epoch}/{}", self.epochs));
                    b.enable_steady_tick(Duration::from_millis(200));
                    self.bar = Some(b);
                }
            }
            Event::Batch(p) => {
                if let Some(b) = &self.bar {
                    b.set_position(p.batch as u64);
                    if p.batch % 10 == 0 || p.batch == p.batches {
                        b.set_message(format!("loss {:.4} {:.0} img/s", p.loss, p.images_per_sec));
                    }
                }
            }
            Event::EpochEnd(m) => {
                self.clear();
                let val = match (m.val_loss, m.val_accuracy) {
                    (Some(l), Some(a)) => format!("  val_loss {l:.4}  val_acc {:.2}%", 100.0 * a),
                    _ => String::new(),
                };
                let line = cnn_cli::say!(
                    "epoch {:>3}/{}  train_loss {:.4}{val}  test_loss {:.4}  test_acc {:.2}%  lr {:.4}  {:.1} s ({:.0} img/s)",
                    m.epoch,
                    self.epochs,
                    m.train_loss,
                    m.test_loss,
                    100.0 * m.test_accuracy,
                    m.learning_rate,
                    m.train_seconds,
                    self.trained as f64 / m.train_seconds.max(1e-9),
                );
                if let Err(e) = line {
                    self.write_failed.get_or_insert(e);
                    self.stop.store(true, Ordering::Relaxed);
                }
            }
        }
    }

    fn clear(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

/// A diverged run as one line that says what is kept and how to train again; other errors
/// mapped to the flags to blame.
///
/// `decay_step` is the share of each weight that weight decay alone takes away at the peak
/// learning rate: from a tenth on, the L2 term, not the learning rate, is what diverged.
fn diverged_explained(
    outcome: cnn_training::Result<RunOutcome>,
    out: &Path,
    decay_step: f64,
) -> Result<RunOutcome> {
    match outcome {
        Err(e @ cnn_training::Error::Diverged { epoch, suggest, .. }) => {
            let saved = out.join(FINAL_STATE_FILE).exists();
            let kept = if saved {
                format!("epoch {}'s files are kept in {}", epoch - 1, out.display())
            } else {
                "no epoch finished, so nothing was saved".to_string()
            };
            let overwrite = if saved { " --overwrite" } else { "" };
            let again = if decay_step >= 0.1 {
                format!("a lower --l2 (its weight decay alone overshoots){overwrite}")
            } else {
                format!("a lower --lr, e.g. --lr {suggest}{overwrite}")
            };
            anyhow::bail!("{e}; {kept}; train again with {again}")
        }
        other => other.map_err(cnn_cli::explain),
    }
}
