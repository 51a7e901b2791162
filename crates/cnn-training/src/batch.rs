//! Turning items of a split into tensors: images, labels, and shifted training images.

use candle_core::{Device, Tensor};
use cnn_data::Split;

use crate::Result;

/// Builds an `N x channels x rows x cols` tensor of items `indices`, in `[0, 1]`.
pub fn batch_tensor(split: &Split, indices: &[usize], device: &Device) -> Result<Tensor> {
    let mut buf = Vec::new();
    split.fill_batch(indices, &mut buf);
    Ok(Tensor::from_vec(
        buf,
        batch_shape(split, indices.len()),
        device,
    )?)
}

/// The shape of a batch of `n` items of `split`.
pub(crate) fn batch_shape(split: &Split, n: usize) -> (usize, usize, usize, usize) {
    let [c, h, w] = split.image_shape();
    (n, c, h, w)
}

/// Labels of items `indices`, as a `u32` tensor.
pub fn label_tensor(split: &Split, indices: &[usize], device: &Device) -> Result<Tensor> {
    let labels: Vec<u32> = indices.iter().map(|&i| u32::from(split.label(i))).collect();
    Ok(Tensor::from_vec(labels, indices.len(), device)?)
}

/// Copies a `rows x cols` plane `src` into `dst` translated by `(dx, dy)`, filling uncovered
/// pixels with 0.
fn shift_plane(src: &[u8], dst: &mut [u8], (rows, cols): (usize, usize), dx: isize, dy: isize) {
    let (h, w) = (rows as isize, cols as isize);
    for y in 0..h {
        for x in 0..w {
            let (sx, sy) = (x - dx, y - dy);
            dst[(y * w + x) as usize] = if (0..w).contains(&sx) && (0..h).contains(&sy) {
                src[(sy * w + sx) as usize]
            } else {
                0
            };
        }
    }
}

/// Items `indices` as a batch tensor, each translated by a random shift of up to `shift`
/// pixels drawn from `rng` (two draws per image, x then y).
pub(crate) fn shifted_batch(
    split: &Split,
    indices: &[usize],
    shift: usize,
    rng: &mut crate::Rng,
    device: &Device,
) -> Result<Tensor> {
    let n = split.pixels_per_image();
    let s = shift as u64;
    let mut pixels = vec![0u8; indices.len() * n];
    for (k, &i) in indices.iter().enumerate() {
        let dx = rng.below(2 * s + 1) as isize - s as isize;
        let dy = rng.below(2 * s + 1) as isize - s as isize;
        let dst = &mut pixels[k * n..(k + 1) * n];
        let plane = split.rows() * split.cols();
        // Every channel of an image moves together.
        for (src, dst) in split.image(i).chunks(plane).zip(dst.chunks_mut(plane)) {
            shift_plane(src, dst, (split.rows(), split.cols()), dx, dy);
        }
    }
    let values: Vec<f32> = pixels.iter().map(|&p| f32::from(p) / 255.0).collect();
    Ok(Tensor::from_vec(
        values,
        batch_shape(split, indices.len()),
        device,
    )?)
}
