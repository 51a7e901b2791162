//! Figures for small CNNs, drawn with plotters from plain data.
//!
//! Nothing here depends on candle or on the other crates of this workspace: callers pass
//! slices and the small structs below. Every function draws into any plotters backend
//! (`DrawingArea<DB, Shift>`, `DB::ErrorType: 'static` so that its errors can be kept as
//! the source of ours) and presents it; [`save_png`] is a shortcut for PNG files.
//! Text uses DejaVu Sans, bundled in the crate and registered with plotters' `ab_glyph`
//! renderer, so figures render the same on a machine with no fonts installed.
//!
//! The colour scales ([`diverging_rgb`], [`sequential_rgb`]) need no plotters: without the
//! default `draw` feature this crate is just them, small enough for a web page's wasm.
//!
//! ```no_run
//! use cnn_plot::{EpochPoint, kernel_grid, learning_curves, save_png};
//! let points = [EpochPoint::new(1, 0.4, 0.1, 0.97), EpochPoint::new(2, 0.2, 0.07, 0.98)];
//! save_png("curves.png", (1200, 480), |area| learning_curves(area, "small_cnn", &points))?;
//! let kernels = vec![vec![0.5, -0.2, 0.1, 0.0, 0.3, -0.4, 0.2, 0.1, -0.1]; 4]; // four 3x3
//! save_png("kernels.png", (900, 500), |area| kernel_grid(area, "first layer", &kernels, 3))?;
//! # Ok::<(), cnn_plot::Error>(())
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod colors;
#[cfg(feature = "draw")]
mod draw;
#[cfg(feature = "draw")]
mod figures;
#[cfg(feature = "draw")]
mod images;

#[cfg(feature = "draw")]
pub use colors::{diverging, sequential};
pub use colors::{diverging_rgb, sequential_rgb};
#[cfg(feature = "draw")]
pub use draw::{FONT, PngArea, ensure_font, save_png};
#[cfg(feature = "draw")]
pub(crate) use draw::{draw_err, titled};
#[cfg(feature = "draw")]
pub use figures::{architecture, confusion_matrix, learning_curves, thousands};
#[cfg(feature = "draw")]
pub use images::{digit_grid, feature_maps, kernel_grid};

/// Errors from drawing or writing a figure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The backend failed (a file could not be written, say).
    #[error("drawing failed")]
    Draw(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The data cannot be drawn (empty, or sizes that do not match).
    #[error("cannot draw {what}: {reason}")]
    BadData {
        /// The figure.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The bundled font could not be registered.
    #[error("the bundled font could not be loaded")]
    Font,
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// One epoch of a learning curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochPoint {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Mean test loss.
    pub test_loss: f64,
    /// Test accuracy in `[0, 1]`.
    pub test_accuracy: f64,
}

impl EpochPoint {
    /// One epoch's point: its 1-based number, mean training and test losses, and the test
    /// accuracy in `[0, 1]` (the fields of `cnn_training::EpochMetrics` of those names).
    ///
    /// ```
    /// let p = cnn_plot::EpochPoint::new(3, 0.21, 0.05, 0.987);
    /// assert_eq!((p.epoch, p.test_accuracy), (3, 0.987));
    /// ```
    pub fn new(epoch: usize, train_loss: f64, test_loss: f64, test_accuracy: f64) -> Self {
        Self {
            epoch,
            train_loss,
            test_loss,
            test_accuracy,
        }
    }
}

/// One layer box of an architecture diagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerBox {
    /// Short name (`conv1`).
    pub name: String,
    /// What it does (`Conv2d 3x3, pad 1, ReLU`).
    pub kind: String,
    /// Output shape of one example, e.g. `[10, 28, 28]`.
    pub output_shape: Vec<usize>,
    /// Trainable parameters.
    pub params: usize,
}

/// An image with its labels, for digit grids and galleries.
#[derive(Debug, Clone, PartialEq)]
pub struct Digit<'a> {
    /// Pixels, row-major: `side x side` grayscale (0 = background, 255 = ink, drawn dark on
    /// light), or three `side x side` planes, red, green and blue (drawn in their colours).
    pub pixels: &'a [u8],
    /// Side length (28 for MNIST).
    pub side: usize,
    /// True class name.
    pub truth: String,
    /// Predicted class name.
    pub predicted: String,
    /// Probability of the prediction, shown when given.
    pub confidence: Option<f32>,
}

impl Digit<'_> {
    /// Whether the prediction is right.
    pub fn correct(&self) -> bool {
        self.truth == self.predicted
    }
}
