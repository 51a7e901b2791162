//! The bad-input catalogue: every row of `BAD_INPUTS.md` is a case here. Each case runs the
//! real binary, checks a clean failure (non-zero exit, first stderr line `error: ...` naming
//! the file or flag, no panic), and the page must show exactly what the user sees.
//! `CNN_BLESS=1` rewrites the page's table after a deliberate change of wording.

// The CUDA build answers GPU flags differently; the catalogue documents the default build.
#![cfg(not(feature = "cuda"))]
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::Command;

use safetensors::tensor::{Dtype, TensorView};

mod common;
#[path = "catalogue/folders.rs"]
mod folders;

const BEGIN: &str = "<!-- catalogue:begin -->";
const END: &str = "<!-- catalogue:end -->";

#[derive(Clone, Copy, PartialEq)]
enum Bin {
    Train,
    Predict,
    Import,
    Export,
}

struct Case {
    id: String,
    input: String,
    bin: Bin,
    args: Vec<String>,
    /// What the error line must name (a file or a flag); empty for accepted input.
    names: String,
    /// Environment variables set for the command, shown before it.
    env: Vec<(String, String)>,
}

/// A table section: heading and cases.
struct Section {
    title: &'static str,
    cases: Vec<Case>,
}

fn case(id: &str, input: &str, bin: Bin, args: &[&str], names: &str) -> Case {
    Case {
        id: id.into(),
        input: input.into(),
        bin,
        args: args.iter().map(|s| s.to_string()).collect(),
        names: names.into(),
        env: Vec::new(),
    }
}

fn idx_images(count: u32, rows: u32, cols: u32, images: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    for x in [2051, count, rows, cols] {
        v.extend(u32::to_be_bytes(x));
    }
    v.extend(images);
    v
}

fn idx_labels(count: u32, labels: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    for x in [2049, count] {
        v.extend(u32::to_be_bytes(x));
    }
    v.extend(labels);
    v
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A data folder `name` under `root` holding `files`; returns its path as given to flags.
fn data_dir(root: &Path, name: &str, files: &[(&str, Vec<u8>)]) -> String {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for (f, bytes) in files {
        std::fs::write(dir.join(f), bytes).unwrap();
    }
    format!("DIR/{name}")
}

/// Makes a FIFO at `path` (reading one blocks until a writer comes: it must be refused).
fn mkfifo(path: &Path) {
    let _ = std::fs::remove_file(path);
    let ok = Command::new("mkfifo").arg(path).status().unwrap().success();
    assert!(ok, "mkfifo {}", path.display());
}

/// A checkpoint's tensors (name, dtype, shape, bytes) and its metadata map.
type Parts = (
    Vec<(String, Dtype, Vec<usize>, Vec<u8>)>,
    BTreeMap<String, String>,
);

fn parts(bytes: &[u8]) -> Parts {
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes).unwrap();
    let json = &header.metadata().as_ref().unwrap()["cnn_mnist"];
    let meta: BTreeMap<String, String> = serde_json::from_str(json).unwrap();
    let mut tensors: Vec<_> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.dtype(), v.shape().to_vec(), v.data().to_vec()))
        .collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    (tensors, meta)
}

fn serialize((tensors, meta): &Parts, with_meta: bool) -> Vec<u8> {
    let views: Vec<_> = tensors
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    let meta = with_meta.then(|| {
        [(
            "cnn_mnist".to_string(),
            serde_json::to_string(meta).unwrap(),
        )]
        .into_iter()
        .collect()
    });
    safetensors::serialize(views, meta).unwrap()
}

/// A checkpoint under `root/ck/<name>` built from `base` changed by `edit`.
fn edited(root: &Path, base: &[u8], name: &str, edit: impl FnOnce(&mut Parts) -> bool) -> String {
    let mut p = parts(base);
    let with_meta = edit(&mut p);
    let dir = root.join("ck");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), serialize(&p, with_meta)).unwrap();
    format!("DIR/ck/{name}")
}

/// A run folder `name` whose checkpoint.safetensors is `bytes`.
fn resume_dir(root: &Path, name: &str, bytes: &[u8]) -> String {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("checkpoint.safetensors"), bytes).unwrap();
    format!("DIR/{name}")
}

/// Changes the typed run state stored in a checkpoint's metadata.
fn edit_state(p: &mut Parts, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut state: serde_json::Value = serde_json::from_str(&p.1["state"]).unwrap();
    edit(&mut state);
    p.1.insert("state".into(), state.to_string());
}

fn tensor_mut<'a>(p: &'a mut Parts, name: &str) -> &'a mut (String, Dtype, Vec<usize>, Vec<u8>) {
    p.0.iter_mut().find(|t| t.0 == name).unwrap()
}

fn data_cases(root: &Path, digits: &[u8], labels: &[u8]) -> Vec<Case> {
    use Bin::Train;
    let images = |n: u32| idx_images(n, 28, 28, &digits[..784 * n as usize]);
    let mut v = Vec::new();
    let mut add = |id: &str, input: &str, dir: String, names: &str| {
        let args = ["--epochs", "1", "--data-dir", &dir, "--out", "DIR/out"];
        v.push(case(id, input, Train, &args, names));
    };
    add(
        "data-missing-folder",
        "data folder does not exist",
        "DIR/no-such-folder".into(),
        "no-such-folder",
    );
    std::fs::write(root.join("a-file"), b"not a folder").unwrap();
    add(
        "data-dir-is-a-file",
        "`--data-dir` names a file",
        "DIR/a-file".into(),
        "a-file",
    );
    add(
        "data-missing-file",
        "a data file is missing",
        data_dir(root, "missing", &[]),
        "train-images-idx3-ubyte",
    );
    add(
        "data-empty-file",
        "a data file is empty",
        data_dir(root, "empty", &[("train-images-idx3-ubyte", vec![])]),
        "train-images-idx3-ubyte",
    );
    let mut cut = images(3);
    cut.truncate(16 + 784 * 2 + 100);
    add(
        "data-truncated",
        "images file shorter than its header says",
        data_dir(root, "truncated", &[("train-images-idx3-ubyte", cut)]),
        "train-images-idx3-ubyte",
    );
    add(
        "data-wrong-magic",
        "a labels file in place of the images (wrong magic number)",
        data_dir(
            root,
            "magic",
            &[("train-images-idx3-ubyte", idx_labels(3, &labels[..3]))],
        ),
        "train-images-idx3-ubyte",
    );
    add(
        "data-zero-dimensions",
        "images of 0x28 pixels",
        data_dir(
            root,
            "dims",
            &[("train-images-idx3-ubyte", idx_images(1, 0, 28, &[]))],
        ),
        "train-images-idx3-ubyte",
    );
    add(
        "data-size-mismatch",
        "32x32 training images with 28x28 test images",
        data_dir(
            root,
            "sizes",
            &[
                (
                    "train-images-idx3-ubyte",
                    idx_images(1, 32, 32, &vec![0; 32 * 32]),
                ),
                ("train-labels-idx1-ubyte", idx_labels(1, &labels[..1])),
                ("t10k-images-idx3-ubyte", images(3)),
                ("t10k-labels-idx1-ubyte", idx_labels(3, &labels[..3])),
            ],
        ),
        "train-images-idx3-ubyte",
    );
    add(
        "data-count-mismatch",
        "3 images but 2 labels",
        data_dir(
            root,
            "mismatch",
            &[
                ("train-images-idx3-ubyte", images(3)),
                ("train-labels-idx1-ubyte", idx_labels(2, &labels[..2])),
                ("t10k-images-idx3-ubyte", images(3)),
                ("t10k-labels-idx1-ubyte", idx_labels(3, &labels[..3])),
            ],
        ),
        "train-labels-idx1-ubyte",
    );
    add(
        "data-any-count",
        "well-formed files of 3 training and 3 test digits (any count is accepted)",
        data_dir(
            root,
            "count",
            &[
                ("train-images-idx3-ubyte", images(3)),
                ("train-labels-idx1-ubyte", idx_labels(3, &labels[..3])),
                ("t10k-images-idx3-ubyte", images(3)),
                ("t10k-labels-idx1-ubyte", idx_labels(3, &labels[..3])),
            ],
        ),
        "",
    );
    add(
        "data-label-outside-classes",
        "a label of 12 where `classes.txt` names 10 classes",
        data_dir(
            root,
            "label",
            &[
                ("train-images-idx3-ubyte", images(3)),
                ("train-labels-idx1-ubyte", idx_labels(3, &[1, 12, 3])),
                ("t10k-images-idx3-ubyte", images(3)),
                ("t10k-labels-idx1-ubyte", idx_labels(3, &labels[..3])),
                ("classes.txt", b"0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n".to_vec()),
            ],
        ),
        "train-labels-idx1-ubyte",
    );
    let real_gz = gz(&images(3));
    add(
        "data-corrupted-gzip",
        "a `.gz` file cut short",
        data_dir(
            root,
            "gzcut",
            &[(
                "train-images-idx3-ubyte.gz",
                real_gz[..real_gz.len() / 2].to_vec(),
            )],
        ),
        "train-images-idx3-ubyte.gz",
    );
    add(
        "data-not-gzip",
        "a `.gz` file that is not gzip",
        data_dir(
            root,
            "notgz",
            &[("train-images-idx3-ubyte.gz", b"plain text".to_vec())],
        ),
        "train-images-idx3-ubyte.gz",
    );
    let mut bomb = images(3);
    bomb.resize(65 * 1024 * 1024, 0);
    add(
        "data-gzip-bomb",
        "a `.gz` file that inflates to 65 MiB past a 3-image header (reading stops at the header's length)",
        data_dir(root, "bomb", &[("train-images-idx3-ubyte.gz", gz(&bomb))]),
        "train-images-idx3-ubyte.gz",
    );
    std::fs::create_dir_all(root.join("folder/train-images-idx3-ubyte")).unwrap();
    add(
        "data-folder-as-file",
        "a folder where a data file should be",
        "DIR/folder".into(),
        "train-images-idx3-ubyte",
    );
    let mut claims = idx_images(3, 28, 28, &digits[..784 * 3]);
    claims[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
    add(
        "data-claims-billions",
        "a header claiming 4,294,967,295 images (nothing is allocated for them)",
        data_dir(root, "billions", &[("train-images-idx3-ubyte", claims)]),
        "train-images-idx3-ubyte",
    );
    let big = gz(&idx_images(2, 2048, 2048, &vec![0; 2 * 2048 * 2048]));
    add(
        "data-images-too-large-for-the-net",
        "two 2048x2048 images for `small_cnn`: 1.3 GB of activations an image (a 4096x4096 one once aborted the process)",
        data_dir(
            root,
            "huge-images",
            &[
                ("train-images-idx3-ubyte.gz", big.clone()),
                ("train-labels-idx1-ubyte.gz", gz(&idx_labels(2, &[0, 1]))),
                ("t10k-images-idx3-ubyte.gz", big),
                ("t10k-labels-idx1-ubyte.gz", gz(&idx_labels(2, &[0, 1]))),
            ],
        ),
        "--batch-size",
    );
    let claim = gz(&idx_images(16_383, 256, 256, &[]));
    add(
        "data-headers-disagree",
        "headers claiming 16,383 images of 256x256 (gigabytes once decompressed) beside 5 test labels: refused from the headers, before any body is read",
        data_dir(
            root,
            "headers",
            &[
                ("train-images-idx3-ubyte.gz", claim.clone()),
                ("train-labels-idx1-ubyte.gz", gz(&idx_labels(16_383, &[]))),
                ("t10k-images-idx3-ubyte.gz", claim),
                ("t10k-labels-idx1-ubyte.gz", gz(&idx_labels(5, &[0; 5]))),
            ],
        ),
        "t10k-labels-idx1-ubyte.gz",
    );
    add(
        "data-checksum",
        "a file that disagrees with `SHA256SUMS.raw` beside it",
        data_dir(
            root,
            "checksum",
            &[
                ("train-images-idx3-ubyte", images(3)),
                (
                    "SHA256SUMS.raw",
                    format!("{}  train-images-idx3-ubyte\n", "ab".repeat(32)).into_bytes(),
                ),
            ],
        ),
        "SHA256SUMS.raw",
    );
    let good = |extra: Vec<(&'static str, Vec<u8>)>| {
        let mut files = vec![
            ("train-images-idx3-ubyte", images(3)),
            ("train-labels-idx1-ubyte", idx_labels(3, &labels[..3])),
            ("t10k-images-idx3-ubyte", images(3)),
            ("t10k-labels-idx1-ubyte", idx_labels(3, &labels[..3])),
        ];
        files.extend(extra);
        files
    };
    add(
        "data-classes-empty",
        "an empty `classes.txt`",
        data_dir(
            root,
            "classes-empty",
            &good(vec![("classes.txt", Vec::new())]),
        ),
        "classes.txt",
    );
    add(
        "data-classes-blank-name",
        "a `classes.txt` with a blank line between names",
        data_dir(
            root,
            "classes-blank",
            &good(vec![("classes.txt", b"zero\n\ntwo\n".to_vec())]),
        ),
        "classes.txt",
    );
    add(
        "data-classes-too-few",
        "a `classes.txt` naming 2 classes for labels up to 9",
        data_dir(
            root,
            "classes-few",
            &good(vec![("classes.txt", b"zero\none\n".to_vec())]),
        ),
        "classes.txt",
    );
    add(
        "data-classes-control",
        "a `classes.txt` whose name holds an ANSI escape sequence (it would recolour the terminal)",
        data_dir(
            root,
            "classes-escape",
            &good(vec![(
                "classes.txt",
                b"zero\n\x1b[31mone\x1b[0m\ntwo\n".to_vec(),
            )]),
        ),
        "classes.txt",
    );
    add(
        "data-one-class",
        "every label the same: a single class, which any network learns perfectly",
        data_dir(
            root,
            "one-class",
            &[
                ("train-images-idx3-ubyte", images(3)),
                ("train-labels-idx1-ubyte", idx_labels(3, &[0, 0, 0])),
                ("t10k-images-idx3-ubyte", images(3)),
                ("t10k-labels-idx1-ubyte", idx_labels(3, &[0, 0, 0])),
            ],
        ),
        "--data-dir",
    );
    add(
        "data-sums-huge",
        "a 2 MiB `SHA256SUMS.raw` (read with a bound, not whole)",
        data_dir(
            root,
            "sums-huge",
            &good(vec![("SHA256SUMS.raw", vec![b'a'; 2 << 20])]),
        ),
        "SHA256SUMS.raw",
    );
    let fifo_dir = data_dir(root, "sums-fifo", &good(Vec::new()));
    mkfifo(&root.join("sums-fifo/SHA256SUMS.raw"));
    add(
        "data-sums-fifo",
        "a FIFO as `SHA256SUMS.raw` (it would block forever)",
        fifo_dir,
        "SHA256SUMS.raw",
    );
    let fifo_dir = data_dir(root, "data-fifo", &good(Vec::new()));
    std::fs::remove_file(root.join("data-fifo/t10k-labels-idx1-ubyte")).unwrap();
    mkfifo(&root.join("data-fifo/t10k-labels-idx1-ubyte"));
    add(
        "data-file-fifo",
        "a FIFO as a data file",
        fifo_dir,
        "t10k-labels-idx1-ubyte",
    );
    v.push(case(
        "data-bad-dataset",
        "`--dataset` other than mnist or fashion",
        Train,
        &["--dataset", "cifar10", "--out", "DIR/out"],
        "--dataset",
    ));
    v
}

fn checkpoint_cases(root: &Path, run: &Path) -> Vec<Case> {
    use Bin::Train;
    let fin = std::fs::read(run.join("final_state.safetensors")).unwrap();
    let full = std::fs::read(run.join("checkpoint.safetensors")).unwrap();
    let ck = root.join("ck");
    std::fs::create_dir_all(ck.join("folder.safetensors")).unwrap();
    std::fs::write(ck.join("empty.safetensors"), b"").unwrap();
    std::fs::write(ck.join("cut.safetensors"), &fin[..fin.len() / 2]).unwrap();
    std::fs::write(ck.join("text.safetensors"), b"this is not a checkpoint").unwrap();
    let big = std::fs::File::create(ck.join("big.safetensors")).unwrap();
    big.set_len(65 * 1024 * 1024).unwrap(); // sparse: takes no disk space

    let eval = |file: &str| {
        vec![
            "--final-state".to_string(),
            "--checkpoint".into(),
            file.to_string(),
        ]
    };
    let mut v = Vec::new();
    let mut add = |id: &str, input: &str, args: Vec<String>, names: &str| {
        v.push(Case {
            id: id.into(),
            input: input.into(),
            bin: Train,
            args,
            names: names.into(),
            env: Vec::new(),
        });
    };
    add(
        "ckpt-missing",
        "`--final-state` with no `final_state.safetensors` in the run folder",
        vec!["--final-state".into(), "--out".into(), "DIR/no-run".into()],
        "final_state.safetensors",
    );
    for (id, input, file) in [
        ("ckpt-empty", "an empty file", "empty.safetensors"),
        (
            "ckpt-truncated",
            "a real checkpoint cut in half",
            "cut.safetensors",
        ),
        ("ckpt-not-safetensors", "a text file", "text.safetensors"),
        ("ckpt-folder", "a folder", "folder.safetensors"),
        (
            "ckpt-too-large",
            "a 65 MiB file (ours are under 2 MB; refused before reading)",
            "big.safetensors",
        ),
    ] {
        add(id, input, eval(&format!("DIR/ck/{file}")), file);
    }
    let mut other = eval("DIR/run/final_state.safetensors");
    other.extend(["--model".into(), "medium_cnn".into()]);
    add(
        "ckpt-other-model",
        "a `small_cnn` checkpoint loaded as `medium_cnn`",
        other,
        "final_state.safetensors",
    );
    let f = edited(root, &fin, "shapes.safetensors", |p| {
        tensor_mut(p, "conv1.weight").2 = vec![10, 9];
        true
    });
    add(
        "ckpt-wrong-shapes",
        "`conv1.weight` stored as 10x9",
        eval(&f),
        "shapes.safetensors",
    );
    let f = edited(root, &fin, "dropped.safetensors", |p| {
        p.0.retain(|t| t.0 != "fc1.bias");
        true
    });
    add(
        "ckpt-missing-tensor",
        "`fc1.bias` missing",
        eval(&f),
        "dropped.safetensors",
    );
    let f = edited(root, &fin, "f16.safetensors", |p| {
        let t = tensor_mut(p, "conv1.bias");
        t.1 = Dtype::F16;
        t.3.truncate(t.3.len() / 2);
        true
    });
    add(
        "ckpt-wrong-dtype",
        "a tensor stored as f16",
        eval(&f),
        "f16.safetensors",
    );
    let f = edited(root, &fin, "plain.safetensors", |_| false);
    add(
        "ckpt-no-metadata",
        "safetensors without our metadata (another program's file)",
        eval(&f),
        "plain.safetensors",
    );
    let f = edited(root, &fin, "nomodel.safetensors", |p| {
        p.1.remove("model");
        true
    });
    add(
        "ckpt-no-model",
        "metadata that names no model",
        eval(&f),
        "nomodel.safetensors",
    );
    let f = edited(root, &fin, "unknown.safetensors", |p| {
        p.1.insert("model".into(), "huge_cnn".into());
        p.1.remove("spec");
        true
    });
    add(
        "ckpt-unknown-model",
        "metadata naming an unknown model, with no spec",
        eval(&f),
        "unknown.safetensors",
    );
    let f = edited(root, &fin, "badspec.safetensors", |p| {
        let spec = p.1["spec"].replace("\"conv\":10", "\"conv\":10,\"kernel\":4");
        p.1.insert("spec".into(), spec);
        true
    });
    add(
        "ckpt-impossible-spec",
        "a spec with an even kernel",
        eval(&f),
        "badspec.safetensors",
    );
    let f = edited(root, &fin, "otherspec.safetensors", |p| {
        let spec = p.1["spec"].replace("\"conv\":20", "\"conv\":24");
        p.1.insert("spec".into(), spec);
        true
    });
    add(
        "ckpt-spec-weights-mismatch",
        "a spec whose second conv has 24 channels, over weights for 20",
        eval(&f),
        "otherspec.safetensors",
    );
    let f = edited(root, &fin, "nan.safetensors", |p| {
        tensor_mut(p, "fc1.weight").3[8..12].copy_from_slice(&f32::NAN.to_le_bytes());
        true
    });
    add(
        "ckpt-nan-weights",
        "a weight that is NaN (a diverged run's weights)",
        eval(&f),
        "fc1.weight",
    );
    let f = edited(root, &fin, "newer.safetensors", |p| {
        p.1.insert("format_version".into(), "99".into());
        true
    });
    add(
        "ckpt-newer-version",
        "format version 99, from a newer cnn-train",
        eval(&f),
        "newer.safetensors",
    );

    // --resume reads <out>/checkpoint.safetensors.
    let resume = |dir: &str| {
        ["--resume", "--train-limit", "500", "--out", dir]
            .map(String::from)
            .to_vec()
    };
    add(
        "resume-missing",
        "`--resume` with no checkpoint in the run folder",
        resume("DIR/no-run"),
        "checkpoint.safetensors",
    );
    let d = resume_dir(root, "resume-weights-only", &fin);
    add(
        "resume-weights-only",
        "`final_state.safetensors` (weights only) as the checkpoint",
        resume(&d),
        "checkpoint.safetensors",
    );
    let mut p = parts(&full);
    tensor_mut(&mut p, "optim.velocity.conv1.weight").2 = vec![90];
    let d = resume_dir(root, "resume-momentum", &serialize(&p, true));
    add(
        "resume-momentum-shape",
        "a momentum buffer of the wrong shape",
        resume(&d),
        "checkpoint.safetensors",
    );
    let mut p = parts(&full);
    edit_state(&mut p, |st| st["history"] = "epoch,loss\n1,banana\n".into());
    let d = resume_dir(root, "resume-history", &serialize(&p, true));
    add(
        "resume-bad-history",
        "a malformed history",
        resume(&d),
        "checkpoint.safetensors",
    );
    let mut p = parts(&full);
    edit_state(&mut p, |st| st["config"]["lr"] = serde_json::json!(-1.0));
    let d = resume_dir(root, "resume-bad-recipe", &serialize(&p, true));
    add(
        "resume-invalid-recipe",
        "a checkpoint whose recorded recipe is invalid (`lr` = -1; the user typed no `--lr`)",
        resume(&d),
        "checkpoint.safetensors",
    );
    add(
        "run-folder-holds-a-run",
        "a fresh run into a folder that holds a run (a forgotten `--resume`)",
        ["--epochs", "1", "--train-limit", "500", "--out", "DIR/run"]
            .map(String::from)
            .to_vec(),
        "--resume",
    );
    std::fs::create_dir_all(root.join("user-folder")).unwrap();
    std::fs::write(root.join("user-folder/history.csv"), "my own numbers\n").unwrap();
    add(
        "run-folder-holds-user-files",
        "a fresh run into a folder of the user's that holds a `history.csv` the run would replace",
        [
            "--epochs",
            "1",
            "--train-limit",
            "500",
            "--out",
            "DIR/user-folder",
        ]
        .map(String::from)
        .to_vec(),
        "history.csv",
    );
    let mut args = resume("DIR/run");
    args[2] = "400".into();
    add(
        "resume-other-data",
        "`--resume` with another `--train-limit` than the run's",
        args,
        "--train-limit",
    );
    let mut args = resume("DIR/run");
    args.extend(["--lr".into(), "0.05".into()]);
    add(
        "resume-other-lr",
        "`--resume --lr 0.05`, unlike the run's recorded 0.5 (it would be ignored)",
        args,
        "--lr",
    );
    for (flag, value, why) in [
        (
            "--epochs",
            "30",
            "more epochs would change the learning-rate schedule",
        ),
        ("--seed", "3", "another seed"),
        ("--batch-size", "32", "another batch size"),
        ("--momentum", "0.5", "another momentum"),
        ("--optimizer", "adam", "another optimizer"),
        (
            "--augment",
            "none",
            "no augmentation on a run trained with light augmentation",
        ),
        ("--rotate", "10", "another rotation"),
        ("--label-smoothing", "0.1", "another label smoothing"),
    ] {
        let mut args = resume("DIR/run");
        args.extend([flag.to_string(), value.to_string()]);
        add(
            &format!(
                "resume-other-{}",
                flag.trim_start_matches('-').replace("batch-size", "batch")
            ),
            &format!("`--resume {flag} {value}`: {why}"),
            args,
            flag,
        );
    }
    let d = resume_dir(root, "resume-fifo", b"");
    mkfifo(&root.join("resume-fifo/checkpoint.safetensors"));
    add(
        "resume-fifo",
        "a FIFO as the run's `checkpoint.safetensors` (it would block forever)",
        resume(&d),
        "checkpoint.safetensors",
    );
    let mut args = resume("DIR/run");
    args.extend(["--model".into(), "medium_cnn".into()]);
    add(
        "resume-other-model",
        "`--resume` of a `small_cnn` run with `--model medium_cnn`",
        args,
        "--model small_cnn",
    );
    let mut args = resume("DIR/run");
    args.extend(["--dataset", "fashion", "--data-dir", "DIR/mnist"].map(String::from));
    add(
        "resume-other-dataset",
        "`--resume` of an MNIST run on Fashion-MNIST",
        args,
        "--dataset mnist",
    );
    v
}

/// Spec files for `--model`, and specs that do not fit the data.
fn spec_cases(root: &Path) -> Vec<Case> {
    use Bin::Train;
    let dir = root.join("specs");
    std::fs::create_dir_all(&dir).unwrap();
    let mut v = Vec::new();
    let mut add = |id: &str, input: &str, file: &str, text: Option<&str>, names: &str| {
        if let Some(text) = text {
            std::fs::write(dir.join(file), text).unwrap();
        }
        let model = format!("DIR/specs/{file}");
        let args = [
            "--model",
            &model,
            "--epochs",
            "1",
            "--train-limit",
            "500",
            "--out",
            "DIR/out",
        ];
        v.push(case(id, input, Train, &args, names));
    };
    add(
        "spec-missing-file",
        "a spec file that does not exist",
        "none.toml",
        None,
        "none.toml",
    );
    add(
        "spec-not-toml",
        "a spec file that is not TOML",
        "garbage.toml",
        Some("layers: [conv 8]\n"),
        "garbage.toml",
    );
    add(
        "spec-unknown-key",
        "a misspelt key (`kernal`)",
        "typo.toml",
        Some("[[layer]]\nconv = 8\nkernal = 5\n"),
        "kernal",
    );
    add(
        "spec-train-unknown-key",
        "a misspelt key in the spec's `[train]` table (`lrr`)",
        "train_typo.toml",
        Some("[[layer]]\nconv = 8\n\n[train]\nlrr = 0.1\n"),
        "[train]: unknown field `lrr`",
    );
    add(
        "spec-train-wrong-type",
        "`[train]` `epochs = \"many\"`",
        "train_type.toml",
        Some("[[layer]]\nconv = 8\n\n[train]\nepochs = \"many\"\n"),
        "[train]",
    );
    add(
        "spec-train-flip-type",
        "`[train]` `flip = \"yes\"`",
        "train_flip.toml",
        Some("[[layer]]\nconv = 8\n\n[train]\nflip = \"yes\"\n"),
        "[train]: invalid type: string \"yes\", expected a boolean",
    );
    add(
        "spec-train-bad-value",
        "`[train]` `lr = -1`",
        "train_lr.toml",
        Some("[[layer]]\nconv = 8\n\n[train]\nlr = -1.0\n"),
        "[train] lr",
    );
    add(
        "spec-train-accepted",
        "a `[train]` table (Adam, no augmentation; the flags' `--epochs 1` wins over its 20)",
        "train_ok.toml",
        Some(
            "name = \"with_recipe\"\n\n[[layer]]\nconv = 8\n\n[train]\noptimizer = \"adam\"\naugment = \"none\"\nepochs = 20\n",
        ),
        "",
    );
    add(
        "spec-even-kernel",
        "`kernel = 4` with the default same padding",
        "even.toml",
        Some("[[layer]]\nconv = 8\nkernel = 4\n"),
        "layer 1",
    );
    add(
        "spec-zero-width",
        "`linear = 0`",
        "zero.toml",
        Some("[[layer]]\nlinear = 0\n"),
        "layer 1",
    );
    add(
        "spec-bad-dropout",
        "`dropout = 1.5`",
        "drop.toml",
        Some("[[layer]]\nconv = 4\n[[layer]]\ndropout = 1.5\n"),
        "layer 2",
    );
    add(
        "spec-two-kinds",
        "a layer with both `conv` and `maxpool`",
        "two.toml",
        Some("[[layer]]\nconv = 4\nmaxpool = 2\n"),
        "layer 1",
    );
    add(
        "spec-conv-after-linear",
        "a conv layer after a linear layer",
        "order.toml",
        Some("[[layer]]\nlinear = 32\n[[layer]]\nconv = 4\n"),
        "layer 2",
    );
    add(
        "spec-too-many-pools",
        "five 2x2 pools on 28x28 digits (the fifth would pool a 1x1 map)",
        "pools.toml",
        Some(&"[[layer]]\nmaxpool = 2\n".repeat(5)),
        "layer 5",
    );
    add(
        "spec-activations-too-large",
        "four `conv = 1024` layers on 28x28 digits: 3.3 GB of activations for a batch of 64 (`conv = 65536` once aborted the process)",
        "vast.toml",
        Some(&"[[layer]]\nconv = 1024\nkernel = 1\n".repeat(4)),
        "--batch-size",
    );
    let textbook = [
        (
            "spec-wide-conv",
            "`conv = 2048` (at most 1024 channels)",
            "conv = 2048",
            "layer 1",
        ),
        (
            "spec-big-kernel",
            "`kernel = 13` (at most 11)",
            "conv = 8\nkernel = 13",
            "layer 1",
        ),
        (
            "spec-zero-stride",
            "`stride = 0`",
            "conv = 8\nstride = 0",
            "stride",
        ),
        (
            "spec-bad-padding",
            "`padding = \"full\"`",
            "conv = 8\npadding = \"full\"",
            "padding",
        ),
        (
            "spec-negative-padding",
            "`padding = -1`",
            "conv = 8\npadding = -1",
            "padding",
        ),
        (
            "spec-wide-padding",
            "`padding = 3` with a 3x3 kernel",
            "conv = 8\npadding = 3",
            "padding",
        ),
        (
            "spec-unknown-activation",
            "`activation = \"relu6\"`",
            "conv = 8\nactivation = \"relu6\"",
            "activation",
        ),
        (
            "spec-batchnorm-on-linear",
            "`batchnorm = true` on a linear layer",
            "linear = 8\nbatchnorm = true",
            "batchnorm",
        ),
        (
            "spec-batchnorm-false",
            "`batchnorm = false`",
            "conv = 8\nbatchnorm = false",
            "batchnorm",
        ),
        (
            "spec-stride-on-pool",
            "`stride = 2` on a maxpool layer",
            "maxpool = 2\nstride = 2",
            "stride",
        ),
        (
            "spec-activation-on-pool",
            "`activation` on an avgpool layer",
            "avgpool = 2\nactivation = \"tanh\"",
            "activation",
        ),
        ("spec-zero-pool", "`avgpool = 0`", "avgpool = 0", "layer 1"),
        (
            "spec-global-false",
            "`globalavgpool = false`",
            "globalavgpool = false",
            "globalavgpool",
        ),
    ];
    for (id, input, layer, names) in textbook {
        let file = format!("{id}.toml");
        add(
            id,
            input,
            &file,
            Some(&format!("[[layer]]\n{layer}\n")),
            names,
        );
    }
    add(
        "spec-conv-after-global-pool",
        "a conv layer after `globalavgpool = true`",
        "after_gap.toml",
        Some("[[layer]]\nglobalavgpool = true\n[[layer]]\nconv = 4\n"),
        "layer 2",
    );
    add(
        "spec-map-vanishes",
        "three valid 11x11 convs on 28x28 digits (the third gets an 8x8 map)",
        "vanish.toml",
        Some(&"[[layer]]\nconv = 4\nkernel = 11\npadding = \"valid\"\n".repeat(3)),
        "layer 3",
    );
    add(
        "spec-pool-window-too-big",
        "`avgpool = 8` after a stride-4 conv (7x7 map)",
        "bigpool.toml",
        Some("[[layer]]\nconv = 4\nstride = 4\n[[layer]]\navgpool = 8\n"),
        "layer 2",
    );
    let deep = "[[layer]]\nlinear = 1\n".repeat(101);
    add(
        "spec-too-many-layers",
        "101 layers (building and drawing grow with the count; 40,000 once took minutes)",
        "deep.toml",
        Some(&deep),
        "at most 100",
    );
    add(
        "spec-takes-a-preset-name",
        "a spec file named `small_cnn` with other layers (it would pass for the preset)",
        "impostor.toml",
        Some("name = \"small_cnn\"\n[[layer]]\nconv = 32\n"),
        "a preset's name",
    );
    add(
        "spec-input-extra-elements",
        "`input` with elements beyond the three sides (they were once ignored)",
        "input-extra.toml",
        Some("input = [1, 28, 28, \"junk\", 7]\n[[layer]]\nconv = 4\n"),
        "three positive integers",
    );
    add(
        "spec-input-two-sides",
        "`input` with two numbers",
        "input-short.toml",
        Some("input = [28, 28]\n[[layer]]\nconv = 4\n"),
        "three positive integers",
    );
    add(
        "spec-input-mismatch",
        "`input = [1, 14, 14]` on 28x28 digits",
        "input.toml",
        Some("input = [1, 14, 14]\n[[layer]]\nconv = 4\n"),
        "input",
    );
    add(
        "spec-negative-channels",
        "`conv = -4`",
        "negative.toml",
        Some("[[layer]]\nconv = -4\n"),
        "negative.toml",
    );
    add(
        "spec-bad-name",
        "`name = \"../x\"` (names become file names)",
        "badname.toml",
        Some("name = \"../x\"\n[[layer]]\nconv = 4\n"),
        "name",
    );
    add(
        "spec-huge-file",
        "a 2 MiB spec file (specs are read with a bound)",
        "huge.toml",
        Some(&"# padding\n".repeat(210_000)),
        "huge.toml",
    );
    add(
        "spec-classes-mismatch",
        "`classes = 5` on digits labelled 0-9 (labels outside `classes`)",
        "classes.toml",
        Some("classes = 5\n[[layer]]\nconv = 4\n"),
        "classes",
    );
    v
}

fn flag_cases() -> Vec<Case> {
    use Bin::Train;
    let mut v = Vec::new();
    let quick = ["--epochs", "1", "--train-limit", "200"];
    // (flag, [zero, negative, NaN, huge]); "ok" marks accepted values.
    let values = ["0", "-1", "NaN", "1e300"];
    let int_values = ["0", "-1", "NaN", "99999999999999999999"];
    let flags: [(&str, [&str; 4], [bool; 4]); 17] = [
        ("--epochs", int_values, [false; 4]),
        ("--batch-size", int_values, [false; 4]),
        ("--lr", values, [false; 4]),
        ("--momentum", values, [true, false, false, false]),
        ("--l2", values, [true, false, false, false]),
        ("--seed", int_values, [true, false, false, false]),
        ("--warmup-epochs", values, [true, false, false, false]),
        ("--shift", int_values, [true, false, false, false]),
        ("--train-limit", int_values, [false; 4]),
        ("--ngpus", int_values, [true, false, false, false]),
        ("--rotate", values, [true, false, false, false]),
        ("--scale", values, [true, false, false, false]),
        ("--translate", values, [true, false, false, false]),
        ("--elastic", values, [true, false, false, false]),
        ("--label-smoothing", values, [true, false, false, false]),
        ("--clean-epochs", int_values, [true, false, false, false]),
        ("--validation", int_values, [true, false, false, false]),
    ];
    for (flag, vals, ok) in flags {
        for (i, (val, ok)) in vals.iter().zip(ok).enumerate() {
            let what = ["zero", "negative", "nan", "huge"][i];
            let mut args = vec![flag, val];
            if ok {
                args.extend(quick);
                args.extend(["--out", "DIR/accepted"]);
            } else {
                args.extend(["--out", "DIR/out"]);
            }
            let name = flag.trim_start_matches("--");
            v.push(case(
                &format!("flag-{name}-{what}"),
                &format!("`{flag} {val}`"),
                Train,
                &args,
                if ok { "" } else { flag },
            ));
        }
    }
    // Large values that parse but make no sense.
    for (flag, val) in [
        ("--epochs", "1000000"),
        ("--batch-size", "1000000"),
        ("--shift", "30"),
        ("--ngpus", "2"),
        ("--rotate", "200"),
        ("--elastic", "9"),
        ("--clean-epochs", "16"),
        ("--validation", "60000"),
    ] {
        let name = flag.trim_start_matches("--");
        v.push(case(
            &format!("flag-{name}-large"),
            &format!("`{flag} {val}`"),
            Train,
            &[flag, val, "--out", "DIR/out"],
            flag,
        ));
    }
    for (id, input, args, names) in [
        (
            "flag-unknown-model",
            "`--model big_cnn`",
            &["--model", "big_cnn"][..],
            "big_cnn",
        ),
        (
            "flag-unknown-optimizer",
            "`--optimizer rmsprop`",
            &["--optimizer", "rmsprop"][..],
            "--optimizer",
        ),
        (
            "flag-shift-and-translate",
            "`--shift 2 --translate 1.5`: two augmentations of one kind",
            &["--shift", "2", "--translate", "1.5"][..],
            "--shift",
        ),
        (
            "flag-shift-and-flip",
            "`--shift 2 --flip`: whole-pixel shifts with the warp's mirroring",
            &["--shift", "2", "--flip"][..],
            "--shift",
        ),
        (
            "flag-unknown-flag",
            "a misspelt flag",
            &["--learning-rate", "0.1"][..],
            "--learning-rate",
        ),
        (
            "flag-bad-device",
            "`--device tpu`",
            &["--device", "tpu"][..],
            "--device",
        ),
        (
            "flag-gpu-without-cuda",
            "`--ngpus 1` in a build without the `cuda` feature",
            &["--ngpus", "1"][..],
            "--features cuda",
        ),
        (
            "flag-device-contradiction",
            "`--ngpus 0 --device cuda`",
            &["--ngpus", "0", "--device", "cuda"][..],
            "--ngpus",
        ),
        (
            "flag-bad-ops",
            "`--ops turbo`",
            &["--ops", "turbo"][..],
            "--ops",
        ),
        (
            "flag-checkpoint-without-final-state",
            "`--checkpoint` without `--final-state` (it would be ignored)",
            &["--checkpoint", "DIR/run/final_state.safetensors"][..],
            "--final-state",
        ),
        (
            "flag-resume-and-final-state",
            "`--resume` with `--final-state`",
            &["--resume", "--final-state"][..],
            "--final-state",
        ),
        (
            "flag-out-is-a-file",
            "`--out` names an existing file",
            &[
                "--out",
                "DIR/a-file",
                "--epochs",
                "1",
                "--train-limit",
                "200",
            ][..],
            "a-file",
        ),
    ] {
        let mut args = args.to_vec();
        if !args.contains(&"--out") {
            args.extend(["--out", "DIR/out"]);
        }
        v.push(case(id, input, Train, &args, names));
    }
    v.push(case(
        "diverges-l2",
        "an L2 term so strong that weight decay alone diverges (a lower `--lr` would not help)",
        Train,
        &[
            "--l2",
            "1e6",
            "--epochs",
            "1",
            "--train-limit",
            "640",
            "--warmup-epochs",
            "0",
            "--out",
            "DIR/out",
        ],
        "--l2",
    ));
    for (threads, input) in [
        (
            "200",
            "`RAYON_NUM_THREADS` far above the cores (an epoch 56x slower)",
        ),
        ("many", "`RAYON_NUM_THREADS` that is not a number"),
    ] {
        let mut c = case(
            &format!("env-threads-{threads}"),
            input,
            Train,
            &["--epochs", "1", "--train-limit", "200", "--out", "DIR/out"],
            "RAYON_NUM_THREADS",
        );
        c.env = vec![("RAYON_NUM_THREADS".into(), threads.into())];
        v.push(c);
    }
    v
}

/// A 112x112 JPEG of `digit` (dark ink on white) cut to its first 60%.
fn cut_jpeg(digit: &[u8]) -> Vec<u8> {
    let img = image::GrayImage::from_fn(112, 112, |x, y| {
        image::Luma([255 - digit[(y / 4) as usize * 28 + (x / 4) as usize]])
    });
    let mut jpeg = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut jpeg),
        image::ImageFormat::Jpeg,
    )
    .unwrap();
    jpeg.truncate(jpeg.len() * 3 / 5);
    jpeg
}

/// Spec files whose weights beside them (`X.toml`, `X.safetensors`) cannot serve: another
/// network's, and bytes that are no weights at all.
fn beside_cases(root: &Path) -> Vec<Case> {
    let dir = root.join("beside");
    std::fs::create_dir_all(&dir).unwrap();
    let spec = "[[layer]]\nconv = 4\n[[layer]]\nmaxpool = 2\n";
    let small = cnn_cli::assets_dir().join("models/small_cnn.safetensors");
    for (name, weights) in [
        ("other_net", std::fs::read(small).unwrap()),
        ("junk_net", b"not weights".to_vec()),
    ] {
        let toml = format!("name = \"{name}\"\n{spec}");
        std::fs::write(dir.join(format!("{name}.toml")), toml).unwrap();
        std::fs::write(dir.join(format!("{name}.safetensors")), weights).unwrap();
    }
    [
        (
            "pic-beside-other-model",
            "a spec file whose `.safetensors` beside it holds another network (`small_cnn`)",
            "other_net",
        ),
        (
            "pic-beside-not-weights",
            "a spec file whose `.safetensors` beside it is not a weights file",
            "junk_net",
        ),
    ]
    .into_iter()
    .map(|(id, input, name)| {
        let model = format!("DIR/beside/{name}.toml");
        let args = ["--model", &model, "DIR/pics/digit.png"];
        case(
            id,
            input,
            Bin::Predict,
            &args,
            &format!("{name}.safetensors"),
        )
    })
    .collect()
}

fn picture_cases(root: &Path, digit: &[u8]) -> Vec<Case> {
    use Bin::Predict;
    let pics = root.join("pics");
    std::fs::create_dir_all(pics.join("folder.png")).unwrap();
    let mut png = Vec::new();
    image::GrayImage::from_raw(28, 28, digit.to_vec())
        .unwrap()
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let blank = {
        let mut b = Vec::new();
        image::GrayImage::from_pixel(64, 64, image::Luma([255]))
            .write_to(&mut std::io::Cursor::new(&mut b), image::ImageFormat::Png)
            .unwrap();
        b
    };
    for (name, bytes) in [
        ("text.png", b"not a picture".to_vec()),
        ("empty.png", vec![]),
        ("blank.png", blank),
        ("huge.png", common::png_header(100_000, 100_000)),
        ("cut.png", png[..png.len() / 2].to_vec()),
        ("cut.jpg", cut_jpeg(digit)),
        ("anim.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec()),
        ("digit.png", png),
    ] {
        std::fs::write(pics.join(name), bytes).unwrap();
    }
    mkfifo(&pics.join("fifo.png"));
    let mut v = Vec::new();
    for (id, input, file) in [
        (
            "pic-missing",
            "a file that does not exist",
            "DIR/pics/none.png",
        ),
        (
            "pic-not-an-image",
            "a text file named `.png`",
            "DIR/pics/text.png",
        ),
        ("pic-empty", "an empty file", "DIR/pics/empty.png"),
        ("pic-blank", "a blank page (no ink)", "DIR/pics/blank.png"),
        (
            "pic-huge",
            "a PNG whose header claims 100,000 x 100,000 pixels (refused before decoding)",
            "DIR/pics/huge.png",
        ),
        (
            "pic-truncated",
            "a real PNG cut in half",
            "DIR/pics/cut.png",
        ),
        (
            "pic-gif-no-image",
            "a GIF with no image in it",
            "DIR/pics/anim.gif",
        ),
        (
            "pic-cut-jpeg",
            "a JPEG cut short after its image data began (decoders fill the rest with grey)",
            "DIR/pics/cut.jpg",
        ),
        (
            "pic-fifo",
            "a FIFO named `.png` (it would block forever)",
            "DIR/pics/fifo.png",
        ),
        ("pic-folder", "a folder", "DIR/pics/folder.png"),
    ] {
        let names = file.rsplit('/').next().unwrap();
        let args = ["--model", "small_cnn", "--run", "DIR/run", file];
        v.push(case(id, input, Predict, &args, names));
    }
    v.push(case(
        "pic-no-model",
        "a run folder with no trained model",
        Predict,
        &[
            "--model",
            "small_cnn",
            "--run",
            "DIR/no-run",
            "DIR/pics/digit.png",
        ],
        "final_state.safetensors",
    ));
    v.extend(beside_cases(root));
    for (id, input, args, names) in [
        (
            "pic-save-into-a-file",
            "`--save-preprocessed` naming a file, not a folder",
            &["--save-preprocessed", "DIR/pics/digit.png"][..],
            "digit.png",
        ),
        (
            "pic-unknown-model",
            "`--model resnet50`",
            &["--model", "resnet50"][..],
            "--model",
        ),
        (
            "pic-bad-device",
            "`--device tpu`",
            &["--device", "tpu"][..],
            "--device",
        ),
    ] {
        let mut all = args.to_vec();
        all.extend(["--run", "DIR/run", "DIR/pics/digit.png"]);
        v.push(case(id, input, Predict, &all, names));
    }
    v.push(case(
        "pic-no-pictures",
        "no picture given",
        Predict,
        &["--run", "DIR/run"],
        "required arguments",
    ));
    v.push(case(
        "pic-other-model",
        "a `small_cnn` run used as `medium_cnn`",
        Predict,
        &[
            "--model",
            "medium_cnn",
            "--run",
            "DIR/run",
            "DIR/pics/digit.png",
        ],
        "--model small_cnn",
    ));
    v
}

/// `cnn-import` of the PyTorch fixture (copied under DIR/torch) and `cnn-export`, each
/// given one thing wrong.
fn interop_cases(root: &Path) -> Vec<Case> {
    use Bin::{Export, Import};
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../cnn-training/tests/fixtures/torch_import");
    let torch = root.join("torch");
    std::fs::create_dir_all(&torch).unwrap();
    for f in ["state_dict.safetensors", "spec.toml", "renames.toml"] {
        std::fs::copy(fixture.join(f), torch.join(f)).unwrap();
    }
    std::fs::write(torch.join("bad_renames.toml"), "\"features.0\" = 3\n").unwrap();
    std::fs::write(torch.join("notes.txt"), "not tensors\n").unwrap();
    let import = |id: &str, input: &str, weights: &str, extra: &[&str], names: &str| {
        let mut args = vec![
            "--model",
            "DIR/torch/spec.toml",
            "--weights",
            weights,
            "--out",
            "DIR/out",
        ];
        args.extend_from_slice(extra);
        case(id, input, Import, &args, names)
    };
    vec![
        import(
            "import-unplaced-tensor",
            "a state dict named otherwise than the spec, without `--rename`",
            "DIR/torch/state_dict.safetensors",
            &[],
            "state_dict.safetensors",
        ),
        import(
            "import-bad-renames",
            "a rename table mapping a module to a number",
            "DIR/torch/state_dict.safetensors",
            &["--rename", "DIR/torch/bad_renames.toml"],
            "--rename",
        ),
        import(
            "import-not-safetensors",
            "`--weights` a text file",
            "DIR/torch/notes.txt",
            &["--rename", "DIR/torch/renames.toml"],
            "notes.txt",
        ),
        case(
            "export-no-weights",
            "`--run` a folder without `final_state.safetensors`",
            Export,
            &["--run", "DIR/torch", "--out", "DIR/x.onnx"],
            "--run",
        ),
        case(
            "export-missing-folder",
            "`--out` in a folder that does not exist",
            Export,
            &["--model", "small_cnn", "--out", "DIR/nowhere/x.onnx"],
            "--out",
        ),
        case(
            "export-out-exists",
            "`--out` an existing file, without `--overwrite`",
            Export,
            &["--model", "small_cnn", "--out", "DIR/torch/spec.toml"],
            "--out",
        ),
        case(
            "export-not-a-preset",
            "`--model` a spec, not a preset (its weights are in a run)",
            Export,
            &["--model", "lenet5", "--out", "DIR/x.onnx"],
            "--model",
        ),
    ]
}

struct Seen {
    code: i32,
    line: String,
}

fn run_case(c: &Case, root: &Path, cache: &Path) -> Seen {
    let exe = match c.bin {
        Bin::Train => env!("CARGO_BIN_EXE_cnn-train"),
        Bin::Predict => env!("CARGO_BIN_EXE_cnn-predict"),
        Bin::Import => env!("CARGO_BIN_EXE_cnn-import"),
        Bin::Export => env!("CARGO_BIN_EXE_cnn-export"),
    };
    let root_s = root.to_str().unwrap();
    let args: Vec<String> = c.args.iter().map(|a| a.replace("DIR", root_s)).collect();
    // Every case starts without a run in its output folders (a fresh run refuses to replace
    // one).
    for scratch in ["out", "accepted"] {
        let _ = std::fs::remove_dir_all(root.join(scratch));
    }
    let out = Command::new(exe)
        .args(&args)
        .envs(c.env.iter().map(|(k, v)| (k, v)))
        .env("CNN_DATA_CACHE", cache)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).replace(root_s, "DIR");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let code = out.status.code().unwrap_or(-1);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{}: panic: {stderr}",
        c.id
    );
    if c.names.is_empty() {
        assert_eq!(code, 0, "{}: should be accepted: {stderr}", c.id);
        let last = stdout.lines().last().unwrap_or_default();
        assert!(last.starts_with("test accuracy: "), "{}: {stdout}", c.id);
        return Seen {
            code,
            line: "accepted: trains and ends with `test accuracy: ...`".into(),
        };
    }
    let line = stderr.lines().next().unwrap_or_default().to_string();
    assert_ne!(code, 0, "{}: should fail: {stdout}", c.id);
    assert!(line.starts_with("error"), "{}: {stderr}", c.id);
    assert!(
        line.contains(&c.names),
        "{}: the error should name {:?}: {line}",
        c.id,
        c.names
    );
    if c.bin == Bin::Train && code == 1 {
        // Our own errors are one line; clap adds a usage hint after its line.
        assert_eq!(stderr.lines().count(), 1, "{}: {stderr}", c.id);
    }
    Seen { code, line }
}

fn cell(s: &str) -> String {
    let s = s.replace('|', "\\|");
    if s.contains('`') {
        format!("`` {s} ``")
    } else {
        format!("`{s}`")
    }
}

fn table(sections: &[Section], seen: &[Vec<Seen>]) -> String {
    let mut md = String::new();
    for (section, seen) in sections.iter().zip(seen) {
        md.push_str(&format!("\n### {}\n\n", section.title));
        md.push_str("| case | input | command | exit | what the user sees |\n");
        md.push_str("|---|---|---|---:|---|\n");
        for (c, s) in section.cases.iter().zip(seen) {
            let bin = match c.bin {
                Bin::Train => "cnn-train",
                Bin::Predict => "cnn-predict",
                Bin::Import => "cnn-import",
                Bin::Export => "cnn-export",
            };
            let env: String = c.env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
            let command = format!("{env}{bin} {}", c.args.join(" "));
            md.push_str(&format!(
                "| `{}` | {} | {} | {} | {} |\n",
                c.id,
                c.input,
                cell(&command),
                s.code,
                if c.names.is_empty() {
                    s.line.clone()
                } else {
                    cell(&s.line)
                },
            ));
        }
    }
    md.push('\n');
    md
}

#[test]
fn every_bad_input_in_the_catalogue_gets_the_documented_clean_error() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let cache = root.join("cache");
    let mnist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/mnist");
    let data = cnn_data::load(&cnn_data::DataSource::new(
        cnn_cli::assets_dir().join("mnist"),
        cnn_data::DatasetKind::Mnist,
    ))
    .unwrap();
    let digits = &data.test.images()[..784 * 4];
    let labels = &data.test.labels()[..4];

    // A real trained run for the checkpoint and picture cases, and a copy of MNIST.
    let run = root.join("run");
    common::train_ok(
        &[
            "--model",
            "small_cnn",
            "--epochs",
            "1",
            "--train-limit",
            "500",
        ],
        &run,
        &cache,
    );
    std::fs::create_dir_all(root.join("mnist")).unwrap();
    for f in std::fs::read_dir(&mnist).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), root.join("mnist").join(f.file_name())).unwrap();
    }

    let sections = [
        Section {
            title: "Data files",
            cases: data_cases(root, digits, labels),
        },
        Section {
            title: "Network specs (`--model FILE`)",
            cases: spec_cases(root),
        },
        Section {
            title: "Checkpoints",
            cases: checkpoint_cases(root, &run),
        },
        Section {
            title: "Flags",
            cases: flag_cases(),
        },
        Section {
            title: "Pictures for `cnn-predict`",
            cases: picture_cases(root, &digits[..784]),
        },
        Section {
            title: "`cnn-import` and `cnn-export`",
            cases: interop_cases(root),
        },
        Section {
            title: "Folders of pictures (`--data-dir` with `train/` and `test/`)",
            cases: folders::folder_cases(root, &digits[..784]),
        },
    ];
    let mut ids = std::collections::HashSet::new();
    for c in sections.iter().flat_map(|s| &s.cases) {
        assert!(ids.insert(c.id.clone()), "duplicate case {}", c.id);
    }
    let seen: Vec<Vec<Seen>> = sections
        .iter()
        .map(|s| s.cases.iter().map(|c| run_case(c, root, &cache)).collect())
        .collect();
    let generated = table(&sections, &seen);

    let page = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../BAD_INPUTS.md");
    let text = std::fs::read_to_string(&page).unwrap();
    let (head, rest) = text.split_once(BEGIN).unwrap();
    let (_, tail) = rest.split_once(END).unwrap();
    let rows = ids.len();
    let expected = format!("{head}{BEGIN}\n{generated}{END}{tail}");
    if std::env::var_os("CNN_BLESS").is_some() {
        std::fs::write(&page, &expected).unwrap();
        return;
    }
    assert!(
        text == expected,
        "BAD_INPUTS.md does not show what users see ({rows} cases); rerun with CNN_BLESS=1 \
         and review the diff"
    );
}
