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
    /// The value at the end of the scale: `±scale` for kernels, `0..scale` for maps.
    pub scale: f32,
}

fn tiles(
    values: &[f32],
    (count, rows, cols): (usize, usize, usize),
    scale: f32,
    colour: impl Fn(f64) -> [u8; 3],
) -> Panel {
    let mut rgba = Vec::with_capacity(values.len() * 4);
    for v in values {
        let t = if scale > 0.0 { v / scale } else { 0.0 };
        let [r, g, b] = colour(f64::from(t));
        rgba.extend_from_slice(&[r, g, b, 255]);
    }
    Panel {
        count,
        rows,
        cols,
        rgba,
        scale,
    }
}

/// `values` as `count` tiles of `rows x cols` on the zero-centred diverging scale shared by
/// all of them (blue negative, white zero, red positive), as in the report's kernel figure.
pub fn diverging_tiles(values: &[f32], count: usize, rows: usize, cols: usize) -> Panel {
    let scale = values.iter().fold(0f32, |m, v| m.max(v.abs()));
    tiles(values, (count, rows, cols), scale, cnn_plot::diverging_rgb)
}

/// `values` (non-negative, after ReLU) as `count` tiles on one sequential scale from zero
/// to the largest value of all tiles, as in the report's feature-map figures.
pub fn sequential_tiles(values: &[f32], count: usize, rows: usize, cols: usize) -> Panel {
    let scale = values.iter().fold(0f32, |m, &v| m.max(v));
    tiles(values, (count, rows, cols), scale, cnn_plot::sequential_rgb)
}
