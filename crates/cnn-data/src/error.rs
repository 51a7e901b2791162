//! The error type of the data crate: every variant names the file or folder at fault.

use std::path::PathBuf;

/// Errors from loading or building a dataset.
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
    /// Reading a file failed.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Writing a file failed.
    #[error("cannot write {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A `.gz` file is not valid gzip, or is cut short.
    #[error("{path} is not a valid gzip file")]
    BadGzip {
        /// The file.
        path: PathBuf,
        /// What the decoder said.
        #[source]
        source: std::io::Error,
    },
    /// A decompressed file is larger than accepted.
    #[error("{path} decompresses to more than {limit} bytes; refusing it")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit, in bytes.
        limit: u64,
    },
    /// `SHA256SUMS.raw` is larger than any checksum file of four lines.
    #[error("{path} is larger than {limit} bytes; a checksum file holds a few lines")]
    SumsTooLarge {
        /// The file.
        path: PathBuf,
        /// The limit, in bytes.
        limit: u64,
    },
    /// A header implies a file larger than accepted (checked before reading the items).
    #[error("{path}: its header implies {implied} bytes, more than the {limit} accepted")]
    HeaderTooLarge {
        /// The file.
        path: PathBuf,
        /// Bytes the header implies.
        implied: u64,
        /// The limit, in bytes.
        limit: u64,
    },
    /// A file holds more bytes than its header implies (reading stopped there).
    #[error(
        "{path} holds more than the {expected} bytes its header implies (padded, or a gzip bomb); refusing it"
    )]
    Padded {
        /// The file.
        path: PathBuf,
        /// Bytes the header implies.
        expected: u64,
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
    /// The image dimensions in the header are zero or too large.
    #[error("{path} holds {rows}x{cols} images; each side must be from 1 to {max}")]
    BadDimensions {
        /// The file.
        path: PathBuf,
        /// Rows in the header.
        rows: u32,
        /// Columns in the header.
        cols: u32,
        /// Largest side accepted.
        max: u32,
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
    /// Training and test images differ in size.
    #[error(
        "{train} holds {train_rows}x{train_cols} images but {test} holds {test_rows}x{test_cols}; training and test images must have one size"
    )]
    SizeMismatch {
        /// The training image file.
        train: PathBuf,
        /// Rows of training images.
        train_rows: usize,
        /// Columns of training images.
        train_cols: usize,
        /// The test image file.
        test: PathBuf,
        /// Rows of test images.
        test_rows: usize,
        /// Columns of test images.
        test_cols: usize,
    },
    /// A split file holds no items.
    #[error("{path} holds no items")]
    NoItems {
        /// The file.
        path: PathBuf,
    },
    /// A label is not below the number of classes named in `classes.txt`.
    #[error("{path}: label {label} at item {index} is outside the {classes} classes of {names}")]
    LabelOutsideClasses {
        /// The label file.
        path: PathBuf,
        /// Index of the item.
        index: usize,
        /// The label read.
        label: u8,
        /// Number of classes.
        classes: usize,
        /// The `classes.txt` file.
        names: PathBuf,
    },
    /// `classes.txt` is empty, or names more than 256 classes or an empty class.
    #[error("{path}: {reason}")]
    BadClassNames {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
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
    /// The `mnist` crate failed on a file the guard had accepted (it changed in between).
    #[error("{path} changed while it was being read (or cannot be read as MNIST); load again")]
    ReaderFailed {
        /// The file.
        path: PathBuf,
    },
    /// The bytes the `mnist` crate returned differ from those the guard verified.
    #[error(
        "{path} changed while it was being read (its contents no longer match what was checked); load again"
    )]
    ReaderMismatch {
        /// The file.
        path: PathBuf,
    },
    /// Pixels and labels given in memory do not fit together.
    #[error(
        "{pixels} pixel values do not make {items} images of shape {shape:?} (channels, rows, columns)"
    )]
    SplitLength {
        /// Pixel values given.
        pixels: usize,
        /// Labels given.
        items: usize,
        /// Channels, rows and columns per image.
        shape: [usize; 3],
    },
    /// A class to keep is not one of the split's.
    #[error("class {class} is not one of the split's {classes} classes")]
    NoSuchClass {
        /// The class asked for.
        class: u8,
        /// Classes of the split.
        classes: usize,
    },
    /// A class to keep is named twice.
    #[error("class {class} is given twice in the classes to keep")]
    ClassTwice {
        /// The class.
        class: u8,
    },
    /// IDX image files hold one channel.
    #[error("{path}: IDX files hold grayscale images; this split has {channels} channels")]
    IdxChannels {
        /// The image file that was to be written.
        path: PathBuf,
        /// Channels of the split.
        channels: usize,
    },
    /// The two splits of a dataset differ in image shape or class count.
    #[error(
        "the training images ({train:?}, {train_classes} classes) and the test images ({test:?}, {test_classes} classes) differ"
    )]
    SplitsDiffer {
        /// Image shape of the training split.
        train: [usize; 3],
        /// Classes of the training split.
        train_classes: usize,
        /// Image shape of the test split.
        test: [usize; 3],
        /// Classes of the test split.
        test_classes: usize,
    },
    /// A dataset was given another number of class names than it has classes.
    #[error("{given} class names given for {classes} classes")]
    ClassNameCount {
        /// Names given.
        given: usize,
        /// Classes of the splits.
        classes: usize,
    },
    /// A label given in memory is not below the number of classes.
    #[error("label {label} at item {index} is not below the {classes} classes")]
    SplitLabel {
        /// Index of the item.
        index: usize,
        /// The label.
        label: u8,
        /// Number of classes.
        classes: usize,
    },
    /// A PNG or JPEG file lacks its end marker: cut short, as by an interrupted download.
    #[error(
        "{path}: the {format} file is cut short (no end marker); it may be an incomplete download"
    )]
    CutShort {
        /// The picture.
        path: PathBuf,
        /// Its format.
        format: &'static str,
    },
    /// A picture holds no ink: nothing stands out from the page.
    #[error("{path}: no ink found (blank page?)")]
    NoInk {
        /// The picture.
        path: PathBuf,
    },
    /// A picture file is empty.
    #[error("{path}: the file is empty")]
    ImageEmpty {
        /// The picture.
        path: PathBuf,
    },
    /// A picture file is in no format the `image` crate knows.
    #[error("{path}: not an image (unknown format)")]
    UnknownImageFormat {
        /// The picture.
        path: PathBuf,
    },
    /// A picture file cannot be decoded.
    #[error("{path}: not a valid image")]
    ImageDecode {
        /// The picture.
        path: PathBuf,
        /// What the decoder said.
        #[source]
        source: image::ImageError,
    },
    /// A picture is larger than [`crate::preprocess::MAX_IMAGE_PIXELS`], per its header.
    #[error("{path}: {width}x{height} is above the limit of {limit} pixels; scale it down first")]
    ImageTooLarge {
        /// The picture.
        path: PathBuf,
        /// Width from the header.
        width: u32,
        /// Height from the header.
        height: u32,
        /// The limit, in pixels.
        limit: u64,
    },
    /// A picture's header gives it no pixels.
    #[error("{path}: the image has no pixels")]
    ImageNoPixels {
        /// The picture.
        path: PathBuf,
    },
    /// A preprocessed image does not hold 28x28 pixels.
    #[error("{path}: a preprocessed image holds {len} pixels, not 784")]
    PreprocessedSize {
        /// Where it was to be written.
        path: PathBuf,
        /// Pixels it holds.
        len: usize,
    },
    /// Writing a picture failed.
    #[error("cannot write {path}")]
    ImageWrite {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: image::ImageError,
    },
    /// A folder of pictures has `train/` but no `test/` beside it.
    #[error(
        "{path} does not exist: a folder of pictures holds train/ and test/, each with one folder per class"
    )]
    NoTestFolder {
        /// The missing `test/` folder.
        path: PathBuf,
    },
    /// `train/` or `test/` holds no class folders.
    #[error("{path} holds no class folders (one folder of pictures per class)")]
    NoClassFolders {
        /// The folder.
        path: PathBuf,
    },
    /// `train/` or `test/` holds one class folder.
    #[error("{path} holds a single class folder, `{name}`; a classifier needs at least two")]
    OneClassFolder {
        /// The folder.
        path: PathBuf,
        /// The one class.
        name: String,
    },
    /// More class folders than a label byte can number.
    #[error("{path} holds {count} class folders, more than the 256 classes a label byte can name")]
    TooManyClasses {
        /// The folder.
        path: PathBuf,
        /// Class folders found.
        count: usize,
    },
    /// `train/` and `test/` name different classes.
    #[error("the class folders of {train} and {test} differ: {differences}")]
    ClassFoldersDiffer {
        /// The `train/` folder.
        train: PathBuf,
        /// The `test/` folder.
        test: PathBuf,
        /// The classes found on one side only, as a list.
        differences: String,
    },
    /// A class folder's name cannot name a class.
    #[error("{path}: {reason}")]
    BadClassFolder {
        /// The class folder.
        path: PathBuf,
        /// Why.
        reason: &'static str,
    },
    /// A class folder holds no pictures (or only pictures skipped as bad).
    #[error("class folder {path} holds no pictures{}", skipped(*other))]
    EmptyClass {
        /// The class folder.
        path: PathBuf,
        /// Files there that are not pictures, or were skipped.
        other: usize,
    },
    /// Pictures of different sizes, and no size to bring them to.
    #[error(
        "pictures differ in size: {first} is {}x{} but {other} is {}x{}; give an image size to bring them all to one",
        first_size.0, first_size.1, other_size.0, other_size.1
    )]
    MixedSizes {
        /// The first picture.
        first: PathBuf,
        /// Its width and height.
        first_size: (u32, u32),
        /// A picture of another size.
        other: PathBuf,
        /// Its width and height.
        other_size: (u32, u32),
    },
    /// A picture-loading option is out of range.
    #[error("invalid {field} {value}: {reason}")]
    PictureOption {
        /// The option (`channels`, `image_size`).
        field: &'static str,
        /// The value given.
        value: String,
        /// What is accepted.
        reason: &'static str,
    },
    /// The decoded pictures would not fit in memory.
    #[error(
        "{path}: {pictures} pictures of {}x{}x{} take {:.1} GB decoded, more than the {} GB allowed; choose a smaller image size",
        shape[0], shape[1], shape[2], *bytes as f64 / 1e9, limit >> 30
    )]
    PicturesTooLarge {
        /// The data folder.
        path: PathBuf,
        /// Pictures found.
        pictures: usize,
        /// Each picture's `[channels, height, width]`.
        shape: [usize; 3],
        /// Bytes they take.
        bytes: u64,
        /// The limit, in bytes.
        limit: u64,
    },
    /// A file to be written already exists.
    #[error("{path} already exists; writing pictures never replaces a file")]
    PictureExists {
        /// The file.
        path: PathBuf,
    },
    /// A path is not valid UTF-8 (the `mnist` crate takes `&str` paths).
    #[error("path {path} is not valid UTF-8")]
    NonUtf8Path {
        /// The path.
        path: PathBuf,
    },
}

/// " (3 other files skipped)", or nothing for none.
fn skipped(n: usize) -> String {
    match n {
        0 => String::new(),
        1 => " (1 other file skipped)".into(),
        n => format!(" ({n} other files skipped)"),
    }
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, Error>;
