//! A network defined in code, trained one epoch on a dataset built in memory.
//!
//! Reads the shipped MNIST files, keeps the digits 0 to 4 (a 5-class problem of other
//! counts than MNIST's), defines a small network with the builder, trains one epoch without
//! writing anything to disk, reporting each epoch, and prints the test accuracy:
//!
//! ```sh
//! cargo run --release --example custom_net -p cnn-training
//! ```

use std::path::Path;
use std::sync::atomic::AtomicBool;

use cnn_training::prelude::*;
use cnn_training::{DataSource, DatasetKind, Event};

#[allow(clippy::print_stdout)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/mnist");
    let mnist = cnn_training::cnn_data::load(&DataSource::new(shipped, DatasetKind::Mnist))?;
    let digits = [0, 1, 2, 3, 4];
    let data = Dataset::new(
        mnist.train.filter_classes(&digits)?,
        mnist.test.filter_classes(&digits)?,
        ["zero", "one", "two", "three", "four"],
    )?;

    // Input shape and classes are left out: Trainer::new takes them from the data.
    let spec = NetSpec::builder("five_digits")
        .conv_k(8, 5)
        .maxpool()
        .conv(16)
        .maxpool()
        .linear(32)
        .build()?;
    let cfg = TrainConfig {
        epochs: 1,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(cfg, &spec, &Device::Cpu, &data.train)?;
    let resolved = trainer.model().spec();
    println!(
        "{}: {} parameters, input {:?}, {} classes; {} training and {} test digits",
        resolved.name,
        resolved.num_params()?,
        data.train.image_shape(),
        data.classes(),
        data.train.len(),
        data.test.len()
    );
    // `run` with a stop flag and a callback (`fit` is the same without them); `None`:
    // nothing is written to disk.
    let stop = AtomicBool::new(false);
    cnn_training::run(&mut trainer, &data, None, &stop, &mut |e: &Event| {
        if let Event::EpochEnd(m) = e {
            println!(
                "epoch {}: test accuracy {:.2}% ({}/{}) in {:.1} s",
                m.epoch,
                100.0 * m.test_accuracy,
                m.test_correct,
                m.test_total,
                m.train_seconds
            );
        }
    })?;
    let first = trainer.model().predict(data.test.image(0))?;
    println!(
        "first test digit: {} ({:.1}%), truly {}",
        first.name,
        100.0 * first.probability(),
        data.class_names[usize::from(data.test.label(0))]
    );
    Ok(())
}
