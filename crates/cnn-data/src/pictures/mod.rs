//! Folders of pictures as a dataset: `train/` and `test/`, each with one folder per class, the
//! layout torchvision's `ImageFolder` and Keras's `image_dataset_from_directory` read.
//!
//! ```text
//! my_data/
//!   train/cat/001.jpg  train/cat/002.png ...  train/dog/...
//!   test/cat/...       test/dog/...
//! ```
//!
//! Class names are the folder names, sorted; a label is the class's position. Pictures are the
//! files whose extension the `image` crate decodes (PNG, JPEG, BMP, GIF, WebP); other files
//! (`.DS_Store`, `Thumbs.db`, a `README`, hidden files, nested folders) are skipped and
//! counted. Each picture is read upright (EXIF orientation), brought to one size and to
//! grayscale or RGB, and kept as bytes (pixel / 255 happens per batch, as for IDX data). The
//! decoded pictures are cached in one file keyed by the file list (names, sizes, modification
//! times) and the settings, so a second load reads one file instead of decoding again.
//!
//! ```no_run
//! use cnn_data::pictures::{PictureOptions, load_pictures};
//! let opts = PictureOptions { channels: 3, size: Some((32, 32)), ..PictureOptions::default() };
//! let (data, report) = load_pictures("my_data".as_ref(), &opts, None)?;
//! assert_eq!(data.train.image_shape(), [3, 32, 32]);
//! println!("{} classes, {} files skipped", data.classes(), report.other_files);
//! # Ok::<(), cnn_data::Error>(())
//! ```

mod cache;
mod decode;
mod scan;
mod write;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use decode::{load_picture, picture_to_planes};
/// The picture formats of [`write_class_folders`] and [`encode_planes`] (the `image` crate's).
pub use image::ImageFormat;
pub use write::{encode_planes, write_class_folders};

use crate::{Dataset, Error, Result, Split};

/// How a picture is brought to the chosen size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    /// Scaled to the size, whatever its aspect ratio (torchvision's `Resize((h, w))`, Keras's
    /// default): no pixel is spent on padding.
    #[default]
    Stretch,
    /// Scaled to fit inside the size keeping its aspect ratio, centred, the rest black.
    Pad,
}

impl Fit {
    /// The fit called `name` (`stretch`, `pad`), if any.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "stretch" => Some(Fit::Stretch),
            "pad" => Some(Fit::Pad),
            _ => None,
        }
    }

    /// Its name, as given on command lines.
    pub fn name(self) -> &'static str {
        match self {
            Fit::Stretch => "stretch",
            Fit::Pad => "pad",
        }
    }
}

/// What a network sees of one picture: its channels (1, grayscale; 3, RGB), its size and
/// how it got there. Recorded with a run, so a prediction prepares a new picture the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PictureFormat {
    /// 1 (grayscale) or 3 (RGB).
    pub channels: usize,
    /// Height, in pixels.
    pub height: u32,
    /// Width, in pixels.
    pub width: u32,
    /// How pictures of another size are brought to this one.
    pub fit: Fit,
}

impl PictureFormat {
    /// `[channels, height, width]`, the shape of one image in a [`Split`].
    pub fn shape(&self) -> [usize; 3] {
        [self.channels, self.height as usize, self.width as usize]
    }
}

/// How to read a folder of pictures.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PictureOptions {
    /// `(height, width)` every picture is brought to; `None` takes the one size all the
    /// pictures share (an error when they differ). Default `None`.
    pub size: Option<(u32, u32)>,
    /// 1 (grayscale: the `image` crate's luma, Rec. 709 weights) or 3 (RGB); transparency is
    /// dropped. Default 1.
    pub channels: usize,
    /// How a picture of another size is brought to `size`. Default [`Fit::Stretch`].
    pub fit: Fit,
    /// Skip the pictures that cannot be read (counted and named in the
    /// [`PictureReport`]) instead of failing on the first. Default `false`.
    #[serde(default)]
    pub skip_bad: bool,
}

impl Default for PictureOptions {
    fn default() -> Self {
        Self {
            size: None,
            channels: 1,
            fit: Fit::Stretch,
            skip_bad: false,
        }
    }
}

impl PictureOptions {
    /// Checks the channels (1 or 3) and the size (each side 1 to
    /// [`MAX_IMAGE_SIDE`](crate::MAX_IMAGE_SIDE)).
    pub fn validate(&self) -> Result<()> {
        if !matches!(self.channels, 1 | 3) {
            return Err(Error::PictureOption {
                field: "channels",
                value: self.channels.to_string(),
                reason: "must be 1 (grayscale) or 3 (RGB)",
            });
        }
        if let Some((h, w)) = self.size {
            let side = 1..=crate::MAX_IMAGE_SIDE;
            if !side.contains(&h) || !side.contains(&w) {
                return Err(Error::PictureOption {
                    field: "image_size",
                    value: format!("{h}x{w}"),
                    reason: "each side must be from 1 to 4096 pixels",
                });
            }
        }
        Ok(())
    }
}

/// Where the decoded pictures came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheUse {
    /// Read from this cache file: no picture was decoded.
    Read(PathBuf),
    /// Decoded, and cached in this file for the next load.
    Written(PathBuf),
    /// Decoded, but the cache file could not be written (the reason); the next load
    /// decodes again.
    NotWritten(String),
}

/// What a load found beside the dataset itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PictureReport {
    /// The format every picture was brought to.
    pub format: PictureFormat,
    /// Pictures read, training and test.
    pub pictures: [usize; 2],
    /// Files skipped because they are not pictures (by extension), hidden or folders.
    pub other_files: usize,
    /// Pictures skipped because they could not be read (with `skip_bad`), the first few.
    pub bad: Vec<PathBuf>,
    /// How many pictures were skipped as bad in all.
    pub bad_count: usize,
    /// Whether the cache served this load.
    pub cache: CacheUse,
}

/// The folder holds `train/` and `test/` as pictures, not IDX files: it has a `train`
/// folder.
pub fn is_picture_folder(dir: &Path) -> bool {
    dir.join("train").is_dir()
}

/// Most bytes the decoded pictures may take (16 GiB): a folder too big for memory is one
/// error before decoding, not the kernel's out-of-memory kill half-way.
pub const MAX_DECODED_BYTES: u64 = 16 << 30;

/// Loads the folder of pictures `dir` (see the [module documentation](self)); `cache_dir`
/// holds the decoded copy (`None`: [`default_cache_dir`](crate::default_cache_dir)).
pub fn load_pictures(
    dir: &Path,
    opts: &PictureOptions,
    cache_dir: Option<&Path>,
) -> Result<(Dataset, PictureReport)> {
    opts.validate()?;
    let scan = scan::scan(dir, opts.skip_bad)?;
    let cache_dir = cache_dir.map_or_else(crate::default_cache_dir, Path::to_path_buf);
    let key = scan.key(opts);
    let cache_file = cache::file_for(&cache_dir, &key);
    if let Some(hit) = cache::read(&cache_file, &key) {
        return Ok(hit);
    }
    let decoded = decode::decode_all(dir, scan, key, opts)?;
    let cache = cache::write(&cache_file, &decoded);
    let report = decoded.report(cache);
    let data = decoded.into_dataset()?;
    Ok((data, report))
}

/// Both splits, decoded, with what the load found on the way.
pub(crate) struct Decoded {
    pub(crate) key: String,
    pub(crate) format: PictureFormat,
    pub(crate) class_names: Vec<String>,
    pub(crate) train: (Vec<u8>, Vec<u8>),
    pub(crate) test: (Vec<u8>, Vec<u8>),
    pub(crate) other_files: usize,
    pub(crate) bad: Vec<PathBuf>,
    pub(crate) bad_count: usize,
}

impl Decoded {
    fn report(&self, cache: CacheUse) -> PictureReport {
        PictureReport {
            format: self.format,
            pictures: [self.train.1.len(), self.test.1.len()],
            other_files: self.other_files,
            bad: self.bad.clone(),
            bad_count: self.bad_count,
            cache,
        }
    }

    fn into_dataset(self) -> Result<Dataset> {
        let (shape, classes) = (self.format.shape(), self.class_names.len());
        Dataset::new(
            Split::with_shape(self.train.0, self.train.1, shape, classes)?,
            Split::with_shape(self.test.0, self.test.1, shape, classes)?,
            self.class_names,
        )
    }
}
