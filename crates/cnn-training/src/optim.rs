//! SGD with momentum and L2 weight decay.
//!
//! candle-nn's `SGD` has neither momentum nor weight decay, hence this one.
//! Momentum is the averaged form `v = μv + (1-μ)(g + λw)`, `w -= lr·v`, so the step size does
//! not change with μ: `lr = 0.5, μ = 0.9` here is PyTorch's `SGD(lr=0.05, momentum=0.9)`.

use candle_core::{CpuStorage, DType, InplaceOp2, InplaceOp3, Layout, Tensor, Var};

use crate::Result;

/// The contiguous `f32` slice of a CPU storage, or `None` (the caller then falls back).
fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout) -> Option<&'a [f32]> {
    let (start, end) = l.contiguous_offsets()?;
    match s {
        CpuStorage::F32(v) => v.get(start..end),
        _ => None,
    }
}

fn f32_slice_mut<'a>(s: &'a mut CpuStorage, l: &Layout) -> Option<&'a mut [f32]> {
    let (start, end) = l.contiguous_offsets()?;
    match s {
        CpuStorage::F32(v) => v.get_mut(start..end),
        _ => None,
    }
}

fn layout_error(op: &str) -> candle_core::Error {
    candle_core::Error::Msg(format!("{op}: expects contiguous f32 tensors of one size"))
}

/// Values per piece of work in [`par_zip`]: large enough that a piece outweighs handing
/// it to a worker, small enough that `medium_cnn`'s hidden layer splits across cores.
const UPDATE_CHUNK: usize = 16 * 1024;

/// Runs `f` on matching pieces of `out`, `a` and `b` (all of one length) on candle's CPU
/// thread pool. The updates are element-wise, so the split changes no result, and a large
/// layer's update does not leave the other cores idle.
fn par_zip(out: &mut [f32], a: &[f32], b: &[f32], f: impl Fn(&mut [f32], &[f32], &[f32]) + Sync) {
    if out.len() <= UPDATE_CHUNK {
        return f(out, a, b);
    }
    cnn_models::par::for_each_piece(out, UPDATE_CHUNK, |i, piece| {
        let at = i * UPDATE_CHUNK..i * UPDATE_CHUNK + piece.len();
        f(piece, &a[at.clone()], &b[at]);
    });
}

/// `v ← μv + (1-μ)(g + λw)` in place on the CPU, in one pass and with no allocation:
/// candle's element-wise ops would allocate and walk a fresh tensor for each of the seven
/// steps. The arithmetic is the same `f32` operations in the same order as
/// [`Sgd::backward_step`]'s fallback (candle's `t * x` is `t·x + 0`), so both give
/// bit-identical weights.
struct MomentumUpdate {
    mu: f32,
    one_minus_mu: f32,
    /// λ, or `None` for no decay (biases).
    decay: Option<f32>,
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
        let err = || layout_error(self.name());
        let v = f32_slice_mut(v, lv).ok_or_else(err)?;
        let g = f32_slice(g, lg).ok_or_else(err)?;
        let w = f32_slice(w, lw).ok_or_else(err)?;
        if g.len() != v.len() || w.len() != v.len() {
            return Err(err());
        }
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
struct ScaledSub {
    lr: f32,
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
fn candle_update(
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

/// Whether the in-place CPU update applies: contiguous CPU `f32` tensors of one shape.
fn in_place_capable(ts: [&Tensor; 3]) -> bool {
    ts.iter().all(|t| {
        t.device().is_cpu()
            && t.dtype() == DType::F32
            && t.is_contiguous()
            && t.dims() == ts[0].dims()
    })
}

/// One trainable variable with its momentum buffer.
#[derive(Debug)]
pub struct Slot {
    /// Name in the model (`conv1.weight`).
    pub name: String,
    /// The variable.
    pub var: Var,
    /// Momentum buffer, same shape.
    pub velocity: Tensor,
    /// Whether weight decay applies (weights yes, biases no).
    pub decay: bool,
}

/// The optimizer.
#[derive(Debug)]
pub struct Sgd {
    slots: Vec<Slot>,
    momentum: f64,
    weight_decay: f64,
}

impl Sgd {
    /// An optimizer over `vars` (name, variable), sorted by name for a fixed update order.
    pub fn new(mut vars: Vec<(String, Var)>, momentum: f64, weight_decay: f64) -> Result<Self> {
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let slots = vars
            .into_iter()
            .map(|(name, var)| {
                let velocity = var.as_tensor().zeros_like()?;
                // Conv and linear weights; not biases, nor batch norms' scales.
                let decay = name.ends_with("weight") && var.rank() >= 2;
                Ok(Slot {
                    name,
                    var,
                    velocity,
                    decay,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            slots,
            momentum,
            weight_decay,
        })
    }

    /// The variables and their momentum buffers.
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// Replaces the momentum buffer of `name` (for resuming) with a copy of `v`; false if no
    /// such slot. (A copy, because the buffer is updated in place.)
    pub fn set_velocity(&mut self, name: &str, v: &Tensor) -> Result<bool> {
        match self.slots.iter_mut().find(|s| s.name == name) {
            Some(slot) => {
                slot.velocity = v.copy()?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Computes gradients of `loss` and applies one step at learning rate `lr`.
    pub fn backward_step(&mut self, loss: &Tensor, lr: f64) -> Result<()> {
        let grads = loss.backward()?;
        let mu = self.momentum;
        for slot in &mut self.slots {
            let Some(g) = grads.get(slot.var.as_tensor()) else {
                continue;
            };
            let w = slot.var.as_tensor();
            if in_place_capable([&slot.velocity, g, w]) {
                let decay =
                    (slot.decay && self.weight_decay != 0.0).then_some(self.weight_decay as f32);
                slot.velocity.inplace_op3(
                    g,
                    w,
                    &MomentumUpdate {
                        mu: mu as f32,
                        one_minus_mu: (1.0 - mu) as f32,
                        decay,
                    },
                )?;
                w.inplace_op2(&slot.velocity, &ScaledSub { lr: lr as f32 })?;
                continue;
            }
            // Other devices and layouts: candle's own ops.
            let decay = (slot.decay && self.weight_decay != 0.0).then_some(self.weight_decay);
            let (next, v) = candle_update(w, g, &slot.velocity, mu, decay, lr)?;
            slot.var.set(&next)?;
            slot.velocity = v;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
