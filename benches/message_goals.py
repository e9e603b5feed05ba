#!/usr/bin/env python3
"""The message layer's speed goals, checked against criterion's results.

Goals (issue 2): parse and build of the golden iso87-ascii 0100, iso87-binary
0100 and IPM 1240 each under 300 ns; on iso_8583_rs's own 11-field 0200, in
the same criterion run, cardswitch faster than iso_8583_rs at each thing both
do: parse, pack of checked values into a reused buffer, and a whole build
from values. Each figure is criterion's mean point estimate
(target/criterion/.../new/estimates.json) from `cargo bench --bench message`.

Prints every figure and exits 1 when a goal is not met, 2 when a result is
missing. Timings on a shared machine wander: run it on a quiet one, and
read one failure as a reason to run it again, not as a verdict.

Usage:
  python3 benches/message_goals.py [--skip-cargo] [--limit-ns 300]

--skip-cargo reuses the results already in target/criterion (or
$CARGO_TARGET_DIR/criterion) instead of running `cargo bench`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from criterion_results import REPO, criterion_dir, read_estimate_ns

UNDER_LIMIT = [
    f"{group}/{op}/{name}"
    for group, name in [
        ("iso87-ascii", "auth_0100"),
        ("iso87-binary", "auth_0100"),
        ("mastercard-ipm", "first_presentment_1240"),
    ]
    for op in ("parse", "build")
]
# (cardswitch, iso_8583_rs) doing the same thing on the same 0200.
FASTER_THAN = [
    ("vs-iso_8583_rs/cardswitch/parse", "vs-iso_8583_rs/iso_8583_rs/parse"),
    ("vs-iso_8583_rs/cardswitch/build_into_parsed", "vs-iso_8583_rs/iso_8583_rs/build"),
    ("vs-iso_8583_rs/cardswitch/build", "vs-iso_8583_rs/iso_8583_rs/builder_and_pack"),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--skip-cargo", action="store_true",
                    help="reuse existing criterion results instead of running cargo bench")
    ap.add_argument("--limit-ns", type=float, default=300.0,
                    help="the limit per parse or build (default 300)")
    args = ap.parse_args()

    if not args.skip_cargo:
        cmd = ["cargo", "bench", "--bench", "message", "--", "--noplot"]
        print("running:", " ".join(cmd), flush=True)
        if subprocess.run(cmd, cwd=REPO).returncode != 0:
            print("goals: cargo bench failed")
            return 2

    wanted = UNDER_LIMIT + [id for pair in FASTER_THAN for id in pair]
    found = {id: read_estimate_ns(id) for id in wanted}
    missing = [id for id, result in found.items() if result is None]
    if missing:
        print(f"goals: no criterion result under {criterion_dir()} for: {', '.join(missing)}")
        return 2
    ns = {id: result[0] for id, result in found.items() if result is not None}

    unmet = []
    for id in UNDER_LIMIT:
        ok = ns[id] < args.limit_ns
        print(f"{'ok ' if ok else 'NOT'} {id}: {ns[id]:.1f} ns (limit {args.limit_ns:g})")
        if not ok:
            unmet.append(id)
    for ours, theirs in FASTER_THAN:
        ok = ns[ours] < ns[theirs]
        print(f"{'ok ' if ok else 'NOT'} {ours}: {ns[ours]:.1f} ns against "
              f"{theirs.rsplit('/', 2)[1]}/{theirs.rsplit('/', 1)[1]}: {ns[theirs]:.1f} ns")
        if not ok:
            unmet.append(ours)
    if unmet:
        print(f"\ngoals: {len(unmet)} not met: {', '.join(unmet)}")
        return 1
    print(f"\ngoals: all {len(UNDER_LIMIT) + len(FASTER_THAN)} met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
