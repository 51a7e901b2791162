//! Loader tests: the shipped real MNIST, and hand-made malformed files for every error kind.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::io::Write;
use std::path::Path;

use cnn_data::{
    DataSource, DatasetKind, Error, FILE_NAMES, IdxKind, Reader, Split, check_idx, load,
};

fn shipped_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/mnist")
}

fn shipped() -> DataSource {
    DataSource::new(shipped_dir(), DatasetKind::Mnist)
}

fn idx_images(count: u32, rows: u32, cols: u32, pixels: usize) -> Vec<u8> {
    let mut v = Vec::new();
    for x in [0x803u32, count, rows, cols] {
        v.extend_from_slice(&x.to_be_bytes());
    }
    v.extend((0..pixels).map(|i| (i % 251) as u8));
    v
}

fn idx_labels(count: u32, labels: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    for x in [0x801u32, count] {
        v.extend_from_slice(&x.to_be_bytes());
    }
    v.extend_from_slice(labels);
    v
}

/// A folder whose four files are small but well-formed (3 train, 2 test items).
fn small_folder(dir: &Path) {
    let files: [Vec<u8>; 4] = [
        idx_images(3, 28, 28, 3 * 784),
        idx_labels(3, &[1, 2, 3]),
        idx_images(2, 28, 28, 2 * 784),
        idx_labels(2, &[4, 5]),
    ];
    for (name, bytes) in FILE_NAMES.iter().zip(files) {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

fn load_dir(dir: &Path) -> Result<cnn_data::Dataset, Error> {
    load(&DataSource::new(dir, DatasetKind::Mnist).with_cache_dir(dir.join("cache")))
}

#[test]
fn shipped_mnist_has_the_published_counts_and_histograms() {
    let data = load(&shipped()).expect("shipped MNIST loads");
    assert_eq!(data.train.len(), 60_000);
    assert_eq!(data.test.len(), 10_000);
    assert_eq!(data.train.images().len(), 60_000 * 784);
    assert_eq!(
        data.train.label_histogram(),
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
    assert_eq!(
        data.test.label_histogram(),
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
    // The first training digit of MNIST is a 5, the first test digit a 7.
    assert_eq!(data.train.label(0), 5);
    assert_eq!(data.test.label(0), 7);
    let mut batch = Vec::new();
    data.test.fill_batch(&[0, 1], &mut batch);
    assert_eq!(batch.len(), 2 * 784);
    assert!(batch.iter().all(|&p| (0.0..=1.0).contains(&p)));
    assert!(batch.contains(&1.0), "real digits have saturated ink");
}

#[test]
fn a_checksum_mismatch_names_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let src = shipped_dir();
    for name in FILE_NAMES {
        std::fs::copy(
            src.join(format!("{name}.gz")),
            tmp.path().join(format!("{name}.gz")),
        )
        .unwrap();
    }
    let sums = std::fs::read_to_string(src.join("SHA256SUMS.raw")).unwrap();
    // Corrupt the digest recorded for the test labels.
    let bad = sums.replace("ff7bcfd4", "00000000");
    std::fs::write(tmp.path().join("SHA256SUMS.raw"), bad).unwrap();
    match load_dir(tmp.path()) {
        Err(Error::Checksum { path, .. }) => {
            assert!(path.ends_with("t10k-labels-idx1-ubyte.gz"), "{path:?}")
        }
        other => panic!("expected a checksum error, got {other:?}"),
    }
}

#[test]
fn missing_folder_and_missing_file() {
    let tmp = tempfile::tempdir().unwrap();
    let err = load_dir(&tmp.path().join("nope")).unwrap_err();
    assert!(matches!(err, Error::MissingDir { .. }), "{err}");
    small_folder(tmp.path());
    std::fs::remove_file(tmp.path().join("t10k-labels-idx1-ubyte")).unwrap();
    match load_dir(tmp.path()).unwrap_err() {
        Error::MissingFile { path } => assert!(path.ends_with("t10k-labels-idx1-ubyte")),
        e => panic!("{e}"),
    }
}

#[test]
fn fashion_missing_says_how_to_install() {
    let src = DataSource::new(cnn_data::FASHION_SYSTEM_DIR, DatasetKind::Fashion);
    if src.dir.exists() {
        // Installed here: the hint cannot be observed, but an explicit missing folder gets none.
        let other = load(&DataSource::new(
            "/definitely/not/here",
            DatasetKind::Fashion,
        ))
        .unwrap_err();
        assert!(!other.to_string().contains("apt-get"), "{other}");
        return;
    }
    let msg = load(&src).unwrap_err().to_string();
    assert!(
        msg.contains("apt-get install dataset-fashion-mnist"),
        "{msg}"
    );
}

#[test]
fn small_well_formed_files_load_with_their_own_counts_and_classes() {
    let tmp = tempfile::tempdir().unwrap();
    small_folder(tmp.path());
    let data = load_dir(tmp.path()).unwrap();
    assert_eq!((data.train.len(), data.test.len()), (3, 2));
    assert_eq!(data.train.image_shape(), [1, 28, 28]);
    // Labels go up to 5, so six classes, named by their numbers.
    assert_eq!(data.classes(), 6);
    assert_eq!(data.class_names, ["0", "1", "2", "3", "4", "5"]);
    std::fs::write(tmp.path().join("classes.txt"), "a\nb\nc\nd\ne\nf\ng\n").unwrap();
    let named = load_dir(tmp.path()).unwrap();
    assert_eq!(named.classes(), 7);
    assert_eq!(named.class_names[6], "g");
}

#[test]
fn both_readers_give_identical_data_on_the_shipped_files() {
    let tmp = tempfile::tempdir().unwrap();
    let via_mnist = load(&shipped().with_cache_dir(tmp.path())).unwrap();
    let own = load(&shipped().with_reader(Reader::Own)).unwrap();
    assert_eq!(via_mnist.train, own.train);
    assert_eq!(via_mnist.test, own.test);
    // The mnist crate read decompressed copies from the cache; our own reader needs none.
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 4);
}

#[test]
fn a_split_written_as_idx_loads_back_at_any_size() {
    let data = load(&shipped().with_reader(Reader::Own)).unwrap();
    // 14x14 digits (every other pixel of the first 50 test digits), 5 classes.
    let keep: Vec<usize> = (0..200)
        .filter(|&i| data.test.label(i) < 5)
        .take(50)
        .collect();
    let mut images = Vec::new();
    for &i in &keep {
        let d = data.test.image(i);
        images.extend((0..14).flat_map(|y| (0..14).map(move |x| d[2 * y * 28 + 2 * x])));
    }
    let labels: Vec<u8> = keep.iter().map(|&i| data.test.label(i)).collect();
    let small = Split::new(images, labels, 14, 14, 5).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    small
        .write_idx(&d.join(FILE_NAMES[0]), &d.join(FILE_NAMES[1]))
        .unwrap();
    small
        .take(20)
        .write_idx(&d.join(FILE_NAMES[2]), &d.join(FILE_NAMES[3]))
        .unwrap();
    let back = load_dir(d).unwrap();
    assert_eq!(back.train, small);
    assert_eq!(back.test, small.take(20));
    assert_eq!(back.train.image_shape(), [1, 14, 14]);
}

#[test]
fn in_memory_splits_are_checked() {
    assert!(matches!(
        Split::new(vec![0; 10], vec![0, 1], 2, 2, 2),
        Err(Error::SplitLength {
            pixels: 10,
            items: 2,
            shape: [1, 2, 2],
        })
    ));
    assert!(matches!(
        Split::new(vec![0; 8], vec![0, 3], 2, 2, 3),
        Err(Error::SplitLabel {
            index: 1,
            label: 3,
            classes: 3
        })
    ));
    let s = Split::new(vec![7; 8], vec![0, 2], 2, 2, 3).unwrap();
    assert_eq!(s.label_histogram(), [1, 0, 1]);
    assert_eq!(s.select(&[1]).labels(), [2]);
}

#[test]
fn truncated_wrong_magic_dims_labels_and_mismatch() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    small_folder(d);
    let first = d.join(FILE_NAMES[0]);

    let mut bytes = std::fs::read(&first).unwrap();
    bytes.truncate(bytes.len() - 100);
    std::fs::write(&first, &bytes).unwrap();
    assert!(matches!(load_dir(d).unwrap_err(), Error::BadLength { .. }));

    std::fs::write(&first, idx_labels(3, &[0, 1, 2])).unwrap();
    match load_dir(d).unwrap_err() {
        Error::BadMagic {
            found: 0x801,
            expected: 0x803,
            ..
        } => {}
        e => panic!("{e}"),
    }

    std::fs::write(&first, idx_images(3, 0, 28, 0)).unwrap();
    assert!(matches!(
        load_dir(d).unwrap_err(),
        Error::BadDimensions { rows: 0, .. }
    ));

    std::fs::write(&first, idx_images(3, 32, 32, 3 * 1024)).unwrap();
    assert!(matches!(
        load_dir(d).unwrap_err(),
        Error::SizeMismatch {
            train_rows: 32,
            test_rows: 28,
            ..
        }
    ));

    std::fs::write(&first, idx_images(4, 28, 28, 4 * 784)).unwrap();
    assert!(matches!(
        load_dir(d).unwrap_err(),
        Error::CountMismatch {
            n_images: 4,
            n_labels: 3,
            ..
        }
    ));

    small_folder(d);
    std::fs::write(d.join(FILE_NAMES[1]), idx_labels(3, &[1, 10, 3])).unwrap();
    std::fs::write(d.join("classes.txt"), "0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n").unwrap();
    assert!(matches!(
        load_dir(d).unwrap_err(),
        Error::LabelOutsideClasses {
            index: 1,
            label: 10,
            classes: 10,
            ..
        }
    ));
}

#[test]
fn corrupted_gzip_and_a_folder_in_place_of_a_file() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    small_folder(d);
    let name = FILE_NAMES[2];
    std::fs::remove_file(d.join(name)).unwrap();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&idx_images(2, 28, 28, 2 * 784)).unwrap();
    let mut gz = enc.finish().unwrap();
    gz.truncate(gz.len() / 2);
    std::fs::write(d.join(format!("{name}.gz")), &gz).unwrap();
    match load_dir(d).unwrap_err() {
        Error::BadGzip { path, .. } => assert!(path.ends_with(format!("{name}.gz"))),
        e => panic!("{e}"),
    }
    std::fs::remove_file(d.join(format!("{name}.gz"))).unwrap();
    std::fs::create_dir(d.join(name)).unwrap();
    assert!(matches!(load_dir(d).unwrap_err(), Error::NotAFile { .. }));
}

#[test]
fn a_header_claiming_billions_of_items_is_rejected_without_allocating() {
    let bytes = idx_images(u32::MAX, 28, 28, 10);
    match check_idx(&bytes, IdxKind::Images, Path::new("x")).map(|h| h.count) {
        Err(Error::BadLength {
            expected, actual, ..
        }) => {
            assert_eq!(expected, 16 + u64::from(u32::MAX) * 784);
            assert_eq!(actual, 26);
        }
        other => panic!("{other:?}"),
    }
    for len in 0..16 {
        assert!(check_idx(&bytes[..len], IdxKind::Images, Path::new("x")).is_err());
    }
}

#[test]
fn a_gzip_bomb_is_read_no_further_than_its_header_implies() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    small_folder(d);
    // A valid header for 3 images followed by 200 MB of zeros.
    let mut bomb = idx_images(3, 28, 28, 3 * 784);
    bomb.resize(200 << 20, 0);
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&bomb).unwrap();
    std::fs::remove_file(d.join(FILE_NAMES[0])).unwrap();
    std::fs::write(
        d.join(format!("{}.gz", FILE_NAMES[0])),
        enc.finish().unwrap(),
    )
    .unwrap();
    match load_dir(d).unwrap_err() {
        Error::Padded { expected, .. } => assert_eq!(expected, 16 + 3 * 784),
        e => panic!("{e}"),
    }
}

#[test]
fn a_damaged_cache_copy_is_rebuilt_from_the_verified_file() {
    let cache = tempfile::tempdir().unwrap();
    let first = load(&shipped().with_cache_dir(cache.path())).unwrap();
    let copies: Vec<std::path::PathBuf> = std::fs::read_dir(cache.path())
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|f| f.unwrap().path())
        .collect();
    assert_eq!(copies.len(), 4);
    // One copy altered at the same size (it would train on wrong data), one cut short (the
    // mnist crate would panic).
    for path in &copies {
        let mut bytes = std::fs::read(path).unwrap();
        if path.ends_with("train-images-idx3-ubyte") {
            let n = bytes.len();
            bytes[n / 2..n / 2 + 784].fill(255);
        } else if path.ends_with("t10k-labels-idx1-ubyte") {
            bytes.truncate(100);
        } else {
            continue;
        }
        std::fs::write(path, bytes).unwrap();
    }
    let again = load(&shipped().with_cache_dir(cache.path())).unwrap();
    assert_eq!(again.train, first.train);
    assert_eq!(again.test, first.test);
    let healed = load(&shipped().with_cache_dir(cache.path())).unwrap();
    assert_eq!(healed.train, first.train);
}

#[test]
fn a_multi_member_gzip_file_reads_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    small_folder(d);
    let bytes = std::fs::read(d.join(FILE_NAMES[0])).unwrap();
    let single = load_dir(d).unwrap();
    // What `cat a.gz b.gz` makes: two gzip members, one after the other.
    let mut gz = Vec::new();
    for part in [&bytes[..1000], &bytes[1000..]] {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(part).unwrap();
        gz.extend(enc.finish().unwrap());
    }
    std::fs::remove_file(d.join(FILE_NAMES[0])).unwrap();
    std::fs::write(d.join(format!("{}.gz", FILE_NAMES[0])), gz).unwrap();
    assert_eq!(load_dir(d).unwrap().train, single.train);
}

#[test]
fn a_fifo_in_place_of_a_file_is_refused_without_blocking() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    small_folder(d);
    for name in [FILE_NAMES[0], "SHA256SUMS.raw"] {
        let path = d.join(name);
        let _ = std::fs::remove_file(&path);
        let made = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap();
        assert!(made.success());
        match load_dir(d) {
            Err(Error::NotAFile { path: p }) => assert_eq!(p, path),
            other => panic!("{name}: {other:?}"),
        }
        std::fs::remove_file(&path).unwrap();
        small_folder(d);
    }
}

#[test]
fn a_killed_cache_write_leaves_no_temporary_file_behind() {
    let cache = tempfile::tempdir().unwrap();
    load(&shipped().with_cache_dir(cache.path())).unwrap();
    let entry = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|d| d.unwrap().path())
        .find(|d| d.join("train-images-idx3-ubyte").is_file())
        .unwrap();
    // As if a process (long dead: no such pid) was killed while writing the copy, which
    // is therefore missing; and one still alive (this test) is writing another.
    std::fs::remove_file(entry.join("train-images-idx3-ubyte")).unwrap();
    let dead = entry.join(".train-images-idx3-ubyte.tmp-4294967");
    std::fs::write(&dead, vec![0u8; 1000]).unwrap();
    let parent_pid = std::os::unix::process::parent_id();
    let alive = entry.join(format!(".train-images-idx3-ubyte.tmp-{parent_pid}"));
    std::fs::write(&alive, vec![0u8; 1000]).unwrap();
    load(&shipped().with_cache_dir(cache.path())).unwrap();
    assert!(
        !dead.exists(),
        "the dead writer's temporary file is removed"
    );
    assert!(
        alive.exists(),
        "a live writer's temporary file is left alone"
    );
    assert!(entry.join("train-images-idx3-ubyte").is_file());
}

#[test]
fn the_four_headers_are_checked_against_each_other_before_any_body_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let gz = |bytes: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    };
    // Headers claiming 16,383 images of 256x256 (a gigabyte each) with no bodies, and a
    // test label file of 5: the counts disagree, and that is said before the (missing)
    // bodies would be read.
    let claim = idx_images(16_383, 256, 256, 0);
    let files = [
        ("train-images-idx3-ubyte.gz", gz(&claim)),
        ("train-labels-idx1-ubyte.gz", gz(&idx_labels(16_383, &[]))),
        ("t10k-images-idx3-ubyte.gz", gz(&claim)),
        ("t10k-labels-idx1-ubyte.gz", gz(&idx_labels(5, &[0; 5]))),
    ];
    for (name, bytes) in files {
        std::fs::write(tmp.path().join(name), bytes).unwrap();
    }
    match load_dir(tmp.path()).unwrap_err() {
        Error::CountMismatch {
            n_images, n_labels, ..
        } => assert_eq!((n_images, n_labels), (16_383, 5)),
        e => panic!("{e}"),
    }
}
