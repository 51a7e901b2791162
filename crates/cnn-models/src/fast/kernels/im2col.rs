//! One image's im2col matrix, and its adjoint col2im, written into a group's matrix: as
//! shifted spans for same-padded stride-1 convolutions, row by row for any other.

use super::ConvShape;

/// Where one image's columns sit in a group's matrix: `[rows, ld]` row-major, the image's
/// `H*W` columns starting at column `off` of every row. Images of a group are multiplied
/// side by side, so each GEMM is `GROUP` times wider than one image's.
#[derive(Clone, Copy)]
pub(super) struct Cols {
    /// Columns of the group's matrix.
    pub(super) ld: usize,
    /// The image's first column.
    pub(super) off: usize,
}

impl Cols {
    /// Row `r` of this image's part: `hw` values.
    pub(super) fn row(self, r: usize, hw: usize) -> std::ops::Range<usize> {
        r * self.ld + self.off..r * self.ld + self.off + hw
    }
}

/// How im2col row `(kh, kw)` reads its input plane: row-major, output position `j` reads
/// input position `j + shift`, except in the columns on either side that the kernel's
/// horizontal offset pushes off the image (`x < left` and `x >= w - right`), which are zero.
///
/// Taking the whole plane as one shifted span (rather than one short copy per image row)
/// makes each im2col row a single `memcpy` of about `H*W` floats: with rows of 7 to 28
/// floats, the per-row copies had cost a fifth of a training step.
pub(super) struct Tap {
    shift: isize,
    left: usize,
    right: usize,
}

impl Tap {
    fn new(s: ConvShape, kh: usize, kw: usize) -> Self {
        let p = s.pad as isize;
        let (dy, dx) = (kh as isize - p, kw as isize - p);
        Tap {
            shift: dy * s.w as isize + dx,
            left: (-dx).max(0) as usize,
            right: dx.max(0) as usize,
        }
    }

    /// Output positions `j` whose input `j + shift` lies in a plane of `hw` values.
    fn span(&self, hw: usize) -> std::ops::Range<usize> {
        let lo = (-self.shift).max(0) as usize;
        let hi = (hw as isize - self.shift).clamp(0, hw as isize) as usize;
        lo.min(hi)..hi
    }

    /// Sets the columns off the image to zero, in every image row of `row`.
    fn clear_edges(&self, row: &mut [f32], w: usize) {
        if self.left + self.right == 0 {
            return;
        }
        // Column by column, as strided stores: a `fill` per image row of one or two floats
        // becomes a `memset` call each, as costly as the copies this layout saves.
        let columns = (0..self.left.min(w)).chain(w - self.right.min(w)..w);
        for x in columns {
            row.iter_mut().skip(x).step_by(w).for_each(|v| *v = 0.0);
        }
    }
}

/// One image's im2col: `col[(ci*k+kh)*k+kw][y*W + x] = x[ci][y+kh-p][x+kw-p]`, zero outside,
/// written at `at` of a group's matrix.
pub(super) fn im2col(x: &[f32], s: ConvShape, col: &mut [f32], at: Cols) {
    if !s.is_same() {
        return im2col_strided(x, s, col, at);
    }
    let (hw, k) = (s.in_hw(), s.kernel);
    let mut r = 0;
    for plane in x.chunks_exact(hw).take(s.c_in) {
        for kh in 0..k {
            for kw in 0..k {
                let tap = Tap::new(s, kh, kw);
                let out = &mut col[at.row(r, hw)];
                r += 1;
                let span = tap.span(hw);
                out[..span.start].fill(0.0);
                if !span.is_empty() {
                    let src = (span.start as isize + tap.shift) as usize;
                    out[span.clone()].copy_from_slice(&plane[src..][..span.len()]);
                }
                out[span.end..].fill(0.0);
                tap.clear_edges(out, s.w);
            }
        }
    }
}

/// Adds one image's column gradients (at `at` of a group's matrix) back into its input
/// gradient: the adjoint of [`im2col`].
///
/// Each row is added as one shifted span, after zeroing (in `dcol`, which is scratch) the
/// entries im2col left zero: those would otherwise land on the wrong side of the image. A
/// zero added changes no sum, so the result is the same as adding the valid entries only.
pub(super) fn col2im(dcol: &mut [f32], s: ConvShape, dx: &mut [f32], at: Cols) {
    if !s.is_same() {
        return col2im_strided(dcol, s, dx, at);
    }
    let (hw, k) = (s.in_hw(), s.kernel);
    dx.fill(0.0);
    for r in 0..s.k() {
        let (ci, kh, kw) = (r / (k * k), (r / k) % k, r % k);
        let tap = Tap::new(s, kh, kw);
        let row = &mut dcol[at.row(r, hw)];
        tap.clear_edges(row, s.w);
        let span = tap.span(hw);
        if span.is_empty() {
            continue;
        }
        let dst = (span.start as isize + tap.shift) as usize;
        let plane = &mut dx[ci * hw..][..hw];
        plane[dst..][..span.len()]
            .iter_mut()
            .zip(&row[span])
            .for_each(|(d, v)| *d += v);
    }
}

/// Where output row `o` of a window row or column at offset `t` reads its input: the
/// outputs `lo..hi` read inside the image, at `o * stride + t - pad`.
fn valid_outputs(t: usize, s: ConvShape, side: usize, outs: usize) -> (usize, usize) {
    // Output o reads o·stride + t - pad: inside from the first o with o·stride ≥ pad - t,
    // up to the first o with o·stride ≥ side + pad - t (in closed form: this runs per row).
    let first_at_least = |n: usize| n.div_ceil(s.stride).min(outs);
    let lo = first_at_least(s.pad.saturating_sub(t));
    let hi = first_at_least((side + s.pad).saturating_sub(t)).max(lo);
    (lo, hi)
}

/// [`im2col`] for any stride and padding: each output row of each tap is the valid span of
/// one input row (a copy at stride 1, a strided gather otherwise), zeros around it.
fn im2col_strided(x: &[f32], s: ConvShape, col: &mut [f32], at: Cols) {
    let (ohw, ow, k) = (s.out_hw(), s.ow(), s.kernel);
    let mut r = 0;
    for plane in x.chunks_exact(s.in_hw()).take(s.c_in) {
        for kh in 0..k {
            let (ylo, yhi) = valid_outputs(kh, s, s.h, s.oh());
            for kw in 0..k {
                let (xlo, xhi) = valid_outputs(kw, s, s.w, ow);
                let out = &mut col[at.row(r, ohw)];
                r += 1;
                out[..ylo * ow].fill(0.0);
                out[yhi * ow..].fill(0.0);
                for oy in ylo..yhi {
                    let row = &mut out[oy * ow..][..ow];
                    let iy = oy * s.stride + kh - s.pad;
                    row[..xlo].fill(0.0);
                    row[xhi..].fill(0.0);
                    if xhi > xlo {
                        let ix0 = xlo * s.stride + kw - s.pad;
                        let src = &plane[iy * s.w + ix0..];
                        let dst = &mut row[xlo..xhi];
                        gather(dst, src, s.stride);
                    }
                }
            }
        }
    }
}

/// `dst[i] = src[i * stride]`, written out per stride: rows here are 7 to 28 floats, too
/// short for a `memcpy` call (what a plain copy becomes) to pay, and `step_by`'s general
/// form divides per row and copies one float at a time.
fn gather(dst: &mut [f32], src: &[f32], stride: usize) {
    const LANES: usize = 8;
    match stride {
        1 => {
            let src = &src[..dst.len()];
            let mut d = dst.chunks_exact_mut(LANES);
            let mut s = src.chunks_exact(LANES);
            (&mut d).zip(&mut s).for_each(|(d, s)| d.copy_from_slice(s));
            d.into_remainder()
                .iter_mut()
                .zip(s.remainder())
                .for_each(|(d, &v)| *d = v);
        }
        2 => {
            // The last output reads the first of a pair that may be cut off.
            let Some((last, body)) = dst.split_last_mut() else {
                return;
            };
            let pairs = src.chunks_exact(2);
            body.iter_mut().zip(pairs).for_each(|(d, p)| *d = p[0]);
            *last = src[2 * body.len()];
        }
        _ => {
            let taken = src.iter().step_by(stride);
            dst.iter_mut().zip(taken).for_each(|(d, &v)| *d = v);
        }
    }
}

/// The adjoint of [`im2col_strided`].
fn col2im_strided(dcol: &[f32], s: ConvShape, dx: &mut [f32], at: Cols) {
    let (ohw, ow, k) = (s.out_hw(), s.ow(), s.kernel);
    dx.fill(0.0);
    for r in 0..s.k() {
        let (ci, kh, kw) = (r / (k * k), (r / k) % k, r % k);
        let (ylo, yhi) = valid_outputs(kh, s, s.h, s.oh());
        let (xlo, xhi) = valid_outputs(kw, s, s.w, ow);
        if xhi <= xlo {
            continue;
        }
        let row = &dcol[at.row(r, ohw)];
        let plane = &mut dx[ci * s.in_hw()..][..s.in_hw()];
        for oy in ylo..yhi {
            let iy = oy * s.stride + kh - s.pad;
            let ix0 = xlo * s.stride + kw - s.pad;
            let src = &row[oy * ow + xlo..oy * ow + xhi];
            let dst = &mut plane[iy * s.w + ix0..];
            dst.iter_mut()
                .step_by(s.stride)
                .zip(src)
                .for_each(|(d, v)| *d += v);
        }
    }
}
