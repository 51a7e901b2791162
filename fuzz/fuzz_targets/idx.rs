//! Fuzz target: the IDX/gzip guard must never panic, never
//! accept a file whose length disagrees with its header, and never decompress past its bound.

#![no_main]

use std::path::Path;

use cnn_data::{IdxKind, MAX_DECOMPRESSED_BYTES, check_idx, decompress_gz_bytes};
use libfuzzer_sys::fuzz_target;

fn check_both_kinds(bytes: &[u8]) {
    let path = Path::new("fuzz-input");
    for kind in [IdxKind::Images, IdxKind::Labels] {
        if let Ok(h) = check_idx(bytes, kind, path) {
            let item = match kind {
                IdxKind::Images => u64::from(h.rows) * u64::from(h.cols),
                IdxKind::Labels => 1,
            };
            assert_eq!(
                bytes.len() as u64,
                kind.header_len() as u64 + u64::from(h.count) * item
            );
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
