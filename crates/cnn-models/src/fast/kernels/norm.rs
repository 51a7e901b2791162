//! Batch norm over `[B, C, H*W]` maps, per channel: training (batch statistics), evaluation
//! (given statistics) and the training backward, each with an optional ReLU after.

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

/// Per-channel mean and biased variance of `x`, summed in `f64` (a channel of a batch holds
/// up to millions of values, too many for an `f32` sum).
pub(crate) fn batch_stats(x: &[f32], s: NormShape) -> (Vec<f32>, Vec<f32>) {
    let mut stats = vec![(0.0f32, 0.0f32); s.channels];
    let n = (s.batch * s.hw) as f64;
    {
        let cells = slots(&mut stats, 1);
        par_for(s.channels, |c| {
            let planes = || (0..s.batch).map(|b| &x[s.plane(b, c)]);
            let sum: f64 = planes().flatten().map(|&v| f64::from(v)).sum();
            let mean = sum / n;
            let sq: f64 = planes()
                .flatten()
                .map(|&v| (f64::from(v) - mean).powi(2))
                .sum();
            lock(&cells[c])[0] = (mean as f32, (sq / n) as f32);
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
    let mut y = vec![0.0; x.len()];
    {
        let planes = slots(&mut y, s.hw);
        par_for(s.batch * s.channels, |i| {
            let c = i % s.channels;
            let (m, a, b) = (mean[c], scale[c], shift[c]);
            let mut out = lock(&planes[i]);
            let src = &x[i * s.hw..][..s.hw];
            if relu {
                out.iter_mut()
                    .zip(src)
                    .for_each(|(o, &v)| *o = ((v - m) * a + b).max(0.0));
            } else {
                out.iter_mut()
                    .zip(src)
                    .for_each(|(o, &v)| *o = (v - m) * a + b);
            }
        });
    }
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
    let dy = |i: usize| {
        if relu && y[i] <= 0.0 { 0.0 } else { g[i] }
    };
    // Per channel: dβ = Σ dy, dγ = Σ dy·x̂.
    let mut sums = vec![(0.0f32, 0.0f32); s.channels];
    {
        let cells = slots(&mut sums, 1);
        par_for(s.channels, |c| {
            let (mut db, mut dg) = (0.0f64, 0.0f64);
            for b in 0..s.batch {
                for i in s.plane(b, c) {
                    let d = f64::from(dy(i));
                    db += d;
                    dg += d * f64::from((x[i] - mean[c]) * invstd[c]);
                }
            }
            lock(&cells[c])[0] = (dg as f32, db as f32);
        });
    }
    let (dgamma, dbeta): (Vec<f32>, Vec<f32>) = sums.into_iter().unzip();
    let mut dx = vec![0.0; x.len()];
    {
        let planes = slots(&mut dx, s.hw);
        par_for(s.batch * s.channels, |p| {
            let c = p % s.channels;
            let k = gamma[c] * invstd[c];
            let (mb, mg) = (dbeta[c] / n, dgamma[c] / n);
            let mut out = lock(&planes[p]);
            for (j, o) in out.iter_mut().enumerate() {
                let i = p * s.hw + j;
                let xhat = (x[i] - mean[c]) * invstd[c];
                *o = k * (dy(i) - mb - xhat * mg);
            }
        });
    }
    (dx, dgamma, dbeta)
}
