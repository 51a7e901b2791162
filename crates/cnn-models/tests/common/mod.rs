//! Helpers the gradient-check tests share: seeded values and relative errors.

#![allow(clippy::unwrap_used, dead_code)] // tests: a failed unwrap is a failed test

use candle_core::{Device, Tensor, Var};

/// Fresh pseudo-random values in [-1, 1) from `seed`.
pub fn rand(shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let v: Vec<f32> = (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

pub fn rel_err(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    let diff = (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    let scale = b
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
        .max(1e-6);
    diff / scale
}

/// `‖a - b‖ / ‖b‖`, the norm-wise relative error.
pub fn norm_err(a: &Tensor, b: &Tensor) -> f32 {
    let d = (a - b)
        .unwrap()
        .sqr()
        .unwrap()
        .sum_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
        .sqrt();
    let n = b
        .sqr()
        .unwrap()
        .sum_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
        .sqrt()
        .max(1e-12);
    d / n
}

/// Checks that `fast` equals `reference` (relative error below 1e-5) and that both send
/// the same gradient (below 1e-4) to each of `vars` for a random upstream gradient.
pub fn assert_same_op(
    fast: &Tensor,
    reference: &Tensor,
    vars: &[(&str, &Var)],
    seed: u64,
    case: &str,
) {
    assert!(rel_err(fast, reference) < 1e-5, "forward {case}");
    let probe = rand(fast.dims(), seed);
    let grads = |t: &Tensor| (t * &probe).unwrap().sum_all().unwrap().backward().unwrap();
    let (gf, gr) = (grads(fast), grads(reference));
    for (name, v) in vars {
        let e = rel_err(
            gf.get(v.as_tensor()).unwrap(),
            gr.get(v.as_tensor()).unwrap(),
        );
        assert!(e < 1e-4, "grad {name} of {case}: relative error {e}");
    }
}

/// The variables of `varmap`, sorted by name.
pub fn named_vars(varmap: &candle_nn::VarMap) -> Vec<(String, Var)> {
    let mut vars: Vec<(String, Var)> = varmap
        .data()
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

/// The values of `t` as `f64`.
pub fn values(t: &Tensor) -> Vec<f64> {
    t.flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect()
}
