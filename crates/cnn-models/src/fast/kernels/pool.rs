//! Pools and their backward: a plain 2x2 max-pool, and max or average pools of any window.

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

/// Planes and window of a pool: `planes` maps of `h x w`, windows of `win` (height, width)
/// at a stride of the same size, sides floored.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoolShape {
    pub planes: usize,
    pub h: usize,
    pub w: usize,
    pub win: [usize; 2],
}

impl PoolShape {
    fn out(&self) -> (usize, usize) {
        (self.h / self.win[0], self.w / self.win[1])
    }
}

/// Max- or average pool of any window (`max`: the largest value, else the mean), a window
/// row at a time: each input row's used span split into `ww`-wide chunks, one per output.
pub(crate) fn pool_fwd(x: &[f32], s: PoolShape, max: bool) -> Vec<f32> {
    let (oh, ow) = s.out();
    let ([wh, ww], hw, ohw) = (s.win, s.h * s.w, oh * ow);
    let mut out = vec![0.0; s.planes * ohw];
    if ohw == 0 {
        return out;
    }
    let scale = 1.0 / (wh * ww) as f32;
    let outs = slots(&mut out, ohw);
    par_for(s.planes, |p| {
        let mut o = lock(&outs[p]);
        let src = &x[p * hw..][..hw];
        for (y, row) in o.chunks_exact_mut(ow).enumerate() {
            let input = |dy: usize| src[(y * wh + dy) * s.w..][..ow * ww].chunks_exact(ww);
            if s.win == [2, 2] {
                pool2x2_row(input(0).zip(input(1)), row, max);
                continue;
            }
            if max {
                row.iter_mut()
                    .zip(input(0))
                    .for_each(|(o, c)| *o = c.iter().fold(c[0], |m, &v| if v > m { v } else { m }));
                for dy in 1..wh {
                    for (o, c) in row.iter_mut().zip(input(dy)) {
                        let m = c.iter().fold(c[0], |m, &v| if v > m { v } else { m });
                        *o = if m > *o { m } else { *o };
                    }
                }
            } else {
                for dy in 0..wh {
                    for (o, c) in row.iter_mut().zip(input(dy)) {
                        *o += c.iter().sum::<f32>();
                    }
                }
                row.iter_mut().for_each(|o| *o *= scale);
            }
        }
    });
    drop(outs);
    out
}

/// One output row of a 2x2 pool from its two input rows' pairs, in the order and with the
/// comparisons of the general loop (the same bits), but with no inner loops: LLVM keeps the
/// general one's per-window loops of two, and the most common window deserves better.
fn pool2x2_row<'a>(
    pairs: impl Iterator<Item = (&'a [f32], &'a [f32])>,
    row: &mut [f32],
    max: bool,
) {
    if max {
        for (o, (t, b)) in row.iter_mut().zip(pairs) {
            let top = if t[1] > t[0] { t[1] } else { t[0] };
            let bot = if b[1] > b[0] { b[1] } else { b[0] };
            *o = if bot > top { bot } else { top };
        }
    } else {
        for (o, (t, b)) in row.iter_mut().zip(pairs) {
            *o = ((t[0] + t[1]) + (b[0] + b[1])) * 0.25;
        }
    }
}

/// Gradient of [`pool_fwd`]: to the first maximum of each window (row-major), or spread
/// evenly over it.
pub(crate) fn pool_bwd(x: &[f32], out: &[f32], grad: &[f32], s: PoolShape, max: bool) -> Vec<f32> {
    let (oh, ow) = s.out();
    let ([wh, ww], hw, ohw) = (s.win, s.h * s.w, oh * ow);
    let mut dx = vec![0.0; s.planes * hw];
    if ohw == 0 {
        return dx;
    }
    let scale = 1.0 / (wh * ww) as f32;
    let dxs = slots(&mut dx, hw);
    par_for(s.planes, |p| {
        let mut d = lock(&dxs[p]);
        let src = &x[p * hw..][..hw];
        let (o, g) = (&out[p * ohw..][..ohw], &grad[p * ohw..][..ohw]);
        if s.win == [2, 2] {
            return pool2x2_bwd(src, (o, g), [s.w, ow], &mut d, max);
        }
        for y in 0..oh {
            for xo in 0..ow {
                let (m, g) = (o[y * ow + xo], g[y * ow + xo]);
                let at = |dy: usize| (y * wh + dy) * s.w + xo * ww;
                if !max {
                    for dy in 0..wh {
                        d[at(dy)..][..ww].iter_mut().for_each(|v| *v += g * scale);
                    }
                    continue;
                }
                let first = (0..wh).find_map(|dy| {
                    let i = at(dy);
                    src[i..i + ww].iter().position(|&v| v == m).map(|j| i + j)
                });
                d[first.unwrap_or(at(0))] += g;
            }
        }
    });
    drop(dxs);
    dx
}

/// [`pool_bwd`] of one plane for 2x2 windows, with the general loop's rule (the first
/// maximum in row-major order, or a quarter to each) and sums, without its inner loops.
fn pool2x2_bwd(
    src: &[f32],
    (out, grad): (&[f32], &[f32]),
    [w, ow]: [usize; 2],
    d: &mut [f32],
    max: bool,
) {
    for (y, (o, g)) in out.chunks_exact(ow).zip(grad.chunks_exact(ow)).enumerate() {
        let top = 2 * y * w;
        for x in 0..ow {
            let i = top + 2 * x;
            if max {
                let m = o[x];
                let at = [i, i + 1, i + w, i + w + 1]
                    .into_iter()
                    .find(|&j| src[j] == m)
                    .unwrap_or(i);
                d[at] += g[x];
            } else {
                let v = g[x] * 0.25;
                for j in [i, i + 1, i + w, i + w + 1] {
                    d[j] += v;
                }
            }
        }
    }
}
