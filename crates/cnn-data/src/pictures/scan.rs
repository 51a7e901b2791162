//! Listing a folder of pictures: the class folders of `train/` and `test/`, the pictures in
//! each (sorted, with size and modification time for the cache key), the files skipped.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use image::ImageFormat;
use sha2::{Digest, Sha256};

use super::PictureOptions;
use crate::{Error, Result};

/// Version of the decoding: part of the cache key, so a change in how pictures are turned
/// into bytes never serves an old cache.
const DECODE_VERSION: u32 = 1;

/// One picture file.
pub(crate) struct Entry {
    pub(crate) path: PathBuf,
    pub(crate) label: u8,
    len: u64,
    modified: (u64, u32),
}

/// The pictures of one split, in a fixed shuffled order (see [`shuffle`]).
pub(crate) type Entries = Vec<Entry>;

/// What the listing found.
pub(crate) struct Scan {
    pub(crate) class_names: Vec<String>,
    pub(crate) train: Entries,
    pub(crate) test: Entries,
    pub(crate) other_files: usize,
    /// Files with a picture's name that cannot be a picture (with `skip_bad`): a FIFO, a
    /// device, an empty file, a broken link.
    pub(crate) bad: Vec<PathBuf>,
}

impl Scan {
    /// The cache key: SHA-256 of the decoding version, the options and every picture's
    /// split, class, name, length and modification time.
    pub(crate) fn key(&self, opts: &PictureOptions) -> String {
        let mut h = Sha256::new();
        h.update(DECODE_VERSION.to_le_bytes());
        h.update(format!("{opts:?}").as_bytes());
        for name in &self.class_names {
            h.update(name.as_bytes());
            h.update([0]);
        }
        for (split, entries) in [(0u8, &self.train), (1, &self.test)] {
            for e in entries {
                h.update([split, e.label]);
                h.update(e.path.as_os_str().as_encoded_bytes());
                h.update([0]);
                h.update(e.len.to_le_bytes());
                h.update(e.modified.0.to_le_bytes());
                h.update(e.modified.1.to_le_bytes());
            }
        }
        h.update((self.bad.len() as u64).to_le_bytes());
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Lists `dir/train` and `dir/test`: the same class folders on both sides, at least two and
/// at most 256, none without pictures.
pub(crate) fn scan(dir: &Path, skip_bad: bool) -> Result<Scan> {
    let (train_dir, test_dir) = (dir.join("train"), dir.join("test"));
    if !test_dir.is_dir() {
        return Err(Error::NoTestFolder { path: test_dir });
    }
    let mut other_files = 0;
    let train_classes = class_folders(&train_dir, &mut other_files)?;
    let test_classes = class_folders(&test_dir, &mut other_files)?;
    if train_classes != test_classes {
        return Err(Error::ClassFoldersDiffer {
            differences: differences(&train_classes, &test_classes),
            train: train_dir,
            test: test_dir,
        });
    }
    let mut bad = Vec::new();
    let mut splits = [Vec::new(), Vec::new()];
    for (split, root) in splits.iter_mut().zip([&train_dir, &test_dir]) {
        for (label, name) in train_classes.iter().enumerate() {
            let folder = root.join(name);
            let found = pictures(&folder, label as u8, skip_bad, &mut bad)?;
            if found.pictures.is_empty() {
                return Err(Error::EmptyClass {
                    path: folder,
                    other: found.other,
                });
            }
            other_files += found.other;
            split.extend(found.pictures);
        }
        shuffle(split);
    }
    let [train, test] = splits;
    Ok(Scan {
        class_names: train_classes,
        train,
        test,
        other_files,
        bad,
    })
}

/// The class folders of `root`, sorted by name; anything else there is counted in `other`.
fn class_folders(root: &Path, other: &mut usize) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in read_dir(root)? {
        let path = entry.path();
        let name = entry.file_name();
        if is_hidden(&name) || !path.is_dir() {
            *other += 1;
            continue;
        }
        let bad = |reason| Error::BadClassFolder {
            path: path.clone(),
            reason,
        };
        let name = name
            .to_str()
            .ok_or_else(|| bad("the folder name is not valid UTF-8, so it cannot name a class"))?;
        // Names are printed to terminals and drawn in figures.
        if name.chars().any(char::is_control) {
            return Err(bad("the folder name holds a control character"));
        }
        names.push(name.to_string());
    }
    names.sort();
    match names.len() {
        0 => Err(Error::NoClassFolders {
            path: root.to_path_buf(),
        }),
        1 => Err(Error::OneClassFolder {
            path: root.to_path_buf(),
            name: names.remove(0),
        }),
        n if n > 256 => Err(Error::TooManyClasses {
            path: root.to_path_buf(),
            count: n,
        }),
        _ => Ok(names),
    }
}

/// "`cow` only in train/, `cat` only in test/".
fn differences(train: &[String], test: &[String]) -> String {
    let only = |a: &[String], b: &[String], side: &str| {
        a.iter()
            .filter(|n| !b.contains(n))
            .map(|n| format!("`{n}` only in {side}/"))
            .collect::<Vec<_>>()
    };
    let mut all = only(train, test, "train");
    all.extend(only(test, train, "test"));
    all.join(", ")
}

/// The pictures of one class folder, and how many other files it holds.
struct Found {
    pictures: Vec<Entry>,
    other: usize,
}

/// Lists one class folder, sorted by file name. A file named as a picture that cannot be
/// one (not a regular file, empty, unreadable) is an error, or with `skip_bad` goes to `bad`.
fn pictures(folder: &Path, label: u8, skip_bad: bool, bad: &mut Vec<PathBuf>) -> Result<Found> {
    let mut entries = read_dir(folder)?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    let mut found = Found {
        pictures: Vec::new(),
        other: 0,
    };
    for entry in entries {
        let path = entry.path();
        if is_hidden(&entry.file_name()) || !is_picture_name(&path) {
            found.other += 1;
            continue;
        }
        match picture_entry(path.clone(), label) {
            Ok(e) => found.pictures.push(e),
            Err(_) if skip_bad => bad.push(path),
            Err(e) => return Err(e),
        }
    }
    Ok(found)
}

/// Whether the extension is one the `image` crate decodes in this build.
pub(crate) fn is_picture_name(path: &Path) -> bool {
    ImageFormat::from_path(path).is_ok_and(|f| f.reading_enabled())
}

/// macOS's `._name.jpg` resource forks and other dot files are not pictures.
fn is_hidden(name: &OsStr) -> bool {
    name.as_encoded_bytes().first() == Some(&b'.')
}

fn picture_entry(path: PathBuf, label: u8) -> Result<Entry> {
    // Follows links: a loop fails here, naming the file.
    let meta = crate::guard::regular_file(&path)?;
    if meta.len() == 0 {
        return Err(Error::ImageEmpty { path });
    }
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or((0, 0), |d| (d.as_secs(), d.subsec_nanos()));
    Ok(Entry {
        path,
        label,
        len: meta.len(),
        modified,
    })
}

fn read_dir(dir: &Path) -> Result<Vec<std::fs::DirEntry>> {
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::read_dir(dir)
        .map_err(io)?
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(io)
}

/// Puts a split in a fixed pseudo-random order, the same on every machine and forever (a
/// SplitMix64 stream of a constant seed, written here because a crate's generator may change
/// its stream between versions): a validation split held out from the end of the training
/// set, a `take(n)`, and the first test images a report draws then cover every class, not the
/// last folders only.
fn shuffle<T>(items: &mut [T]) {
    let mut state: u64 = 0x0005_EED0_FF01_DE75;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    for i in (1..items.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffle_is_a_fixed_permutation() {
        let mut a: Vec<u32> = (0..100).collect();
        let mut b = a.clone();
        shuffle(&mut a);
        shuffle(&mut b);
        assert_eq!(a, b);
        assert_ne!(a, (0..100).collect::<Vec<_>>());
        a.sort_unstable();
        assert_eq!(a, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn differences_name_both_sides() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            differences(&s(&["cat", "cow", "dog"]), &s(&["cat", "dog", "eel"])),
            "`cow` only in train/, `eel` only in test/"
        );
    }
}
