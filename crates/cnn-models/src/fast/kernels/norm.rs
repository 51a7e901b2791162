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

/// Per-channel mean and biased variance of `x`: each plane summed in `f32` (at most a few
/// thousand values, in a loop that vectorises), the planes' sums in `f64` (a channel of a
/// batch holds up to millions of values, too many for one `f32` sum).
pub(crate) fn batch_stats(x: &[f32], s: NormShape) -> (Vec<f32>, Vec<f32>) {
    let mut stats = vec![(0.0f32, 0.0f32); s.channels];
    let n = (s.batch * s.hw) as f64;
    {
        let cells = slots(&mut stats, 1);
        par_for(s.channels, |c| {
            let planes = || (0..s.batch).map(|b| &x[s.plane(b, c)]);
            let sum: f64 = planes().map(|p| f64::from(p.iter().sum::<f32>())).sum();
            let mean = (sum / n) as f32;
            let sq: f64 = planes()
                .map(|p| f64::from(p.iter().map(|&v| (v - mean) * (v - mean)).sum::<f32>()))
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
    // The gradient at the norm's output: `g`, or `g` where the ReLU passed it.
    let masked: Vec<f32>;
    let dy: &[f32] = if relu {
        masked = g
            .iter()
            .zip(y)
            .map(|(&g, &y)| if y > 0.0 { g } else { 0.0 })
            .collect();
        &masked
    } else {
        g
    };
    // Per channel: dβ = Σ dy, dγ = Σ dy·x̂, each plane in f32, the planes in f64.
    let mut sums = vec![(0.0f32, 0.0f32); s.channels];
    {
        let cells = slots(&mut sums, 1);
        par_for(s.channels, |c| {
            let (m, k) = (mean[c], invstd[c]);
            let (mut db, mut dg) = (0.0f64, 0.0f64);
            for b in 0..s.batch {
                let r = s.plane(b, c);
                let (d, xs) = (&dy[r.clone()], &x[r]);
                db += f64::from(d.iter().sum::<f32>());
                let dot: f32 = d.iter().zip(xs).map(|(&d, &v)| d * ((v - m) * k)).sum();
                dg += f64::from(dot);
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
            let (m, inv, k) = (mean[c], invstd[c], gamma[c] * invstd[c]);
            let (mb, mg) = (dbeta[c] / n, dgamma[c] / n);
            let r = p * s.hw..(p + 1) * s.hw;
            let (d, xs) = (&dy[r.clone()], &x[r]);
            let mut out = lock(&planes[p]);
            for ((o, &d), &v) in out.iter_mut().zip(d).zip(xs) {
                *o = k * (d - mb - (v - m) * inv * mg);
            }
        });
    }
    (dx, dgamma, dbeta)
}
