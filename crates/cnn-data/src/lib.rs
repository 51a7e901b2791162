//! Loading and validation of MNIST-format datasets (MNIST, Fashion-MNIST), raw or gzip.
//!
//! The four IDX files of a dataset are checked by a guard of our own before the [`mnist`]
//! crate reads them: that crate panics on any malformed file, reads only uncompressed files
//! and insists on exactly 60,000 training and 10,000 test items. The guard turns every such
//! case into a typed [`Error`] that names the file, decompresses `.gz` files into a
//! content-addressed cache folder, and verifies `SHA256SUMS.raw` where the folder has one.
//!
//! Images stay `u8` in memory (47 MB for MNIST); callers convert one batch at a time.
//!
//! ```no_run
//! let data = cnn_data::load(&cnn_data::DataSource::shipped_mnist())?;
//! assert_eq!(data.train.len(), 60_000);
//! # Ok::<(), cnn_data::Error>(())
//! ```
#![deny(missing_docs)]

mod guard;
pub mod preprocess;

use std::path::{Path, PathBuf};

pub use guard::{IdxKind, MAX_DECOMPRESSED_BYTES, check_idx, decompress_gz, decompress_gz_bytes};

/// Side length of every image, in pixels.
pub const IMAGE_SIDE: usize = 28;
/// Pixels per image.
pub const IMAGE_PIXELS: usize = IMAGE_SIDE * IMAGE_SIDE;
/// Number of classes in both supported datasets.
pub const NUM_CLASSES: usize = 10;
/// Training items the `mnist` crate requires.
pub const TRAIN_LEN: usize = 60_000;
/// Test items the `mnist` crate requires.
pub const TEST_LEN: usize = 10_000;

/// Where Debian's `dataset-fashion-mnist` package installs Fashion-MNIST.
pub const FASHION_SYSTEM_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Errors from loading a dataset. Every variant names the file or folder at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The data folder does not exist.
    #[error("data folder {path} does not exist{hint}")]
    MissingDir {
        /// The folder.
        path: PathBuf,
        /// Extra advice, such as how to install the dataset (may be empty).
        hint: String,
    },
    /// The data folder is a file (or something else that is not a folder).
    #[error("data folder {path} is not a folder")]
    NotADir {
        /// The path.
        path: PathBuf,
    },
    /// One of the four IDX files is missing (neither raw nor `.gz`).
    #[error("missing data file {path} (also looked for {path}.gz)")]
    MissingFile {
        /// The path looked for, without `.gz`.
        path: PathBuf,
    },
    /// A path that should be a file is something else (a folder, say).
    #[error("{path} is not a regular file")]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// Reading or writing a file failed.
    #[error("cannot read {path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error (shown in the message, so not chained as a source).
        error: std::io::Error,
    },
    /// A `.gz` file is not valid gzip, or is cut short.
    #[error("{path} is not a valid gzip file: {reason}")]
    BadGzip {
        /// The file.
        path: PathBuf,
        /// What the decoder said.
        reason: String,
    },
    /// A decompressed file is larger than any MNIST-format file should be.
    #[error("{path} decompresses to more than {limit} bytes; refusing it")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit, in bytes.
        limit: u64,
    },
    /// The IDX magic number is not the one for this kind of file.
    #[error("{path} has magic number {found:#010x}, expected {expected:#010x} ({what})")]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The magic number read.
        found: u32,
        /// The magic number expected.
        expected: u32,
        /// `"images"` or `"labels"`.
        what: &'static str,
    },
    /// The image dimensions in the header are not 28x28.
    #[error("{path} holds {rows}x{cols} images, expected 28x28")]
    BadDimensions {
        /// The file.
        path: PathBuf,
        /// Rows in the header.
        rows: u32,
        /// Columns in the header.
        cols: u32,
    },
    /// The file is shorter or longer than its header says.
    #[error(
        "{path} is {actual} bytes but its header implies {expected} bytes (truncated or padded)"
    )]
    BadLength {
        /// The file.
        path: PathBuf,
        /// Bytes the header implies.
        expected: u64,
        /// Bytes present.
        actual: u64,
    },
    /// Image and label files disagree on the number of items.
    #[error("{images} holds {n_images} images but {labels} holds {n_labels} labels")]
    CountMismatch {
        /// The image file.
        images: PathBuf,
        /// Items in the image file.
        n_images: u32,
        /// The label file.
        labels: PathBuf,
        /// Items in the label file.
        n_labels: u32,
    },
    /// The split does not have the size the `mnist` crate requires.
    #[error("{path} holds {found} items; MNIST-format {split} files must hold exactly {expected}")]
    WrongCount {
        /// The file.
        path: PathBuf,
        /// `"training"` or `"test"`.
        split: &'static str,
        /// Items in the file.
        found: u32,
        /// Items required.
        expected: usize,
    },
    /// A label is not in `0..=9`.
    #[error("{path}: label {label} at item {index} is outside 0..=9")]
    BadLabel {
        /// The file.
        path: PathBuf,
        /// Index of the item.
        index: usize,
        /// The label read.
        label: u8,
    },
    /// A decompressed file does not match `SHA256SUMS.raw`.
    #[error("{path} does not match its SHA-256 in {sums}: expected {expected}, got {actual}")]
    Checksum {
        /// The data file.
        path: PathBuf,
        /// The checksum file.
        sums: PathBuf,
        /// Hex digest expected.
        expected: String,
        /// Hex digest computed.
        actual: String,
    },
    /// A picture given for prediction cannot be used (not an image, empty, too large, blank).
    #[error("{path}: {reason}")]
    BadImage {
        /// The picture.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A path is not valid UTF-8 (the `mnist` crate takes `&str` paths).
    #[error("path {path} is not valid UTF-8")]
    NonUtf8Path {
        /// The path.
        path: PathBuf,
    },
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Which dataset a folder holds; decides the class names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatasetKind {
    /// Handwritten digits 0-9.
    Mnist,
    /// Zalando's Fashion-MNIST: ten kinds of clothing.
    Fashion,
}

impl DatasetKind {
    /// Human-readable names of the ten classes, by label.
    pub fn class_names(self) -> [&'static str; NUM_CLASSES] {
        match self {
            DatasetKind::Mnist => ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
            DatasetKind::Fashion => [
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ],
        }
    }

    /// Short lowercase name, as used on the command line (`mnist`, `fashion`).
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::Fashion => "fashion",
        }
    }
}

/// A folder of the four MNIST-format files, and how to treat it.
#[derive(Debug, Clone)]
pub struct DataSource {
    /// Folder holding `train-images-idx3-ubyte` and the three others, raw or `.gz`.
    pub dir: PathBuf,
    /// Which dataset it is (class names).
    pub kind: DatasetKind,
    /// Where decompressed copies of `.gz` files go; `None` picks [`default_cache_dir`].
    pub cache_dir: Option<PathBuf>,
}

impl DataSource {
    /// The MNIST copy shipped in this repository's `assets/mnist`.
    pub fn shipped_mnist() -> Self {
        Self::new(shipped_mnist_dir(), DatasetKind::Mnist)
    }

    /// Fashion-MNIST as installed by Debian's `dataset-fashion-mnist`.
    pub fn fashion_system() -> Self {
        Self::new(FASHION_SYSTEM_DIR, DatasetKind::Fashion)
    }

    /// Any folder of MNIST-format files.
    pub fn new(dir: impl Into<PathBuf>, kind: DatasetKind) -> Self {
        Self {
            dir: dir.into(),
            kind,
            cache_dir: None,
        }
    }

    /// Use `dir` for decompressed copies instead of the default cache.
    pub fn with_cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }
}

/// The `assets/mnist` folder of this repository, found from the crate's build location.
pub fn shipped_mnist_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/mnist")
}

/// Cache folder for decompressed files: `$CNN_DATA_CACHE`, else `$XDG_CACHE_HOME/cnn-mnist`,
/// else `$HOME/.cache/cnn-mnist`, else the system temporary folder.
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CNN_DATA_CACHE") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("cnn-mnist");
    }
    if let Some(home) = std::env::var_os("HOME") {
        return PathBuf::from(home).join(".cache/cnn-mnist");
    }
    std::env::temp_dir().join("cnn-mnist")
}

/// One split (training or test): images as `u8`, row-major 28x28, and their labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    images: Vec<u8>,
    labels: Vec<u8>,
}

impl Split {
    /// Builds a split from raw pixels and labels.
    ///
    /// Returns `None` if `images.len() != labels.len() * 784` or a label is above 9.
    pub fn from_raw(images: Vec<u8>, labels: Vec<u8>) -> Option<Self> {
        let ok = images.len() == labels.len() * IMAGE_PIXELS
            && labels.iter().all(|&l| (l as usize) < NUM_CLASSES);
        ok.then_some(Self { images, labels })
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the split has no items.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// All pixels, item after item.
    pub fn images(&self) -> &[u8] {
        &self.images
    }

    /// All labels.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// Pixels of item `i` (784 bytes). Panics if `i >= len()`.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.images[i * IMAGE_PIXELS..(i + 1) * IMAGE_PIXELS]
    }

    /// Label of item `i`. Panics if `i >= len()`.
    pub fn label(&self, i: usize) -> u8 {
        self.labels[i]
    }

    /// The first `n` items (all of them if `n >= len()`).
    pub fn head(&self, n: usize) -> Split {
        let n = n.min(self.len());
        Split {
            images: self.images[..n * IMAGE_PIXELS].to_vec(),
            labels: self.labels[..n].to_vec(),
        }
    }

    /// How many items carry each label.
    pub fn label_histogram(&self) -> [usize; NUM_CLASSES] {
        let mut h = [0; NUM_CLASSES];
        for &l in &self.labels {
            h[l as usize] += 1;
        }
        h
    }

    /// Writes items `indices` as `f32` in `[0, 1]` into `out` (`indices.len() * 784` values),
    /// the layout of an `N x 1 x 28 x 28` tensor.
    pub fn fill_batch(&self, indices: &[usize], out: &mut Vec<f32>) {
        out.clear();
        out.reserve(indices.len() * IMAGE_PIXELS);
        for &i in indices {
            out.extend(self.image(i).iter().map(|&p| f32::from(p) / 255.0));
        }
    }
}

/// A loaded dataset.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Which dataset it is.
    pub kind: DatasetKind,
    /// 60,000 training items.
    pub train: Split,
    /// 10,000 test items.
    pub test: Split,
}

/// The four files of a split pair, by their standard names.
pub const FILE_NAMES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// Loads and validates the dataset in `source.dir`.
///
/// Every malformed input ends in an [`Error`] naming the file; nothing here panics on
/// file contents.
pub fn load(source: &DataSource) -> Result<Dataset> {
    let dir = &source.dir;
    if dir.exists() && !dir.is_dir() {
        return Err(Error::NotADir { path: dir.clone() });
    }
    if !dir.is_dir() {
        let hint = match source.kind {
            DatasetKind::Fashion if dir == Path::new(FASHION_SYSTEM_DIR) => {
                " (install Fashion-MNIST with `sudo apt-get install dataset-fashion-mnist`, \
                 or pass --data-dir)"
            }
            _ => "",
        };
        return Err(Error::MissingDir {
            path: dir.clone(),
            hint: hint.to_string(),
        });
    }
    let sums = guard::read_sums(dir)?;
    let cache = source.cache_dir.clone().unwrap_or_else(default_cache_dir);

    let kinds = [
        IdxKind::Images,
        IdxKind::Labels,
        IdxKind::Images,
        IdxKind::Labels,
    ];
    let mut checked = Vec::with_capacity(4);
    for (name, kind) in FILE_NAMES.iter().zip(kinds) {
        checked.push(guard::prepare(dir, name, kind, sums.as_ref(), &cache)?);
    }
    for (split, pair, expected) in [
        ("training", &checked[0..2], TRAIN_LEN),
        ("test", &checked[2..4], TEST_LEN),
    ] {
        let (img, lbl) = (&pair[0], &pair[1]);
        if img.count != lbl.count {
            return Err(Error::CountMismatch {
                images: img.source.clone(),
                n_images: img.count,
                labels: lbl.source.clone(),
                n_labels: lbl.count,
            });
        }
        if img.count as usize != expected {
            return Err(Error::WrongCount {
                path: img.source.clone(),
                split,
                found: img.count,
                expected,
            });
        }
    }

    let path_str = |p: &Path| -> Result<String> {
        p.to_str()
            .map(str::to_owned)
            .ok_or_else(|| Error::NonUtf8Path {
                path: p.to_path_buf(),
            })
    };
    let names = checked
        .iter()
        .map(|c| path_str(&c.readable))
        .collect::<Result<Vec<_>>>()?;
    // Absolute file names override the base path in the `mnist` crate's `Path::join`.
    let m = mnist::MnistBuilder::new()
        .base_path("")
        .training_images_filename(&names[0])
        .training_labels_filename(&names[1])
        .test_images_filename(&names[2])
        .test_labels_filename(&names[3])
        .label_format_digit()
        .training_set_length(TRAIN_LEN as u32)
        .validation_set_length(0)
        .test_set_length(TEST_LEN as u32)
        .finalize();
    let split = |images: Vec<u8>, labels: Vec<u8>, path: &Path| {
        // The guard has checked sizes and labels; this re-check keeps the invariant local.
        Split::from_raw(images, labels).ok_or_else(|| Error::BadLength {
            path: path.to_path_buf(),
            expected: 0,
            actual: 0,
        })
    };
    Ok(Dataset {
        kind: source.kind,
        train: split(m.trn_img, m.trn_lbl, &checked[0].source)?,
        test: split(m.tst_img, m.tst_lbl, &checked[2].source)?,
    })
}
