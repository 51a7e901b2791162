//! candle `CustomOp` wrappers for batch norm and for pools (any window, and the plain 2x2
//! max-pool), with their backward passes, and the candle-op references they are tested
//! against.

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp1, CustomOp3, Layout, Result, Shape, Tensor};

use super::kernels::{self, NormShape, PoolShape};
use super::ops::{is_fast_capable, slice, with_slices};
use crate::PoolKind;

/// Batch norm's epsilon (PyTorch's `BatchNorm2d` default).
pub const BN_EPS: f64 = 1e-5;

fn norm_shape(x: &Shape) -> Result<NormShape> {
    let (batch, channels, h, w) = x.dims4()?;
    Ok(NormShape {
        batch,
        channels,
        hw: h * w,
    })
}

fn invstd(var: &[f32]) -> Vec<f32> {
    var.iter()
        .map(|&v| (1.0 / (f64::from(v) + BN_EPS).sqrt()) as f32)
        .collect()
}

/// Per channel: the batch's mean and biased variance, once a forward has run.
type Stats = Arc<Mutex<Option<(Vec<f32>, Vec<f32>)>>>;

/// Training-mode batch norm (then ReLU when `relu`); the batch's statistics are kept for
/// the backward and for the caller's running averages.
struct BatchNorm {
    relu: bool,
    /// Per channel: mean and biased variance of the batch.
    stats: Stats,
}

fn poisoned() -> candle_core::Error {
    candle_core::Error::Msg("batch norm statistics lock poisoned".into())
}

impl CustomOp3 for BatchNorm {
    fn name(&self) -> &'static str {
        "fast-batchnorm"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let s = norm_shape(xl.shape())?;
        let (x, gamma, beta) = (
            slice(xs, xl, "bn x")?,
            slice(gs, gl, "bn γ")?,
            slice(bs, bl, "bn β")?,
        );
        if gamma.len() != s.channels || beta.len() != s.channels {
            candle_core::bail!(
                "batch norm: {} channels but {} scales",
                s.channels,
                gamma.len()
            );
        }
        let (mean, var) = kernels::batch_stats(x, s);
        let scale: Vec<f32> = invstd(&var).iter().zip(gamma).map(|(i, g)| i * g).collect();
        let y = kernels::affine(x, s, &mean, &scale, beta, self.relu);
        *self.stats.lock().map_err(|_| poisoned())? = Some((mean, var));
        Ok((CpuStorage::F32(y), xl.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let s = norm_shape(x.shape())?;
        let Some((mean, var)) = self.stats.lock().map_err(|_| poisoned())?.clone() else {
            candle_core::bail!("batch norm backward before its forward");
        };
        let invstd = invstd(&var);
        let (dx, dg, db) = with_slices([x, gamma, res, grad], |[xv, gv, yv, dv]| {
            Ok(kernels::batchnorm_bwd(
                [xv, yv, dv],
                s,
                gv,
                &mean,
                &invstd,
                self.relu,
            ))
        })?;
        let dev = x.device();
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), dev)?),
            Some(Tensor::from_vec(dg, s.channels, dev)?),
            Some(Tensor::from_vec(db, s.channels, dev)?),
        ))
    }
}

/// Training-mode batch norm of `x: [B, C, H, W]` with scale `gamma` and shift `beta`, then
/// ReLU when `relu`. Returns the output and the batch's per-channel mean and biased
/// variance (detached), from which the caller updates its running statistics.
pub fn batchnorm(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    relu: bool,
) -> Result<(Tensor, Tensor, Tensor)> {
    if [x, gamma, beta].iter().all(|t| is_fast_capable(t)) {
        let stats = Arc::new(Mutex::new(None));
        let op = BatchNorm {
            relu,
            stats: Arc::clone(&stats),
        };
        let y = x
            .contiguous()?
            .apply_op3(&gamma.contiguous()?, &beta.contiguous()?, op)?;
        let Some((mean, var)) = stats.lock().map_err(|_| poisoned())?.clone() else {
            candle_core::bail!("batch norm forward kept no statistics");
        };
        let c = mean.len();
        let dev = x.device();
        return Ok((
            y,
            Tensor::from_vec(mean, c, dev)?,
            Tensor::from_vec(var, c, dev)?,
        ));
    }
    reference_batchnorm(x, gamma, beta, relu)
}

/// [`batchnorm`] from candle's own ops (mean, variance and broadcasts), differentiated by
/// candle's autograd.
pub fn reference_batchnorm(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    relu: bool,
) -> Result<(Tensor, Tensor, Tensor)> {
    let c = gamma.elem_count();
    let per_channel = |t: &Tensor| t.reshape((1, c, 1, 1));
    let mean = x.mean_keepdim(3)?.mean_keepdim(2)?.mean_keepdim(0)?;
    let centred = x.broadcast_sub(&mean)?;
    let var = centred
        .sqr()?
        .mean_keepdim(3)?
        .mean_keepdim(2)?
        .mean_keepdim(0)?;
    let y = centred
        .broadcast_div(&(&var + BN_EPS)?.sqrt()?)?
        .broadcast_mul(&per_channel(gamma)?)?
        .broadcast_add(&per_channel(beta)?)?;
    let y = if relu { y.relu()? } else { y };
    Ok((y, mean.flatten_all()?.detach(), var.flatten_all()?.detach()))
}

/// Evaluation-mode batch norm with fixed per-channel `scale` and `shift` (the statistics
/// folded in).
struct Affine {
    mean: Vec<f32>,
    scale: Vec<f32>,
    shift: Vec<f32>,
    relu: bool,
}

impl CustomOp1 for Affine {
    fn name(&self) -> &'static str {
        "fast-batchnorm-eval"
    }
    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout) -> Result<(CpuStorage, Shape)> {
        let s = norm_shape(xl.shape())?;
        if self.scale.len() != s.channels {
            candle_core::bail!(
                "batch norm: {} channels but {} scales",
                s.channels,
                self.scale.len()
            );
        }
        let x = slice(xs, xl, "bn x")?;
        let y = kernels::affine(x, s, &self.mean, &self.scale, &self.shift, self.relu);
        Ok((CpuStorage::F32(y), xl.shape().clone()))
    }

    /// To the input only (the statistics and the affine step are constants here), so that
    /// gradients with respect to an image still flow through an evaluated network.
    fn bwd(&self, x: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let c = self.scale.len();
        let scale = Tensor::from_slice(&self.scale, (1, c, 1, 1), x.device())?;
        let dx = grad.broadcast_mul(&scale)?;
        let dx = if self.relu {
            (dx * res.gt(0.0)?.to_dtype(res.dtype())?)?
        } else {
            dx
        };
        Ok(Some(dx))
    }
}

/// Evaluation-mode batch norm with the running statistics, then ReLU when `relu`.
pub fn batchnorm_eval(
    x: &Tensor,
    [gamma, beta, mean, var]: [&Tensor; 4],
    relu: bool,
) -> Result<Tensor> {
    if is_fast_capable(x) && [gamma, beta, mean, var].iter().all(|t| is_fast_capable(t)) {
        let var = var.to_vec1::<f32>()?;
        let gamma = gamma.to_vec1::<f32>()?;
        let scale = invstd(&var)
            .iter()
            .zip(&gamma)
            .map(|(i, g)| i * g)
            .collect();
        let op = Affine {
            mean: mean.to_vec1()?,
            scale,
            shift: beta.to_vec1()?,
            relu,
        };
        return x.contiguous()?.apply_op1(op);
    }
    reference_batchnorm_eval(x, [gamma, beta, mean, var], relu)
}

/// [`batchnorm_eval`] from candle's broadcasts.
pub fn reference_batchnorm_eval(
    x: &Tensor,
    [gamma, beta, mean, var]: [&Tensor; 4],
    relu: bool,
) -> Result<Tensor> {
    let c = gamma.elem_count();
    let per_channel = |t: &Tensor| t.reshape((1, c, 1, 1));
    let y = x
        .broadcast_sub(&per_channel(mean)?)?
        .broadcast_div(&per_channel(&(var + BN_EPS)?.sqrt()?)?)?
        .broadcast_mul(&per_channel(gamma)?)?
        .broadcast_add(&per_channel(beta)?)?;
    if relu { y.relu() } else { Ok(y) }
}

/// A max or average pool with a `win` window and stride.
struct Pool {
    max: bool,
    win: [usize; 2],
}

fn pool_shape(x: &Shape, win: [usize; 2]) -> Result<PoolShape> {
    let (b, c, h, w) = x.dims4()?;
    if win[0] == 0 || win[1] == 0 || h < win[0] || w < win[1] {
        candle_core::bail!("pool: window {win:?} does not fit input {x:?}");
    }
    Ok(PoolShape {
        planes: b * c,
        h,
        w,
        win,
    })
}

impl CustomOp1 for Pool {
    fn name(&self) -> &'static str {
        if self.max {
            "fast-maxpool"
        } else {
            "fast-avgpool"
        }
    }
    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout) -> Result<(CpuStorage, Shape)> {
        let s = pool_shape(xl.shape(), self.win)?;
        let out = kernels::pool_fwd(slice(xs, xl, "pool x")?, s, self.max);
        let (b, c, h, w) = xl.shape().dims4()?;
        Ok((
            CpuStorage::F32(out),
            Shape::from((b, c, h / self.win[0], w / self.win[1])),
        ))
    }
    fn bwd(&self, x: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let s = pool_shape(x.shape(), self.win)?;
        let dx = with_slices([x, res, grad, x], |[xv, ov, gv, _]| {
            Ok(kernels::pool_bwd(xv, ov, gv, s, self.max))
        })?;
        Ok(Some(Tensor::from_vec(dx, x.shape(), x.device())?))
    }
}

/// A `kind` pool of `x: [B, C, H, W]` with window and stride `win` (height, width), sides
/// floored: fast on CPU, [`reference_pool`] elsewhere.
pub fn pool(x: &Tensor, kind: PoolKind, win: [usize; 2]) -> Result<Tensor> {
    if is_fast_capable(x) {
        let op = Pool {
            max: kind == PoolKind::Max,
            win,
        };
        return x.contiguous()?.apply_op1(op);
    }
    reference_pool(x, kind, win)
}

/// [`pool`] from candle's reshape and `max`/`mean` reductions (see
/// [`reference_maxpool2`] for why not `max_pool2d`).
pub fn reference_pool(x: &Tensor, kind: PoolKind, win: [usize; 2]) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let (oh, ow) = (h / win[0], w / win[1]);
    let x = x
        .narrow(2, 0, oh * win[0])?
        .narrow(3, 0, ow * win[1])?
        .contiguous()?
        .reshape((b, c, oh, win[0], ow, win[1]))?;
    match kind {
        PoolKind::Max => x.max(5)?.max(3),
        PoolKind::Avg => x.mean(5)?.mean(3),
    }
}

struct MaxPool2;

fn pool_dims(shape: &Shape) -> Result<(usize, usize, usize, usize)> {
    shape.dims4()
}

impl CustomOp1 for MaxPool2 {
    fn name(&self) -> &'static str {
        "fast-maxpool2"
    }
    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, c, h, w) = pool_dims(xl.shape())?;
        let out = kernels::maxpool2_fwd(slice(xs, xl, "pool x")?, b * c, h, w);
        Ok((CpuStorage::F32(out), Shape::from((b, c, h / 2, w / 2))))
    }
    fn bwd(&self, x: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let dx = x.contiguous()?.apply_op3_no_bwd(
            &res.contiguous()?,
            &grad.contiguous()?,
            &MaxPool2Bwd,
        )?;
        Ok(Some(dx))
    }
}

struct MaxPool2Bwd;

impl CustomOp3 for MaxPool2Bwd {
    fn name(&self) -> &'static str {
        "fast-maxpool2-bwd"
    }
    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        os: &CpuStorage,
        ol: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (b, c, h, w) = pool_dims(xl.shape())?;
        let dx = kernels::maxpool2_bwd(
            slice(xs, xl, "pool x")?,
            slice(os, ol, "pool out")?,
            slice(gs, gl, "pool grad")?,
            b * c,
            h,
            w,
        );
        Ok((CpuStorage::F32(dx), xl.shape().clone()))
    }
}

/// 2x2, stride 2 max-pool: fast on CPU, [`reference_maxpool2`] elsewhere.
pub fn maxpool2(x: &Tensor) -> Result<Tensor> {
    if is_fast_capable(x) {
        x.contiguous()?.apply_op1(MaxPool2)
    } else {
        reference_maxpool2(x)
    }
}

/// 2x2, stride 2 max-pool from candle's reshape and `max` reductions (odd edges dropped).
///
/// Used instead of `Tensor::max_pool2d` because candle 0.11.1's backward for that op
/// multiplies the gradient by the fraction of maxima in each window (1/4 with a single
/// maximum) instead of dividing by their count, so every pool passes back a quarter of its
/// gradient. A reduction's backward routes the gradient to the maximum correctly.
pub fn reference_maxpool2(x: &Tensor) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let (oh, ow) = (h / 2, w / 2);
    let x = if h % 2 == 1 || w % 2 == 1 {
        x.narrow(2, 0, 2 * oh)?.narrow(3, 0, 2 * ow)?
    } else {
        x.clone()
    };
    x.contiguous()?
        .reshape((b, c, oh, 2, ow, 2))?
        .max(5)?
        .max(3)
}
