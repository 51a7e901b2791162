//! A plain matrix product through the fast path's GEMM micro-kernels, for measuring how
//! fast a machine can multiply (the ceiling the fast layers are judged against).

/// `a · b` for row-major `a` (`m x k`) and `b` (`k x n`), returned row-major (`m x n`).
///
/// It runs on candle's thread count (`RAYON_NUM_THREADS`), through the `gemm` crate's
/// micro-kernels that the fast layers use, chosen at run time for this CPU. `None` when the
/// slices do not hold `m * k` and `k * n` values.
pub fn matmul(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Option<Vec<f32>> {
    if a.len() != m.checked_mul(k)? || b.len() != k.checked_mul(n)? {
        return None;
    }
    let mut dst = vec![0.0f32; m.checked_mul(n)?];
    if m == 0 || n == 0 || k == 0 {
        return Some(dst);
    }
    let threads = candle_core::utils::get_num_threads();
    // SAFETY: the lengths are checked above; with these strides every index read lies inside
    // `a` (m x k) and `b` (k x n) and every index written inside `dst` (m x n), which is
    // exclusively borrowed and does not alias them.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            1,
            n as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::Rayon(threads),
        );
    }
    Some(dst)
}

#[cfg(test)]
mod tests {
    use super::matmul;

    #[test]
    fn matches_the_schoolbook_product() -> Result<(), &'static str> {
        let (m, k, n) = (37, 53, 29);
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 13) as f32 - 6.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 5) % 11) as f32 - 5.0).collect();
        let got = matmul(&a, &b, m, k, n).ok_or("matmul refused sizes that agree")?;
        for i in 0..m {
            for j in 0..n {
                let want: f32 = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
                assert_eq!(got[i * n + j], want, "at ({i}, {j})");
            }
        }
        Ok(())
    }

    #[test]
    fn refuses_slices_of_the_wrong_size() {
        assert!(matmul(&[1.0; 6], &[1.0; 6], 2, 3, 3).is_none());
        assert!(matmul(&[1.0; 6], &[1.0; 6], 2, 3, 2).is_some());
    }
}
