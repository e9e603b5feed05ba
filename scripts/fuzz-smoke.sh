#!/usr/bin/env bash
# Fuzz smoke test: seeds the corpora (fuzz/seed-corpus.sh) and runs every
# fuzz target for FUZZ_SECONDS (default 60) each. Fails if any target fails
# to build, crashes, or trips an assertion; crash inputs are left in
# fuzz/artifacts/<target>/ (reproduce: cargo fuzz run <target> <file>).
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`) and a nightly
# toolchain. FUZZ_TOOLCHAIN picks the toolchain (default: nightly when
# rustup has it, else the default toolchain with RUSTC_BOOTSTRAP=1).
# FUZZ_TARGETS limits the run to some targets (space-separated names).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=${FUZZ_SECONDS:-60}
if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then
    echo "fuzz-smoke: FUZZ_SECONDS must be a positive integer, got '$seconds'" >&2
    exit 2
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: cargo-fuzz is not installed: cargo install cargo-fuzz --locked" >&2
    exit 2
fi

cargo_cmd=(cargo)
if [[ -n ${FUZZ_TOOLCHAIN:-} ]]; then
    cargo_cmd=(cargo "+$FUZZ_TOOLCHAIN")
elif rustup run nightly rustc --version >/dev/null 2>&1; then
    cargo_cmd=(cargo +nightly)
else
    # libFuzzer's sanitizer flags are nightly-only; stable can be told to allow them.
    export RUSTC_BOOTSTRAP=1
fi

cd "$root/fuzz"
"$root/fuzz/seed-corpus.sh"

if [[ -n ${FUZZ_TARGETS:-} ]]; then
    read -r -a targets <<<"$FUZZ_TARGETS"
else
    mapfile -t targets < <("${cargo_cmd[@]}" fuzz list)
fi
if [[ ${#targets[@]} -eq 0 ]]; then
    echo "fuzz-smoke: no fuzz targets found" >&2
    exit 1
fi

echo "fuzz-smoke: building ${targets[*]}"
"${cargo_cmd[@]}" fuzz build

failed=()
for t in "${targets[@]}"; do
    echo "fuzz-smoke: $t for ${seconds}s"
    log=$(mktemp)
    if "${cargo_cmd[@]}" fuzz run "$t" -- -max_total_time="$seconds" >"$log" 2>&1; then
        # Last status line, e.g. "#581510 DONE cov: 2461 ft: 4832 corp: 416/69Kb ... exec/s: 18758"
        grep -E '^#[0-9]+' "$log" | tail -n 1 || true
    else
        failed+=("$t")
        echo "fuzz-smoke: $t FAILED:" >&2
        grep -m 1 -A 1 -E 'panicked at|ERROR: AddressSanitizer|ERROR: libFuzzer' "$log" >&2 || true
        grep -E 'Test unit written to|^error' "$log" >&2 || tail -n 30 "$log" >&2
    fi
    rm -f "$log"
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzz-smoke: failed targets: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz-smoke: all ${#targets[@]} targets ran ${seconds}s without a failure"
