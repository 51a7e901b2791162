//! Datasets other than MNIST's shape, written as IDX files and loaded back, trained with
//! specs that fit them; and a model defined in code, trained through the `Model` trait.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::Path;
use std::sync::atomic::AtomicBool;

use candle_core::{Device, Module, Tensor};
use candle_nn::{Linear, ModuleT, VarBuilder};
use cnn_data::{DataSource, Dataset, DatasetKind, FILE_NAMES, Reader, Split};
use cnn_models::{Arch, NetSpec};
use cnn_training::{Model, TrainConfig, Trainer, evaluate};

fn mnist() -> Dataset {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/mnist");
    cnn_data::load(&DataSource::new(dir, DatasetKind::Mnist).with_reader(Reader::Own)).unwrap()
}

/// The first `n` items of `split` whose label is below `classes`, relabelled to that count.
fn digits_below(split: &Split, classes: u8, n: usize) -> Split {
    let keep: Vec<u8> = (0..classes).collect();
    split.filter_classes(&keep).unwrap().take(n)
}

/// The first `n` items of `split` at half resolution (2x2 means): 14x14 digits.
fn halved(split: &Split, n: usize) -> Split {
    let mut images = Vec::with_capacity(n * 196);
    for i in 0..n.min(split.len()) {
        let d = split.image(i);
        for y in 0..14 {
            for x in 0..14 {
                let at = |dy: usize, dx: usize| u32::from(d[(2 * y + dy) * 28 + 2 * x + dx]);
                images.push(((at(0, 0) + at(0, 1) + at(1, 0) + at(1, 1) + 2) / 4) as u8);
            }
        }
    }
    let labels = split.labels()[..n.min(split.len())].to_vec();
    Split::new(images, labels, 14, 14, split.classes()).unwrap()
}

/// Writes the two splits as the four IDX files (and class names) into `dir`, then loads
/// them back as any user's folder would be.
fn round_trip(dir: &Path, train: &Split, test: &Split, names: Option<&str>) -> Dataset {
    train
        .write_idx(&dir.join(FILE_NAMES[0]), &dir.join(FILE_NAMES[1]))
        .unwrap();
    test.write_idx(&dir.join(FILE_NAMES[2]), &dir.join(FILE_NAMES[3]))
        .unwrap();
    if let Some(names) = names {
        std::fs::write(dir.join("classes.txt"), names).unwrap();
    }
    cnn_data::load(&DataSource::new(dir, DatasetKind::Mnist)).unwrap()
}

fn train(spec: &NetSpec, data: &Dataset, epochs: usize) -> Trainer {
    let cfg = TrainConfig {
        epochs,
        ..TrainConfig::default()
    };
    let mut t = Trainer::new(cfg, spec, &Device::Cpu, &data.train).unwrap();
    cnn_training::run(&mut t, data, None, &AtomicBool::new(false), &mut |_| {}).unwrap();
    t
}

#[test]
fn a_five_class_dataset_of_other_counts_trains_a_preset() {
    let m = mnist();
    let tmp = tempfile::tempdir().unwrap();
    let data = round_trip(
        tmp.path(),
        &digits_below(&m.train, 5, 6000),
        &digits_below(&m.test, 5, 1500),
        Some("zero\none\ntwo\nthree\nfour\n"),
    );
    assert_eq!(
        (data.train.len(), data.test.len(), data.classes()),
        (6000, 1500, 5)
    );
    assert_eq!(data.class_names[4], "four");
    let t = train(&Arch::SmallCnn.spec(), &data, 2);
    let spec = t.spec().unwrap();
    assert_eq!(spec.classes, Some(5));
    assert_eq!(t.model().classes(), 5);
    let acc = t.history().last().unwrap().test_accuracy;
    assert!(acc > 0.96, "5-class small_cnn: {acc}");
}

#[test]
fn a_dataset_of_14x14_images_trains_a_spec_made_for_it() {
    let m = mnist();
    let tmp = tempfile::tempdir().unwrap();
    let data = round_trip(
        tmp.path(),
        &halved(&m.train, 20_000),
        &halved(&m.test, 2000),
        None,
    );
    assert_eq!(data.train.image_shape(), [1, 14, 14]);
    let spec = NetSpec::builder("small14")
        .conv_k(12, 5)
        .maxpool()
        .conv(24)
        .maxpool()
        .linear(48)
        .dropout(0.1)
        .input([1, 14, 14])
        .build()
        .unwrap();
    let t = train(&spec, &data, 2);
    let layers = t.model().layers();
    assert_eq!(
        layers[4].output_shape,
        vec![24, 3, 3],
        "7x7 pooled floors to 3x3"
    );
    let acc = t.history().last().unwrap().test_accuracy;
    assert!(acc > 0.95, "14x14 digits: {acc}");
    // The 28x28 preset data do not fit this spec.
    assert!(Trainer::new(TrainConfig::default(), &spec, &Device::Cpu, &m.train).is_err());
}

/// Logistic regression: a model defined in code, not from a spec.
struct Softmax(Linear);

impl ModuleT for Softmax {
    fn forward_t(&self, xs: &Tensor, _train: bool) -> candle_core::Result<Tensor> {
        self.0.forward(&xs.flatten_from(1)?)
    }
}

impl Model for Softmax {}

#[test]
fn a_model_defined_in_code_trains_and_resumes_through_the_model_trait() {
    let m = mnist();
    let data = Dataset {
        train: m.train.take(4000),
        test: m.test.take(1000),
        ..m
    };
    let build = |vb: VarBuilder<'_>| Ok(Softmax(candle_nn::linear(784, 10, vb.pp("fc1"))?));
    let cfg = TrainConfig {
        epochs: 2,
        lr: 0.1,
        ..TrainConfig::default()
    };
    let mut t = Trainer::with_model(cfg, &Device::Cpu, data.train.len(), build).unwrap();
    assert!(t.spec().is_none());
    let stop = AtomicBool::new(false);
    t.train_epoch(&data, &stop, &mut |_| {}).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    t.save(tmp.path()).unwrap();
    cnn_training::run(&mut t, &data, None, &stop, &mut |_| {}).unwrap();
    let acc = evaluate(t.model(), &data.test, &Device::Cpu)
        .unwrap()
        .accuracy();
    assert!(acc > 0.8, "logistic regression: {acc}");

    // Its checkpoint names no spec, so only its own code can rebuild it.
    let path = tmp.path().join("checkpoint.safetensors");
    assert!(matches!(
        Trainer::resume(&path, &Device::Cpu, data.train.len()),
        Err(cnn_training::Error::NoSpec { .. })
    ));
    let ckpt = cnn_training::checkpoint::read(&path, &Device::Cpu).unwrap();
    let mut resumed =
        Trainer::from_checkpoint_with(&ckpt, &path, &Device::Cpu, data.train.len(), build).unwrap();
    cnn_training::run(&mut resumed, &data, None, &stop, &mut |_| {}).unwrap();
    let (a, b) = (&resumed.history()[1], &t.history()[1]);
    assert_eq!(
        (a.train_loss, a.test_loss, a.test_correct),
        (b.train_loss, b.test_loss, b.test_correct),
        "resuming repeats the second epoch exactly"
    );
}
