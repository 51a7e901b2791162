//! Records the optimisation level this crate is compiled at, for [`is_optimized`]: an
//! unoptimised build trains about 80 times slower, and a project depending on this crate
//! gets one from a plain `cargo run` unless its profile says otherwise.

fn main() {
    let level = std::env::var("OPT_LEVEL").unwrap_or_default();
    println!("cargo:rustc-env=CNN_MODELS_OPT_LEVEL={level}");
    println!("cargo:rerun-if-changed=build.rs");
}
