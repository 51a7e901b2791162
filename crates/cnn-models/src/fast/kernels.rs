//! Slice-level CPU kernels of the fast path: im2col, batched GEMM convolution, max-pool.
//!
//! Layout conventions: images are `[B, C, H, W]` row-major; the im2col matrix is
//! `[C*9, B*H*W]`, so one GEMM covers the whole batch. The GEMMs go through the `gemm` crate
//! (the one candle uses), which picks AVX-512, AVX2/FMA or scalar code at run time.

use rayon::prelude::*;

/// Below this many multiply-adds a GEMM runs on one thread: splitting costs more than it saves.
const PARALLEL_FLOPS: usize = 1 << 17;

/// Threads for the GEMMs: candle's own setting (`RAYON_NUM_THREADS` or all cores).
fn threads() -> usize {
    candle_core::utils::get_num_threads().max(1)
}

/// A row-major or transposed view of a matrix held in a slice.
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    /// Stride between rows and between columns, in elements.
    pub rs: usize,
    pub cs: usize,
}

impl<'a> Mat<'a> {
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }
    /// The transpose of a row-major `rows x cols` matrix stored in `data`.
    pub fn transposed(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self {
            data,
            rows: cols,
            cols: rows,
            rs: 1,
            cs: cols,
        }
    }
    fn fits(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1) * self.rs + (self.cols - 1) * self.cs < self.data.len()
    }
}

/// `dst (m x n, row-major) = a · b`, or `dst += a · b` when `accumulate`.
pub(crate) fn sgemm(dst: &mut [f32], a: Mat<'_>, b: Mat<'_>, accumulate: bool) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert!(
        b.rows == k && dst.len() == m * n && a.fits() && b.fits(),
        "sgemm: shapes do not agree"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst.fill(0.0);
        }
        return;
    }
    let par = if m * n * k >= PARALLEL_FLOPS && threads() > 1 {
        gemm::Parallelism::Rayon(threads())
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the assert above checks that every index the strides can reach lies inside
    // `a.data`, `b.data` and `dst`; `dst` is exclusively borrowed and does not alias them.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

/// Shape of a 3x3, padding 1, stride 1 convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConvShape {
    pub batch: usize,
    pub c_in: usize,
    pub c_out: usize,
    pub h: usize,
    pub w: usize,
}

impl ConvShape {
    pub fn hw(&self) -> usize {
        self.h * self.w
    }
    /// Rows of the im2col matrix.
    pub fn k(&self) -> usize {
        self.c_in * 9
    }
    /// Columns of the im2col matrix.
    pub fn cols(&self) -> usize {
        self.batch * self.hw()
    }
}

/// `col[(ci*3+kh)*3+kw][n*HW + y*W + x] = x[n][ci][y+kh-1][x+kw-1]` (zero outside).
pub(crate) fn im2col(x: &[f32], s: ConvShape, col: &mut [f32]) {
    let (h, w, hw, cols) = (s.h, s.w, s.hw(), s.cols());
    col.par_chunks_mut(cols).enumerate().for_each(|(k, row)| {
        let (ci, kh, kw) = (k / 9, (k / 3) % 3, k % 3);
        for n in 0..s.batch {
            let src = &x[(n * s.c_in + ci) * hw..][..hw];
            let dst = &mut row[n * hw..][..hw];
            for y in 0..h {
                let sy = y as isize + kh as isize - 1;
                let out = &mut dst[y * w..][..w];
                if sy < 0 || sy >= h as isize {
                    out.fill(0.0);
                    continue;
                }
                let line = &src[sy as usize * w..][..w];
                // Column shift by kw-1 with zero fill at the border.
                match kw {
                    0 => {
                        out[0] = 0.0;
                        out[1..].copy_from_slice(&line[..w - 1]);
                    }
                    1 => out.copy_from_slice(line),
                    _ => {
                        out[..w - 1].copy_from_slice(&line[1..]);
                        out[w - 1] = 0.0;
                    }
                }
            }
        }
    });
}

/// Adds the columns of `dcol` back into image gradients: the adjoint of [`im2col`].
pub(crate) fn col2im(dcol: &[f32], s: ConvShape, dx: &mut [f32]) {
    let (h, w, hw, cols) = (s.h, s.w, s.hw(), s.cols());
    dx.par_chunks_mut(hw).enumerate().for_each(|(nc, plane)| {
        let (n, ci) = (nc / s.c_in, nc % s.c_in);
        plane.fill(0.0);
        for kh in 0..3 {
            for kw in 0..3 {
                let row = &dcol[(ci * 9 + kh * 3 + kw) * cols + n * hw..][..hw];
                for y in 0..h {
                    let sy = y as isize + kh as isize - 1;
                    if sy < 0 || sy >= h as isize {
                        continue;
                    }
                    let src = &row[y * w..][..w];
                    let dst = &mut plane[sy as usize * w..][..w];
                    match kw {
                        0 => dst[..w - 1]
                            .iter_mut()
                            .zip(&src[1..])
                            .for_each(|(d, v)| *d += v),
                        1 => dst.iter_mut().zip(src).for_each(|(d, v)| *d += v),
                        _ => dst[1..]
                            .iter_mut()
                            .zip(&src[..w - 1])
                            .for_each(|(d, v)| *d += v),
                    }
                }
            }
        }
    });
}

/// Forward: `out[n][co][p] = relu(Σ_k w[co][k]·col[k][n*HW+p] + b[co])`. Returns `[B, Co, H, W]`.
pub(crate) fn conv_relu_fwd(x: &[f32], wt: &[f32], bias: &[f32], s: ConvShape) -> Vec<f32> {
    let mut col = vec![0.0; s.k() * s.cols()];
    im2col(x, s, &mut col);
    let mut y = vec![0.0; s.c_out * s.cols()];
    sgemm(
        &mut y,
        Mat::row_major(wt, s.c_out, s.k()),
        Mat::row_major(&col, s.k(), s.cols()),
        false,
    );
    drop(col);
    let hw = s.hw();
    let mut out = vec![0.0; s.batch * s.c_out * hw];
    out.par_chunks_mut(hw).enumerate().for_each(|(nc, plane)| {
        let (n, co) = (nc / s.c_out, nc % s.c_out);
        let b = bias[co];
        let src = &y[co * s.cols() + n * hw..][..hw];
        plane
            .iter_mut()
            .zip(src)
            .for_each(|(o, v)| *o = (v + b).max(0.0));
    });
    out
}

/// `dz[co][n*HW+p] = grad[n][co][p]` where `out[n][co][p] > 0`, else 0: the gradient at the
/// pre-activation, in GEMM layout.
pub(crate) fn relu_grad_to_cols(grad: &[f32], out: &[f32], s: ConvShape) -> Vec<f32> {
    let (hw, cols) = (s.hw(), s.cols());
    let mut dz = vec![0.0; s.c_out * cols];
    dz.par_chunks_mut(cols).enumerate().for_each(|(co, row)| {
        for n in 0..s.batch {
            let off = (n * s.c_out + co) * hw;
            let (g, o) = (&grad[off..][..hw], &out[off..][..hw]);
            for ((d, &g), &o) in row[n * hw..][..hw].iter_mut().zip(g).zip(o) {
                *d = if o > 0.0 { g } else { 0.0 };
            }
        }
    });
    dz
}

/// Weight gradient `[Co, Ci*9]` = `dz · col(x)ᵀ`.
pub(crate) fn conv_weight_grad(dz: &[f32], x: &[f32], s: ConvShape) -> Vec<f32> {
    let mut col = vec![0.0; s.k() * s.cols()];
    im2col(x, s, &mut col);
    let mut dw = vec![0.0; s.c_out * s.k()];
    sgemm(
        &mut dw,
        Mat::row_major(dz, s.c_out, s.cols()),
        Mat::transposed(&col, s.k(), s.cols()),
        false,
    );
    dw
}

/// Input gradient `[B, Ci, H, W]` = col2im(`wᵀ · dz`).
pub(crate) fn conv_input_grad(dz: &[f32], wt: &[f32], s: ConvShape) -> Vec<f32> {
    let mut dcol = vec![0.0; s.k() * s.cols()];
    sgemm(
        &mut dcol,
        Mat::transposed(wt, s.c_out, s.k()),
        Mat::row_major(dz, s.c_out, s.cols()),
        false,
    );
    let mut dx = vec![0.0; s.batch * s.c_in * s.hw()];
    col2im(&dcol, s, &mut dx);
    dx
}

/// 2x2, stride 2 max-pool of `planes` planes of `h x w` (odd edges dropped, as in candle).
pub(crate) fn maxpool2_fwd(x: &[f32], planes: usize, h: usize, w: usize) -> Vec<f32> {
    let (oh, ow) = (h / 2, w / 2);
    let mut out = vec![0.0; planes * oh * ow];
    if oh * ow == 0 {
        return out;
    }
    out.par_chunks_mut(oh * ow).enumerate().for_each(|(p, o)| {
        let src = &x[p * h * w..][..h * w];
        for y in 0..oh {
            let (r0, r1) = (&src[2 * y * w..][..w], &src[(2 * y + 1) * w..][..w]);
            for xo in 0..ow {
                let a = r0[2 * xo].max(r0[2 * xo + 1]);
                let b = r1[2 * xo].max(r1[2 * xo + 1]);
                o[y * ow + xo] = a.max(b);
            }
        }
    });
    out
}

/// Routes each pooled gradient to the first position of its window holding the maximum
/// (row-major order), as PyTorch and candle do.
pub(crate) fn maxpool2_bwd(
    x: &[f32],
    out: &[f32],
    grad: &[f32],
    planes: usize,
    h: usize,
    w: usize,
) -> Vec<f32> {
    let (oh, ow) = (h / 2, w / 2);
    let mut dx = vec![0.0; planes * h * w];
    if oh * ow == 0 {
        return dx;
    }
    dx.par_chunks_mut(h * w).enumerate().for_each(|(p, d)| {
        let src = &x[p * h * w..][..h * w];
        let (o, g) = (
            &out[p * oh * ow..][..oh * ow],
            &grad[p * oh * ow..][..oh * ow],
        );
        for y in 0..oh {
            for xo in 0..ow {
                let m = o[y * ow + xo];
                let cands = [
                    2 * y * w + 2 * xo,
                    2 * y * w + 2 * xo + 1,
                    (2 * y + 1) * w + 2 * xo,
                    (2 * y + 1) * w + 2 * xo + 1,
                ];
                let at = cands
                    .iter()
                    .copied()
                    .find(|&i| src[i] == m)
                    .unwrap_or(cands[0]);
                d[at] += g[y * ow + xo];
            }
        }
    });
    dx
}
