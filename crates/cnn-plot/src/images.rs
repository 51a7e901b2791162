//! Figures made of small images: labelled digit grids, kernel heat maps, feature maps.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::{Digit, Error, FONT, Result, diverging, draw_err, sequential, titled};

/// Fills `area` (a square region in pixels) with a `side x side` image, one rectangle per
/// pixel, coloured by `color(value)`.
fn draw_pixels<DB: DrawingBackend<ErrorType: 'static>>(
    area: &DrawingArea<DB, Shift>,
    at: (i32, i32),
    size: i32,
    values: &[f32],
    side: usize,
    color: impl Fn(f32) -> RGBColor,
) -> Result<()> {
    let n = values.len().min(side * side);
    draw_indexed(area, at, size, (side, n), |i| color(values[i]))
}

/// Draws an image: `side x side` grayscale bytes as ink dark on a light page (as digits are
/// usually seen), or three `side x side` planes (red, green, blue) in their own colours.
fn draw_image<DB: DrawingBackend<ErrorType: 'static>>(
    area: &DrawingArea<DB, Shift>,
    at: (i32, i32),
    size: i32,
    pixels: &[u8],
    side: usize,
) -> Result<()> {
    let plane = side * side;
    if pixels.len() == 3 * plane {
        return draw_indexed(area, at, size, (side, plane), |i| {
            RGBColor(pixels[i], pixels[plane + i], pixels[2 * plane + i])
        });
    }
    draw_indexed(area, at, size, (side, pixels.len().min(plane)), |i| {
        let g = 255 - pixels.get(i).copied().unwrap_or(0);
        RGBColor(g, g, g)
    })
}

/// Fills the first `count` cells of a `side x side` grid of rectangles, pixel `i`
/// (row-major) coloured `color(i)`.
fn draw_indexed<DB: DrawingBackend<ErrorType: 'static>>(
    area: &DrawingArea<DB, Shift>,
    (x0, y0): (i32, i32),
    size: i32,
    (side, count): (usize, usize),
    color: impl Fn(usize) -> RGBColor,
) -> Result<()> {
    let cell = size as f64 / side as f64;
    for i in 0..count {
        let (r, c) = ((i / side) as f64, (i % side) as f64);
        let a = (
            x0 + (c * cell).floor() as i32,
            y0 + (r * cell).floor() as i32,
        );
        let b = (
            x0 + ((c + 1.0) * cell).ceil() as i32,
            y0 + ((r + 1.0) * cell).ceil() as i32,
        );
        area.draw(&Rectangle::new([a, b], color(i).filled()))
            .map_err(draw_err)?;
    }
    Ok(())
}

/// A vertical colour bar with labelled ends and middle, `t` mapping `[0, 1]` bottom to top.
fn colorbar<DB: DrawingBackend<ErrorType: 'static>>(
    area: &DrawingArea<DB, Shift>,
    (x, y, w, h): (i32, i32, i32, i32),
    color: impl Fn(f64) -> RGBColor,
    labels: [String; 3],
    caption: &str,
) -> Result<()> {
    for i in 0..h {
        let t = 1.0 - i as f64 / (h - 1).max(1) as f64;
        area.draw(&Rectangle::new(
            [(x, y + i), (x + w, y + i + 1)],
            color(t).filled(),
        ))
        .map_err(draw_err)?;
    }
    area.draw(&Rectangle::new(
        [(x, y), (x + w, y + h)],
        BLACK.stroke_width(1),
    ))
    .map_err(draw_err)?;
    let style = TextStyle::from((FONT, 15).into_font()).color(&BLACK);
    for (label, frac) in labels.iter().zip([1.0, 0.5, 0.0]) {
        let ly = y + ((1.0 - frac) * h as f64) as i32 - 8;
        area.draw_text(label, &style, (x + w + 6, ly))
            .map_err(draw_err)?;
    }
    let cap = TextStyle::from((FONT, 15).into_font()).color(&BLACK);
    area.draw_text(caption, &cap, (x - 10, y + h + 10))
        .map_err(draw_err)?;
    Ok(())
}

/// The two label lines of a digit: `T:<truth>` and `P:<prediction>` (with the confidence).
fn lines_of(d: &Digit<'_>) -> [String; 2] {
    let confidence = d
        .confidence
        .map(|c| format!(" {:.0}%", 100.0 * c))
        .unwrap_or_default();
    [
        format!("T:{}", d.truth),
        format!("P:{}{confidence}", d.predicted),
    ]
}

/// Whether labels take two lines, and one font size for the whole grid, from its longest
/// label and the cell width: "T:7 P:7" fits on one line; long class names (Fashion-MNIST)
/// get a line each for the truth and the prediction, so the text stays legible instead of
/// shrinking.
fn label_layout(digits: &[Digit<'_>], cell_w: i32) -> (bool, i32) {
    let fit = |chars: usize, max: i32| (cell_w * 16 / (chars as i32 * 10).max(1)).clamp(10, max);
    let longest_one = digits
        .iter()
        .map(|d| lines_of(d).iter().map(|l| l.chars().count()).sum::<usize>() + 1)
        .max()
        .unwrap_or(1);
    let longest_part = digits
        .iter()
        .flat_map(|d| lines_of(d).map(|l| l.chars().count()))
        .max()
        .unwrap_or(1);
    let two_lines = fit(longest_one, 17) < 13;
    let font_size = if two_lines {
        fit(longest_part, 15)
    } else {
        fit(longest_one, 17)
    };
    (two_lines, font_size)
}

/// A grid of images titled `T:<truth> P:<prediction>` (and the confidence, when given), with
/// wrong predictions in red and framed, so mistakes stand out.
pub fn digit_grid<DB: DrawingBackend<ErrorType: 'static>>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    digits: &[Digit<'_>],
    cols: usize,
) -> Result<()> {
    if digits.is_empty() || cols == 0 {
        return Err(Error::BadData {
            what: "digit grid",
            reason: "no images".into(),
        });
    }
    let body = titled(area, title)?;
    let rows = digits.len().div_ceil(cols);
    let cells = body.split_evenly((rows, cols));
    let cell_w = cells
        .first()
        .map(|c| c.dim_in_pixel().0 as i32)
        .unwrap_or(100);
    let (two_lines, font_size) = label_layout(digits, cell_w);
    for (cell, d) in cells.iter().zip(digits) {
        let (w, h) = cell.dim_in_pixel();
        let lines: Vec<String> = if two_lines {
            lines_of(d).to_vec()
        } else {
            vec![lines_of(d).join(" ")]
        };
        // The label sits tight above its own image and the gap below the image is wider, so
        // a label never reads as the caption of the image above it.
        let line_h = font_size + 3;
        let label_h = line_h * lines.len() as i32 + 3;
        let size = (w as i32 - 8).min(h as i32 - label_h - 14).max(4);
        let x0 = (w as i32 - size) / 2;
        let y0 = label_h;
        let wrong = !d.correct();
        let color = if wrong {
            RGBColor(200, 20, 20)
        } else {
            RGBColor(30, 30, 30)
        };
        let style = TextStyle::from((FONT, font_size).into_font().style(if wrong {
            FontStyle::Bold
        } else {
            FontStyle::Normal
        }))
        .color(&color)
        .pos(plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Center,
            plotters::style::text_anchor::VPos::Top,
        ));
        for (i, line) in lines.iter().enumerate() {
            cell.draw_text(line, &style, (w as i32 / 2, 1 + line_h * i as i32))
                .map_err(draw_err)?;
        }
        draw_image(cell, (x0, y0), size, d.pixels, d.side)?;
        let frame = if wrong {
            color.stroke_width(3)
        } else {
            RGBColor(180, 180, 180).stroke_width(1)
        };
        cell.draw(&Rectangle::new(
            [(x0 - 1, y0 - 1), (x0 + size + 1, y0 + size + 1)],
            frame,
        ))
        .map_err(draw_err)?;
    }
    area.present().map_err(draw_err)
}

/// Heat maps of square kernels (e.g. ten 3x3 first-layer kernels) on one shared, zero-centred
/// diverging scale (blue negative, red positive), each labelled with its index.
///
/// ```no_run
/// // cnn_models::Cnn::kernels(0) gives a network's first-layer kernels in this form.
/// let kernels: Vec<Vec<f32>> = (0..8).map(|i| vec![i as f32 - 4.0; 9]).collect();
/// cnn_plot::save_png("kernels.png", (1000, 470), |area| {
///     cnn_plot::kernel_grid(area, "first-layer kernels", &kernels, 3)
/// })?;
/// # Ok::<(), cnn_plot::Error>(())
/// ```
pub fn kernel_grid<DB: DrawingBackend<ErrorType: 'static>>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    kernels: &[Vec<f32>],
    side: usize,
) -> Result<()> {
    if kernels.is_empty() || kernels.iter().any(|k| k.len() != side * side) {
        return Err(Error::BadData {
            what: "kernel grid",
            reason: format!("expected non-empty {side}x{side} kernels"),
        });
    }
    let body = titled(area, title)?;
    let (bw, _) = body.dim_in_pixel();
    let (grid, bar) = body.split_horizontally(bw as i32 - 140);
    let max = kernels
        .iter()
        .flatten()
        .fold(0f32, |m, v| m.max(v.abs()))
        .max(1e-12);
    let cols = kernels.len().min(5);
    let rows = kernels.len().div_ceil(cols);
    let cells = grid.split_evenly((rows, cols));
    let style = TextStyle::from((FONT, 18).into_font()).color(&BLACK);
    for (i, (cell, k)) in cells.iter().zip(kernels).enumerate() {
        let (w, h) = cell.dim_in_pixel();
        let size = (w as i32 - 20).min(h as i32 - 36).max(4);
        let x0 = (w as i32 - size) / 2;
        cell.draw_text(&format!("kernel {i}"), &style, (x0, 4))
            .map_err(draw_err)?;
        draw_pixels(cell, (x0, 28), size, k, side, |v| {
            diverging(f64::from(v / max))
        })?;
        cell.draw(&Rectangle::new(
            [(x0, 28), (x0 + size, 28 + size)],
            BLACK.stroke_width(1),
        ))
        .map_err(draw_err)?;
    }
    let (_, bh) = bar.dim_in_pixel();
    colorbar(
        &bar,
        (20, 20, 24, bh as i32 - 70),
        |t| diverging(2.0 * t - 1.0),
        [format!("+{max:.2}"), "0".into(), format!("-{max:.2}")],
        "weight",
    )?;
    area.present().map_err(draw_err)
}

/// The first-layer feature maps of one input, on one shared scale, with the input image
/// itself (grayscale, or three RGB planes) in the bottom-right panel (as in the original project).
pub fn feature_maps<DB: DrawingBackend<ErrorType: 'static>>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    maps: &[Vec<f32>],
    map_side: usize,
    original: &[u8],
    original_side: usize,
) -> Result<()> {
    if maps.is_empty()
        || maps.iter().any(|m| m.len() != map_side * map_side)
        || ![1, 3]
            .map(|c| c * original_side * original_side)
            .contains(&original.len())
    {
        return Err(Error::BadData {
            what: "feature maps",
            reason: "maps or image do not match their side lengths".into(),
        });
    }
    let body = titled(area, title)?;
    let (bw, _) = body.dim_in_pixel();
    let (grid, bar) = body.split_horizontally(bw as i32 - 120);
    let cols = 4;
    let rows = (maps.len() + 1).div_ceil(cols);
    let cells = grid.split_evenly((rows, cols));
    let max = maps.iter().flatten().fold(0f32, |m, &v| m.max(v));
    // 0 after ReLU; below zero for tanh, SiLU, GELU or no activation, which a scale from 0
    // would show as 0.
    let low = maps.iter().flatten().fold(0f32, |m, &v| m.min(v));
    let span = (max - low).max(1e-12);
    let style = TextStyle::from((FONT, 16).into_font()).color(&BLACK);
    let place = |cell: &DrawingArea<DB, Shift>| {
        let (w, h) = cell.dim_in_pixel();
        let size = (w as i32 - 16).min(h as i32 - 28).max(4);
        ((w as i32 - size) / 2, size)
    };
    for (i, (cell, m)) in cells.iter().zip(maps).enumerate() {
        let (x0, size) = place(cell);
        cell.draw_text(&format!("map {i}"), &style, (x0, 2))
            .map_err(draw_err)?;
        draw_pixels(cell, (x0, 22), size, m, map_side, |v| {
            sequential(f64::from((v - low) / span))
        })?;
    }
    let last = &cells[rows * cols - 1];
    let (x0, size) = place(last);
    let bold = TextStyle::from((FONT, 16).into_font().style(FontStyle::Bold)).color(&BLACK);
    last.draw_text("input", &bold, (x0, 2)).map_err(draw_err)?;
    draw_image(last, (x0, 22), size, original, original_side)?;
    last.draw(&Rectangle::new(
        [(x0, 22), (x0 + size, 22 + size)],
        BLACK.stroke_width(2),
    ))
    .map_err(draw_err)?;
    let (_, bh) = bar.dim_in_pixel();
    colorbar(
        &bar,
        (16, 20, 24, bh as i32 - 70),
        sequential,
        [
            format!("{max:.2}"),
            // A midpoint within rounding of zero prints as 0.00, not -0.00.
            format!("{:.2}", ((max + low) / 2.0 * 100.0).round() / 100.0 + 0.0),
            if low == 0.0 {
                "0".into()
            } else {
                format!("{low:.2}")
            },
        ],
        "activation",
    )?;
    area.present().map_err(draw_err)
}
