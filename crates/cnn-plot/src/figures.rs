//! Chart-like figures: learning curves, architecture diagrams, confusion matrices.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::{EpochPoint, Error, FONT, LayerBox, Result, draw_err, sequential, titled};

const TRAIN: RGBColor = RGBColor(31, 119, 180);
const TEST: RGBColor = RGBColor(214, 39, 40);
const ACC: RGBColor = RGBColor(44, 160, 44);

/// Train and test loss (log scale) beside test accuracy, per epoch, with the best epoch marked.
pub fn learning_curves<DB: DrawingBackend<ErrorType: 'static>>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    points: &[EpochPoint],
) -> Result<()> {
    let finite = |p: &EpochPoint| {
        p.train_loss.is_finite()
            && p.test_loss.is_finite()
            && (0.0..=1.0).contains(&p.test_accuracy)
    };
    if points.is_empty() || !points.iter().all(finite) {
        return Err(Error::BadData {
            what: "learning curves",
            reason: "no epochs, non-finite losses, or an accuracy outside 0..=1".into(),
        });
    }
    let body = titled(area, title)?;
    let (left, right) = body.split_horizontally(body.dim_in_pixel().0 as i32 / 2);
    let last = points.iter().map(|p| p.epoch).max().unwrap_or(1);
    let x_range = 0.5f64..(last as f64 + 0.5);
    loss_panel(&left, points, x_range.clone())?;
    accuracy_panel(&right, points, x_range, last)?;

    area.present().map_err(draw_err)
}

/// Train and test loss per epoch, on a log scale, with a legend.
fn loss_panel<DB: DrawingBackend<ErrorType: 'static>>(
    left: &DrawingArea<DB, Shift>,
    points: &[EpochPoint],
    x_range: std::ops::Range<f64>,
) -> Result<()> {
    // The axis spans at most 1e-6 to 1e6: losses beyond are drawn at its edge. A range of
    // hundreds of decades (a loss of 1e308 beside 1e-300) left plotters placing ticks for
    // ever.
    let (floor, ceiling) = (1e-6, 1e6);
    let losses = points.iter().flat_map(|p| [p.train_loss, p.test_loss]);
    let lo = losses
        .clone()
        .fold(f64::INFINITY, f64::min)
        .clamp(floor, ceiling)
        * 0.8;
    let hi = losses.fold(0f64, f64::max).clamp(floor, ceiling) * 1.25;
    let at = move |v: f64| v.clamp(lo, hi);
    let mut chart = ChartBuilder::on(left)
        .margin(16)
        .caption("loss (log scale)", (FONT, 20))
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(x_range.clone(), (lo..hi).log_scale())
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("cross-entropy")
        .y_labels(6)
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .x_label_formatter(&epoch_label)
        .y_label_formatter(&|y| format!("{y:.3}"))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(draw_err)?;
    for (name, color, get) in [
        (
            "train",
            TRAIN,
            (|p: &EpochPoint| p.train_loss) as fn(&EpochPoint) -> f64,
        ),
        ("test", TEST, |p: &EpochPoint| p.test_loss),
    ] {
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|p| (p.epoch as f64, at(get(p)))),
                color.stroke_width(3),
            ))
            .map_err(draw_err)?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], color.stroke_width(3)));
        chart
            .draw_series(
                points
                    .iter()
                    .map(|p| Circle::new((p.epoch as f64, at(get(p))), 4, color.filled())),
            )
            .map_err(draw_err)?;
    }
    chart
        .configure_series_labels()
        .label_font((FONT, 17))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(draw_err)?;

    Ok(())
}

/// Test accuracy per epoch, the best epoch circled and labelled beside it.
fn accuracy_panel<DB: DrawingBackend<ErrorType: 'static>>(
    right: &DrawingArea<DB, Shift>,
    points: &[EpochPoint],
    x_range: std::ops::Range<f64>,
    last: usize,
) -> Result<()> {
    let best = points.iter().copied().fold(points[0], |b, p| {
        if p.test_accuracy > b.test_accuracy {
            p
        } else {
            b
        }
    });
    let accs = points.iter().map(|p| 100.0 * p.test_accuracy);
    let alo = accs.clone().fold(100.0, f64::min);
    let ahi = accs.fold(0.0, f64::max);
    let pad = ((ahi - alo) * 0.15).max(0.05);
    let mut chart = ChartBuilder::on(right)
        .margin(16)
        .caption("test accuracy", (FONT, 20))
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(x_range, (alo - pad)..(ahi + 2.0 * pad).min(100.0))
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("accuracy (%)")
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .x_label_formatter(&epoch_label)
        .y_label_formatter(&|y| format!("{y:.2}"))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(draw_err)?;
    chart
        .draw_series(LineSeries::new(
            points
                .iter()
                .map(|p| (p.epoch as f64, 100.0 * p.test_accuracy)),
            ACC.stroke_width(3),
        ))
        .map_err(draw_err)?;
    chart
        .draw_series(
            points
                .iter()
                .map(|p| Circle::new((p.epoch as f64, 100.0 * p.test_accuracy), 4, ACC.filled())),
        )
        .map_err(draw_err)?;
    let b = (best.epoch as f64, 100.0 * best.test_accuracy);
    chart
        .draw_series([Circle::new(b, 9, BLACK.stroke_width(2))])
        .map_err(draw_err)?;
    let note = format!("best {:.2}% at epoch {}", b.1, best.epoch);
    // The note sits a few pixels above and beside the marker, never on it.
    let (anchor, dx) = if best.epoch * 2 > last {
        (HPos::Right, -14)
    } else {
        (HPos::Left, 14)
    };
    let style = TextStyle::from((FONT, 17).into_font().style(FontStyle::Bold))
        .pos(Pos::new(anchor, VPos::Bottom));
    chart
        .draw_series([EmptyElement::at(b) + Text::new(note, (dx, -12), style)])
        .map_err(draw_err)?;
    Ok(())
}

/// An epoch axis label: whole epochs only, so a short run's fractional ticks are not all
/// rounded to repeated numbers.
fn epoch_label(x: &f64) -> String {
    if (x - x.round()).abs() < 1e-6 {
        format!("{x:.0}")
    } else {
        String::new()
    }
}

fn layer_color(kind: &str) -> RGBColor {
    let k = kind.to_ascii_lowercase();
    if k.starts_with("conv") {
        RGBColor(198, 219, 239)
    } else if k.contains("pool") {
        RGBColor(199, 233, 192)
    } else if k.starts_with("linear") {
        RGBColor(253, 208, 162)
    } else if k.starts_with("dropout") {
        RGBColor(218, 218, 235)
    } else {
        RGBColor(240, 240, 240)
    }
}

/// `12345` as `12,345`.
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The layers as a top-to-bottom stack of boxes with output shapes and parameter counts.
pub fn architecture<DB: DrawingBackend<ErrorType: 'static>>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    layers: &[LayerBox],
) -> Result<()> {
    if layers.is_empty() {
        return Err(Error::BadData {
            what: "architecture",
            reason: "no layers".into(),
        });
    }
    let body = titled(area, title)?;
    let (w, h) = body.dim_in_pixel();
    let (w, h) = (w as i32, h as i32);
    let footer = 40;
    let slot = (h - footer - 10) / layers.len() as i32;
    let box_h = (slot * 2 / 3).max(20);
    let (x0, x1) = (w / 12, w - w / 12);
    let big = (box_h / 2).clamp(12, 20);
    let name_style = TextStyle::from((FONT, big).into_font().style(FontStyle::Bold))
        .pos(Pos::new(HPos::Left, VPos::Center));
    let kind_style =
        TextStyle::from((FONT, big).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    let right_style =
        TextStyle::from((FONT, big).into_font()).pos(Pos::new(HPos::Right, VPos::Center));
    for (i, l) in layers.iter().enumerate() {
        let y = 10 + i as i32 * slot;
        body.draw(&Rectangle::new(
            [(x0, y), (x1, y + box_h)],
            layer_color(&l.kind).filled(),
        ))
        .map_err(draw_err)?;
        body.draw(&Rectangle::new(
            [(x0, y), (x1, y + box_h)],
            RGBColor(90, 90, 90).stroke_width(1),
        ))
        .map_err(draw_err)?;
        let cy = y + box_h / 2;
        body.draw_text(&l.name, &name_style, (x0 + 12, cy))
            .map_err(draw_err)?;
        body.draw_text(&l.kind, &kind_style, (x0 + 12 + 9 * big / 2 + 20, cy))
            .map_err(draw_err)?;
        let shape = l
            .output_shape
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(" × ");
        let params = if l.params > 0 {
            format!("{}   {} params", shape, thousands(l.params))
        } else {
            shape
        };
        body.draw_text(&params, &right_style, (x1 - 12, cy))
            .map_err(draw_err)?;
        if i + 1 < layers.len() {
            arrow_down(&body, w / 2, y + box_h, y + slot)?;
        }
    }
    let total: usize = layers.iter().map(|l| l.params).sum();
    let style = TextStyle::from((FONT, 19).into_font().style(FontStyle::Bold))
        .pos(Pos::new(HPos::Center, VPos::Center));
    body.draw_text(
        &format!(
            "{} trainable parameters · shapes are per image (channels × height × width)",
            thousands(total)
        ),
        &style,
        (w / 2, h - footer / 2),
    )
    .map_err(draw_err)?;
    area.present().map_err(draw_err)
}

/// A downward arrow at `x` from `y0` to `y1`, between two layers' boxes.
fn arrow_down<DB: DrawingBackend<ErrorType: 'static>>(
    body: &DrawingArea<DB, Shift>,
    x: i32,
    y0: i32,
    y1: i32,
) -> Result<()> {
    body.draw(&PathElement::new(
        [(x, y0 + 1), (x, y1 - 2)],
        BLACK.stroke_width(2),
    ))
    .map_err(draw_err)?;
    body.draw(&Polygon::new(
        [(x - 6, y1 - 9), (x + 6, y1 - 9), (x, y1 - 1)],
        BLACK.filled(),
    ))
    .map_err(draw_err)
}

/// A confusion matrix of counts (rows: true class, columns: predicted class), coloured on a
/// logarithmic scale so that rare confusions are visible beside the large diagonal.
pub fn confusion_matrix<DB: DrawingBackend<ErrorType: 'static>>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    counts: &[Vec<u64>],
    class_names: &[&str],
) -> Result<()> {
    let n = counts.len();
    if n == 0 || counts.iter().any(|r| r.len() != n) || class_names.len() != n {
        return Err(Error::BadData {
            what: "confusion matrix",
            reason: "matrix must be square with one name per class".into(),
        });
    }
    let body = titled(area, title)?;
    let (w, h) = body.dim_in_pixel();
    let (w, h) = (w as i32, h as i32);
    let digits = class_names.iter().all(|c| c.len() <= 2);
    let left = if digits { 70 } else { 150 };
    let bottom = if digits { 60 } else { 90 };
    let bar_w = 110;
    let size = (w - left - bar_w - 20).min(h - bottom - 30);
    let grid = Grid {
        x: left,
        y: 20,
        cell: size / n as i32,
        n: n as i32,
    };
    let max = counts.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
    draw_cells(&body, &grid, counts, max)?;
    draw_class_labels(&body, &grid, class_names, digits)?;
    draw_count_bar(&body, &grid, max)?;
    area.present().map_err(draw_err)
}

/// Where the confusion matrix's cells lie: top-left corner, cell side, classes.
struct Grid {
    x: i32,
    y: i32,
    cell: i32,
    n: i32,
}

impl Grid {
    fn side(&self) -> i32 {
        self.n * self.cell
    }
}

/// Position of `count` on the logarithmic colour scale up to `max`, in `[0, 1]`.
fn log_scale(count: u64, max: f64) -> f64 {
    (1.0 + count as f64).ln() / (1.0 + max).ln()
}

fn draw_cells<DB: DrawingBackend<ErrorType: 'static>>(
    body: &DrawingArea<DB, Shift>,
    g: &Grid,
    counts: &[Vec<u64>],
    max: f64,
) -> Result<()> {
    let font = if g.n <= 10 { 15 } else { 11 };
    for (r, row) in counts.iter().enumerate() {
        for (c, &v) in row.iter().enumerate() {
            let (x, y) = (g.x + c as i32 * g.cell, g.y + r as i32 * g.cell);
            let tv = log_scale(v, max);
            body.draw(&Rectangle::new(
                [(x, y), (x + g.cell, y + g.cell)],
                sequential(tv).filled(),
            ))
            .map_err(draw_err)?;
            if v > 0 {
                let color = if tv > 0.6 { BLACK } else { WHITE };
                let style = TextStyle::from((FONT, font).into_font())
                    .color(&color)
                    .pos(Pos::new(HPos::Center, VPos::Center));
                body.draw_text(&v.to_string(), &style, (x + g.cell / 2, y + g.cell / 2))
                    .map_err(draw_err)?;
            }
        }
    }
    body.draw(&Rectangle::new(
        [(g.x, g.y), (g.x + g.side(), g.y + g.side())],
        BLACK.stroke_width(1),
    ))
    .map_err(draw_err)
}

/// Row labels (true class) and column labels (predicted class), and the two axis titles.
fn draw_class_labels<DB: DrawingBackend<ErrorType: 'static>>(
    body: &DrawingArea<DB, Shift>,
    g: &Grid,
    class_names: &[&str],
    digits: bool,
) -> Result<()> {
    let lab = TextStyle::from((FONT, 15).into_font());
    for (i, name) in class_names.iter().enumerate() {
        let y = g.y + i as i32 * g.cell + g.cell / 2;
        let row_label = if digits {
            (*name).to_string()
        } else {
            format!("{i} {name}")
        };
        body.draw_text(
            &row_label,
            &lab.pos(Pos::new(HPos::Right, VPos::Center)),
            (g.x - 8, y),
        )
        .map_err(draw_err)?;
        let x = g.x + i as i32 * g.cell + g.cell / 2;
        let col_label = if digits {
            (*name).to_string()
        } else {
            i.to_string()
        };
        body.draw_text(
            &col_label,
            &lab.pos(Pos::new(HPos::Center, VPos::Top)),
            (x, g.y + g.side() + 6),
        )
        .map_err(draw_err)?;
    }
    let axis = TextStyle::from((FONT, 18).into_font().style(FontStyle::Bold));
    body.draw_text(
        "predicted class",
        &axis.pos(Pos::new(HPos::Center, VPos::Top)),
        (g.x + g.side() / 2, g.y + g.side() + 30),
    )
    .map_err(draw_err)?;
    body.draw_text(
        "true",
        &axis.pos(Pos::new(HPos::Right, VPos::Bottom)),
        (g.x - 8, g.y - 2),
    )
    .map_err(draw_err)
}

/// Colour bar beside the grid: ticks at 0, a middle value and the maximum, on the log scale.
fn draw_count_bar<DB: DrawingBackend<ErrorType: 'static>>(
    body: &DrawingArea<DB, Shift>,
    g: &Grid,
    max: f64,
) -> Result<()> {
    let (bx, by, bh) = (g.x + g.side() + 30, g.y, g.side());
    for i in 0..bh {
        let tt = 1.0 - i as f64 / (bh - 1).max(1) as f64;
        body.draw(&Rectangle::new(
            [(bx, by + i), (bx + 22, by + i + 1)],
            sequential(tt).filled(),
        ))
        .map_err(draw_err)?;
    }
    body.draw(&Rectangle::new(
        [(bx, by), (bx + 22, by + bh)],
        BLACK.stroke_width(1),
    ))
    .map_err(draw_err)?;
    let mid = ((1.0 + max).sqrt() - 1.0).round() as u64;
    for v in [0u64, mid, max as u64] {
        let y = by + ((1.0 - log_scale(v, max)) * (bh - 1) as f64) as i32;
        body.draw_text(
            &v.to_string(),
            &TextStyle::from((FONT, 14).into_font()).pos(Pos::new(HPos::Left, VPos::Center)),
            (bx + 28, y),
        )
        .map_err(draw_err)?;
    }
    body.draw_text(
        "count (log)",
        &TextStyle::from((FONT, 14).into_font()).pos(Pos::new(HPos::Left, VPos::Top)),
        (bx - 8, by + bh + 8),
    )
    .map_err(draw_err)
}
