//! One split of a dataset in memory: `u8` images of any size and channel count, labels,
//! class count.

use std::path::Path;

use crate::{Error, Result};

/// One split (training or test): images as `u8` (0-255), channel-major then row-major
/// (`channels x rows x cols`, PyTorch's layout), and their labels.
///
/// Every image has `channels x rows x cols` values and every label is below `classes`; the
/// constructors check both, so the accessors can rely on them.
///
/// ```
/// use cnn_data::Split;
/// // Four 2x2 grayscale images of three classes.
/// let split = Split::new(vec![0; 4 * 2 * 2], vec![0, 2, 1, 2], 2, 2, 3)?;
/// let twos = split.filter_classes(&[2])?; // the 2s, relabelled 0, of one class
/// assert_eq!((twos.len(), twos.classes(), twos.labels()), (2, 1, &[0, 0][..]));
/// assert_eq!(split.take(3).len(), 3);
/// # Ok::<(), cnn_data::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    images: Vec<u8>,
    labels: Vec<u8>,
    channels: usize,
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
        // Grayscale splits hash as they did before channels existed, so that runs recorded
        // then still resume.
        if self.channels != 1 {
            h.update((self.channels as u64).to_le_bytes());
        }
        h.update(&self.images);
        h.update(&self.labels);
        h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Builds a split of grayscale images from pixels (`labels.len()` images of
    /// `rows x cols`, one after another) and labels below `classes`.
    pub fn new(
        images: Vec<u8>,
        labels: Vec<u8>,
        rows: usize,
        cols: usize,
        classes: usize,
    ) -> Result<Self> {
        Self::with_shape(images, labels, [1, rows, cols], classes)
    }

    /// Builds a split of images of shape `[channels, rows, cols]` (each image's channels one
    /// after another, as in PyTorch's `N x C x H x W`) and labels below `classes`.
    ///
    /// ```
    /// // Two 4x4 RGB images.
    /// let rgb = cnn_data::Split::with_shape(vec![255; 2 * 3 * 4 * 4], vec![0, 1], [3, 4, 4], 2)?;
    /// assert_eq!(rgb.image_shape(), [3, 4, 4]);
    /// # Ok::<(), cnn_data::Error>(())
    /// ```
    pub fn with_shape(
        images: Vec<u8>,
        labels: Vec<u8>,
        [channels, rows, cols]: [usize; 3],
        classes: usize,
    ) -> Result<Self> {
        let per = channels.saturating_mul(rows).saturating_mul(cols);
        if per == 0 || labels.len().checked_mul(per) != Some(images.len()) {
            return Err(Error::SplitLength {
                pixels: images.len(),
                items: labels.len(),
                shape: [channels, rows, cols],
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
            channels,
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

    /// Channels of every image (1 for grayscale, 3 for RGB).
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Values per image: `channels x rows x cols`.
    pub fn pixels_per_image(&self) -> usize {
        self.channels * self.rows * self.cols
    }

    /// The shape of one image as a network input, `[channels, rows, cols]`.
    pub fn image_shape(&self) -> [usize; 3] {
        [self.channels, self.rows, self.cols]
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

    /// Values of item `i` (`channels x rows x cols`). Panics if `i >= len()`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.pixels_per_image();
        &self.images[i * n..(i + 1) * n]
    }

    /// Label of item `i`. Panics if `i >= len()`.
    pub fn label(&self, i: usize) -> u8 {
        self.labels[i]
    }

    /// The first `n` items (all of them if `n >= len()`).
    pub fn take(&self, n: usize) -> Split {
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

    /// The items whose label is one of `classes`, relabelled by their position there:
    /// `filter_classes(&[3, 8])` keeps the 3s as class 0 and the 8s as class 1, in a split of
    /// two classes. Fails on a class that is not below [`Split::classes`], or given twice.
    pub fn filter_classes(&self, classes: &[u8]) -> Result<Split> {
        let mut relabel = vec![None; self.classes];
        for (new, &old) in classes.iter().enumerate() {
            match relabel.get_mut(usize::from(old)) {
                Some(slot @ None) => *slot = Some(new as u8),
                Some(Some(_)) => return Err(Error::ClassTwice { class: old }),
                None => {
                    return Err(Error::NoSuchClass {
                        class: old,
                        classes: self.classes,
                    });
                }
            }
        }
        let keep: Vec<usize> = (0..self.len())
            .filter(|&i| relabel[usize::from(self.labels[i])].is_some())
            .collect();
        let mut split = self.select(&keep);
        for l in &mut split.labels {
            *l = relabel[usize::from(*l)].unwrap_or(0);
        }
        split.classes = classes.len();
        Ok(split)
    }

    /// How many items carry each label (`classes()` entries).
    pub fn label_histogram(&self) -> Vec<usize> {
        let mut h = vec![0; self.classes];
        for &l in &self.labels {
            h[usize::from(l)] += 1;
        }
        h
    }

    /// Writes items `indices` as `f32` in `[0, 1]` (value / 255) into `out`
    /// (`indices.len() * channels * rows * cols` values), the layout of an
    /// `N x channels x rows x cols` tensor.
    pub fn fill_batch(&self, indices: &[usize], out: &mut Vec<f32>) {
        out.clear();
        out.reserve(indices.len() * self.pixels_per_image());
        for &i in indices {
            out.extend(self.image(i).iter().map(|&p| f32::from(p) / 255.0));
        }
    }

    /// Writes the split as two raw IDX files (`idx3-ubyte` images, `idx1-ubyte` labels), each
    /// atomically, so another program (or [`crate::load`]) can read it. IDX images are
    /// grayscale: a split of several channels is refused.
    pub fn write_idx(&self, images: &Path, labels: &Path) -> Result<()> {
        if self.channels != 1 {
            return Err(Error::IdxChannels {
                path: images.to_path_buf(),
                channels: self.channels,
            });
        }
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
