//! Random affine (and optionally elastic) augmentation of a training batch: each image
//! rotated, scaled, translated and bent by amounts drawn from the run's generator, resampled
//! bilinearly, on the batch being built.
//!
//! Written by hand: the warp is twenty lines, and a crate (imageproc, say) would bring an
//! image type per picture and its own threads; here the draws come from the run's seeded
//! generator (so a resumed run repeats them) and the work runs on candle's thread pool.

use candle_core::{Device, Tensor};
use cnn_data::Split;

use crate::{Result, Rng};

/// How far each training image may be moved: every amount is drawn uniformly in `±` its
/// value. All zero (the default) means no augmentation.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Affine {
    /// Rotation, in degrees.
    pub rotate: f64,
    /// Relative change of size (0.1: from 90% to 110%).
    pub scale: f64,
    /// Translation along each axis, in pixels (fractions resample between pixels).
    pub translate: f64,
    /// Elastic distortion, in pixels: each point of a 4x4 grid laid over the image moves
    /// along each axis by up to this much, and the pixels between follow smoothly
    /// (bilinearly). A cheap form of Simard et al.'s smoothed random displacement field.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub elastic: f64,
    /// Mirror each (warped) image left to right with probability ½: for pictures whose
    /// mirror image is of the same class (clothes, most photographs), not for digits or
    /// letters.
    #[serde(default, skip_serializing_if = "is_false")]
    pub flip: bool,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

fn is_false(v: &bool) -> bool {
    !*v
}

/// Control points per side of the elastic grid.
const GRID: usize = 4;

/// One image's draws: the affine map and, when elastic, the grid's displacements.
struct Warp {
    m: [f32; 6],
    grid: Option<[[f32; 2]; GRID * GRID]>,
}

impl Affine {
    /// No augmentation.
    pub const NONE: Affine = Affine {
        rotate: 0.0,
        scale: 0.0,
        translate: 0.0,
        elastic: 0.0,
        flip: false,
    };

    /// The augmentation of the MNIST default recipe, chosen on validation data
    /// (`docs/recipe.md`): [`Affine::LIGHT`].
    pub const DIGITS: Affine = Affine::LIGHT;

    /// A light augmentation for handwriting: ±5°, ±5% size, ±1.5 px.
    pub const LIGHT: Affine = Affine {
        rotate: 5.0,
        scale: 0.05,
        translate: 1.5,
        elastic: 0.0,
        flip: false,
    };

    /// Whether this moves images at all.
    pub fn is_none(&self) -> bool {
        *self == Self::NONE
    }

    /// Whether this warps images (rotates, scales, translates or distorts them), mirroring
    /// aside.
    pub fn warps(&self) -> bool {
        !Affine {
            flip: false,
            ..*self
        }
        .is_none()
    }

    /// Draws one image's warp: four draws (angle, scale, x, y), then, when elastic, two
    /// per grid point (x, y), row by row, then, when flipping, one more (heads or tails).
    fn draw(&self, rng: &mut Rng, shape: (usize, usize)) -> Warp {
        let mut sym = |r: f64| f64::from(rng.uniform(-1.0, 1.0)) * r;
        let angle = sym(self.rotate);
        let scale = 1.0 + sym(self.scale);
        let shift = (sym(self.translate), sym(self.translate));
        let mut m = matrix(angle, scale, shift, shape);
        let grid = (self.elastic > 0.0)
            .then(|| std::array::from_fn(|_| [sym(self.elastic) as f32, sym(self.elastic) as f32]));
        if self.flip && rng.uniform(0.0, 1.0) < 0.5 {
            m = mirrored(m, shape.1);
        }
        Warp { m, grid }
    }
}

/// The map from an output pixel to where it is sampled in the source, `[a, b, c, d, e, f]`
/// with `src = (a·x + b·y + c, d·x + e·y + f)`, for the warp
/// `out = centre + scale·R(degrees)·(src − centre) + (tx, ty)`.
fn matrix(
    degrees: f64,
    scale: f64,
    (tx, ty): (f64, f64),
    (rows, cols): (usize, usize),
) -> [f32; 6] {
    let (cx, cy) = ((cols as f64 - 1.0) / 2.0, (rows as f64 - 1.0) / 2.0);
    let angle = degrees.to_radians();
    let (cos, sin) = (angle.cos() / scale, angle.sin() / scale);
    let (ox, oy) = (cx + tx, cy + ty);
    [
        cos as f32,
        sin as f32,
        (cx - cos * ox - sin * oy) as f32,
        -sin as f32,
        cos as f32,
        (cy + sin * ox - cos * oy) as f32,
    ]
}

/// `m` with its output mirrored left to right: output column `x` is sampled where `m`
/// samples column `cols − 1 − x`.
fn mirrored(m: [f32; 6], cols: usize) -> [f32; 6] {
    let last = cols.saturating_sub(1) as f32;
    [
        -m[0],
        m[1],
        m[2] + m[0] * last,
        -m[3],
        m[4],
        m[5] + m[3] * last,
    ]
}

/// Zero border around the source, wide enough that every bilinear sample that is not fully
/// inside the image reads zeros without a bounds check.
const PAD: usize = 2;

/// The grid's displacement at every pixel, bilinear between grid points (which sit evenly
/// from the first pixel to the last): `(dx, dy)` per pixel, row-major.
fn displacement(grid: &[[f32; 2]; GRID * GRID], (rows, cols): (usize, usize)) -> Vec<[f32; 2]> {
    let cell = |n: usize, i: usize| -> (usize, f32) {
        let t = i as f32 * (GRID - 1) as f32 / (n.max(2) - 1) as f32;
        let j = (t as usize).min(GRID - 2);
        (j, t - j as f32)
    };
    let mut out = Vec::with_capacity(rows * cols);
    for y in 0..rows {
        let (gy, fy) = cell(rows, y);
        for x in 0..cols {
            let (gx, fx) = cell(cols, x);
            let at = |r: usize, c: usize, a: usize| grid[(gy + r) * GRID + gx + c][a];
            let d = |a| {
                let top = at(0, 0, a) + (at(0, 1, a) - at(0, 0, a)) * fx;
                let bottom = at(1, 0, a) + (at(1, 1, a) - at(1, 0, a)) * fx;
                top + (bottom - top) * fy
            };
            out.push([d(0), d(1)]);
        }
    }
    out
}

/// Writes `src` warped into `dst` (values in `[0, 1]`), zero outside the source.
fn warp(src: &[u8], (rows, cols): (usize, usize), w: &Warp, dst: &mut [f32]) {
    let (pw, ph) = (cols + 2 * PAD, rows + 2 * PAD);
    let mut padded = vec![0f32; pw * ph];
    for (y, row) in src.chunks_exact(cols).enumerate() {
        let start = (y + PAD) * pw + PAD;
        for (p, &v) in padded[start..start + cols].iter_mut().zip(row) {
            *p = f32::from(v) / 255.0;
        }
    }
    let field = w.grid.as_ref().map(|g| displacement(g, (rows, cols)));
    let m = &w.m;
    // Coordinates beyond these fall in the border: clamped, they still read only zeros.
    let (max_x, max_y) = ((pw - 2) as f32, (ph - 2) as f32);
    for y in 0..rows {
        let yf = y as f32;
        let (bx, by) = (m[1] * yf + m[2] + PAD as f32, m[4] * yf + m[5] + PAD as f32);
        for x in 0..cols {
            let xf = x as f32;
            let (mut sx, mut sy) = (m[0] * xf + bx, m[3] * xf + by);
            if let Some(field) = &field {
                let [dx, dy] = field[y * cols + x];
                (sx, sy) = (sx + dx, sy + dy);
            }
            let (sx, sy) = (sx.clamp(0.0, max_x), sy.clamp(0.0, max_y));
            let (x0, y0) = (sx as usize, sy as usize);
            let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
            let i = y0 * pw + x0;
            let top = padded[i] + (padded[i + 1] - padded[i]) * fx;
            let bottom = padded[i + pw] + (padded[i + pw + 1] - padded[i + pw]) * fx;
            dst[y * cols + x] = top + (bottom - top) * fy;
        }
    }
}

/// Items `indices` of `split` as an `N x channels x rows x cols` batch in `[0, 1]`, each
/// warped (all its channels alike) by
/// its own random warp. The draws are made in item order from `rng` (four per item, more
/// when elastic),
/// then the images are warped in parallel, so the batch does not depend on the threads.
pub fn affine_batch(
    split: &Split,
    indices: &[usize],
    affine: &Affine,
    rng: &mut Rng,
    device: &Device,
) -> Result<Tensor> {
    let shape = (split.rows(), split.cols());
    let n = split.pixels_per_image();
    let warps: Vec<Warp> = indices.iter().map(|_| affine.draw(rng, shape)).collect();
    let mut values = vec![0f32; indices.len() * n];
    let plane = shape.0 * shape.1;
    cnn_models::par::for_each_piece(&mut values, n, |k, dst| {
        let src = split.image(indices[k]);
        for (src, dst) in src.chunks(plane).zip(dst.chunks_mut(plane)) {
            warp(src, shape, &warps[k], dst);
        }
    });
    Ok(Tensor::from_vec(
        values,
        crate::batch::batch_shape(split, indices.len()),
        device,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(m: [f32; 6]) -> Warp {
        Warp { m, grid: None }
    }

    #[test]
    fn mirroring_alone_is_no_warp() {
        let flip = Affine {
            flip: true,
            ..Affine::NONE
        };
        let elastic = Affine {
            elastic: 1.0,
            ..Affine::NONE
        };
        assert!(!Affine::NONE.warps() && !flip.warps() && !flip.is_none());
        assert!(Affine::LIGHT.warps() && elastic.warps());
    }

    #[test]
    fn the_identity_warp_gives_the_image_back() {
        let src: Vec<u8> = (0..35).map(|i| (i * 7) as u8).collect();
        let mut dst = vec![0f32; 35];
        let mut rng = Rng::new(1);
        let m = Affine::NONE.draw(&mut rng, (5, 7));
        warp(&src, (5, 7), &m, &mut dst);
        for (a, b) in src.iter().zip(&dst) {
            assert!((f32::from(*a) / 255.0 - b).abs() < 1e-6);
        }
    }

    #[test]
    fn a_quarter_turn_moves_a_corner_to_the_next_and_a_shift_moves_by_pixels() {
        let mut src = vec![0u8; 9];
        src[0] = 255;
        let mut dst = vec![0f32; 9];
        warp(
            &src,
            (3, 3),
            &flat(matrix(90.0, 1.0, (0.0, 0.0), (3, 3))),
            &mut dst,
        );
        let lit: Vec<usize> = (0..9).filter(|&i| dst[i] > 0.99).collect();
        assert_eq!(lit, [2], "{dst:?}");
        warp(
            &src,
            (3, 3),
            &flat(matrix(0.0, 1.0, (1.0, 2.0), (3, 3))),
            &mut dst,
        );
        let lit: Vec<usize> = (0..9).filter(|&i| dst[i] > 0.99).collect();
        assert_eq!(lit, [7], "{dst:?}");
        // Half a pixel: shared between two pixels.
        warp(
            &src,
            (3, 3),
            &flat(matrix(0.0, 1.0, (0.5, 0.0), (3, 3))),
            &mut dst,
        );
        assert!(
            (dst[0] - 0.5).abs() < 1e-6 && (dst[1] - 0.5).abs() < 1e-6,
            "{dst:?}"
        );
    }

    #[test]
    fn a_mirrored_warp_reads_each_row_backwards_and_flipping_mirrors_about_half() {
        let src: Vec<u8> = (0..12).map(|i| (i * 20) as u8).collect();
        let mut dst = vec![0f32; 12];
        let identity = matrix(0.0, 1.0, (0.0, 0.0), (3, 4));
        warp(&src, (3, 4), &flat(mirrored(identity, 4)), &mut dst);
        for y in 0..3 {
            for x in 0..4 {
                let want = f32::from(src[y * 4 + 3 - x]) / 255.0;
                assert!((dst[y * 4 + x] - want).abs() < 1e-6, "{dst:?}");
            }
        }
        let flip = Affine {
            flip: true,
            ..Affine::NONE
        };
        let mut rng = Rng::new(3);
        let flipped = (0..1000)
            .filter(|_| flip.draw(&mut rng, (3, 4)).m[0] < 0.0)
            .count();
        assert!((400..600).contains(&flipped), "{flipped} of 1000 mirrored");
    }

    #[test]
    fn an_even_elastic_field_is_a_shift_and_a_bent_one_passes_through_its_grid_points() {
        let src: Vec<u8> = (0..64).map(|i| (i * 37 % 251) as u8).collect();
        let identity = matrix(0.0, 1.0, (0.0, 0.0), (8, 8));
        let even = Warp {
            m: identity,
            grid: Some([[1.0, -2.0]; GRID * GRID]),
        };
        let (mut bent, mut shifted) = (vec![0f32; 64], vec![0f32; 64]);
        warp(&src, (8, 8), &even, &mut bent);
        warp(
            &src,
            (8, 8),
            &flat(matrix(0.0, 1.0, (-1.0, 2.0), (8, 8))),
            &mut shifted,
        );
        for (a, b) in bent.iter().zip(&shifted) {
            assert!((a - b).abs() < 1e-6, "{bent:?} vs {shifted:?}");
        }
        // On a 10x10 image the grid points sit at pixels 0, 3, 6 and 9.
        let grid: [[f32; 2]; GRID * GRID] = std::array::from_fn(|i| [i as f32, -(i as f32)]);
        let field = displacement(&grid, (10, 10));
        for (gy, gx) in [(0, 0), (1, 2), (3, 3), (2, 1)] {
            let at = field[3 * gy * 10 + 3 * gx];
            let want = grid[gy * GRID + gx];
            assert!((at[0] - want[0]).abs() < 1e-5 && (at[1] - want[1]).abs() < 1e-5);
        }
        // Halfway between two grid points along a row: the mean of the two.
        let mid = displacement(&grid, (7, 7))[1];
        assert!((mid[0] - 0.5).abs() < 1e-5, "{mid:?}");
    }
}
