//! Fuzz target: decoding a checkpoint, building its model and resuming its run must end in
//! a value or a typed error for any bytes, never a panic.

#![no_main]

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use cnn_training::{Trainer, checkpoint};
use libfuzzer_sys::fuzz_target;

/// Training-set size of the seed corpus's runs (`--train-limit 3000`).
const N_TRAIN: usize = 3000;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.safetensors");
    let Ok(ckpt) = checkpoint::decode(data, path, &Device::Cpu) else {
        return;
    };
    let _ = Trainer::from_checkpoint(&ckpt, path, &Device::Cpu, N_TRAIN);
    if let Ok((model, _)) = checkpoint::model_from(ckpt, None, path, &Device::Cpu) {
        // Accepted weights have the shapes the spec needs: a forward pass works.
        let [c, h, w] = model.input_shape();
        if c * h * w > 1 << 20 {
            return; // a valid but huge spec: nothing to learn from running it
        }
        let x = Tensor::zeros((1, c, h, w), DType::F32, &Device::Cpu).expect("input");
        let logits = model.forward_t(&x, false).expect("accepted weights run");
        assert_eq!(logits.dims(), &[1, model.classes()]);
    }
});
