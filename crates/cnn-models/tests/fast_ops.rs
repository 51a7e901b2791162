//! Gradient checks: the fast CPU ops against candle's autograd of the reference ops.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use cnn_models::fast::{
    conv_relu, conv_relu_pool2, conv_relu_pool2_eval, maxpool2, reference_maxpool2,
};
use cnn_models::{Arch, Cnn, ModelConfig, NetSpec, OpsPath};

mod common;
use common::{assert_same_op, norm_err, rand, rel_err};

fn reference_conv(x: &Tensor, w: &Tensor, b: &Tensor) -> Tensor {
    let pad = w.dims()[3] / 2;
    x.conv2d(w, pad, 1, 1, 1)
        .unwrap()
        .broadcast_add(&b.reshape((1, b.elem_count(), 1, 1)).unwrap())
        .unwrap()
        .relu()
        .unwrap()
}

/// Every kernel size the specs allow, 1 and 3 input channels, 8x8, 28x28 and 32x32 inputs
/// and odd batches, plus the presets' own layers and odd sizes.
fn conv_cases() -> Vec<(usize, usize, usize, usize, usize, usize)> {
    // (batch, c_in, c_out, h, w, kernel)
    let mut cases = vec![
        (1, 1, 10, 28, 28, 3),
        (3, 10, 20, 14, 14, 3),
        (5, 20, 40, 7, 7, 3),
        (7, 2, 3, 5, 9, 3),
        (32, 1, 10, 28, 28, 3),
        (3, 4, 5, 1, 1, 3),
        (5, 2, 3, 3, 2, 7),
    ];
    for (i, kernel) in [1, 3, 5, 7].into_iter().enumerate() {
        for c_in in [1, 3] {
            for side in [8, 28, 32] {
                let batch = [1, 3, 5, 7][(i + side) % 4];
                cases.push((batch, c_in, 6, side, side, kernel));
            }
        }
    }
    cases
}

#[test]
fn conv_relu_matches_reference_values_and_gradients_for_every_kernel() {
    for (i, &(b, ci, co, h, w, k)) in conv_cases().iter().enumerate() {
        let seed = 100 + i as u64;
        let x = Var::from_tensor(&rand(&[b, ci, h, w], seed)).unwrap();
        let wt = Var::from_tensor(&(rand(&[co, ci, k, k], seed + 1) * 0.5).unwrap()).unwrap();
        let bias = Var::from_tensor(&(rand(&[co], seed + 2) * 0.1).unwrap()).unwrap();
        let pools: &[bool] = if h < 2 || w < 2 {
            &[false]
        } else {
            &[false, true]
        };
        for &pool in pools {
            let (fast, reference) = if pool {
                (
                    conv_relu_pool2(x.as_tensor(), wt.as_tensor(), bias.as_tensor()).unwrap(),
                    reference_maxpool2(&reference_conv(
                        x.as_tensor(),
                        wt.as_tensor(),
                        bias.as_tensor(),
                    ))
                    .unwrap(),
                )
            } else {
                (
                    conv_relu(x.as_tensor(), wt.as_tensor(), bias.as_tensor()).unwrap(),
                    reference_conv(x.as_tensor(), wt.as_tensor(), bias.as_tensor()),
                )
            };
            let case = format!("{:?}", (b, ci, co, h, w, k, pool));
            let vars = [("x", &x), ("w", &wt), ("b", &bias)];
            assert_same_op(&fast, &reference, &vars, seed + 3, &case);
        }
    }
}

/// The bits of a tensor, to compare two computations exactly.
fn bits(t: &Tensor) -> Vec<u32> {
    t.flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

#[test]
fn the_evaluation_pool_gives_the_same_values_and_gradients_bit_for_bit() {
    for (i, &(b, ci, co, h, w, k)) in conv_cases().iter().enumerate() {
        if h < 2 || w < 2 {
            continue;
        }
        let seed = 700 + i as u64;
        let x = Var::from_tensor(&rand(&[b, ci, h, w], seed)).unwrap();
        let wt = Var::from_tensor(&(rand(&[co, ci, k, k], seed + 1) * 0.5).unwrap()).unwrap();
        let bias = Var::from_tensor(&(rand(&[co], seed + 2) * 0.1).unwrap()).unwrap();
        let args = (x.as_tensor(), wt.as_tensor(), bias.as_tensor());
        let train = conv_relu_pool2(args.0, args.1, args.2).unwrap();
        let eval = conv_relu_pool2_eval(args.0, args.1, args.2).unwrap();
        let case = format!("{:?}", (b, ci, co, h, w, k));
        assert_eq!(bits(&train), bits(&eval), "values of {case}");
        // A backward through the evaluation op finds the maxima again: the same gradients.
        let probe = rand(train.dims(), seed + 3);
        let grads = |t: &Tensor| (t * &probe).unwrap().sum_all().unwrap().backward().unwrap();
        let (gt, ge) = (grads(&train), grads(&eval));
        for v in [&x, &wt, &bias] {
            let (a, b) = (
                gt.get(v.as_tensor()).unwrap(),
                ge.get(v.as_tensor()).unwrap(),
            );
            assert_eq!(bits(a), bits(b), "gradients of {case}");
        }
    }
}

#[test]
fn maxpool2_matches_reference_values_and_gradients() {
    for (i, &(b, c, h, w)) in [
        (1, 10, 28, 28),
        (3, 20, 14, 14),
        (5, 3, 7, 9),
        (64, 10, 28, 28),
    ]
    .iter()
    .enumerate()
    {
        let x = Var::from_tensor(&rand(&[b, c, h, w], 7 + i as u64)).unwrap();
        let probe = rand(&[b, c, h / 2, w / 2], 70 + i as u64);
        let fast = maxpool2(x.as_tensor()).unwrap();
        let reference = reference_maxpool2(x.as_tensor()).unwrap();
        // candle's own forward agrees (its backward does not: see reference_maxpool2).
        assert_eq!(
            rel_err(&x.as_tensor().max_pool2d(2).unwrap(), &reference),
            0.0
        );
        assert_eq!(rel_err(&fast, &reference), 0.0);
        let gf = (fast * &probe)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let gr = (reference * &probe)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let e = rel_err(
            gf.get(x.as_tensor()).unwrap(),
            gr.get(x.as_tensor()).unwrap(),
        );
        assert!(e < 1e-6, "pool grad {:?}: {e}", (b, c, h, w));
    }
}

/// The presets on MNIST, and specs of other kernels, depths, inputs and class counts.
fn specs() -> Vec<NetSpec> {
    let mut specs: Vec<NetSpec> = Arch::ALL.iter().map(|a| a.mnist_spec()).collect();
    let custom = [
        NetSpec::builder("deep5")
            .conv_k(16, 5)
            .maxpool()
            .conv(32)
            .maxpool()
            .conv(48)
            .maxpool()
            .linear(64)
            .dropout(0.25)
            .input([1, 28, 28])
            .classes(10),
        // Not a 1x1 conv after a narrow conv: where all its inputs are ReLU zeros it outputs
        // its bias exactly, and candle's reference max-pool sends the gradient to every tied
        // maximum where ours (and PyTorch) send it to the first.
        NetSpec::builder("rgb7")
            .conv_k(6, 1)
            .conv_k(8, 7)
            .maxpool()
            .maxpool()
            .linear(12)
            .linear(9)
            .input([3, 32, 32])
            .classes(26),
        NetSpec::builder("tiny")
            .maxpool()
            .conv(5)
            .input([1, 14, 14])
            .classes(5),
    ];
    specs.extend(custom.into_iter().map(|b| b.build().unwrap()));
    specs
}

/// A seeded model of `spec` and `batch` inputs in `[0, 1]`.
fn model_and_batch(spec: &NetSpec, batch: usize) -> (Cnn, VarMap, Tensor) {
    let [c, h, w] = spec.input.unwrap();
    let (model, varmap) = seeded_model(spec);
    let x = ((rand(&[batch, c, h, w], batch as u64) + 1.0).unwrap() * 0.5).unwrap();
    (model, varmap, x)
}

/// The logits of `x` and the gradients of their sum of squares with respect to `vars`.
fn logits_and_grads(m: &Cnn, x: &Tensor, vars: &[Var]) -> (Tensor, Vec<Tensor>) {
    let logits = m.forward_t(x, false).unwrap();
    let g = logits.sqr().unwrap().sum_all().unwrap().backward().unwrap();
    let grads = vars
        .iter()
        .map(|v| g.get(v.as_tensor()).unwrap().clone())
        .collect();
    (logits, grads)
}

#[test]
fn whole_models_agree_between_fast_and_reference_paths() {
    for spec in specs() {
        let arch = spec.name.clone();
        for batch in [1, 7, 32] {
            let (mut model, varmap, x) = model_and_batch(&spec, batch);
            let named = common::named_vars(&varmap);
            let vars: Vec<Var> = named.iter().map(|(_, v)| v.clone()).collect();
            model.set_ops(OpsPath::Fast);
            let (lf, gf) = logits_and_grads(&model, &x, &vars);
            model.set_ops(OpsPath::Reference);
            let (lr, gr) = logits_and_grads(&model, &x, &vars);
            assert!(rel_err(&lf, &lr) < 1e-5, "{arch} logits, batch {batch}");
            for ((a, r), (name, _)) in gf.iter().zip(&gr).zip(&named) {
                // Norm-wise: in a whole network a pre-activation within rounding of a ReLU or
                // pooling kink may flip between the paths and move one unit's gradient outright.
                let (e, n) = (rel_err(a, r), norm_err(a, r));
                assert!(
                    n < 1e-4 && e < 1e-3,
                    "{arch} batch {batch}: gradient of {name}: norm-wise {n}, max {e}"
                );
            }
        }
    }
}

#[test]
fn linear_matches_reference_values_and_gradients() {
    // (batch, in, out): medium's fc1 and fc2, small's fc1, an odd batch and a tiny layer.
    for (i, &(b, fin, fout)) in [
        (64, 1960, 128),
        (64, 128, 10),
        (33, 980, 10),
        (1, 5, 3),
        (17, 40, 37),
    ]
    .iter()
    .enumerate()
    {
        for relu in [false, true] {
            let seed = 500 + 10 * i as u64;
            let x = Var::from_tensor(&rand(&[b, fin], seed)).unwrap();
            let w = Var::from_tensor(&(rand(&[fout, fin], seed + 1) * 0.1).unwrap()).unwrap();
            let bias = Var::from_tensor(&(rand(&[fout], seed + 2) * 0.1).unwrap()).unwrap();
            let fast =
                cnn_models::fast::linear(x.as_tensor(), w.as_tensor(), bias.as_tensor(), relu)
                    .unwrap();
            let mut reference = x
                .as_tensor()
                .matmul(&w.as_tensor().t().unwrap())
                .unwrap()
                .broadcast_add(bias.as_tensor())
                .unwrap();
            if relu {
                reference = reference.relu().unwrap();
            }
            let case = format!("{:?}", (b, fin, fout, relu));
            let vars = [("x", &x), ("w", &w), ("b", &bias)];
            assert_same_op(&fast, &reference, &vars, seed + 3, &case);
        }
    }
}

/// A model whose weights come from [`rand`] (candle's CPU generator cannot be seeded), so
/// every run of the tests checks the same network.
fn seeded_model(spec: &NetSpec) -> (Cnn, VarMap) {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let model = Cnn::new(&ModelConfig::new(spec.clone()), vb).unwrap();
    let vars = common::named_vars(&varmap);
    for (i, (_, v)) in vars.iter().enumerate() {
        let fan_in: usize = if v.dims().len() > 1 {
            v.dims()[1..].iter().product()
        } else {
            64
        };
        let t = (rand(v.dims(), 900 + i as u64) / (fan_in as f64).sqrt()).unwrap();
        v.set(&t).unwrap();
    }
    (model, varmap)
}

#[test]
fn both_paths_are_bit_for_bit_repeatable() {
    for spec in specs() {
        let arch = spec.name.clone();
        for batch in [7, 32, 64] {
            let (mut model, varmap, x) = model_and_batch(&spec, batch);
            let vars = varmap.all_vars();
            let run = |m: &Cnn| {
                let (_, grads) = logits_and_grads(m, &x, &vars);
                grads
                    .iter()
                    .map(|g| g.flatten_all().unwrap().to_vec1::<f32>().unwrap())
                    .collect::<Vec<_>>()
            };
            for ops in [OpsPath::Fast, OpsPath::Reference] {
                model.set_ops(ops);
                let a = run(&model);
                assert_eq!(
                    a,
                    run(&model),
                    "{arch} batch {batch}: {ops:?} path is not repeatable"
                );
            }
        }
    }
}
