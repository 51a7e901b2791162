//! Gradients of the fused conv: at the pre-activations, then the weights, bias and input.

use super::gemm::{Mat, sgemm};
use super::im2col::{Cols, col2im, im2col};
use std::sync::Mutex;

use crate::Activation;

use super::winograd;
use super::{ConvShape, GROUP, Layout, direct, flipped, lock, par_for, slots, with_scratch};

/// Gradient at the pre-activations `z` of one image (written at `at` of its group's
/// matrix), from the output gradient `g`.
pub(super) fn grad_to_z(
    g: &[f32],
    out: &[f32],
    arg: Option<&[u8]>,
    s: ConvShape,
    dz: &mut [f32],
    at: Cols,
) {
    let hw = s.out_hw();
    match arg {
        None if s.act == Activation::Tanh => {
            for co in 0..s.c_out {
                let (g, o) = (&g[co * hw..][..hw], &out[co * hw..][..hw]);
                dz[at.row(co, hw)]
                    .iter_mut()
                    .zip(g.iter().zip(o))
                    .for_each(|(d, (&g, &o))| *d = g * (1.0 - o * o));
            }
        }
        None if s.act != Activation::Relu => {
            for co in 0..s.c_out {
                dz[at.row(co, hw)].copy_from_slice(&g[co * hw..][..hw]);
            }
        }
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
            let (w, oh, ow) = (s.ow(), s.oh() / 2, s.ow() / 2);
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
pub(super) fn add_row_sums(m: &[f32], ld: usize, acc: &mut [f32]) {
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
    let (hw, in_len, out_len) = (s.out_hw(), s.c_in * s.in_hw(), s.out_len(arg.is_some()));
    let groups = s.batch.div_ceil(GROUP);
    // The input gradient as a convolution of the output gradient, by Winograd where it
    // suits: `u` its transformed kernels, `back` its shape for one group.
    let back = need_dx.then(|| winograd::input_grad_shape(s)).flatten();
    let u = back.map(|b| winograd::weights(&flipped(wt, s), b));
    // The weight gradient of a conv computed directly forward is summed directly too, except
    // with one input channel: im2col is then only `k²` shifted copies, and the GEMM sums
    // them as fast or faster than `direct::weight_grad` pads its rows (up to 1.6x, one core). The input
    // gradient stays a GEMM and col2im: as a direct convolution back to a few channels it
    // was no faster, and far slower back to one.
    let direct = direct::suits(s) && s.c_in > 1;
    let zeros = vec![0.0; s.c_in];
    let group = |g: usize, mut dx: Option<&mut [f32]>| -> (Vec<f32>, Vec<f32>) {
        let imgs = GROUP.min(s.batch - g * GROUP);
        let ld = imgs * hw;
        let [v_len, m_len] = back.map_or([0, 0], |b| winograd::scratch(b, imgs));
        let col_len = match direct {
            true => direct::weight_grad_scratch(s, imgs),
            false => s.k() * ld,
        };
        // The weight gradient transposed, `[k, Co]`: `gemm` multiplies `col · dzᵀ` into
        // this layout faster than `dz · colᵀ` into `[Co, k]` when `k` is the larger side,
        // with the same sums.
        let mut dwt = vec![0.0; s.k() * s.c_out];
        let mut db = vec![0.0; s.c_out];
        with_scratch(
            [
                col_len.max(v_len),
                s.c_out * ld,
                if need_dx { (s.k() * ld).max(m_len) } else { 0 },
            ],
            |col, dz, dcol| {
                for i in 0..imgs {
                    let (n, at) = (g * GROUP + i, Cols { ld, off: i * hw });
                    let o = n * out_len;
                    let arg = arg.map(|a| &a[o..][..out_len]);
                    grad_to_z(&grad[o..][..out_len], &out[o..][..out_len], arg, s, dz, at);
                    if !direct {
                        im2col(&x[n * in_len..][..in_len], s, col, at);
                    }
                }
                add_row_sums(dz, ld, &mut db);
                let dz_mat = Mat::row_major(dz, s.c_out, ld);
                if direct {
                    let x = &x[g * GROUP * in_len..][..imgs * in_len];
                    direct::weight_grad(x, dz, s, col, &mut dwt);
                } else {
                    let dz_t = Mat::transposed(dz, s.c_out, ld);
                    sgemm(&mut dwt, Mat::row_major(col, s.k(), ld), dz_t, true);
                }
                if let (Some(dx), Some(b), Some(u)) = (dx.as_deref_mut(), back, &u) {
                    // `col` is done with: it holds the transformed gradient now.
                    let b = ConvShape { batch: imgs, ..b };
                    let (dz, layouts) = (&dz[..s.c_out * ld], [Layout::Channels, Layout::Images]);
                    winograd::conv_group(dz, u, &zeros, b, layouts, col, dcol, dx);
                } else if let Some(dx) = dx {
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
    let (dw, db) = sum_groups(partials, s);
    (dx, dw, db)
}

/// The groups' weight (transposed, `[k, Co]`) and bias gradients summed in group order, the
/// same result for any number of threads; the weight gradient as `[Co, k]`.
fn sum_groups(partials: Vec<Mutex<(Vec<f32>, Vec<f32>)>>, s: ConvShape) -> (Vec<f32>, Vec<f32>) {
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
    (dw, db)
}
