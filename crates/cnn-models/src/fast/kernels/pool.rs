//! A plain 2x2, stride-2 max-pool and its backward.

use super::{lock, par_for, slots};

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
