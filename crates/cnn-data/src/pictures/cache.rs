//! The decoded pictures of a folder, cached in one file: a JSON header (key, format, class
//! names, counts) and the raw bytes of both splits, read straight into the dataset's buffers.
//!
//! A format of our own rather than safetensors: safetensors reads from one buffer holding
//! the whole file, which would double the memory a load peaks at; here each split is read
//! into its own `Vec` and nothing is copied.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{CacheUse, Decoded, PictureFormat, PictureReport};
use crate::Dataset;

/// First bytes of a cache file.
const MAGIC: &[u8; 8] = b"CNNPICS1";

/// Largest header read (class names and bad-picture names are its bulk).
const MAX_HEADER: u64 = 1 << 20;

#[derive(Serialize, Deserialize)]
struct Header {
    key: String,
    format: PictureFormat,
    class_names: Vec<String>,
    train: usize,
    test: usize,
    other_files: usize,
    bad: Vec<PathBuf>,
    bad_count: usize,
}

/// The cache file for a key ([`Scan::key`](super::scan::Scan::key)): `pictures/<key>.pics` in `cache_dir`.
pub(super) fn file_for(cache_dir: &Path, key: &str) -> PathBuf {
    cache_dir
        .join("pictures")
        .join(format!("{}.pics", &key[..32]))
}

/// The cached dataset, when `path` holds one for `key` whole; `None` (decode again) for a
/// missing, foreign, cut or otherwise unusable file.
pub(super) fn read(path: &Path, key: &str) -> Option<(Dataset, PictureReport)> {
    let mut file = std::fs::File::open(path).ok()?;
    let total = file.metadata().ok()?.len();
    let mut head = [0u8; 16];
    file.read_exact(&mut head).ok()?;
    let len = u64::from_le_bytes(head[8..].try_into().ok()?);
    if &head[..8] != MAGIC || len > MAX_HEADER {
        return None;
    }
    let mut json = vec![0u8; len as usize];
    file.read_exact(&mut json).ok()?;
    let h: Header = serde_json::from_slice(&json).ok()?;
    let per: usize = h.format.shape().iter().product();
    let body = (h.train + h.test).checked_mul(per + 1)? as u64;
    if h.key != key || total != 16 + len + body {
        return None;
    }
    let mut take = |n: usize| -> Option<Vec<u8>> {
        let mut v = vec![0u8; n];
        file.read_exact(&mut v).ok()?;
        Some(v)
    };
    let train = (take(h.train * per)?, take(h.train)?);
    let test = (take(h.test * per)?, take(h.test)?);
    let decoded = Decoded {
        key: h.key,
        format: h.format,
        class_names: h.class_names,
        train,
        test,
        other_files: h.other_files,
        bad: h.bad,
        bad_count: h.bad_count,
    };
    let report = decoded.report(CacheUse::Read(path.to_path_buf()));
    Some((decoded.into_dataset().ok()?, report))
}

/// Writes `d` to `path` atomically (a temporary file renamed into place), creating the
/// folder; says what happened, as a failure to cache is not a failure to load.
pub(super) fn write(path: &Path, d: &Decoded) -> CacheUse {
    let header = Header {
        key: d.key.clone(),
        format: d.format,
        class_names: d.class_names.clone(),
        train: d.train.1.len(),
        test: d.test.1.len(),
        other_files: d.other_files,
        bad: d.bad.clone(),
        bad_count: d.bad_count,
    };
    let written = (|| -> std::io::Result<()> {
        let json = serde_json::to_vec(&header)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            crate::atomic::remove_stale_temps(dir, &[name]);
        }
        crate::atomic::write_atomic_with(path, |f| {
            f.write_all(MAGIC)?;
            f.write_all(&(json.len() as u64).to_le_bytes())?;
            f.write_all(&json)?;
            for part in [&d.train.0, &d.train.1, &d.test.0, &d.test.1] {
                f.write_all(part)?;
            }
            Ok(())
        })
    })();
    match written {
        Ok(()) => CacheUse::Written(path.to_path_buf()),
        Err(e) => CacheUse::NotWritten(format!("cannot write {}: {e}", path.display())),
    }
}
