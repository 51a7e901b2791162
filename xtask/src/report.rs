//! `cargo xtask report`: trains what is missing, evaluates, and regenerates every figure.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use candle_core::Device;
use cnn_data::{DataSource, Dataset, DatasetKind, IMAGE_SIDE};
use cnn_models::{Arch, Cnn};
use cnn_plot::{Digit, EpochPoint, LayerBox};
use cnn_training::{Event, FINAL_STATE_FILE, HISTORY_FILE, TrainConfig, Trainer};
use indicatif::{ProgressBar, ProgressStyle};

struct Options {
    retrain: bool,
    quick: bool,
    dataset: DatasetKind,
    out: Option<PathBuf>,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options {
        retrain: false,
        quick: false,
        dataset: DatasetKind::Mnist,
        out: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--retrain" => o.retrain = true,
            "--quick" => o.quick = true,
            "--dataset" => {
                o.dataset = match it.next().map(String::as_str) {
                    Some("mnist") => DatasetKind::Mnist,
                    Some("fashion") => DatasetKind::Fashion,
                    other => bail!("--dataset expects mnist or fashion, got {other:?}"),
                }
            }
            "--out" => o.out = Some(PathBuf::from(it.next().context("--out needs a folder")?)),
            other => bail!("unknown option {other}"),
        }
    }
    Ok(o)
}

/// Images the quick mode trains on (one epoch), so CI exercises every figure in seconds.
const QUICK_TRAIN: usize = 2000;

fn bar(len: u64, prefix: String) -> ProgressBar {
    let b = ProgressBar::new(len).with_prefix(prefix);
    let style = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    b.set_style(style);
    b.enable_steady_tick(Duration::from_millis(200));
    b
}

#[allow(clippy::print_stdout)]
fn train(arch: Arch, data: &Dataset, run_dir: &Path, quick: bool) -> Result<()> {
    let mut cfg = TrainConfig::default_for(arch);
    cfg.dataset = data.kind.name().to_string();
    if quick {
        cfg.epochs = 1;
    }
    let mut trainer = Trainer::new(cfg.clone(), &Device::Cpu, data.train.len())?;
    let total = (trainer.batches_per_epoch() * cfg.epochs) as u64;
    let pb = bar(total, format!("training {arch}"));
    let mut on_event = |e: &Event| match e {
        Event::Batch(p) => {
            pb.inc(1);
            if p.batch % 20 == 0 {
                pb.set_message(format!("epoch {} loss {:.4}", p.epoch, p.loss));
            }
        }
        Event::EpochEnd(m) => {
            let line = format!(
                "{arch} epoch {:>2}/{}  test accuracy {:.2}%  {:.1} s",
                m.epoch,
                cfg.epochs,
                100.0 * m.test_accuracy,
                m.train_seconds
            );
            // A hidden bar (stdout not a terminal) swallows println: print plainly then.
            if pb.is_hidden() {
                println!("{line}")
            } else {
                pb.println(line)
            }
        }
        _ => {}
    };
    cnn_training::run(
        &mut trainer,
        data,
        run_dir,
        &AtomicBool::new(false),
        &mut on_event,
    )?;
    pb.finish_and_clear();
    Ok(())
}

/// Everything the figures need from one evaluated model.
struct Evaluated {
    history: Vec<cnn_training::EpochMetrics>,
    probs: Vec<[f32; 10]>,
    preds: Vec<u8>,
}

fn evaluate(model: &Cnn, data: &Dataset, run_dir: &Path) -> Result<Evaluated> {
    let hist_path = run_dir.join(HISTORY_FILE);
    let text = std::fs::read_to_string(&hist_path)
        .with_context(|| format!("reading {}", hist_path.display()))?;
    let history = cnn_training::parse_history_csv(&text, data.test.len())
        .with_context(|| format!("{} is malformed", hist_path.display()))?;
    let mut probs = Vec::with_capacity(data.test.len());
    let idx: Vec<usize> = (0..data.test.len()).collect();
    for chunk in idx.chunks(cnn_training::EVAL_BATCH) {
        probs.extend(cnn_training::predict_proba(
            model,
            &data.test,
            chunk,
            &Device::Cpu,
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

struct Figure {
    file: String,
    caption: String,
}

#[allow(clippy::print_stdout)]
fn figures(
    arch: Arch,
    model: &Cnn,
    data: &Dataset,
    ev: &Evaluated,
    dir: &Path,
) -> Result<Vec<Figure>> {
    let names = data.kind.class_names();
    let label = |c: u8| names[c as usize].to_string();
    let tag = match data.kind {
        DatasetKind::Mnist => "MNIST",
        DatasetKind::Fashion => "Fashion-MNIST",
    };
    let mut out = Vec::new();
    let mut save = |file: String,
                    _size: (u32, u32),
                    caption: String,
                    draw: &dyn Fn(&Path) -> cnn_plot::Result<()>|
     -> Result<()> {
        let path = dir.join(&file);
        draw(&path).with_context(|| format!("drawing {}", path.display()))?;
        out.push(Figure { file, caption });
        Ok(())
    };
    let a = arch.name();

    let layers: Vec<LayerBox> = arch
        .layers()
        .into_iter()
        .map(|l| LayerBox {
            name: l.name,
            kind: l.kind,
            output_shape: l.output_shape,
            params: l.params,
        })
        .collect();
    let h = 130 + 52 * layers.len() as u32;
    save(
        format!("{a}_architecture.png"),
        (1000, h),
        format!("{a}: layers, output shapes, parameters"),
        &|p| {
            cnn_plot::save_png(p, (1000, h), |area| {
                cnn_plot::architecture(area, &format!("{a} architecture"), &layers)
            })
        },
    )?;

    let points: Vec<EpochPoint> = ev
        .history
        .iter()
        .map(|m| EpochPoint {
            epoch: m.epoch,
            train_loss: m.train_loss,
            test_loss: m.test_loss,
            test_accuracy: m.test_accuracy,
        })
        .collect();
    save(
        format!("{a}_learning_curves.png"),
        (1200, 480),
        format!("{a}: loss and test accuracy per epoch"),
        &|p| {
            cnn_plot::save_png(p, (1200, 480), |area| {
                cnn_plot::learning_curves(area, &format!("{a} on {tag}: learning curves"), &points)
            })
        },
    )?;

    let digit = |i: usize, confidence: bool| Digit {
        pixels: data.test.image(i),
        side: IMAGE_SIDE,
        truth: label(data.test.label(i)),
        predicted: label(ev.preds[i]),
        confidence: confidence.then(|| ev.probs[i][ev.preds[i] as usize]),
    };
    let (cols, n) = match data.kind {
        DatasetKind::Mnist => (8, 32),
        DatasetKind::Fashion => (6, 24),
    };
    let grid: Vec<Digit<'_>> = (0..n).map(|i| digit(i, false)).collect();
    let wrong = grid.iter().filter(|d| !d.correct()).count();
    save(
        format!("{a}_predictions.png"),
        (1100, 620),
        format!(
            "{a}: the first {n} test images, [T]rue and [P]redicted class ({wrong} wrong, in red)"
        ),
        &|p| {
            cnn_plot::save_png(p, (1100, 620), |area| {
                cnn_plot::digit_grid(
                    area,
                    &format!("{a}: first {n} {tag} test images"),
                    &grid,
                    cols,
                )
            })
        },
    )?;

    let w = model
        .conv_weight(0)
        .context("model has no first convolution")?;
    let kernels: Vec<Vec<f32>> = w.flatten_from(1)?.to_vec2::<f32>()?;
    save(
        format!("{a}_kernels.png"),
        (1000, 470),
        format!("{a}: the {} first-layer 3x3 kernels", kernels.len()),
        &|p| {
            cnn_plot::save_png(p, (1000, 470), |area| {
                cnn_plot::kernel_grid(area, &format!("{a}: first-layer kernels"), &kernels, 3)
            })
        },
    )?;

    for (k, &i) in feature_inputs(data).iter().enumerate() {
        let x = cnn_training::batch_tensor(&data.test, &[i], &Device::Cpu)?;
        let maps: Vec<Vec<f32>> = model
            .first_layer_maps(&x)?
            .squeeze(0)?
            .flatten_from(1)?
            .to_vec2::<f32>()?;
        let title = format!(
            "{a}: first-layer feature maps of test image {i} ({})",
            label(data.test.label(i))
        );
        save(
            format!("{a}_feature_maps_{k}.png"),
            (900, 720),
            format!("{a}: feature maps of test image {i} (input bottom right)"),
            &|p| {
                cnn_plot::save_png(p, (900, 720), |area| {
                    cnn_plot::feature_maps(
                        area,
                        &title,
                        &maps,
                        IMAGE_SIDE,
                        data.test.image(i),
                        IMAGE_SIDE,
                    )
                })
            },
        )?;
    }

    let mut counts = vec![vec![0u64; 10]; 10];
    for (i, &p) in ev.preds.iter().enumerate() {
        counts[data.test.label(i) as usize][p as usize] += 1;
    }
    let correct: u64 = (0..10).map(|i| counts[i][i]).sum();
    let names_ref: Vec<&str> = names.to_vec();
    let width = if data.kind == DatasetKind::Mnist {
        820
    } else {
        900
    };
    save(
        format!("{a}_confusion.png"),
        (width, 760),
        format!("{a}: confusion matrix on the 10,000 test images ({correct} correct)"),
        &|p| {
            cnn_plot::save_png(p, (width, 760), |area| {
                cnn_plot::confusion_matrix(
                    area,
                    &format!("{a}: {tag} test confusion matrix"),
                    &counts,
                    &names_ref,
                )
            })
        },
    )?;

    let mut wrong: Vec<usize> = (0..data.test.len())
        .filter(|&i| ev.preds[i] != data.test.label(i))
        .collect();
    wrong.sort_by(|&x, &y| {
        ev.probs[y][ev.preds[y] as usize].total_cmp(&ev.probs[x][ev.preds[x] as usize])
    });
    let gallery: Vec<Digit<'_>> = wrong.iter().take(n).map(|&i| digit(i, true)).collect();
    if !gallery.is_empty() {
        save(
            format!("{a}_misclassified.png"),
            (1100, 620),
            format!(
                "{a}: the {} most confident of its {} test mistakes",
                gallery.len(),
                wrong.len()
            ),
            &|p| {
                cnn_plot::save_png(p, (1100, 620), |area| {
                    cnn_plot::digit_grid(
                        area,
                        &format!("{a}: most confident mistakes (T:true P:predicted confidence)"),
                        &gallery,
                        cols,
                    )
                })
            },
        )?;
    }
    Ok(out)
}

/// Four test inputs for the feature-map figures: the first test image of four different
/// classes, so the maps show different shapes.
fn feature_inputs(data: &Dataset) -> Vec<usize> {
    let mut seen = [false; 10];
    let mut picks = Vec::new();
    for i in 0..data.test.len() {
        let l = data.test.label(i) as usize;
        if !seen[l] {
            seen[l] = true;
            picks.push(i);
            if picks.len() == 4 {
                break;
            }
        }
    }
    picks
}

#[allow(clippy::print_stdout)]
pub fn main(args: &[String]) -> Result<()> {
    let o = parse(args)?;
    let root = crate::repo_root();
    let source = match o.dataset {
        DatasetKind::Mnist => DataSource::shipped_mnist(),
        DatasetKind::Fashion => DataSource::fashion_system(),
    };
    let mut data = cnn_data::load(&source)?;
    let scratch = root.join("target/xtask-report-quick");
    let (fig_dir, runs_dir) = match (o.quick, o.dataset) {
        (true, _) => (scratch.join("figures"), scratch.join("runs")),
        (false, DatasetKind::Mnist) => (root.join("assets/figures"), root.join("runs")),
        (false, DatasetKind::Fashion) => (
            root.join("assets/figures/fashion"),
            root.join("runs/fashion"),
        ),
    };
    let fig_dir = o.out.clone().unwrap_or(fig_dir);
    std::fs::create_dir_all(&fig_dir).with_context(|| format!("creating {}", fig_dir.display()))?;
    if o.quick {
        data.train = data.train.head(QUICK_TRAIN);
    }
    let mut table = vec![
        "| model | parameters | epochs | test accuracy | seconds per epoch (median) | command |"
            .to_string(),
        "|---|---:|---:|---:|---:|---|".to_string(),
    ];
    let mut captions = Vec::new();
    for arch in Arch::ALL {
        let run_dir = runs_dir.join(arch.name());
        let state = run_dir.join(FINAL_STATE_FILE);
        if o.retrain || o.quick || !state.is_file() {
            train(arch, &data, &run_dir, o.quick)?;
        } else {
            println!(
                "{arch}: using {} (pass --retrain to train again)",
                state.display()
            );
        }
        let (model, _) = cnn_training::load_model(&state, Some(arch), &Device::Cpu)?;
        let ev = evaluate(&model, &data, &run_dir)?;
        let figs = figures(arch, &model, &data, &ev, &fig_dir)?;
        let last = ev.history.last().context("empty history")?;
        let mut secs: Vec<f64> = ev.history.iter().map(|m| m.train_seconds).collect();
        secs.sort_by(f64::total_cmp);
        let correct = ev
            .preds
            .iter()
            .enumerate()
            .filter(|&(i, &p)| p == data.test.label(i))
            .count();
        let dataset_flag = if o.dataset == DatasetKind::Fashion {
            " --dataset fashion"
        } else {
            ""
        };
        table.push(format!(
            "| `{arch}` | {} | {} | {:.2}% ({correct}/{}) | {:.1} | `cnn-train --model {arch}{dataset_flag}` |",
            arch.num_params(),
            last.epoch,
            100.0 * correct as f64 / data.test.len() as f64,
            data.test.len(),
            secs[secs.len() / 2],
        ));
        println!(
            "{arch}: test accuracy {:.2}%, {} figures",
            100.0 * correct as f64 / data.test.len() as f64,
            figs.len()
        );
        captions.extend(
            figs.into_iter()
                .map(|f| format!("- `{}`: {}", f.file, f.caption)),
        );
    }
    let mut md = format!(
        "# Results ({})\n\nGenerated by `cargo xtask report{}`{}.\n\n",
        match o.dataset {
            DatasetKind::Mnist => "MNIST",
            DatasetKind::Fashion => "Fashion-MNIST",
        },
        if o.dataset == DatasetKind::Fashion {
            " --dataset fashion"
        } else {
            ""
        },
        if o.quick {
            " --quick (1 epoch on 2,000 images: a smoke test, not a result)"
        } else {
            ""
        }
    );
    md.push_str(&table.join("\n"));
    md.push_str("\n\n## Figures\n\n");
    md.push_str(&captions.join("\n"));
    md.push('\n');
    let md_path = fig_dir.join("results.md");
    std::fs::write(&md_path, md).with_context(|| format!("writing {}", md_path.display()))?;
    println!(
        "wrote {} figures and {} into {}",
        captions.len(),
        md_path.display(),
        fig_dir.display()
    );
    Ok(())
}
