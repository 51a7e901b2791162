//! candle `CustomOp` wrappers of the conv (with its ReLU and 2x2 max-pool fused in) and linear kernels, with their backward passes.

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor};

use super::act::{activation, reference_activation};
use super::kernels::{self, ConvShape};
use super::norm_pool::reference_maxpool2;
use crate::Activation;

pub(super) fn slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("fast op {what}: input is not contiguous"),
    }
}

/// Runs `f` on the `f32` contents of CPU tensors, borrowed in place (no copy for contiguous
/// tensors, which is what the backward passes receive).
pub(super) fn with_slices<R>(
    ts: [&Tensor; 4],
    f: impl FnOnce([&[f32]; 4]) -> Result<R>,
) -> Result<R> {
    let ts = [
        ts[0].contiguous()?,
        ts[1].contiguous()?,
        ts[2].contiguous()?,
        ts[3].contiguous()?,
    ];
    let guards = ts.each_ref().map(|t| t.storage_and_layout());
    let mut out: [&[f32]; 4] = [&[]; 4];
    for (o, (storage, layout)) in out.iter_mut().zip(&guards) {
        *o = match &**storage {
            candle_core::Storage::Cpu(cpu) => slice(cpu, layout, "backward input")?,
            _ => candle_core::bail!("fast op backward: tensor is not on the CPU"),
        };
    }
    f(out)
}

/// Whether the fast ops can run on this tensor (CPU, f32).
pub fn is_fast_capable(t: &Tensor) -> bool {
    t.device().is_cpu() && t.dtype() == DType::F32
}

/// Stride, padding and epilogue of a fast conv op.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    stride: usize,
    pad: usize,
    /// ReLU, tanh or none: the activations whose gradient the output gives.
    act: Activation,
    pool: bool,
}

impl Geometry {
    fn new(stride: usize, pad: usize, act: Activation, pool: bool) -> Self {
        Self {
            stride,
            pad,
            act,
            pool,
        }
    }
}

fn conv_shape(x: &Shape, w: &Shape, g: Geometry) -> Result<ConvShape> {
    let (b, ci, h, wd) = x.dims4()?;
    let (co, ci2, kh, kw) = w.dims4()?;
    let s = ConvShape {
        batch: b,
        c_in: ci,
        c_out: co,
        h,
        w: wd,
        kernel: kh,
        stride: g.stride,
        pad: g.pad,
        act: g.act,
    };
    let fits = ci == ci2 && kh == kw && g.stride > 0 && h + 2 * g.pad >= kh && wd + 2 * g.pad >= kh;
    let min = if g.pool { 2 } else { 1 };
    if !fits || s.oh() < min || s.ow() < min || (g.pool && g.act != Activation::Relu) {
        candle_core::bail!(
            "fast conv: input {x:?} and weight {w:?} do not fit stride {} and padding {}",
            g.stride,
            g.pad
        );
    }
    Ok(s)
}

/// Fused convolution (odd kernel, same padding) + bias + ReLU (+ 2x2 max-pool when `pool`).
///
/// The forward caches the window position of each pooled maximum (one byte per output) for the
/// backward, unless told no backward will follow (`record: false`; a backward then recomputes
/// them); the op instance lives in candle's graph exactly as long as the output it made.
struct Conv {
    geometry: Geometry,
    record: bool,
    argmax: Mutex<Option<Arc<Vec<u8>>>>,
}

impl CustomOp3 for Conv {
    fn name(&self) -> &'static str {
        match (self.geometry.pool, self.geometry.act) {
            (true, _) => "fast-conv-relu-pool2",
            (false, Activation::Relu) => "fast-conv-relu",
            (false, Activation::Tanh) => "fast-conv-tanh",
            (false, _) => "fast-conv",
        }
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let s = conv_shape(xl.shape(), wl.shape(), self.geometry)?;
        let pool = self.geometry.pool;
        let (x, w, b) = (
            slice(xs, xl, "conv x")?,
            slice(ws, wl, "conv w")?,
            slice(bs, bl, "conv b")?,
        );
        if b.len() != s.c_out {
            candle_core::bail!("conv: bias has {} values for {} channels", b.len(), s.c_out);
        }
        let (out, arg) = kernels::conv_fwd(x, w, b, s, pool, self.record);
        if pool && self.record {
            *self
                .argmax
                .lock()
                .map_err(|_| candle_core::Error::Msg("argmax cache poisoned".into()))? =
                Some(Arc::new(arg));
        }
        let shape = if pool {
            Shape::from((s.batch, s.c_out, s.oh() / 2, s.ow() / 2))
        } else {
            Shape::from((s.batch, s.c_out, s.oh(), s.ow()))
        };
        Ok((CpuStorage::F32(out), shape))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let s = conv_shape(x.shape(), w.shape(), self.geometry)?;
        let argmax = if self.geometry.pool {
            let cached = self
                .argmax
                .lock()
                .map_err(|_| candle_core::Error::Msg("argmax cache poisoned".into()))?
                .clone();
            match cached {
                Some(a) => Some(a),
                // A forward that recorded nothing (evaluation): find the maxima again.
                None => Some(Arc::new(with_slices([x, w, b, res], |[xv, wv, bv, _]| {
                    Ok(kernels::conv_fwd(xv, wv, bv, s, true, true).1)
                })?)),
            }
        } else {
            None
        };
        // The network's input needs no gradient: skip conv1's input-gradient GEMMs.
        let need_dx = x.track_op();
        let (dx, dw, db) = with_slices([x, w, res, grad], |[xv, wv, ov, gv]| {
            Ok(kernels::conv_bwd(
                xv,
                wv,
                ov,
                gv,
                argmax.as_deref().map(Vec::as_slice),
                s,
                need_dx,
            ))
        })?;
        let dev = x.device();
        let dx = dx
            .map(|d| Tensor::from_vec(d, x.shape(), dev))
            .transpose()?;
        Ok((
            dx,
            Some(Tensor::from_vec(dw, w.shape(), dev)?),
            Some(Tensor::from_vec(db, s.c_out, dev)?),
        ))
    }
}

/// Fused linear layer `x·wᵀ + b`, with ReLU when `relu`.
struct Linear {
    relu: bool,
}

fn linear_dims(x: &Shape, w: &Shape) -> Result<(usize, usize, usize)> {
    let (b, fin) = x.dims2()?;
    let (fout, fin2) = w.dims2()?;
    if fin != fin2 {
        candle_core::bail!("linear: input {x:?} does not fit weight {w:?}");
    }
    Ok((b, fin, fout))
}

impl CustomOp3 for Linear {
    fn name(&self) -> &'static str {
        if self.relu {
            "fast-linear-relu"
        } else {
            "fast-linear"
        }
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (b, fin, fout) = linear_dims(xl.shape(), wl.shape())?;
        let bias = slice(bs, bl, "linear b")?;
        if bias.len() != fout {
            candle_core::bail!("linear: bias has {} values for {fout} outputs", bias.len());
        }
        let y = super::linear::linear_fwd(
            slice(xs, xl, "linear x")?,
            slice(ws, wl, "linear w")?,
            bias,
            b,
            fin,
            fout,
            self.relu,
        );
        Ok((CpuStorage::F32(y), Shape::from((b, fout))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (b, fin, fout) = linear_dims(x.shape(), w.shape())?;
        let need_dx = x.track_op();
        let (dx, dw, db) = with_slices([x, w, res, grad], |[xv, wv, yv, gv]| {
            Ok(super::linear::linear_bwd(
                xv, wv, yv, gv, b, fin, fout, self.relu, need_dx,
            ))
        })?;
        let dev = x.device();
        let dx = dx
            .map(|d| Tensor::from_vec(d, x.shape(), dev))
            .transpose()?;
        Ok((
            dx,
            Some(Tensor::from_vec(dw, w.shape(), dev)?),
            Some(Tensor::from_vec(db, fout, dev)?),
        ))
    }
}

/// `x·wᵀ + b` (then ReLU if `relu`) for `x: [B, I]`, `w: [O, I]`: fused on CPU, candle's ops
/// elsewhere.
pub fn linear(x: &Tensor, w: &Tensor, b: &Tensor, relu: bool) -> Result<Tensor> {
    if all_fast([x, w, b]) {
        return x
            .contiguous()?
            .apply_op3(&w.contiguous()?, &b.contiguous()?, Linear { relu });
    }
    let y = x.matmul(&w.t()?)?.broadcast_add(b)?;
    if relu { y.relu() } else { Ok(y) }
}

fn fused(x: &Tensor, w: &Tensor, b: &Tensor, pool: bool, record: bool) -> Result<Tensor> {
    apply_conv(
        x,
        w,
        b,
        Geometry::new(1, same_pad(w), Activation::Relu, pool),
        record,
    )
}

fn apply_conv(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    geometry: Geometry,
    record: bool,
) -> Result<Tensor> {
    let op = Conv {
        geometry,
        record,
        argmax: Mutex::new(None),
    };
    x.contiguous()?
        .apply_op3(&w.contiguous()?, &b.contiguous()?, op)
}

/// `k / 2` for a `k x k` kernel `w`.
fn same_pad(w: &Tensor) -> usize {
    w.dims().last().copied().unwrap_or(1) / 2
}

fn all_fast(ts: [&Tensor; 3]) -> bool {
    ts.iter().all(|t| is_fast_capable(t))
}

/// `act(conv2d(x, w, stride, padding) + b)`: one op on CPU, candle's ops
/// elsewhere.
pub fn conv(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    stride: usize,
    pad: usize,
    act: Activation,
) -> Result<Tensor> {
    if all_fast([x, w, b]) {
        // ReLU and tanh are applied in the conv's op (their gradient follows from its
        // output); GELU and SiLU, whose gradients need the pre-activation, in their own.
        let fused = matches!(act, Activation::Relu | Activation::Tanh);
        let g = Geometry::new(
            stride,
            pad,
            if fused { act } else { Activation::None },
            false,
        );
        let y = apply_conv(x, w, b, g, true)?;
        return if fused { Ok(y) } else { activation(&y, act) };
    }
    reference_conv(x, w, b, stride, pad, act)
}

/// [`conv`] from candle's `conv2d`, on an input padded and cropped to exactly the pixels
/// the windows cover.
///
/// candle 0.11.1's `conv2d` backward returns an input gradient of the wrong size when the
/// stride does not tile the padded input (a 7-wide map, kernel 4, stride 2 gets a 6-wide
/// gradient), and autograd then fails; on the cropped input the stride tiles it exactly.
pub fn reference_conv(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    stride: usize,
    pad: usize,
    act: Activation,
) -> Result<Tensor> {
    let (_, _, h, wd) = x.dims4()?;
    let k = w.dims4()?.3;
    if h + 2 * pad < k || wd + 2 * pad < k || stride == 0 {
        candle_core::bail!("conv: kernel {k} does not fit a {h}x{wd} map padded by {pad}");
    }
    let used = |n: usize| (n + 2 * pad - k) / stride * stride + k;
    let x = if pad > 0 {
        x.pad_with_zeros(2, pad, pad)?.pad_with_zeros(3, pad, pad)?
    } else {
        x.clone()
    };
    let x = x.narrow(2, 0, used(h))?.narrow(3, 0, used(wd))?;
    let y =
        x.conv2d(w, 0, stride, 1, 1)?
            .broadcast_add(&b.reshape((1, b.elem_count(), 1, 1))?)?;
    reference_activation(&y, act)
}

/// `relu(conv2d(x, w, padding k/2) + b)` for an odd `k x k` kernel: fused on CPU, candle's
/// ops elsewhere.
pub fn conv_relu(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    if all_fast([x, w, b]) {
        fused(x, w, b, false, true)
    } else {
        reference_conv(x, w, b, 1, same_pad(w), Activation::Relu)
    }
}

/// `maxpool2(relu(conv2d(x, w, padding k/2) + b))`: one fused op on CPU, candle's ops
/// elsewhere.
///
/// Fusing the pool keeps the full-resolution activations and their gradients out of candle's
/// graph, which would otherwise allocate, zero and add a gradient buffer for each of them.
pub fn conv_relu_pool2(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    if all_fast([x, w, b]) {
        fused(x, w, b, true, true)
    } else {
        reference_maxpool2(&reference_conv(x, w, b, 1, same_pad(w), Activation::Relu)?)
    }
}

/// `maxpool2(relu(conv2d(x, w, stride, pad) + b))` for any stride and padding: one fused op
/// on CPU (`record: false` for a forward pass no backward will follow, as in
/// [`conv_relu_pool2_eval`]), candle's ops elsewhere.
pub fn conv_relu_pool2_with(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    stride: usize,
    pad: usize,
    record: bool,
) -> Result<Tensor> {
    if all_fast([x, w, b]) {
        return apply_conv(
            x,
            w,
            b,
            Geometry::new(stride, pad, Activation::Relu, true),
            record,
        );
    }
    reference_maxpool2(&reference_conv(x, w, b, stride, pad, Activation::Relu)?)
}

/// [`conv_relu_pool2`] for a forward pass that no backward is expected to follow
/// (evaluation, prediction): the same values, without recording where each window's maximum
/// was (a tenth of an inference pass). A backward through it still works: it finds the
/// maxima again first.
pub fn conv_relu_pool2_eval(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    if all_fast([x, w, b]) {
        fused(x, w, b, true, false)
    } else {
        reference_maxpool2(&reference_conv(x, w, b, 1, same_pad(w), Activation::Relu)?)
    }
}
