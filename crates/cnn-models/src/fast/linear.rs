//! Slice-level CPU kernels of the fused linear layer: GEMMs with bias and ReLU.

use super::kernels::{Mat, par_sgemm, par_sgemm_nt};

/// Forward of a linear layer: `y = x·wᵀ + b` (`x: [B, I]`, `w: [O, I]`), then ReLU if `relu`.
pub(crate) fn linear_fwd(
    x: &[f32],
    w: &[f32],
    bias: &[f32],
    batch: usize,
    fin: usize,
    fout: usize,
    relu: bool,
) -> Vec<f32> {
    let mut y = Vec::with_capacity(batch * fout);
    for _ in 0..batch {
        y.extend_from_slice(bias);
    }
    par_sgemm_nt(&mut y, Mat::row_major(x, batch, fin), w);
    if relu {
        y.iter_mut().for_each(|v| *v = v.max(0.0));
    }
    y
}

/// Gradients of [`linear_fwd`]: `(dx, dw, db)`, `dx` only when `need_dx`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn linear_bwd(
    x: &[f32],
    w: &[f32],
    y: &[f32],
    grad: &[f32],
    batch: usize,
    fin: usize,
    fout: usize,
    relu: bool,
    need_dx: bool,
) -> (Option<Vec<f32>>, Vec<f32>, Vec<f32>) {
    let dz: Vec<f32> = if relu {
        grad.iter()
            .zip(y)
            .map(|(&g, &y)| if y > 0.0 { g } else { 0.0 })
            .collect()
    } else {
        grad.to_vec()
    };
    let mut db = vec![0.0; fout];
    for row in dz.chunks_exact(fout) {
        db.iter_mut().zip(row).for_each(|(a, b)| *a += b);
    }
    let mut dw = vec![0.0; fout * fin];
    par_sgemm(
        &mut dw,
        Mat::transposed(&dz, batch, fout),
        Mat::row_major(x, batch, fin),
        false,
    );
    let dx = need_dx.then(|| {
        let mut dx = vec![0.0; batch * fin];
        par_sgemm(
            &mut dx,
            Mat::row_major(&dz, batch, fout),
            Mat::row_major(w, fout, fin),
            false,
        );
        dx
    });
    (dx, dw, db)
}
