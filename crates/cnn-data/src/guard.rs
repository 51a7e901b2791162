//! The guard in front of the `mnist` crate: find, decompress, validate and cache IDX files.
//!
//! Written by hand because no maintained crate validates IDX files without panicking; the
//! format is four big-endian `u32` fields and raw bytes, so the checks are short.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::{Error, IMAGE_SIDE, NUM_CLASSES, Result};

/// Largest decompressed IDX file accepted. MNIST-format training images are exactly
/// 47,040,016 bytes (60,000 images), so nothing valid is larger; the bound caps memory for
/// gzip bombs and for headers that claim billions of items.
pub const MAX_DECOMPRESSED_BYTES: u64 = 64 * 1024 * 1024;

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;

/// Which of the two IDX file kinds a file should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdxKind {
    /// `idx3-ubyte`: magic 2051, count, rows, columns, pixels.
    Images,
    /// `idx1-ubyte`: magic 2049, count, labels.
    Labels,
}

impl IdxKind {
    fn magic(self) -> u32 {
        match self {
            IdxKind::Images => IMAGES_MAGIC,
            IdxKind::Labels => LABELS_MAGIC,
        }
    }
    fn what(self) -> &'static str {
        match self {
            IdxKind::Images => "images",
            IdxKind::Labels => "labels",
        }
    }
    fn header_len(self) -> usize {
        match self {
            IdxKind::Images => 16,
            IdxKind::Labels => 8,
        }
    }
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Checks the decompressed contents of one IDX file and returns its item count.
///
/// Checks the magic number, 28x28 dimensions, that the length matches the header exactly,
/// and that labels are in `0..=9`. `path` is only used in errors. Never panics and never
/// allocates in proportion to what the header claims.
pub fn check_idx(bytes: &[u8], kind: IdxKind, path: &Path) -> Result<u32> {
    let short = |expected: u64| Error::BadLength {
        path: path.to_path_buf(),
        expected,
        actual: bytes.len() as u64,
    };
    let magic = be_u32(bytes, 0).ok_or_else(|| short(kind.header_len() as u64))?;
    if magic != kind.magic() {
        return Err(Error::BadMagic {
            path: path.to_path_buf(),
            found: magic,
            expected: kind.magic(),
            what: kind.what(),
        });
    }
    let header = kind.header_len();
    let count = be_u32(bytes, 4).ok_or_else(|| short(header as u64))?;
    let item_len: u64 = match kind {
        IdxKind::Images => {
            let (rows, cols) = match (be_u32(bytes, 8), be_u32(bytes, 12)) {
                (Some(r), Some(c)) => (r, c),
                _ => return Err(short(header as u64)),
            };
            if rows as usize != IMAGE_SIDE || cols as usize != IMAGE_SIDE {
                return Err(Error::BadDimensions {
                    path: path.to_path_buf(),
                    rows,
                    cols,
                });
            }
            (IMAGE_SIDE * IMAGE_SIDE) as u64
        }
        IdxKind::Labels => 1,
    };
    // u32 * 784 + 16 fits in u64, so no overflow is possible here.
    let expected = header as u64 + u64::from(count) * item_len;
    if expected != bytes.len() as u64 {
        return Err(short(expected));
    }
    if kind == IdxKind::Labels
        && let Some((index, &label)) = bytes[header..]
            .iter()
            .enumerate()
            .find(|(_, l)| **l as usize >= NUM_CLASSES)
    {
        return Err(Error::BadLabel {
            path: path.to_path_buf(),
            index,
            label,
        });
    }
    Ok(count)
}

/// A validated file, and where the `mnist` crate can read its uncompressed bytes.
pub(crate) struct Checked {
    /// The file the user gave (raw or `.gz`), for error messages.
    pub source: PathBuf,
    /// An uncompressed copy: the file itself, or one in the cache.
    pub readable: PathBuf,
    /// Items in the file.
    pub count: u32,
}

/// Reads `SHA256SUMS.raw` in `dir`, if there is one, as file name -> lowercase hex digest.
pub(crate) fn read_sums(dir: &Path) -> Result<Option<(PathBuf, HashMap<String, String>)>> {
    let path = dir.join("SHA256SUMS.raw");
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|error| Error::Io {
        path: path.clone(),
        error,
    })?;
    let map = text
        .lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let digest = parts.next()?;
            let name = parts.next()?.trim_start_matches('*');
            Some((name.to_string(), digest.to_ascii_lowercase()))
        })
        .collect();
    Ok(Some((path, map)))
}

fn read_bounded(reader: impl Read, path: &Path, gz: bool) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut limited = reader.take(MAX_DECOMPRESSED_BYTES + 1);
    limited.read_to_end(&mut out).map_err(|e| {
        if gz {
            Error::BadGzip {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }
        } else {
            Error::Io {
                path: path.to_path_buf(),
                error: e,
            }
        }
    })?;
    if out.len() as u64 > MAX_DECOMPRESSED_BYTES {
        return Err(Error::TooLarge {
            path: path.to_path_buf(),
            limit: MAX_DECOMPRESSED_BYTES,
        });
    }
    Ok(out)
}

/// Reads a `.gz` file fully, refusing more than [`MAX_DECOMPRESSED_BYTES`] of output.
pub fn decompress_gz(path: &Path) -> Result<Vec<u8>> {
    let file = open_file(path)?;
    read_bounded(flate2::read::GzDecoder::new(file), path, true)
}

/// Decompresses gzip `bytes` already in memory, with the same bound and errors as
/// [`decompress_gz`]; `path` is only used in errors.
pub fn decompress_gz_bytes(bytes: &[u8], path: &Path) -> Result<Vec<u8>> {
    read_bounded(flate2::read::GzDecoder::new(bytes), path, true)
}

fn open_file(path: &Path) -> Result<File> {
    if path.is_dir() {
        return Err(Error::NotAFile {
            path: path.to_path_buf(),
        });
    }
    File::open(path).map_err(|error| Error::Io {
        path: path.to_path_buf(),
        error,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Finds `name` (raw first, then `.gz`) in `dir`, validates it, and makes an uncompressed
/// copy available to the `mnist` crate.
pub(crate) fn prepare(
    dir: &Path,
    name: &str,
    kind: IdxKind,
    sums: Option<&(PathBuf, HashMap<String, String>)>,
    cache: &Path,
) -> Result<Checked> {
    let raw = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    let (source, bytes, compressed) = if raw.exists() {
        let bytes = read_bounded(open_file(&raw)?, &raw, false)?;
        (raw, bytes, false)
    } else if gz.exists() {
        let bytes = decompress_gz(&gz)?;
        (gz, bytes, true)
    } else {
        return Err(Error::MissingFile { path: raw });
    };
    let count = check_idx(&bytes, kind, &source)?;
    let digest = hex(&Sha256::digest(&bytes));
    if let Some((sums_path, map)) = sums
        && let Some(expected) = map.get(name)
        && *expected != digest
    {
        return Err(Error::Checksum {
            path: source,
            sums: sums_path.clone(),
            expected: expected.clone(),
            actual: digest,
        });
    }
    let readable = if compressed {
        // Content-addressed, so a cached copy can never be stale.
        let target = cache.join(&digest).join(name);
        if !target.is_file() {
            write_atomic(&target, &bytes)?;
        }
        target
    } else {
        source.clone()
    };
    Ok(Checked {
        source,
        readable,
        count,
    })
}

/// Writes `bytes` to `path` through a temporary file and a rename, so concurrent loaders
/// never see half a file.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |error| Error::Io { path: p, error }
    };
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    let tmp = parent.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("idx"),
        std::process::id()
    ));
    let mut f = File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io(path))?;
    Ok(())
}
