#!/usr/bin/env bash
# Installs what the tests need and runs them all: formatting, lints, the UI's build and tests,
# unit, property, snapshot and end-to-end tests (the real server on loopback with real clients),
# then each fuzz target for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."

# The toolchain's formatter and linter; present on a fresh machine of this kind, added if not.
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    rustup component add rustfmt clippy
fi

export CARGO_INCREMENTAL=0
export CARGO_TERM_COLOR=never

# System packages and the UI's npm packages; then the UI itself, which the desktop app embeds.
./scripts/deps.sh --test
(cd ui && npm run build && npm test)

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked 2>&1 | tee "$log"
# One closing line for the whole run (cargo prints one per test binary).
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"

# The fuzz targets, a minute each from the committed seeds (fuzz/; cargo-fuzz and libFuzzer).
./scripts/fuzz.sh 60
