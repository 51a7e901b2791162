//! Dropout with reproducible masks.
//!
//! candle-nn's dropout draws from the CPU's thread RNG, which cannot be seeded, so two runs
//! with the same seed would differ. Here each mask is a pure function of (seed, call number,
//! element index); the call counter is the only state, and it can be saved and restored.

use std::sync::atomic::{AtomicU64, Ordering};

use candle_core::Tensor;

use crate::Result;

/// Inverted dropout: zeroes each element with probability `p` and scales the rest by `1/(1-p)`.
#[derive(Debug)]
pub struct Dropout {
    p: f32,
    seed: u64,
    calls: AtomicU64,
}

/// One step of SplitMix64 (Steele, Lea and Flood, 2014) from state `z`: the output for the
/// state `z` advances to. Dropout masks hash with it; `cnn-training`'s seeded generator is
/// built on it, so the two cannot drift apart.
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Dropout {
    /// Dropout with drop probability `p` in `[0, 1)` and mask seed `seed`.
    pub fn new(p: f32, seed: u64) -> Self {
        Self {
            p: p.clamp(0.0, 0.999),
            seed,
            calls: AtomicU64::new(0),
        }
    }

    /// Number of masks drawn so far; save it to resume a run exactly.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Restores the mask counter saved with [`Dropout::calls`].
    pub fn set_calls(&self, calls: u64) {
        self.calls.store(calls, Ordering::Relaxed)
    }

    /// Applies dropout when `train` is true; identity otherwise.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        if !train || self.p == 0.0 {
            return Ok(xs.clone());
        }
        let call = self.calls.fetch_add(1, Ordering::Relaxed);
        let base = splitmix64(self.seed ^ splitmix64(call));
        let scale = 1.0 / (1.0 - self.p);
        // Compare the top 24 bits against p, so the mask does not depend on float rounding.
        let threshold = (f64::from(self.p) * f64::from(1u32 << 24)) as u64;
        let mask: Vec<f32> = (0..xs.elem_count() as u64)
            .map(|i| {
                if splitmix64(base.wrapping_add(i)) >> 40 < threshold {
                    0.0
                } else {
                    scale
                }
            })
            .collect();
        let mask = Tensor::from_vec(mask, xs.shape(), xs.device())?.to_dtype(xs.dtype())?;
        Ok(xs.mul(&mask)?)
    }
}
