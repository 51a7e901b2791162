//! Batch norm over `[B, C, H*W]` maps, per channel: training (batch statistics), evaluation
//! (given statistics) and the training backward, each with an optional ReLU after.

use std::mem::MaybeUninit;

use super::{lock, par_for, slots};

/// `batch` images of `channels` planes of `hw` values.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NormShape {
    pub batch: usize,
    pub channels: usize,
    pub hw: usize,
}

impl NormShape {
    /// Plane `c` of image `b`.
    fn plane(&self, b: usize, c: usize) -> std::ops::Range<usize> {
        let at = (b * self.channels + c) * self.hw;
        at..at + self.hw
    }
}

/// Lanes of the partial sums below: a plain `f32` sum is one serial chain of additions
/// (the compiler may not reorder it), 16 independent chains vectorise.
const LANES: usize = 16;

/// `Σ f(a[i], b[i], c[i])` in [`LANES`] partial sums, in a fixed order (the same bits on
/// every run). Pass a slice twice where `f` needs fewer.
fn lane_sum([a, b, c]: [&[f32]; 3], f: impl Fn(f32, f32, f32) -> f32) -> f32 {
    let (ac, ar) = a.as_chunks::<LANES>();
    let (bc, br) = b.as_chunks::<LANES>();
    let (cc, cr) = c.as_chunks::<LANES>();
    let mut acc = [0.0f32; LANES];
    for ((x, y), z) in ac.iter().zip(bc).zip(cc) {
        for l in 0..LANES {
            acc[l] += f(x[l], y[l], z[l]);
        }
    }
    let tail: f32 = ar
        .iter()
        .zip(br)
        .zip(cr)
        .map(|((&x, &y), &z)| f(x, y, z))
        .sum();
    acc.iter().sum::<f32>() + tail
}

/// Per-channel mean and biased variance of `x`: each plane summed in `f32` (at most a few
/// thousand values, in [`lane_sum`]), the planes' sums in `f64` (a channel of a batch holds
/// up to millions of values, too many for one `f32` sum). Two passes (mean, then squared
/// deviations), because one pass of `Σx²` loses the variance of values far from zero.
pub(crate) fn batch_stats(x: &[f32], s: NormShape) -> (Vec<f32>, Vec<f32>) {
    let mut stats = vec![(0.0f32, 0.0f32); s.channels];
    let n = (s.batch * s.hw) as f64;
    {
        let cells = slots(&mut stats, 1);
        par_for(s.channels, |c| {
            let planes = || (0..s.batch).map(|b| &x[s.plane(b, c)]);
            let sum: f64 = planes()
                .map(|p| f64::from(lane_sum([p, p, p], |v, _, _| v)))
                .sum();
            let mean = (sum / n) as f32;
            let sq: f64 = planes()
                .map(|p| f64::from(lane_sum([p, p, p], |v, _, _| (v - mean) * (v - mean))))
                .sum();
            lock(&cells[c])[0] = (mean, (sq / n) as f32);
        });
    }
    stats.into_iter().unzip()
}

/// `y = (x - mean[c]) · scale[c] + shift[c]`, then ReLU when `relu`, where the caller folds
/// `γ / sqrt(var + eps)` into `scale`.
pub(crate) fn affine(
    x: &[f32],
    s: NormShape,
    mean: &[f32],
    scale: &[f32],
    shift: &[f32],
    relu: bool,
) -> Vec<f32> {
    planes_from(s, |i, out| {
        let c = i % s.channels;
        let (m, a, b) = (mean[c], scale[c], shift[c]);
        let src = &x[i * s.hw..][..s.hw];
        if relu {
            out.iter_mut().zip(src).for_each(|(o, &v)| {
                o.write(((v - m) * a + b).max(0.0));
            });
        } else {
            out.iter_mut().zip(src).for_each(|(o, &v)| {
                o.write((v - m) * a + b);
            });
        }
    })
}

/// A `[B, C, H*W]` tensor whose plane `i` (image `i / C`, channel `i % C`) `write` fills, in
/// parallel. `write` must set every value of its plane: the buffer is not zeroed first
/// (zeroing a fresh buffer is a pass over it, at the size of a layer's output).
fn planes_from(s: NormShape, write: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync) -> Vec<f32> {
    let n = s.batch * s.channels * s.hw;
    let mut y: Vec<f32> = Vec::with_capacity(n);
    {
        let planes = slots(&mut y.spare_capacity_mut()[..n], s.hw);
        par_for(planes.len(), |i| write(i, &mut lock(&planes[i])));
    }
    // SAFETY: `planes` covers all `n` values in pieces of `hw`, and every caller's `write`
    // zips its piece with an input plane of the same length and writes each value. A
    // panicking worker unwinds through `par_for` before this line.
    unsafe { y.set_len(n) };
    y
}

/// Gradients of training-mode batch norm, `(dx, dγ, dβ)`, from the input `x`, output `y`
/// (for the ReLU mask), output gradient `g`, the batch `mean` and `invstd = 1/sqrt(var+eps)`.
pub(crate) fn batchnorm_bwd(
    [x, y, g]: [&[f32]; 3],
    s: NormShape,
    gamma: &[f32],
    mean: &[f32],
    invstd: &[f32],
    relu: bool,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let n = (s.batch * s.hw) as f32;
    // The gradient at the norm's output: `g`, or `g` where the ReLU passed it (read through
    // the output `y` on the fly rather than written out first: one pass less).
    let pass = |g: f32, y: f32| if !relu || y > 0.0 { g } else { 0.0 };
    // Per channel: dβ = Σ dy, dγ = Σ dy·x̂, each plane in f32, the planes in f64.
    let mut sums = vec![(0.0f32, 0.0f32); s.channels];
    {
        let cells = slots(&mut sums, 1);
        par_for(s.channels, |c| {
            let (m, k) = (mean[c], invstd[c]);
            let (mut db, mut dg) = (0.0f64, 0.0f64);
            for b in 0..s.batch {
                let r = s.plane(b, c);
                let (gs, ys, xs) = (&g[r.clone()], &y[r.clone()], &x[r]);
                db += f64::from(lane_sum([gs, ys, xs], |g, y, _| pass(g, y)));
                dg += f64::from(lane_sum([gs, ys, xs], |g, y, v| pass(g, y) * ((v - m) * k)));
            }
            lock(&cells[c])[0] = (dg as f32, db as f32);
        });
    }
    let (dgamma, dbeta): (Vec<f32>, Vec<f32>) = sums.into_iter().unzip();
    let dx = planes_from(s, |p, out| {
        let c = p % s.channels;
        let (m, inv, k) = (mean[c], invstd[c], gamma[c] * invstd[c]);
        let (mb, mg) = (dbeta[c] / n, dgamma[c] / n);
        let r = p * s.hw..(p + 1) * s.hw;
        let (gs, ys, xs) = (&g[r.clone()], &y[r.clone()], &x[r]);
        for (((o, &g), &y), &v) in out.iter_mut().zip(gs).zip(ys).zip(xs) {
            o.write(k * (pass(g, y) - mb - (v - m) * inv * mg));
        }
    });
    (dx, dgamma, dbeta)
}
