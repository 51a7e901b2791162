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

/// Draws a figure into a PNG file of `size` pixels, written atomically: a temporary file
/// beside it, renamed into place, so a failed or interrupted draw leaves any earlier figure
/// whole.
///
/// The pixels are encoded by the `image` crate rather than plotters' own encoder, which
/// brings an older `image` into every project that draws.
pub fn save_png<F>(path: impl AsRef<Path>, size: (u32, u32), draw: F) -> Result<()>
where
    F: FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<()>,
{
    let path = path.as_ref();
    let mut rgb = vec![0u8; 3 * size.0 as usize * size.1 as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
        draw(&root)?;
        root.present().map_err(draw_err)?;
    }
    let file_name = path.file_name().ok_or_else(|| Error::BadData {
        what: "PNG file",
        reason: format!("{} names no file", path.display()),
    })?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let written = image::save_buffer_with_format(
        &tmp,
        &rgb,
        size.0,
        size.1,
        image::ExtendedColorType::Rgb8,
        image::ImageFormat::Png,
    )
    .map_err(draw_err)
    .and_then(|()| std::fs::rename(&tmp, path).map_err(draw_err));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}
