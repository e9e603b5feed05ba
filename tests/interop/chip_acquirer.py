#!/usr/bin/env python3
"""A chip-card acquirer whose cryptography nobody here wrote
(tests/hsm_switch_interop.rs): the ARQC made with pyemv (EMV option A card
key from the issuer's MK-AC, the M/Chip common session key from the ATC
and the unpredictable number, EMV padding), messages with pyiso8583 (its
default_ascii spec is cardswitch's iso87-ascii), 2-byte big-endian length
framing.

  chip_acquirer.py --target ADDR --imk HEX --count N --first K [--tamper]
      sends N 0100s with DE55 holding the data EMV Book 2 lists (9F02
      9F03 9F1A 95 5F2A 9A 9C 9F37 82 9F36) and the ARQC (9F26) over it
      (with --tamper, one bit of the ARQC flipped); for each answer checks
      the ARPC in DE55 tag 91 with pyemv (method 1, ARC 00) and prints one
      JSON line: {"codes": {...}, "arpcs_ok": n}.

Exit status 2 when a reference is missing: a failed test, never a skip.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys

from peer_framing import read_frame, send_frame

try:
    import iso8583
    import pyemv.ac
    import pyemv.kd
    import pyemv.tlv
    from iso8583.specs import default_ascii as SPEC
except ImportError as e:
    print(f"chip_acquirer: a Python reference is missing ({e}); "
          "install tests/interop/requirements.txt", file=sys.stderr)
    sys.exit(2)

PAN = "5413330089010012"
COVERED = ["9F02", "9F03", "9F1A", "95", "5F2A", "9A", "9C", "9F37", "82", "9F36"]


def chip_request(imk: bytes, i: int, tamper: bool) -> tuple[dict, bytes, bytes]:
    """The 0100 of transaction `i`, its session key and its ARQC."""
    atc = (i + 1).to_bytes(2, "big")
    un = os.urandom(4)
    tags = {
        "9F02": bytes.fromhex("000000001000"), "9F03": bytes(6), "9F1A": bytes.fromhex("0826"),
        "95": bytes(5), "5F2A": bytes.fromhex("0978"), "9A": bytes.fromhex("261203"),
        "9C": b"\x00", "9F37": un, "82": bytes.fromhex("3900"), "9F36": atc,
    }
    mk = pyemv.kd.derive_icc_mk_a(imk, PAN, "00")
    sk = pyemv.kd.derive_common_sk(mk, atc + b"\x00\x00" + un)
    arqc = pyemv.ac.generate_ac(sk, b"".join(tags[t] for t in COVERED), pyemv.ac.PaddingType.EMV)
    sent = bytes([arqc[0] ^ 1]) + arqc[1:] if tamper else arqc
    de55 = pyemv.tlv.encode({"9F26": sent, **tags})
    doc = {
        "t": "0100", "2": PAN, "3": "000000", "4": "000000001000", "7": "1203120000",
        "11": f"{i + 1:06d}", "12": "120000", "13": "1203", "14": "3012", "22": "051",
        "32": "400001", "37": f"CH{i + 1:010d}", "41": "CHTERM01", "42": "CHMERCHANT00001",
        "49": "978", "55": de55.hex().upper(),
    }
    return doc, sk, arqc


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--target", required=True)
    p.add_argument("--imk", required=True)
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--first", type=int, default=0)
    p.add_argument("--tamper", action="store_true")
    args = p.parse_args()
    imk = bytes.fromhex(args.imk)
    host, port = args.target.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=10)
    codes: dict[str, int] = {}
    arpcs_ok = 0
    for i in range(args.first, args.first + args.count):
        doc, sk, arqc = chip_request(imk, i, args.tamper)
        body = bytes(iso8583.encode(doc, SPEC)[0])
        send_frame(sock, body)
        raw = read_frame(sock)
        if raw is None:
            break
        answer, _ = iso8583.decode(bytearray(raw), SPEC)
        code = answer.get("39", "?")
        codes[code] = codes.get(code, 0) + 1
        issuer_data = pyemv.tlv.decode(bytes.fromhex(answer.get("55", ""))).get("91", b"")
        want = pyemv.ac.generate_arpc_1(sk, arqc, b"00") + b"00"
        if issuer_data == want:
            arpcs_ok += 1
    print(json.dumps({"codes": codes, "arpcs_ok": arpcs_ok}), flush=True)


if __name__ == "__main__":
    main()
