//! SGD with momentum: the in-place CPU update and candle's ops for other devices.

use candle_core::{CpuStorage, InplaceOp2, InplaceOp3, Layout, Tensor};

use super::inplace::{f32_slice, f32_slice_mut, layout_error, par_zip, three};
use crate::Result;

/// `v ← μv + (1-μ)(g + λw)` in place on the CPU, in one pass and with no allocation:
/// candle's element-wise ops would allocate and walk a fresh tensor for each of the seven
/// steps. The arithmetic is the same `f32` operations in the same order as
/// [`Sgd::backward_step`]'s fallback (candle's `t * x` is `t·x + 0`), so both give
/// bit-identical weights.
pub(super) struct MomentumUpdate {
    pub(super) mu: f32,
    pub(super) one_minus_mu: f32,
    /// λ, or `None` for no decay (biases).
    pub(super) decay: Option<f32>,
}

impl InplaceOp3 for MomentumUpdate {
    fn name(&self) -> &'static str {
        "sgd-momentum-update"
    }

    fn cpu_fwd(
        &self,
        v: &mut CpuStorage,
        lv: &Layout,
        g: &CpuStorage,
        lg: &Layout,
        w: &CpuStorage,
        lw: &Layout,
    ) -> candle_core::Result<()> {
        let (v, g, w) = three(self.name(), (v, lv), (g, lg), (w, lw))?;
        let (mu, omm) = (self.mu, self.one_minus_mu);
        // One loop per case, the decay test outside it, so that LLVM vectorises each.
        par_zip(v, g, w, |v, g, w| match self.decay {
            Some(wd) => {
                for ((v, &g), &w) in v.iter_mut().zip(g).zip(w) {
                    let g = g + (w * wd + 0.0);
                    *v = (*v * mu + 0.0) + (g * omm + 0.0);
                }
            }
            None => {
                for (v, &g) in v.iter_mut().zip(g) {
                    *v = (*v * mu + 0.0) + (g * omm + 0.0);
                }
            }
        });
        Ok(())
    }
}

/// `w ← w - lr·v` in place on the CPU (see [`MomentumUpdate`] for why).
pub(super) struct ScaledSub {
    pub(super) lr: f32,
}

impl InplaceOp2 for ScaledSub {
    fn name(&self) -> &'static str {
        "sgd-scaled-sub"
    }

    fn cpu_fwd(
        &self,
        w: &mut CpuStorage,
        lw: &Layout,
        v: &CpuStorage,
        lv: &Layout,
    ) -> candle_core::Result<()> {
        let err = || layout_error(self.name());
        let w = f32_slice_mut(w, lw).ok_or_else(err)?;
        let v = f32_slice(v, lv).ok_or_else(err)?;
        if v.len() != w.len() {
            return Err(err());
        }
        par_zip(w, v, v, |w, v, _| {
            for (w, &v) in w.iter_mut().zip(v) {
                *w -= v * self.lr + 0.0;
            }
        });
        Ok(())
    }
}

/// One update with candle's ops: the next weights and momentum buffer, both detached.
///
/// Detached: an update computed from the variable itself would carry autograd's graph, and
/// each momentum buffer would then keep every earlier step alive.
pub(super) fn candle_update(
    w: &Tensor,
    g: &Tensor,
    velocity: &Tensor,
    mu: f64,
    decay: Option<f64>,
    lr: f64,
) -> Result<(Tensor, Tensor)> {
    let w = &w.detach();
    let mut g = g.detach();
    if let Some(wd) = decay {
        g = (g + (w * wd)?)?;
    }
    let v = ((velocity * mu)? + (g * (1.0 - mu))?)?;
    let next = (w - (&v * lr)?)?;
    Ok((next, v.detach()))
}
