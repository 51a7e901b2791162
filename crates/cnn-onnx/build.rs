//! Generates the ONNX message types from the vendored `proto/onnx.proto` (ONNX 1.23.2,
//! Apache-2.0) with prost, compiling the schema with protox, so the build needs no `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/onnx.proto");
    let descriptors = protox::compile(["proto/onnx.proto"], ["proto"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
