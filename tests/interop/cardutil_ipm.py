#!/usr/bin/env python3
"""Interoperability test: cardswitch's IPM clearing files read by cardutil.

cardutil (PyPI, an independent Python implementation of Mastercard IPM)
must read every file `cardswitch clearing cutoff` writes, blocked (1014-byte
blocks) and unblocked, with `IpmReader(f, blocked=..., encoding='cp500')`.
For every record, cardutil's MTI, DE2, DE4, DE31 and DE71 must equal what
`cardswitch clearing read --json --reveal` says, and every presentment must
equal the journal's clearing_items row (ARN, amount) and masked PAN. cardutil
does not check totals, so this script does: the trailer's PDS 0301 must be
the sum of DE4 over all records cardutil read, PDS 0306 the number of
records, and DE71 must run 1, 2, 3 ...

Usage:
  .venv/bin/python tests/interop/cardutil_ipm.py --bin target/debug/cardswitch [--count 2500]

Exit status is non-zero on any mismatch, and 2 when cardutil is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile

try:
    import cardutil
    from cardutil.mciipm import IpmReader
except ImportError as e:  # fail loudly: a missing peer is a failed test
    print(f"cardutil_ipm: cardutil is not installed ({e}); "
          "install tests/interop/requirements.txt", file=sys.stderr)
    sys.exit(2)

KEY = "k1:" + "42" * 32
DATE = "2026-11-23"


def mask(pan: str) -> str:
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]


def cardswitch(binary: str, *args: str) -> str:
    env = dict(os.environ, CARDSWITCH_JOURNAL_KEY=KEY)
    done = subprocess.run([binary, *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"cardutil_ipm: cardswitch {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def pds(de48: str) -> dict[str, str]:
    out, i = {}, 0
    while i < len(de48):
        tag, length = de48[i:i + 4], int(de48[i + 4:i + 7])
        out[tag] = de48[i + 7:i + 7 + length]
        i += 7 + length
    return out


def check_file(binary: str, db: str, path: str, blocked: bool) -> tuple[int, list[str]]:
    faults: list[str] = []
    with open(path, "rb") as f:
        theirs = list(IpmReader(f, blocked=blocked, encoding="cp500"))
    args = ["clearing", "read", "--json", "--reveal", path] + ([] if blocked else ["--unblocked"])
    ours_lines = [json.loads(l) for l in cardswitch(binary, *args).splitlines()]
    summary = ours_lines[-1]["summary"]
    ours = ours_lines[:-1]
    if len(theirs) != len(ours):
        faults.append(f"{path}: cardutil read {len(theirs)} records, cardswitch {len(ours)}")
        return 0, faults
    conn = sqlite3.connect(db)
    journal = conn.execute(
        """SELECT c.arn, c.amount_minor, t.pan_masked FROM clearing_items c
           JOIN transactions t ON t.id = c.txn_id JOIN clearing_files f ON f.id = c.file_id
           WHERE f.name = ? AND c.role = 'presented' ORDER BY c.arn_seq""",
        (os.path.basename(path),),
    ).fetchall()
    presentments = 0
    de4_sum = 0
    for n, (t, o) in enumerate(zip(theirs, ours), start=1):
        of = o["fields"]
        where = f"{os.path.basename(path)} record {n}"
        if t["MTI"] != o["mti"]:
            faults.append(f"{where}: MTI cardutil {t['MTI']} vs {o['mti']}")
        if t.get("DE71") != n or int(of["71"]) != n:
            faults.append(f"{where}: DE71 cardutil {t.get('DE71')} ours {of.get('71')}, expected {n}")
        for de in ("2", "31"):
            if t.get("DE" + de) != of.get(de):
                faults.append(f"{where}: DE{de} differs (cardutil vs cardswitch)")
        if "DE4" in t or "4" in of:
            if t.get("DE4") is None or int(of.get("4", "-1")) != t["DE4"]:
                faults.append(f"{where}: DE4 cardutil {t.get('DE4')} vs {of.get('4')}")
            else:
                de4_sum += t["DE4"]
        if t["MTI"] == "1240":
            if presentments >= len(journal):
                faults.append(f"{where}: a presentment the journal does not have")
                continue
            arn, amount, masked = journal[presentments]
            presentments += 1
            if (t["DE31"], t["DE4"], mask(t["DE2"])) != (arn, amount, masked):
                faults.append(f"{where}: differs from the journal (ARN {arn}, amount {amount}, PAN {masked})")
    if presentments != len(journal):
        faults.append(f"{path}: {presentments} presentments, the journal has {len(journal)}")
    header, trailer = theirs[0], theirs[-1]
    if (header["MTI"], header["DE24"], trailer["MTI"], trailer["DE24"]) != ("1644", "697", "1644", "695"):
        faults.append(f"{path}: header/trailer are not 1644/697 and 1644/695")
    tp = pds(trailer["DE48"])
    if header.get("PDS0105") != tp.get("0105") or len(tp.get("0105", "")) != 25:
        faults.append(f"{path}: PDS 0105 differs between header and trailer")
    if int(tp.get("0301", "-1")) != de4_sum or len(tp.get("0301", "")) != 16:
        faults.append(f"{path}: PDS 0301 {tp.get('0301')} but DE4 sums to {de4_sum}")
    if int(tp.get("0306", "-1")) != len(theirs) or len(tp.get("0306", "")) != 8:
        faults.append(f"{path}: PDS 0306 {tp.get('0306')} but the file has {len(theirs)} records")
    if (summary["amount_sum"], summary["messages"]) != (de4_sum, len(theirs)):
        faults.append(f"{path}: cardswitch's summary {summary} disagrees with cardutil's totals")
    return len(theirs), faults


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/debug/cardswitch")
    ap.add_argument("--count", type=int, default=2500)
    args = ap.parse_args()
    print(f"cardutil_ipm: cardutil {getattr(cardutil, '__version__', '?')}")
    faults: list[str] = []
    files = records = 0
    with tempfile.TemporaryDirectory(prefix="cardutil-ipm-") as tmp:
        for blocked in (True, False):
            layout = "blocked" if blocked else "unblocked"
            db = os.path.join(tmp, f"{layout}.db")
            out = os.path.join(tmp, layout)
            cardswitch(args.bin, "clearing", "seed", "--db", db, "--count", str(args.count), "--date", DATE, "--merchants", "7")
            cut = ["clearing", "cutoff", "--date", DATE, "--db", db, "--out", out]
            cardswitch(args.bin, *cut, *([] if blocked else ["--unblocked"]))
            # A second, small file the same day: file sequence 2.
            cardswitch(args.bin, "clearing", "seed", "--db", db, "--count", "3", "--date", DATE, "--merchants", "1")
            cardswitch(args.bin, *cut, *([] if blocked else ["--unblocked"]))
            names = sorted(n for n in os.listdir(out) if n.endswith(".ipm"))
            if len(names) != 2:
                faults.append(f"{layout}: expected 2 clearing files, found {names}")
            for name in names:
                n, f = check_file(args.bin, db, os.path.join(out, name), blocked)
                files += 1
                records += n
                faults.extend(f)
    for f in faults[:50]:
        print("MISMATCH", f)
    print(f"cardutil_ipm: {files} files, {records} records read by cardutil, {len(faults)} mismatches")
    return 1 if faults or files == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
