//! Turns an arbitrary picture of a digit (photo, scan, drawing) into an MNIST-style 28x28 input.
//!
//! MNIST digits are white ink on black, fitted into a 20x20 box keeping their aspect ratio,
//! and centred by centre of mass in a 28x28 frame. [`to_mnist`] repeats those steps; pictures
//! of dark ink on a light page are inverted first.

use std::path::{Path, PathBuf};

use image::{DynamicImage, GrayImage, imageops::FilterType};

pub use crate::picture::MAX_IMAGE_PIXELS;
use crate::{Error, MNIST_PIXELS as IMAGE_PIXELS, MNIST_SIDE as IMAGE_SIDE, Result};

/// How much brighter than the page ink must be (in gray levels) to count as ink.
const MIN_CONTRAST: u8 = 40;

/// Side of the box the ink is scaled into, as in MNIST.
const INK_BOX: u32 = 20;

/// Reads a PNG, JPEG (or other format the `image` crate knows) as 8-bit grayscale, with the
/// checks of [`crate::picture::read_picture`].
pub fn read_gray(path: &Path) -> Result<GrayImage> {
    Ok(flatten(crate::picture::read_picture(path)?))
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
