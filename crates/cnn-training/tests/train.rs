//! Training tests on real MNIST digits: SGD progress, determinism, save/load, divergence.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::sync::OnceLock;
use std::sync::atomic::AtomicBool;

use candle_core::{Device, Tensor};
use cnn_data::{DataSource, Dataset, DatasetKind};
use cnn_models::Arch;
use cnn_training::{
    Error, RunOutcome, TrainConfig, Trainer, batch_tensor, evaluate, label_tensor, load_model,
};

fn mnist() -> &'static Dataset {
    static DATA: OnceLock<Dataset> = OnceLock::new();
    DATA.get_or_init(|| {
        cnn_data::load(&DataSource::new(
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../assets/mnist"),
            DatasetKind::Mnist,
        ))
        .expect("shipped MNIST")
    })
}

/// The first `n` training images and the first `t` test images.
fn subset(n: usize, t: usize) -> Dataset {
    let d = mnist();
    Dataset {
        train: d.train.take(n),
        test: d.test.take(t),
        class_names: d.class_names.clone(),
    }
}

fn quick(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        ..TrainConfig::default()
    }
}

/// Runs `t` to its last epoch on `data`, saving into `dir` after each epoch.
fn run_into(
    t: &mut Trainer,
    data: &Dataset,
    dir: &std::path::Path,
) -> cnn_training::Result<RunOutcome> {
    cnn_training::run(t, data, Some(dir), &AtomicBool::new(false), &mut |_| {})
}

/// A fresh trainer of `arch` for the first `n` training digits.
fn trainer(arch: Arch, cfg: TrainConfig, n: usize) -> Trainer {
    Trainer::new(cfg, &arch.spec(), &Device::Cpu, &mnist().train.take(n)).unwrap()
}

fn weights(t: &Trainer) -> Vec<(String, Vec<f32>)> {
    let mut v: Vec<_> = t
        .varmap()
        .data()
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_tensor()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap(),
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn parameter_counts_and_output_shapes() {
    assert_eq!(Arch::SmallCnn.num_params(), 11_730);
    assert_eq!(Arch::MediumCnn.num_params(), 261_458);
    for arch in Arch::ALL {
        let t = trainer(arch, quick(1), 100);
        let n_vars: usize = weights(&t).iter().map(|(_, w)| w.len()).sum();
        assert_eq!(n_vars, arch.num_params(), "{arch}");
        let x = batch_tensor(&mnist().test, &[0, 1, 2], &Device::Cpu).unwrap();
        assert_eq!(t.model().forward_t(&x, false).unwrap().dims(), &[3, 10]);
        assert_eq!(
            t.model().first_layer_maps(&x).unwrap().dims(),
            &[3, 10, 28, 28]
        );
        let acts = t.model().activations(&x).unwrap();
        let layers = arch.layers();
        assert_eq!(acts.len(), layers.len() - 1);
        for (a, l) in acts.iter().zip(&layers[1..]) {
            assert_eq!(
                &a.dims()[1..],
                l.output_shape.as_slice(),
                "{arch} {}",
                l.name
            );
        }
    }
}

#[test]
fn one_sgd_step_lowers_the_loss_on_a_real_batch() {
    for arch in Arch::ALL {
        let cfg = TrainConfig {
            warmup_epochs: 0.0,
            momentum: 0.0,
            lr: 0.5,
            ..quick(1)
        };
        let mut t = trainer(arch, cfg, 60_000);
        let idx: Vec<usize> = (0..64).collect();
        let x = batch_tensor(&mnist().train, &idx, &Device::Cpu).unwrap();
        let y = label_tensor(&mnist().train, &idx, &Device::Cpu).unwrap();
        let eval_loss = |t: &Trainer| {
            let logits = t.model().forward_t(&x, false).unwrap();
            candle_nn::loss::cross_entropy(&logits, &y)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
        };
        let before = eval_loss(&t);
        assert!(
            (2.0..2.6).contains(&before),
            "{arch}: fresh loss {before} should be near ln 10"
        );
        let reported = t.step(&x, &y).unwrap();
        if arch == Arch::SmallCnn {
            // No dropout: the training loss of the step is the loss before the update.
            assert_eq!(reported, before, "{arch}");
        }
        let after = eval_loss(&t);
        assert!(after < before - 0.005, "{arch}: loss {before} -> {after}");
    }
}

#[test]
fn a_short_run_on_real_digits_beats_90_percent() {
    let data = subset(6000, 2000);
    let mut t = trainer(Arch::SmallCnn, quick(2), data.train.len());
    let dir = tempfile::tempdir().unwrap();
    let out = run_into(&mut t, &data, dir.path()).unwrap();
    assert_eq!(out, RunOutcome::Finished);
    let last = t.history().last().unwrap();
    assert!(last.test_accuracy > 0.90, "accuracy {}", last.test_accuracy);
    assert!(last.train_loss < t.history()[0].train_loss);
    let csv = std::fs::read_to_string(dir.path().join("history.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("epoch,train_loss,test_loss,test_accuracy,learning_rate,train_seconds")
    );
    assert_eq!(lines.count(), 2);
}

#[test]
fn same_seed_same_weights_other_seed_other_weights() {
    let data = subset(640, 100);
    let train = |seed: u64| {
        let cfg = TrainConfig {
            seed,
            shift: 1,
            ..quick(1)
        };
        let mut t = Trainer::new(cfg, &Arch::MediumCnn.spec(), &Device::Cpu, &data.train).unwrap();
        t.train_epoch(&data, &AtomicBool::new(false), &mut |_| {})
            .unwrap();
        weights(&t)
    };
    let a = train(7);
    assert_eq!(a, train(7), "same seed must give bit-identical weights");
    assert_ne!(a, train(8));
}

#[test]
fn save_then_load_gives_identical_logits_and_rejects_the_other_model() {
    let data = subset(512, 200);
    let dir = tempfile::tempdir().unwrap();
    let mut t = trainer(Arch::MediumCnn, quick(1), data.train.len());
    run_into(&mut t, &data, dir.path()).unwrap();
    let path = dir.path().join("final_state.safetensors");
    let (loaded, ckpt) = load_model(&path, Some("medium_cnn"), &Device::Cpu).unwrap();
    assert_eq!(
        ckpt.metadata.get("model").map(String::as_str),
        Some("medium_cnn")
    );
    let idx: Vec<usize> = (0..100).collect();
    let x = batch_tensor(&data.test, &idx, &Device::Cpu).unwrap();
    let a = t
        .model()
        .forward_t(&x, false)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    let b = loaded
        .forward_t(&x, false)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(
        evaluate(&loaded, &data.test, &Device::Cpu).unwrap().correct,
        t.history()[0].test_correct
    );
    match load_model(&path, Some("small_cnn"), &Device::Cpu) {
        Err(Error::WrongModel {
            found, expected, ..
        }) => assert_eq!(
            (found.as_str(), expected.as_str()),
            ("medium_cnn", "small_cnn")
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_checkpoints_give_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.safetensors");
    assert!(matches!(
        load_model(&missing, None, &Device::Cpu),
        Err(Error::ReadCheckpoint { .. })
    ));
    let garbage = dir.path().join("garbage.safetensors");
    std::fs::write(&garbage, b"this is not a checkpoint at all").unwrap();
    assert!(matches!(
        load_model(&garbage, None, &Device::Cpu),
        Err(Error::NotSafetensors { .. })
    ));

    // A real checkpoint, then cut short.
    let t = trainer(Arch::SmallCnn, quick(1), 100);
    t.save(dir.path()).unwrap();
    let good = std::fs::read(dir.path().join("final_state.safetensors")).unwrap();
    let cut = dir.path().join("cut.safetensors");
    std::fs::write(&cut, &good[..good.len() / 2]).unwrap();
    assert!(matches!(
        load_model(&cut, None, &Device::Cpu),
        Err(Error::NotSafetensors { .. })
    ));

    // Valid safetensors with the right names but wrong shapes.
    let w = Tensor::zeros((3, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
    let spec = serde_json::to_string(&Arch::SmallCnn.mnist_spec()).unwrap();
    let meta = [
        ("format".to_string(), "cnn-mnist".to_string()),
        ("format_version".to_string(), "2".to_string()),
        ("model".to_string(), "small_cnn".to_string()),
        ("spec".to_string(), spec),
    ]
    .into_iter()
    .collect();
    let b = Tensor::zeros(10, candle_core::DType::F32, &Device::Cpu).unwrap();
    let tensors = [("conv1.bias".into(), b), ("conv1.weight".into(), w)];
    let bytes = cnn_training::checkpoint::encode_raw(&tensors, meta).unwrap();
    let shaped = dir.path().join("shapes.safetensors");
    std::fs::write(&shaped, bytes).unwrap();
    match load_model(&shaped, None, &Device::Cpu) {
        Err(Error::TensorShape {
            name,
            found,
            expected,
            ..
        }) => {
            assert_eq!(name, "conv1.weight");
            assert_eq!((found, expected), (vec![3, 3], vec![10, 1, 3, 3]));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_diverging_loss_stops_with_advice_and_keeps_the_last_good_checkpoint() {
    let data = subset(640, 100);
    let dir = tempfile::tempdir().unwrap();
    let cfg = TrainConfig {
        epochs: 3,
        ..quick(3)
    };
    let mut t = Trainer::new(cfg, &Arch::SmallCnn.spec(), &Device::Cpu, &data.train).unwrap();
    t.train_epoch(&data, &AtomicBool::new(false), &mut |_| {})
        .unwrap();
    t.save(dir.path()).unwrap();
    let before = std::fs::read(dir.path().join("final_state.safetensors")).unwrap();
    // Poison a weight: the next loss is NaN.
    {
        let vars = t.varmap().data().lock().unwrap();
        let w = vars.get("fc1.weight").unwrap();
        let nan = (w.as_tensor() * f64::NAN).unwrap();
        w.set(&nan).unwrap();
    }
    let err = run_into(&mut t, &data, dir.path()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Diverged {
                epoch: 2,
                batch: 1,
                ..
            }
        ),
        "{err}"
    );
    match err {
        Error::Diverged { suggest, .. } => assert_eq!(suggest, 0.125),
        _ => unreachable!(),
    }
    assert_eq!(
        before,
        std::fs::read(dir.path().join("final_state.safetensors")).unwrap()
    );
}

#[test]
fn invalid_settings_name_their_field() {
    let base = TrainConfig::default();
    let cases = [
        (
            TrainConfig {
                lr: -1.0,
                ..base.clone()
            },
            "lr",
        ),
        (
            TrainConfig {
                lr: f64::NAN,
                ..base.clone()
            },
            "lr",
        ),
        (
            TrainConfig {
                epochs: 0,
                ..base.clone()
            },
            "epochs",
        ),
        (
            TrainConfig {
                batch_size: 0,
                ..base.clone()
            },
            "batch_size",
        ),
        (
            TrainConfig {
                momentum: 1.0,
                ..base.clone()
            },
            "momentum",
        ),
        (
            TrainConfig {
                l2: f64::INFINITY,
                ..base.clone()
            },
            "l2",
        ),
        (
            TrainConfig {
                shift: 100,
                ..base.clone()
            },
            "shift",
        ),
    ];
    for (cfg, flag) in cases {
        let msg = cfg.validate().unwrap_err().to_string();
        assert!(msg.starts_with(&format!("invalid {flag} ")), "{msg}");
    }
}

#[test]
fn optimizer_state_holds_no_autograd_graph() {
    // A momentum buffer that tracked ops would keep every earlier step's tensors alive: the
    // memory of a medium_cnn run grew by 300 MB/s before this was fixed.
    let data = subset(256, 10);
    let mut t = trainer(Arch::MediumCnn, quick(1), data.train.len());
    t.train_epoch(&data, &AtomicBool::new(false), &mut |_| {})
        .unwrap();
    let opt_slots = t.optimizer().slots();
    assert!(!opt_slots.is_empty());
    for s in opt_slots {
        assert!(
            !s.velocity.track_op(),
            "{}: velocity tracks autograd ops",
            s.name
        );
    }
}

#[test]
fn predict_batch_checks_each_image_not_only_the_total() {
    let t = trainer(Arch::SmallCnn, quick(1), 100);
    let d = &mnist().test;
    // 700 + 868 = 2 x 784: the total fits, each image does not.
    let (short, long) = (&d.image(0)[..700], [d.image(1), &d.image(2)[..84]].concat());
    match t.model().predict_batch(&[short, &long]) {
        Err(cnn_models::Error::ImageLen {
            index: 0, len: 700, ..
        }) => {}
        other => panic!("{other:?}"),
    }
    let probs = t.model().predict_batch(&[d.image(0), d.image(1)]).unwrap();
    assert_eq!(probs.len(), 2);
    assert!(
        probs
            .iter()
            .all(|p| (p.probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-4)
    );
}

#[test]
fn the_checkpoint_state_is_typed_and_keeps_the_whole_history() {
    let data = subset(640, 300);
    let dir = tempfile::tempdir().unwrap();
    let mut t = trainer(Arch::MediumCnn, quick(2), 640);
    t.train_epoch(&data, &AtomicBool::new(false), &mut |_| {})
        .unwrap();
    t.save(dir.path()).unwrap();
    let path = dir.path().join("checkpoint.safetensors");
    let resumed = Trainer::resume(&path, &Device::Cpu, 640).unwrap();
    // Evaluation time and exact counts survive (the CSV of format 2 lost the one and
    // rebuilt the other from a rounded accuracy).
    assert_eq!(resumed.history(), t.history());
    assert!(resumed.history()[0].eval_seconds > 0.0);
    assert_eq!(resumed.state(), t.state());
    assert_eq!(resumed.model().dropout_calls(), 10);

    // I/O errors are chained, not formatted away: a caller can ask what happened.
    let err = load_model(&dir.path().join("none"), None, &Device::Cpu).unwrap_err();
    let io = std::error::Error::source(&err)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .expect("the io::Error is the source");
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
}

#[test]
fn resuming_a_run_killed_between_its_files_makes_them_agree_again() {
    let data = subset(640, 100);
    let dir = tempfile::tempdir().unwrap();
    let mut t = trainer(Arch::SmallCnn, quick(1), 640);
    run_into(&mut t, &data, dir.path()).unwrap();
    let history = std::fs::read_to_string(dir.path().join("history.csv")).unwrap();
    // As if killed after the checkpoint was written, before the history was.
    std::fs::write(dir.path().join("history.csv"), "epoch,train_loss\n").unwrap();
    let path = dir.path().join("checkpoint.safetensors");
    let mut resumed = Trainer::resume(&path, &Device::Cpu, 640).unwrap();
    let outcome = run_into(&mut resumed, &data, dir.path()).unwrap();
    assert_eq!(outcome, RunOutcome::Finished);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("history.csv")).unwrap(),
        history
    );
}

#[test]
fn resuming_on_other_images_of_the_same_size_is_refused() {
    let data = subset(640, 100);
    let dir = tempfile::tempdir().unwrap();
    let mut t = trainer(Arch::SmallCnn, quick(2), 640);
    t.train_epoch(&data, &AtomicBool::new(false), &mut |_| {})
        .unwrap();
    // The fingerprint is recorded once the run has seen its data.
    assert_eq!(t.state().data_fingerprint, None);
    let mut one_epoch = trainer(Arch::SmallCnn, quick(1), 640);
    run_into(&mut one_epoch, &data, dir.path()).unwrap();
    assert_eq!(
        one_epoch.state().data_fingerprint,
        Some(data.train.fingerprint())
    );

    // Same count, same shape, other digits.
    let others: Vec<usize> = (640..1280).collect();
    let other = Dataset {
        train: mnist().train.select(&others),
        ..subset(640, 100)
    };
    assert_ne!(other.train.fingerprint(), data.train.fingerprint());
    let path = dir.path().join("checkpoint.safetensors");
    let mut resumed = Trainer::resume(&path, &Device::Cpu, 640).unwrap();
    match run_into(&mut resumed, &other, dir.path()) {
        Err(Error::DataChanged { recorded, found }) => {
            assert_eq!(recorded, data.train.fingerprint());
            assert_eq!(found, other.train.fingerprint());
        }
        other => panic!("{other:?}"),
    }
    // Nothing was written over: the same data still resumes.
    let mut resumed = Trainer::resume(&path, &Device::Cpu, 640).unwrap();
    assert_eq!(
        run_into(&mut resumed, &data, dir.path()).unwrap(),
        RunOutcome::Finished
    );
}

#[test]
fn a_checkpoint_recording_an_invalid_recipe_blames_the_file() {
    let data = subset(640, 100);
    let dir = tempfile::tempdir().unwrap();
    let mut t = trainer(Arch::SmallCnn, quick(1), 640);
    run_into(&mut t, &data, dir.path()).unwrap();
    let path = dir.path().join("checkpoint.safetensors");
    let mut ckpt = cnn_training::checkpoint::read(&path, &Device::Cpu).unwrap();
    if let Some(state) = ckpt.state.as_mut() {
        state.config.lr = -1.0;
    }
    match Trainer::from_checkpoint(&ckpt, &path, &Device::Cpu, 640) {
        Err(e @ Error::CheckpointConfig { .. }) => {
            assert!(e.to_string().contains("checkpoint.safetensors"), "{e}");
            let source = std::error::Error::source(&e).unwrap().to_string();
            assert!(source.contains("lr"), "{source}");
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
}

#[test]
fn the_last_clean_epochs_train_on_the_images_as_they_are_and_resume_bit_for_bit() {
    let data = subset(640, 100);
    let light = |clean_epochs| TrainConfig {
        augment: cnn_training::Affine::LIGHT,
        clean_epochs,
        ..quick(2)
    };
    let epoch = |t: &mut Trainer| {
        t.train_epoch(&data, &AtomicBool::new(false), &mut |_| {})
            .unwrap();
        weights(t)
    };
    // One clean epoch of two: the first is the augmented run's, the second is not.
    let (mut a, mut b) = (
        trainer(Arch::SmallCnn, light(1), 640),
        trainer(Arch::SmallCnn, light(0), 640),
    );
    assert_eq!(epoch(&mut a), epoch(&mut b));
    let a2 = epoch(&mut a);
    assert_ne!(a2, epoch(&mut b));
    // Clean throughout is no augmentation at all, draws included.
    let (mut c, mut d) = (
        trainer(Arch::SmallCnn, light(2), 640),
        trainer(Arch::SmallCnn, quick(2), 640),
    );
    for _ in 0..2 {
        assert_eq!(epoch(&mut c), epoch(&mut d));
    }
    // Resumed across the switch, the run is the same run.
    let dir = tempfile::tempdir().unwrap();
    let mut e = trainer(Arch::SmallCnn, light(1), 640);
    epoch(&mut e);
    e.save(dir.path()).unwrap();
    let path = dir.path().join("checkpoint.safetensors");
    let mut resumed = Trainer::resume(&path, &Device::Cpu, 640).unwrap();
    assert_eq!(resumed.config().clean_epochs, 1);
    assert_eq!(epoch(&mut resumed), a2);
    // More clean epochs than epochs is refused, by name.
    let msg = light(3).validate().unwrap_err().to_string();
    assert!(msg.starts_with("invalid clean_epochs "), "{msg}");
}
