#!/usr/bin/env python3
"""Speed of cardswitch's message layer against pyiso8583, on the same message.

The message is the typical 0100 authorization request of the golden fixtures
(fixtures/golden/iso87-ascii/0100-auth-request.hex: 21 fields with track 2,
a PIN block and DE55 EMV data). In one run this script measures

  * pyiso8583 `decode` and `encode` of that message with `default_ascii`
    (timeit: best of several repeats, per message);
  * cardswitch parse and build of it, from the criterion bench ids
    `iso87-ascii/parse/auth_0100` and `iso87-ascii/build/auth_0100` in
    benches/message.rs (`cargo bench --bench message`; the mean point
    estimate in target/criterion/.../new/estimates.json);

and prints both and the ratios pyiso8583 time / cardswitch time. The goal is a
ratio of at least 100 for parse and for build: the exit status is non-zero
below it (or when a figure is missing).

Usage:
  python3 -m venv /tmp/venv && /tmp/venv/bin/pip install -r tests/interop/requirements.txt
  /tmp/venv/bin/python benches/pyiso8583_compare.py [--skip-cargo] [--repeat 7] [--goal 100]

--skip-cargo reuses the criterion results already in target/criterion (or
$CARGO_TARGET_DIR/criterion) instead of running `cargo bench`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import timeit
from pathlib import Path

from criterion_results import criterion_dir, read_estimate_ns

try:
    import iso8583
    from iso8583.specs import default_ascii as PY_SPEC
except ModuleNotFoundError:
    sys.exit(
        "compare: pyiso8583 is not installed; "
        "pip install -r tests/interop/requirements.txt"
    )

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "fixtures" / "golden" / "iso87-ascii" / "0100-auth-request.hex"
BENCH_IDS = {
    "parse": "iso87-ascii/parse/auth_0100",
    "build": "iso87-ascii/build/auth_0100",
}
CARGO_FILTER = "iso87-ascii/(parse|build)/auth_0100"

# Used only when the golden fixture is missing: the same message as a document.
FALLBACK_DOC = {
    "t": "0100",
    "2": "4761739001010119",
    "3": "000000",
    "4": "000000012500",
    "7": "1123143005",
    "11": "123456",
    "12": "143005",
    "13": "1123",
    "14": "2712",
    "18": "5411",
    "22": "051",
    "23": "001",
    "25": "00",
    "32": "1234567",
    "35": "4761739001010119=2712201123456789",
    "37": "532714123456",
    "41": "TERM0001",
    "42": "MERCHANT0000001",
    "43": "ACME HARDWARE          SPRINGFIELD  ILUS",
    "49": "840",
    "52": "A1B2C3D4E5F60718",
    "55": "9F26088A1F2C3D4E5F60719F2701809F10120110A00003220000000000000000000000"
    "FF9F37049BADBCAB9F36020027950500800080009A032511239C01005F2A02084082021980"
    "9F1A0208409F3303E0F8C8",
}


def the_message() -> tuple[bytes, str]:
    if FIXTURE.exists():
        return bytes.fromhex(FIXTURE.read_text().strip()), str(FIXTURE.relative_to(REPO))
    raw, _ = iso8583.encode(dict(FALLBACK_DOC), PY_SPEC)
    return bytes(raw), "built-in copy of the golden 0100 (fixture missing)"


def best_ns(stmt, repeat: int) -> float:
    """Best time of one call in ns: timeit with a loop count of >= 0.2 s."""
    timer = timeit.Timer(stmt)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=repeat, number=number)) / number * 1e9


def measure_pyiso8583(raw: bytes, repeat: int) -> dict[str, float]:
    doc, _ = iso8583.decode(raw, PY_SPEC)
    # encode() adds the bitmaps to the dict it is given; once they are there,
    # encoding the same dict again is idempotent, so it is timed in place
    # (no copy inside the timed call), after checking that.
    enc_doc = {k: v for k, v in doc.items() if k not in ("p", "1")}
    first, _ = iso8583.encode(enc_doc, PY_SPEC)
    second, _ = iso8583.encode(enc_doc, PY_SPEC)
    if bytes(first) != raw or bytes(second) != raw:
        sys.exit("compare: pyiso8583 does not re-encode the message to the same bytes")
    return {
        "parse": best_ns(lambda: iso8583.decode(raw, PY_SPEC), repeat),
        "build": best_ns(lambda: iso8583.encode(enc_doc, PY_SPEC), repeat),
    }


def fmt_ns(ns: float) -> str:
    return f"{ns / 1000:.2f} µs" if ns >= 10_000 else f"{ns:.1f} ns"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--skip-cargo", action="store_true",
                    help="reuse existing criterion results instead of running cargo bench")
    ap.add_argument("--repeat", type=int, default=7, help="timeit repeats (best is kept)")
    ap.add_argument("--goal", type=float, default=100.0,
                    help="minimum ratio pyiso8583 / cardswitch (default 100)")
    args = ap.parse_args()

    raw, source = the_message()
    doc, _ = iso8583.decode(raw, PY_SPEC)
    nfields = len([k for k in doc if k not in ("t", "p", "1", "h")])
    print(f"message: MTI {doc['t']}, {nfields} fields, {len(raw)} bytes ({source})")

    if not args.skip_cargo:
        cmd = ["cargo", "bench", "--bench", "message", "--", "--noplot", CARGO_FILTER]
        print("running:", " ".join(cmd[:-1]), repr(CARGO_FILTER), flush=True)
        proc = subprocess.run(cmd, cwd=REPO)
        if proc.returncode != 0:
            print(f"compare: cargo bench failed (exit {proc.returncode})")
            return 2

    ours: dict[str, float] = {}
    for op, bench_id in BENCH_IDS.items():
        found = read_estimate_ns(bench_id)
        if found is None:
            print(f"compare: no criterion result for {bench_id} under {criterion_dir()}")
            return 2
        ours[op] = found[0]
        print(f"criterion {bench_id}: {found[1].relative_to(criterion_dir().parent)}")

    print(f"pyiso8583 {getattr(iso8583, '__version__', '?')}: timing "
          f"(best of {args.repeat}) ...", flush=True)
    theirs = measure_pyiso8583(raw, args.repeat)

    print()
    print(f"{'':6} {'pyiso8583':>12} {'cardswitch':>12} {'ratio':>9}")
    below = []
    names = {"parse": "decode", "build": "encode"}
    for op in ("parse", "build"):
        ratio = theirs[op] / ours[op]
        print(f"{op:6} {fmt_ns(theirs[op]):>12} {fmt_ns(ours[op]):>12} {ratio:>8.1f}x"
              f"   (pyiso8583 {names[op]} / cardswitch {op})")
        if ratio < args.goal:
            below.append(f"{op} {ratio:.1f}x")
    if below:
        print(f"\ncompare: below the goal of {args.goal:g}x: {', '.join(below)}")
        return 1
    print(f"\ncompare: both ratios meet the goal of {args.goal:g}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
