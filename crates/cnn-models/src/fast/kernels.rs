//! Slice-level CPU kernels of the fast path: im2col, batched GEMM convolution, max-pool.
//!
//! Layout conventions: images are `[B, C, H, W]` row-major; one image's im2col matrix is
//! `[C*k*k, H*W]` for a `k x k` kernel with same padding (`k / 2` on each side), and the
//! images of a group sit side by side in one matrix. The GEMMs go through the `gemm` crate
//! (the one candle uses), which picks AVX-512, AVX2/FMA or scalar kernels at run time (its
//! `x86-v4` feature; never `-C target-cpu`).

use std::mem::MaybeUninit;
use std::sync::Mutex;

/// Runs `f(i)` for every `i` in `0..n` on candle's own CPU thread pool.
///
/// Using candle's pool rather than a second one (rayon's) matters on small machines: candle's
/// workers spin for a while after each of its element-wise ops, and a second pool's threads
/// would compete with them for the same cores.
fn par_for(n: usize, f: impl Fn(usize) + Sync) {
    candle_core::utils::barrier_pool().execute_chunked(n, |range| range.for_each(&f));
}

/// Splits `data` into `len`-sized pieces that parallel workers can each lock (uncontended).
fn slots<T>(data: &mut [T], len: usize) -> Vec<Mutex<&mut [T]>> {
    if len == 0 {
        return Vec::new();
    }
    data.chunks_mut(len).map(Mutex::new).collect()
}

/// Locks a slot; a poisoned lock only means another worker panicked, and its data is ours.
fn lock<'a, 'b, T>(m: &'a Mutex<&'b mut [T]>) -> std::sync::MutexGuard<'a, &'b mut [T]> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
fn row_block(n: usize) -> usize {
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

/// Shape of a `kernel x kernel`, same-padding, stride 1 convolution (`kernel` odd).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConvShape {
    pub batch: usize,
    pub c_in: usize,
    pub c_out: usize,
    pub h: usize,
    pub w: usize,
    pub kernel: usize,
}

impl ConvShape {
    pub fn hw(&self) -> usize {
        self.h * self.w
    }
    /// Rows of one image's im2col matrix.
    pub fn k(&self) -> usize {
        self.c_in * self.kernel * self.kernel
    }
    /// Zero padding on each side.
    fn pad(&self) -> usize {
        self.kernel / 2
    }
    /// Values per output image: `Co*H*W`, or `Co*(H/2)*(W/2)` when pooled.
    pub fn out_len(&self, pool: bool) -> usize {
        if pool {
            self.c_out * (self.h / 2) * (self.w / 2)
        } else {
            self.c_out * self.hw()
        }
    }
}

/// Images per GEMM and per unit of parallel work. Fixed (not derived from the thread count),
/// so that every output and weight gradient is summed in the same order whatever the number
/// of threads: runs are reproducible.
const GROUP: usize = 4;

thread_local! {
    /// Per-thread scratch (im2col matrix, pre-activations, column gradients): reused across
    /// calls so a training step does not fault in fresh pages for its temporaries.
    static SCRATCH: std::cell::RefCell<[Vec<f32>; 3]> = const { std::cell::RefCell::new([Vec::new(), Vec::new(), Vec::new()]) };
}

fn with_scratch<R>(
    sizes: [usize; 3],
    f: impl FnOnce(&mut [f32], &mut [f32], &mut [f32]) -> R,
) -> R {
    SCRATCH.with(|cell| {
        let mut bufs = cell.borrow_mut();
        for (b, &n) in bufs.iter_mut().zip(&sizes) {
            if b.len() < n {
                b.resize(n, 0.0);
            }
        }
        let [a, b, c] = &mut *bufs;
        f(&mut a[..sizes[0]], &mut b[..sizes[1]], &mut c[..sizes[2]])
    })
}

/// Where one image's columns sit in a group's matrix: `[rows, ld]` row-major, the image's
/// `H*W` columns starting at column `off` of every row. Images of a group are multiplied
/// side by side, so each GEMM is `GROUP` times wider than one image's.
#[derive(Clone, Copy)]
struct Cols {
    ld: usize,
    off: usize,
}

impl Cols {
    /// Row `r` of this image's part: `hw` values.
    fn row(self, r: usize, hw: usize) -> std::ops::Range<usize> {
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
struct Tap {
    shift: isize,
    left: usize,
    right: usize,
}

impl Tap {
    fn new(s: ConvShape, kh: usize, kw: usize) -> Self {
        let p = s.pad() as isize;
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
fn im2col(x: &[f32], s: ConvShape, col: &mut [f32], at: Cols) {
    let (hw, k) = (s.hw(), s.kernel);
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
fn col2im(dcol: &mut [f32], s: ConvShape, dx: &mut [f32], at: Cols) {
    let (hw, k) = (s.hw(), s.kernel);
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

/// Pre-activations of a group of images side by side (`x` holds them one after another):
/// `z[co][i*HW + p] = b[co] + Σ_k w[co][k]·col[k][i*HW + p]`, one GEMM for the group.
fn conv_group(x: &[f32], wt: &[f32], bias: &[f32], s: ConvShape, col: &mut [f32], z: &mut [f32]) {
    let (hw, in_len) = (s.hw(), s.c_in * s.hw());
    let ld = x.len() / in_len * hw;
    for (i, img) in x.chunks_exact(in_len).enumerate() {
        im2col(img, s, col, Cols { ld, off: i * hw });
    }
    for (row, &b) in z.chunks_exact_mut(ld).zip(bias) {
        row.fill(b);
    }
    sgemm(
        z,
        Mat::row_major(wt, s.c_out, s.k()),
        Mat::row_major(col, s.k(), ld),
        true,
    );
}

/// Forward of conv + bias + ReLU, optionally followed by a 2x2 max-pool.
///
/// Returns the output (`[B, Co, H, W]`, or `[B, Co, H/2, W/2]` pooled) and, when pooled and
/// `record`, the position (0..4, row-major in the window) of each window's maximum, for the
/// backward pass (empty otherwise).
pub(crate) fn conv_fwd(
    x: &[f32],
    wt: &[f32],
    bias: &[f32],
    s: ConvShape,
    pool: bool,
    record: bool,
) -> (Vec<f32>, Vec<u8>) {
    let (hw, in_len, out_len) = (s.hw(), s.c_in * s.hw(), s.out_len(pool));
    let n = s.batch * out_len;
    let n_arg = if pool && record { n } else { 0 };
    // Left uninitialised rather than zeroed: every value is written below.
    let mut out: Vec<f32> = Vec::with_capacity(n);
    let mut arg: Vec<u8> = Vec::with_capacity(n_arg);
    {
        let outs = slots(&mut out.spare_capacity_mut()[..n], GROUP * out_len);
        let args = slots(&mut arg.spare_capacity_mut()[..n_arg], GROUP * out_len);
        par_for(s.batch.div_ceil(GROUP), |g| {
            let imgs = GROUP.min(s.batch - g * GROUP);
            let ld = imgs * hw;
            with_scratch([s.k() * ld, s.c_out * ld, 0], |col, z, _| {
                let x = &x[g * GROUP * in_len..][..imgs * in_len];
                conv_group(x, wt, bias, s, col, z);
                let mut o = lock(&outs[g]);
                for (i, o) in o.chunks_exact_mut(out_len).enumerate() {
                    let at = Cols { ld, off: i * hw };
                    if pool && record {
                        pool_relu(z, at, s, o, &mut lock(&args[g])[i * out_len..][..out_len]);
                    } else if pool {
                        pool_relu_values(z, at, s, o);
                    } else {
                        for (co, o) in o.chunks_exact_mut(hw).enumerate() {
                            let z = &z[at.row(co, hw)];
                            o.iter_mut().zip(z).for_each(|(o, &v)| {
                                o.write(v.max(0.0));
                            });
                        }
                    }
                }
            })
        });
    }
    // SAFETY: the groups cover all `batch` images, and for each image the loops above
    // write all `out_len` outputs (every channel's pooled windows, or every pixel) and, when
    // pooled, as many window positions. A panicking worker unwinds through `par_for`
    // before these lines.
    unsafe {
        out.set_len(n);
        arg.set_len(n_arg);
    }
    (out, arg)
}

/// `out = relu(maxpool2(z))` per channel, recording the window position of each maximum
/// (the first one in row-major order on ties, as PyTorch does). Branch-free: which element
/// is largest is data-dependent and would mispredict.
fn pool_relu(
    z: &[f32],
    at: Cols,
    s: ConvShape,
    out: &mut [MaybeUninit<f32>],
    arg: &mut [MaybeUninit<u8>],
) {
    let (w, oh, ow) = (s.w, s.h / 2, s.w / 2);
    for co in 0..s.c_out {
        let plane = &z[at.row(co, s.hw())];
        for y in 0..oh {
            let (r0, r1) = (&plane[2 * y * w..][..w], &plane[(2 * y + 1) * w..][..w]);
            let j0 = (co * oh + y) * ow;
            let (o, a) = (&mut out[j0..][..ow], &mut arg[j0..][..ow]);
            // Pairs of columns as chunks, so LLVM can vectorise the loop.
            let pairs = r0.chunks_exact(2).zip(r1.chunks_exact(2));
            // Plain comparisons rather than f32::max, whose NaN rules block vectorisation.
            for ((o, a), (t, b)) in o.iter_mut().zip(a.iter_mut()).zip(pairs) {
                let (right_top, right_bot) = (t[1] > t[0], b[1] > b[0]);
                let top = if right_top { t[1] } else { t[0] };
                let bot = if right_bot { b[1] } else { b[0] };
                let lower = bot > top;
                a.write(if lower {
                    2 + u8::from(right_bot)
                } else {
                    u8::from(right_top)
                });
                let m = if lower { bot } else { top };
                o.write(if m > 0.0 { m } else { 0.0 });
            }
        }
    }
}

/// [`pool_relu`]'s outputs without the window positions, for a forward pass no backward
/// will follow: the same comparisons, so the same values, and about a third less work.
fn pool_relu_values(z: &[f32], at: Cols, s: ConvShape, out: &mut [MaybeUninit<f32>]) {
    let (w, oh, ow) = (s.w, s.h / 2, s.w / 2);
    for co in 0..s.c_out {
        let plane = &z[at.row(co, s.hw())];
        for y in 0..oh {
            let (r0, r1) = (&plane[2 * y * w..][..w], &plane[(2 * y + 1) * w..][..w]);
            let o = &mut out[(co * oh + y) * ow..][..ow];
            let pairs = r0.chunks_exact(2).zip(r1.chunks_exact(2));
            for (o, (t, b)) in o.iter_mut().zip(pairs) {
                let top = if t[1] > t[0] { t[1] } else { t[0] };
                let bot = if b[1] > b[0] { b[1] } else { b[0] };
                let m = if bot > top { bot } else { top };
                o.write(if m > 0.0 { m } else { 0.0 });
            }
        }
    }
}

/// Gradient at the pre-activations `z` of one image (written at `at` of its group's
/// matrix), from the output gradient `g`.
fn grad_to_z(g: &[f32], out: &[f32], arg: Option<&[u8]>, s: ConvShape, dz: &mut [f32], at: Cols) {
    let hw = s.hw();
    match arg {
        None => {
            for co in 0..s.c_out {
                let (g, o) = (&g[co * hw..][..hw], &out[co * hw..][..hw]);
                dz[at.row(co, hw)]
                    .iter_mut()
                    .zip(g.iter().zip(o))
                    .for_each(|(d, (&g, &o))| *d = if o > 0.0 { g } else { 0.0 });
            }
        }
        Some(arg) => {
            let (w, oh, ow) = (s.w, s.h / 2, s.w / 2);
            for co in 0..s.c_out {
                let plane = &mut dz[at.row(co, hw)];
                // A last row or column that no window covers (odd sides) gets no gradient.
                plane[2 * oh * w..].fill(0.0);
                if w % 2 == 1 {
                    plane[..2 * oh * w]
                        .iter_mut()
                        .skip(w - 1)
                        .step_by(w)
                        .for_each(|v| *v = 0.0);
                }
                let j0 = co * oh * ow;
                for y in 0..oh {
                    let (top, bot) = plane[2 * y * w..][..2 * w].split_at_mut(w);
                    let j = j0 + y * ow;
                    let windows = out[j..][..ow]
                        .iter()
                        .zip(&arg[j..][..ow])
                        .zip(&g[j..][..ow]);
                    // Every window position written (the gradient or zero) rather than a fill
                    // then a scattered store: one pass, branch-free, over the plane.
                    let pairs = top.chunks_exact_mut(2).zip(bot.chunks_exact_mut(2));
                    for ((t, b), ((&o, &a), &g)) in pairs.zip(windows) {
                        let v = if o > 0.0 { g } else { 0.0 };
                        t[0] = if a == 0 { v } else { 0.0 };
                        t[1] = if a == 1 { v } else { 0.0 };
                        b[0] = if a == 2 { v } else { 0.0 };
                        b[1] = if a == 3 { v } else { 0.0 };
                    }
                }
            }
        }
    }
}

/// Adds the sum of each `ld`-long row of `m` to the matching entry of `acc`, each row
/// summed left to right as `row.iter().sum()` would.
///
/// One row at a time, that sum is a single chain of dependent additions (the order is fixed,
/// so the compiler may not reorder it), and a bias gradient of `medium_cnn`'s first layer
/// spent longer in it than in the layer's GEMM. Eight rows advanced side by side keep the
/// same order within each row, hence the same bits, with eight chains in flight.
fn add_row_sums(m: &[f32], ld: usize, acc: &mut [f32]) {
    const CHAINS: usize = 8;
    if ld == 0 {
        return;
    }
    for (rows, acc) in m.chunks(CHAINS * ld).zip(acc.chunks_mut(CHAINS)) {
        let n = rows.len() / ld;
        // Always eight rows (a short tail repeats its last row, and those sums are dropped),
        // so the loop below unrolls and the sums stay in registers.
        let row: [&[f32]; CHAINS] = std::array::from_fn(|t| &rows[t.min(n - 1) * ld..][..ld]);
        let mut sums = [0.0f32; CHAINS];
        // `j` walks eight rows in step; an iterator per row would not unroll into registers.
        #[allow(clippy::needless_range_loop)]
        for j in 0..ld {
            for t in 0..CHAINS {
                sums[t] += row[t][j];
            }
        }
        acc.iter_mut().zip(sums).for_each(|(a, s)| *a += s);
    }
}

/// Gradients of [`conv_fwd`]: `(dx, dw, db)`; `dx` only when `need_dx`.
pub(crate) fn conv_bwd(
    x: &[f32],
    wt: &[f32],
    out: &[f32],
    grad: &[f32],
    arg: Option<&[u8]>,
    s: ConvShape,
    need_dx: bool,
) -> (Option<Vec<f32>>, Vec<f32>, Vec<f32>) {
    let (hw, in_len, out_len) = (s.hw(), s.c_in * s.hw(), s.out_len(arg.is_some()));
    let groups = s.batch.div_ceil(GROUP);
    let group = |g: usize, dx: Option<&mut [f32]>| -> (Vec<f32>, Vec<f32>) {
        let imgs = GROUP.min(s.batch - g * GROUP);
        let ld = imgs * hw;
        // The weight gradient transposed, `[k, Co]`: `gemm` multiplies `col · dzᵀ` into
        // this layout faster than `dz · colᵀ` into `[Co, k]` when `k` is the larger side,
        // with the same sums.
        let mut dwt = vec![0.0; s.k() * s.c_out];
        let mut db = vec![0.0; s.c_out];
        with_scratch(
            [
                s.k() * ld,
                s.c_out * ld,
                if need_dx { s.k() * ld } else { 0 },
            ],
            |col, dz, dcol| {
                for i in 0..imgs {
                    let (n, at) = (g * GROUP + i, Cols { ld, off: i * hw });
                    let o = n * out_len;
                    let arg = arg.map(|a| &a[o..][..out_len]);
                    grad_to_z(&grad[o..][..out_len], &out[o..][..out_len], arg, s, dz, at);
                    im2col(&x[n * in_len..][..in_len], s, col, at);
                }
                add_row_sums(dz, ld, &mut db);
                let dz_mat = Mat::row_major(dz, s.c_out, ld);
                let dz_t = Mat::transposed(dz, s.c_out, ld);
                sgemm(&mut dwt, Mat::row_major(col, s.k(), ld), dz_t, true);
                if let Some(dx) = dx {
                    let wt_t = Mat::transposed(wt, s.c_out, s.k());
                    sgemm(dcol, wt_t, dz_mat, false);
                    for (i, dx) in dx.chunks_exact_mut(in_len).enumerate() {
                        col2im(dcol, s, dx, Cols { ld, off: i * hw });
                    }
                }
            },
        );
        (dwt, db)
    };
    let mut dx = if need_dx {
        Some(vec![0.0; s.batch * in_len])
    } else {
        None
    };
    let partials: Vec<Mutex<(Vec<f32>, Vec<f32>)>> = (0..groups)
        .map(|_| Mutex::new((Vec::new(), Vec::new())))
        .collect();
    {
        let dxs = dx.as_deref_mut().map(|d| slots(d, GROUP * in_len));
        par_for(groups, |g| {
            let result = match &dxs {
                Some(dxs) => group(g, Some(&mut lock(&dxs[g]))),
                None => group(g, None),
            };
            *partials[g]
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = result;
        });
    }
    // Summed in group order: the same result for any number of threads.
    let mut dwt = vec![0.0; s.k() * s.c_out];
    let mut db = vec![0.0; s.c_out];
    for p in partials {
        let (pw, pb) = p
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        dwt.iter_mut().zip(&pw).for_each(|(a, b)| *a += b);
        db.iter_mut().zip(&pb).for_each(|(a, b)| *a += b);
    }
    let mut dw = vec![0.0; s.c_out * s.k()];
    for (r, row) in dwt.chunks_exact(s.c_out).enumerate() {
        for (co, &v) in row.iter().enumerate() {
            dw[co * s.k() + r] = v;
        }
    }
    (dx, dw, db)
}

/// 2x2, stride 2 max-pool of `planes` planes of `h x w` (odd edges dropped, as in candle).
pub(crate) fn maxpool2_fwd(x: &[f32], planes: usize, h: usize, w: usize) -> Vec<f32> {
    let (oh, ow) = (h / 2, w / 2);
    let mut out = vec![0.0; planes * oh * ow];
    if oh * ow == 0 {
        return out;
    }
    let outs = slots(&mut out, oh * ow);
    par_for(planes, |p| {
        let mut o = lock(&outs[p]);
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
    drop(outs);
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
    let dxs = slots(&mut dx, h * w);
    par_for(planes, |p| {
        let mut d = lock(&dxs[p]);
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
    drop(dxs);
    dx
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `x[ci][y][x]` of `s`, zero outside the image.
    fn at(x: &[f32], s: ConvShape, ci: usize, y: isize, xx: isize) -> f32 {
        let (h, w) = (s.h as isize, s.w as isize);
        if y < 0 || y >= h || xx < 0 || xx >= w {
            return 0.0;
        }
        x[ci * s.hw() + (y * w + xx) as usize]
    }

    fn shapes() -> Vec<ConvShape> {
        let mut v = Vec::new();
        for (c_in, h, w, kernel) in [
            (1, 28, 28, 3),
            (2, 7, 5, 3),
            (3, 4, 6, 5),
            (1, 2, 3, 7),
            (2, 1, 1, 3),
            (1, 3, 1, 1),
        ] {
            v.push(ConvShape {
                batch: 1,
                c_in,
                c_out: 1,
                h,
                w,
                kernel,
            });
        }
        v
    }

    #[test]
    fn row_sums_have_the_bits_of_plain_row_sums() {
        for rows in [1, 7, 8, 9, 20, 40] {
            for ld in [1, 3, 196, 3136] {
                // Values of mixed sign and magnitude, so any change of order shows in the bits.
                let m: Vec<f32> = (0..rows * ld)
                    .map(|i| ((i * 7919) % 1000) as f32 * 1.37e-3 - 0.6 + (i % 13) as f32 * 1e-7)
                    .collect();
                let mut got = vec![0.25f32; rows];
                add_row_sums(&m, ld, &mut got);
                for (r, &g) in got.iter().enumerate() {
                    let want = 0.25f32 + m[r * ld..][..ld].iter().sum::<f32>();
                    assert_eq!(g.to_bits(), want.to_bits(), "row {r} of {rows}, ld {ld}");
                }
            }
        }
    }

    #[test]
    fn im2col_and_col2im_are_the_definition_and_its_adjoint() {
        for s in shapes() {
            let (hw, k, p) = (s.hw(), s.kernel, s.pad() as isize);
            let x: Vec<f32> = (0..s.c_in * hw).map(|i| i as f32 + 1.0).collect();
            // Two images side by side, this one second, to exercise the offset.
            let at_ = Cols {
                ld: 2 * hw,
                off: hw,
            };
            let mut col = vec![f32::NAN; s.k() * 2 * hw];
            im2col(&x, s, &mut col, at_);
            let mut dx_ref = vec![0.0f32; s.c_in * hw];
            let dcol: Vec<f32> = (0..col.len()).map(|i| (i % 7) as f32 - 3.0).collect();
            for r in 0..s.k() {
                let (ci, kh, kw) = (r / (k * k), (r / k) % k, r % k);
                for j in 0..hw {
                    let (y, xx) = ((j / s.w) as isize, (j % s.w) as isize);
                    let (sy, sx) = (y + kh as isize - p, xx + kw as isize - p);
                    let want = at(&x, s, ci, sy, sx);
                    assert_eq!(col[at_.row(r, hw)][j], want, "{s:?} row {r} pos {j}");
                    if sy >= 0 && sy < s.h as isize && sx >= 0 && sx < s.w as isize {
                        dx_ref[ci * hw + (sy * s.w as isize + sx) as usize] +=
                            dcol[at_.row(r, hw)][j];
                    }
                }
            }
            let mut dx = vec![f32::NAN; s.c_in * hw];
            col2im(&mut dcol.clone(), s, &mut dx, at_);
            assert_eq!(dx, dx_ref, "{s:?}");
        }
    }
}
