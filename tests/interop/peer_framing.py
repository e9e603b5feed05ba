"""The Python peers' framing (tests/interop/zone_peers.py,
chip_acquirer.py): a 2-byte big-endian length before each message."""

from __future__ import annotations

import socket
import struct


def read_frame(sock: socket.socket) -> bytes | None:
    """The next message, or None when the peer closed."""
    head = b""
    while len(head) < 2:
        more = sock.recv(2 - len(head))
        if not more:
            return None
        head += more
    (length,) = struct.unpack(">H", head)
    body = b""
    while len(body) < length:
        more = sock.recv(length - len(body))
        if not more:
            return None
        body += more
    return body


def send_frame(sock: socket.socket, body: bytes) -> None:
    sock.sendall(struct.pack(">H", len(body)) + body)
