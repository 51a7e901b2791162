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
