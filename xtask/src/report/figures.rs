//! The figures of one evaluated run: each a small function from model outputs to a PNG.

use std::path::Path;

use anyhow::{Context, Result};
use cnn_data::{Dataset, DatasetKind};
use cnn_models::Cnn;
use cnn_plot::{Digit, EpochPoint, LayerBox};

use super::eval::Evaluated;

/// One written figure: its file name and a caption for `results.md`.
pub struct Figure {
    pub file: String,
    pub caption: String,
}

/// What every figure of one run draws from.
pub struct Run<'a> {
    /// Where the model's weights live.
    pub device: &'a candle_core::Device,
    /// Network name, the prefix of every file.
    pub name: &'a str,
    pub model: &'a Cnn,
    pub data: &'a Dataset,
    /// Which dataset it is, for titles.
    pub kind: DatasetKind,
    pub ev: &'a Evaluated,
    pub dir: &'a Path,
}

impl Run<'_> {
    /// The dataset as a title names it: nothing for data of one's own (the run is named).
    fn tag(&self) -> &'static str {
        match self.kind {
            DatasetKind::Own => "",
            kind => kind.title(),
        }
    }

    /// `text` with the dataset's name before it, when it has one.
    fn tagged(&self, text: &str) -> String {
        match self.tag() {
            "" => text.to_string(),
            tag => format!("{tag} {text}"),
        }
    }

    fn label(&self, c: u8) -> String {
        self.data
            .class_names
            .get(usize::from(c))
            .cloned()
            .unwrap_or_else(|| c.to_string())
    }

    /// Draws into `<dir>/<name>_<suffix>.png` and records the caption.
    fn save(
        &self,
        out: &mut Vec<Figure>,
        suffix: &str,
        size: (u32, u32),
        caption: String,
        draw: impl FnOnce(&cnn_plot::PngArea<'_>) -> cnn_plot::Result<()>,
    ) -> Result<()> {
        let file = format!("{}_{suffix}.png", self.name);
        let path = self.dir.join(&file);
        cnn_plot::save_png(&path, size, draw)
            .with_context(|| format!("drawing {}", path.display()))?;
        out.push(Figure { file, caption });
        Ok(())
    }

    /// Square images can be drawn as digits; other shapes get no image figures.
    fn square_side(&self) -> Option<usize> {
        let t = &self.data.test;
        (t.rows() == t.cols()).then_some(t.rows())
    }

    /// Every figure this run supports.
    pub fn all(&self) -> Result<Vec<Figure>> {
        let mut out = Vec::new();
        self.architecture(&mut out)?;
        // A network trained elsewhere (cnn-import) has no learning curves here.
        if !self.ev.history.is_empty() {
            self.curves(&mut out)?;
        }
        let side = self.square_side();
        if let Some(side) = side {
            self.predictions(&mut out, side)?;
        }
        self.kernels(&mut out)?;
        if let Some(side) = side {
            self.feature_maps(&mut out, side)?;
        }
        self.confusion(&mut out)?;
        if let Some(side) = side {
            self.mistakes(&mut out, side)?;
        }
        Ok(out)
    }

    fn architecture(&self, out: &mut Vec<Figure>) -> Result<()> {
        let a = self.name;
        let layers: Vec<LayerBox> = self
            .model
            .layers()
            .iter()
            .map(|l| LayerBox {
                name: l.name.clone(),
                kind: l.kind.clone(),
                output_shape: l.output_shape.clone(),
                params: l.params,
            })
            .collect();
        let h = 130 + 52 * layers.len() as u32;
        let caption = format!("{a}: layers, output shapes, parameters");
        self.save(out, "architecture", (1000, h), caption, |area| {
            cnn_plot::architecture(area, &format!("{a} architecture"), &layers)
        })
    }

    fn curves(&self, out: &mut Vec<Figure>) -> Result<()> {
        let a = self.name;
        let points: Vec<EpochPoint> = self
            .ev
            .history
            .iter()
            .map(|m| EpochPoint::new(m.epoch, m.train_loss, m.test_loss, m.test_accuracy))
            .collect();
        let title = match self.tag() {
            "" => format!("{a}: learning curves"),
            tag => format!("{a} on {tag}: learning curves"),
        };
        let caption = format!("{a}: loss and test accuracy per epoch");
        self.save(out, "learning_curves", (1200, 480), caption, |area| {
            cnn_plot::learning_curves(area, &title, &points)
        })
    }

    fn digit(&self, i: usize, side: usize, confidence: bool) -> Digit<'_> {
        let ev = self.ev;
        Digit {
            pixels: self.data.test.image(i),
            side,
            truth: self.label(self.data.test.label(i)),
            predicted: self.label(ev.preds[i]),
            confidence: confidence.then(|| ev.probs[i][usize::from(ev.preds[i])]),
        }
    }

    /// Columns and cells of the digit grids: fewer for long class names.
    fn grid_shape(&self) -> (usize, usize) {
        let long = self.data.class_names.iter().any(|n| n.chars().count() > 3);
        if long { (6, 24) } else { (8, 32) }
    }

    fn predictions(&self, out: &mut Vec<Figure>, side: usize) -> Result<()> {
        let a = self.name;
        let (cols, n) = self.grid_shape();
        let n = n.min(self.data.test.len());
        let grid: Vec<Digit<'_>> = (0..n).map(|i| self.digit(i, side, false)).collect();
        let wrong = grid.iter().filter(|d| !d.correct()).count();
        let caption = format!(
            "{a}: the first {n} test images, [T]rue and [P]redicted class ({wrong} wrong, in red)"
        );
        let title = format!("{a}: first {n} {}", self.tagged("test images"));
        self.save(out, "predictions", (1100, 620), caption, |area| {
            cnn_plot::digit_grid(area, &title, &grid, cols)
        })
    }

    fn mistakes(&self, out: &mut Vec<Figure>, side: usize) -> Result<()> {
        let (a, ev, test) = (self.name, self.ev, &self.data.test);
        let (cols, n) = self.grid_shape();
        let confidence = |i: usize| ev.probs[i][usize::from(ev.preds[i])];
        let mut wrong: Vec<usize> = (0..test.len())
            .filter(|&i| ev.preds[i] != test.label(i))
            .collect();
        wrong.sort_by(|&x, &y| confidence(y).total_cmp(&confidence(x)));
        let gallery: Vec<Digit<'_>> = wrong
            .iter()
            .take(n)
            .map(|&i| self.digit(i, side, true))
            .collect();
        if gallery.is_empty() {
            return Ok(());
        }
        let caption = format!(
            "{a}: the {} most confident of its {} test mistakes",
            gallery.len(),
            wrong.len()
        );
        let title = format!("{a}: most confident mistakes (T:true P:predicted confidence)");
        self.save(out, "misclassified", (1100, 620), caption, |area| {
            cnn_plot::digit_grid(area, &title, &gallery, cols)
        })
    }

    /// First-layer kernels: one figure, or one per colour of an RGB input.
    fn kernels(&self, out: &mut Vec<Figure>) -> Result<()> {
        let a = self.name;
        let Some(w) = self.model.conv_weight(0) else {
            return Ok(()); // the network has no convolution: no kernels to show
        };
        let (_, c_in, k, _) = w.dims4()?;
        let inputs: &[&str] = match c_in {
            1 => &[""],
            3 => &["red", "green", "blue"],
            _ => return Ok(()),
        };
        let kernels = self.model.kernels(0)?;
        let rows = kernels.len().min(40).div_ceil(5) as u32;
        let h = 470 + 210 * rows.saturating_sub(2);
        for (c, input) in inputs.iter().enumerate() {
            let shown: Vec<Vec<f32>> = kernels
                .iter()
                .take(40)
                .map(|v| v[c * k * k..(c + 1) * k * k].to_vec())
                .collect();
            let (suffix, on) = match *input {
                "" => ("kernels".to_string(), String::new()),
                colour => (
                    format!("kernels_{colour}"),
                    format!(" on the {colour} input"),
                ),
            };
            let caption = format!("{a}: the {} first-layer {k}x{k} kernels{on}", shown.len());
            let title = format!("{a}: first-layer kernels{on}");
            self.save(out, &suffix, (1000, h), caption, |area| {
                cnn_plot::kernel_grid(area, &title, &shown, k)
            })?;
        }
        Ok(())
    }

    fn feature_maps(&self, out: &mut Vec<Figure>, side: usize) -> Result<()> {
        let a = self.name;
        let test = &self.data.test;
        for (k, &i) in feature_inputs(self.data).iter().enumerate() {
            let x = cnn_training::batch_tensor(test, &[i], self.device)?;
            let maps: Vec<Vec<f32>> = match self.model.first_layer_maps(&x) {
                Ok(m) => m.squeeze(0)?.flatten_from(1)?.to_vec2::<f32>()?,
                Err(cnn_models::Error::NoFirstConv { .. }) => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            let maps: Vec<Vec<f32>> = maps.into_iter().take(31).collect();
            let rows = (maps.len() + 1).div_ceil(4) as u32;
            let h = 720.max(240 * rows);
            let title = format!(
                "{a}: first-layer feature maps of test image {i} ({})",
                self.label(test.label(i))
            );
            let caption = format!("{a}: feature maps of test image {i} (input bottom right)");
            self.save(
                out,
                &format!("feature_maps_{k}"),
                (900, h),
                caption,
                |area| cnn_plot::feature_maps(area, &title, &maps, side, test.image(i), side),
            )?;
        }
        Ok(())
    }

    fn confusion(&self, out: &mut Vec<Figure>) -> Result<()> {
        let (a, test) = (self.name, &self.data.test);
        let n = self.data.classes();
        let mut counts = vec![vec![0u64; n]; n];
        for (i, &p) in self.ev.preds.iter().enumerate() {
            counts[usize::from(test.label(i))][usize::from(p)] += 1;
        }
        let correct: u64 = (0..n).map(|i| counts[i][i]).sum();
        let names: Vec<&str> = self.data.class_names.iter().map(String::as_str).collect();
        let long = names.iter().any(|s| s.chars().count() > 3);
        let width = if long { 900 } else { 820 };
        let caption = format!(
            "{a}: confusion matrix on the {} test images ({correct} correct)",
            cnn_plot::thousands(test.len())
        );
        let title = format!("{a}: {}", self.tagged("test confusion matrix"));
        self.save(out, "confusion", (width, 760), caption, |area| {
            cnn_plot::confusion_matrix(area, &title, &counts, &names)
        })
    }
}

/// Four test inputs for the feature-map figures: the first test image of four different
/// classes (fewer when there are fewer classes), so the maps show different shapes.
fn feature_inputs(data: &Dataset) -> Vec<usize> {
    let mut seen = vec![false; data.classes()];
    let mut picks = Vec::new();
    for i in 0..data.test.len() {
        let l = usize::from(data.test.label(i));
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
