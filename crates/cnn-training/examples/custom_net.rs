//! A network defined in code, trained one epoch on a dataset built in memory.
//!
//! Reads the shipped MNIST files, keeps the digits 0 to 4 (a 5-class problem of other
//! counts than MNIST's), defines a small network with the builder, trains one epoch without
//! writing anything to disk, and prints the test accuracy:
//!
//! ```sh
//! cargo run --release --example custom_net -p cnn-training
//! ```

use std::path::Path;
use std::sync::atomic::AtomicBool;

use candle_core::Device;
use cnn_data::{DataSource, Dataset, DatasetKind, Split};
use cnn_models::NetSpec;
use cnn_training::{Event, TrainConfig, Trainer};

/// The items of `split` whose label is below `classes`, as a split with that many classes.
fn first_classes(split: &Split, classes: u8) -> Result<Split, cnn_data::Error> {
    let keep: Vec<usize> = (0..split.len())
        .filter(|&i| split.label(i) < classes)
        .collect();
    let mut images = Vec::with_capacity(keep.len() * split.pixels_per_image());
    for &i in &keep {
        images.extend_from_slice(split.image(i));
    }
    let labels = keep.iter().map(|&i| split.label(i)).collect();
    Split::new(
        images,
        labels,
        split.rows(),
        split.cols(),
        usize::from(classes),
    )
}

#[allow(clippy::print_stdout)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/mnist");
    let mnist = cnn_data::load(&DataSource::new(shipped, DatasetKind::Mnist))?;
    let data = Dataset {
        kind: DatasetKind::Mnist,
        train: first_classes(&mnist.train, 5)?,
        test: first_classes(&mnist.test, 5)?,
        class_names: ["zero", "one", "two", "three", "four"]
            .map(String::from)
            .to_vec(),
    };

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
    // `None`: nothing is written to disk.
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
    Ok(())
}
