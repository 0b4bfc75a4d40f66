#!/usr/bin/env bash
# Runs the fuzz targets in fuzz/ (cargo-fuzz, libFuzzer, AddressSanitizer), each for a bounded
# time starting from the committed seeds in fuzz/seeds/: ./scripts/fuzz.sh [SECONDS] (default
# 60 per target). New inputs go to a scratch corpus; a crash leaves its input in
# fuzz/artifacts/ and fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}

# cargo-fuzz, kept in the workspace's .tools/ like tauri-driver.
if [[ ! -x .tools/bin/cargo-fuzz ]]; then
    cargo install cargo-fuzz --locked --root .tools
fi
export PATH="$PWD/.tools/bin:$PATH"
# The sanitizer flags cargo-fuzz passes are unstable options; the machine's one (stable)
# toolchain takes them with this.
export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR=never

cargo fuzz build --fuzz-dir fuzz
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for target in $(cargo fuzz list --fuzz-dir fuzz); do
    mkdir -p "$scratch/$target"
    echo "fuzzing $target for ${seconds}s"
    log="$scratch/$target.log"
    if ! cargo fuzz run --fuzz-dir fuzz "$target" "$scratch/$target" "fuzz/seeds/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
        tail -n 80 "$log"
        echo "fuzzing $target failed; the input is in fuzz/artifacts/$target/"
        exit 1
    fi
    grep -E '^stat::(number_of_executed_units|new_units_added)' "$log" | sed "s/^/  $target /"
done
