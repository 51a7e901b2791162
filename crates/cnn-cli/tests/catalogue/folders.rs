//! Catalogue cases for folders of pictures as data (`cnn-train --data-dir` on `train/` and
//! `test/` of class folders): each starts from a small valid folder and breaks one thing.

use std::path::Path;

use super::{Bin, Case, case, mkfifo};

/// A folder `DIR/<name>` of two classes (`a`, `b`) with two 28x28 PNGs each in `train/` and
/// `test/`, then `edit`ed; its `DIR/...` form for the command line.
fn folder(root: &Path, name: &str, digit: &[u8], edit: impl FnOnce(&Path)) -> String {
    let dir = root.join(name);
    for side in ["train", "test"] {
        for class in ["a", "b"] {
            let d = dir.join(side).join(class);
            std::fs::create_dir_all(&d).unwrap();
            for k in 0..2 {
                image::GrayImage::from_raw(28, 28, digit.to_vec())
                    .unwrap()
                    .save(d.join(format!("{k}.png")))
                    .unwrap();
            }
        }
    }
    edit(&dir);
    format!("DIR/{name}")
}

/// The cases; `digit` is one 28x28 grayscale image.
pub(super) fn folder_cases(root: &Path, digit: &[u8]) -> Vec<Case> {
    let mut v = Vec::new();
    let mut add = |id: &str, input: &str, dir: String, extra: &[&str], names: &str| {
        let mut args = vec!["--epochs", "1", "--data-dir", &dir, "--out", "DIR/out"];
        args.extend(extra);
        v.push(case(id, input, Bin::Train, &args, names));
    };
    let f = |name: &str, edit: &dyn Fn(&Path)| folder(root, name, digit, edit);
    add(
        "folder-no-test",
        "`train/` without `test/` beside it",
        f("f-no-test", &|d| {
            std::fs::remove_dir_all(d.join("test")).unwrap();
        }),
        &[],
        "f-no-test/test",
    );
    add(
        "folder-class-only-in-test",
        "a class folder only in `test/`",
        f("f-only-test", &|d| {
            std::fs::create_dir(d.join("test/c")).unwrap();
        }),
        &[],
        "`c` only in test/",
    );
    add(
        "folder-empty-class",
        "an empty class folder (a `README` only)",
        f("f-empty-class", &|d| {
            std::fs::create_dir(d.join("train/c")).unwrap();
            std::fs::create_dir(d.join("test/c")).unwrap();
            std::fs::write(d.join("train/c/README"), b"cats").unwrap();
        }),
        &[],
        "f-empty-class/train/c",
    );
    add(
        "folder-one-class",
        "a single class",
        f("f-one-class", &|d| {
            std::fs::remove_dir_all(d.join("train/b")).unwrap();
            std::fs::remove_dir_all(d.join("test/b")).unwrap();
        }),
        &[],
        "single class folder",
    );
    add(
        "folder-257-classes",
        "more than 256 classes",
        f("f-257", &|d| {
            for c in 0..255 {
                std::fs::create_dir(d.join(format!("train/c{c:03}"))).unwrap();
            }
        }),
        &[],
        "257 class folders",
    );
    add(
        "folder-fifo",
        "a picture that is a FIFO",
        f("f-fifo", &|d| {
            mkfifo(&d.join("train/a/fifo.png"));
        }),
        &[],
        "fifo.png",
    );
    add(
        "folder-device",
        "a picture that is a device (a link to `/dev/zero`)",
        f("f-device", &|d| {
            std::os::unix::fs::symlink("/dev/zero", d.join("train/a/zero.png")).unwrap();
        }),
        &[],
        "zero.png",
    );
    add(
        "folder-symlink-loop",
        "a picture that is a symlink loop",
        f("f-loop", &|d| {
            std::os::unix::fs::symlink(d.join("train/a/loop.png"), d.join("train/a/loop.png"))
                .unwrap();
        }),
        &[],
        "loop.png",
    );
    add(
        "folder-bomb",
        "a decompression bomb (a PNG claiming 100,000 x 100,000)",
        f("f-bomb", &|d| {
            std::fs::write(
                d.join("train/a/bomb.png"),
                crate::common::png_header(100_000, 100_000),
            )
            .unwrap();
        }),
        &[],
        "bomb.png",
    );
    add(
        "folder-empty-file",
        "a 0-byte picture",
        f("f-zero", &|d| {
            std::fs::write(d.join("test/b/empty.jpg"), b"").unwrap();
        }),
        &[],
        "empty.jpg",
    );
    add(
        "folder-not-a-picture",
        "a `.png` that is text",
        f("f-text", &|d| {
            std::fs::write(d.join("train/b/notes.png"), b"not a picture").unwrap();
        }),
        &[],
        "notes.png",
    );
    let bad = f("f-skip-bad", &|d| {
        std::fs::write(d.join("train/b/notes.png"), b"not a picture").unwrap();
    });
    add(
        "folder-skip-bad",
        "the same with `--skip-bad`",
        bad,
        &["--skip-bad"],
        "",
    );
    add(
        "folder-mixed-sizes",
        "pictures of two sizes, no `--image-size`",
        f("f-mixed", &|d| {
            image::GrayImage::new(40, 30)
                .save(d.join("test/a/wide.png"))
                .unwrap();
        }),
        &[],
        "--image-size",
    );
    let mixed = "DIR/f-mixed".to_string();
    add(
        "folder-mixed-sized",
        "the same with `--image-size 28x28`",
        mixed,
        &["--image-size", "28x28"],
        "",
    );
    let ok = f("f-ok", &|_| {});
    add(
        "folder-image-size-0",
        "`--image-size 0x0`",
        ok.clone(),
        &["--image-size", "0x0"],
        "--image-size",
    );
    add(
        "folder-image-size-text",
        "`--image-size big`",
        ok.clone(),
        &["--image-size", "big"],
        "--image-size",
    );
    add(
        "folder-channels-2",
        "`--channels 2`",
        ok,
        &["--channels", "2"],
        "--channels",
    );
    add(
        "folder-flags-on-idx",
        "`--channels 3` on a folder of IDX files",
        "DIR/mnist".into(),
        &["--channels", "3"],
        "--channels",
    );
    v
}
