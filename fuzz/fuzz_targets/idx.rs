//! Fuzz target: the IDX/gzip guard in front of the `mnist` crate must never panic, never
//! accept a file whose length disagrees with its header, and never decompress past its bound.

#![no_main]

use std::path::Path;

use cnn_data::{IdxKind, MAX_DECOMPRESSED_BYTES, check_idx, decompress_gz_bytes};
use libfuzzer_sys::fuzz_target;

fn check_both_kinds(bytes: &[u8]) {
    let path = Path::new("fuzz-input");
    for (kind, header, item) in [(IdxKind::Images, 16, 784), (IdxKind::Labels, 8, 1)] {
        if let Ok(count) = check_idx(bytes, kind, path) {
            assert_eq!(bytes.len() as u64, header + u64::from(count) * item);
            if kind == IdxKind::Labels {
                assert!(bytes[8..].iter().all(|&l| l <= 9));
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // The same bytes as a raw file and as a gzip file, as the loader accepts either.
    check_both_kinds(data);
    if let Ok(raw) = decompress_gz_bytes(data, Path::new("fuzz-input.gz")) {
        assert!(raw.len() as u64 <= MAX_DECOMPRESSED_BYTES);
        check_both_kinds(&raw);
    }
});
