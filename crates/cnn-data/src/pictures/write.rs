//! Writing a split out as class folders of pictures: a dataset in IDX files (MNIST, say)
//! becomes the layout [`load_pictures`](super::load_pictures) reads.

use std::io::Write;
use std::path::{Path, PathBuf};

use image::{ExtendedColorType, ImageFormat};

use crate::{Error, Result, Split};

/// Writes every image of `split` to `dir/<class name>/<index>.<ext>` (`index` its position
/// in the split, five digits or more) in `format` (PNG or JPEG, say), on all cores; returns
/// how many were written.
///
/// Folders are created; an existing file is never replaced ([`Error::PictureExists`]), so
/// writing into a folder that holds pictures already fails without touching them. Images of
/// 1 channel are written as grayscale, of 3 as RGB.
///
/// ```no_run
/// use cnn_data::{DataSource, DatasetKind, pictures::write_class_folders};
/// let mnist = cnn_data::load(&DataSource::new("assets/mnist", DatasetKind::Mnist))?;
/// let names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];
/// write_class_folders(&mnist.test, &names, "digits/test".as_ref(), image::ImageFormat::Png)?;
/// # Ok::<(), cnn_data::Error>(())
/// ```
pub fn write_class_folders<S: AsRef<str>>(
    split: &Split,
    class_names: &[S],
    dir: &Path,
    format: ImageFormat,
) -> Result<usize> {
    if class_names.len() != split.classes() {
        return Err(Error::ClassNameCount {
            given: class_names.len(),
            classes: split.classes(),
        });
    }
    if !matches!(split.channels(), 1 | 3) {
        return Err(Error::PictureOption {
            field: "channels",
            value: split.channels().to_string(),
            reason: "pictures are written with 1 (grayscale) or 3 (RGB) channels",
        });
    }
    let ext = format.extensions_str().first().copied().unwrap_or("img");
    let mut folders = Vec::with_capacity(class_names.len());
    for name in class_names {
        let folder = class_folder(dir, name.as_ref())?;
        std::fs::create_dir_all(&folder).map_err(|source| Error::Write {
            path: folder.clone(),
            source,
        })?;
        folders.push(folder);
    }
    let indices: Vec<usize> = (0..split.len()).collect();
    let results = super::decode::par_map(&indices, |&i| {
        let path = folders[usize::from(split.label(i))].join(format!("{i:05}.{ext}"));
        write_one(split, i, &path, format)
    });
    results.into_iter().collect::<Result<Vec<()>>>()?;
    Ok(split.len())
}

/// `dir/name`, for a name that is one plain folder name.
fn class_folder(dir: &Path, name: &str) -> Result<PathBuf> {
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\'])
        && !name.starts_with('.');
    if !plain {
        return Err(Error::BadClassFolder {
            path: dir.join(name),
            reason: "a class name must be a plain folder name (no slash, not starting with a dot)",
        });
    }
    Ok(dir.join(name))
}

/// `planes` (`channels x height x width` bytes, 1 or 3 channels) encoded as a picture file in
/// `format`; `path` only names it in errors.
pub fn encode_planes(
    planes: &[u8],
    [c, h, w]: [usize; 3],
    format: ImageFormat,
    path: &Path,
) -> Result<Vec<u8>> {
    let color = match c {
        1 => ExtendedColorType::L8,
        3 => ExtendedColorType::Rgb8,
        channels => {
            return Err(Error::PictureOption {
                field: "channels",
                value: channels.to_string(),
                reason: "pictures are written with 1 (grayscale) or 3 (RGB) channels",
            });
        }
    };
    // Pictures interleave channels; a split keeps them as planes.
    let plane = h * w;
    let interleaved: Vec<u8> = (0..plane * c)
        .map(|k| planes.get((k % c) * plane + k / c).copied().unwrap_or(0))
        .collect();
    let mut bytes = Vec::new();
    image::write_buffer_with_format(
        &mut std::io::Cursor::new(&mut bytes),
        &interleaved,
        w as u32,
        h as u32,
        color,
        format,
    )
    .map_err(|source| Error::ImageWrite {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(bytes)
}

fn write_one(split: &Split, i: usize, path: &Path, format: ImageFormat) -> Result<()> {
    let bytes = encode_planes(split.image(i), split.image_shape(), format, path)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::AlreadyExists => Error::PictureExists {
                path: path.to_path_buf(),
            },
            _ => Error::Write {
                path: path.to_path_buf(),
                source,
            },
        })?;
    file.write_all(&bytes).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })
}
