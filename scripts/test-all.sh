#!/usr/bin/env bash
# The whole cardswitch test suite in one command, from a fresh machine.
# Installs what the tests need (a Python virtual environment with the peer
# implementations, tshark from Debian, cargo-fuzz), then runs: format check, clippy, the Rust
# tests (unit, property, golden, end-to-end), the interoperability tests
# against independent implementations, and a bounded fuzz run per target.
# Any failure fails the script.
#
#   bash scripts/test-all.sh            # everything
#   FUZZ_SECONDS=600 bash scripts/test-all.sh   # fuzz longer
#   SKIP_FUZZ=1 bash scripts/test-all.sh        # everything but fuzzing
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS="${FUZZ_SECONDS:-20}"
VENV="${VENV:-.venv}"
started=$(date +%s)
step() { printf '\n==== %s (%ss)\n' "$*" "$(( $(date +%s) - started ))"; }

step "install: Python peers (pyiso8583, cardutil; psec, pyemv, pydukpt for tests/hsm_interop.rs) in $VENV"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r tests/interop/requirements.txt
"$VENV/bin/python" -c "import iso8583, cardutil; print('pyiso8583', iso8583.__version__)"
"$VENV/bin/python" -c "import psec, pyemv, pydukpt; print('pydukpt', pydukpt.__version__)"

if ! command -v tshark >/dev/null 2>&1; then
    step "install: tshark (Wireshark's ISO 8583 dissector, for tests/capture_tshark.rs)"
    # Non-interactive: answer wireshark-common's question (non-root capture: no).
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q tshark >/dev/null \
        || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q tshark >/dev/null; }
fi
tshark --version | head -n 1

if [ -z "${SKIP_FUZZ:-}" ] && ! cargo fuzz --version >/dev/null 2>&1; then
    step "install: cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings

step "cargo test"
cargo test --quiet 2>&1 | tee /tmp/cardswitch-cargo-test.log
if grep -q "test result: FAILED" /tmp/cardswitch-cargo-test.log; then
    echo "cargo test reported failures" >&2
    exit 1
fi

step "simulate: 10,000 seeds of the network simulator (optimised build, profile sim)"
cargo build --profile sim --quiet
sim_started=$(date +%s)
target/sim/cardswitch simulate --seeds 10000
echo "simulate took $(( $(date +%s) - sim_started ))s"

step "interop: pyiso8583 <-> cardswitch (iso87-ascii)"
"$VENV/bin/python" tests/interop/pyiso8583_interop.py --bin target/debug/cardswitch --count 1000

step "interop: cardutil reads cardswitch's IPM clearing files (blocked and unblocked)"
"$VENV/bin/python" tests/interop/cardutil_ipm.py --bin target/debug/cardswitch --count 2500

if [ -z "${SKIP_FUZZ:-}" ]; then
    step "fuzz: every target for ${FUZZ_SECONDS}s"
    FUZZ_SECONDS="$FUZZ_SECONDS" bash scripts/fuzz-smoke.sh
fi

step "all tests passed"
