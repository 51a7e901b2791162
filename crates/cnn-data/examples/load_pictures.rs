//! Loads a folder of pictures once and says how long it took and the process's peak memory
//! (`cargo xtask pictures --bench` runs it with a cold cache, then a warm one).
#![allow(clippy::print_stdout)] // an example's output is its point

use std::time::Instant;

use cnn_data::pictures::{CacheUse, PictureOptions, load_pictures};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: load_pictures DIR")?;
    let started = Instant::now();
    let (data, report) = load_pictures(dir.as_ref(), &PictureOptions::default(), None)?;
    let seconds = started.elapsed().as_secs_f64();
    let bytes = data.train.images().len() + data.test.images().len();
    // Linux's record of the most memory the process held at once.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let peak_kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(f64::NAN);
    let cache = match report.cache {
        CacheUse::Read(_) => "read from the cache",
        CacheUse::Written(_) => "decoded and cached",
        CacheUse::NotWritten(_) => "decoded, not cached",
    };
    println!(
        "{} pictures {cache} in {seconds:.2} s; decoded tensor {:.1} MB, peak memory {:.1} MB ({:.2}x)",
        data.train.len() + data.test.len(),
        bytes as f64 / 1e6,
        peak_kb * 1.024e-3,
        peak_kb * 1024.0 / bytes as f64
    );
    Ok(())
}
