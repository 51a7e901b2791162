//! Writes a trained run's logits for the first N test images, for checking another
//! runtime (a PyTorch twin, onnxruntime) against this one:
//!
//! ```text
//! cargo run --release -p cnn-training --example logits -- RUN_DIR N OUT.f32
//! ```
//!
//! `OUT.f32` holds N x classes little-endian `f32` values, row by row. The test images are
//! the MNIST ones shipped in `assets/mnist`.

use std::path::PathBuf;
use std::process::ExitCode;

use candle_core::Device;
use cnn_data::{DataSource, DatasetKind};
use cnn_training::{FINAL_STATE_FILE, batch_tensor, load_model};

#[allow(clippy::print_stderr)] // an example program: its error goes to the terminal
fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [run, n, out] = args.as_slice() else {
        return Err("usage: logits RUN_DIR N OUT.f32".into());
    };
    let n: usize = n.parse().map_err(|_| format!("N: `{n}` is not a count"))?;
    let dev = Device::Cpu;
    let (model, _) = load_model(&PathBuf::from(run).join(FINAL_STATE_FILE), None, &dev)?;
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../assets/mnist");
    let data = cnn_data::load(&DataSource::new(root, DatasetKind::Mnist))?;
    let idx: Vec<usize> = (0..n.min(data.test.len())).collect();
    let logits = model.forward_t(&batch_tensor(&data.test, &idx, &dev)?, false)?;
    let values: Vec<f32> = logits.flatten_all()?.to_vec1()?;
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(out, bytes)?;
    Ok(())
}
