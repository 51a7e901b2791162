//! The guard: find, decompress, validate and cache IDX files before anything reads them.
//!
//! Written by hand because no maintained crate validates IDX files without panicking; the
//! format is four big-endian `u32` fields and raw bytes, so the checks are short.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// Largest IDX file accepted, decompressed. MNIST's training images are 47 MB and EMNIST's
/// largest split about 550 MB; the bound caps memory for headers that claim billions of
/// items. Files are read no further than their header implies, so a gzip bomb stops there.
pub const MAX_DECOMPRESSED_BYTES: u64 = 1 << 30;

/// Largest image side accepted, in pixels.
pub const MAX_IMAGE_SIDE: u32 = 4096;

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
    /// Bytes of the header.
    pub fn header_len(self) -> usize {
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

/// What an IDX header says: items and, for images, their size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdxHeader {
    /// Number of items.
    pub count: u32,
    /// Rows per image (0 for labels).
    pub rows: u32,
    /// Columns per image (0 for labels).
    pub cols: u32,
}

impl IdxHeader {
    /// Bytes per item.
    fn item_len(&self, kind: IdxKind) -> u64 {
        match kind {
            IdxKind::Images => u64::from(self.rows) * u64::from(self.cols),
            IdxKind::Labels => 1,
        }
    }
    /// Total file length the header implies (cannot overflow: u32 * u32 * u32 < 2^96 is not
    /// guaranteed, so the product saturates).
    fn file_len(&self, kind: IdxKind) -> u64 {
        (kind.header_len() as u64)
            .saturating_add(u64::from(self.count).saturating_mul(self.item_len(kind)))
    }
}

/// Parses the header at the start of `bytes`: magic number, count and (for images) sides
/// from 1 to [`MAX_IMAGE_SIDE`]. Short input is a [`Error::BadLength`].
fn parse_header(bytes: &[u8], kind: IdxKind, path: &Path) -> Result<IdxHeader> {
    let header = kind.header_len();
    let short = || Error::BadLength {
        path: path.to_path_buf(),
        expected: header as u64,
        actual: bytes.len() as u64,
    };
    let magic = be_u32(bytes, 0).ok_or_else(short)?;
    if magic != kind.magic() {
        return Err(Error::BadMagic {
            path: path.to_path_buf(),
            found: magic,
            expected: kind.magic(),
            what: kind.what(),
        });
    }
    let count = be_u32(bytes, 4).ok_or_else(short)?;
    let (rows, cols) = match kind {
        IdxKind::Images => (
            be_u32(bytes, 8).ok_or_else(short)?,
            be_u32(bytes, 12).ok_or_else(short)?,
        ),
        IdxKind::Labels => (0, 0),
    };
    if kind == IdxKind::Images
        && !((1..=MAX_IMAGE_SIDE).contains(&rows) && (1..=MAX_IMAGE_SIDE).contains(&cols))
    {
        return Err(Error::BadDimensions {
            path: path.to_path_buf(),
            rows,
            cols,
            max: MAX_IMAGE_SIDE,
        });
    }
    Ok(IdxHeader { count, rows, cols })
}

/// Checks the decompressed contents of one IDX file and returns its header.
///
/// Checks the magic number, image sides (1 to [`MAX_IMAGE_SIDE`]) and that the length
/// matches the header exactly. `path` is only used in errors. Never panics and never
/// allocates in proportion to what the header claims.
pub fn check_idx(bytes: &[u8], kind: IdxKind, path: &Path) -> Result<IdxHeader> {
    let h = parse_header(bytes, kind, path)?;
    let expected = h.file_len(kind);
    if expected != bytes.len() as u64 {
        return Err(Error::BadLength {
            path: path.to_path_buf(),
            expected,
            actual: bytes.len() as u64,
        });
    }
    Ok(h)
}

/// A validated file, held in memory.
pub(crate) struct Checked {
    /// The file the user gave (raw or `.gz`), for error messages.
    pub source: PathBuf,
    /// Whether `source` is gzip.
    pub compressed: bool,
    /// Its header.
    pub header: IdxHeader,
    /// The whole decompressed file.
    pub bytes: Vec<u8>,
    /// SHA-256 of `bytes`, lowercase hex (checked against `SHA256SUMS.raw` when present).
    pub digest: String,
}

impl Checked {
    /// The items after the header.
    pub fn payload(&self, kind: IdxKind) -> &[u8] {
        &self.bytes[kind.header_len()..]
    }
}

/// Largest `SHA256SUMS.raw` read (four lines of 90 bytes are needed).
const MAX_SUMS_BYTES: u64 = 64 * 1024;

/// Reads `SHA256SUMS.raw` in `dir`, if there is one, as file name -> lowercase hex digest.
pub(crate) fn read_sums(dir: &Path) -> Result<Option<(PathBuf, HashMap<String, String>)>> {
    let path = dir.join("SHA256SUMS.raw");
    if !path.exists() {
        return Ok(None);
    }
    let text = read_text(&path, MAX_SUMS_BYTES)?.ok_or_else(|| Error::SumsTooLarge {
        path: path.clone(),
        limit: MAX_SUMS_BYTES,
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

/// DEFLATE's largest compression ratio (a run of one byte value): a gzip file of `n` bytes
/// cannot hold more than about `1032 * n`.
const DEFLATE_MAX_RATIO: u64 = 1032;

fn read_bounded(reader: impl Read, path: &Path, gz: bool, limit: u64) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    read_bounded_into(reader, path, gz, limit, &mut out)?;
    Ok(out)
}

/// Appends at most `limit + 1` bytes of `reader` to `out` (the extra byte shows the reader
/// went on), refusing a total over [`MAX_DECOMPRESSED_BYTES`].
fn read_bounded_into(
    reader: impl Read,
    path: &Path,
    gz: bool,
    limit: u64,
    out: &mut Vec<u8>,
) -> Result<()> {
    let mut limited = reader.take(limit.saturating_add(1));
    limited.read_to_end(out).map_err(|e| {
        if gz {
            Error::BadGzip {
                path: path.to_path_buf(),
                source: e,
            }
        } else {
            Error::Io {
                path: path.to_path_buf(),
                source: e,
            }
        }
    })?;
    if out.len() as u64 > MAX_DECOMPRESSED_BYTES {
        return Err(Error::TooLarge {
            path: path.to_path_buf(),
            limit: MAX_DECOMPRESSED_BYTES,
        });
    }
    Ok(())
}

/// Reads an IDX file no further than one byte past what its header implies (so a gzip bomb
/// or a padded file stops there), refusing headers that imply more than
/// [`MAX_DECOMPRESSED_BYTES`]. `max_len`, the most the file can hold (its length, or for
/// gzip its length times DEFLATE's largest ratio), sizes the buffer.
fn read_idx(
    mut reader: impl Read,
    path: &Path,
    gz: bool,
    kind: IdxKind,
    max_len: u64,
) -> Result<Vec<u8>> {
    let mut head = read_bounded((&mut reader).take(kind.header_len() as u64), path, gz, 16)?;
    let h = match parse_header(&head, kind, path) {
        Ok(h) => h,
        Err(_) => return Ok(head), // check_idx reports it
    };
    let expected = h.file_len(kind);
    if expected > MAX_DECOMPRESSED_BYTES {
        return Err(Error::HeaderTooLarge {
            path: path.to_path_buf(),
            implied: expected,
            limit: MAX_DECOMPRESSED_BYTES,
        });
    }
    let want = expected - head.len() as u64;
    // Read the rest straight after the header, into room for the whole file (never more
    // than the file can hold): growing a buffer by doubling and then copying it behind the
    // header held three copies of the training images at once.
    let room = max_len.min(expected);
    head.reserve_exact(
        usize::try_from(room)
            .unwrap_or(0)
            .saturating_sub(head.len()),
    );
    read_bounded_into(reader, path, gz, want, &mut head)?;
    if head.len() as u64 > expected {
        return Err(Error::Padded {
            path: path.to_path_buf(),
            expected,
        });
    }
    Ok(head)
}

/// Reads a `.gz` file fully, refusing more than [`MAX_DECOMPRESSED_BYTES`] of output.
pub fn decompress_gz(path: &Path) -> Result<Vec<u8>> {
    let file = open_file(path)?;
    read_bounded(
        flate2::read::MultiGzDecoder::new(file),
        path,
        true,
        MAX_DECOMPRESSED_BYTES,
    )
}

/// Decompresses gzip `bytes` already in memory, with the same bound and errors as
/// [`decompress_gz`]; `path` is only used in errors.
pub fn decompress_gz_bytes(bytes: &[u8], path: &Path) -> Result<Vec<u8>> {
    read_bounded(
        flate2::read::MultiGzDecoder::new(bytes),
        path,
        true,
        MAX_DECOMPRESSED_BYTES,
    )
}

/// The text of a small regular file, or `None` when it holds more than `limit` bytes (only
/// `limit + 1` bytes are ever read). A FIFO, a device or a folder is [`Error::NotAFile`]:
/// reading one could block for ever or never end.
pub fn read_text(path: &Path, limit: u64) -> Result<Option<String>> {
    let mut text = String::new();
    open_file(path)?
        .take(limit + 1)
        .read_to_string(&mut text)
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
    Ok((text.len() as u64 <= limit).then_some(text))
}

/// The metadata of `path` if it is a regular file; anything else (a folder, a FIFO that
/// would block forever, a device with no end) is [`Error::NotAFile`].
pub(crate) fn regular_file(path: &Path) -> Result<std::fs::Metadata> {
    let meta = std::fs::metadata(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.is_file() {
        return Err(Error::NotAFile {
            path: path.to_path_buf(),
        });
    }
    Ok(meta)
}

/// Opens a regular file; anything else (a folder, a FIFO that would block forever, a device
/// with no end) is [`Error::NotAFile`].
fn open_file(path: &Path) -> Result<File> {
    regular_file(path)?;
    File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The header of `name` in `dir` (raw first, then `.gz`), read alone: the first 8 or 16
/// bytes, decompressed from the start of a `.gz`. `None` when it cannot be read or parsed,
/// which [`prepare`] then reports in full.
pub(crate) fn peek(dir: &Path, name: &str, kind: IdxKind) -> Option<(PathBuf, IdxHeader)> {
    let raw = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    let mut head = vec![0u8; kind.header_len()];
    let source = if raw.exists() {
        open_file(&raw).ok()?.read_exact(&mut head).ok()?;
        raw
    } else {
        let file = open_file(&gz).ok()?;
        flate2::read::MultiGzDecoder::new(file)
            .read_exact(&mut head)
            .ok()?;
        gz
    };
    let header = parse_header(&head, kind, &source).ok()?;
    Some((source, header))
}

/// Finds `name` (raw first, then `.gz`) in `dir`, reads and validates it.
pub(crate) fn prepare(
    dir: &Path,
    name: &str,
    kind: IdxKind,
    sums: Option<&(PathBuf, HashMap<String, String>)>,
) -> Result<Checked> {
    let raw = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    let (source, bytes, compressed) = if raw.exists() {
        let file = open_file(&raw)?;
        let len = file.metadata().map_or(0, |m| m.len());
        let bytes = read_idx(file, &raw, false, kind, len)?;
        (raw, bytes, false)
    } else if gz.exists() {
        let file = open_file(&gz)?;
        let len = file.metadata().map_or(0, |m| m.len());
        let bytes = read_idx(
            flate2::read::MultiGzDecoder::new(file),
            &gz,
            true,
            kind,
            len.saturating_mul(DEFLATE_MAX_RATIO),
        )?;
        (gz, bytes, true)
    } else {
        return Err(Error::MissingFile { path: raw });
    };
    let header = check_idx(&bytes, kind, &source)?;
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
    Ok(Checked {
        source,
        compressed,
        header,
        bytes,
        digest,
    })
}

/// SHA-256 of `header` followed by `payload`, lowercase hex: the digest of a file whose
/// items came back from another reader.
pub(crate) fn digest_of(header: &[u8], payload: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(header);
    h.update(payload);
    hex(&h.finalize())
}

/// An uncompressed copy of `c` on disk for a reader that needs a file: the file itself, or a
/// content-addressed copy in `cache`.
///
/// An existing copy is reused when its size is right (`rewrite` forces a fresh one); its
/// contents are checked after reading, against the digest.
pub(crate) fn readable_copy(
    c: &Checked,
    name: &str,
    cache: &Path,
    rewrite: bool,
) -> Result<PathBuf> {
    if !c.compressed {
        return Ok(c.source.clone());
    }
    let target = cache.join(&c.digest).join(name);
    let intact =
        std::fs::metadata(&target).is_ok_and(|m| m.is_file() && m.len() == c.bytes.len() as u64);
    if rewrite || !intact {
        // A killed earlier write left its 47 MB temporary file here; it would never go.
        if let Some(dir) = target.parent() {
            crate::atomic::remove_stale_temps(dir, &[name]);
        }
        write_atomic(&target, &c.bytes)?;
    }
    Ok(target)
}

/// Writes `bytes` to `path` atomically, creating its folder; errors name the file.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let write = |p: &Path| {
        let path = p.to_path_buf();
        move |source| Error::Write { path, source }
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(write(parent))?;
    }
    crate::atomic::write_atomic(path, bytes).map_err(write(path))
}
