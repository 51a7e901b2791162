//! Direct convolution for stride-1 convs with few input channels (a network's first layer,
//! LeNet-5's second): no im2col matrix, each output vector summed in registers.
//!
//! With one to a few input channels, im2col writes `k²` copies of the input for a GEMM whose
//! inner dimension is only `Ci·k²` and whose output has a handful of rows: for LeNet-5's
//! 5x5 layers the copies cost twice the products. Here each image is zero-padded once, and
//! an output row vector of `CB` channels at `L` positions (the SIMD width) is
//! `Σ_taps w[c][tap] · x[q + offset(tap)]`: one load of `L` inputs feeds `CB` multiply-adds.
//!
//! Rows at least a vector wide are computed in vectors from their start, the last one
//! overlapping its neighbour (computing a few outputs twice, with the same result), and
//! stored straight into the output. Narrower rows (7 to 15 outputs) would waste most of a
//! vector each: there the positions run over whole padded rows (`q = y·Wp + x` for every `x
//! < Wp`) as one contiguous span, and the `Wp - OW` columns past each row's end are computed
//! into scratch and dropped. Valid outputs never read past their own row's window.
//!
//! Written here rather than taken from a crate: no maintained Rust crate offers a direct
//! convolution on slices (tract's runs through its own graph).

use pulp::Simd;

use super::ConvShape;

mod weight_grad;

pub(super) use weight_grad::{scratch as weight_grad_scratch, weight_grad};

/// Most output channels summed together: `CB` accumulators and one input vector stay in
/// registers (16 of AVX2's, 32 of AVX-512's), and each input load feeds `CB` FMAs.
const CB: usize = 8;

/// Positions per vector at most (AVX-512's 16 floats): scratch is sized for it.
const MAX_LANES: usize = 16;

/// Whether `s` is computed here: stride 1 with at most this many input channels. Past a few
/// channels the GEMM's inner dimension (`Ci·k²`) is long enough to run near its peak, and
/// the input is re-read `Co / CB` times here.
pub(super) fn suits(s: ConvShape) -> bool {
    s.stride == 1 && s.c_in <= 8
}

/// Padded plane size, and the values one image's padded input takes (with a tail of zeros
/// so the last vector of positions reads in bounds).
fn padded(s: ConvShape) -> (usize, usize, usize) {
    let (hp, wp) = (s.h + 2 * s.pad, s.w + 2 * s.pad);
    (hp, wp, s.c_in * hp * wp + wp + s.kernel + 2 * MAX_LANES)
}

/// Positions computed per plane when rows are narrower than a vector: whole padded rows.
fn positions(s: ConvShape) -> usize {
    (s.oh() * (s.w + 2 * s.pad)).next_multiple_of(MAX_LANES)
}

/// Scratch for [`conv_group`]: the padded image, and one block of narrow rows' sums
/// `[CB][positions]`.
pub(super) fn scratch(s: ConvShape) -> [usize; 2] {
    [padded(s).2, CB * positions(s)]
}

/// Where tap `(ci, kh, kw)` reads in the padded planes, relative to the output position.
fn offsets(s: ConvShape) -> Vec<usize> {
    let (hp, wp, _) = padded(s);
    let kk = s.kernel * s.kernel;
    (0..s.k())
        .map(|t| (t / kk) * hp * wp + (t % kk / s.kernel) * wp + t % s.kernel)
        .collect()
}

/// The convolution `s` of a group of images `x` (one after another), bias added, into `z`
/// laid out as [`super::conv_fwd::conv_group`] lays it out: `z[co][i*OH*OW + p]`. `wb` from
/// [`weights`]; `xp` and `acc` sized by [`scratch`].
pub(super) fn conv_group(
    x: &[f32],
    wb: &[f32],
    bias: &[f32],
    s: ConvShape,
    xp: &mut [f32],
    acc: &mut [f32],
    z: &mut [f32],
) {
    pulp::Arch::new().dispatch(Group {
        x,
        wb,
        bias,
        s,
        xp,
        acc,
        z,
    });
}

/// `wt` (`[Co][Ci·k²]`) as blocks of up to `CB` channels, each `[tap][channel]`: the weights
/// one input vector meets sit side by side. Once per call, shared by every group.
pub(super) fn weights(wt: &[f32], s: ConvShape) -> Vec<f32> {
    let taps = s.k();
    let mut wb = vec![0.0; s.c_out * taps];
    for (co, row) in wt.chunks_exact(taps).take(s.c_out).enumerate() {
        let (b, c) = (co / CB, co % CB);
        let width = CB.min(s.c_out - b * CB);
        let block = &mut wb[b * CB * taps..][..width * taps];
        for (t, &w) in row.iter().enumerate() {
            block[t * width + c] = w;
        }
    }
    wb
}

/// [`conv_group`]'s arguments, so that pulp compiles the loops for AVX-512, AVX2 and the
/// baseline and runs the best (see `fast/act.rs`).
struct Group<'a> {
    x: &'a [f32],
    wb: &'a [f32],
    bias: &'a [f32],
    s: ConvShape,
    xp: &'a mut [f32],
    acc: &'a mut [f32],
    z: &'a mut [f32],
}

impl pulp::WithSimd for Group<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Group {
            x,
            wb,
            bias,
            s,
            xp,
            acc,
            z,
        } = self;
        let (in_len, out_hw, taps) = (s.c_in * s.in_hw(), s.out_hw(), s.k());
        let (_, wp, _) = padded(s);
        let (oh, ow, lanes) = (s.oh(), s.ow(), S::F32_LANES);
        let offsets = offsets(s);
        let imgs = x.len() / in_len;
        let wide = ow >= lanes;
        // (where a vector reads in the padded plane, where it is stored)
        let spots: Vec<(usize, usize)> = if wide {
            let starts = (0..ow - lanes).step_by(lanes).chain([ow - lanes]);
            let starts: Vec<usize> = starts.collect();
            (0..oh)
                .flat_map(|y| starts.iter().map(move |&x0| (y * wp + x0, y * ow + x0)))
                .collect()
        } else {
            (0..oh * wp).step_by(lanes).map(|q| (q, q)).collect()
        };
        let n = positions(s);
        for i in 0..imgs {
            pad_image(|ci| &x[(i * s.c_in + ci) * s.in_hw()..][..s.in_hw()], s, xp);
            // Where channel `co` of image `i` goes.
            let at = |co| (co * imgs + i) * out_hw;
            for (b, co0) in (0..s.c_out).step_by(CB).enumerate() {
                let width = CB.min(s.c_out - co0);
                let w = &wb[b * CB * taps..][..width * taps];
                let bias = &bias[co0..][..width];
                let (out, base, stride) = if wide {
                    (&mut z[..], at(co0), at(1) - at(0))
                } else {
                    (&mut acc[..], 0, n)
                };
                let args = Block {
                    xp,
                    w,
                    bias,
                    offsets: &offsets,
                    spots: &spots,
                    out,
                    base,
                    stride,
                };
                match width {
                    8 => args.run::<S, 8>(simd),
                    7 => args.run::<S, 7>(simd),
                    6 => args.run::<S, 6>(simd),
                    5 => args.run::<S, 5>(simd),
                    4 => args.run::<S, 4>(simd),
                    3 => args.run::<S, 3>(simd),
                    2 => args.run::<S, 2>(simd),
                    _ => args.run::<S, 1>(simd),
                }
                if !wide {
                    for c in 0..width {
                        let out = &mut z[at(co0 + c)..][..out_hw];
                        let rows = acc[c * n..][..oh * wp].chunks_exact(wp);
                        for (o, row) in out.chunks_exact_mut(ow).zip(rows) {
                            o.copy_from_slice(&row[..ow]);
                        }
                    }
                }
            }
        }
    }
}

/// One image (its plane `ci` given by `plane`) into zero-padded planes `[Ci][Hp][Wp]`,
/// zeros after.
#[inline(always)]
fn pad_image<'a>(plane: impl Fn(usize) -> &'a [f32], s: ConvShape, xp: &mut [f32]) {
    let (hp, wp, _) = padded(s);
    xp.fill(0.0);
    for ci in 0..s.c_in {
        let plane = plane(ci);
        let dst = &mut xp[ci * hp * wp..][..hp * wp];
        for (y, row) in plane.chunks_exact(s.w).enumerate() {
            dst[(y + s.pad) * wp + s.pad..][..s.w].copy_from_slice(row);
        }
    }
}

/// One block of channels over a list of vector positions.
struct Block<'a> {
    xp: &'a [f32],
    /// `[tap][channel]`.
    w: &'a [f32],
    bias: &'a [f32],
    offsets: &'a [usize],
    /// (read at, store at) per vector of outputs.
    spots: &'a [(usize, usize)],
    out: &'a mut [f32],
    /// Channel `c`'s vector at spot `d` goes to `out[base + c * stride + d..]`.
    base: usize,
    stride: usize,
}

impl Block<'_> {
    /// `out[c][d] = bias[c] + Σ_t w[t][c] · xp[q + offsets[t]]` for the block's `C` channels.
    #[inline(always)]
    fn run<S: Simd, const C: usize>(self, simd: S) {
        let lanes = S::F32_LANES;
        let Block {
            xp,
            w,
            bias,
            offsets,
            spots,
            out,
            base,
            stride,
        } = self;
        for &(q, d) in spots {
            let mut sums: [S::f32s; C] = std::array::from_fn(|c| simd.splat_f32s(bias[c]));
            for (&off, w) in offsets.iter().zip(w.chunks_exact(C)) {
                let v = load(&xp[q + off..][..lanes]);
                for (sum, &w) in sums.iter_mut().zip(w) {
                    *sum = simd.mul_add_e_f32s(simd.splat_f32s(w), v, *sum);
                }
            }
            for (c, sum) in sums.iter().enumerate() {
                store(&mut out[base + c * stride + d..][..lanes], *sum);
            }
        }
    }
}

/// A vector from `lanes` floats at any alignment.
#[inline(always)]
fn load<V: pulp::bytemuck::Pod>(from: &[f32]) -> V {
    pulp::bytemuck::pod_read_unaligned(pulp::bytemuck::cast_slice(from))
}

/// A vector into `lanes` floats at any alignment.
#[inline(always)]
fn store<V: pulp::bytemuck::Pod>(to: &mut [f32], v: V) {
    pulp::bytemuck::cast_slice_mut::<f32, u8>(to).copy_from_slice(pulp::bytemuck::bytes_of(&v));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Activation;

    /// One instruction set to run a pulp op with.
    #[derive(Debug, Clone, Copy)]
    pub(super) enum Isa {
        Scalar,
        #[cfg(target_arch = "x86_64")]
        V3,
        #[cfg(target_arch = "x86_64")]
        V4,
    }

    impl Isa {
        pub(super) fn run<Op: pulp::WithSimd>(self, op: Op) -> Op::Output {
            match self {
                Isa::Scalar => Simd::vectorize(pulp::Scalar::new(), op),
                #[cfg(target_arch = "x86_64")]
                Isa::V3 => pulp::x86::V3::try_new()
                    .map(|s| Simd::vectorize(s, op))
                    .unwrap_or_else(|| unreachable!()),
                #[cfg(target_arch = "x86_64")]
                Isa::V4 => pulp::x86::V4::try_new()
                    .map(|s| Simd::vectorize(s, op))
                    .unwrap_or_else(|| unreachable!()),
            }
        }
    }

    /// Test values: `n` of them, spread over ±2.
    pub(super) fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 37 + seed) % 101) as f32 / 25.0 - 2.0)
            .collect()
    }

    #[test]
    fn every_instruction_set_gives_the_same_convolution() {
        // Rows narrower than 8, between 8 and 16, and wider than 16.
        for (c_in, c_out, h, w, kernel, pad) in [
            (2, 5, 6, 5, 3, 1),
            (1, 9, 12, 12, 3, 0),
            (3, 4, 20, 19, 5, 2),
        ] {
            let s = ConvShape {
                pad,
                act: Activation::None,
                ..ConvShape::same(2, c_in, c_out, h, w, kernel)
            };
            let (x, wt, bias) = (
                values(2 * c_in * h * w, 1),
                values(c_out * s.k(), 2),
                values(c_out, 3),
            );
            let mut results = Vec::new();
            for isa in [Isa::Scalar].into_iter().chain(available()) {
                let [bn, an] = scratch(s);
                let (mut xp, mut acc, mut z) = (
                    vec![0.0; bn],
                    vec![0.0; an],
                    vec![f32::NAN; c_out * 2 * s.out_hw()],
                );
                let wb = weights(&wt, s);
                isa.run(Group {
                    x: &x,
                    wb: &wb,
                    bias: &bias,
                    s,
                    xp: &mut xp,
                    acc: &mut acc,
                    z: &mut z,
                });
                results.push((isa, z));
            }
            let (first, want) = &results[0];
            for (isa, got) in &results[1..] {
                for (j, (a, b)) in want.iter().zip(got).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-5 * (1.0 + a.abs()),
                        "{s:?} {first:?} vs {isa:?} at {j}: {a} vs {b}"
                    );
                }
            }
        }
    }

    /// The vector instruction sets this CPU has.
    pub(super) fn available() -> Vec<Isa> {
        let mut v = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if pulp::x86::V3::try_new().is_some() {
                v.push(Isa::V3);
            }
            if pulp::x86::V4::try_new().is_some() {
                v.push(Isa::V4);
            }
        }
        v
    }
}
