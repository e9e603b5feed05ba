#!/usr/bin/env python3
"""An acquirer and an issuer that nobody here wrote the cryptography of
(tests/hsm_switch_interop.rs): PIN blocks and MACs made and checked with
psec, messages with pyiso8583 (its default_ascii spec is cardswitch's
iso87-ascii), 2-byte big-endian length framing.

  zone_peers.py issuer --zpk HEX --zak HEX --pin 1234
      listens on 127.0.0.1:0 (prints "issuer listening on ADDR"); for each
      0200 decrypts DE52 under the ZPK, reads the ISO format 0 block with
      the PAN and answers 00 when it holds the PIN (55 otherwise), after
      checking the MAC in DE64 with the ZAK (63 when it fails); signs its
      answers with the ZAK.
  zone_peers.py acquirer --target ADDR --tpk HEX --tak HEX --pin 1234 --count N --first K
      sends N 0200s with the PIN block made by psec under the TPK and a MAC
      by psec under the TAK, checks each answer's MAC with the TAK, and
      prints one JSON line: {"codes": {...}, "reply_macs_ok": n}.

Exit status 2 when a reference is missing: a failed test, never a skip.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys

from peer_framing import read_frame, send_frame
import threading

try:
    import iso8583
    import psec.des
    import psec.mac
    import psec.pinblock
    from iso8583.specs import default_ascii as SPEC
except ImportError as e:
    print(f"zone_peers: a Python reference is missing ({e}); "
          "install tests/interop/requirements.txt", file=sys.stderr)
    sys.exit(2)

h = bytes.fromhex


def retail_mac(key: bytes, data: bytes) -> bytes:
    """ISO 9797-1 algorithm 3, padding method 1."""
    return psec.mac.generate_retail_mac(key[:8], key[8:16], data, padding=1)


def build(doc: dict, key: bytes | None) -> bytes:
    """The message, signed in DE64 with `key` when given."""
    if key is None:
        return bytes(iso8583.encode(doc, SPEC)[0])
    doc["64"] = "0" * 16
    raw = bytes(iso8583.encode(doc, SPEC)[0])
    mac = retail_mac(key, raw[:-16]).hex().upper()
    return raw[:-16] + mac.encode()


def mac_ok(raw: bytes, key: bytes) -> bool:
    doc, _ = iso8583.decode(bytearray(raw), SPEC)
    return "64" in doc and retail_mac(key, raw[:-16]).hex().upper() == doc["64"].upper()


def issuer_answer(raw: bytes, zpk: bytes, zak: bytes, pin: str) -> bytes:
    doc, _ = iso8583.decode(bytearray(raw), SPEC)
    answer = {k: v for k, v in doc.items() if k in ("2", "3", "4", "7", "11", "32", "33", "37", "41", "42", "49")}
    answer["t"] = doc["t"][:2] + str(int(doc["t"][2]) + 1) + doc["t"][3]
    if doc["t"][1] == "8":
        answer["70"] = doc.get("70", "301")
        answer["39"] = "00"
        return build(answer, None)
    code = "00"
    if not mac_ok(raw, zak):
        code = "63"
    else:
        clear = psec.des.decrypt_tdes_ecb(zpk, h(doc["52"]))
        try:
            got = psec.pinblock.decode_pinblock_iso_0(clear, doc["2"])
        except ValueError:
            got = None
        if got != pin:
            code = "55"
    answer["39"] = code
    if code == "00":
        answer["38"] = "PY0001"
    return build(answer, zak)


def serve(conn: socket.socket, args) -> None:
    zpk, zak = h(args.zpk), h(args.zak)
    with conn:
        while (raw := read_frame(conn)) is not None:
            send_frame(conn, issuer_answer(raw, zpk, zak, args.pin))


def issuer(args) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    print(f"issuer listening on 127.0.0.1:{server.getsockname()[1]}", flush=True)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=serve, args=(conn, args), daemon=True).start()


def acquirer(args) -> None:
    tpk, tak = h(args.tpk), h(args.tak)
    host, port = args.target.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=10)
    codes: dict[str, int] = {}
    macs_ok = 0
    for i in range(args.first, args.first + args.count):
        pan = "4761739001010119"
        block = psec.pinblock.encode_pinblock_iso_0(args.pin, pan)
        doc = {
            "t": "0200", "2": pan, "3": "000000", "4": "000000001000",
            "7": "1202120000", "11": f"{i + 1:06d}", "12": "120000", "13": "1202",
            "14": "3012", "22": "051", "32": "400001", "37": f"PY{i + 1:010d}",
            "41": "PYTERM01", "42": "PYMERCHANT00001", "49": "978",
            "52": psec.des.encrypt_tdes_ecb(tpk, block).hex().upper(),
        }
        send_frame(sock, build(doc, tak))
        raw = read_frame(sock)
        if raw is None:
            break
        answer, _ = iso8583.decode(bytearray(raw), SPEC)
        code = answer.get("39", "?")
        codes[code] = codes.get(code, 0) + 1
        if mac_ok(raw, tak):
            macs_ok += 1
    print(json.dumps({"codes": codes, "reply_macs_ok": macs_ok}), flush=True)


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="role", required=True)
    i = sub.add_parser("issuer")
    i.add_argument("--zpk", required=True)
    i.add_argument("--zak", required=True)
    i.add_argument("--pin", required=True)
    a = sub.add_parser("acquirer")
    a.add_argument("--target", required=True)
    a.add_argument("--tpk", required=True)
    a.add_argument("--tak", required=True)
    a.add_argument("--pin", required=True)
    a.add_argument("--count", type=int, default=10)
    # Distinct STANs and RRNs per run: the same ones would be copies.
    a.add_argument("--first", type=int, default=0)
    args = p.parse_args()
    issuer(args) if args.role == "issuer" else acquirer(args)


if __name__ == "__main__":
    main()
