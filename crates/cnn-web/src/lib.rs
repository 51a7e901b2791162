//! The engine of the interactive page: a trained network and `cnn-predict`'s preprocessing,
//! compiled to `wasm32-unknown-unknown`, so the browser runs the very model a run trained.
//!
//! [`Engine`] is plain Rust and works natively too (the tests use it that way): load a
//! weights file written by `cnn-train` (`final_state.safetensors`) from its bytes, then
//! [`Engine::analyse`] a grayscale picture to get the 28x28 input the network sees, the class
//! probabilities and the first-layer feature maps, painted with the report's colours.
//! [`ffi`] wraps it in a handful of `extern "C"` functions for the page's JavaScript.
#![deny(missing_docs)]

mod engine;
mod error;
pub mod ffi;
mod paint;

pub use engine::{Analysis, Engine};
pub use error::{Error, Result, one_line};
pub use paint::Panel;
