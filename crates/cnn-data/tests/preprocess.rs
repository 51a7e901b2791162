//! Preprocessing real MNIST digits that were pasted, enlarged and inverted into a page.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::Path;

use cnn_data::preprocess::{read_gray, to_mnist};
use cnn_data::{DataSource, DatasetKind, MNIST_SIDE as IMAGE_SIDE};
use image::GrayImage;

/// Digit `d` (28x28) enlarged `scale` times, dark ink on a light page, at `(ox, oy)`.
pub fn page(d: &[u8], scale: u32, (w, h): (u32, u32), (ox, oy): (u32, u32)) -> GrayImage {
    let mut img = GrayImage::from_pixel(w, h, image::Luma([235]));
    for y in 0..28 * scale {
        for x in 0..28 * scale {
            let v = d[(y / scale) as usize * IMAGE_SIDE + (x / scale) as usize];
            img.put_pixel(
                ox + x,
                oy + y,
                image::Luma([235 - (u16::from(v) * 220 / 255) as u8]),
            );
        }
    }
    img
}

/// The best correlation of `a` with `b` shifted by up to 2 pixels each way: MNIST itself
/// centred digits with integer shifts, so shape matters here, not the last pixel of position.
fn shifted_correlation(a: &[u8], b: &[u8]) -> f64 {
    let mut best = f64::MIN;
    for dy in -2i32..=2 {
        for dx in -2i32..=2 {
            let mut s = vec![0u8; b.len()];
            for y in 0..28i32 {
                for x in 0..28i32 {
                    let (sx, sy) = (x - dx, y - dy);
                    if (0..28).contains(&sx) && (0..28).contains(&sy) {
                        s[(y * 28 + x) as usize] = b[(sy * 28 + sx) as usize];
                    }
                }
            }
            best = best.max(correlation(a, &s));
        }
    }
    best
}

fn correlation(a: &[u8], b: &[u8]) -> f64 {
    let (a, b): (Vec<f64>, Vec<f64>) = (
        a.iter().map(|&v| f64::from(v)).collect(),
        b.iter().map(|&v| f64::from(v)).collect(),
    );
    let (ma, mb) = (
        a.iter().sum::<f64>() / a.len() as f64,
        b.iter().sum::<f64>() / b.len() as f64,
    );
    let cov: f64 = a.iter().zip(&b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

#[test]
fn an_inverted_enlarged_off_centre_digit_comes_back_like_the_original() {
    let data = cnn_data::load(&DataSource::new(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../assets/mnist"),
        DatasetKind::Mnist,
    ))
    .unwrap();
    for i in 0..20 {
        let d = data.test.image(i);
        let img = page(d, 3, (200, 150), (10 + 5 * i as u32, 7));
        let p = to_mnist(&img, Path::new("x.png")).unwrap();
        assert!(p.inverted, "dark ink on a light page is inverted");
        let c = shifted_correlation(&p.pixels, d);
        assert!(
            c > 0.75,
            "test digit {i}: correlation with the original (up to a 2-pixel shift) {c:.3}"
        );
    }
}

#[test]
fn a_blank_page_is_an_error() {
    let img = GrayImage::from_pixel(50, 40, image::Luma([240]));
    let e = to_mnist(&img, Path::new("blank.png"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("blank.png") && e.contains("no ink"), "{e}");
}

fn test_digits() -> cnn_data::Dataset {
    cnn_data::load(&DataSource::new(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../assets/mnist"),
        DatasetKind::Mnist,
    ))
    .unwrap()
}

/// EXIF (big-endian TIFF) holding only Orientation = `value`.
fn exif_orientation(value: u8) -> Vec<u8> {
    let mut e = b"MM\0\x2a\0\0\0\x08\0\x01".to_vec();
    e.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, value, 0, 0, 0, 0, 0, 0]);
    e
}

fn jpeg_bytes(img: &GrayImage, exif: Option<Vec<u8>>) -> Vec<u8> {
    use image::ImageEncoder;
    let mut bytes = Vec::new();
    let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 95);
    if let Some(exif) = exif {
        enc.set_exif_metadata(exif).unwrap();
    }
    enc.write_image(
        img.as_raw(),
        img.width(),
        img.height(),
        image::ExtendedColorType::L8,
    )
    .unwrap();
    bytes
}

#[test]
fn a_phone_photo_stored_sideways_is_read_upright() {
    let data = test_digits();
    let dir = tempfile::tempdir().unwrap();
    for i in 0..5 {
        let d = data.test.image(i);
        let upright = page(d, 4, (160, 130), (20, 10));
        // Stored turned a quarter left; EXIF 6 tells viewers to turn it a quarter right.
        let stored = image::imageops::rotate270(&upright);
        let path = dir.path().join(format!("photo{i}.jpg"));
        std::fs::write(&path, jpeg_bytes(&stored, Some(exif_orientation(6)))).unwrap();
        let read = read_gray(&path).unwrap();
        assert_eq!(read.dimensions(), upright.dimensions(), "digit {i}");
        let p = to_mnist(&read, &path).unwrap();
        let c = shifted_correlation(&p.pixels, d);
        assert!(c > 0.75, "digit {i}: correlation with the original {c:.3}");
    }
}

#[test]
fn a_picture_cut_short_is_refused() {
    let data = test_digits();
    let dir = tempfile::tempdir().unwrap();
    let img = page(data.test.image(0), 4, (160, 130), (20, 10));
    let jpeg = jpeg_bytes(&img, None);
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    for (name, bytes) in [("cut.jpg", jpeg), ("cut.png", png)] {
        let whole = dir.path().join(format!("whole-{name}"));
        std::fs::write(&whole, &bytes).unwrap();
        assert!(read_gray(&whole).is_ok(), "{name}: the whole file reads");
        let cut = dir.path().join(name);
        std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
        match read_gray(&cut) {
            Err(e @ cnn_data::Error::CutShort { .. }) => {
                assert!(e.to_string().contains("cut short"), "{e}")
            }
            // A decoder that notices on its own is fine too, as long as it refuses.
            Err(cnn_data::Error::ImageDecode { .. }) => {}
            other => panic!("{name}: {other:?}"),
        }
        // Data after the end marker is not a cut: padding, or a motion photo's video
        // (which holds end-marker bytes of its own, and others).
        let video: Vec<u8> = (0..5000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for (tail, what) in [(vec![0u8; 100], "zeros"), (video, "a video")] {
            let longer = dir.path().join(format!("{what}-{name}"));
            std::fs::write(&longer, [bytes.as_slice(), &tail].concat()).unwrap();
            assert!(read_gray(&longer).is_ok(), "{name} followed by {what}");
        }
    }
}

#[test]
fn ink_drawn_only_in_the_alpha_channel_is_found() {
    let data = test_digits();
    let dir = tempfile::tempdir().unwrap();
    let d = data.test.image(1);
    // A transparent canvas export: one colour everywhere, the strokes only in alpha.
    for (name, colour) in [("black-ink.png", 0u8), ("white-ink.png", 255u8)] {
        let img = image::RgbaImage::from_fn(112, 112, |x, y| {
            let a = d[(y / 4) as usize * IMAGE_SIDE + (x / 4) as usize];
            image::Rgba([colour, colour, colour, a])
        });
        let path = dir.path().join(name);
        img.save(&path).unwrap();
        let p = to_mnist(&read_gray(&path).unwrap(), &path).unwrap();
        let c = shifted_correlation(&p.pixels, d);
        assert!(c > 0.75, "{name}: correlation with the original {c:.3}");
    }
}
