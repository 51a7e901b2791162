//! SGD with momentum and L2 weight decay.
//!
//! candle-nn's `SGD` has neither momentum nor weight decay, hence this one.
//! Momentum is the averaged form `v = μv + (1-μ)(g + λw)`, `w -= lr·v`, so the step size does
//! not change with μ: `lr = 0.5, μ = 0.9` here is PyTorch's `SGD(lr=0.05, momentum=0.9)`.

use candle_core::{Tensor, Var};

use crate::Result;

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
                let decay = name.ends_with("weight");
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

    /// Replaces the momentum buffer of `name` (for resuming); false if no such slot.
    pub fn set_velocity(&mut self, name: &str, v: Tensor) -> bool {
        match self.slots.iter_mut().find(|s| s.name == name) {
            Some(slot) => {
                slot.velocity = v;
                true
            }
            None => false,
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
            // Detached: an update computed from the variable itself would carry autograd's
            // graph, and each momentum buffer would then keep every earlier step alive.
            let w = &slot.var.as_tensor().detach();
            let mut g = g.detach();
            if slot.decay && self.weight_decay != 0.0 {
                g = (g + (w * self.weight_decay)?)?;
            }
            let v = ((&slot.velocity * mu)? + (g * (1.0 - mu))?)?;
            let next = (w - (&v * lr)?)?;
            slot.var.set(&next)?;
            slot.velocity = v.detach();
        }
        Ok(())
    }
}
