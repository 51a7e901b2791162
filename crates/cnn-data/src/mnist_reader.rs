//! The `mnist` crate as the reader of standard MNIST-shaped sets, fenced in.
//!
//! That crate reads uncompressed files only, asserts exactly 60,000 training and 10,000 test
//! items of 28x28 and panics on anything else, and re-reads the files after the guard has
//! checked them. So it is called only for that exact shape, behind `catch_unwind`, and what
//! it returns is hashed again and compared with the digests the guard verified: a file
//! replaced in between is an error, never wrong data or a panic.

use std::path::{Path, PathBuf};

use crate::guard::{self, Checked, IdxKind};
use crate::{Error, MNIST_SIDE, MNIST_TEST_LEN, MNIST_TRAIN_LEN, Result};

/// Whether the four checked files have the one shape the `mnist` crate accepts.
pub(crate) fn is_standard(files: &[Checked; 4]) -> bool {
    let side = MNIST_SIDE as u32;
    let counts = [
        MNIST_TRAIN_LEN,
        MNIST_TRAIN_LEN,
        MNIST_TEST_LEN,
        MNIST_TEST_LEN,
    ];
    files
        .iter()
        .zip(counts)
        .all(|(f, n)| f.header.count as usize == n)
        && [&files[0], &files[2]]
            .iter()
            .all(|f| f.header.rows == side && f.header.cols == side)
}

fn path_str(p: &Path) -> Result<String> {
    p.to_str()
        .map(str::to_owned)
        .ok_or_else(|| Error::NonUtf8Path {
            path: p.to_path_buf(),
        })
}

/// Items read back by the `mnist` crate: `[train images, train labels, test images, test
/// labels]`, each checked against the guard's digest of its file.
///
/// A decompressed copy in the cache that was truncated or altered since it was written is
/// written again from the verified bytes, and read once more.
pub(crate) fn read(files: &[Checked; 4], names: &[&str; 4], cache: &Path) -> Result<[Vec<u8>; 4]> {
    match read_once(files, names, cache, false) {
        Err(_) if files.iter().any(|f| f.compressed) => read_once(files, names, cache, true),
        other => other,
    }
}

fn read_once(
    files: &[Checked; 4],
    names: &[&str; 4],
    cache: &Path,
    rewrite: bool,
) -> Result<[Vec<u8>; 4]> {
    let paths = files
        .iter()
        .zip(names)
        .map(|(f, name)| guard::readable_copy(f, name, cache, rewrite))
        .collect::<Result<Vec<PathBuf>>>()?;
    let strs = paths
        .iter()
        .map(|p| path_str(p))
        .collect::<Result<Vec<_>>>()?;
    let read = std::panic::catch_unwind(|| {
        // Absolute file names override the base path in the `mnist` crate's `Path::join`.
        let m = mnist::MnistBuilder::new()
            .base_path("")
            .training_images_filename(&strs[0])
            .training_labels_filename(&strs[1])
            .test_images_filename(&strs[2])
            .test_labels_filename(&strs[3])
            .label_format_digit()
            .training_set_length(MNIST_TRAIN_LEN as u32)
            .validation_set_length(0)
            .test_set_length(MNIST_TEST_LEN as u32)
            .finalize();
        [m.trn_img, m.trn_lbl, m.tst_img, m.tst_lbl]
    });
    let out = read.map_err(|_| Error::ReaderFailed {
        path: paths[0].clone(),
    })?;
    let kinds = [
        IdxKind::Images,
        IdxKind::Labels,
        IdxKind::Images,
        IdxKind::Labels,
    ];
    for (((f, items), kind), path) in files.iter().zip(&out).zip(kinds).zip(&paths) {
        let header = &f.bytes[..kind.header_len()];
        if guard::digest_of(header, items) != f.digest {
            return Err(Error::ReaderMismatch { path: path.clone() });
        }
    }
    Ok(out)
}
