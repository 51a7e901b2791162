//! Figures for small CNNs, drawn from plain data (no dependency on candle or our other crates).
#![deny(missing_docs)]
