//! Turns an arbitrary picture of a digit (photo, scan, drawing) into an MNIST-style 28x28 input.
//!
//! MNIST digits are white ink on black, fitted into a 20x20 box keeping their aspect ratio,
//! and centred by centre of mass in a 28x28 frame. [`to_mnist`] repeats those steps; pictures
//! of dark ink on a light page are inverted first.

use std::path::{Path, PathBuf};

use std::io::Read;

use image::metadata::Orientation;
use image::{
    DynamicImage, GrayImage, ImageDecoder, ImageFormat, ImageReader, Limits, imageops::FilterType,
};

use crate::{Error, MNIST_PIXELS as IMAGE_PIXELS, MNIST_SIDE as IMAGE_SIDE, Result};

/// Largest picture accepted, in pixels (50 megapixels), checked from the file's header before
/// decoding, so a huge or hostile file cannot exhaust memory.
pub const MAX_IMAGE_PIXELS: u64 = 50_000_000;

/// How much brighter than the page ink must be (in gray levels) to count as ink.
const MIN_CONTRAST: u8 = 40;

/// Side of the box the ink is scaled into, as in MNIST.
const INK_BOX: u32 = 20;

/// Reads a PNG, JPEG (or other format the `image` crate knows) as 8-bit grayscale.
pub fn read_gray(path: &Path) -> Result<GrayImage> {
    let p = || path.to_path_buf();
    let decode = |source| Error::ImageDecode { path: p(), source };
    let meta = crate::guard::regular_file(path)?;
    if meta.len() == 0 {
        return Err(Error::ImageEmpty { path: p() });
    }
    let open = || -> Result<ImageReader<std::io::BufReader<std::fs::File>>> {
        ImageReader::open(path)
            .map_err(|source| Error::Io {
                path: path.to_path_buf(),
                source,
            })?
            .with_guessed_format()
            .map_err(|source| Error::Io {
                path: path.to_path_buf(),
                source,
            })
    };
    let reader = open()?;
    let format = reader.format();
    if format.is_none() {
        return Err(Error::UnknownImageFormat { path: p() });
    }
    let (w, h) = reader.into_dimensions().map_err(decode)?;
    let pixels = u64::from(w) * u64::from(h);
    if pixels > MAX_IMAGE_PIXELS {
        return Err(Error::ImageTooLarge {
            path: p(),
            width: w,
            height: h,
            limit: MAX_IMAGE_PIXELS,
        });
    }
    if pixels == 0 {
        return Err(Error::ImageNoPixels { path: p() });
    }
    let mut reader = open()?;
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_IMAGE_PIXELS * 8);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(decode)?;
    // Phones store pictures as the sensor saw them and record the turn in EXIF; every
    // viewer shows them upright, so must we.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(decode)?;
    img.apply_orientation(orientation);
    check_complete(path, format)?;
    Ok(flatten(img))
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

/// Grayscale of a decoded picture. With transparency, it is laid on white paper; if that
/// leaves nothing to see (light ink drawn only through the alpha channel, as a transparent
/// canvas exports it), on black.
fn flatten(img: DynamicImage) -> GrayImage {
    if !img.color().has_alpha() {
        return img.into_luma8();
    }
    let rgba = img.into_rgba8();
    let over = |paper: f32| {
        GrayImage::from_fn(rgba.width(), rgba.height(), |x, y| {
            let [r, g, b, a] = rgba.get_pixel(x, y).0;
            let luma = 0.299 * f32::from(r) + 0.587 * f32::from(g) + 0.114 * f32::from(b);
            let a = f32::from(a) / 255.0;
            image::Luma([(luma * a + paper * (1.0 - a)).round() as u8])
        })
    };
    let on_white = over(255.0);
    let (lo, hi) = on_white
        .pixels()
        .fold((255u8, 0u8), |(lo, hi), p| (lo.min(p[0]), hi.max(p[0])));
    if hi.saturating_sub(lo) >= MIN_CONTRAST {
        on_white
    } else {
        over(0.0)
    }
}

/// A picture made ready for the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preprocessed {
    /// 784 pixels, white ink on black, row-major.
    pub pixels: Vec<u8>,
    /// Whether the picture was inverted (dark ink on a light page).
    pub inverted: bool,
}

/// MNIST-style preprocessing of a grayscale picture; `path` only names it in errors.
///
/// Steps: invert if the border (the page) is lighter than mid-grey; crop to the bounding box
/// of pixels brighter than a threshold; scale the longer side to 20 px keeping the aspect
/// ratio; paste into a 28x28 frame so the centre of mass sits at the centre.
pub fn to_mnist(img: &GrayImage, path: &Path) -> Result<Preprocessed> {
    let (w, h) = img.dimensions();
    let blank = || Error::NoInk {
        path: path.to_path_buf(),
    };
    if w == 0 || h == 0 {
        return Err(blank());
    }
    // The page colour is the median of the border pixels.
    let mut border: Vec<u8> = Vec::new();
    for x in 0..w {
        border.push(img.get_pixel(x, 0)[0]);
        border.push(img.get_pixel(x, h - 1)[0]);
    }
    for y in 0..h {
        border.push(img.get_pixel(0, y)[0]);
        border.push(img.get_pixel(w - 1, y)[0]);
    }
    border.sort_unstable();
    let page = border[border.len() / 2];
    let inverted = page > 127;
    let ink = |p: u8| if inverted { 255 - p } else { p };
    let page_ink = ink(page);
    let max = img.pixels().map(|p| ink(p[0])).max().unwrap_or(0);
    // Ink must stand out from the page; a small threshold above the page level crops noise.
    if max < page_ink.saturating_add(MIN_CONTRAST) {
        return Err(blank());
    }
    let threshold = page_ink + ((max - page_ink) / 10).max(8);
    let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
    for (x, y, p) in img.enumerate_pixels() {
        if ink(p[0]) > threshold {
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x);
            y1 = y1.max(y);
        }
    }
    if x1 < x0 || y1 < y0 {
        return Err(blank());
    }
    let (cw, ch) = (x1 - x0 + 1, y1 - y0 + 1);
    let mut crop = GrayImage::new(cw, ch);
    for (x, y, p) in crop.enumerate_pixels_mut() {
        // Subtract the page level so the background is exactly black, as in MNIST.
        let v = ink(img.get_pixel(x0 + x, y0 + y)[0]);
        p[0] = (f32::from(v.saturating_sub(page_ink)) * 255.0 / f32::from((max - page_ink).max(1)))
            .round() as u8;
    }
    let scale = f64::from(INK_BOX) / f64::from(cw.max(ch));
    let nw = ((f64::from(cw) * scale).round() as u32).clamp(1, INK_BOX);
    let nh = ((f64::from(ch) * scale).round() as u32).clamp(1, INK_BOX);
    let small = image::imageops::resize(&crop, nw, nh, FilterType::Triangle);
    // Centre of mass of the scaled ink.
    let (mut mass, mut mx, mut my) = (0f64, 0f64, 0f64);
    for (x, y, p) in small.enumerate_pixels() {
        let v = f64::from(p[0]);
        mass += v;
        mx += v * (f64::from(x) + 0.5);
        my += v * (f64::from(y) + 0.5);
    }
    if mass == 0.0 {
        return Err(blank());
    }
    let side = IMAGE_SIDE as f64;
    let place = |com: f64, len: u32| -> i64 {
        let off = (side / 2.0 - com).round() as i64;
        off.clamp(0, IMAGE_SIDE as i64 - i64::from(len))
    };
    let (ox, oy) = (place(mx / mass, nw), place(my / mass, nh));
    let mut pixels = vec![0u8; IMAGE_PIXELS];
    for (x, y, p) in small.enumerate_pixels() {
        let (tx, ty) = (ox + i64::from(x), oy + i64::from(y));
        if (0..IMAGE_SIDE as i64).contains(&tx) && (0..IMAGE_SIDE as i64).contains(&ty) {
            pixels[ty as usize * IMAGE_SIDE + tx as usize] = p[0];
        }
    }
    Ok(Preprocessed { pixels, inverted })
}

/// Reads and preprocesses one picture file.
pub fn load_image(path: &Path) -> Result<Preprocessed> {
    to_mnist(&read_gray(path)?, path)
}

/// `pixels` (`rows x cols`, one byte a pixel) as the bytes of a grayscale PNG, to write
/// wherever the caller chooses; `path` is only used in errors.
pub fn gray_png(pixels: &[u8], rows: usize, cols: usize, path: &Path) -> Result<Vec<u8>> {
    let img = GrayImage::from_raw(cols as u32, rows as u32, pixels.to_vec()).ok_or_else(|| {
        Error::PreprocessedSize {
            path: PathBuf::from(path),
            len: pixels.len(),
        }
    })?;
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|source| Error::ImageWrite {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(png)
}

/// The preprocessed 28x28 pixels scaled to `rows x cols` (a copy when that is 28x28), for a
/// network trained on images of another size.
pub fn resized(p: &Preprocessed, rows: usize, cols: usize) -> Vec<u8> {
    if (rows, cols) == (IMAGE_SIDE, IMAGE_SIDE) || rows == 0 || cols == 0 {
        return p.pixels.clone();
    }
    match GrayImage::from_raw(IMAGE_SIDE as u32, IMAGE_SIDE as u32, p.pixels.clone()) {
        Some(img) => {
            image::imageops::resize(&img, cols as u32, rows as u32, FilterType::Triangle).into_raw()
        }
        None => p.pixels.clone(),
    }
}
