//! What every figure shares: the bundled font, the titled white canvas, PNG output.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::{Error, Result};

/// The drawing area [`save_png`] hands to its closure.
pub type PngArea<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

pub(crate) fn draw_err<E: std::error::Error + Send + Sync + 'static>(e: E) -> Error {
    Error::Draw(Box::new(e))
}

/// Clears `area` to white, registers the font, and returns the area below a bold title.
pub(crate) fn titled<DB: DrawingBackend<ErrorType: 'static>>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
) -> Result<DrawingArea<DB, Shift>> {
    ensure_font()?;
    area.fill(&WHITE).map_err(draw_err)?;
    area.titled(title, (FONT, 26).into_font().style(FontStyle::Bold))
        .map_err(draw_err)
}

/// Font family name under which the bundled DejaVu Sans is registered.
pub const FONT: &str = "sans-serif";

static REGULAR: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
static BOLD: &[u8] = include_bytes!("../fonts/DejaVuSans-Bold.ttf");

/// Registers the bundled font with plotters (idempotent). Every figure function calls it.
pub fn ensure_font() -> Result<()> {
    static ONCE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *ONCE.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, REGULAR).is_ok()
            && plotters::style::register_font(FONT, FontStyle::Bold, BOLD).is_ok()
    });
    if ok { Ok(()) } else { Err(Error::Font) }
}

/// Draws a figure into a PNG file of `size` pixels.
pub fn save_png<F>(path: impl AsRef<Path>, size: (u32, u32), draw: F) -> Result<()>
where
    F: FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<()>,
{
    let root = BitMapBackend::new(path.as_ref(), size).into_drawing_area();
    draw(&root)?;
    root.present().map_err(draw_err)
}
