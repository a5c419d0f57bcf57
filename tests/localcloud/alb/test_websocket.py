"""WebSockets through the listener: the upgrade is forwarded, the target's 101 relayed, then
frames flow both ways until either side closes (RFC 6455 framing written out in the test)."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import struct
import threading

import pytest

from ship.localcloud.alb.targets import Target

from .support import config, read_response

pytestmark = pytest.mark.timeout(60)

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def read_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        piece = sock.recv(1)
        if not piece:
            raise ConnectionError(f"closed before {marker!r}: {data!r}")
        data += piece
    return data


def read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        piece = sock.recv(n - len(data))
        if not piece:
            raise ConnectionError("closed mid-frame")
        data += piece
    return data


def read_frame(sock: socket.socket) -> tuple:
    b0, b1 = read_exactly(sock, 2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", read_exactly(sock, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", read_exactly(sock, 8))[0]
    mask = read_exactly(sock, 4) if b1 & 0x80 else None
    payload = read_exactly(sock, n)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return b0 & 0x0F, payload


def frame(opcode: int, payload: bytes, masked: bool) -> bytes:
    head = bytes([0x80 | opcode])
    n = len(payload)
    length = bytes([n]) if n < 126 else bytes([126]) + struct.pack("!H", n) if n < 65536 else \
        bytes([127]) + struct.pack("!Q", n)
    if not masked:
        return head + length + payload
    mask = os.urandom(4)
    return head + bytes([length[0] | 0x80]) + length[1:] + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class EchoServer:
    """A WebSocket echo target; records the upgrade requests it received (other requests, such as
    health checks, get an empty 200)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.requests: list = []
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(c,), daemon=True)
            self.threads.append(t)
            t.start()

    def _serve(self, c):
        with c:
            c.settimeout(10)
            try:
                head = read_until(c, b"\r\n\r\n")
            except (OSError, ConnectionError):
                return
            keys = [line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                    if line.lower().startswith(b"sec-websocket-key:")]
            if not keys:
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            self.requests.append(head)
            key = keys[0]
            accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
            c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n" + frame(1, b"welcome", False))
            while True:
                opcode, payload = read_frame(c)
                if opcode == 8:
                    c.sendall(frame(8, payload, False))
                    return
                c.sendall(frame(opcode, payload, False))

    def close(self):
        self.sock.close()
        for t in self.threads:
            t.join(10)


def test_websocket_echo_through_the_listener(listeners):
    echo = EchoServer()
    p = listeners(config())
    p.set_targets([Target("127.0.0.1", echo.port, "healthy")])
    key = base64.b64encode(os.urandom(16))
    try:
        with socket.create_connection(("127.0.0.1", p.port), timeout=10) as s:
            s.sendall(b"GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
            head = read_until(s, b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101")
            assert b"\r\nUpgrade: websocket" in head and b"\r\nConnection: upgrade" in head
            assert b"Sec-WebSocket-Accept: " + base64.b64encode(hashlib.sha1(key + GUID).digest()) in head
            assert read_frame(s) == (1, b"welcome")  # sent by the target together with its 101
            for message in (b"hello", b"x" * 70000, b"\x00\xff binary"):
                s.sendall(frame(2, message, True))
                assert read_frame(s) == (2, message)
            s.sendall(frame(8, b"\x03\xe8bye", True))
            assert read_frame(s) == (8, b"\x03\xe8bye")
            assert s.recv(1) == b""  # the target closed: so does the listener
    finally:
        echo.close()
    upgrade = echo.requests[0]
    assert upgrade.startswith(b"GET /chat HTTP/1.1\r\n")
    assert b"\r\nUpgrade: websocket\r\n" in upgrade and b"\r\nConnection: upgrade\r\n" in upgrade
    assert b"X-Forwarded-For: 127.0.0.1" in upgrade
    assert p.stats()["websockets"] == 1


def test_a_refused_upgrade_leaves_an_ordinary_connection(recording, listeners):
    t = recording(lambda request, body: b"HTTP/1.1 426 Upgrade Required\r\nContent-Length: 2\r\n\r\nno")
    p = listeners(config())
    p.set_targets([t.target()])
    with socket.create_connection(("127.0.0.1", p.port), timeout=10) as s:
        s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        first = read_response(s)
        s.sendall(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")  # the same connection, still HTTP
        second = read_response(s)
    assert (first[0], first[2]) == (426, b"no") and (second[0], second[2]) == (426, b"no")
    assert [r[1] for r in t.requests] == [b"/ws", b"/next"]
