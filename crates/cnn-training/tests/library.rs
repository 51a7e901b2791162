//! The short path through the library: data built in memory (grayscale and colour), class
//! filters, training with defaults, one-file save and load, plain weights, predictions.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use cnn_training::prelude::*;
use cnn_training::{Error, RunFolder};

/// `n` images of `shape` in `classes` classes that a small net tells apart: class `c`
/// lights the `c`-th band of rows in channel `c % channels`, with a little noise.
fn bands(n: usize, [ch, h, w]: [usize; 3], classes: u8, seed: u64) -> Split {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut noise = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % 40) as u8
    };
    let mut images = Vec::with_capacity(n * ch * h * w);
    let labels: Vec<u8> = (0..n).map(|i| (i % usize::from(classes)) as u8).collect();
    for &l in &labels {
        let band = h / usize::from(classes);
        for c in 0..ch {
            for y in 0..h {
                for _ in 0..w {
                    let lit = c == usize::from(l) % ch && y / band.max(1) == usize::from(l);
                    images.push(if lit { 215 + noise() } else { noise() });
                }
            }
        }
    }
    Split::with_shape(images, labels, [ch, h, w], classes.into()).unwrap()
}

fn tiny_spec() -> NetSpec {
    NetSpec::builder("tiny")
        .conv(4)
        .maxpool()
        .linear(8)
        .build()
        .unwrap()
}

fn trained(shape: [usize; 3], names: [&str; 3]) -> (Dataset, Trainer) {
    let data = Dataset::new(bands(240, shape, 3, 1), bands(60, shape, 3, 2), names).unwrap();
    let cfg = TrainConfig {
        epochs: 3,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(cfg, &tiny_spec(), &Device::Cpu, &data.train).unwrap();
    trainer.fit(&data).unwrap();
    (data, trainer)
}

#[test]
fn class_filters_relabel_and_take_keeps_the_first() {
    let split = Split::new(vec![0, 1, 2, 3, 4, 5], vec![2, 0, 1, 2, 1, 0], 1, 1, 3).unwrap();
    let f = split.filter_classes(&[2, 0]).unwrap();
    assert_eq!(f.classes(), 2);
    assert_eq!(f.labels(), &[0, 1, 0, 1]);
    assert_eq!(f.images(), &[0, 1, 3, 5]);
    assert!(matches!(
        split.filter_classes(&[3]),
        Err(cnn_training::cnn_data::Error::NoSuchClass {
            class: 3,
            classes: 3
        })
    ));
    assert!(matches!(
        split.filter_classes(&[1, 1]),
        Err(cnn_training::cnn_data::Error::ClassTwice { class: 1 })
    ));
    assert_eq!(split.take(2).labels(), &[2, 0]);
    assert_eq!(split.take(99), split);
}

#[test]
fn a_dataset_checks_its_splits_and_names() {
    let a = bands(6, [1, 6, 6], 3, 1);
    let rgb = bands(6, [3, 6, 6], 3, 1);
    assert!(matches!(
        Dataset::new(a.clone(), rgb, ["a", "b", "c"]),
        Err(cnn_training::cnn_data::Error::SplitsDiffer { .. })
    ));
    assert!(matches!(
        Dataset::new(a.clone(), a.clone(), ["a", "b"]),
        Err(cnn_training::cnn_data::Error::ClassNameCount {
            given: 2,
            classes: 3
        })
    ));
    let numbered = Dataset::new(a.clone(), a, Vec::<String>::new()).unwrap();
    assert_eq!(numbered.class_names, ["0", "1", "2"]);
}

#[test]
fn fit_learns_colour_images_and_the_network_keeps_the_class_names() {
    let (data, trainer) = trained([3, 12, 12], ["red", "green", "blue"]);
    let model = trainer.model();
    assert_eq!(model.input_shape(), [3, 12, 12]);
    assert_eq!(model.class_names(), ["red", "green", "blue"]);
    assert_eq!(trainer.config().class_names, ["red", "green", "blue"]);
    let acc = trainer.history().last().unwrap().test_accuracy;
    assert!(acc > 0.9, "test accuracy {acc}");
    let images: Vec<&[u8]> = (0..data.test.len()).map(|i| data.test.image(i)).collect();
    let preds = model.predict_batch(&images).unwrap();
    let right = preds
        .iter()
        .zip(data.test.labels())
        .filter(|(p, l)| p.class == usize::from(**l))
        .count();
    assert_eq!(right as f64 / data.test.len() as f64, acc);
    let p = &preds[0];
    assert_eq!(p.name, data.class_names[p.class]);
    assert!((p.probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    let top = p.top_k(5);
    assert_eq!(top.len(), 3);
    assert_eq!(top[0], (p.class, p.probability()));
    assert!(top[0].1 >= top[1].1 && top[1].1 >= top[2].1);
}

#[test]
fn a_saved_network_loads_back_with_its_names_and_predicts_the_same() {
    let (data, trainer) = trained([1, 12, 12], ["low", "mid", "high"]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.safetensors");
    trainer.model().save(&path).unwrap();
    let back = Cnn::load(&path, &Device::Cpu).unwrap();
    assert_eq!(back.class_names(), ["low", "mid", "high"]);
    assert_eq!(back.spec(), trainer.model().spec());
    for i in 0..5 {
        let (a, b) = (
            trainer.model().predict(data.test.image(i)),
            back.predict(data.test.image(i)),
        );
        assert_eq!(a.unwrap(), b.unwrap());
    }
    // Saved again, the same bytes.
    let again = dir.path().join("again.safetensors");
    back.save(&again).unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        std::fs::read(&again).unwrap()
    );
    // A run's own file loads the same way, with the names the run recorded.
    let run = dir.path().join("run");
    trainer.save(&run).unwrap();
    let from_run = Cnn::load(RunFolder::new(&run).final_state(), &Device::Cpu).unwrap();
    assert_eq!(from_run.class_names(), ["low", "mid", "high"]);
    assert_eq!(
        from_run.predict(data.test.image(0)).unwrap(),
        back.predict(data.test.image(0)).unwrap()
    );
}

#[test]
fn plain_weights_load_strictly_given_the_spec() {
    let (data, trainer) = trained([1, 12, 12], ["a", "b", "c"]);
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("varmap.safetensors");
    trainer.varmap().save(&plain).unwrap();
    let spec = trainer.model().spec().clone();
    let model = Cnn::load_weights(&spec, &plain, &Device::Cpu).unwrap();
    assert_eq!(model.class_names(), ["0", "1", "2"]);
    let image = data.test.image(3);
    assert_eq!(
        model.predict(image).unwrap().probabilities,
        trainer.model().predict(image).unwrap().probabilities
    );

    let write = |tensors: Vec<(String, Tensor)>, name: &str| {
        let path = dir.path().join(name);
        let map: std::collections::HashMap<String, Tensor> = tensors.into_iter().collect();
        candle_core::safetensors::save(&map, &path).unwrap();
        path
    };
    let named = trainer.model().named_tensors().to_vec();
    // PyTorch's batch-norm counter is ignored; any other stray tensor is not.
    let mut with_counter = named.clone();
    with_counter.push((
        "bn1.num_batches_tracked".into(),
        Tensor::new(&[3f32], &Device::Cpu).unwrap(),
    ));
    assert!(Cnn::load_weights(&spec, write(with_counter, "counter.st"), &Device::Cpu).is_ok());
    let mut extra = named.clone();
    extra.push((
        "fc9.weight".into(),
        Tensor::zeros(2, DType::F32, &Device::Cpu).unwrap(),
    ));
    let err = Cnn::load_weights(&spec, write(extra, "extra.st"), &Device::Cpu).unwrap_err();
    assert!(
        matches!(&err, Error::UnexpectedTensor { name, .. } if name == "fc9.weight"),
        "{err}"
    );
    let missing: Vec<_> = named
        .iter()
        .filter(|(n, _)| n != "fc1.bias")
        .cloned()
        .collect();
    let err = Cnn::load_weights(&spec, write(missing, "missing.st"), &Device::Cpu).unwrap_err();
    assert!(
        matches!(&err, Error::MissingTensor { name, .. } if name == "fc1.bias"),
        "{err}"
    );
    // The spec must say what the network takes.
    assert!(matches!(
        Cnn::load_weights(&tiny_spec(), &plain, &Device::Cpu),
        Err(Error::Model(_))
    ));
    // And a file of ours without a spec is not needed: load_weights reads ours too.
    let ours = dir.path().join("ours.safetensors");
    trainer.model().save(&ours).unwrap();
    assert!(Cnn::load_weights(&spec, &ours, &Device::Cpu).is_ok());
}

#[test]
fn predictions_refuse_images_of_another_size_and_kernels_have_their_shape() {
    let (_, trainer) = trained([1, 12, 12], ["a", "b", "c"]);
    let model = trainer.model();
    assert!(matches!(
        model.predict(&[0; 10]),
        Err(cnn_training::cnn_models::Error::ImageLen {
            len: 10,
            expected: [1, 12, 12],
            ..
        })
    ));
    // An image crate picture of the right size passes as it is.
    let gray =
        image::GrayImage::from_fn(12, 12, |_, y| image::Luma([if y < 4 { 230 } else { 10 }]));
    let from_image = model.predict(&gray).unwrap();
    assert_eq!(from_image, model.predict(gray.as_raw()).unwrap());
    assert_eq!(from_image.probabilities.len(), 3);
    let kernels = model.kernels(0).unwrap();
    assert_eq!((kernels.len(), kernels[0].len()), (4, 9));
    assert!(model.kernels(1).is_err());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.safetensors");
    model.save(&path).unwrap();
    let mut renamed = Cnn::load(&path, &Device::Cpu).unwrap();
    assert!(renamed.set_class_names(["x", "y"]).is_err());
    renamed.set_class_names(["x", "y", "z"]).unwrap();
    assert_eq!(renamed.class_names()[2], "z");
}

#[test]
fn colour_batches_keep_every_channel_and_augmentation_moves_them_together() {
    let split = bands(4, [3, 9, 9], 3, 5);
    let idx = [0, 1, 2, 3];
    let plain = cnn_training::batch_tensor(&split, &idx, &Device::Cpu).unwrap();
    assert_eq!(plain.dims(), &[4, 3, 9, 9]);
    let mut rng = cnn_training::Rng::new(0);
    let none = cnn_training::Affine::NONE;
    let same = cnn_training::affine_batch(&split, &idx, &none, &mut rng, &Device::Cpu).unwrap();
    let diff = (plain - &same).unwrap().abs().unwrap().max_all().unwrap();
    assert!(diff.to_scalar::<f32>().unwrap() < 1e-6);
    // A pure shift moves the three planes of an image alike: their sums keep their ratios.
    let shift = cnn_training::Affine {
        translate: 2.0,
        ..none
    };
    let moved = cnn_training::affine_batch(&split, &idx, &shift, &mut rng, &Device::Cpu).unwrap();
    assert_eq!(moved.dims(), &[4, 3, 9, 9]);
    let ink = |t: &Tensor| t.sum((2, 3)).unwrap().to_vec2::<f32>().unwrap();
    for (before, after) in ink(&same).iter().zip(ink(&moved)) {
        let lit = before
            .iter()
            .enumerate()
            .fold(0, |b, (i, v)| if *v > before[b] { i } else { b });
        let moved_lit = after
            .iter()
            .enumerate()
            .fold(0, |b, (i, v)| if *v > after[b] { i } else { b });
        assert_eq!(lit, moved_lit);
    }
}

#[test]
fn every_shipped_spec_s_recipe_parses_and_is_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/models");
    let mut with_table = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let changes = cnn_training::RecipeChanges::from_spec_toml(&text).unwrap();
            if let Some(changes) = changes {
                let cfg = changes.apply(TrainConfig::default());
                cfg.validate().unwrap();
                let name = path.file_stem().unwrap().to_string_lossy().into_owned();
                with_table.push((name, cfg));
            }
        }
    }
    with_table.sort_by(|a, b| a.0.cmp(&b.0));
    let names: Vec<&str> = with_table.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["fashion_best", "mnist_best", "mnist_fast", "mnist_tiny"]
    );
    // Mirroring is for the clothes only; digits change class in a mirror.
    for (name, cfg) in &with_table {
        assert_eq!(cfg.augment.flip, name.starts_with("fashion"), "{name}");
    }
}
