//! One split of a dataset in memory: `u8` grayscale images of any size, labels, class count.

use std::path::Path;

use crate::{Error, Result};

/// One split (training or test): grayscale images as `u8`, row-major, and their labels.
///
/// Every image has `rows x cols` pixels and every label is below `classes`; the constructor
/// checks both, so the accessors can rely on them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    images: Vec<u8>,
    labels: Vec<u8>,
    rows: usize,
    cols: usize,
    classes: usize,
}

impl Split {
    /// A short fingerprint of the split's contents (SHA-256 of its shape, pixels and labels,
    /// 16 hex digits), so a run can tell the data it was trained on from other data of the
    /// same size.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for n in [self.rows, self.cols, self.classes, self.labels.len()] {
            h.update((n as u64).to_le_bytes());
        }
        h.update(&self.images);
        h.update(&self.labels);
        h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Builds a split from pixels (`labels.len()` images of `rows x cols`, one after another)
    /// and labels below `classes`.
    pub fn new(
        images: Vec<u8>,
        labels: Vec<u8>,
        rows: usize,
        cols: usize,
        classes: usize,
    ) -> Result<Self> {
        let per = rows.saturating_mul(cols);
        if per == 0 || labels.len().checked_mul(per) != Some(images.len()) {
            return Err(Error::SplitLength {
                pixels: images.len(),
                items: labels.len(),
                rows,
                cols,
            });
        }
        if let Some((index, &label)) = labels
            .iter()
            .enumerate()
            .find(|(_, l)| usize::from(**l) >= classes)
        {
            return Err(Error::SplitLabel {
                index,
                label,
                classes,
            });
        }
        Ok(Self {
            images,
            labels,
            rows,
            cols,
            classes,
        })
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the split has no items.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Rows (height) of every image.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns (width) of every image.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Pixels per image.
    pub fn pixels_per_image(&self) -> usize {
        self.rows * self.cols
    }

    /// The shape of one image as a network input, `[1, rows, cols]`.
    pub fn image_shape(&self) -> [usize; 3] {
        [1, self.rows, self.cols]
    }

    /// Number of classes; every label is below it.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// All pixels, item after item.
    pub fn images(&self) -> &[u8] {
        &self.images
    }

    /// All labels.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// Pixels of item `i`. Panics if `i >= len()`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.pixels_per_image();
        &self.images[i * n..(i + 1) * n]
    }

    /// Label of item `i`. Panics if `i >= len()`.
    pub fn label(&self, i: usize) -> u8 {
        self.labels[i]
    }

    /// The first `n` items (all of them if `n >= len()`).
    pub fn head(&self, n: usize) -> Split {
        let n = n.min(self.len());
        Split {
            images: self.images[..n * self.pixels_per_image()].to_vec(),
            labels: self.labels[..n].to_vec(),
            ..*self
        }
    }

    /// Items `indices`, in that order, as a new split with the same class count.
    /// Panics if an index is out of range.
    pub fn select(&self, indices: &[usize]) -> Split {
        let mut images = Vec::with_capacity(indices.len() * self.pixels_per_image());
        for &i in indices {
            images.extend_from_slice(self.image(i));
        }
        Split {
            images,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            ..*self
        }
    }

    /// How many items carry each label (`classes()` entries).
    pub fn label_histogram(&self) -> Vec<usize> {
        let mut h = vec![0; self.classes];
        for &l in &self.labels {
            h[usize::from(l)] += 1;
        }
        h
    }

    /// Writes items `indices` as `f32` in `[0, 1]` into `out` (`indices.len() * rows * cols`
    /// values), the layout of an `N x 1 x rows x cols` tensor.
    pub fn fill_batch(&self, indices: &[usize], out: &mut Vec<f32>) {
        out.clear();
        out.reserve(indices.len() * self.pixels_per_image());
        for &i in indices {
            out.extend(self.image(i).iter().map(|&p| f32::from(p) / 255.0));
        }
    }

    /// Writes the split as two raw IDX files (`idx3-ubyte` images, `idx1-ubyte` labels), each
    /// atomically, so another program (or [`crate::load`]) can read it.
    pub fn write_idx(&self, images: &Path, labels: &Path) -> Result<()> {
        let count = u32::try_from(self.len()).unwrap_or(u32::MAX);
        let mut img = Vec::with_capacity(16 + self.images.len());
        for x in [0x803u32, count, self.rows as u32, self.cols as u32] {
            img.extend_from_slice(&x.to_be_bytes());
        }
        img.extend_from_slice(&self.images);
        let mut lbl = Vec::with_capacity(8 + self.labels.len());
        for x in [0x801u32, count] {
            lbl.extend_from_slice(&x.to_be_bytes());
        }
        lbl.extend_from_slice(&self.labels);
        crate::guard::write_atomic(images, &img)?;
        crate::guard::write_atomic(labels, &lbl)
    }
}
