//! candle `CustomOp` wrappers around the kernels, with their backward passes.

use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor,
};

use super::kernels::{self, ConvShape};

fn slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("fast op {what}: input is not contiguous"),
    }
}

/// Whether the fast ops can run on this tensor (CPU, f32).
pub fn is_fast_capable(t: &Tensor) -> bool {
    t.device().is_cpu() && t.dtype() == DType::F32
}

fn conv_shape(x: &Shape, w: &Shape) -> Result<ConvShape> {
    let (b, ci, h, wd) = x.dims4()?;
    let (co, ci2, kh, kw) = w.dims4()?;
    if ci != ci2 || kh != 3 || kw != 3 || h < 2 || wd < 2 {
        candle_core::bail!(
            "conv3x3_relu: input {x:?} and weight {w:?} do not fit a 3x3 convolution"
        );
    }
    Ok(ConvShape {
        batch: b,
        c_in: ci,
        c_out: co,
        h,
        w: wd,
    })
}

struct ConvRelu;

impl CustomOp3 for ConvRelu {
    fn name(&self) -> &'static str {
        "fast-conv3x3-relu"
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
        let s = conv_shape(xl.shape(), wl.shape())?;
        let (x, w, b) = (
            slice(xs, xl, "conv x")?,
            slice(ws, wl, "conv w")?,
            slice(bs, bl, "conv b")?,
        );
        if b.len() != s.c_out {
            candle_core::bail!(
                "conv3x3_relu: bias has {} values for {} channels",
                b.len(),
                s.c_out
            );
        }
        let out = kernels::conv_relu_fwd(x, w, b, s);
        Ok((
            CpuStorage::F32(out),
            Shape::from((s.batch, s.c_out, s.h, s.w)),
        ))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let s = conv_shape(x.shape(), w.shape())?;
        let dz = grad
            .contiguous()?
            .apply_op2_no_bwd(&res.contiguous()?, &ReluToCols(s))?;
        let dw = dz.apply_op2_no_bwd(&x.contiguous()?, &WeightGrad(s))?;
        let db = dz.sum(1)?;
        // The network's input needs no gradient: skip the largest GEMM of conv1.
        let dx = if x.track_op() {
            Some(dz.apply_op2_no_bwd(&w.contiguous()?, &InputGrad(s))?)
        } else {
            None
        };
        Ok((dx, Some(dw), Some(db)))
    }
}

/// `(grad, out) -> dz` in GEMM layout `[Co, B*H*W]`.
struct ReluToCols(ConvShape);

impl CustomOp2 for ReluToCols {
    fn name(&self) -> &'static str {
        "fast-relu-to-cols"
    }
    fn cpu_fwd(
        &self,
        gs: &CpuStorage,
        gl: &Layout,
        os: &CpuStorage,
        ol: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let s = self.0;
        let dz = kernels::relu_grad_to_cols(slice(gs, gl, "grad")?, slice(os, ol, "out")?, s);
        Ok((CpuStorage::F32(dz), Shape::from((s.c_out, s.cols()))))
    }
}

/// `(dz, x) -> dw`, shaped like the weight.
struct WeightGrad(ConvShape);

impl CustomOp2 for WeightGrad {
    fn name(&self) -> &'static str {
        "fast-conv-weight-grad"
    }
    fn cpu_fwd(
        &self,
        ds: &CpuStorage,
        dl: &Layout,
        xs: &CpuStorage,
        xl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let s = self.0;
        let dw = kernels::conv_weight_grad(slice(ds, dl, "dz")?, slice(xs, xl, "x")?, s);
        Ok((CpuStorage::F32(dw), Shape::from((s.c_out, s.c_in, 3, 3))))
    }
}

/// `(dz, w) -> dx`, shaped like the input.
struct InputGrad(ConvShape);

impl CustomOp2 for InputGrad {
    fn name(&self) -> &'static str {
        "fast-conv-input-grad"
    }
    fn cpu_fwd(
        &self,
        ds: &CpuStorage,
        dl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let s = self.0;
        let dx = kernels::conv_input_grad(slice(ds, dl, "dz")?, slice(ws, wl, "w")?, s);
        Ok((
            CpuStorage::F32(dx),
            Shape::from((s.batch, s.c_in, s.h, s.w)),
        ))
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

/// `relu(conv2d(x, w, padding 1) + b)` for a 3x3 kernel: fused on CPU, candle's ops elsewhere.
pub fn conv3x3_relu(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    if is_fast_capable(x) && is_fast_capable(w) && is_fast_capable(b) {
        x.contiguous()?
            .apply_op3(&w.contiguous()?, &b.contiguous()?, ConvRelu)
    } else {
        let y = x.conv2d(w, 1, 1, 1, 1)?;
        y.broadcast_add(&b.reshape((1, b.elem_count(), 1, 1))?)?
            .relu()
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
