//! The fused forward: conv + bias + ReLU over groups of images, with an optional 2x2
//! max-pool that records where each window's maximum was.

use std::mem::MaybeUninit;

use super::gemm::{Mat, sgemm};
use super::im2col::{Cols, im2col};
use crate::Activation;
use crate::fast::act::in_place;

use super::{ConvShape, GROUP, Layout, direct, lock, par_for, slots, winograd, with_scratch};

/// Pre-activations of a group of images side by side (`x` holds them one after another):
/// `z[co][i*HW + p] = b[co] + Σ_k w[co][k]·col[k][i*HW + p]`, one GEMM for the group.
pub(super) fn conv_group(
    x: &[f32],
    wt: &[f32],
    bias: &[f32],
    s: ConvShape,
    col: &mut [f32],
    z: &mut [f32],
) {
    let (hw, in_len) = (s.out_hw(), s.c_in * s.in_hw());
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

/// Forward of conv + bias + `s.act` (ReLU, tanh or none), optionally followed by a 2x2
/// max-pool (ReLU only).
///
/// Returns the output (`[B, Co, OH, OW]`, or `[B, Co, OH/2, OW/2]` pooled) and, when pooled and
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
    let (hw, in_len, out_len) = (s.out_hw(), s.c_in * s.in_hw(), s.out_len(pool));
    let n = s.batch * out_len;
    let n_arg = if pool && record { n } else { 0 };
    // Left uninitialised rather than zeroed: every value is written below.
    let mut out: Vec<f32> = Vec::with_capacity(n);
    let mut arg: Vec<u8> = Vec::with_capacity(n_arg);
    {
        let outs = slots(&mut out.spare_capacity_mut()[..n], GROUP * out_len);
        let args = slots(&mut arg.spare_capacity_mut()[..n_arg], GROUP * out_len);
        let wino = winograd::suits(s).then(|| winograd::weights(wt, s));
        let direct = (wino.is_none() && direct::suits(s)).then(|| direct::weights(wt, s));
        par_for(s.batch.div_ceil(GROUP), |g| {
            let imgs = GROUP.min(s.batch - g * GROUP);
            let ld = imgs * hw;
            let sizes = match wino {
                Some(_) => {
                    let [v, m] = winograd::scratch(s, imgs);
                    [v, s.c_out * ld, m]
                }
                None if direct.is_some() => {
                    let [xp, acc] = direct::scratch(s);
                    [xp, s.c_out * ld, acc]
                }
                None => [s.k() * ld, s.c_out * ld, 0],
            };
            with_scratch(sizes, |col, z, m| {
                let x = &x[g * GROUP * in_len..][..imgs * in_len];
                match (&wino, &direct) {
                    (Some(u), _) => {
                        let layouts = [Layout::Images, Layout::Channels];
                        winograd::conv_group(x, u, bias, s, layouts, col, m, z)
                    }
                    (None, Some(wb)) => direct::conv_group(x, wb, bias, s, col, m, z),
                    (None, None) => conv_group(x, wt, bias, s, col, z),
                }
                if s.act == Activation::Tanh {
                    // While the group's pre-activations are still in cache.
                    in_place(s.act, &mut z[..s.c_out * ld]);
                }
                let mut o = lock(&outs[g]);
                for (i, o) in o.chunks_exact_mut(out_len).enumerate() {
                    let at = Cols { ld, off: i * hw };
                    if pool {
                        let mut args = record.then(|| lock(&args[g]));
                        let arg = args
                            .as_deref_mut()
                            .map(|a| &mut a[i * out_len..][..out_len]);
                        pool_relu(z, at, s, o, arg);
                    } else {
                        for (co, o) in o.chunks_exact_mut(hw).enumerate() {
                            let z = &z[at.row(co, hw)];
                            if s.act == Activation::Relu {
                                o.iter_mut().zip(z).for_each(|(o, &v)| {
                                    o.write(v.max(0.0));
                                });
                            } else {
                                o.iter_mut().zip(z).for_each(|(o, &v)| {
                                    o.write(v);
                                });
                            }
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

/// `out = relu(maxpool2(z))` per channel; with `arg`, also the window position of each
/// maximum (the first one in row-major order on ties, as PyTorch does). Without it (a
/// forward pass no backward will follow) the same comparisons give the same values, and a
/// third less work: the two loops are kept apart so that neither tests `arg` per window.
/// Branch-free: which element is largest is data-dependent and would mispredict.
pub(super) fn pool_relu(
    z: &[f32],
    at: Cols,
    s: ConvShape,
    out: &mut [MaybeUninit<f32>],
    mut arg: Option<&mut [MaybeUninit<u8>]>,
) {
    let (w, oh, ow) = (s.ow(), s.oh() / 2, s.ow() / 2);
    for co in 0..s.c_out {
        let plane = &z[at.row(co, s.out_hw())];
        for y in 0..oh {
            let (r0, r1) = (&plane[2 * y * w..][..w], &plane[(2 * y + 1) * w..][..w]);
            let j0 = (co * oh + y) * ow;
            let o = &mut out[j0..][..ow];
            // Pairs of columns as chunks, so LLVM can vectorise the loop.
            let pairs = r0.chunks_exact(2).zip(r1.chunks_exact(2));
            // Plain comparisons rather than f32::max, whose NaN rules block vectorisation.
            let Some(arg) = arg.as_deref_mut() else {
                for (o, (t, b)) in o.iter_mut().zip(pairs) {
                    let top = if t[1] > t[0] { t[1] } else { t[0] };
                    let bot = if b[1] > b[0] { b[1] } else { b[0] };
                    let m = if bot > top { bot } else { top };
                    o.write(if m > 0.0 { m } else { 0.0 });
                }
                continue;
            };
            for ((o, a), (t, b)) in o.iter_mut().zip(&mut arg[j0..][..ow]).zip(pairs) {
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
