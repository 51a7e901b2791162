//! The flags that say how a folder of pictures is read (`--channels`, `--image-size`,
//! `--fit`, `--skip-bad`), shared by `cnn-train` and `cnn-import`, and the data loading that
//! reports what it found.

use anyhow::{Context, Result, bail};
use cnn_data::pictures::{CacheUse, Fit, PictureOptions, PictureReport};
use cnn_data::{DataSource, Dataset, DatasetKind};

/// How a folder of pictures (`--data-dir` holding `train/` and `test/` of class folders) is
/// read.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct PictureArgs {
    /// Channels of a folder of pictures: 1 (grayscale) or 3 (RGB) [default: the spec's
    /// `input` channels, else 1]
    #[arg(long, value_name = "1|3")]
    pub channels: Option<usize>,
    /// Size every picture of a folder is brought to, as HxW (or one number for a square)
    /// [default: the spec's `input` size, else the size all the pictures share]
    #[arg(long, value_name = "HxW", value_parser = parse_image_size)]
    pub image_size: Option<(u32, u32)>,
    /// How a picture of another size meets --image-size: stretch (as torchvision's and
    /// Keras's resizing) or pad (keep the aspect ratio, black bands) [default: stretch]
    #[arg(long, value_name = "stretch|pad", value_parser = parse_fit)]
    pub fit: Option<Fit>,
    /// Skip the pictures that cannot be read (counted, the first few named) instead of
    /// stopping at the first
    #[arg(long)]
    pub skip_bad: bool,
}

/// `--image-size`'s value: `HxW` or one side. A clap value parser (the range is checked with
/// the other options, so that `0x0` reads as one line naming the flag).
pub fn parse_image_size(s: &str) -> std::result::Result<(u32, u32), String> {
    let side = |v: &str| {
        v.trim()
            .parse::<u32>()
            .map_err(|_| format!("expected HxW such as 28x28, or one side such as 32, not `{s}`"))
    };
    match s.split_once(['x', 'X']) {
        Some((h, w)) => Ok((side(h)?, side(w)?)),
        None => side(s).map(|n| (n, n)),
    }
}

/// `--fit`'s value. A clap value parser.
pub fn parse_fit(s: &str) -> std::result::Result<Fit, String> {
    Fit::from_name(s).ok_or_else(|| format!("expected stretch or pad, not `{s}`"))
}

impl PictureArgs {
    /// Whether any of the flags was given.
    pub fn any(&self) -> bool {
        *self != Self::default()
    }

    /// The options of a fresh run: the flags, else the spec's `input` (`[channels, height,
    /// width]`), else the defaults; checked, with errors naming the flag.
    pub fn options(&self, spec_input: Option<[usize; 3]>) -> Result<PictureOptions> {
        let from_spec = spec_input.map(|[c, h, w]| (c, (h as u32, w as u32)));
        let opts = PictureOptions {
            size: self.image_size.or(from_spec.map(|(_, s)| s)),
            channels: self.channels.or(from_spec.map(|(c, _)| c)).unwrap_or(1),
            fit: self.fit.unwrap_or_default(),
            skip_bad: self.skip_bad,
        };
        opts.validate().map_err(flag_error)?;
        Ok(opts)
    }

    /// The options a saved run `recorded`, refusing flags that ask for others (repeating
    /// them, as a printed resume command does, is fine); the flags' own options for a run
    /// that recorded none.
    pub fn over_recorded(&self, recorded: Option<&PictureOptions>) -> Result<PictureOptions> {
        let Some(r) = recorded else {
            return self.options(None);
        };
        let differs = [
            ("--channels", self.channels.is_some_and(|c| c != r.channels)),
            (
                "--image-size",
                self.image_size.is_some_and(|s| Some(s) != r.size),
            ),
            ("--fit", self.fit.is_some_and(|f| f != r.fit)),
            ("--skip-bad", self.skip_bad && !r.skip_bad),
        ];
        if let Some((flag, _)) = differs.iter().find(|(_, d)| *d) {
            bail!(
                "{flag} differs from how the run read its pictures ({}); leave it out",
                describe(r)
            );
        }
        Ok(r.clone())
    }
}

/// A library error about an option, naming the flag (`image_size` → `--image-size`).
fn flag_error(e: cnn_data::Error) -> anyhow::Error {
    match e {
        cnn_data::Error::PictureOption {
            field,
            value,
            reason,
        } => anyhow::anyhow!("invalid --{} {value}: {reason}", field.replace('_', "-")),
        other => other.into(),
    }
}

/// `3x32x32 RGB, stretch` for the resolved options.
fn describe(o: &PictureOptions) -> String {
    let colour = if o.channels == 3 { "RGB" } else { "grayscale" };
    match o.size {
        Some((h, w)) => format!("{h}x{w} {colour}, {}", o.fit.name()),
        None => format!("{colour}, {}", o.fit.name()),
    }
}

/// The options a load resolved (the size it chose), to record with a run.
pub fn resolved(opts: &PictureOptions, report: &PictureReport) -> PictureOptions {
    let f = report.format;
    PictureOptions {
        size: Some((f.height, f.width)),
        channels: f.channels,
        ..opts.clone()
    }
}

/// The line a program prints about a folder of pictures it read: format, where the bytes
/// came from, files skipped.
pub fn report_line(report: &PictureReport) -> String {
    let f = report.format;
    let colour = if f.channels == 3 { "RGB" } else { "grayscale" };
    let cache = match &report.cache {
        CacheUse::Read(p) => format!("read from the cache {}", p.display()),
        CacheUse::Written(p) => format!("decoded and cached in {}", p.display()),
        CacheUse::NotWritten(why) => format!("decoded (not cached: {why})"),
    };
    let mut line = format!(
        "pictures: {} + {} as {}x{} {colour} ({}); {cache}; {} other files skipped",
        report.pictures[0],
        report.pictures[1],
        f.height,
        f.width,
        f.fit.name(),
        report.other_files
    );
    if report.bad_count > 0 {
        let names: Vec<String> = report.bad.iter().map(|p| p.display().to_string()).collect();
        let more = report.bad_count.saturating_sub(names.len());
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        line += &format!(
            "; {} pictures could not be read and were skipped: {}{more}",
            report.bad_count,
            names.join(", ")
        );
    }
    line
}

/// Loads the dataset, with the flag to blame in the error context, and what reading a
/// folder of pictures found.
pub fn load_reported(source: &DataSource) -> Result<(Dataset, Option<PictureReport>)> {
    let context = || match source.kind {
        DatasetKind::Own => "--data-dir".to_string(),
        kind => format!("loading {kind} data"),
    };
    match cnn_data::load_with_report(source) {
        Err(cnn_data::Error::MixedSizes {
            first,
            first_size: (fw, fh),
            other,
            other_size: (ow, oh),
        }) => Err(anyhow::anyhow!(
            "pictures differ in size: {} is {fw}x{fh} but {} is {ow}x{oh}; pass --image-size HxW to bring them all to one",
            first.display(),
            other.display()
        ))
        .with_context(context),
        Err(e @ cnn_data::Error::PictureOption { .. }) => Err(flag_error(e)),
        other => other.with_context(context),
    }
}

/// Refuses picture flags for a folder of IDX files, where they would silently do nothing.
pub fn check_used(
    args: &PictureArgs,
    report: Option<&PictureReport>,
    source: &DataSource,
) -> Result<()> {
    if report.is_none() && args.any() {
        bail!(
            "--channels, --image-size, --fit and --skip-bad apply to a folder of pictures (train/ and test/ of class folders); {} holds IDX files",
            source.dir.display()
        );
    }
    Ok(())
}
