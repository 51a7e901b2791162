//! Reading one picture file safely: regular files only, the pixel limit checked from the
//! header before anything is decoded, EXIF orientation applied, files cut short refused.

use std::io::Read;
use std::path::Path;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};

use crate::{Error, Result};

/// Largest picture accepted, in pixels (50 megapixels), checked from the file's header before
/// decoding, so a huge or hostile file (a decompression bomb) cannot exhaust memory.
pub const MAX_IMAGE_PIXELS: u64 = 50_000_000;

type FileReader = ImageReader<std::io::BufReader<std::fs::File>>;

/// Opens a picture: a regular, non-empty file in a format the `image` crate reads (guessed
/// from its first bytes, not its name).
fn open(path: &Path) -> Result<(FileReader, ImageFormat)> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = crate::guard::regular_file(path)?;
    if meta.len() == 0 {
        return Err(Error::ImageEmpty {
            path: path.to_path_buf(),
        });
    }
    let reader = ImageReader::open(path)
        .map_err(io)?
        .with_guessed_format()
        .map_err(io)?;
    match reader.format() {
        Some(format) => Ok((reader, format)),
        None => Err(Error::UnknownImageFormat {
            path: path.to_path_buf(),
        }),
    }
}

/// Refuses a picture whose header claims no pixels or more than [`MAX_IMAGE_PIXELS`].
fn check_pixels(path: &Path, width: u32, height: u32) -> Result<()> {
    let pixels = u64::from(width) * u64::from(height);
    if pixels > MAX_IMAGE_PIXELS {
        return Err(Error::ImageTooLarge {
            path: path.to_path_buf(),
            width,
            height,
            limit: MAX_IMAGE_PIXELS,
        });
    }
    if pixels == 0 {
        return Err(Error::ImageNoPixels {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// Whether an EXIF orientation turns the picture by a quarter (width and height swap).
fn quarter_turn(o: Orientation) -> bool {
    matches!(
        o,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

/// A picture's width and height as a viewer shows it (after its EXIF orientation), read
/// from its header alone, with the checks of [`read_picture`] that need no decoding.
pub fn picture_size(path: &Path) -> Result<(u32, u32)> {
    let decode = |source| Error::ImageDecode {
        path: path.to_path_buf(),
        source,
    };
    let (reader, _) = open(path)?;
    let mut decoder = reader.into_decoder().map_err(decode)?;
    let (w, h) = decoder.dimensions();
    check_pixels(path, w, h)?;
    let turned = decoder.orientation().is_ok_and(quarter_turn);
    Ok(if turned { (h, w) } else { (w, h) })
}

/// Reads a picture in any format the `image` crate decodes, upright.
///
/// Only a regular file is read (a FIFO or a device would block or never end); its header's
/// size is checked against [`MAX_IMAGE_PIXELS`] before decoding; EXIF orientation is applied
/// (phones store pictures as the sensor saw them and every viewer turns them upright); a PNG
/// or JPEG cut short is refused rather than read with grey filling the missing part.
pub fn read_picture(path: &Path) -> Result<DynamicImage> {
    let decode = |source| Error::ImageDecode {
        path: path.to_path_buf(),
        source,
    };
    let (mut reader, format) = open(path)?;
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_IMAGE_PIXELS * 8);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(decode)?;
    let (w, h) = decoder.dimensions();
    check_pixels(path, w, h)?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(decode)?;
    img.apply_orientation(orientation);
    check_complete(path, Some(format))?;
    Ok(img)
}

/// Refuses a PNG or JPEG without its end marker: decoders fill a file cut short with grey
/// and succeed, and the grey would be read as part of the picture. The marker is found by
/// walking the file's structure, so data after it (padding, a motion photo's video) is
/// allowed.
fn check_complete(path: &Path, format: Option<ImageFormat>) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::io::BufReader::new(std::fs::File::open(path).map_err(io)?);
    let (name, complete) = match format {
        Some(ImageFormat::Jpeg) => ("JPEG", jpeg_complete(file)),
        Some(ImageFormat::Png) => ("PNG", png_complete(file)),
        _ => return Ok(()),
    };
    match complete {
        Ok(true) => Ok(()),
        Ok(false) => Err(Error::CutShort {
            path: path.to_path_buf(),
            format: name,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(Error::CutShort {
            path: path.to_path_buf(),
            format: name,
        }),
        Err(e) => Err(io(e)),
    }
}

/// Whether a PNG reaches its `IEND` chunk: chunk by chunk (length, type, data, CRC) after
/// the 8-byte signature.
fn png_complete(mut r: impl Read) -> std::io::Result<bool> {
    skip(&mut r, 8)?;
    loop {
        let mut head = [0u8; 8];
        r.read_exact(&mut head)?;
        if &head[4..] == b"IEND" {
            return Ok(true);
        }
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        skip(&mut r, u64::from(len) + 4)?;
    }
}

/// Whether a JPEG reaches its end-of-image marker (`FF D9`): segment by segment up to the
/// first scan (a thumbnail in the EXIF segment has one of its own), then the first `FF D9`
/// in the scans, where a data byte `FF` is always followed by `00` or a restart marker.
fn jpeg_complete(mut r: impl std::io::BufRead) -> std::io::Result<bool> {
    skip(&mut r, 2)?; // start of image
    loop {
        let mut byte = [0u8; 1];
        r.read_exact(&mut byte)?;
        if byte[0] != 0xFF {
            return Ok(false);
        }
        let mut code = 0xFF;
        while code == 0xFF {
            r.read_exact(&mut byte)?;
            code = byte[0];
        }
        match code {
            0xD9 => return Ok(true),
            0x01 | 0xD0..=0xD7 => continue,
            _ => {
                let mut len = [0u8; 2];
                r.read_exact(&mut len)?;
                skip(&mut r, u64::from(u16::from_be_bytes(len)).saturating_sub(2))?;
                if code == 0xDA {
                    break;
                }
            }
        }
    }
    let mut prev = 0u8;
    for byte in r.bytes() {
        let byte = byte?;
        if prev == 0xFF && byte == 0xD9 {
            return Ok(true);
        }
        prev = byte;
    }
    Ok(false)
}

/// Reads past `n` bytes, failing with `UnexpectedEof` when the file ends first.
fn skip(r: &mut impl Read, n: u64) -> std::io::Result<()> {
    let skipped = std::io::copy(&mut r.take(n), &mut std::io::sink())?;
    if skipped < n {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}
