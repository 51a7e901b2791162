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
        vec![LayerSpec::Conv(cnn_models::ConvSpec::new(4))]
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
        "layer 1: kernel 4 is even, and padding \"same\" (the default) needs an odd kernel; set padding = \"valid\" or a number of pixels"
    );
    assert!(
        err("[[layer]]\nconv = 8\nkernel = 12\n")
            .starts_with("layer 1: kernel 12 must be from 1 to 11")
    );
    assert_eq!(
        err("input = [1, 2, 2]\n[[layer]]\nmaxpool = 2\n[[layer]]\nmaxpool = 2\n"),
        "layer 2: cannot maxpool a 1x1 map with a 2x2 window (too many pools or strides for this input)"
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
        "layer 1: set exactly one of conv, maxpool, avgpool, globalavgpool, linear, dropout (found conv, linear)"
    );
    assert_eq!(
        err("[[layer]]\nmaxpool = 0\n"),
        "layer 1: pool window 0 must be at least 1"
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
fn impossible_textbook_layers_are_refused_naming_the_layer_and_key() {
    let cases = [
        (
            "conv = 8\nstride = 0",
            "layer 1: stride 0 must be at least 1",
        ),
        (
            "conv = 8\npadding = \"full\"",
            "layer 1: padding \"full\" must be \"same\", \"valid\" or a number of pixels",
        ),
        (
            "conv = 8\npadding = -1",
            "layer 1: padding -1 must be \"same\", \"valid\" or a number of pixels",
        ),
        (
            "conv = 8\nkernel = 3\npadding = 3",
            "layer 1: padding 3 must be less than the kernel side (3)",
        ),
        (
            "conv = 8\nactivation = \"relu6\"",
            "layer 1: activation \"relu6\" is not one of relu, tanh, gelu, silu, none",
        ),
        (
            "linear = 8\nbatchnorm = true",
            "layer 1: batchnorm is only allowed on a conv layer",
        ),
        (
            "maxpool = 2\nactivation = \"tanh\"",
            "layer 1: activation is only allowed on a conv or linear layer",
        ),
        (
            "linear = 8\nstride = 2",
            "layer 1: stride is only allowed on a conv layer",
        ),
        (
            "conv = 8\nbatchnorm = false",
            "layer 1: batchnorm = false does nothing; write batchnorm = true or leave the key out",
        ),
        (
            "globalavgpool = false",
            "layer 1: globalavgpool = false does nothing; write globalavgpool = true or leave the key out",
        ),
        ("conv = 1025", "layer 1: conv 1025 must be from 1 to 1024"),
        ("avgpool = 0", "layer 1: pool window 0 must be at least 1"),
    ];
    for (layer, want) in cases {
        assert_eq!(err(&format!("[[layer]]\n{layer}\n")), want, "{layer}");
    }
    let shaped = |layers: &str| err(&format!("input = [1, 8, 8]\n{layers}"));
    assert_eq!(
        shaped("[[layer]]\nconv = 4\nkernel = 9\npadding = \"valid\"\n"),
        "layer 1: conv kernel is larger than its padded 8x8 input map (the map shrinks to nothing)"
    );
    assert_eq!(
        shaped("[[layer]]\nglobalavgpool = true\n[[layer]]\nconv = 4\n"),
        "layer 2: conv after the globalavgpool of layer 1 (only linear and dropout layers may follow it)"
    );
    assert_eq!(
        shaped("[[layer]]\nconv = 4\nstride = 4\n[[layer]]\navgpool = 3\n"),
        "layer 2: cannot avgpool a 2x2 map with a 3x3 window (too many pools or strides for this input)"
    );
}

#[test]
fn textbook_layers_have_pytorch_shapes_names_and_parameters() {
    let text = "input = [1, 28, 28]\nclasses = 10\n\
        [[layer]]\nconv = 6\nkernel = 5\npadding = 2\nactivation = \"tanh\"\n\
        [[layer]]\navgpool = 2\n\
        [[layer]]\nconv = 16\nkernel = 5\npadding = \"valid\"\nbatchnorm = true\n\
        [[layer]]\nconv = 32\nstride = 2\nbatchnorm = true\nactivation = \"gelu\"\n\
        [[layer]]\nglobalavgpool = true\n\
        [[layer]]\nlinear = 20\nactivation = \"silu\"\n";
    let spec = NetSpec::from_toml(text, "t").unwrap();
    let layers = spec.layers().unwrap();
    let shapes: Vec<(&str, &[usize])> = layers
        .iter()
        .map(|l| (l.name.as_str(), l.output_shape.as_slice()))
        .collect();
    // floor((in + 2P - K) / S) + 1 at each conv.
    let want: [(&str, &[usize]); 8] = [
        ("input", &[1, 28, 28]),
        ("conv1", &[6, 28, 28]),
        ("pool1", &[6, 14, 14]),
        ("conv2", &[16, 10, 10]),
        ("conv3", &[32, 5, 5]),
        ("gap", &[32, 1, 1]),
        ("flatten", &[32]),
        ("fc1", &[20]),
    ];
    assert_eq!(&shapes[..8], &want);
    assert_eq!(layers[3].kind, "Conv2d 5x5, pad 0, BatchNorm, ReLU");
    assert_eq!(
        layers[4].kind,
        "Conv2d 3x3, stride 2, pad 1, BatchNorm, GELU"
    );
    let bn = 2 * 16 + 2 * 32;
    let params =
        6 * 25 + 6 + 16 * 6 * 25 + 16 + 32 * 16 * 9 + 32 + bn + 32 * 20 + 20 + 20 * 10 + 10;
    assert_eq!(spec.num_params().unwrap(), params);
    let again = NetSpec::from_toml(&spec.to_toml().unwrap(), "t").unwrap();
    assert_eq!(again, spec);
    // Variable names: conv and fc numbered in order, bn among the batch-normalised convs.
    let varmap = candle_nn::VarMap::new();
    let vb = candle_nn::VarBuilder::from_varmap(
        &varmap,
        candle_core::DType::F32,
        &candle_core::Device::Cpu,
    );
    cnn_models::Cnn::new(&cnn_models::ModelConfig::new(spec), vb).unwrap();
    let mut names: Vec<String> = varmap.data().lock().unwrap().keys().cloned().collect();
    names.sort();
    let want = [
        "bn1.bias",
        "bn1.running_mean",
        "bn1.running_var",
        "bn1.weight",
        "bn2.bias",
        "bn2.running_mean",
        "bn2.running_var",
        "bn2.weight",
        "conv1.bias",
        "conv1.weight",
        "conv2.bias",
        "conv2.weight",
        "conv3.bias",
        "conv3.weight",
        "fc1.bias",
        "fc1.weight",
        "fc2.bias",
        "fc2.weight",
    ];
    assert_eq!(names, want);
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

#[test]
fn every_shipped_spec_parses_and_the_frontier_ones_keep_their_limits() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/models");
    let mut params = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let spec = NetSpec::from_toml(&std::fs::read_to_string(&path).unwrap(), "x").unwrap();
            assert_eq!(
                spec.name,
                name,
                "{}: name = the file's name",
                path.display()
            );
            let resolved = spec.resolve([1, 28, 28], 10).unwrap();
            params.insert(name, resolved.num_params().unwrap());
        }
    }
    // "The accuracy frontier": the parameter budgets the specs were chosen under.
    assert_eq!(params["mnist_tiny"], 9_282);
    assert!(params["mnist_tiny"] <= 10_000);
    assert_eq!(params["mnist_fast"], 158_618);
    assert_eq!(params["mnist_best"], 72_890);
    assert!(params["mnist_best"] <= 300_000);
    assert_eq!(params["fashion_best"], 72_890);
    assert!(params["fashion_best"] <= 1_000_000);
    for shipped in [
        "small_cnn",
        "medium_cnn",
        "lenet5",
        "pytorch_example",
        "allconv_bn",
    ] {
        assert!(params.contains_key(shipped), "{shipped} in {params:?}");
    }
}
