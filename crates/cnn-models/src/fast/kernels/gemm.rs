//! Matrix products through the `gemm` crate, whole or split into row blocks computed in
//! parallel.

use super::{lock, par_for, slots, with_scratch};

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
    /// Rows `r0..r0 + rn` of this matrix.
    fn rows(&self, r0: usize, rn: usize) -> Self {
        Self {
            data: &self.data[(r0 * self.rs).min(self.data.len())..],
            rows: rn,
            ..*self
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
    // Parallelism comes from running images side by side; each GEMM is single-threaded.
    let par = gemm::Parallelism::None;
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

/// Rows of the destination per parallel GEMM block, for a destination `n` columns wide.
/// Fixed by the shape (not derived from the thread count), so each output element is
/// computed by the same calls whatever the machine.
///
/// Each block packs the whole right-hand matrix again, so wide products take blocks of 32
/// rows, which pack half as often as 16 and still give two threads a block each at batch 64.
/// Narrow products (the 10 logits) pack little and keep blocks of 16: `gemm` orders their
/// sums differently from 32's, and the block size is part of the reproducible result.
pub(super) fn row_block(n: usize) -> usize {
    if n >= 32 { 32 } else { 16 }
}

/// [`sgemm`] split into row blocks of the destination, computed in parallel.
pub(crate) fn par_sgemm(dst: &mut [f32], a: Mat<'_>, b: Mat<'_>, accumulate: bool) {
    let (m, n) = (a.rows, b.cols);
    assert!(dst.len() == m * n, "par_sgemm: destination size");
    if m == 0 || n == 0 {
        return;
    }
    let rows = row_block(n);
    let blocks = slots(dst, rows * n);
    par_for(blocks.len(), |i| {
        let r0 = i * rows;
        let rn = rows.min(m - r0);
        sgemm(&mut lock(&blocks[i]), a.rows(r0, rn), b, accumulate);
    });
}

/// Columns of the destination per block of [`par_sgemm_nt`]. Fixed, like [`row_block`].
const COL_BLOCK: usize = 32;

/// `dst (m x n, row-major) += a (m x k, row-major) · wᵀ` for `w` (`n x k`, row-major): a
/// linear layer's forward, split into blocks of `dst`'s columns computed in parallel.
///
/// Both operands run along `k`, so `gemm` would pack `wᵀ` by gathering floats `k` apart
/// (for PyTorch's example net `k` = 9216, a multiple of 4 KiB: every one an L1 miss), and
/// row blocks would each pack all of it again. Here each block transposes its own rows of
/// `w` (the `transpose` crate: cache-blocked) and `gemm` packs contiguous rows, so the
/// weights are read once in all, shared among the threads.
pub(crate) fn par_sgemm_nt(dst: &mut [f32], a: Mat<'_>, w: &[f32]) {
    let (m, k) = (a.rows, a.cols);
    let n = w.len().checked_div(k).unwrap_or(0);
    assert!(
        dst.len() == m * n && n * k == w.len(),
        "par_sgemm_nt: shapes do not agree"
    );
    if m == 0 || n == 0 {
        return;
    }
    // Each block's columns, contiguous: `m x cn` row-major, one block after another.
    let mut parts = vec![0.0; m * n];
    let slots = slots(&mut parts, m * COL_BLOCK);
    par_for(slots.len(), |j| {
        let (c0, cn) = (j * COL_BLOCK, COL_BLOCK.min(n - j * COL_BLOCK));
        let mut part = lock(&slots[j]);
        for (p, d) in part.chunks_exact_mut(cn).zip(dst.chunks_exact(n)) {
            p.copy_from_slice(&d[c0..c0 + cn]);
        }
        with_scratch([k * cn, 0, 0], |wt, _, _| {
            transpose::transpose(&w[c0 * k..][..cn * k], wt, k, cn);
            sgemm(&mut part, a, Mat::row_major(wt, k, cn), true);
        });
    });
    drop(slots);
    for (j, part) in parts.chunks(m * COL_BLOCK).enumerate() {
        let (c0, cn) = (j * COL_BLOCK, COL_BLOCK.min(n - j * COL_BLOCK));
        for (d, p) in dst.chunks_exact_mut(n).zip(part.chunks_exact(cn)) {
            d[c0..c0 + cn].copy_from_slice(p);
        }
    }
}
