//! Slice-level CPU kernels of the fast path: im2col, batched GEMM convolution, max-pool.
//!
//! Layout conventions: images are `[B, C, H, W]` row-major; one image's im2col matrix is
//! `[C*k*k, OH*OW]` for a `k x k` kernel, and the images of a group sit side by side in one
//! matrix. The GEMMs go through the `gemm` crate
//! (the one candle uses), which picks AVX-512, AVX2/FMA or scalar kernels at run time (its
//! `x86-v4` feature; never `-C target-cpu`).
//!
//! One file a concern: `gemm` (the products), `im2col` (the columns and their adjoint),
//! `conv_fwd` (the fused forward and pool), `conv_bwd` (its gradients), `winograd` (3x3
//! stride-1 convs without im2col), `direct` (stride-1 convs with few input channels, and
//! their gradients, without im2col), `pool` (pools on their own), `norm` (batch norm).

mod conv_bwd;
mod conv_fwd;
mod direct;
mod gemm;
mod im2col;
mod norm;
mod pool;
#[cfg(test)]
mod tests;
mod winograd;

use std::sync::Mutex;

pub(crate) use conv_bwd::conv_bwd;
pub(crate) use conv_fwd::conv_fwd;
pub(crate) use gemm::{Mat, par_sgemm, par_sgemm_nt};
pub(crate) use norm::{NormShape, affine, batch_stats, batchnorm_bwd};
pub(crate) use pool::{PoolShape, maxpool2_bwd, maxpool2_fwd, pool_bwd, pool_fwd};

use crate::Activation;
use crate::par::par_for;

/// Splits `data` into `len`-sized pieces that parallel workers can each lock (uncontended).
pub(super) fn slots<T>(data: &mut [T], len: usize) -> Vec<Mutex<&mut [T]>> {
    if len == 0 {
        return Vec::new();
    }
    data.chunks_mut(len).map(Mutex::new).collect()
}

/// Locks a slot; a poisoned lock only means another worker panicked, and its data is ours.
pub(super) fn lock<'a, 'b, T>(m: &'a Mutex<&'b mut [T]>) -> std::sync::MutexGuard<'a, &'b mut [T]> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Shape of a `kernel x kernel` convolution at `stride` with `pad` zeros on each side, and
/// the activation that follows it in the same op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConvShape {
    pub batch: usize,
    pub c_in: usize,
    pub c_out: usize,
    pub h: usize,
    pub w: usize,
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
    /// What follows the bias in the same op: ReLU, tanh or nothing (the op is affine).
    pub act: Activation,
}

impl ConvShape {
    /// A same-padded, stride 1 convolution followed by ReLU (the original layer kind).
    #[cfg(test)]
    pub fn same(batch: usize, c_in: usize, c_out: usize, h: usize, w: usize, k: usize) -> Self {
        Self {
            batch,
            c_in,
            c_out,
            h,
            w,
            kernel: k,
            stride: 1,
            pad: k / 2,
            act: Activation::Relu,
        }
    }
    /// Values in one input plane.
    pub fn in_hw(&self) -> usize {
        self.h * self.w
    }
    /// Output height: PyTorch's `floor((h + 2p - k) / s) + 1`.
    pub fn oh(&self) -> usize {
        (self.h + 2 * self.pad - self.kernel) / self.stride + 1
    }
    /// Output width.
    pub fn ow(&self) -> usize {
        (self.w + 2 * self.pad - self.kernel) / self.stride + 1
    }
    /// Values in one output plane (one row of an image's im2col matrix).
    pub fn out_hw(&self) -> usize {
        self.oh() * self.ow()
    }
    /// Whether the output has the input's size at stride 1: im2col then reads each row as
    /// one shifted span of the plane.
    pub fn is_same(&self) -> bool {
        self.stride == 1 && self.kernel % 2 == 1 && self.pad == self.kernel / 2
    }
    /// The convolution of [`flipped`] kernels over the output gradient of `s` that gives its
    /// input gradient: from `Co` maps of `OH x OW` to `Ci` maps of `H x W`, padded `k - 1 -
    /// pad`. `None` unless `s` has stride 1 and a padding below its kernel.
    pub fn input_grad(&self) -> Option<ConvShape> {
        let back = ConvShape {
            c_in: self.c_out,
            c_out: self.c_in,
            h: self.oh(),
            w: self.ow(),
            pad: (self.kernel - 1).checked_sub(self.pad)?,
            act: Activation::None,
            ..*self
        };
        (self.stride == 1 && back.oh() == self.h && back.ow() == self.w).then_some(back)
    }
    /// Rows of one image's im2col matrix.
    pub fn k(&self) -> usize {
        self.c_in * self.kernel * self.kernel
    }
    /// Values per output image: `Co*OH*OW`, or `Co*(OH/2)*(OW/2)` when pooled.
    pub fn out_len(&self, pool: bool) -> usize {
        if pool {
            self.c_out * (self.oh() / 2) * (self.ow() / 2)
        } else {
            self.c_out * self.out_hw()
        }
    }
}

/// How a group's maps lie in a slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Layout {
    /// One image after another: `[image][channel][plane]` (a layer's input and output).
    Images,
    /// Channel by channel, the group's images side by side in each: `[channel][image]
    /// [plane]` (the GEMM layout of pre-activations and their gradients).
    Channels,
}

impl Layout {
    /// Where plane `(i, c)` of `imgs` images of `channels` planes of `hw` values starts.
    pub(super) fn at(self, i: usize, c: usize, imgs: usize, channels: usize, hw: usize) -> usize {
        match self {
            Layout::Images => (i * channels + c) * hw,
            Layout::Channels => (c * imgs + i) * hw,
        }
    }
}

/// The kernels of the convolution that carries an output gradient back to the input of
/// `s` (stride 1): each kernel turned by 180° and input and output channels swapped,
/// `[Ci][Co][k][k]`, as weights of [`ConvShape::input_grad`].
pub(super) fn flipped(wt: &[f32], s: ConvShape) -> Vec<f32> {
    let kk = s.kernel * s.kernel;
    let mut f = vec![0.0; wt.len()];
    for co in 0..s.c_out {
        for ci in 0..s.c_in {
            let (src, dst) = ((co * s.c_in + ci) * kk, (ci * s.c_out + co) * kk);
            for k in 0..kk {
                f[dst + kk - 1 - k] = wt[src + k];
            }
        }
    }
    f
}

/// Images per GEMM and per unit of parallel work. Fixed (not derived from the thread count),
/// so that every output and weight gradient is summed in the same order whatever the number
/// of threads: runs are reproducible.
pub(super) const GROUP: usize = 4;

thread_local! {
    /// Per-thread scratch (im2col matrix, pre-activations, column gradients): reused across
    /// calls so a training step does not fault in fresh pages for its temporaries.
    static SCRATCH: std::cell::RefCell<[Vec<f32>; 3]> = const { std::cell::RefCell::new([Vec::new(), Vec::new(), Vec::new()]) };
}

pub(super) fn with_scratch<R>(
    sizes: [usize; 3],
    f: impl FnOnce(&mut [f32], &mut [f32], &mut [f32]) -> R,
) -> R {
    SCRATCH.with(|cell| {
        let mut bufs = cell.borrow_mut();
        for (b, &n) in bufs.iter_mut().zip(&sizes) {
            if b.len() < n {
                b.resize(n, 0.0);
            }
        }
        let [a, b, c] = &mut *bufs;
        f(&mut a[..sizes[0]], &mut b[..sizes[1]], &mut c[..sizes[2]])
    })
}
