//! Folders of pictures: written from the shipped MNIST, read back exactly, cached, and every
//! malformed folder refused in one error naming it.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cnn_data::pictures::{
    CacheUse, Fit, PictureFormat, PictureOptions, load_picture, load_pictures, write_class_folders,
};
use cnn_data::{DataSource, Dataset, DatasetKind, Error, Split};
use image::ImageFormat;

const NAMES: [&str; 10] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
];

fn mnist() -> &'static Dataset {
    static DATA: OnceLock<Dataset> = OnceLock::new();
    DATA.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/mnist");
        cnn_data::load(&DataSource::new(dir, DatasetKind::Mnist)).unwrap()
    })
}

/// `root/train` and `root/test` of `n` and `n / 4` MNIST digits as PNGs.
fn write_digits(root: &Path, n: usize) {
    let data = mnist();
    write_class_folders(
        &data.train.take(n),
        &NAMES,
        &root.join("train"),
        ImageFormat::Png,
    )
    .unwrap();
    write_class_folders(
        &data.test.take(n / 4),
        &NAMES,
        &root.join("test"),
        ImageFormat::Png,
    )
    .unwrap();
}

fn sorted(split: &Split) -> Vec<(u8, Vec<u8>)> {
    let mut v: Vec<_> = (0..split.len())
        .map(|i| (split.label(i), split.image(i).to_vec()))
        .collect();
    v.sort();
    v
}

fn load(root: &Path, cache: &Path, opts: &PictureOptions) -> cnn_data::Result<Dataset> {
    load_pictures(root, opts, Some(cache)).map(|(d, _)| d)
}

#[test]
fn mnist_as_pngs_reads_back_exactly_and_is_cached() {
    let (dir, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_digits(dir.path(), 400);
    std::fs::write(dir.path().join("train/three/.DS_Store"), b"junk").unwrap();
    std::fs::write(dir.path().join("train/README"), b"digits").unwrap();
    let source = DataSource::new(dir.path(), DatasetKind::Own).with_cache_dir(cache.path());
    let (data, report) = cnn_data::load_with_report(&source).unwrap();
    let report = report.unwrap();
    // Class names sorted as folder names; a label is the sorted position.
    let mut names = NAMES.map(String::from).to_vec();
    names.sort();
    assert_eq!(data.class_names, names);
    assert_eq!(
        (data.train.image_shape(), data.train.len(), data.test.len()),
        ([1, 28, 28], 400, 100)
    );
    assert_eq!((report.pictures, report.other_files), ([400, 100], 2));
    assert!(matches!(report.cache, CacheUse::Written(_)));
    // The same pictures as the IDX source, relabelled by name.
    let relabel = |s: &Split| {
        let mut v = sorted(s);
        for (l, _) in &mut v {
            *l = names
                .iter()
                .position(|n| n == NAMES[usize::from(*l)])
                .unwrap() as u8;
        }
        v.sort();
        v
    };
    assert_eq!(sorted(&data.train), relabel(&mnist().train.take(400)));
    // Stored in a fixed shuffled order: the first 50 cover most classes, not one.
    let first: std::collections::BTreeSet<u8> = data.train.labels()[..50].iter().copied().collect();
    assert!(first.len() >= 8, "{first:?}");
    let (again, report) = cnn_data::load_with_report(&source).unwrap();
    assert!(matches!(report.unwrap().cache, CacheUse::Read(_)));
    assert_eq!(
        (again.train, again.test),
        (data.train.clone(), data.test.clone())
    );
    // A changed picture is noticed: the cache is rewritten.
    let one = std::fs::read_dir(dir.path().join("test/one"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    image::GrayImage::new(28, 28).save(&one).unwrap();
    let (changed, report) = cnn_data::load_with_report(&source).unwrap();
    assert!(matches!(report.unwrap().cache, CacheUse::Written(_)));
    assert_ne!(changed.test, data.test);
}

#[test]
fn rgb_jpegs_pad_and_stretch() {
    let (dir, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Two classes of 3-channel 12x20 pictures: red ones and blue ones.
    let picture = |c: usize| (0..3 * 12 * 20).map(move |k| if k / 240 == c { 250 } else { 5 });
    let images: Vec<u8> = (0..8)
        .flat_map(|i| picture(if i % 2 == 0 { 0 } else { 2 }))
        .collect();
    let labels: Vec<u8> = (0..8).map(|i| (i % 2) as u8).collect();
    let split = Split::with_shape(images, labels, [3, 12, 20], 2).unwrap();
    for side in ["train", "test"] {
        write_class_folders(
            &split,
            &["red", "blue"],
            &dir.path().join(side),
            ImageFormat::Jpeg,
        )
        .unwrap();
    }
    let opts = PictureOptions {
        channels: 3,
        ..PictureOptions::default()
    };
    let data = load(dir.path(), cache.path(), &opts).unwrap();
    assert_eq!(
        (data.train.image_shape(), data.class_names.clone()),
        ([3, 12, 20], vec!["blue".into(), "red".into()])
    );
    let red = (0..data.train.len())
        .find(|&i| data.train.label(i) == 1)
        .unwrap();
    let plane = |i: usize, c: usize| -> f64 {
        data.train.image(i)[c * 240..(c + 1) * 240]
            .iter()
            .map(|&v| f64::from(v))
            .sum::<f64>()
            / 240.0
    };
    assert!(
        plane(red, 0) > 200.0 && plane(red, 2) < 40.0,
        "{} {}",
        plane(red, 0),
        plane(red, 2)
    );
    // Pad keeps the aspect ratio: a 12x20 picture in 20x20 has black bands above and below.
    let padded = PictureOptions {
        size: Some((20, 20)),
        fit: Fit::Pad,
        ..opts.clone()
    };
    let data = load(dir.path(), cache.path(), &padded).unwrap();
    let img = data.train.image(red);
    assert_eq!((img[0], img[10 * 20 + 10] > 200), (0, true));
    let stretched = PictureOptions {
        size: Some((20, 20)),
        ..opts
    };
    let data = load(dir.path(), cache.path(), &stretched).unwrap();
    assert!(data.train.image(red)[0] > 200);
    // One picture prepared alone is what the dataset holds.
    let format = PictureFormat {
        channels: 3,
        height: 20,
        width: 20,
        fit: Fit::Stretch,
    };
    let first = std::fs::read_dir(dir.path().join("train/red"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let alone = load_picture(&first.path(), &format).unwrap();
    assert!((0..data.train.len()).any(|i| data.train.image(i) == alone.as_slice()));
}

/// A folder of two classes with one picture each side; `edit` breaks it.
fn broken(edit: impl FnOnce(&Path)) -> (tempfile::TempDir, cnn_data::Result<Dataset>) {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let two = mnist().train.filter_classes(&[0, 1]).unwrap().take(4);
    for side in ["train", "test"] {
        write_class_folders(&two, &["a", "b"], &dir.path().join(side), ImageFormat::Png).unwrap();
    }
    edit(dir.path());
    let result = load(dir.path(), cache.path(), &PictureOptions::default());
    (dir, result)
}

fn first_picture(dir: &Path) -> PathBuf {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v.remove(0)
}

#[test]
fn malformed_folders_are_one_error_naming_them() {
    let msg = |r: cnn_data::Result<Dataset>| r.map(|_| ()).unwrap_err().to_string();
    let (_d, r) = broken(|d| std::fs::remove_dir_all(d.join("test")).unwrap());
    assert!(msg(r).contains("test does not exist"));
    let (_d, r) = broken(|d| std::fs::create_dir(d.join("test/c")).unwrap());
    assert!(msg(r).contains("`c` only in test/"));
    let (_d, r) = broken(|d| {
        for f in std::fs::read_dir(d.join("train/b")).unwrap() {
            std::fs::remove_file(f.unwrap().path()).unwrap();
        }
        std::fs::write(d.join("train/b/notes.txt"), b"x").unwrap();
    });
    assert!(msg(r).contains("train/b holds no pictures (1 other file skipped)"));
    let (_d, r) = broken(|d| std::fs::remove_dir_all(d.join("train/b")).unwrap());
    assert!(matches!(r, Err(Error::OneClassFolder { .. })));
    let (_d, r) = broken(|d| {
        for c in 0..255 {
            std::fs::create_dir(d.join(format!("train/c{c:03}"))).unwrap();
        }
    });
    assert!(msg(r).contains("257 class folders, more than the 256"));
    let (_d, r) = broken(|d| std::fs::write(first_picture(&d.join("train/a")), b"").unwrap());
    assert!(msg(r).contains("the file is empty"));
    let (_d, r) = broken(|d| {
        std::os::unix::fs::symlink(d.join("train/a/loop.png"), d.join("train/a/loop.png")).unwrap();
    });
    assert!(
        matches!(r, Err(Error::Io { ref path, .. }) if path.ends_with("loop.png")),
        "{r:?}"
    );
    let (_d, r) = broken(|d| {
        let fifo = d.join("train/a/fifo.png");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
    });
    assert!(
        matches!(r, Err(Error::NotAFile { ref path }) if path.ends_with("fifo.png")),
        "{r:?}"
    );
    let (_d, r) =
        broken(|d| std::os::unix::fs::symlink("/dev/zero", d.join("train/a/dev.png")).unwrap());
    assert!(matches!(r, Err(Error::NotAFile { .. })), "{r:?}");
    let (_d, r) = broken(|d| {
        image::GrayImage::new(30, 28)
            .save(d.join("test/b/wide.png"))
            .unwrap();
    });
    let m = msg(r);
    assert!(
        m.contains("pictures differ in size") && m.contains("wide.png is 30x28"),
        "{m}"
    );
    let (_d, r) = broken(|d| std::fs::write(d.join("train/a/bomb.png"), bomb_png()).unwrap());
    assert!(matches!(r, Err(Error::ImageTooLarge { .. })), "{r:?}");
}

/// The header of a 100,000 x 100,000 PNG (a decompression bomb needs no more to be refused).
fn bomb_png() -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(100_000u32.to_be_bytes());
    ihdr.extend(100_000u32.to_be_bytes());
    ihdr.extend([8, 0, 0, 0, 0]);
    png.extend(13u32.to_be_bytes());
    png.extend(&ihdr);
    png.extend(crc32(&ihdr).to_be_bytes());
    // The start of the pixels: a bomb's few kilobytes inflate to gigabytes.
    let mut idat = b"IDAT".to_vec();
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut z, &[0u8; 4096]).unwrap();
    idat.extend(z.finish().unwrap());
    png.extend(((idat.len() - 4) as u32).to_be_bytes());
    png.extend(&idat);
    png.extend(crc32(&idat).to_be_bytes());
    png.extend(0u32.to_be_bytes());
    png.extend(b"IEND");
    png.extend(crc32(b"IEND").to_be_bytes());
    png
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn bad_options_and_skip_bad() {
    let opts = |channels, size| PictureOptions {
        channels,
        size,
        ..PictureOptions::default()
    };
    let err = |o: PictureOptions| o.validate().unwrap_err().to_string();
    assert_eq!(
        err(opts(2, None)),
        "invalid channels 2: must be 1 (grayscale) or 3 (RGB)"
    );
    assert!(err(opts(1, Some((0, 0)))).starts_with("invalid image_size 0x0"));
    let (dir, r) =
        broken(|d| std::fs::write(d.join("train/a/torn.png"), b"\x89PNG\r\n\x1a\nxx").unwrap());
    assert!(
        matches!(r, Err(Error::ImageDecode { .. } | Error::CutShort { .. })),
        "{r:?}"
    );
    let skip = PictureOptions {
        skip_bad: true,
        ..PictureOptions::default()
    };
    let cache = tempfile::tempdir().unwrap();
    let (data, report) = load_pictures(dir.path(), &skip, Some(cache.path())).unwrap();
    assert_eq!((data.train.len(), report.bad_count), (4, 1));
    assert!(report.bad[0].ends_with("torn.png"));
    // Mixed sizes brought to one.
    let (dir, _) = broken(|d| {
        image::GrayImage::new(56, 40)
            .save(d.join("test/b/big.png"))
            .unwrap()
    });
    let sized = PictureOptions {
        size: Some((28, 28)),
        ..PictureOptions::default()
    };
    let data = load(dir.path(), cache.path(), &sized).unwrap();
    assert_eq!((data.test.len(), data.test.image_shape()), (5, [1, 28, 28]));
}
