//! A 6-class digit net: trained, saved, loaded, asked about 5 digits, drawn (README.md).
use cnn_plot::{EpochPoint, kernel_grid, learning_curves, save_png};
use cnn_training::{DataSource, DatasetKind, cnn_data, prelude::*};
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mnist = cnn_data::load(&DataSource::new(args.next().ok_or("MNIST_DIR?")?, DatasetKind::Mnist))?;
    let n: usize = args.next().map_or(Ok(12_000), |n| n.parse())?;
    let six = [0, 1, 2, 3, 4, 5];
    let (train, test) = (mnist.train.filter_classes(&six)?.take(n), mnist.test.filter_classes(&six)?);
    let data = Dataset::new(train, test, ["zero", "one", "two", "three", "four", "five"])?;
    let spec = NetSpec::builder("six").conv(8).maxpool().conv(16).maxpool().linear(32).build()?;
    let cfg = TrainConfig { epochs: 3, ..TrainConfig::default() };
    let mut trainer = Trainer::new(cfg, &spec, &Device::Cpu, &data.train)?;
    trainer.fit(&data)?;
    trainer.model().save("six.safetensors")?;
    let model = Cnn::load("six.safetensors", &Device::Cpu)?;
    for i in 0..5 {
        let (p, truth) = (model.predict(data.test.image(i))?, data.test.label(i) as usize);
        println!("{} -> {} ({:.1}%)", data.class_names[truth], p.name, 100.0 * p.probability());
    }
    let kernels = model.kernels(0)?;
    save_png("kernels.png", (1000, 470), |a| kernel_grid(a, "six: first-layer kernels", &kernels, 3))?;
    let points: Vec<_> = trainer
        .history()
        .iter()
        .map(|m| EpochPoint::new(m.epoch, m.train_loss, m.test_loss, m.test_accuracy))
        .collect();
    save_png("curves.png", (1200, 480), |a| learning_curves(a, "six: learning curves", &points))?;
    Ok(())
}
