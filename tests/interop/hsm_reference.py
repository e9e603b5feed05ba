#!/usr/bin/env python3
"""Reference values for cardswitch's software HSM (tests/hsm_interop.rs).

Reads a JSON list of cases on stdin and writes, for each, what independent
MIT-licensed implementations compute on the same inputs: psec (PIN blocks
formats 0, 3, 4, KCV, ISO 9797-1 MACs, CVV), pydukpt (ANSI X9.24-1 TDES
DUKPT), pyemv (EMV master and session keys, ARQC, ARPC) and the
cryptography package (AES-CMAC). The Rust test compares them with its own.
Every value is hex (or a PIN / CVV as digits). Exit status 2 when a
reference is missing: a missing reference is a failed test, never a skip.
"""

from __future__ import annotations

import json
import sys

try:
    import psec.cvv
    import psec.des
    import psec.mac
    import psec.pinblock
    import pydukpt
    import pyemv.ac
    import pyemv.kd
    from cryptography.hazmat.primitives import cmac
    from cryptography.hazmat.primitives.ciphers import algorithms
except ImportError as e:
    print(f"hsm_reference: a Python reference is missing ({e}); "
          "install tests/interop/requirements.txt", file=sys.stderr)
    sys.exit(2)

h = bytes.fromhex


def pin_blocks(c: dict) -> dict:
    pin, pan = c["pin"], c["pan"]
    key = h(c["aes_key"])
    return {
        "iso0": psec.pinblock.encode_pinblock_iso_0(pin, pan).hex(),
        "iso0_read_ours": psec.pinblock.decode_pinblock_iso_0(h(c["ours_iso0"]), pan),
        "iso3": psec.pinblock.encode_pinblock_iso_3(pin, pan).hex(),
        "iso3_read_ours": psec.pinblock.decode_pinblock_iso_3(h(c["ours_iso3"]), pan),
        "iso4": psec.pinblock.encipher_pinblock_iso_4(key, pin, pan).hex(),
        "iso4_read_ours": psec.pinblock.decipher_pinblock_iso_4(key, h(c["ours_iso4"]), pan),
    }


def keys_and_macs(c: dict) -> dict:
    key, data, aes = h(c["tdes_key"]), h(c["data"]), h(c["aes_key"])
    mac = cmac.CMAC(algorithms.AES(aes))
    mac.update(data)
    return {
        "kcv": psec.des.generate_kcv(key, 3).hex(),
        "retail_mac_1": psec.mac.generate_retail_mac(key[:8], key[8:], data, 1).hex(),
        "retail_mac_2": psec.mac.generate_retail_mac(key[:8], key[8:], data, 2).hex(),
        "cbc_mac_1": psec.mac.generate_cbc_mac(key, data, 1).hex(),
        "cbc_mac_2": psec.mac.generate_cbc_mac(key, data, 2).hex(),
        "aes_cmac": mac.finalize().hex(),
        "cvv": psec.cvv.generate_cvv(key, c["pan"], c["expiry"], c["service_code"]),
    }


def dukpt(c: dict) -> dict:
    bdk, ksn = h(c["bdk"]), h(c["ksn"])
    ipek = pydukpt.derive_ipek(bdk, ksn)
    key = pydukpt.derive_key(ipek, ksn)
    return {
        "ipek": ipek.hex(),
        "key": key.hex(),
        "pin": pydukpt.pin_key(key).hex(),
        "mac_request": pydukpt.mac_request_key(key).hex(),
        "mac_response": pydukpt.mac_response_key(key).hex(),
        "data_request": pydukpt.data_request_key(key).hex(),
        "data_response": pydukpt.data_response_key(key).hex(),
    }


def emv(c: dict) -> dict:
    mk = pyemv.kd.derive_icc_mk_a(h(c["imk"]), c["pan"], c["psn"])
    atc, un = h(c["atc"]), h(c["un"])
    sk = pyemv.kd.derive_common_sk(mk, atc + b"\x00" * 6)
    sk_mchip = pyemv.kd.derive_common_sk(mk, atc + b"\x00\x00" + un)
    arqc = pyemv.ac.generate_ac(sk, h(c["data"]), pyemv.ac.PaddingType.EMV)
    return {
        "icc_mk": mk.hex(),
        "sk": sk.hex(),
        "sk_mchip": sk_mchip.hex(),
        "arqc": arqc.hex(),
        "arqc_visa": pyemv.ac.generate_ac(sk, h(c["data"]), pyemv.ac.PaddingType.VISA).hex(),
        "arpc": pyemv.ac.generate_arpc_1(sk, arqc, h(c["arc"])).hex(),
    }


KINDS = {"pin_blocks": pin_blocks, "keys_and_macs": keys_and_macs, "dukpt": dukpt, "emv": emv}


def main() -> None:
    cases = json.load(sys.stdin)
    out = [KINDS[c["kind"]](c) for c in cases]
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
