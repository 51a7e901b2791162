//! Gradient checks of the textbook layers: strided and padded convs, batch norm, pools of
//! any window and the activations, fast against reference, alone and in whole specs.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use cnn_models::fast::{self, BN_EPS};
use cnn_models::{
    Activation, BN_MOMENTUM, Cnn, ConvSpec, ModelConfig, NetSpec, OpsPath, Padding, PoolKind,
};

mod common;
use common::{assert_same_op, named_vars, norm_err, rand, rel_err, values};

#[test]
fn strided_and_padded_convs_match_candle_values_and_gradients() {
    // (batch, c_in, c_out, h, w, kernel, stride, pad)
    let cases = [
        (3, 2, 5, 9, 9, 3, 2, 1),
        (5, 1, 4, 28, 28, 5, 1, 0),
        (2, 3, 6, 7, 8, 4, 2, 0),
        (1, 4, 3, 11, 6, 3, 3, 2),
        (7, 2, 2, 6, 6, 1, 2, 0),
        (4, 3, 8, 13, 13, 11, 1, 5),
        (6, 1, 6, 28, 28, 5, 1, 2),
        // Padding past the kernel; LeNet-5's second conv (computed directly, as thin convs
        // are).
        (3, 3, 4, 5, 6, 1, 1, 1),
        (2, 6, 16, 14, 14, 5, 1, 0),
    ];
    for (i, &(b, ci, co, h, w, k, s, p)) in cases.iter().enumerate() {
        let seed = 300 + 3 * i as u64;
        let x = Var::from_tensor(&rand(&[b, ci, h, w], seed)).unwrap();
        let wt = Var::from_tensor(&(rand(&[co, ci, k, k], seed + 1) * 0.5).unwrap()).unwrap();
        let bias = Var::from_tensor(&(rand(&[co], seed + 2) * 0.1).unwrap()).unwrap();
        // ReLU and tanh go into the conv's op; GELU follows it as an op of its own.
        for act in [
            Activation::None,
            Activation::Relu,
            Activation::Tanh,
            Activation::Gelu,
        ] {
            let got = fast::conv(&x, &wt, &bias, s, p, act).unwrap();
            let want = fast::reference_conv(&x, &wt, &bias, s, p, act).unwrap();
            // The reference itself is candle's plain conv2d, forward.
            let plain = x
                .conv2d(&wt, p, s, 1, 1)
                .unwrap()
                .broadcast_add(&bias.reshape((1, co, 1, 1)).unwrap())
                .unwrap();
            let plain = fast::reference_activation(&plain, act).unwrap();
            assert!(rel_err(&want, &plain) < 1e-6, "case {i}: reference forward");
            let vars = [("x", &x), ("w", &wt), ("b", &bias)];
            let case = format!("case {i} {act:?}");
            assert_same_op(&got, &want, &vars, seed + 7, &case);
        }
    }
}

#[test]
fn pools_of_any_window_match_candle_values_and_gradients() {
    // (batch, channels, h, w, window): odd sides floored, a whole-map window (global).
    let cases = [
        (2, 3, 8, 8, [2, 2]),
        (3, 2, 7, 5, [2, 2]),
        (3, 2, 7, 9, [3, 3]),
        (1, 4, 5, 5, [5, 5]),
        (5, 1, 6, 4, [6, 4]),
        (2, 2, 9, 9, [4, 4]),
    ];
    for (i, &(b, c, h, w, win)) in cases.iter().enumerate() {
        let x = Var::from_tensor(&rand(&[b, c, h, w], 400 + i as u64)).unwrap();
        for kind in [PoolKind::Max, PoolKind::Avg] {
            let got = fast::pool(&x, kind, win).unwrap();
            let want = fast::reference_pool(&x, kind, win).unwrap();
            let case = format!("{kind:?} case {i}");
            assert_same_op(&got, &want, &[("x", &x)], 450 + i as u64, &case);
        }
    }
}

#[test]
fn a_max_pool_sends_a_tied_window_s_gradient_to_its_first_maximum() {
    // Rows 0-1 of a 4x5 plane are all 1 (every window tied), rows 2-3 tie on the bottom row.
    let v: Vec<f32> = (0..20)
        .map(|i| if (10..15).contains(&i) { 0.0 } else { 1.0 })
        .collect();
    for win in [[2, 2], [2, 1]] {
        let x = Var::from_vec(v.clone(), (1, 1, 4, 5), &Device::Cpu).unwrap();
        let y = fast::pool(&x, PoolKind::Max, win).unwrap();
        let grads = y.sum_all().unwrap().backward().unwrap();
        let g: Vec<f32> = grads
            .get(&x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let firsts: Vec<usize> = (0..20).filter(|&i| g[i] != 0.0).collect();
        let want = if win == [2, 2] {
            vec![0, 2, 15, 17]
        } else {
            vec![0, 1, 2, 3, 4, 15, 16, 17, 18, 19]
        };
        assert_eq!(firsts, want, "window {win:?}: {g:?}");
    }
}

#[test]
fn batch_norm_matches_its_definition_and_candle_gradients() {
    for (i, &(b, c, h, w)) in [(4, 3, 5, 5), (1, 2, 7, 3), (9, 5, 1, 1), (64, 8, 6, 6)]
        .iter()
        .enumerate()
    {
        let seed = 500 + 4 * i as u64;
        let x =
            Var::from_tensor(&((rand(&[b, c, h, w], seed) * 3.0).unwrap() + 0.5).unwrap()).unwrap();
        let gamma = Var::from_tensor(&(rand(&[c], seed + 1) + 1.5).unwrap()).unwrap();
        let beta = Var::from_tensor(&rand(&[c], seed + 2)).unwrap();
        for relu in [false, true] {
            let (got, mean, var) = fast::batchnorm(&x, &gamma, &beta, relu).unwrap();
            let (want, rmean, rvar) = fast::reference_batchnorm(&x, &gamma, &beta, relu).unwrap();
            assert!(rel_err(&mean, &rmean) < 1e-5 && rel_err(&var, &rvar) < 1e-5);
            let vars = [("x", &x), ("gamma", &gamma), ("beta", &beta)];
            let case = format!("case {i} relu {relu}");
            assert_same_op(&got, &want, &vars, seed + 3, &case);
        }
        // The definition, channel 0 by hand: mean 0 and variance 1 before the affine step.
        let (y, ..) = fast::batchnorm(&x, &gamma, &beta, false).unwrap();
        let y0 = y
            .narrow(1, 0, 1)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let (g0, b0) = (
            gamma.to_vec1::<f32>().unwrap()[0],
            beta.to_vec1::<f32>().unwrap()[0],
        );
        let xhat: Vec<f64> = y0.iter().map(|&v| f64::from((v - b0) / g0)).collect();
        let n = xhat.len() as f64;
        let m = xhat.iter().sum::<f64>() / n;
        let v = xhat.iter().map(|a| (a - m).powi(2)).sum::<f64>() / n;
        assert!(m.abs() < 1e-4, "case {i}: mean {m}");
        let var0 = var_of(&x, 0);
        let want_v = var0 / (var0 + BN_EPS);
        assert!(
            (v - want_v).abs() < 1e-3,
            "case {i}: variance {v}, want {want_v}"
        );
    }
}

/// The biased variance of channel `c` of `x`, in `f64`.
fn var_of(x: &Tensor, c: usize) -> f64 {
    let v = values(&x.narrow(1, c, 1).unwrap());
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    v.iter().map(|a| (a - m).powi(2)).sum::<f64>() / n
}

/// Specs with every textbook layer: strides, paddings, batch norm, each activation, pools.
fn specs() -> Vec<NetSpec> {
    let act = |a| ConvSpec::new(6).activation(a);
    [
        NetSpec::builder("lenet")
            .conv_with(
                ConvSpec::new(6)
                    .kernel(5)
                    .padding(Padding::Pixels(2))
                    .activation(Activation::Tanh),
            )
            .avgpool(2)
            .conv_with(
                ConvSpec::new(16)
                    .kernel(5)
                    .padding(Padding::Valid)
                    .activation(Activation::Tanh),
            )
            .avgpool(2)
            .layer(cnn_models::LayerSpec::Linear {
                width: 30,
                activation: Activation::Tanh,
            })
            .input([1, 28, 28])
            .classes(10),
        NetSpec::builder("allconv")
            .conv_with(ConvSpec::new(8).batchnorm(true))
            .conv_with(ConvSpec::new(12).stride(2).batchnorm(true))
            .conv_with(
                ConvSpec::new(12)
                    .kernel(4)
                    .stride(2)
                    .padding(Padding::Valid)
                    .batchnorm(true)
                    .activation(Activation::Silu),
            )
            .global_avgpool()
            .input([1, 15, 13])
            .classes(7),
        // Valid and strided ReLU convs with the 2x2 max-pool fused in, on odd maps.
        NetSpec::builder("pooled")
            .conv_with(ConvSpec::new(5).padding(Padding::Valid))
            .maxpool()
            .conv_with(
                ConvSpec::new(4)
                    .kernel(2)
                    .stride(2)
                    .padding(Padding::Pixels(1)),
            )
            .maxpool()
            .linear(7)
            .input([2, 15, 13])
            .classes(3),
        NetSpec::builder("mixed")
            .conv_with(act(Activation::Gelu))
            .maxpool()
            .conv_with(act(Activation::None).batchnorm(true))
            .layer(cnn_models::LayerSpec::MaxPool { size: 3 })
            .layer(cnn_models::LayerSpec::Linear {
                width: 9,
                activation: Activation::Gelu,
            })
            .input([3, 11, 10])
            .classes(4),
    ]
    .into_iter()
    .map(|b| b.build().unwrap())
    .collect()
}

/// A model of `spec` with seeded weights (batch norms' scales near 1), and its variables.
fn seeded(spec: &NetSpec) -> (Cnn, Vec<(String, Var)>) {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let model = Cnn::new(&ModelConfig::new(spec.clone()), vb).unwrap();
    let vars = named_vars(&varmap);
    for (i, (name, v)) in vars.iter().enumerate() {
        let fan_in: usize = v.dims()[1..].iter().product::<usize>().max(4);
        let mut t = (rand(v.dims(), 700 + i as u64) / (fan_in as f64).sqrt()).unwrap();
        if name.starts_with("bn") && (name.ends_with("weight") || name.ends_with("var")) {
            t = (t + 1.0).unwrap();
        }
        v.set(&t).unwrap();
    }
    (model, vars)
}

#[test]
fn whole_textbook_specs_agree_between_paths_in_training_and_evaluation() {
    for spec in specs() {
        for (batch, train) in [(1, false), (5, true), (16, true), (16, false)] {
            let [c, h, w] = spec.input.unwrap();
            let x = ((rand(&[batch, c, h, w], batch as u64) + 1.0).unwrap() * 0.5).unwrap();
            let mut out = Vec::new();
            for ops in [OpsPath::Fast, OpsPath::Reference] {
                let (mut model, vars) = seeded(&spec);
                model.set_ops(ops);
                let logits = model.forward_t(&x, train).unwrap();
                let g = logits.sqr().unwrap().sum_all().unwrap().backward().unwrap();
                let grads: Vec<(String, Option<Tensor>)> = vars
                    .iter()
                    .map(|(n, v)| (n.clone(), g.get(v.as_tensor()).cloned()))
                    .collect();
                let stats: Vec<Tensor> = vars
                    .iter()
                    .filter(|(n, _)| cnn_models::is_running_stat(n))
                    .map(|(_, v)| v.as_tensor().copy().unwrap())
                    .collect();
                out.push((logits, grads, stats));
            }
            let case = format!("{} batch {batch} train {train}", spec.name);
            let ((lf, gf, sf), (lr, gr, sr)) = (&out[0], &out[1]);
            assert!(rel_err(lf, lr) < 1e-4, "{case}: logits {}", rel_err(lf, lr));
            for ((name, a), (_, r)) in gf.iter().zip(gr) {
                match (a, r) {
                    (Some(a), Some(r)) => {
                        // A conv's bias before a batch norm has a gradient of zero up to
                        // rounding (the norm removes it): there only the difference counts.
                        let n = norm_err(a, r);
                        let diff = (a - r).unwrap().abs().unwrap().max_all().unwrap();
                        let diff = diff.to_scalar::<f32>().unwrap();
                        assert!(
                            n < 1e-3 || diff < 1e-3,
                            "{case}: gradient of {name}: {n}, {diff}"
                        );
                    }
                    (None, None) => assert!(cnn_models::is_running_stat(name), "{case}: {name}"),
                    // Evaluation's fast batch norm is a constant affine map: no gradient to
                    // its scale and shift (nothing trains in evaluation).
                    (None, Some(_)) if !train && name.starts_with("bn") => {}
                    _ => panic!("{case}: gradient of {name} on one path only"),
                }
            }
            for (a, r) in sf.iter().zip(sr) {
                assert!(rel_err(a, r) < 1e-5, "{case}: running statistics");
            }
        }
    }
}

#[test]
fn batch_norm_keeps_pytorch_running_statistics_and_uses_them_in_evaluation() {
    let spec = NetSpec::builder("bn")
        .conv_with(
            ConvSpec::new(3)
                .kernel(1)
                .batchnorm(true)
                .activation(Activation::None),
        )
        .input([1, 4, 4])
        .classes(2)
        .build()
        .unwrap();
    let (model, vars) = seeded(&spec);
    let get = |name: &str| {
        vars.iter()
            .find(|(n, _)| n == name)
            .unwrap()
            .1
            .as_tensor()
            .clone()
    };
    let (rm0, rv0) = (
        get("bn1.running_mean").to_vec1::<f32>().unwrap(),
        get("bn1.running_var").to_vec1::<f32>().unwrap(),
    );
    let x = rand(&[6, 1, 4, 4], 9);
    model.forward_t(&x, true).unwrap();
    // The conv's output of channel c is w_c·x + b_c: its batch mean and unbiased variance.
    let (w, b) = (
        get("conv1.weight")
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap(),
        get("conv1.bias").to_vec1::<f32>().unwrap(),
    );
    let xs = values(&x);
    let n = xs.len() as f64;
    let (rm1, rv1) = (
        get("bn1.running_mean").to_vec1::<f32>().unwrap(),
        get("bn1.running_var").to_vec1::<f32>().unwrap(),
    );
    for c in 0..3 {
        let z: Vec<f64> = xs
            .iter()
            .map(|v| f64::from(w[c]) * v + f64::from(b[c]))
            .collect();
        let m = z.iter().sum::<f64>() / n;
        let var = z.iter().map(|a| (a - m).powi(2)).sum::<f64>() / (n - 1.0);
        let want_m = (1.0 - BN_MOMENTUM) * f64::from(rm0[c]) + BN_MOMENTUM * m;
        let want_v = (1.0 - BN_MOMENTUM) * f64::from(rv0[c]) + BN_MOMENTUM * var;
        assert!(
            (f64::from(rm1[c]) - want_m).abs() < 1e-5,
            "running mean {c}"
        );
        assert!((f64::from(rv1[c]) - want_v).abs() < 1e-5, "running var {c}");
    }
    // Evaluation does not move them, and normalises with them.
    let maps = model.first_layer_maps(&x).unwrap();
    assert_eq!(get("bn1.running_mean").to_vec1::<f32>().unwrap(), rm1);
    let (g, beta) = (
        get("bn1.weight").to_vec1::<f32>().unwrap(),
        get("bn1.bias").to_vec1::<f32>().unwrap(),
    );
    let got = maps
        .narrow(1, 1, 1)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    for (j, &v) in got.iter().enumerate() {
        let z = f64::from(w[1]) * xs[j] + f64::from(b[1]);
        let want = (z - f64::from(rm1[1])) / (f64::from(rv1[1]) + BN_EPS).sqrt() * f64::from(g[1])
            + f64::from(beta[1]);
        assert!(
            (f64::from(v) - want).abs() < 1e-4,
            "evaluation output {j}: {v} vs {want}"
        );
    }
}

#[test]
fn activations_match_candle_values_and_gradients() {
    // Values over ±6, where each activation bends, and an odd count.
    let x = Var::from_tensor(&(rand(&[3, 5, 7, 9], 77) * 6.0).unwrap()).unwrap();
    for act in [
        Activation::Tanh,
        Activation::Gelu,
        Activation::Silu,
        Activation::Relu,
    ] {
        let got = fast::activation(&x, act).unwrap();
        let want = fast::reference_activation(&x, act).unwrap();
        assert_same_op(&got, &want, &[("x", &x)], 78, &format!("{act}"));
    }
}
