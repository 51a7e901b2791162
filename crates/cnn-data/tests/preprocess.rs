//! Preprocessing real MNIST digits that were pasted, enlarged and inverted into a page.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::Path;

use cnn_data::preprocess::to_mnist;
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
