//! The optimizers: SGD with momentum and L2 weight decay, Adam and AdamW.
//!
//! candle-nn's `SGD` has neither momentum nor weight decay, and its `AdamW` only the
//! decoupled decay, hence these. SGD's momentum is the averaged form
//! `v = μv + (1-μ)(g + λw)`, `w -= lr·v`, so the step size does not change with μ:
//! `lr = 0.5, μ = 0.9` here is PyTorch's `SGD(lr=0.05, momentum=0.9)`. Adam and AdamW are
//! PyTorch's, with its defaults (β = 0.9, 0.999, ε = 1e-8); weight decay λ is coupled into
//! the gradient for SGD and Adam, and decoupled (`w ← w·(1 - lr·λ)`) for AdamW.

mod adam;
mod inplace;
mod sgd;

use candle_core::{Tensor, Var};
use serde::{Deserialize, Serialize};

pub use adam::{ADAM_BETAS, ADAM_EPS};
use inplace::in_place_capable;
use sgd::{MomentumUpdate, ScaledSub, candle_update};

use crate::Result;

/// Which optimizer trains the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// SGD with (averaged) momentum and coupled L2 decay, the default.
    #[default]
    Sgd,
    /// Adam with coupled L2 decay.
    Adam,
    /// Adam with decoupled weight decay.
    AdamW,
}

impl OptimizerKind {
    /// Every optimizer.
    pub const ALL: [OptimizerKind; 3] = [
        OptimizerKind::Sgd,
        OptimizerKind::Adam,
        OptimizerKind::AdamW,
    ];

    /// Its name in recipes and flags: `sgd`, `adam`, `adamw`.
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Adam => "adam",
            OptimizerKind::AdamW => "adamw",
        }
    }

    /// The optimizer named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether this is SGD (recipes leave the default out when they are written).
    pub fn is_sgd(&self) -> bool {
        *self == OptimizerKind::Sgd
    }
}

/// One trainable variable with its optimizer state.
#[derive(Debug)]
pub struct Slot {
    /// Name in the model (`conv1.weight`).
    pub name: String,
    /// The variable.
    pub var: Var,
    /// Momentum buffer (SGD), or first moment (Adam), same shape.
    pub velocity: Tensor,
    /// Second moment (Adam and AdamW only), same shape.
    pub second: Option<Tensor>,
    /// Whether weight decay applies (weights yes, biases no).
    pub decay: bool,
}

/// The optimizer: its kind, the variables it trains and their state.
#[derive(Debug)]
pub struct Optimizer {
    kind: OptimizerKind,
    slots: Vec<Slot>,
    momentum: f64,
    weight_decay: f64,
    /// Steps taken (Adam's bias correction uses it).
    steps: u64,
}

impl Optimizer {
    /// An optimizer of `kind` over `vars` (name, variable), sorted by name for a fixed
    /// update order; `momentum` is SGD's μ, `weight_decay` λ.
    pub fn new(
        kind: OptimizerKind,
        mut vars: Vec<(String, Var)>,
        momentum: f64,
        weight_decay: f64,
    ) -> Result<Self> {
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let slots = vars
            .into_iter()
            .map(|(name, var)| {
                let velocity = var.as_tensor().zeros_like()?;
                let second = match kind {
                    OptimizerKind::Sgd => None,
                    _ => Some(var.as_tensor().zeros_like()?),
                };
                // Conv and linear weights; not biases, nor batch norms' scales.
                let decay = name.ends_with("weight") && var.rank() >= 2;
                Ok(Slot {
                    name,
                    var,
                    velocity,
                    second,
                    decay,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            kind,
            slots,
            momentum,
            weight_decay,
            steps: 0,
        })
    }

    /// Which optimizer this is.
    pub fn kind(&self) -> OptimizerKind {
        self.kind
    }

    /// Sets the steps taken (for resuming: Adam's bias correction depends on it).
    pub fn set_steps(&mut self, steps: u64) {
        self.steps = steps;
    }

    /// Replaces Adam's second moment of `name` with a copy of `v`; false if no such slot or
    /// the optimizer keeps none.
    pub fn set_second(&mut self, name: &str, v: &Tensor) -> Result<bool> {
        match self.slots.iter_mut().find(|s| s.name == name) {
            Some(Slot {
                second: Some(second),
                ..
            }) => {
                *second = v.copy()?;
                Ok(true)
            }
            _ => Ok(false),
        }
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
        self.steps += 1;
        for slot in &mut self.slots {
            let Some(g) = grads.get(slot.var.as_tensor()) else {
                continue;
            };
            if let Some(second) = &mut slot.second {
                let decay = (slot.decay && self.weight_decay != 0.0).then_some(self.weight_decay);
                let decoupled = self.kind == OptimizerKind::AdamW;
                let (m, t) = (&mut slot.velocity, self.steps);
                adam::adam_step(&slot.var, g, m, second, t, lr, decay, decoupled)?;
                continue;
            }
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
