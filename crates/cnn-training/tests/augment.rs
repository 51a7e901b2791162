//! The affine and elastic augmentation on real digits: seeded, and label-preserving for a trained model.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::Path;

use candle_core::Device;
use cnn_data::{DataSource, DatasetKind};
use cnn_training::{Affine, Rng, affine_batch, batch_tensor, load_model};

fn assets() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets")
}

/// The strongest augmentation a recipe search tries.
const STRONG: Affine = Affine {
    rotate: 10.0,
    scale: 0.1,
    translate: 2.0,
    elastic: 1.0,
    flip: false,
};

#[test]
fn the_same_seed_gives_the_same_batch_and_another_seed_another() {
    let data =
        cnn_data::load(&DataSource::new(assets().join("mnist"), DatasetKind::Mnist)).unwrap();
    let idx: Vec<usize> = (0..64).collect();
    let batch = |seed| {
        let t = affine_batch(
            &data.train,
            &idx,
            &STRONG,
            &mut Rng::new(seed),
            &Device::Cpu,
        );
        t.unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()
    };
    assert_eq!(batch(7), batch(7));
    assert_ne!(batch(7), batch(8));
    // It moves pixels (not a copy), but keeps the ink: the total brightness of each digit
    // changes by the scale squared at most, and a little for resampling.
    let plain = batch_tensor(&data.train, &idx, &Device::Cpu)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let warped = batch(7);
    assert_ne!(plain, warped);
    for (k, (a, b)) in plain.chunks(784).zip(warped.chunks(784)).enumerate() {
        let (ink_a, ink_b): (f32, f32) = (a.iter().sum(), b.iter().sum());
        let ratio = ink_b / ink_a;
        assert!((0.75..1.3).contains(&ratio), "digit {k}: ink ratio {ratio}");
    }
    // And no augmentation means none: the plain batch, draws or not.
    let none = affine_batch(
        &data.train,
        &idx,
        &Affine::NONE,
        &mut Rng::new(1),
        &Device::Cpu,
    )
    .unwrap()
    .flatten_all()
    .unwrap()
    .to_vec1::<f32>()
    .unwrap();
    assert_eq!(none, plain);
    // Mirroring alone: each digit as it is or exactly mirrored, both among 64.
    let flip = Affine {
        flip: true,
        ..Affine::NONE
    };
    let flipped = affine_batch(&data.train, &idx, &flip, &mut Rng::new(1), &Device::Cpu)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let mirror = |img: &[f32]| -> Vec<f32> {
        img.chunks(28)
            .flat_map(|row| row.iter().rev().copied())
            .collect()
    };
    let mut mirrored = 0;
    for (a, b) in plain.chunks(784).zip(flipped.chunks(784)) {
        if a != b {
            assert_eq!(mirror(a), b);
            mirrored += 1;
        }
    }
    assert!((16..48).contains(&mirrored), "{mirrored} of 64 mirrored");
}

#[test]
fn augmented_digits_keep_their_labels_for_a_trained_model() {
    let data =
        cnn_data::load(&DataSource::new(assets().join("mnist"), DatasetKind::Mnist)).unwrap();
    let (model, _) = load_model(
        &assets().join("models/medium_cnn.safetensors"),
        None,
        &Device::Cpu,
    )
    .unwrap();
    let n = 1000;
    let idx: Vec<usize> = (0..n).collect();
    let right = |x: &candle_core::Tensor| {
        let logits = candle_nn::ModuleT::forward_t(&model, x, false).unwrap();
        let preds = logits.argmax(1).unwrap().to_vec1::<u32>().unwrap();
        preds
            .iter()
            .enumerate()
            .filter(|&(i, &p)| p == u32::from(data.test.label(i)))
            .count()
    };
    let plain = right(&batch_tensor(&data.test, &idx, &Device::Cpu).unwrap());
    let warped =
        right(&affine_batch(&data.test, &idx, &STRONG, &mut Rng::new(3), &Device::Cpu).unwrap());
    // The model never saw augmented digits, yet the strongest warp searched costs it under
    // 5 points (measured: 99.2% → 96.4%); a warp that does change what a digit is, any turn
    // up to ±180° (a 6 becomes a 9), costs it far more.
    assert!(plain >= 985, "{plain}/{n} plain");
    assert!(
        warped + 50 >= plain,
        "{warped}/{n} warped against {plain}/{n} plain"
    );
    let turned = Affine {
        rotate: 180.0,
        ..Affine::NONE
    };
    let turned =
        right(&affine_batch(&data.test, &idx, &turned, &mut Rng::new(3), &Device::Cpu).unwrap());
    assert!(
        turned + 200 < warped,
        "{turned}/{n} turned at random against {warped}/{n} warped"
    );
}
