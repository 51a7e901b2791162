//! Loading and validation of datasets: MNIST-format (IDX) files (MNIST, Fashion-MNIST, or
//! your own) and folders of pictures, one folder per class ([`pictures`]).
//!
//! The four IDX files of a dataset (raw or `.gz`) are checked by a guard of our own before
//! anything uses them: magic numbers, image sides, lengths against headers, and
//! `SHA256SUMS.raw` where the folder has one. Counts, image size and the number of classes
//! come from the files (and an optional `classes.txt` naming the classes), not from
//! constants. Standard MNIST-shaped sets (60,000 + 10,000 images of 28x28) are read by the
//! [`mnist`] crate, fenced so that none of its panics escapes and its bytes are checked
//! against the verified digests; every other shape is read by the guard's own reader.
//!
//! Images stay `u8` in memory (47 MB for MNIST); callers convert one batch at a time.
//!
//! ```no_run
//! use cnn_data::{DataSource, DatasetKind};
//! let data = cnn_data::load(&DataSource::new("assets/mnist", DatasetKind::Mnist))?;
//! assert_eq!((data.train.len(), data.train.rows(), data.classes()), (60_000, 28, 10));
//! # Ok::<(), cnn_data::Error>(())
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod atomic;
mod error;
mod guard;
mod idx;
mod mnist_reader;
pub mod picture;
pub mod pictures;
pub mod preprocess;
mod split;

use std::path::{Path, PathBuf};

pub use error::{Error, Result};
pub use guard::{
    IdxHeader, IdxKind, MAX_DECOMPRESSED_BYTES, MAX_IMAGE_SIDE, check_idx, decompress_gz,
    decompress_gz_bytes, read_text,
};
pub use split::Split;

/// Side of MNIST's images, in pixels (also the size [`preprocess`] produces).
pub const MNIST_SIDE: usize = 28;
/// Pixels of an MNIST image.
pub const MNIST_PIXELS: usize = MNIST_SIDE * MNIST_SIDE;
/// Training items of MNIST and Fashion-MNIST.
pub const MNIST_TRAIN_LEN: usize = 60_000;
/// Test items of MNIST and Fashion-MNIST.
pub const MNIST_TEST_LEN: usize = 10_000;

/// Where Debian's `dataset-fashion-mnist` package installs Fashion-MNIST.
pub const FASHION_SYSTEM_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Optional file beside the data naming the classes, one name a line, by label.
pub const CLASSES_FILE: &str = "classes.txt";

/// Which dataset a folder holds; decides the class names when the folder names none, and
/// is recorded with a run under its [`DatasetKind::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DatasetKind {
    /// Handwritten digits 0-9.
    #[default]
    Mnist,
    /// Zalando's Fashion-MNIST: ten kinds of clothing.
    Fashion,
    /// A folder of one's own: classes by number, or named by its `classes.txt`.
    Own,
}

impl DatasetKind {
    /// Human-readable names of ten classes, by label: MNIST's digits (also a folder of
    /// one's own, whose labels are numbers) or Fashion-MNIST's garments.
    pub fn class_names(self) -> [&'static str; 10] {
        match self {
            DatasetKind::Mnist | DatasetKind::Own => {
                ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]
            }
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

    /// Short lowercase name, as recorded with a run and given on command lines (`mnist`,
    /// `fashion`, `own`).
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::Fashion => "fashion",
            DatasetKind::Own => "own",
        }
    }

    /// The name a reader sees in titles and messages: `MNIST`, `Fashion-MNIST`, `own data`.
    pub fn title(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "MNIST",
            DatasetKind::Fashion => "Fashion-MNIST",
            DatasetKind::Own => "own data",
        }
    }

    /// The kind called `name` ([`DatasetKind::name`], or `fashion-mnist`), if any.
    ///
    /// ```
    /// use cnn_data::DatasetKind;
    /// assert_eq!(DatasetKind::from_name("fashion-mnist"), Some(DatasetKind::Fashion));
    /// assert_eq!(DatasetKind::from_name("cifar"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "mnist" => Some(DatasetKind::Mnist),
            "fashion" | "fashion-mnist" => Some(DatasetKind::Fashion),
            "own" => Some(DatasetKind::Own),
            _ => None,
        }
    }
}

impl std::fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Which reader turns the checked files into a [`Split`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reader {
    /// The `mnist` crate for the standard 60,000 + 10,000 images of 28x28, the guard's own
    /// reader for every other shape.
    #[default]
    Auto,
    /// The guard's own reader always (no decompressed copies written to the cache).
    Own,
}

/// A folder of the four MNIST-format files, and how to treat it.
#[derive(Debug, Clone)]
pub struct DataSource {
    /// Folder holding `train-images-idx3-ubyte` and the three others, raw or `.gz`.
    pub dir: PathBuf,
    /// Which dataset it is (class names when the folder has no `classes.txt`).
    pub kind: DatasetKind,
    /// Where decompressed copies of `.gz` files go for the `mnist` crate; `None` picks
    /// [`default_cache_dir`].
    pub cache_dir: Option<PathBuf>,
    /// Which reader to use.
    pub reader: Reader,
    /// How to read the folder when it holds pictures in class folders (see [`pictures`]).
    pub pictures: pictures::PictureOptions,
}

impl DataSource {
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
            reader: Reader::Auto,
            pictures: pictures::PictureOptions::default(),
        }
    }

    /// Read a folder of pictures with `opts`.
    pub fn with_pictures(mut self, opts: pictures::PictureOptions) -> Self {
        self.pictures = opts;
        self
    }

    /// Use `reader` instead of [`Reader::Auto`].
    pub fn with_reader(mut self, reader: Reader) -> Self {
        self.reader = reader;
        self
    }

    /// Use `dir` for decompressed copies instead of the default cache.
    pub fn with_cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }
}

/// Cache folder for decompressed files: `$CNN_DATA_CACHE`, else `$XDG_CACHE_HOME/cnn-mnist`,
/// else `$HOME/.cache/cnn-mnist`, else the system temporary folder.
///
/// An empty `CNN_DATA_CACHE` and a relative `XDG_CACHE_HOME` are ignored (the XDG spec says
/// to), so the cache never lands in the current folder.
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CNN_DATA_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| Path::new(d).is_absolute()) {
        return PathBuf::from(dir).join("cnn-mnist");
    }
    if let Some(home) = std::env::var_os("HOME") {
        return PathBuf::from(home).join(".cache/cnn-mnist");
    }
    std::env::temp_dir().join("cnn-mnist")
}

/// A dataset: a training and a test split of one image shape and class count, and the
/// name of each class.
///
/// ```
/// use cnn_data::{Dataset, Split};
/// let train = Split::new(vec![0; 3 * 4], vec![0, 1, 1], 2, 2, 2)?;
/// let test = train.take(2);
/// let data = Dataset::new(train, test, ["cat", "dog"])?;
/// assert_eq!((data.classes(), data.class_names[1].as_str()), (2, "dog"));
/// # Ok::<(), cnn_data::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Training items.
    pub train: Split,
    /// Test items.
    pub test: Split,
    /// Name of each class, by label.
    pub class_names: Vec<String>,
}

impl Dataset {
    /// A dataset of two splits of one image shape and class count, and one name per class
    /// (an empty list names the classes by their numbers, `"0"`, `"1"`, ...). Training
    /// records the names with the run, so predictions and figures can use them.
    pub fn new<S: Into<String>>(
        train: Split,
        test: Split,
        class_names: impl IntoIterator<Item = S>,
    ) -> Result<Self> {
        if (train.image_shape(), train.classes()) != (test.image_shape(), test.classes()) {
            return Err(Error::SplitsDiffer {
                train: train.image_shape(),
                train_classes: train.classes(),
                test: test.image_shape(),
                test_classes: test.classes(),
            });
        }
        let mut class_names: Vec<String> = class_names.into_iter().map(Into::into).collect();
        if class_names.is_empty() {
            class_names = (0..train.classes()).map(|c| c.to_string()).collect();
        }
        if class_names.len() != train.classes() {
            return Err(Error::ClassNameCount {
                given: class_names.len(),
                classes: train.classes(),
            });
        }
        Ok(Self {
            train,
            test,
            class_names,
        })
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.train.classes()
    }
}

/// The four files of a split pair, by their standard names.
pub const FILE_NAMES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// Loads and validates the dataset in `source.dir`: four IDX files, or (when it holds a
/// `train/` folder) class folders of pictures, read as [`pictures`] says.
///
/// Every malformed input ends in an [`Error`] naming the file; nothing here panics on
/// file contents.
pub fn load(source: &DataSource) -> Result<Dataset> {
    load_with_report(source).map(|(data, _)| data)
}

/// [`load`], with what reading a folder of pictures found (files skipped, the size chosen,
/// whether the cache served it); `None` for IDX files.
pub fn load_with_report(source: &DataSource) -> Result<(Dataset, Option<pictures::PictureReport>)> {
    check_dir(source)?;
    if pictures::is_picture_folder(&source.dir) {
        let (data, report) =
            pictures::load_pictures(&source.dir, &source.pictures, source.cache_dir.as_deref())?;
        return Ok((data, Some(report)));
    }
    idx::load_idx(source).map(|data| (data, None))
}

fn check_dir(source: &DataSource) -> Result<()> {
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
    Ok(())
}
