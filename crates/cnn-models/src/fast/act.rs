//! tanh, GELU and SiLU as one parallel pass each way, with approximations that vectorise.
//!
//! candle applies them one element at a time through libm on one thread, and a training
//! step of LeNet-5 spent over a quarter of its time in `tanhf` and `expm1f`. Here `exp` is
//! Cody-Waite range reduction and a degree-6 polynomial (relative error below 2e-7), `erf`
//! is Abramowitz and Stegun 7.1.26 refined to the same order through `exp`; both are plain
//! branch-free arithmetic that LLVM vectorises.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};

use super::ops::{is_fast_capable, slice, with_slices};
use crate::Activation;
use crate::par::for_each_piece;

/// Values per parallel piece.
const PIECE: usize = 16 * 1024;

/// `e^x` for `x` in about ±87 (beyond, the result saturates to 0 or a large finite value).
#[inline(always)]
fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 87.0);
    // Round to nearest by adding and taking away 1.5·2^23 (exact for |t| < 2^22): `round`
    // is a libm call that stops the loop from vectorising.
    const SHIFTER: f32 = 12_582_912.0;
    let n = (x * std::f32::consts::LOG2_E + SHIFTER) - SHIFTER;
    // ln 2 in two parts, so that n·ln2 is subtracted without rounding error.
    let r = (x - n * 0.693_145_75) - n * 1.428_606_8e-6;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (0.166_666_67
                    + r * (0.041_666_668 + r * (0.008_333_334 + r * 0.001_388_889)))));
    // 2^n without a float-to-int conversion (`as i32` saturates, which does not vectorise):
    // n + 127 (1..=253 here) sits in the low mantissa bits of SHIFTER + 127 + n, and
    // shifting them into the exponent field drops everything above.
    let scale = f32::from_bits((n + (SHIFTER + 127.0)).to_bits() << 23);
    p * scale
}

#[inline(always)]
fn tanh(x: f32) -> f32 {
    // 1 - 2/(e^{2|x|} + 1), sign restored: no cancellation for large |x|, and an absolute
    // error of a few 1e-8 near 0.
    let e = exp(2.0 * x.abs());
    let t = 1.0 - 2.0 / (e + 1.0);
    t.copysign(x)
}

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// erf(x), absolute error below 2e-7 (Abramowitz and Stegun 7.1.26 is 1.5e-7).
#[inline(always)]
fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_8 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let y = 1.0 - poly * exp(-a * a);
    y.copysign(x)
}

const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// 1/sqrt(2π).
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

#[inline(always)]
fn forward(act: Activation, x: f32) -> f32 {
    match act {
        Activation::Tanh => tanh(x),
        Activation::Gelu => 0.5 * x * (1.0 + erf(x * FRAC_1_SQRT_2)),
        Activation::Silu => x * sigmoid(x),
        Activation::Relu => x.max(0.0),
        Activation::None => x,
    }
}

/// The derivative at input `x` with output `y`.
#[inline(always)]
fn derivative(act: Activation, x: f32, y: f32) -> f32 {
    match act {
        Activation::Tanh => 1.0 - y * y,
        Activation::Gelu => {
            0.5 * (1.0 + erf(x * FRAC_1_SQRT_2)) + x * FRAC_1_SQRT_2PI * exp(-0.5 * x * x)
        }
        Activation::Silu => {
            let s = sigmoid(x);
            s * (1.0 + x * (1.0 - s))
        }
        Activation::Relu => {
            if x > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        Activation::None => 1.0,
    }
}

/// Which way a pass runs: forward, or backward with the outputs `y` and their gradient `g`.
#[derive(Clone, Copy)]
enum Pass<'a> {
    Forward,
    Backward { y: &'a [f32], g: &'a [f32] },
}

/// One piece of a pass: the outputs `out` from the inputs `x` (forward), or the input
/// gradient `out` from `x` and the pass's outputs and their gradient (backward).
///
/// A `pulp` operation, so that its loops are compiled into a copy for each instruction set
/// (AVX-512, AVX2 + FMA, the baseline's SSE2) and the best one runs: the polynomials above
/// are arithmetic-bound, and AVX-512 has four times SSE2's lanes. (A closure called from
/// pulp's dispatch is not reliably inlined into those copies; a method marked
/// `inline(always)` is.) The arithmetic is the same on every path: Rust fuses no
/// multiply-add and reorders no sum on its own, so the bits are too.
struct Piece<'a> {
    act: Activation,
    x: &'a [f32],
    pass: Pass<'a>,
    out: &'a mut [f32],
}

impl pulp::WithSimd for Piece<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let Piece { act, x, pass, out } = self;
        // One loop per activation, the match outside it, so that each vectorises.
        let Pass::Backward { y, g } = pass else {
            match act {
                Activation::Tanh => out.iter_mut().zip(x).for_each(|(o, &v)| *o = tanh(v)),
                Activation::Silu => out
                    .iter_mut()
                    .zip(x)
                    .for_each(|(o, &v)| *o = v * sigmoid(v)),
                _ => out
                    .iter_mut()
                    .zip(x)
                    .for_each(|(o, &v)| *o = forward(act, v)),
            }
            return;
        };
        let grads = out.iter_mut().zip(g);
        match act {
            Activation::Tanh => grads
                .zip(y)
                .for_each(|((o, &g), &y)| *o = g * (1.0 - y * y)),
            Activation::Silu => grads.zip(x).for_each(|((o, &g), &x)| {
                let s = sigmoid(x);
                *o = g * (s * (1.0 + x * (1.0 - s)));
            }),
            Activation::Gelu => grads
                .zip(x)
                .for_each(|((o, &g), &x)| *o = g * derivative(Activation::Gelu, x, 0.0)),
            _ => grads
                .zip(x.iter().zip(y))
                .for_each(|((o, &g), (&x, &y))| *o = g * derivative(act, x, y)),
        }
    }
}

/// `v = act(v)` over one worker's slice, in the copy pulp picks for this CPU: for an op
/// that applies its activation to its own scratch (the conv's tanh).
pub(crate) fn in_place(act: Activation, v: &mut [f32]) {
    pulp::Arch::new().dispatch(InPlace { act, v });
}

/// [`in_place`]'s arguments, compiled like [`Piece`].
struct InPlace<'a> {
    act: Activation,
    v: &'a mut [f32],
}

impl pulp::WithSimd for InPlace<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let InPlace { act, v } = self;
        match act {
            Activation::Tanh => v.iter_mut().for_each(|v| *v = tanh(*v)),
            _ => v.iter_mut().for_each(|v| *v = forward(act, *v)),
        }
    }
}

/// Runs [`Piece`]s of `pass` over `out` in parallel.
fn par_pass(act: Activation, out: &mut [f32], x: &[f32], pass: Pass<'_>) {
    for_each_piece(out, PIECE, |i, out| {
        let at = i * PIECE..i * PIECE + out.len();
        let pass = match pass {
            Pass::Forward => Pass::Forward,
            Pass::Backward { y, g } => Pass::Backward {
                y: &y[at.clone()],
                g: &g[at.clone()],
            },
        };
        pulp::Arch::new().dispatch(Piece {
            act,
            x: &x[at],
            pass,
            out,
        });
    });
}

struct Act(Activation);

impl CustomOp1 for Act {
    fn name(&self) -> &'static str {
        "fast-activation"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = slice(xs, xl, "activation x")?;
        let mut y = vec![0.0f32; x.len()];
        par_pass(self.0, &mut y, x, Pass::Forward);
        Ok((CpuStorage::F32(y), xl.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let dx = with_slices([x, res, grad, x], |[xv, yv, gv, _]| {
            let mut dx = vec![0.0f32; xv.len()];
            par_pass(self.0, &mut dx, xv, Pass::Backward { y: yv, g: gv });
            Ok(dx)
        })?;
        Ok(Some(Tensor::from_vec(dx, x.shape(), x.device())?))
    }
}

/// `act(x)`: one parallel op on CPU `f32` tensors, candle's own ops elsewhere.
pub fn activation(x: &Tensor, act: Activation) -> Result<Tensor> {
    if act == Activation::None {
        return Ok(x.clone());
    }
    if is_fast_capable(x) {
        return x.contiguous()?.apply_op1(Act(act));
    }
    reference_activation(x, act)
}

/// `act(x)` with candle's ops (`gelu_erf` for GELU).
pub fn reference_activation(x: &Tensor, act: Activation) -> Result<Tensor> {
    match act {
        Activation::Relu => x.relu(),
        Activation::Tanh => x.tanh(),
        Activation::Gelu => x.gelu_erf(),
        Activation::Silu => x.silu(),
        Activation::None => Ok(x.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_approximations_are_within_a_few_1e_7_of_libm() {
        for i in -20_000..=20_000 {
            let x = i as f32 * 1e-3;
            let (xd, err) = (f64::from(x), |a: f32, b: f64| (f64::from(a) - b).abs());
            assert!(err(exp(x.min(10.0)), xd.min(10.0).exp()) <= 3e-7 * xd.min(10.0).exp());
            assert!(err(tanh(x), xd.tanh()) < 3e-7, "tanh {x}");
            assert!(
                err(sigmoid(x), 1.0 / (1.0 + (-xd).exp())) < 3e-7,
                "sigmoid {x}"
            );
            let gelu = 0.5 * xd * (1.0 + libm_erf(xd / 2f64.sqrt()));
            assert!(
                err(forward(Activation::Gelu, x), gelu) < 5e-6 * xd.abs().max(1.0),
                "gelu {x}"
            );
        }
        assert_eq!(tanh(100.0), 1.0);
        assert_eq!(tanh(-100.0), -1.0);
        assert_eq!(exp(-200.0), exp(-87.0));
    }

    /// erf in f64 by its series / continued fraction, for the test only.
    fn libm_erf(x: f64) -> f64 {
        // Abramowitz and Stegun 7.1.28 is not precise enough; integrate exp(-t²) instead.
        let n = 20_000;
        let h = x / n as f64;
        let f = |t: f64| (-t * t).exp();
        let mut s = f(0.0) + f(x);
        for k in 1..n {
            s += f(k as f64 * h) * if k % 2 == 1 { 4.0 } else { 2.0 };
        }
        s * h / 3.0 * 2.0 / std::f64::consts::PI.sqrt()
    }
}
