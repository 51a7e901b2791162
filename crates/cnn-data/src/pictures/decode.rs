//! Decoding pictures into the bytes a network sees: one picture (for a prediction) or every
//! picture of a scanned folder, on all cores, straight into the dataset's buffers.

use std::path::{Path, PathBuf};

use image::imageops::{self, FilterType};
use image::{DynamicImage, ImageBuffer, Pixel};

use super::scan::{Entries, Scan};
use super::{Decoded, MAX_DECODED_BYTES, PictureFormat, PictureOptions};
use crate::picture::{picture_size, read_picture};
use crate::{Error, Result};

/// The resampling filter: `image`'s `Triangle` (bilinear, widened when shrinking so that every
/// source pixel counts, which keeps a large photo brought to 32x32 from aliasing), fast
/// enough to decode tens of thousands of pictures a second.
const FILTER: FilterType = FilterType::Triangle;

/// How many pictures the bad-picture list in a report names.
const BAD_NAMED: usize = 5;

/// Reads the picture at `path` and brings it to `format` (see [`picture_to_planes`]).
pub fn load_picture(path: &Path, format: &PictureFormat) -> Result<Vec<u8>> {
    Ok(picture_to_planes(read_picture(path)?, format))
}

/// A decoded picture brought to `format`: grayscale or RGB (transparency dropped), resized
/// with the `Triangle` filter as `format.fit` says, as `channels x height x width` bytes.
pub fn picture_to_planes(img: DynamicImage, format: &PictureFormat) -> Vec<u8> {
    let mut out = vec![0u8; format.shape().iter().product()];
    planes_into(img, format, &mut out);
    out
}

/// [`picture_to_planes`] written into `out` (`channels x height x width` bytes long).
fn planes_into(img: DynamicImage, format: &PictureFormat, out: &mut [u8]) {
    if format.channels == 3 {
        write_planes(&sized(img.into_rgb8(), format), out);
    } else {
        write_planes(&sized(img.into_luma8(), format), out);
    }
}

/// `img` at `format`'s size (itself when it has it already), as `format.fit` says.
fn sized<P: Pixel<Subpixel = u8> + 'static>(
    img: ImageBuffer<P, Vec<u8>>,
    format: &PictureFormat,
) -> ImageBuffer<P, Vec<u8>> {
    let (w, h) = (format.width, format.height);
    match format.fit {
        _ if img.dimensions() == (w, h) => img,
        super::Fit::Stretch => imageops::resize(&img, w, h, FILTER),
        super::Fit::Pad => {
            let (iw, ih) = (f64::from(img.width()), f64::from(img.height()));
            let scale = (f64::from(w) / iw).min(f64::from(h) / ih);
            let nw = ((iw * scale).round() as u32).clamp(1, w);
            let nh = ((ih * scale).round() as u32).clamp(1, h);
            let inner = imageops::resize(&img, nw, nh, FILTER);
            let mut canvas = ImageBuffer::new(w, h);
            imageops::replace(
                &mut canvas,
                &inner,
                i64::from((w - nw) / 2),
                i64::from((h - nh) / 2),
            );
            canvas
        }
    }
}

/// Interleaved pixels as planes: channel `k` of pixel `i` at `k * plane + i`.
fn write_planes<P: Pixel<Subpixel = u8>>(img: &ImageBuffer<P, Vec<u8>>, out: &mut [u8]) {
    let plane = (img.width() * img.height()) as usize;
    for (i, px) in img.pixels().enumerate() {
        for (k, &v) in px.channels().iter().enumerate() {
            out[k * plane + i] = v;
        }
    }
}

/// Decodes every picture of `scan`: the size from `opts` or the one all pictures share, then
/// each picture into its place in one buffer per split.
pub(crate) fn decode_all(
    dir: &Path,
    scan: Scan,
    key: String,
    opts: &PictureOptions,
) -> Result<Decoded> {
    let Scan {
        class_names,
        mut train,
        mut test,
        other_files,
        mut bad,
    } = scan;
    let (height, width) = match opts.size {
        Some(size) => size,
        None => common_size(&mut train, &mut test, opts.skip_bad, &mut bad)?,
    };
    let format = PictureFormat {
        channels: opts.channels,
        height,
        width,
        fit: opts.fit,
    };
    check_bytes(dir, train.len() + test.len(), &format)?;
    let train = decode_split(train, &format, opts.skip_bad, &mut bad)?;
    let test = decode_split(test, &format, opts.skip_bad, &mut bad)?;
    for (split, labels) in [("train", &train.1), ("test", &test.1)] {
        // Skipped pictures may have emptied a class folder that held only bad ones.
        if let Some(name) = (0..class_names.len())
            .find(|&c| !labels.contains(&(c as u8)))
            .map(|c| &class_names[c])
        {
            return Err(Error::EmptyClass {
                path: dir.join(split).join(name),
                other: bad.len(),
            });
        }
    }
    let bad_count = bad.len();
    bad.truncate(BAD_NAMED);
    Ok(Decoded {
        key,
        format,
        class_names,
        train,
        test,
        other_files,
        bad,
        bad_count,
    })
}

/// The `(height, width)` every picture has, read from the headers; an error naming two
/// pictures when they differ.
fn common_size(
    train: &mut Entries,
    test: &mut Entries,
    skip_bad: bool,
    bad: &mut Vec<PathBuf>,
) -> Result<(u32, u32)> {
    let mut first: Option<(PathBuf, (u32, u32))> = None;
    for entries in [train, test] {
        let sizes = par_map(entries, |e| picture_size(&e.path));
        let mut keep = Vec::with_capacity(sizes.len());
        for (e, size) in entries.iter().zip(sizes) {
            let size = match size {
                Ok(size) => size,
                Err(_) if skip_bad => {
                    bad.push(e.path.clone());
                    keep.push(false);
                    continue;
                }
                Err(err) => return Err(err),
            };
            keep.push(true);
            match &first {
                None => first = Some((e.path.clone(), size)),
                Some((path, s)) if *s != size => {
                    return Err(Error::MixedSizes {
                        first: path.clone(),
                        first_size: *s,
                        other: e.path.clone(),
                        other_size: size,
                    });
                }
                Some(_) => {}
            }
        }
        let mut flags = keep.into_iter();
        entries.retain(|_| flags.next().unwrap_or(false));
    }
    // Every class folder held a picture, so some picture was sized unless all were bad.
    let (_, (w, h)) = first.ok_or_else(|| Error::EmptyClass {
        path: bad.first().cloned().unwrap_or_default(),
        other: bad.len(),
    })?;
    Ok((h, w))
}

/// Refuses a folder whose decoded pictures would not fit in [`MAX_DECODED_BYTES`].
fn check_bytes(dir: &Path, pictures: usize, format: &PictureFormat) -> Result<()> {
    let shape = format.shape();
    let bytes = (pictures as u64).saturating_mul(shape.iter().product::<usize>() as u64);
    if bytes > MAX_DECODED_BYTES {
        return Err(Error::PicturesTooLarge {
            path: dir.to_path_buf(),
            pictures,
            shape,
            bytes,
            limit: MAX_DECODED_BYTES,
        });
    }
    Ok(())
}

/// One split's images and labels. A picture that fails is an error (the first in the
/// split's order), or with `skip_bad` is left out and named in `bad`.
fn decode_split(
    entries: Entries,
    format: &PictureFormat,
    skip_bad: bool,
    bad: &mut Vec<PathBuf>,
) -> Result<(Vec<u8>, Vec<u8>)> {
    let per: usize = format.shape().iter().product();
    let mut images = Vec::new();
    images
        .try_reserve_exact(entries.len() * per)
        .map_err(|_| Error::PicturesTooLarge {
            path: PathBuf::from("the pictures"),
            pictures: entries.len(),
            shape: format.shape(),
            bytes: (entries.len() * per) as u64,
            limit: MAX_DECODED_BYTES,
        })?;
    images.resize(entries.len() * per, 0);
    let results = par_fill(&entries, &mut images, per, |e, slot| {
        read_picture(&e.path).map(|img| planes_into(img, format, slot))
    });
    let mut labels = Vec::with_capacity(entries.len());
    let mut kept = 0;
    for (i, (e, result)) in entries.iter().zip(results).enumerate() {
        match result {
            Ok(()) => {
                images.copy_within(i * per..(i + 1) * per, kept * per);
                labels.push(e.label);
                kept += 1;
            }
            Err(_) if skip_bad => bad.push(e.path.clone()),
            Err(err) => return Err(err),
        }
    }
    images.truncate(kept * per);
    Ok((images, labels))
}

/// Threads to decode on: every core the process may use.
fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// `f` of each item, on all cores, in order. Plain scoped threads over contiguous runs: the
/// work is one pass before training, and a thread pool crate would add a second pool beside
/// candle's for nothing.
pub(super) fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let run = items.len().div_ceil(threads()).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(run)
            .map(|chunk| s.spawn(|| chunk.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// Calls `f(item, slot)` for each item and its `per`-byte slot of `out`, on all cores.
fn par_fill<T: Sync>(
    items: &[T],
    out: &mut [u8],
    per: usize,
    f: impl Fn(&T, &mut [u8]) -> Result<()> + Sync,
) -> Vec<Result<()>> {
    let run = items.len().div_ceil(threads()).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(run)
            .zip(out.chunks_mut(run * per))
            .map(|(chunk, slots)| {
                let f = &f;
                s.spawn(move || {
                    chunk
                        .iter()
                        .zip(slots.chunks_mut(per))
                        .map(|(item, slot)| f(item, slot))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}
