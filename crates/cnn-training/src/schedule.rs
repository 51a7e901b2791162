//! Learning-rate schedule: linear warm-up, then cosine decay to zero.

/// Learning rate at `step` (0-based) of `total` steps, with `warmup` warm-up steps, peak `lr`.
///
/// Warm-up lets the large peak rate start from a random initialisation without diverging;
/// the cosine tail anneals to a sharp minimum within a fixed epoch budget.
pub fn lr_at(step: usize, total: usize, warmup: usize, lr: f64) -> f64 {
    if step < warmup {
        return lr * (step + 1) as f64 / warmup as f64;
    }
    let span = total.saturating_sub(warmup).max(1) as f64;
    let t = ((step - warmup) as f64 / span).min(1.0);
    lr * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
}
