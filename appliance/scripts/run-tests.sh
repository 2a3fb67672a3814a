#!/usr/bin/env bash
# The README's test command (and CI's, through .ci/run): installs what the tests need, then
# checks formatting and lints and runs every test suite against real models.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
step() { echo "== $* ==" >&2; }

step "dependencies and test models"
bash appliance/scripts/deps.sh
bash appliance/scripts/install-models.sh >/dev/null

step "cargo fmt"
cargo fmt --all -- --check
# One release build serves clippy, the Rust tests and the Python tests (llama.cpp is built
# once: a second profile would compile it again for minutes).
step "cargo build"
cargo build --release --workspace --all-targets
step "cargo clippy"
cargo clippy --release --all-targets -- -D warnings
# cargo-deny checks licences, bans and sources (hw-tests/api/test_supply_chain.py runs it).
command -v cargo-deny >/dev/null || cargo install cargo-deny --locked
step "cargo test"
cargo test --release --workspace
step "fuzz smoke: update bundle header parser, recording decoder (30 s each)"
# cargo-fuzz needs nightly features; RUSTC_BOOTSTRAP enables them on the stable toolchain.
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
mkdir -p fuzz/corpus/bundle_header   # the corpus grows here (ignored by git)
(cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run bundle_header corpus/bundle_header seeds/bundle_header \
    -- -max_total_time=30 -rss_limit_mb=2048)
mkdir -p fuzz/corpus/audio_decode
# symphonia reserves tag and comment buffers from 32-bit lengths in the file (up to 4 GiB of
# calloc'd, never-touched memory, freed when the read fails): the single-allocation limit is
# above that; the RSS limit still catches memory really used.
(cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run audio_decode corpus/audio_decode seeds/audio_decode \
    -- -max_total_time=30 -rss_limit_mb=2048 -malloc_limit_mb=4500 -max_len=65536)
step "API client tests (openai package)"
CIVIAD_BIN="$REPO/target/release/civiad" .cache/venv/bin/python -m pytest hw-tests/api -q
step "web application in headless Chromium (Playwright, axe-core)"
CIVIAD_BIN="$REPO/target/release/civiad" bash hw-tests/web/run.sh
step "appliance image: build (Debian 13 via mmdebstrap, cached under image/out/cache) and check"
bash appliance/scripts/image-deps.sh
image/build --no-cargo
bash hw-tests/image/check-image.sh
step "emulated box: QEMU (TCG) + OVMF + swtpm, core scenarios (hw-tests/emulated --all runs every one)"
hw-tests/emulated
step "all tests passed"
