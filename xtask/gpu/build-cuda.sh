#!/usr/bin/env bash
# Builds cnn-train and cnn-predict with `--features cuda` on a machine that has neither a GPU
# nor a CUDA toolkit, and packs them for a GPU machine (docs/gpu.md).
#
# usage, from anywhere in the repository:
#   bash xtask/gpu/build-cuda.sh [CARGO_BUILD_ARGS...]   build into target/cuda/, pack the binaries
#   eval "$(bash xtask/gpu/build-cuda.sh --env)"          only set up; then `cargo clippy --features cuda` etc.
#
# What it makes (a second run reuses all of it and rebuilds incrementally):
#   $CNN_CUDA_HOME/venv      the CUDA 13.0 pieces candle needs, from PyPI wheels (about 1.2 GB once)
#   $CNN_CUDA_HOME/root/lib  links for the linker (CUDA_ROOT), and libcuda.so.1: a stand-in for the
#                            driver library whose every function answers "no device", so that a cuda
#                            build links, and runs here on the CPU (--ngpus 0) with
#                            LD_LIBRARY_PATH=$CNN_CUDA_HOME/root/lib
#   target/cuda/             the cargo build (the normal target/ is left alone)
#   target/cuda/gpu-bin.tar.xz  bin/cnn-train, bin/cnn-predict and bin/BUILD-INFO.txt
#
# Settings: CNN_CUDA_HOME [~/.cache/cnn-cuda], CUDA_COMPUTE_CAP [90: H100, H200],
# PYTHON [python3]. The first build takes 10-12 minutes on 2 cores (nvcc compiling candle's
# kernels).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
say() { printf 'build-cuda: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

PRINT_ENV=0
if [ "${1:-}" = --env ]; then PRINT_ENV=1; shift; fi
for tool in cargo cc tar xz objcopy; do
    command -v "$tool" >/dev/null || die "$tool not found"
done
PYTHON=${PYTHON:-python3}
command -v "$PYTHON" >/dev/null || die "$PYTHON not found (set PYTHON to a Python 3)"
CNN_CUDA_HOME=${CNN_CUDA_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/cnn-cuda}
VENV=$CNN_CUDA_HOME/venv
LINK=$CNN_CUDA_HOME/root

# 1. The toolkit. Exactly CUDA 13.0: candle's kernels ship as PTX that the GPU machine's driver
# (CUDA 13.0) compiles at load time, and a driver refuses PTX from a newer nvcc.
PINS="nvidia-cublas==13.0.2.14 nvidia-cuda-cccl==13.0.85 nvidia-cuda-crt==13.0.88
nvidia-cuda-nvcc==13.0.88 nvidia-cuda-nvrtc==13.0.88 nvidia-cuda-runtime==13.0.96
nvidia-curand==10.4.0.35 nvidia-nvvm==13.0.88"
if [ "$(cat "$VENV/.pins" 2>/dev/null)" != "$PINS" ]; then
    say "installing the CUDA 13.0 wheels into $VENV (about 1.2 GB, once)"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    # shellcheck disable=SC2086 # one argument per pin
    "$VENV/bin/pip" install -q --disable-pip-version-check --only-binary=:all: $PINS >&2
    printf '%s' "$PINS" >"$VENV/.pins"
fi
CU=$("$VENV/bin/python" -c 'import os, sysconfig; print(os.path.join(sysconfig.get_paths()["purelib"], "nvidia", "cu13"))')
NVCC_VERSION=$("$CU/bin/nvcc" --version | sed -n 's/.*release \([0-9.]*\),.*/\1/p')
[ "$NVCC_VERSION" = 13.0 ] || die "nvcc in $CU/bin is release '$NVCC_VERSION', not 13.0"

# 2. The link folder. No wheel ships a linkable libcuda, so one is compiled from the names of the
# driver functions cudarc declares (`fn cu...(` in its driver bindings); extra names cost nothing.
CUDARC=$(cd "$ROOT" && cargo metadata --format-version 1 --features cnn-cli/cuda |
    "$PYTHON" -c 'import json, sys; print(next(p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"] == "cudarc"))') ||
    die "cargo metadata found no cudarc among the cuda build's dependencies"
mkdir -p "$LINK/lib" "$LINK/src"
STUB=$LINK/src/libcuda_stand_in.c
{
    echo '/* A stand-in for libcuda.so.1 (made by xtask/gpu/build-cuda.sh): every driver call answers'
    echo '   CUDA_ERROR_NO_DEVICE (100). Never use it on a machine with a GPU. */'
    echo 'int cuGetErrorString(int e, const char **s) { if (s) *s = e == 100 ? "no CUDA-capable device is detected (stand-in libcuda.so.1)" : "unknown error"; return 0; }'
    echo 'int cuGetErrorName(int e, const char **s) { if (s) *s = e == 100 ? "CUDA_ERROR_NO_DEVICE" : "CUDA_ERROR_UNKNOWN"; return 0; }'
    cat "$(dirname "$CUDARC")"/src/driver/sys/*.rs |
        sed -n -E 's/^[[:space:]]+fn (cu[A-Za-z0-9_]*)\(.*/\1/p' | LC_ALL=C sort -u |
        grep -v -x -e cuGetErrorString -e cuGetErrorName | sed 's/.*/int &(void) { return 100; }/'
} >"$STUB.new"
[ "$(grep -c 'return 100; }$' "$STUB.new")" -gt 400 ] || die "too few driver functions in $CUDARC's bindings: has cudarc's layout changed?"
if cmp -s "$STUB.new" "$STUB" && [ -f "$LINK/lib/libcuda.so.1" ]; then
    rm "$STUB.new"
else
    mv "$STUB.new" "$STUB"
    cc -shared -fPIC -O1 -Wl,-soname,libcuda.so.1 -o "$LINK/lib/libcuda.so.1" "$STUB"
fi
ln -sfn libcuda.so.1 "$LINK/lib/libcuda.so"
for f in "$CU"/lib/lib*.so.*; do
    b=$(basename "$f")
    ln -sfn "$f" "$LINK/lib/$b"            # the soname, to run here
    ln -sfn "$f" "$LINK/lib/${b%%.so.*}.so" # the name the linker looks for
done

# 3. The build's environment. cudarc searches every one of the unset variables when set; only
# CUDA_ROOT is meant.
unset CUDA_HOME CUDA_PATH CUDA_TOOLKIT_ROOT_DIR CUDNN_LIB NVCC
export PATH="$CU/bin:$PATH" CUDA_ROOT=$LINK CUDARC_CUDA_VERSION=13000
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90} CUDAFORGE_THREADS=${CUDAFORGE_THREADS:-$(nproc)}
export CARGO_TARGET_DIR=$ROOT/target/cuda
if [ "$PRINT_ENV" = 1 ]; then
    echo 'unset CUDA_HOME CUDA_PATH CUDA_TOOLKIT_ROOT_DIR CUDNN_LIB NVCC'
    for v in PATH CUDA_ROOT CUDARC_CUDA_VERSION CUDA_COMPUTE_CAP CUDAFORGE_THREADS CARGO_TARGET_DIR; do
        printf 'export %s=%q\n' "$v" "${!v}"
    done
    exit 0
fi

# 4. Build and pack.
say "cargo build --release --features cuda -p cnn-cli $* (into target/cuda, sm_$CUDA_COMPUTE_CAP)"
(cd "$ROOT" && cargo build --release --features cuda -p cnn-cli "$@")
STAGE=$CARGO_TARGET_DIR/gpu-bin
rm -rf "$STAGE" && mkdir -p "$STAGE/bin"
for b in cnn-train cnn-predict; do
    objcopy --strip-debug "$CARGO_TARGET_DIR/release/$b" "$STAGE/bin/$b"
done
{
    echo "commit=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)"
    echo "changed_tracked_files=$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null | wc -l)"
    echo "compute_cap=$CUDA_COMPUTE_CAP nvcc=$NVCC_VERSION rustc=$(rustc --version)"
} >"$STAGE/bin/BUILD-INFO.txt"
tar -C "$STAGE" -cf - bin | xz -9 -T1 >"$CARGO_TARGET_DIR/gpu-bin.tar.xz.tmp"
mv "$CARGO_TARGET_DIR/gpu-bin.tar.xz.tmp" "$CARGO_TARGET_DIR/gpu-bin.tar.xz"
say "packed target/cuda/gpu-bin.tar.xz ($(du -h "$CARGO_TARGET_DIR/gpu-bin.tar.xz" | cut -f1))"
say "here, on the CPU: LD_LIBRARY_PATH=$LINK/lib target/cuda/release/cnn-train --ngpus 0 ..."
