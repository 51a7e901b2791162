//! Batch norm as PyTorch's `BatchNorm2d` computes it: batch statistics while training (the
//! running averages updated with momentum 0.1), the running statistics in evaluation.

use candle_core::Tensor;
use candle_nn::{Init, VarBuilder};

use crate::{OpsPath, Result, fast};

/// Weight of each new batch in the running statistics (PyTorch's `momentum`).
pub const BN_MOMENTUM: f64 = 0.1;

/// A batch norm over the channels of `[B, C, H, W]` maps, with learnt scale (`weight`) and
/// shift (`bias`), and running `running_mean` and `running_var`, named as PyTorch names them.
#[derive(Debug)]
pub struct BatchNorm {
    weight: Tensor,
    bias: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
}

impl BatchNorm {
    /// A batch norm of `channels` channels; scale 1, shift 0, running mean 0 and variance 1
    /// unless the builder's variables already hold values.
    pub fn new(channels: usize, vb: VarBuilder<'_>) -> Result<Self> {
        let get = |name: &str, v: f64| vb.get_with_hints(channels, name, Init::Const(v));
        Ok(Self {
            weight: get("weight", 1.0)?,
            bias: get("bias", 0.0)?,
            running_mean: get("running_mean", 0.0)?,
            running_var: get("running_var", 1.0)?,
        })
    }

    /// Its four tensors by their PyTorch names.
    pub(crate) fn tensors(&self) -> [(&'static str, &Tensor); 4] {
        [
            ("weight", &self.weight),
            ("bias", &self.bias),
            ("running_mean", &self.running_mean),
            ("running_var", &self.running_var),
        ]
    }

    /// The running mean and variance, per channel.
    pub fn running_stats(&self) -> (&Tensor, &Tensor) {
        (&self.running_mean, &self.running_var)
    }

    /// The convolution `(w, b)` followed by this batch norm in evaluation, as one
    /// convolution: `w·s` and `(b − mean)·s + β` with `s = γ / sqrt(running_var + eps)` per
    /// output channel. Evaluation then runs one fused conv (+ReLU) instead of a conv and a
    /// pass over its whole output.
    pub fn fold_into_conv(&self, w: &Tensor, b: &Tensor) -> Result<(Tensor, Tensor)> {
        let scale = ((&self.running_var + fast::BN_EPS)?.sqrt()?.recip()? * &self.weight)?;
        let c = scale.elem_count();
        let w = w.broadcast_mul(&scale.reshape((c, 1, 1, 1))?)?;
        let b = ((b - &self.running_mean)? * &scale)?.add(&self.bias)?;
        Ok((w, b))
    }

    /// Normalises `x` (then ReLU when `relu`): with the batch's statistics, updating the
    /// running ones, when `train`; with the running ones otherwise.
    pub fn forward(&self, x: &Tensor, ops: OpsPath, train: bool, relu: bool) -> Result<Tensor> {
        let (w, b) = (&self.weight, &self.bias);
        if !train {
            let stats = [w, b, &self.running_mean, &self.running_var];
            return Ok(match ops {
                OpsPath::Fast => fast::batchnorm_eval(x, stats, relu)?,
                OpsPath::Reference => fast::reference_batchnorm_eval(x, stats, relu)?,
            });
        }
        let (y, mean, var) = match ops {
            OpsPath::Fast => fast::batchnorm(x, w, b, relu)?,
            OpsPath::Reference => fast::reference_batchnorm(x, w, b, relu)?,
        };
        // PyTorch keeps the unbiased variance in its running average.
        let (n, _, h, wd) = x.dims4()?;
        let count = (n * h * wd) as f64;
        let unbiased = if count > 1.0 {
            (var * (count / (count - 1.0)))?
        } else {
            var
        };
        update(&self.running_mean, &mean)?;
        update(&self.running_var, &unbiased)?;
        Ok(y)
    }
}

/// `running ← (1 - m)·running + m·batch`, written into the variable's own storage (shared
/// with the `VarMap`, so checkpoints see it).
fn update(running: &Tensor, batch: &Tensor) -> Result<()> {
    let next = ((running * (1.0 - BN_MOMENTUM))? + (batch * BN_MOMENTUM)?)?.detach();
    running.slice_set(&next, 0, 0)?;
    Ok(())
}

/// Whether a variable named `name` is a running statistic (not trained, not decayed).
pub fn is_running_stat(name: &str) -> bool {
    name.ends_with(".running_mean") || name.ends_with(".running_var")
}
