//! Network specs: the preset files, TOML round trips, shape inference and every refusal.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::Path;

use cnn_models::{Arch, Error, LayerSpec, NetSpec};

fn preset_file(name: &str) -> String {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../assets/models/{name}.toml"));
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn preset_files_are_the_presets() {
    for arch in Arch::ALL {
        let parsed = NetSpec::from_toml(&preset_file(arch.name()), "unused").unwrap();
        assert_eq!(parsed, arch.spec(), "{arch}");
    }
}

#[test]
fn presets_keep_the_original_parameters_and_names() {
    assert_eq!(Arch::SmallCnn.num_params(), 11_730);
    assert_eq!(Arch::MediumCnn.num_params(), 261_458);
    let names: Vec<String> = Arch::MediumCnn
        .layers()
        .into_iter()
        .map(|l| l.name)
        .collect();
    assert_eq!(
        names,
        [
            "input", "conv1", "pool1", "conv2", "pool2", "conv3", "flatten", "fc1", "dropout",
            "fc2"
        ]
    );
    let small = Arch::SmallCnn.layers();
    assert_eq!(small.last().unwrap().name, "fc1");
    assert_eq!(small[4].output_shape, vec![20, 7, 7]);
}

#[test]
fn shapes_are_inferred_for_other_kernels_inputs_and_classes() {
    let spec = NetSpec::from_toml(&preset_file("deep5"), "x").unwrap();
    let layers = spec.layers().unwrap();
    let shapes: Vec<Vec<usize>> = layers.iter().map(|l| l.output_shape.clone()).collect();
    assert_eq!(shapes[1], vec![12, 28, 28]);
    assert_eq!(shapes[6], vec![32, 3, 3], "7x7 pooled floors to 3x3");
    assert_eq!(layers[1].params, 12 * 25 + 12);
    assert_eq!(layers[1].kind, "Conv2d 5x5, pad 2, ReLU");
    assert_eq!(layers.last().unwrap().output_shape, vec![10]);

    let small14 = Arch::SmallCnn.spec().resolve([1, 14, 14], 5).unwrap();
    let l = small14.layers().unwrap();
    assert_eq!(l.last().unwrap().params, 20 * 3 * 3 * 5 + 5);
}

#[test]
fn toml_round_trips_and_defaults_the_name() {
    let spec = NetSpec::from_toml(&preset_file("deep5"), "x").unwrap();
    let again = NetSpec::from_toml(&spec.to_toml().unwrap(), "y").unwrap();
    assert_eq!(spec, again);
    let unnamed = NetSpec::from_toml("[[layer]]\nconv = 4\n", "from_stem").unwrap();
    assert_eq!(unnamed.name, "from_stem");
    assert_eq!(
        unnamed.layers,
        vec![LayerSpec::Conv {
            channels: 4,
            kernel: 3
        }]
    );
    let json = serde_json::to_string(&spec).unwrap();
    assert_eq!(serde_json::from_str::<NetSpec>(&json).unwrap(), spec);
}

fn err(text: &str) -> String {
    NetSpec::from_toml(text, "t").unwrap_err().to_string()
}

#[test]
fn impossible_specs_are_refused_naming_the_layer() {
    assert_eq!(
        err("[[layer]]\nconv = 8\nkernel = 4\n"),
        "layer 1: kernel 4 must be odd, from 1 to 7 (same padding needs an odd kernel)"
    );
    assert!(err("[[layer]]\nconv = 8\nkernel = 9\n").starts_with("layer 1: kernel 9"));
    assert_eq!(
        err("input = [1, 2, 2]\n[[layer]]\nmaxpool = 2\n[[layer]]\nmaxpool = 2\n"),
        "layer 2: cannot max-pool a 1x1 map (too many pools for this input)"
    );
    assert_eq!(
        err("[[layer]]\nlinear = 0\n"),
        "layer 1: linear 0 must be from 1 to 65536"
    );
    assert_eq!(
        err("[[layer]]\nconv = 4\n[[layer]]\ndropout = 1.0\n"),
        "layer 2: dropout 1 must be in [0, 1)"
    );
    assert_eq!(
        err("[[layer]]\ndropout = -0.1\n"),
        "layer 1: dropout -0.1 must be in [0, 1)"
    );
    assert_eq!(
        err("input = [1, 8, 8]\n[[layer]]\nlinear = 4\n[[layer]]\nconv = 4\n"),
        "layer 2: conv after a linear layer (spatial layers must come first)"
    );
    assert_eq!(
        err("[[layer]]\nconv = 4\nlinear = 3\n"),
        "layer 1: set exactly one of conv, maxpool, linear, dropout (found conv, linear)"
    );
    assert_eq!(
        err("[[layer]]\nmaxpool = 3\n"),
        "layer 1: maxpool 3 is not supported (only 2)"
    );
    assert_eq!(
        err("[[layer]]\nlinear = 3\nkernel = 3\n"),
        "layer 1: kernel is only allowed on a conv layer"
    );
    assert_eq!(
        err("name = \"../x\"\n"),
        "name `../x`: use 1 to 64 letters, digits, `_`, `-` or `.`, not starting with `.`"
    );
}

#[test]
fn toml_errors_are_one_line_with_the_line_number() {
    let e = err("name = \"a\"\n[[layer]]\nconv = 8\nkernal = 5\n");
    assert!(e.starts_with("line 4: unknown field `kernal`"), "{e}");
    assert!(!e.contains('\n'));
    let e = err("this is not toml");
    assert!(e.starts_with("line 1: "), "{e}");
    assert!(!e.contains('\n'));
}

#[test]
fn data_must_agree_with_a_spec_that_states_its_shape() {
    let spec = NetSpec::from_toml(&preset_file("deep5"), "x").unwrap();
    match spec.resolve([1, 14, 14], 10) {
        Err(Error::InputMismatch {
            spec: [1, 28, 28],
            data: [1, 14, 14],
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    match spec.resolve([1, 28, 28], 26) {
        Err(Error::ClassesMismatch {
            spec: 10, data: 26, ..
        }) => {}
        other => panic!("{other:?}"),
    }
    // Presets take both from the data, and then refuse an input too small to pool twice.
    assert!(Arch::MediumCnn.spec().resolve([1, 3, 3], 10).is_err());
    assert!(Arch::MediumCnn.spec().resolve([1, 8, 8], 3).is_ok());
}
