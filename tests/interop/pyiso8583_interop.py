#!/usr/bin/env python3
"""Interoperability test: cardswitch's iso87-ascii spec against pyiso8583's
`iso8583.specs.default_ascii`.

Random messages (seeded) whose fields are valid under BOTH specs are checked
in both directions:

  (a) pyiso8583 encodes -> `cardswitch decode --json --reveal -` must return
      the same MTI and exactly the same field values;
  (b) the same document as our JSON -> `cardswitch encode` -> pyiso8583 must
      decode it to the same values, and our bytes must be identical to
      pyiso8583's own encoding of the document.

The cardswitch binary runs once per direction with every message batched.
A third batch mixes deliberately broken messages with good ones: each broken
one must come back as an {"error": ...} line (not a crash, not a
mis-alignment of the following lines).

The field layout is not hard-coded: it is read from specs/iso87-ascii.toml and
intersected with pyiso8583's spec. Fields the two specs disagree on (a
different fixed size, or a bit with another meaning) are left out and listed
at start-up; variable fields are capped at the smaller maximum.

Usage:
  python3 -m venv /tmp/venv && /tmp/venv/bin/pip install -r tests/interop/requirements.txt
  cargo build --release
  /tmp/venv/bin/python tests/interop/pyiso8583_interop.py [--count 1000] [--seed N|random] [--bin PATH]

Exit status is non-zero on any mismatch. The last line reads
`interop: N passed, N failed`.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import subprocess
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    sys.exit("interop: needs Python 3.11+ (tomllib) to read the spec TOML")

try:
    import iso8583
    from iso8583.specs import default_ascii as PY_SPEC
except ModuleNotFoundError:
    sys.exit(
        "interop: pyiso8583 is not installed; "
        "pip install -r tests/interop/requirements.txt"
    )

REPO = Path(__file__).resolve().parents[2]
SPEC_NAME = "iso87-ascii"
MTIS = ["0100", "0110", "0200", "0210", "0400", "0410", "0800", "0810"]
# Secondary-bitmap fields a real 0400/0800 carries; drawn more often.
FAVOURED_SECONDARY = [70, 90, 100, 102, 128]
# pyiso8583 keys that are not data elements.
NON_FIELDS = {"h", "t", "p", "1"}
SUBPROCESS_TIMEOUT_S = 600

DIGITS = "0123456789"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
PRINTABLE = "".join(chr(c) for c in range(0x20, 0x7F))  # includes " and \\
CHARSETS = {
    "n": DIGITS,
    "a": LETTERS + " ",
    "an": LETTERS + DIGITS + " ",
    "ans": PRINTABLE,
    "z": DIGITS * 4 + "=D",  # mostly digits, some separators
}
# Common EMV tags for DE55 generation: (tag hex, value length range in bytes).
EMV_TAGS = [
    ("9F26", (8, 8)), ("9F27", (1, 1)), ("9F10", (7, 32)), ("9F37", (4, 4)),
    ("9F36", (2, 2)), ("95", (5, 5)), ("9A", (3, 3)), ("9C", (1, 1)),
    ("9F02", (6, 6)), ("5F2A", (2, 2)), ("82", (2, 2)), ("9F1A", (2, 2)),
    ("9F33", (3, 3)), ("9F34", (3, 3)), ("9F35", (1, 1)), ("84", (5, 16)),
    ("9F09", (2, 2)), ("9F03", (6, 6)), ("5F34", (1, 1)), ("9F6E", (4, 32)),
]


# --------------------------------------------------------------------------
# The field layout valid under both specs
# --------------------------------------------------------------------------

class Field:
    """A data element as both sides accept it: class rules from our spec,
    length in wire characters within both maxima."""

    def __init__(self, number: int, cls: str, fixed: bool, chars: int):
        self.number = number
        self.cls = cls
        self.fixed = fixed
        self.chars = chars  # fixed: exact wire chars; variable: max wire chars


def common_layout() -> tuple[dict[int, Field], list[str]]:
    """Intersects specs/iso87-ascii.toml with pyiso8583's default_ascii."""
    ours = tomllib.loads((REPO / "specs" / f"{SPEC_NAME}.toml").read_text())
    layout: dict[int, Field] = {}
    notes: list[str] = []
    for f in ours["fields"]:
        n = f["number"]
        if n == 1:
            continue
        py = PY_SPEC.get(str(n))
        if py is None:
            notes.append(f"DE{n}: not in pyiso8583's spec; left out")
            continue
        if n == 65:
            # pyiso8583 4.x always reads bit 65 as "tertiary bitmap follows"
            # and drops a field 65 from the document on encode.
            notes.append(
                "DE65: ours is an 8-byte binary field, pyiso8583 treats bit 65 as "
                "the tertiary-bitmap indicator; left out"
            )
            continue
        if py["data_enc"] != "ascii" or py["len_enc"] != "ascii":
            notes.append(f"DE{n}: pyiso8583 encodes it as {py['data_enc']}; left out")
            continue
        per_unit = 2 if f["class"] == "b" else 1  # b: hex text on the wire
        if f["length"] == "fixed":
            # x+n: the size counts digits; the C/D sign is one more character.
            sign = 1 if f["class"] == "xn" else 0
            ours_chars = f["size"] * per_unit + sign
            if py["len_type"] != 0 or py["max_len"] != ours_chars:
                notes.append(
                    f"DE{n}: ours fixed {ours_chars} chars ({f['class']}), pyiso8583 "
                    f"{'fixed' if py['len_type'] == 0 else 'L' * py['len_type'] + 'VAR'}"
                    f" {py['max_len']}; left out"
                )
                continue
            layout[n] = Field(n, f["class"], True, ours_chars)
        else:
            prefix_digits = {"LL": 2, "LLL": 3, "LLLL": 4}[f["length"]]
            if py["len_type"] != prefix_digits:
                notes.append(
                    f"DE{n}: ours {f['length']}, pyiso8583 prefix of "
                    f"{py['len_type']} digits; left out"
                )
                continue
            ours_chars = f["max"] * per_unit
            chars = min(ours_chars, py["max_len"])
            if chars != ours_chars or chars != py["max_len"]:
                notes.append(
                    f"DE{n}: max {ours_chars} chars (ours) vs {py['max_len']} "
                    f"(pyiso8583); capped at {chars}"
                )
            layout[n] = Field(n, f["class"], False, chars)
    return layout, notes


# --------------------------------------------------------------------------
# Random documents
# --------------------------------------------------------------------------

def random_emv(rng: random.Random, max_bytes: int) -> bytes:
    """A DE55-like TLV string of at most max_bytes."""
    out = bytearray()
    for tag, (lo, hi) in rng.sample(EMV_TAGS, rng.randint(1, len(EMV_TAGS))):
        value = rng.randbytes(rng.randint(lo, hi))
        item = bytes.fromhex(tag) + bytes([len(value)]) + value
        if len(out) + len(item) > max_bytes:
            break
        out += item
    return bytes(out)


def random_value(rng: random.Random, field: Field) -> str:
    if field.fixed:
        length = field.chars
    else:
        roll = rng.random()
        if roll < 0.04:
            length = 0
        elif roll < 0.20:
            length = field.chars
        else:
            length = rng.randint(1, field.chars)
    if field.cls == "b":
        nbytes = length // 2
        # DE55 is BER-TLV in our specs (checked on parse): a random byte
        # string is a malformed DE55 for us, opaque bytes for pyiso8583.
        if field.number == 55:
            data = random_emv(rng, nbytes)
        else:
            data = rng.randbytes(nbytes)
        return data.hex().upper()
    if field.cls == "xn":
        return rng.choice("CD") + "".join(rng.choices(DIGITS, k=length - 1))
    return "".join(rng.choices(CHARSETS[field.cls], k=length))


def random_doc(rng: random.Random, layout: dict[int, Field]) -> dict[str, str]:
    primary = [n for n in layout if n <= 64]
    secondary = [n for n in layout if n > 64]
    favoured = [n for n in FAVOURED_SECONDARY if n in layout]
    chosen: set[int] = set()
    if rng.random() > 0.05:  # 5%: only secondary fields (e.g. an 0800 with DE70)
        chosen.update(rng.sample(primary, rng.randint(1, min(30, len(primary)))))
    if rng.random() < 0.4 or not chosen:
        chosen.update(rng.sample(secondary, rng.randint(0, 6)))
        chosen.update(n for n in favoured if rng.random() < 0.4)
        if not chosen:
            chosen.add(rng.choice(favoured or secondary))
    # Realistic flavour: card data and EMV often appear together.
    for n in (52, 55):
        if n in layout and rng.random() < 0.25:
            chosen.add(n)
    doc = {"t": rng.choice(MTIS)}
    for n in sorted(chosen):
        doc[str(n)] = random_value(rng, layout[n])
    return doc


def golden_doc() -> dict[str, str] | None:
    path = REPO / "fixtures" / "golden" / SPEC_NAME / "0100-auth-request.json"
    if not path.exists():
        return None
    msg = json.loads(path.read_text())
    return {"t": msg["mti"], **msg["fields"]}


def fields_of(doc: dict) -> dict[str, str]:
    return {k: v for k, v in doc.items() if k not in NON_FIELDS}


def our_json(doc: dict) -> str:
    return json.dumps({"mti": doc["t"], "fields": fields_of(doc)})


# --------------------------------------------------------------------------
# Running cardswitch
# --------------------------------------------------------------------------

def run_bin(binary: str, args: list[str], stdin: str) -> tuple[int, list[str], str]:
    proc = subprocess.run(
        [binary, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
    )
    return proc.returncode, proc.stdout.splitlines(), proc.stderr


def crashed(rc: int, stderr: str) -> bool:
    """A panic (exit 101), a signal (negative rc) or a panic message."""
    return rc < 0 or rc == 101 or "panicked" in stderr


# --------------------------------------------------------------------------
# Comparison and reporting
# --------------------------------------------------------------------------

def show(value: str | None) -> str:
    if value is None:
        return "<absent>"
    return f"{value!r} ({len(value)} chars)"


def diff_fields(mti_exp: str, exp: dict, mti_got: str | None, got: dict) -> str | None:
    """None when equal, else a description of the first difference."""
    if mti_exp != mti_got:
        return f"MTI: expected {mti_exp!r}, got {mti_got!r}"
    for key in sorted(set(exp) | set(got), key=int):
        if exp.get(key) != got.get(key):
            return f"field {key}: expected {show(exp.get(key))}, got {show(got.get(key))}"
    return None


def wire_segments(doc_enc: dict) -> list[tuple[str, int, int]]:
    """(field, start, end) byte ranges of pyiso8583's encoding, in wire order."""
    order = [k for k in ("h", "t", "p", "1") if k in doc_enc]
    order += sorted((k for k in doc_enc if k not in NON_FIELDS), key=int)
    segments, pos = [], 0
    for k in order:
        size = len(doc_enc[k]["len"]) + len(doc_enc[k]["data"])
        segments.append((k, pos, pos + size))
        pos += size
    return segments


def diff_bytes(py_raw: bytes, py_enc: dict, ours: bytes) -> str | None:
    if py_raw == ours:
        return None
    offset = next(
        (i for i, (a, b) in enumerate(zip(py_raw, ours)) if a != b),
        min(len(py_raw), len(ours)),
    )
    where = "past the end of pyiso8583's message"
    for key, start, end in wire_segments(py_enc):
        if start <= offset < end:
            name = {"h": "header", "t": "MTI", "p": "primary bitmap", "1": "secondary bitmap"}
            label = name.get(key, f"field {key}")
            where = (
                f"{label} (bytes {start}..{end}): pyiso8583 {py_raw[start:end]!r}, "
                f"cardswitch {ours[start:end]!r}"
            )
            break
    return (
        f"bytes differ at offset {offset} (lengths pyiso8583 {len(py_raw)}, "
        f"cardswitch {len(ours)}) in {where}"
    )


class Tally:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0
        self.reported = 0

    def fail(self, title: str, detail: str, context: str | None = None) -> None:
        self.failed += 1
        self.reported += 1
        if self.reported == 1:
            print(f"FIRST MISMATCH: {title}\n  {detail}")
            if context:
                print(f"  {context}")
        elif self.reported <= 10:
            print(f"mismatch: {title}: {detail}")
        elif self.reported == 11:
            print("(further mismatches not shown)")


# --------------------------------------------------------------------------
# Broken messages
# --------------------------------------------------------------------------

def broken_cases(doc: dict) -> list[tuple[str, bytes, bool]]:
    """(name, bytes, pyiso8583 rejects it too) derived from one good message,
    which must have DE2, DE3 and DE52 and a secondary bitmap."""
    raw, enc = iso8583.encode(copy.deepcopy(doc), PY_SPEC)
    raw = bytes(raw)
    seg = {k: (s, e) for k, s, e in wire_segments(enc)}
    cases = []
    cases.append(("truncated by 5 bytes", raw[:-5], True))
    cases.append(("truncated inside the primary bitmap", raw[:12], True))
    cases.append(("MTI only", raw[:4], True))
    p0 = seg["p"][0]
    cases.append(("bad primary bitmap char 'G'", raw[: p0 + 3] + b"G" + raw[p0 + 4 :], True))
    s0 = seg["1"][0]
    cases.append(("bad secondary bitmap char 'Z'", raw[: s0 + 5] + b"Z" + raw[s0 + 6 :], True))
    l2 = seg["2"][0]
    cases.append(("non-digit DE2 length prefix", raw[:l2] + b"1A" + raw[l2 + 2 :], True))
    cases.append(("DE2 length 25 > max 19", raw[:l2] + b"25" + raw[l2 + 2 :], True))
    cases.append(("3 trailing bytes", raw + b"XYZ", True))
    # Class violations: pyiso8583 does not check content classes, we do.
    d3 = seg["3"][0]
    cases.append(("letter in numeric DE3", raw[:d3] + b"A" + raw[d3 + 1 :], False))
    d52 = seg["52"][0]
    cases.append(("non-hex char in binary DE52", raw[:d52] + b"G" + raw[d52 + 1 :], False))
    return cases


def pyiso_rejects(raw: bytes) -> bool:
    try:
        iso8583.decode(raw, PY_SPEC)
    except iso8583.DecodeError:
        return True
    return False


# --------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=1000, help="random messages (default 1000)")
    ap.add_argument("--seed", default="8583", help="integer, or 'random' (default 8583)")
    ap.add_argument(
        "--bin",
        default="target/release/cardswitch",
        help="cardswitch binary (default target/release/cardswitch, relative to the "
        "current directory, else to the repository root)",
    )
    args = ap.parse_args()

    binary = Path(args.bin)
    if not binary.exists() and not binary.is_absolute() and (REPO / binary).exists():
        binary = REPO / binary
    if not binary.exists():
        print(f"interop: no binary at {args.bin}; run `cargo build --release` first")
        print("interop: 0 passed, 1 failed")
        return 2
    binary = str(binary)

    seed = int.from_bytes(os.urandom(4), "big") if args.seed == "random" else int(args.seed)
    print(f"seed: {seed} (rerun with --seed {seed})")
    print(f"pyiso8583 {getattr(iso8583, '__version__', '?')}, cardswitch {binary}")
    rng = random.Random(seed)

    layout, notes = common_layout()
    print(f"fields valid under both specs: {len(layout)}")
    for note in notes:
        print(f"  spec difference: {note}")

    docs = []
    golden = golden_doc()
    if golden is not None:
        docs.append(golden)
    while len(docs) < args.count:
        docs.append(random_doc(rng, layout))

    # pyiso8583's encoding of every document (deep copy: encode mutates it).
    tally = Tally()
    py_encoded: list[tuple[bytes, dict] | None] = []
    for i, doc in enumerate(docs):
        try:
            raw, enc = iso8583.encode(copy.deepcopy(doc), PY_SPEC)
            py_encoded.append((bytes(raw), enc))
        except iso8583.EncodeError as e:  # a generator bug, not a cardswitch one
            py_encoded.append(None)
            tally.fail(f"message {i} (generator)", f"pyiso8583 refused it: {e}", our_json(doc))

    # (a) pyiso8583 -> cardswitch decode, all messages in one run.
    good = [i for i, e in enumerate(py_encoded) if e is not None]
    rc, lines, stderr = run_bin(
        binary,
        ["decode", "--spec", SPEC_NAME, "--json", "--reveal", "-"],
        "".join(py_encoded[i][0].hex() + "\n" for i in good),
    )
    decode_ok = rc == 0 and len(lines) == len(good) and not crashed(rc, stderr)
    if not decode_ok:
        print(
            f"(a) cardswitch decode: exit {rc}, {len(lines)} lines for {len(good)} "
            f"messages; stderr: {stderr.strip()[-2000:]}"
        )
    failures_a: dict[int, tuple[str, str]] = {}
    for j, i in enumerate(good):
        line = lines[j] if j < len(lines) else None
        try:
            got = json.loads(line) if line is not None else {"error": "no output line"}
        except json.JSONDecodeError:
            got = {"error": f"not JSON: {line!r}"}
        if "error" in got:
            detail = f"cardswitch decode error: {got['error']}"
        else:
            detail = diff_fields(docs[i]["t"], fields_of(docs[i]), got.get("mti"), got.get("fields", {}))
        if detail:
            failures_a[i] = (detail, f"pyiso8583 bytes: {py_encoded[i][0]!r}")

    # (b) our JSON -> cardswitch encode -> pyiso8583, all in one run.
    rc, lines, stderr = run_bin(
        binary,
        ["encode", "--spec", SPEC_NAME],
        "".join(our_json(docs[i]) + "\n" for i in good),
    )
    if rc != 0 or len(lines) != len(good) or crashed(rc, stderr):
        print(
            f"(b) cardswitch encode: exit {rc}, {len(lines)} lines for {len(good)} "
            f"messages; stderr: {stderr.strip()[-2000:]}"
        )
    enc_errors = [l for l in stderr.splitlines() if l.startswith("message ")]
    failures_b: dict[int, tuple[str, str]] = {}
    for j, i in enumerate(good):
        line = lines[j].strip() if j < len(lines) else ""
        context = f"our JSON: {our_json(docs[i])}"
        if not line:
            why = next((e for e in enc_errors if e.startswith(f"message {j + 1}:")), "no output")
            failures_b[i] = (f"cardswitch encode failed: {why}", context)
            continue
        ours = bytes.fromhex(line)
        try:
            back, _ = iso8583.decode(ours, PY_SPEC)
            detail = diff_fields(docs[i]["t"], fields_of(docs[i]), back.get("t"), fields_of(back))
        except iso8583.DecodeError as e:
            detail = f"pyiso8583 cannot decode our bytes: {e}"
        if not detail:
            detail = diff_bytes(py_encoded[i][0], py_encoded[i][1], ours)
        if detail:
            failures_b[i] = (detail, context)

    for i in good:
        if i in failures_a:
            tally.fail(f"message {i} MTI {docs[i]['t']}, pyiso8583 -> cardswitch decode", *failures_a[i])
        elif i in failures_b:
            tally.fail(f"message {i} MTI {docs[i]['t']}, cardswitch encode -> pyiso8583", *failures_b[i])
        else:
            tally.passed += 1
    print(
        f"random messages: {len(good) - len(set(failures_a) | set(failures_b))} of {len(docs)} "
        f"agree both ways ((a) {len(failures_a)} failed, (b) {len(failures_b)} failed)"
    )

    # Broken messages, interleaved with good ones to check line alignment.
    base = {
        "t": "0200", "2": "4761739001010119", "3": "000000", "4": "000000001000",
        "11": "000042", "41": "TERM0001", "52": "0123456789ABCDEF", "70": "301",
        "102": "ACCOUNT 1",
    }
    cases = broken_cases(base)
    batch: list[tuple[str | None, bytes]] = []  # (case name or None for good, bytes)
    for k, (name, raw, _) in enumerate(cases):
        batch.append((None, py_encoded[good[k % len(good)]][0]))
        batch.append((name, raw))
    rc, lines, stderr = run_bin(
        binary,
        ["decode", "--spec", SPEC_NAME, "--json", "--reveal", "-"],
        "".join(raw.hex() + "\n" for _, raw in batch),
    )
    if crashed(rc, stderr) or rc == 0:
        print(f"broken batch: cardswitch decode exit {rc} (expected a failure exit, no crash); "
              f"stderr: {stderr.strip()[-2000:]}")
    py_too = {name: expect for name, _, expect in cases}
    for k, (name, raw) in enumerate(batch):
        line = lines[k] if k < len(lines) else None
        try:
            got = json.loads(line) if line is not None else None
        except json.JSONDecodeError:
            got = None
        if name is None:
            continue  # good messages are there to check alignment only
        is_error = isinstance(got, dict) and "error" in got
        ok = is_error and not crashed(rc, stderr) and rc != 0
        # The good message after this one must still decode (alignment).
        nxt = lines[k + 1] if k + 1 < len(lines) else None
        if k + 1 < len(batch) and (nxt is None or '"error"' in nxt):
            ok = False
        pyiso = "pyiso8583 rejects it too" if pyiso_rejects(raw) else "pyiso8583 accepts it"
        if py_too[name] and not pyiso_rejects(raw):
            pyiso += " (unexpected)"
        if ok:
            tally.passed += 1
            print(f"  broken '{name}': rejected: {got['error']} [{pyiso}]")
        else:
            tally.fail(f"broken message '{name}'", f"cardswitch answered {line!r}", f"bytes: {raw!r}")

    print(f"interop: {tally.passed} passed, {tally.failed} failed")
    return 1 if tally.failed else 0


if __name__ == "__main__":
    sys.exit(main())
