//! What the optimizers' in-place CPU passes share: slices of candle storage, the layout
//! check and the parallel split.

use candle_core::{CpuStorage, DType, Layout, Tensor};

/// The contiguous `f32` slice of a CPU storage, or `None` (the caller then falls back).
pub(super) fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout) -> Option<&'a [f32]> {
    let (start, end) = l.contiguous_offsets()?;
    match s {
        CpuStorage::F32(v) => v.get(start..end),
        _ => None,
    }
}

pub(super) fn f32_slice_mut<'a>(s: &'a mut CpuStorage, l: &Layout) -> Option<&'a mut [f32]> {
    let (start, end) = l.contiguous_offsets()?;
    match s {
        CpuStorage::F32(v) => v.get_mut(start..end),
        _ => None,
    }
}

pub(super) fn layout_error(op: &str) -> candle_core::Error {
    candle_core::Error::Msg(format!("{op}: expects contiguous f32 tensors of one size"))
}

/// Values per piece of work in [`par_zip`]: large enough that a piece outweighs handing
/// it to a worker, small enough that `medium_cnn`'s hidden layer splits across cores.
const UPDATE_CHUNK: usize = 16 * 1024;

/// Runs `f` on matching pieces of `out`, `a` and `b` (all of one length) on candle's CPU
/// thread pool. The updates are element-wise, so the split changes no result, and a large
/// layer's update does not leave the other cores idle.
pub(super) fn par_zip(
    out: &mut [f32],
    a: &[f32],
    b: &[f32],
    f: impl Fn(&mut [f32], &[f32], &[f32]) + Sync,
) {
    if out.len() <= UPDATE_CHUNK {
        return f(out, a, b);
    }
    cnn_models::par::for_each_piece(out, UPDATE_CHUNK, |i, piece| {
        let at = i * UPDATE_CHUNK..i * UPDATE_CHUNK + piece.len();
        f(piece, &a[at.clone()], &b[at]);
    });
}

/// Whether the in-place CPU update applies: contiguous CPU `f32` tensors of one shape.
pub(super) fn in_place_capable(ts: [&Tensor; 3]) -> bool {
    ts.iter().all(|t| {
        t.device().is_cpu()
            && t.dtype() == DType::F32
            && t.is_contiguous()
            && t.dims() == ts[0].dims()
    })
}

/// The three `f32` slices of an in-place op on `(out, a, b)`, all of one length; an error
/// naming the op otherwise.
pub(super) fn three<'a>(
    op: &str,
    (out, lo): (&'a mut CpuStorage, &Layout),
    (a, la): (&'a CpuStorage, &Layout),
    (b, lb): (&'a CpuStorage, &Layout),
) -> candle_core::Result<(&'a mut [f32], &'a [f32], &'a [f32])> {
    let err = || layout_error(op);
    let out = f32_slice_mut(out, lo).ok_or_else(err)?;
    let (a, b) = (
        f32_slice(a, la).ok_or_else(err)?,
        f32_slice(b, lb).ok_or_else(err)?,
    );
    if a.len() != out.len() || b.len() != out.len() {
        return Err(err());
    }
    Ok((out, a, b))
}
