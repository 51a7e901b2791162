//! Paints kernels and feature maps as RGBA tiles with the report's colour scales
//! (`cnn_plot::diverging` and `cnn_plot::sequential`), so the page and the figures agree.

/// A row of equally sized RGBA tiles, one per kernel or feature map, and the value that the
/// ends of their colour scale stand for.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// Number of tiles.
    pub count: usize,
    /// Rows of each tile.
    pub rows: usize,
    /// Columns of each tile.
    pub cols: usize,
    /// `count * rows * cols * 4` bytes, tile after tile, each row-major RGBA.
    pub rgba: Vec<u8>,
    /// The value at the top of the scale: `±scale` for kernels, `low..scale` for maps.
    pub scale: f32,
    /// The value at the bottom of a map's scale: 0, or the most negative value when an
    /// activation other than ReLU lets maps go below zero (`-scale` for kernels).
    pub low: f32,
}

/// `values` as RGBA tiles, each value's colour `colour(v)`.
fn tiles(
    values: &[f32],
    (count, rows, cols): (usize, usize, usize),
    (low, scale): (f32, f32),
    colour: impl Fn(f32) -> [u8; 3],
) -> Panel {
    let mut rgba = Vec::with_capacity(values.len() * 4);
    for &v in values {
        let [r, g, b] = colour(v);
        rgba.extend_from_slice(&[r, g, b, 255]);
    }
    Panel {
        count,
        rows,
        cols,
        rgba,
        scale,
        low,
    }
}

/// `values` as `count` tiles of `rows x cols` on the zero-centred diverging scale shared by
/// all of them (blue negative, white zero, red positive), as in the report's kernel figure.
pub fn diverging_tiles(values: &[f32], count: usize, rows: usize, cols: usize) -> Panel {
    let scale = values.iter().fold(0f32, |m, v| m.max(v.abs()));
    let t = move |v: f32| if scale > 0.0 { v / scale } else { 0.0 };
    tiles(values, (count, rows, cols), (-scale, scale), |v| {
        cnn_plot::diverging_rgb(f64::from(t(v)))
    })
}

/// `values` as `count` tiles on one sequential scale from zero (or the most negative value,
/// for activations that go below zero) to the largest value of all tiles, as in the
/// report's feature-map figures.
pub fn sequential_tiles(values: &[f32], count: usize, rows: usize, cols: usize) -> Panel {
    let scale = values.iter().fold(0f32, |m, &v| m.max(v));
    let low = values.iter().fold(0f32, |m, &v| m.min(v));
    let span = scale - low;
    tiles(values, (count, rows, cols), (low, scale), |v| {
        let t = if span > 0.0 { (v - low) / span } else { 0.0 };
        cnn_plot::sequential_rgb(f64::from(t))
    })
}
