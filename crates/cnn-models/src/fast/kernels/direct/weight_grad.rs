//! The weight gradient of a direct convolution, `dW[co][tap] = Σ_images Σ_p dz[co][p] ·
//! x[p + offset(tap)]`, without an im2col matrix: each image is zero-padded once and its
//! output gradient laid on the padded rows, so every product is one contiguous span.

use pulp::Simd;

use super::{ConvShape, MAX_LANES, load, offsets, pad_image, padded, positions};

/// Output channels and taps summed together: 12 accumulators, 4 gradient vectors and the
/// input vector (folded into the FMA) fit AVX2's 16 registers.
const CO: usize = 4;
const TAPS: usize = 3;

/// Scratch for [`weight_grad`] over a group of `imgs` images.
pub(in super::super) fn scratch(s: ConvShape, imgs: usize) -> usize {
    imgs * (padded(s).2 + s.c_out * positions(s))
}

/// Adds the weight gradient of a group of images to `dwt` (`[tap][Co]`): `x` the images one
/// after another, `dz` the gradients at their pre-activations laid out as
/// [`super::super::conv_fwd::conv_group`] lays those out (`dz[co][i*OH*OW + p]`). `buf`
/// sized by [`scratch`].
pub(in super::super) fn weight_grad(
    x: &[f32],
    dz: &[f32],
    s: ConvShape,
    buf: &mut [f32],
    dwt: &mut [f32],
) {
    let (in_len, out_hw) = (s.c_in * s.in_hw(), s.out_hw());
    let imgs = x.len() / in_len;
    let (_, wp, xp_len) = padded(s);
    let (n, ld) = (positions(s), imgs * out_hw);
    let (xps, dzps) = buf.split_at_mut(imgs * xp_len);
    for (i, (xp, dzp)) in xps
        .chunks_exact_mut(xp_len)
        .zip(dzps.chunks_exact_mut(s.c_out * n))
        .enumerate()
    {
        pad_image(|ci| &x[i * in_len + ci * s.in_hw()..][..s.in_hw()], s, xp);
        dzp.fill(0.0);
        for (co, dst) in dzp.chunks_exact_mut(n).enumerate() {
            let src = &dz[co * ld + i * out_hw..][..out_hw];
            for (d, row) in dst.chunks_exact_mut(wp).zip(src.chunks_exact(s.ow())) {
                d[..row.len()].copy_from_slice(row);
            }
        }
    }
    pulp::Arch::new().dispatch(Sums { xps, dzps, s, dwt });
}

/// [`weight_grad`]'s products, compiled by pulp for each instruction set.
struct Sums<'a> {
    xps: &'a [f32],
    dzps: &'a [f32],
    s: ConvShape,
    dwt: &'a mut [f32],
}

impl pulp::WithSimd for Sums<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Sums { xps, dzps, s, dwt } = self;
        let offsets = offsets(s);
        for co0 in (0..s.c_out).step_by(CO) {
            for t0 in (0..s.k()).step_by(TAPS) {
                let b = Tile {
                    xps,
                    dzps,
                    s,
                    co0,
                    offsets: &offsets[t0..s.k().min(t0 + TAPS)],
                };
                let sums = match s.c_out - co0 {
                    1 => b.by_taps::<S, 1>(simd),
                    2 => b.by_taps::<S, 2>(simd),
                    3 => b.by_taps::<S, 3>(simd),
                    _ => b.by_taps::<S, CO>(simd),
                };
                for (c, row) in sums.iter().enumerate().take(s.c_out - co0) {
                    for (t, v) in row.iter().enumerate().take(b.offsets.len()) {
                        dwt[(t0 + t) * s.c_out + co0 + c] += simd.reduce_sum_f32s(*v);
                    }
                }
            }
        }
    }
}

/// Up to `CO` channels from `co0` and up to `TAPS` taps (their `offsets`), over every image.
struct Tile<'a> {
    xps: &'a [f32],
    dzps: &'a [f32],
    s: ConvShape,
    co0: usize,
    offsets: &'a [usize],
}

impl Tile<'_> {
    /// [`Tile::sums`] with as many taps as `offsets` holds, each count compiled apart so
    /// that the loops unroll into registers.
    #[inline(always)]
    fn by_taps<S: Simd, const C: usize>(&self, simd: S) -> [[S::f32s; TAPS]; CO] {
        match self.offsets.len() {
            1 => self.sums::<S, C, 1>(simd),
            2 => self.sums::<S, C, 2>(simd),
            _ => self.sums::<S, C, TAPS>(simd),
        }
    }

    /// Lane-wise partial sums `[channel][tap]` (channels past `C` and taps past `T` stay
    /// zero).
    #[inline(always)]
    fn sums<S: Simd, const C: usize, const T: usize>(&self, simd: S) -> [[S::f32s; TAPS]; CO] {
        let (lanes, n) = (S::F32_LANES, positions(self.s));
        let xp_len = padded(self.s).2;
        let mut acc = [[simd.splat_f32s(0.0); TAPS]; CO];
        let offs: [usize; T] = std::array::from_fn(|t| self.offsets[t]);
        let dzs = self.dzps.chunks_exact(self.s.c_out * n);
        for (xp, dzp) in self.xps.chunks_exact(xp_len).zip(dzs) {
            let dzp = &dzp[self.co0 * n..];
            for q in (0..n).step_by(lanes) {
                let d: [S::f32s; C] = std::array::from_fn(|c| load(&dzp[c * n + q..][..lanes]));
                for (t, &off) in offs.iter().enumerate() {
                    let v = load(&xp[q + off..][..lanes]);
                    for (acc, d) in acc.iter_mut().zip(&d) {
                        acc[t] = simd.mul_add_e_f32s(*d, v, acc[t]);
                    }
                }
            }
        }
        debug_assert!(n.is_multiple_of(MAX_LANES));
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{Isa, available, values};
    use super::*;
    use crate::Activation;

    /// The definition: `dW[co][ci][kh][kw] = Σ_i Σ_(y,x) dz[co][i][y][x] · x[i][ci][y+kh-p][x+kw-p]`.
    fn definition(x: &[f32], dz: &[f32], s: ConvShape, imgs: usize) -> Vec<f32> {
        let (k, ld) = (s.kernel, imgs * s.out_hw());
        let mut dwt = vec![0.0f32; s.k() * s.c_out];
        for co in 0..s.c_out {
            for t in 0..s.k() {
                let (ci, kh, kw) = (t / (k * k), t / k % k, t % k);
                let mut sum = 0.0f64;
                for i in 0..imgs {
                    for y in 0..s.oh() {
                        for xx in 0..s.ow() {
                            let (iy, ix) = (
                                (y + kh) as isize - s.pad as isize,
                                (xx + kw) as isize - s.pad as isize,
                            );
                            if iy < 0 || ix < 0 || iy >= s.h as isize || ix >= s.w as isize {
                                continue;
                            }
                            let xv =
                                x[(i * s.c_in + ci) * s.in_hw() + iy as usize * s.w + ix as usize];
                            let d = dz[co * ld + i * s.out_hw() + y * s.ow() + xx];
                            sum += f64::from(xv) * f64::from(d);
                        }
                    }
                }
                dwt[t * s.c_out + co] = sum as f32;
            }
        }
        dwt
    }

    #[test]
    fn the_weight_gradient_is_its_definition_on_every_instruction_set() {
        // Channel and tap counts that leave partial blocks (4 channels, 3 taps); odd maps.
        for (imgs, c_in, c_out, h, w, kernel, pad) in [
            (3, 1, 6, 9, 11, 5, 2),
            (2, 2, 5, 7, 5, 3, 0),
            (1, 3, 9, 4, 17, 2, 1),
        ] {
            let s = ConvShape {
                pad,
                act: Activation::None,
                ..ConvShape::same(imgs, c_in, c_out, h, w, kernel)
            };
            let x = values(imgs * c_in * h * w, 5);
            let dz = values(c_out * imgs * s.out_hw(), 7);
            let want = definition(&x, &dz, s, imgs);
            // The dispatched path, then each instruction set by hand.
            let mut buf = vec![f32::NAN; scratch(s, imgs)];
            let mut got = vec![0.0; s.k() * s.c_out];
            weight_grad(&x, &dz, s, &mut buf, &mut got);
            let mut results = vec![("dispatched".to_string(), got)];
            for isa in [Isa::Scalar].into_iter().chain(available()) {
                let mut dwt = vec![0.0; s.k() * s.c_out];
                // Fills `buf` with the padded inputs and gradients for `Sums`.
                weight_grad(&x, &dz, s, &mut buf, &mut vec![0.0; s.k() * s.c_out]);
                let (xps, dzps) = buf.split_at(imgs * padded(s).2);
                isa.run(Sums {
                    xps,
                    dzps,
                    s,
                    dwt: &mut dwt,
                });
                results.push((format!("{isa:?}"), dwt));
            }
            for (name, got) in &results {
                for (j, (a, b)) in want.iter().zip(got).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-4 * (1.0 + a.abs()),
                        "{s:?} {name} at {j}: {a} vs {b}"
                    );
                }
            }
        }
    }
}
