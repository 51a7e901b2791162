//! The error type of the models crate: one variant per cause, layers named 1-based.

/// Errors from describing, building or running a model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor operation failed (shape mismatch, device error, ...).
    #[error(transparent)]
    Candle(candle_core::Error),
    /// The input is not `N x C x H x W` with the spec's `C x H x W`.
    #[error("expected input of shape [N, {}, {}, {}], got {got:?}", expected[0], expected[1], expected[2])]
    BadInput {
        /// The spec's input shape.
        expected: [usize; 3],
        /// The shape given.
        got: Vec<usize>,
    },
    /// An image given to predict has another number of values than the input takes.
    #[error("image {index} has {len} values; the network takes {}x{}x{} (channels x height x width)", expected[0], expected[1], expected[2])]
    ImageLen {
        /// Position of the image among those given.
        index: usize,
        /// Values it has.
        len: usize,
        /// The network's input shape.
        expected: [usize; 3],
    },
    /// Another number of class names than the network has classes.
    #[error("{given} class names given for a network of {classes} classes")]
    ClassNames {
        /// Names given.
        given: usize,
        /// Classes of the network.
        classes: usize,
    },
    /// Asked for a convolution the network does not have.
    #[error("the network has {convs} convolutions; there is no convolution {index} (0-based)")]
    NoSuchConv {
        /// The index asked for.
        index: usize,
        /// Convolutions of the network.
        convs: usize,
    },
    /// A name that is not a preset.
    #[error("unknown model `{0}` (expected small_cnn, medium_cnn or a spec file)")]
    UnknownArch(String),
    /// A spec file is not valid TOML, or has a key or value of the wrong kind.
    #[error("{}{message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
    BadToml {
        /// 1-based line of the problem, when known.
        line: Option<usize>,
        /// What the TOML reader said.
        message: String,
    },
    /// Writing a spec as TOML failed.
    #[error("cannot write the spec as TOML: {message}")]
    EncodeToml {
        /// What the TOML writer said.
        message: String,
    },
    /// A spec has no `name`.
    #[error("the spec has no name")]
    NoName,
    /// A spec lists more layers than [`crate::MAX_LAYERS`].
    #[error("{layers} layers: a spec may list at most {max}")]
    TooManyLayers {
        /// Layers listed.
        layers: usize,
        /// The most accepted.
        max: usize,
    },
    /// A spec's name cannot be used as a folder name.
    #[error("name `{name}`: use 1 to 64 letters, digits, `_`, `-` or `.`, not starting with `.`")]
    BadName {
        /// The name.
        name: String,
    },
    /// A `[[layer]]` table sets no kind key, or several.
    #[error("layer {layer}: set exactly one of conv, maxpool, avgpool, globalavgpool, linear, dropout (found {})", if found.is_empty() { "none" } else { found })]
    LayerKind {
        /// 1-based layer.
        layer: usize,
        /// The kind keys found, comma-separated.
        found: String,
    },
    /// An option key on a layer kind that does not take it (`kernel` on a linear layer).
    #[error("layer {layer}: {key} is only allowed on a {allowed} layer")]
    KeyOnWrongLayer {
        /// 1-based layer.
        layer: usize,
        /// The key.
        key: &'static str,
        /// The layer kinds that take it.
        allowed: &'static str,
    },
    /// A kernel side outside 1 to [`crate::MAX_KERNEL`].
    #[error("layer {layer}: kernel {kernel} must be from 1 to {max}")]
    BadKernel {
        /// 1-based layer.
        layer: usize,
        /// The kernel side given.
        kernel: usize,
        /// The largest accepted.
        max: usize,
    },
    /// `padding = "same"` (the default) with an even kernel.
    #[error(
        "layer {layer}: kernel {kernel} is even, and padding \"same\" (the default) needs an odd kernel; set padding = \"valid\" or a number of pixels"
    )]
    SameEvenKernel {
        /// 1-based layer.
        layer: usize,
        /// The kernel side given.
        kernel: usize,
    },
    /// A stride of 0 (or absurdly large).
    #[error("layer {layer}: stride {stride} must be at least 1")]
    BadStride {
        /// 1-based layer.
        layer: usize,
        /// The stride given.
        stride: usize,
    },
    /// A padding of at least the kernel side: borders no window sees any of the image in.
    #[error("layer {layer}: padding {padding} must be less than the kernel side ({kernel})")]
    BadPadding {
        /// 1-based layer.
        layer: usize,
        /// Pixels of padding given.
        padding: usize,
        /// The kernel side.
        kernel: usize,
    },
    /// `padding` that is neither `"same"`, `"valid"` nor a number of pixels.
    #[error("layer {layer}: padding {value} must be \"same\", \"valid\" or a number of pixels")]
    PaddingValue {
        /// 1-based layer.
        layer: usize,
        /// The value given, as written.
        value: String,
    },
    /// An activation name that is not known.
    #[error("layer {layer}: activation \"{value}\" is not one of relu, tanh, gelu, silu, none")]
    UnknownActivation {
        /// 1-based layer.
        layer: usize,
        /// The name given.
        value: String,
    },
    /// A flag key (`batchnorm`, `globalavgpool`) set to something other than `true`/`false`
    /// as it allows.
    #[error("layer {layer}: {key} = false does nothing; write {key} = true or leave the key out")]
    FalseKind {
        /// 1-based layer.
        layer: usize,
        /// The key.
        key: &'static str,
    },
    /// A pool window of zero (or absurdly large).
    #[error("layer {layer}: pool window {size} must be at least 1")]
    PoolSize {
        /// 1-based layer.
        layer: usize,
        /// The size given.
        size: usize,
    },
    /// A pool whose window is larger than the map.
    #[error(
        "layer {layer}: cannot {what} a {h}x{w} map with a {size}x{size} window (too many pools or strides for this input)"
    )]
    PoolTooSmall {
        /// 1-based layer.
        layer: usize,
        /// `maxpool` or `avgpool`.
        what: &'static str,
        /// The window side.
        size: usize,
        /// Height of the map.
        h: usize,
        /// Width of the map.
        w: usize,
    },
    /// A conv whose window, stride and padding leave no output of the map it gets.
    #[error(
        "layer {layer}: conv kernel is larger than its padded {h}x{w} input map (the map shrinks to nothing)"
    )]
    MapVanishes {
        /// 1-based layer.
        layer: usize,
        /// Height of the map.
        h: usize,
        /// Width of the map.
        w: usize,
    },
    /// A spatial layer after a global average pool.
    #[error(
        "layer {layer}: {what} after the globalavgpool of layer {after} (only linear and dropout layers may follow it)"
    )]
    AfterGlobalPool {
        /// 1-based layer.
        layer: usize,
        /// The layer kind.
        what: &'static str,
        /// The global pool's layer.
        after: usize,
    },
    /// A spatial layer (conv, pool) after a linear layer.
    #[error("layer {layer}: {what} after a linear layer (spatial layers must come first)")]
    SpatialAfterLinear {
        /// 1-based layer.
        layer: usize,
        /// The layer kind.
        what: &'static str,
    },
    /// A channel count or width of zero or above the limit.
    #[error("layer {layer}: {what} {width} must be from 1 to {max}")]
    BadWidth {
        /// 1-based layer.
        layer: usize,
        /// `conv` or `linear`.
        what: &'static str,
        /// The value given.
        width: usize,
        /// The largest accepted.
        max: usize,
    },
    /// A dropout probability outside `[0, 1)`.
    #[error("layer {layer}: dropout {p} must be in [0, 1)")]
    BadDropout {
        /// 1-based layer.
        layer: usize,
        /// The probability given.
        p: f32,
    },
    /// The network would have more parameters than accepted.
    #[error("layer {layer}: the network exceeds {limit} parameters")]
    TooManyParams {
        /// 1-based layer (one past the last for the final linear layer).
        layer: usize,
        /// The limit.
        limit: usize,
    },
    /// An input shape with a zero or an implausibly large dimension.
    #[error(
        "input {input:?} is not a usable [channels, height, width] (1-64 channels, sides 1-4096)"
    )]
    BadInputShape {
        /// The shape.
        input: [usize; 3],
    },
    /// `classes = 0`.
    #[error("classes must be at least 1")]
    NoClasses,
    /// The spec's input shape differs from the data's.
    #[error("model {name} takes input {spec:?} but the data's images are {data:?}")]
    InputMismatch {
        /// Spec name.
        name: String,
        /// Shape in the spec.
        spec: [usize; 3],
        /// Shape of the data.
        data: [usize; 3],
    },
    /// The spec's class count differs from the data's.
    #[error("model {name} has classes = {spec} but the data has {data} classes")]
    ClassesMismatch {
        /// Spec name.
        name: String,
        /// Classes in the spec.
        spec: usize,
        /// Classes in the data.
        data: usize,
    },
    /// A model was asked of a spec without input shape or classes.
    #[error("model {name} has no input shape or classes yet (resolve it against the data)")]
    Unresolved {
        /// Spec name.
        name: String,
    },
    /// Feature maps were asked of a network whose first layer is not a convolution.
    #[error("model {name} does not start with a conv layer")]
    NoFirstConv {
        /// Spec name.
        name: String,
    },
}

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        Error::Candle(one_line(e))
    }
}

/// candle's error without the backtrace it attaches when `RUST_BACKTRACE` is set and with
/// its context on the same line, so that it prints as one line like every other error.
pub fn one_line(e: candle_core::Error) -> candle_core::Error {
    use candle_core::Error as E;
    match e {
        E::WithBacktrace { inner, .. } => one_line(*inner),
        E::Context { inner, context } => E::Msg(format!("{context}: {}", one_line(*inner))),
        E::WrappedContext { wrapped, context } => E::Msg(format!("{context}: {wrapped}")),
        other => other,
    }
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, Error>;
