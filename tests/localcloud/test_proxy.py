"""Tests of the local ALB listener proxy against real HTTP servers on free ports."""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from ship.localcloud.alb.proxy import ListenerProxy, Target

pytestmark = pytest.mark.timeout(60)

PATTERN = bytes(range(256)) * 256  # 64 KiB of known bytes for large bodies


def pattern_bytes(n: int):
    """Yield ``n`` bytes of PATTERN, in pieces."""
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
# Backends: small threaded HTTP/1.1 servers that answer with their id
# ---------------------------------------------------------------------------


class _BackendServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 65536  # head and small body leave in one segment (flushed per request)

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args):  # keep test output quiet
        pass

    def _read_body(self):
        h = hashlib.sha256()
        n = 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                remaining = size
                while remaining:
                    data = self.rfile.read(min(remaining, 65536))
                    if not data:
                        raise ConnectionError("short chunk")
                    h.update(data)
                    remaining -= len(data)
                    n += len(data)
                self.rfile.readline()
            return n, h.hexdigest(), True
        remaining = int(self.headers.get("Content-Length") or 0)
        while remaining:
            data = self.rfile.read(min(remaining, 65536))
            if not data:
                raise ConnectionError("short body")
            h.update(data)
            remaining -= len(data)
            n += len(data)
        return n, h.hexdigest(), False

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
            self._send_big(int(q["n"]), q.get("mode", "cl"))
            return
        payload = json.dumps(
            {
                "id": backend.name,
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body_len": n,
                "body_sha256": digest,
                "chunked": chunked,
            }
        ).encode()
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
        else:  # delimited by closing the connection
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        for piece in pattern_bytes(n):
            if mode == "chunked":
                self.wfile.write(b"%x\r\n%b\r\n" % (len(piece), piece))
            else:
                self.wfile.write(piece)
        if mode == "chunked":
            self.wfile.write(b"0\r\n\r\n")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle


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
        return Target(host="127.0.0.1", port=self.port, state=state)

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


class BadBackend:
    """Accepts connections and then resets them, or answers garbage."""

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
        return Target(host="127.0.0.1", port=self.port, state=state)

    def _serve(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            try:
                c.settimeout(2)
                try:
                    c.recv(65536)
                except OSError:
                    pass
                if self.mode == "garbage":
                    c.sendall(b"this is not HTTP at all\r\n\r\n")
                    c.close()
                else:  # reset: SO_LINGER 0 makes close() send an RST
                    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    c.close()
            except OSError:
                c.close()

    def close(self):
        self.stopping = True
        self.sock.close()
        self.thread.join(5)


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---------------------------------------------------------------------------
# Fixtures: everything started is stopped, also when a test fails
# ---------------------------------------------------------------------------


@pytest.fixture
def backends():
    made = []

    def make(name: str) -> Backend:
        b = Backend(name)
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()


@pytest.fixture
def bad_backends():
    made = []

    def make(mode: str) -> BadBackend:
        b = BadBackend(mode)
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()


@pytest.fixture
def proxies():
    made = []

    def make(**kw) -> ListenerProxy:
        p = ListenerProxy(host="127.0.0.1", port=0, listener_port=kw.pop("listener_port", 80), protocol="HTTP", **kw)
        made.append(p)
        p.start()
        return p

    yield make
    for p in made:
        p.stop()


@pytest.fixture
def two(backends, proxies):
    a, b = backends("a"), backends("b")
    p = proxies()
    p.set_targets([a.target(), b.target()])
    return p, a, b


def get(proxy: ListenerProxy, path: str = "/", method: str = "GET", body=None, headers=None, timeout=10):
    """One request on a fresh connection; returns (status, headers, body bytes)."""
    c = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r, r.read()
    finally:
        c.close()


def ids(results) -> dict:
    out: dict = {}
    for status, _r, body in results:
        assert status == 200, body
        who = json.loads(body)["id"]
        out[who] = out.get(who, 0) + 1
    return out


def raw_exchange(port: int, data: bytes, timeout: float = 5) -> bytes:
    """Send raw bytes, return everything read until the proxy closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        while True:
            d = s.recv(65536)
            if not d:
                return b"".join(chunks)
            chunks.append(d)


# ---------------------------------------------------------------------------
# Routing
# ---------------------------------------------------------------------------


def test_round_robin_over_two_healthy_targets(two):
    p, a, b = two
    assert ids([get(p) for _ in range(20)]) == {"a": 10, "b": 10}
    assert (a.hits, b.hits) == (10, 10)
    s = p.stats()
    assert s["requests"] == 20 and s["2xx"] == 20
    assert s["targets"] == {f"127.0.0.1:{a.port}": 10, f"127.0.0.1:{b.port}": 10}


def test_only_healthy_targets_get_traffic(backends, proxies):
    a, b, c, d = backends("a"), backends("b"), backends("c"), backends("d")
    p = proxies()
    p.set_targets([a.target("unhealthy"), b.target("healthy"), c.target("initial"), d.target("draining")])
    assert ids([get(p) for _ in range(10)]) == {"b": 10}
    assert (a.hits, c.hits, d.hits) == (0, 0, 0)


def test_fail_open_when_no_target_is_healthy(backends, proxies):
    a, b, c, d = backends("a"), backends("b"), backends("c"), backends("d")
    p = proxies()
    p.set_targets([a.target("unhealthy"), b.target("initial"), c.target("draining"), d.target("unused")])
    assert ids([get(p) for _ in range(20)]) == {"a": 10, "b": 10}
    assert (c.hits, d.hits) == (0, 0)


def test_draining_target_gets_no_new_requests_but_finishes_in_flight(backends, proxies):
    a, b = backends("a"), backends("b")
    p = proxies()
    p.set_targets([b.target()])
    slow: list = []
    t = threading.Thread(target=lambda: slow.append(get(p, "/slow?s=1")))
    t.start()
    deadline = time.monotonic() + 5
    while b.hits == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert b.hits == 1
    p.set_targets([a.target(), b.target("draining")])
    assert ids([get(p) for _ in range(10)]) == {"a": 10}
    t.join(10)
    assert ids(slow) == {"b": 1}  # the in-flight request finished normally
    assert b.hits == 1


def _hold_one_slow_request(p, backend):
    """Start a 1 s request that the proxy routes to ``backend``; return its thread and result box."""
    box: list = []
    t = threading.Thread(target=lambda: box.append(get(p, "/slow?s=1")))
    t.start()
    deadline = time.monotonic() + 5
    while backend.hits == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert backend.hits == 1
    return t, box


@pytest.mark.parametrize("algorithm", [None, "round_robin"])
def test_round_robin_does_not_skip_a_busy_target(algorithm, backends, proxies):
    a, b = backends("a"), backends("b")
    p = proxies(**({} if algorithm is None else {"algorithm": algorithm}))
    p.set_targets([a.target()])
    t, slow = _hold_one_slow_request(p, a)
    p.set_targets([a.target(), b.target()])
    assert ids([get(p) for _ in range(6)]) == {"a": 3, "b": 3}  # a's request in flight changes nothing
    t.join(10)
    assert ids(slow) == {"a": 1}


def test_least_outstanding_requests_avoids_a_busy_target(backends, proxies):
    a, b = backends("a"), backends("b")
    p = proxies(algorithm="least_outstanding_requests")
    p.set_targets([a.target()])
    t, slow = _hold_one_slow_request(p, a)
    p.set_targets([a.target(), b.target()])
    assert ids([get(p) for _ in range(6)]) == {"b": 6}  # a has one request in flight, b none
    t.join(10)
    assert ids(slow) == {"a": 1}
    # Idle again: ties are broken in round-robin order.
    assert ids([get(p) for _ in range(10)]) == {"a": 5, "b": 5}
    # The count drops when the proxy finishes the exchange, which may be just after
    # the client has read the last byte: give the proxy's loop a moment.
    deadline = time.monotonic() + 2
    while p._outstanding and time.monotonic() < deadline:
        time.sleep(0.01)
    assert p._outstanding == {}


def test_unknown_algorithm_is_refused():
    with pytest.raises(ValueError):
        ListenerProxy(algorithm="weighted_random_typo")


def test_503_when_there_is_no_routable_target(backends, proxies):
    a = backends("a")
    p = proxies()
    c = http.client.HTTPConnection("127.0.0.1", p.port, timeout=5)
    try:
        for targets in ([], [a.target("draining"), a.target("unused")]):
            p.set_targets(targets)
            c.request("GET", "/")
            r = c.getresponse()
            body = r.read()
            assert r.status == 503
            assert b"503" in body and len(body) < 1000
            assert r.getheader("Content-Length") == str(len(body))
    finally:
        c.close()
    assert a.hits == 0
    assert p.stats()["503"] == 2


def test_502_when_the_target_port_is_closed(proxies):
    p = proxies()
    p.set_targets([Target("127.0.0.1", closed_port(), "healthy")])
    status, _r, body = get(p)
    assert status == 502 and b"Bad Gateway" in body
    assert p.stats()["502"] == 1


@pytest.mark.parametrize("mode", ["reset", "garbage"])
def test_502_when_the_target_resets_or_answers_garbage(mode, bad_backends, backends, proxies):
    bad = bad_backends(mode)
    p = proxies()
    p.set_targets([bad.target()])
    for _ in range(3):
        status, _r, _body = get(p, "/", method="POST", body=b"x" * 100)
        assert status == 502
    # The proxy survives and serves as soon as a good target is there.
    good = backends("good")
    p.set_targets([good.target()])
    assert ids([get(p)]) == {"good": 1}


def test_refused_connection_is_retried_on_another_target(backends, proxies):
    a = backends("a")
    p = proxies()
    p.set_targets([Target("127.0.0.1", closed_port(), "healthy"), a.target()])
    assert ids([get(p, method="POST", body=b"abc") for _ in range(10)]) == {"a": 10}
    assert p.stats()["retries"] >= 5


def test_504_when_the_target_stays_silent_past_the_idle_timeout(backends, proxies):
    a = backends("a")
    p = proxies(idle_timeout=0.5)
    p.set_targets([a.target()])
    t0 = time.monotonic()
    status, _r, _body = get(p, "/slow?s=3")
    elapsed = time.monotonic() - t0
    assert status == 504
    assert 0.4 < elapsed < 2.5
    assert p.stats()["504"] == 1


# ---------------------------------------------------------------------------
# Headers
# ---------------------------------------------------------------------------


def test_forwarded_headers_and_trace_id(two):
    p, _a, _b = two
    status, _r, body = get(p, "/h")
    h = json.loads(body)["headers"]
    assert status == 200
    assert h["x-forwarded-for"] == "127.0.0.1"
    assert h["x-forwarded-proto"] == "http"
    assert h["x-forwarded-port"] == "80" != str(p.port)
    m = re.fullmatch(r"Root=1-([0-9a-f]{8})-[0-9a-f]{24}", h["x-amzn-trace-id"])
    assert m, h["x-amzn-trace-id"]
    assert abs(int(m.group(1), 16) - time.time()) < 300

    # An existing X-Forwarded-For is extended; spoofed proto/port are replaced.
    _s, _r, body = get(
        p, "/h", headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https", "X-Forwarded-Port": "1"}
    )
    h = json.loads(body)["headers"]
    assert h["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"
    assert (h["x-forwarded-proto"], h["x-forwarded-port"]) == ("http", "80")

    # A client's trace id is kept (the balancer adds its own Self= segment).
    root = "Root=1-5759e988-bd862e3fe1be46a994272793"
    _s, _r, body = get(p, "/h", headers={"X-Amzn-Trace-Id": root})
    trace = json.loads(body)["headers"]["x-amzn-trace-id"]
    assert root in trace
    assert re.fullmatch(r"Self=1-[0-9a-f]{8}-[0-9a-f]{24};" + root, trace), trace


def test_listener_port_goes_into_x_forwarded_port(backends, proxies):
    a = backends("a")
    p = proxies(listener_port=8080)
    p.set_targets([a.target()])
    _s, _r, body = get(p)
    assert json.loads(body)["headers"]["x-forwarded-port"] == "8080"


def test_hop_by_hop_headers_are_not_forwarded(two):
    p, _a, _b = two
    _s, r, body = get(
        p,
        "/h",
        headers={
            "Connection": "keep-alive, X-Private",
            "X-Private": "secret",
            "Keep-Alive": "timeout=5",
            "Proxy-Authorization": "Basic Zm9vOmJhcg==",
            "TE": "trailers",
            "Upgrade": "websocket",
            "X-Custom": "kept",
        },
    )
    h = json.loads(body)["headers"]
    for name in ("x-private", "keep-alive", "proxy-authorization", "te", "upgrade"):
        assert name not in h, name
    assert h.get("connection") in (None, "keep-alive")
    assert h["x-custom"] == "kept"
    assert r.getheader("X-Backend") in ("a", "b")  # end-to-end response headers pass


# ---------------------------------------------------------------------------
# Connections and bodies
# ---------------------------------------------------------------------------


def test_keep_alive_many_requests_on_one_client_connection(two):
    p, _a, _b = two
    c = http.client.HTTPConnection("127.0.0.1", p.port, timeout=5)
    try:
        c.connect()
        sock = c.sock
        seen = {}
        for i in range(200):
            c.request("GET", f"/k{i}")
            r = c.getresponse()
            who = json.loads(r.read())["id"]
            seen[who] = seen.get(who, 0) + 1
            assert r.status == 200
            assert c.sock is sock, f"connection was closed after request {i}"
        assert seen == {"a": 100, "b": 100}
    finally:
        c.close()
    s = p.stats()
    assert s["connections"] == 1
    assert s["upstream_reused"] >= 190  # target connections are pooled, too
    assert s["upstream_connects"] <= 10


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_5mb_request_body_is_streamed(two, chunked):
    p, _a, _b = two
    n = 5 * 1024 * 1024
    body = pattern_bytes(n) if chunked else b"".join(pattern_bytes(n))
    status, _r, resp = get(p, "/upload", method="POST", body=body, timeout=30)
    info = json.loads(resp)
    assert status == 200
    assert info["body_len"] == n
    assert info["body_sha256"] == pattern_sha256(n)
    assert info["chunked"] is chunked


@pytest.mark.parametrize("mode", ["cl", "chunked", "close"])
def test_large_streamed_response(two, mode):
    p, _a, _b = two
    n = 8 * 1024 * 1024 + 123
    c = http.client.HTTPConnection("127.0.0.1", p.port, timeout=30)
    try:
        c.request("GET", f"/big?n={n}&mode={mode}")
        r = c.getresponse()
        h = hashlib.sha256()
        total = 0
        while True:
            d = r.read(1 << 20)
            if not d:
                break
            total += len(d)
            h.update(d)
        assert r.status == 200
        assert total == n
        assert h.hexdigest() == pattern_sha256(n)
        # Even a close-delimited target response keeps the client connection alive
        # (the proxy re-frames it as chunked).
        sock = c.sock
        c.request("GET", "/after")
        r2 = c.getresponse()
        assert r2.status == 200 and json.loads(r2.read())["path"] == "/after"
        assert c.sock is sock
    finally:
        c.close()


def test_head_has_no_body(two):
    p, _a, _b = two
    c = http.client.HTTPConnection("127.0.0.1", p.port, timeout=5)
    try:
        c.request("GET", "/same")
        r = c.getresponse()
        get_len = len(r.read())
        c.request("HEAD", "/same")
        r = c.getresponse()
        assert r.status == 200
        assert r.read() == b""
        assert int(r.getheader("Content-Length")) == get_len + 1  # "GET" -> "HEAD" in the echo
        c.request("GET", "/next")  # the connection is still in sync
        r = c.getresponse()
        assert r.status == 200 and json.loads(r.read())["path"] == "/next"
    finally:
        c.close()


def test_concurrent_clients(two):
    p, a, b = two
    errors: list = []
    statuses: list = []
    lock = threading.Lock()

    def client():
        c = http.client.HTTPConnection("127.0.0.1", p.port, timeout=20)
        try:
            for i in range(20):
                c.request("GET", f"/c{i}")
                r = c.getresponse()
                r.read()
                with lock:
                    statuses.append(r.status)
        except Exception as exc:  # noqa: BLE001 - reported below
            with lock:
                errors.append(repr(exc))
        finally:
            c.close()

    threads = [threading.Thread(target=client) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(40)
    assert not errors
    assert statuses == [200] * 1000
    assert (a.hits, b.hits) == (500, 500)


def test_set_targets_while_traffic_flows(backends, proxies):
    a, b = backends("a"), backends("b")
    p = proxies()
    p.set_targets([a.target()])
    stop = threading.Event()
    errors: list = []
    statuses: list = []
    lock = threading.Lock()

    def client():
        c = http.client.HTTPConnection("127.0.0.1", p.port, timeout=10)
        try:
            while not stop.is_set():
                c.request("POST" if len(statuses) % 2 else "GET", "/swap", body=b"payload")
                r = c.getresponse()
                r.read()
                with lock:
                    statuses.append(r.status)
        except Exception as exc:  # noqa: BLE001 - reported below
            with lock:
                errors.append(repr(exc))
        finally:
            c.close()

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    sets = [
        [a.target()],
        [a.target(), b.target()],
        [a.target("draining"), b.target()],
        [b.target()],
        [b.target("draining"), a.target()],
        [a.target()],
    ]
    try:
        deadline = time.monotonic() + 2.0
        i = 0
        while time.monotonic() < deadline:
            p.set_targets(sets[i % len(sets)])
            p.set_targets(sets[i % len(sets)])  # same set again: a no-op
            i += 1
            time.sleep(0.01)
    finally:
        stop.set()
        for t in threads:
            t.join(20)
    assert not errors
    assert len(statuses) > 100
    assert set(statuses) == {200}
    assert a.hits > 0 and b.hits > 0


def test_expect_100_continue(two):
    p, _a, _b = two
    with socket.create_connection(("127.0.0.1", p.port), timeout=5) as s:
        s.sendall(
            b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        )
        interim = b""
        while b"\r\n\r\n" not in interim:
            interim += s.recv(1)
        assert interim.startswith(b"HTTP/1.1 100")
        s.sendall(b"hello")
        r = http.client.HTTPResponse(s)
        r.begin()
        info = json.loads(r.read())
        assert r.status == 200
        assert info["body_len"] == 5
        assert "expect" not in info["headers"]


def test_http_1_0_client_gets_an_answer_and_a_close(two):
    p, _a, _b = two
    data = raw_exchange(p.port, b"GET /old HTTP/1.0\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert json.loads(body)["path"] == "/old"


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"NONSENSE\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",  # no Host
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX: a\nY: b\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
    ids=["garbage", "no-host", "bad-header", "cl-and-te", "bad-length", "bare-lf", "bad-chunk"],
)
def test_malformed_requests_get_400_and_close(two, request_bytes):
    p, a, b = two
    data = raw_exchange(p.port, request_bytes)  # returns once the proxy closed
    assert data.startswith(b"HTTP/1.1 400"), data[:100]
    if b"zz" not in request_bytes:
        assert a.hits + b.hits == 0
    assert ids([get(p)])  # still serving


def test_client_disconnect_mid_request_is_cleaned_up(two):
    p, _a, _b = two
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", p.port), timeout=5) as s:
            s.sendall(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 70000)
    deadline = time.monotonic() + 5
    while p.stats()["open_client_connections"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert p.stats()["open_client_connections"] == 0
    assert ids([get(p) for _ in range(4)]) == {"a": 2, "b": 2}


# ---------------------------------------------------------------------------
# Lifecycle
# ---------------------------------------------------------------------------


def test_stop_frees_the_port_and_is_idempotent(backends):
    a = backends("a")
    p = ListenerProxy(host="127.0.0.1", port=0, listener_port=80, protocol="HTTP")
    p.start()
    try:
        p.set_targets([a.target()])
        c = http.client.HTTPConnection("127.0.0.1", p.port, timeout=5)
        c.request("GET", "/")
        assert c.getresponse().read()
        port = p.port
        busy = ListenerProxy(host="127.0.0.1", port=port)
        with pytest.raises(OSError):
            busy.start()
    finally:
        p.stop()
    p.stop()
    # The open keep-alive client connection was closed by stop().
    c.sock.settimeout(2)
    assert c.sock.recv(1) == b""
    c.close()
    with socket.socket() as s:
        # SO_REUSEADDR, as every server sets it: connections in TIME_WAIT do not
        # block a new listener, a socket still listening would.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen(1)
    # And the port can be served again.
    again = ListenerProxy(host="127.0.0.1", port=port)
    again.start()
    try:
        again.set_targets([a.target()])
        assert ids([get(again)]) == {"a": 1}
    finally:
        again.stop()
