//! Helpers shared by the CLI integration tests.

// Each test crate includes this module and uses only some of it.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// Asserts that a command succeeded, showing `context` and its stderr otherwise.
pub fn assert_success(out: &Output, context: &str) {
    assert!(
        out.status.success(),
        "{context}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `cnn-train` with `args`, output in `out`, data cache in `cache`, and asserts success.
pub fn train_ok(args: &[&str], out: &Path, cache: &Path) {
    let output = Command::new(env!("CARGO_BIN_EXE_cnn-train"))
        .args(args)
        .arg("--out")
        .arg(out)
        .env("CNN_DATA_CACHE", cache)
        .output()
        .expect("cnn-train runs");
    assert_success(&output, "cnn-train");
}

/// A PNG whose header claims `w x h` pixels, with no image data behind it.
pub fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 0, 0, 0, 0]);
    let mut crc = flate2::Crc::new();
    crc.update(&ihdr);
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    v.extend(13u32.to_be_bytes());
    v.extend(&ihdr);
    v.extend(crc.sum().to_be_bytes());
    // An empty IDAT chunk: decoders read the header up to the first one.
    let mut crc = flate2::Crc::new();
    crc.update(b"IDAT");
    v.extend(0u32.to_be_bytes());
    v.extend(b"IDAT");
    v.extend(crc.sum().to_be_bytes());
    v
}
