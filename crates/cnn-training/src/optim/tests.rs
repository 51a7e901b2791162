//! The in-place CPU update against candle's ops, on real digits.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use candle_core::{Device, Tensor, Var};

use super::{Optimizer, OptimizerKind, candle_update};

/// Two real test digits, scaled to [0, 1], as a 28x28 weight and a 28x28 input.
fn digits() -> (Tensor, Tensor) {
    let data = cnn_data::load(&cnn_data::DataSource::new(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../assets/mnist"),
        cnn_data::DatasetKind::Mnist,
    ))
    .unwrap();
    let t = |i: usize| {
        let v: Vec<f32> = data
            .test
            .image(i)
            .iter()
            .map(|&p| f32::from(p) / 255.0)
            .collect();
        Tensor::from_vec(v, (28, 28), &Device::Cpu).unwrap()
    };
    (t(0), t(1))
}

#[test]
fn the_in_place_update_equals_candle_ops_bit_for_bit() {
    let (w0, x) = digits();
    for (name, decay) in [("layer.weight", Some(1e-4)), ("layer.bias", None)] {
        let var = Var::from_tensor(&w0).unwrap();
        let vars = vec![(name.to_string(), var.clone())];
        let mut sgd = Optimizer::new(OptimizerKind::Sgd, vars, 0.9, 1e-4).unwrap();
        let (mut w, mut v) = (w0.clone(), w0.zeros_like().unwrap());
        for (step, lr) in [0.5, 0.31, 0.07].into_iter().enumerate() {
            // loss = Σ (w·x)², so the gradient 2·(w·x)·x changes with w at every step.
            let loss = (var.as_tensor() * &x)
                .unwrap()
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap();
            sgd.backward_step(&loss, lr).unwrap();
            let g = ((&w * &x).unwrap() * &x).unwrap().affine(2.0, 0.0).unwrap();
            (w, v) = candle_update(&w, &g, &v, 0.9, decay, lr).unwrap();
            let bits = |t: &Tensor| -> Vec<u32> {
                t.flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap()
                    .iter()
                    .map(|f| f.to_bits())
                    .collect()
            };
            assert_eq!(
                bits(var.as_tensor()),
                bits(&w),
                "{name}: weights, step {step}"
            );
            assert_eq!(
                bits(&sgd.slots()[0].velocity),
                bits(&v),
                "{name}: velocity, step {step}"
            );
        }
        assert_ne!(
            var.as_tensor().to_vec2::<f32>().unwrap(),
            w0.to_vec2::<f32>().unwrap(),
            "the steps changed nothing"
        );
    }
}

/// Weights after steps of `kind` on `loss = Σ w·c` (a constant gradient `c`), from `w0`.
fn steps_on_a_constant_gradient(kind: OptimizerKind, lrs: &[f64]) -> Vec<f32> {
    let (w0, c) = start_and_gradient();
    let var = Var::from_tensor(&w0).unwrap();
    let vars = vec![("layer.weight".to_string(), var.clone())];
    let mut opt = Optimizer::new(kind, vars, 0.9, 0.01).unwrap();
    for &lr in lrs {
        let loss = (var.as_tensor() * &c).unwrap().sum_all().unwrap();
        opt.backward_step(&loss, lr).unwrap();
    }
    var.as_tensor()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
}

fn start_and_gradient() -> (Tensor, Tensor) {
    let w0 = Tensor::new(&[[0.5f32, -1.0, 2.0], [0.0, 3.0, -0.25]], &Device::Cpu).unwrap();
    let c = Tensor::new(&[[1.0f32, -2.0, 0.5], [4.0, -0.125, 1e-3]], &Device::Cpu).unwrap();
    (w0, c)
}

#[test]
fn adam_and_adamw_take_pytorch_steps() {
    let w0 = [0.5f32, -1.0, 2.0, 0.0, 3.0, -0.25];
    let c = [1.0f32, -2.0, 0.5, 4.0, -0.125, 1e-3];
    let lr = 0.1;
    // Adam's first step is lr·ĝ/(|ĝ| + ε) with ĝ = g + λw (bias corrections cancel).
    let adam = steps_on_a_constant_gradient(OptimizerKind::Adam, &[lr]);
    // AdamW's: w·(1 - lr·λ) - lr·g/(|g| + ε).
    let adamw = steps_on_a_constant_gradient(OptimizerKind::AdamW, &[lr]);
    for i in 0..6 {
        let g = f64::from(c[i]) + 0.01 * f64::from(w0[i]);
        let want = f64::from(w0[i]) - lr * g / (g.abs() + 1e-8);
        assert!(
            (f64::from(adam[i]) - want).abs() < 1e-6,
            "adam {i}: {} vs {want}",
            adam[i]
        );
        let g = f64::from(c[i]);
        let want = f64::from(w0[i]) * (1.0 - lr * 0.01) - lr * g / (g.abs() + 1e-8);
        assert!(
            (f64::from(adamw[i]) - want).abs() < 1e-6,
            "adamw {i}: {} vs {want}",
            adamw[i]
        );
    }
    // A constant gradient keeps m/sqrt(v) at its sign after bias correction: every step
    // moves (about) lr, whatever the schedule gives.
    let lrs = [0.1, 0.05, 0.2];
    let three = steps_on_a_constant_gradient(OptimizerKind::AdamW, &lrs);
    let mut w = f64::from(w0[1]);
    for lr in lrs {
        w = w * (1.0 - lr * 0.01) + lr;
    }
    assert!(
        (f64::from(three[1]) - w).abs() < 1e-5,
        "{} vs {w}",
        three[1]
    );
}

#[test]
fn adam_in_place_equals_candle_ops() {
    let (w0, c) = start_and_gradient();
    for decoupled in [false, true] {
        let mut ends = Vec::new();
        for in_place in [true, false] {
            let w = Var::from_tensor(&w0).unwrap();
            let (mut m, mut v) = (w0.zeros_like().unwrap(), w0.zeros_like().unwrap());
            for (t, lr) in [0.1, 0.03, 0.07, 0.01].into_iter().enumerate() {
                let g = (&c + w.as_tensor()).unwrap();
                let hyper = (t as u64 + 1, lr, Some(0.01), decoupled);
                super::adam::adam_step_on(&w, &g, (&mut m, &mut v), hyper, in_place).unwrap();
            }
            ends.push([w.as_tensor().clone(), m, v]);
        }
        for (a, b) in ends[0].iter().zip(&ends[1]) {
            let d = (a - b).unwrap().abs().unwrap().max_all().unwrap();
            let d = d.to_scalar::<f32>().unwrap();
            // The same arithmetic in another order: a few units in the last place.
            assert!(d < 1e-5, "decoupled {decoupled}: {d}");
        }
    }
}
