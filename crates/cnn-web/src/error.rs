//! The error type of the page's engine.

/// Errors from loading a model or analysing a picture.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The weights file cannot be read or describes no network we can build.
    #[error("cannot load the model")]
    Load(#[source] cnn_training::Error),
    /// The network reads colour images; the page draws in gray.
    #[error("the model takes {channels}-channel images; the page draws grayscale digits")]
    NotGrayscale {
        /// Input channels the network expects.
        channels: usize,
    },
    /// The picture could not be preprocessed (other than being blank).
    #[error("cannot preprocess the drawing")]
    Preprocess(#[source] cnn_data::Error),
    /// The picture's pixel buffer does not match its stated size.
    #[error("the picture's buffer holds {len} bytes, not {width}x{height}")]
    PictureSize {
        /// Bytes given.
        len: usize,
        /// Stated width.
        width: u32,
        /// Stated height.
        height: u32,
    },
    /// Running the network failed.
    #[error("inference failed")]
    Inference(#[source] cnn_training::Error),
    /// The network returned no layer outputs (a network without layers).
    #[error("the network produced no output")]
    NoOutput,
    /// A tensor operation outside the network failed.
    #[error("tensor operation failed")]
    Tensor(#[source] candle_core::Error),
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// An error and its sources on one line, `: `-separated, as the page shows them.
pub fn one_line(err: &dyn std::error::Error) -> String {
    let mut line = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        line.push_str(": ");
        line.push_str(&s.to_string());
        source = s.source();
    }
    line
}
