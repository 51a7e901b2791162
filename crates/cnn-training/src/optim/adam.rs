//! Adam and AdamW as PyTorch computes them: three in-place CPU passes per variable (first
//! moment, second moment, step), candle's ops on other devices.

use candle_core::{CpuStorage, InplaceOp3, Layout, Tensor};

use super::inplace::{in_place_capable, par_zip, three};
use crate::Result;

/// Adam's β₁ and β₂ (PyTorch's defaults).
pub const ADAM_BETAS: (f64, f64) = (0.9, 0.999);
/// Adam's ε (PyTorch's default).
pub const ADAM_EPS: f64 = 1e-8;

/// `m ← βm + (1-β)·g'` (or `g'²` when `square`), where `g' = g + λw` with coupled decay.
struct Moment {
    beta: f32,
    square: bool,
    decay: Option<f32>,
}

impl InplaceOp3 for Moment {
    fn name(&self) -> &'static str {
        "adam-moment"
    }

    fn cpu_fwd(
        &self,
        m: &mut CpuStorage,
        lm: &Layout,
        g: &CpuStorage,
        lg: &Layout,
        w: &CpuStorage,
        lw: &Layout,
    ) -> candle_core::Result<()> {
        let (m, g, w) = three(self.name(), (m, lm), (g, lg), (w, lw))?;
        let (beta, rest, wd) = (self.beta, 1.0 - self.beta, self.decay.unwrap_or(0.0));
        let square = self.square;
        par_zip(m, g, w, |m, g, w| {
            for ((m, &g), &w) in m.iter_mut().zip(g).zip(w) {
                let g = g + wd * w;
                let x = if square { g * g } else { g };
                *m = beta * *m + rest * x;
            }
        });
        Ok(())
    }
}

/// `w ← w·(1 - lr·λ) - step·m / (sqrt(v)/sqrt(bc₂) + ε)`, the decoupled shrink for AdamW.
struct Step {
    step_size: f32,
    bc2_sqrt: f32,
    eps: f32,
    shrink: f32,
}

impl InplaceOp3 for Step {
    fn name(&self) -> &'static str {
        "adam-step"
    }

    fn cpu_fwd(
        &self,
        w: &mut CpuStorage,
        lw: &Layout,
        m: &CpuStorage,
        lm: &Layout,
        v: &CpuStorage,
        lv: &Layout,
    ) -> candle_core::Result<()> {
        let (w, m, v) = three(self.name(), (w, lw), (m, lm), (v, lv))?;
        par_zip(w, m, v, |w, m, v| {
            for ((w, &m), &v) in w.iter_mut().zip(m).zip(v) {
                let denom = v.sqrt() / self.bc2_sqrt + self.eps;
                *w = *w * self.shrink - self.step_size * (m / denom);
            }
        });
        Ok(())
    }
}

/// One Adam step of the variable `w` with gradient `g` and moments `m`, `v`, at step `t`
/// (from 1) and learning rate `lr`; `decay` is λ (coupled into the gradient, or, when
/// `decoupled`, AdamW's shrink of the weights).
#[allow(clippy::too_many_arguments)]
pub(super) fn adam_step(
    w: &candle_core::Var,
    g: &Tensor,
    m: &mut Tensor,
    v: &mut Tensor,
    t: u64,
    lr: f64,
    decay: Option<f64>,
    decoupled: bool,
) -> Result<()> {
    let wt = w.as_tensor();
    let in_place = in_place_capable([m, g, wt]) && in_place_capable([v, g, wt]);
    let hyper = (t, lr, decay, decoupled);
    adam_step_on(w, g, (m, v), hyper, in_place)
}

/// [`adam_step`], in place on the CPU or with candle's ops.
pub(super) fn adam_step_on(
    w: &candle_core::Var,
    g: &Tensor,
    (m, v): (&mut Tensor, &mut Tensor),
    (t, lr, decay, decoupled): (u64, f64, Option<f64>, bool),
    in_place: bool,
) -> Result<()> {
    let (b1, b2) = ADAM_BETAS;
    let bc1 = 1.0 - b1.powi(t.min(i32::MAX as u64) as i32);
    let bc2 = 1.0 - b2.powi(t.min(i32::MAX as u64) as i32);
    let coupled = if decoupled { None } else { decay };
    let shrink = match (decoupled, decay) {
        (true, Some(wd)) => 1.0 - lr * wd,
        _ => 1.0,
    };
    let wt = w.as_tensor();
    if in_place {
        let coupled = coupled.map(|d| d as f32);
        m.inplace_op3(
            g,
            wt,
            &Moment {
                beta: b1 as f32,
                square: false,
                decay: coupled,
            },
        )?;
        v.inplace_op3(
            g,
            wt,
            &Moment {
                beta: b2 as f32,
                square: true,
                decay: coupled,
            },
        )?;
        let step = Step {
            step_size: (lr / bc1) as f32,
            bc2_sqrt: bc2.sqrt() as f32,
            eps: ADAM_EPS as f32,
            shrink: shrink as f32,
        };
        wt.inplace_op3(m, v, &step)?;
        return Ok(());
    }
    let (wd, g) = (&wt.detach(), g.detach());
    let g = match coupled {
        Some(d) => (g + (wd * d)?)?,
        None => g,
    };
    *m = ((&*m * b1)? + (&g * (1.0 - b1))?)?.detach();
    *v = ((&*v * b2)? + (g.sqr()? * (1.0 - b2))?)?.detach();
    let denom = ((v.sqrt()? / bc2.sqrt())? + ADAM_EPS)?;
    let next = ((wd * shrink)? - ((&*m / denom)? * (lr / bc1))?)?;
    w.set(&next)?;
    Ok(())
}
