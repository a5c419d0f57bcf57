"""Test doubles for the listener tests: real HTTP backends and recording raw targets on free
loopback ports, and helpers to talk to a listener with raw bytes."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import h11

from ship.localcloud.alb.routing import DEFAULT_GROUP, ListenerConfig
from ship.localcloud.alb.targets import Target, TargetGroup

PATTERN = bytes(range(256)) * 256  # 64 KiB of known bytes for large bodies


def pattern_bytes(n: int):
    while n > 0:
        piece = PATTERN[: min(n, len(PATTERN))]
        n -= len(piece)
        yield piece


def pattern_sha256(n: int) -> str:
    h = hashlib.sha256()
    for piece in pattern_bytes(n):
        h.update(piece)
    return h.hexdigest()


# ---------------------------------------------------------------------------
# Backends: threaded HTTP/1.1 servers that answer with what they received
# ---------------------------------------------------------------------------


class _BackendServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 65536

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args):
        pass

    def _read_body(self):
        h = hashlib.sha256()
        n = 0
        chunked = self.headers.get("Transfer-Encoding", "").lower() == "chunked"
        if chunked:
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                data = self.rfile.read(size)
                h.update(data)
                n += len(data)
                self.rfile.readline()
        else:
            remaining = int(self.headers.get("Content-Length") or 0)
            while remaining:
                data = self.rfile.read(min(remaining, 65536))
                if not data:
                    raise ConnectionError("short body")
                h.update(data)
                remaining -= len(data)
                n += len(data)
        return n, h.hexdigest(), chunked

    def _handle(self):
        backend = self.server.backend
        with backend.lock:
            backend.hits += 1
        url = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        n, digest, chunked = self._read_body()
        if url.path == "/slow":
            time.sleep(float(q.get("s", "1")))
        if url.path == "/big":
            return self._send_big(int(q["n"]), q.get("mode", "cl"))
        payload = json.dumps({
            "id": backend.name, "method": self.command, "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body_len": n, "body_sha256": digest, "chunked": chunked,
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-Backend", backend.name)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _send_big(self, n: int, mode: str):
        self.send_response(200)
        self.send_header("X-Backend", self.server.backend.name)
        if mode == "cl":
            self.send_header("Content-Length", str(n))
        elif mode == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        for piece in pattern_bytes(n):
            self.wfile.write(b"%x\r\n%b\r\n" % (len(piece), piece) if mode == "chunked" else piece)
        if mode == "chunked":
            self.wfile.write(b"0\r\n\r\n")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = _handle


class Backend:
    def __init__(self, name: str):
        self.name = name
        self.lock = threading.Lock()
        self.hits = 0
        self.server = _BackendServer(("127.0.0.1", 0), _Handler)
        self.server.backend = self
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def target(self, state: str = "healthy") -> Target:
        return Target("127.0.0.1", self.port, state)

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


class BadBackend:
    """Accepts connections, reads, then resets them or answers garbage."""

    def __init__(self, mode: str):
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def target(self, state: str = "healthy") -> Target:
        return Target("127.0.0.1", self.port, state)

    def _serve(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            with c:
                try:
                    c.settimeout(2)
                    c.recv(65536)
                    if self.mode == "garbage":
                        c.sendall(b"this is not HTTP at all\r\n\r\n")
                    else:  # SO_LINGER 0: close() sends an RST
                        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass

    def close(self):
        self.stopping = True
        self.sock.close()
        self.thread.join(5)


# ---------------------------------------------------------------------------
# Recording target: every byte received, per connection; requests parsed by h11
# (an implementation independent of the listener's llhttp)
# ---------------------------------------------------------------------------


class RecordingTarget:
    """Records the raw bytes of each connection and answers each request.

    ``respond(request, body) -> bytes`` writes the raw answer (default: a 200 naming
    the request's path); the target keeps the connection for the next request unless
    the answer said ``Connection: close``.
    """

    def __init__(self, respond=None):
        self.respond = respond or self.default_response
        self.lock = threading.Lock()
        self.connections: list = []  # bytearray per accepted connection
        self.requests: list = []  # (method, target, headers, body) as h11 read them
        self.errors: list = []  # what h11 could not read
        self.closed = 0  # connections that ended
        self.on_connection = None  # called with each accepted socket
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.threads: list = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @staticmethod
    def default_response(request, body: bytes) -> bytes:
        payload = b"path=" + request.target
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(payload), payload)

    def target(self, state: str = "healthy") -> Target:
        return Target("127.0.0.1", self.port, state)

    def received(self) -> bytes:
        with self.lock:
            return b"".join(bytes(c) for c in self.connections)

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            record = bytearray()
            with self.lock:
                self.connections.append(record)
            if self.on_connection is not None:
                self.on_connection(c)
            t = threading.Thread(target=self._serve, args=(c, record), daemon=True)
            self.threads.append(t)
            t.start()

    def _serve(self, c: socket.socket, record: bytearray):
        try:
            self._serve_requests(c, record)
        finally:
            with self.lock:
                self.closed += 1

    def _serve_requests(self, c: socket.socket, record: bytearray):
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=256 * 1024)
        request, body = None, bytearray()
        with c:
            c.settimeout(5)
            while not self.stopping:
                try:
                    data = c.recv(65536)
                except OSError:
                    return
                with self.lock:
                    record += data
                conn.receive_data(data)
                while True:
                    try:
                        event = conn.next_event()
                    except h11.RemoteProtocolError as exc:
                        with self.lock:
                            self.errors.append(str(exc))
                        return
                    if event is h11.NEED_DATA or event is h11.PAUSED:
                        break
                    if isinstance(event, h11.Request):
                        request, body = event, bytearray()
                    elif isinstance(event, h11.Data):
                        body += event.data
                    elif isinstance(event, h11.EndOfMessage):
                        with self.lock:
                            self.requests.append((request.method, request.target, list(request.headers), bytes(body)))
                        answer = self.respond(request, bytes(body))
                        if answer:
                            c.sendall(answer)
                        if answer is None or b"connection: close" in answer.lower().split(b"\r\n\r\n")[0]:
                            return
                        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=256 * 1024)  # raw answers skip h11
                    elif isinstance(event, h11.ConnectionClosed):
                        return
                if not data:
                    return

    def close(self):
        self.stopping = True
        self.sock.close()
        self.thread.join(5)
        for t in self.threads:
            t.join(5)


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def config(listener_port: int = 80, idle_timeout: float = 60.0, algorithm: str = "round_robin",
           **kw) -> ListenerConfig:
    return ListenerConfig(listener_port=listener_port, idle_timeout=idle_timeout,
                          groups={DEFAULT_GROUP: TargetGroup(DEFAULT_GROUP, algorithm=algorithm)}, **kw)


def raw_exchange(port: int, data: bytes, timeout: float = 5, shut: bool = False) -> bytes:
    """Send raw bytes, return everything read until the listener closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            d = s.recv(65536)
            if not d:
                return b"".join(chunks)
            chunks.append(d)


class _Unclosable(io.BytesIO):
    def close(self):  # http.client closes the file after each response; the stream goes on
        pass


class _Bytes:
    def __init__(self, data: bytes):
        self.file = _Unclosable(data)

    def makefile(self, *_a, **_k):
        return self.file


def parse_responses(data: bytes, methods=()) -> list:
    """The responses in a raw byte stream, in order: [(status, {lower name: value}, body)]."""
    import http.client

    stream = _Bytes(data)
    out = []
    i = 0
    while stream.file.tell() < len(data):
        method = methods[i] if i < len(methods) else "GET"
        r = http.client.HTTPResponse(stream, method=method)
        r.begin()
        body = r.read()
        out.append((r.status, {k.lower(): v for k, v in r.getheaders()}, body))
        i += 1
        if r.will_close:
            break
    return out


def send_and_wait_close(port: int, data: bytes, timeout: float = 5) -> bytes:
    """Send raw bytes and half-close; everything the listener sends until it closes."""
    return raw_exchange(port, data, timeout=timeout, shut=True)


def read_response(sock: socket.socket, method: str = "GET") -> tuple:
    """One complete response from a socket: (status, {lower name: value}, body)."""
    import http.client

    r = http.client.HTTPResponse(sock, method=method)
    r.begin()
    body = r.read()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, body
