//! Reading the four IDX files of a dataset (raw or `.gz`) into a [`Dataset`], after the
//! guard's checks, with the class names of `classes.txt` or the dataset kind.

use std::path::{Path, PathBuf};

use crate::guard::{self, IdxHeader, IdxKind};
use crate::{
    CLASSES_FILE, DataSource, Dataset, DatasetKind, Error, FILE_NAMES, Reader, Result, Split,
    default_cache_dir, mnist_reader,
};

/// Loads the four IDX files of `source.dir` (a folder known to exist).
pub(crate) fn load_idx(source: &DataSource) -> Result<Dataset> {
    let dir = &source.dir;
    let sums = guard::read_sums(dir)?;
    let kinds = [
        IdxKind::Images,
        IdxKind::Labels,
        IdxKind::Images,
        IdxKind::Labels,
    ];
    // The four headers agree before any body is read: two small files claiming gigabytes
    // of images must not be decompressed to learn that their label counts differ.
    let peek = |i: usize| guard::peek(dir, FILE_NAMES[i], kinds[i]);
    if let [Some(a), Some(b), Some(c), Some(d)] = [peek(0), peek(1), peek(2), peek(3)] {
        check_pairs([(&a.0, &a.1), (&b.0, &b.1), (&c.0, &c.1), (&d.0, &d.1)])?;
    }
    let prep = |i: usize| guard::prepare(dir, FILE_NAMES[i], kinds[i], sums.as_ref());
    let files = [prep(0)?, prep(1)?, prep(2)?, prep(3)?];
    check_pairs(files.each_ref().map(|f| (&f.source, &f.header)))?;
    let names_file = dir.join(CLASSES_FILE);
    let names = read_class_names(&names_file)?;
    let classes = match &names {
        Some(n) => {
            check_labels_below(&files[1], n.len(), &names_file)?;
            check_labels_below(&files[3], n.len(), &names_file)?;
            n.len()
        }
        None => [&files[1], &files[3]]
            .iter()
            .flat_map(|f| f.payload(IdxKind::Labels).iter())
            .map(|&l| usize::from(l) + 1)
            .max()
            .unwrap_or(1),
    };
    let (rows, cols) = (files[0].header.rows as usize, files[0].header.cols as usize);
    let [ti, tl, si, sl] = if source.reader == Reader::Auto && mnist_reader::is_standard(&files) {
        let cache = source.cache_dir.clone().unwrap_or_else(default_cache_dir);
        mnist_reader::read(&files, &FILE_NAMES, &cache)?
    } else {
        let [a, b, c, d] = files;
        [
            payload(a, IdxKind::Images),
            payload(b, IdxKind::Labels),
            payload(c, IdxKind::Images),
            payload(d, IdxKind::Labels),
        ]
    };
    let class_names = names.unwrap_or_else(|| default_names(source.kind, classes));
    Dataset::new(
        Split::new(ti, tl, rows, cols, classes)?,
        Split::new(si, sl, rows, cols, classes)?,
        class_names,
    )
}

fn payload(mut c: guard::Checked, kind: IdxKind) -> Vec<u8> {
    c.bytes.drain(..kind.header_len());
    c.bytes
}

/// Each image file agrees with its label file on the count, holds items, and training and
/// test images have one size.
/// The four files (training images and labels, test images and labels) agree: as many
/// labels as images, some of each, and one image size.
fn check_pairs(f: [(&PathBuf, &IdxHeader); 4]) -> Result<()> {
    for [(img, ih), (lbl, lh)] in [[f[0], f[1]], [f[2], f[3]]] {
        if ih.count != lh.count {
            return Err(Error::CountMismatch {
                images: img.clone(),
                n_images: ih.count,
                labels: lbl.clone(),
                n_labels: lh.count,
            });
        }
        if ih.count == 0 {
            return Err(Error::NoItems { path: img.clone() });
        }
    }
    let ((train, a), (test, b)) = (f[0], f[2]);
    if (a.rows, a.cols) != (b.rows, b.cols) {
        return Err(Error::SizeMismatch {
            train: train.clone(),
            train_rows: a.rows as usize,
            train_cols: a.cols as usize,
            test: test.clone(),
            test_rows: b.rows as usize,
            test_cols: b.cols as usize,
        });
    }
    Ok(())
}

fn check_labels_below(f: &guard::Checked, classes: usize, names: &Path) -> Result<()> {
    match f
        .payload(IdxKind::Labels)
        .iter()
        .enumerate()
        .find(|(_, l)| usize::from(**l) >= classes)
    {
        Some((index, &label)) => Err(Error::LabelOutsideClasses {
            path: f.source.clone(),
            index,
            label,
            classes,
            names: names.to_path_buf(),
        }),
        None => Ok(()),
    }
}

/// Largest `classes.txt` read.
const MAX_CLASSES_BYTES: u64 = 64 * 1024;

/// Reads `classes.txt` (one name a line, trailing blank lines ignored), if present.
fn read_class_names(path: &Path) -> Result<Option<Vec<String>>> {
    if !path.exists() {
        return Ok(None);
    }
    let bad = |reason| Error::BadClassNames {
        path: path.to_path_buf(),
        reason,
    };
    let text = guard::read_text(path, MAX_CLASSES_BYTES)?
        .ok_or_else(|| bad("is larger than 64 KiB; expected one class name a line"))?;
    let names: Vec<String> = text
        .trim_end()
        .lines()
        .map(|l| l.trim().to_string())
        .collect();
    if names.is_empty() || names.iter().all(String::is_empty) {
        return Err(bad("names no classes; expected one class name a line"));
    }
    if names.len() > 256 {
        return Err(bad("names more than 256 classes (labels are bytes)"));
    }
    if names.iter().any(String::is_empty) {
        return Err(bad("has an empty line between class names"));
    }
    // Names are printed to terminals and drawn in figures: an escape sequence would
    // recolour or rewrite the user's terminal.
    if names.iter().any(|n| n.chars().any(char::is_control)) {
        return Err(bad(
            "holds a control character (an escape sequence?) in a class name",
        ));
    }
    Ok(Some(names))
}

/// Class names when the folder has none: the dataset kind's when it has that many classes,
/// otherwise the labels themselves.
fn default_names(kind: DatasetKind, classes: usize) -> Vec<String> {
    let known = kind.class_names();
    if classes == known.len() {
        known.iter().map(|s| s.to_string()).collect()
    } else {
        (0..classes).map(|c| c.to_string()).collect()
    }
}
