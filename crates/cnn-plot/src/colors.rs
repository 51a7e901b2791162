//! Colour scales: a diverging one for signed weights, a sequential one for magnitudes.
//!
//! The `_rgb` functions are plain arithmetic, available without the `draw` feature (the web
//! page paints with them); [`diverging`] and [`sequential`] wrap them for plotters.

fn lerp(a: (f64, f64, f64), b: (f64, f64, f64), t: f64) -> [u8; 3] {
    let c = |x: f64, y: f64| (x + (y - x) * t).round().clamp(0.0, 255.0) as u8;
    [c(a.0, b.0), c(a.1, b.1), c(a.2, b.2)]
}

fn ramp(stops: &[(f64, f64, f64)], t: f64) -> [u8; 3] {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let n = stops.len() - 1;
    let x = t * n as f64;
    let i = (x.floor() as usize).min(n - 1);
    lerp(stops[i], stops[i + 1], x - i as f64)
}

/// Blue (−1) → white (0) → red (+1), after ColorBrewer's RdBu; `t` in `[-1, 1]`, as RGB.
pub fn diverging_rgb(t: f64) -> [u8; 3] {
    const STOPS: [(f64, f64, f64); 5] = [
        (33.0, 102.0, 172.0),
        (146.0, 197.0, 222.0),
        (247.0, 247.0, 247.0),
        (244.0, 165.0, 130.0),
        (178.0, 24.0, 43.0),
    ];
    ramp(&STOPS, (t + 1.0) / 2.0)
}

/// Viridis-like dark blue → green → yellow; `t` in `[0, 1]`, as RGB.
pub fn sequential_rgb(t: f64) -> [u8; 3] {
    const STOPS: [(f64, f64, f64); 5] = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    ramp(&STOPS, t)
}

/// [`diverging_rgb`] as a plotters colour.
#[cfg(feature = "draw")]
pub fn diverging(t: f64) -> plotters::style::RGBColor {
    let [r, g, b] = diverging_rgb(t);
    plotters::style::RGBColor(r, g, b)
}

/// [`sequential_rgb`] as a plotters colour.
#[cfg(feature = "draw")]
pub fn sequential(t: f64) -> plotters::style::RGBColor {
    let [r, g, b] = sequential_rgb(t);
    plotters::style::RGBColor(r, g, b)
}
