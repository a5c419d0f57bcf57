"""The listener against real HTTP servers on free ports: routing, headers, bodies, lifecycle.
(Carried over from the hand-framed proxy's suite; the behaviour is the same.)"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import socket
import threading
import time

import pytest

from helpers import wait_until
from ship.localcloud.alb.listener import Listener
from ship.localcloud.alb.targets import Target, TargetGroup

from .support import closed_port, pattern_bytes, pattern_sha256, raw_exchange

pytestmark = pytest.mark.timeout(60)


def get(proxy: Listener, path: str = "/", method: str = "GET", body=None, headers=None, timeout=10):
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


def test_only_healthy_targets_get_traffic(backends, listeners):
    a, b, c, d = backends("a"), backends("b"), backends("c"), backends("d")
    p = listeners()
    p.set_targets([a.target("unhealthy"), b.target("healthy"), c.target("initial"), d.target("draining")])
    assert ids([get(p) for _ in range(10)]) == {"b": 10}
    assert (a.hits, c.hits, d.hits) == (0, 0, 0)


def test_fail_open_when_no_target_is_healthy(backends, listeners):
    a, b, c, d = backends("a"), backends("b"), backends("c"), backends("d")
    p = listeners()
    p.set_targets([a.target("unhealthy"), b.target("initial"), c.target("draining"), d.target("unused")])
    assert ids([get(p) for _ in range(20)]) == {"a": 10, "b": 10}
    assert (c.hits, d.hits) == (0, 0)


def test_draining_target_gets_no_new_requests_but_finishes_in_flight(backends, listeners):
    a, b = backends("a"), backends("b")
    p = listeners()
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
def test_round_robin_does_not_skip_a_busy_target(algorithm, backends, listeners):
    a, b = backends("a"), backends("b")
    p = listeners(**({} if algorithm is None else {"algorithm": algorithm}))
    p.set_targets([a.target()])
    t, slow = _hold_one_slow_request(p, a)
    p.set_targets([a.target(), b.target()])
    assert ids([get(p) for _ in range(6)]) == {"a": 3, "b": 3}  # a's request in flight changes nothing
    t.join(10)
    assert ids(slow) == {"a": 1}


def test_least_outstanding_requests_avoids_a_busy_target(backends, listeners):
    a, b = backends("a"), backends("b")
    p = listeners(algorithm="least_outstanding_requests")
    p.set_targets([a.target()])
    t, slow = _hold_one_slow_request(p, a)
    p.set_targets([a.target(), b.target()])
    assert ids([get(p) for _ in range(6)]) == {"b": 6}  # a has one request in flight, b none
    t.join(10)
    assert ids(slow) == {"a": 1}
    # Idle again: ties are broken in round-robin order.
    assert ids([get(p) for _ in range(10)]) == {"a": 5, "b": 5}
    # The count drops when the listener finishes the exchange, which may be just after
    # the client has read the last byte.
    wait_until(lambda: p.stats()["in_flight"] == {}, timeout=5, what="no request in flight", step=0.01)


def test_unknown_algorithm_is_refused():
    with pytest.raises(ValueError):
        TargetGroup("g", algorithm="weighted_random_typo")


def test_503_when_there_is_no_routable_target(backends, listeners):
    a = backends("a")
    p = listeners()
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


def test_502_when_the_target_port_is_closed(listeners):
    p = listeners()
    p.set_targets([Target("127.0.0.1", closed_port(), "healthy")])
    status, _r, body = get(p)
    assert status == 502 and b"Bad Gateway" in body
    assert p.stats()["502"] == 1


@pytest.mark.parametrize("mode", ["reset", "garbage"])
def test_502_when_the_target_resets_or_answers_garbage(mode, bad_backends, backends, listeners):
    bad = bad_backends(mode)
    p = listeners()
    p.set_targets([bad.target()])
    for _ in range(3):
        status, _r, _body = get(p, "/", method="POST", body=b"x" * 100)
        assert status == 502
    # The proxy survives and serves as soon as a good target is there.
    good = backends("good")
    p.set_targets([good.target()])
    assert ids([get(p)]) == {"good": 1}


def test_refused_connection_is_retried_on_another_target(backends, listeners):
    a = backends("a")
    p = listeners()
    p.set_targets([Target("127.0.0.1", closed_port(), "healthy"), a.target()])
    assert ids([get(p, method="POST", body=b"abc") for _ in range(10)]) == {"a": 10}
    assert p.stats()["retries"] >= 5


def test_504_when_the_target_stays_silent_past_the_idle_timeout(backends, listeners):
    a = backends("a")
    p = listeners(idle_timeout=1)
    p.set_targets([a.target()])
    status, _r, _body = get(p, "/slow?s=4")
    assert status == 504
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


def test_listener_port_goes_into_x_forwarded_port(backends, listeners):
    a = backends("a")
    p = listeners(listener_port=8080)
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


def test_set_targets_while_traffic_flows(backends, listeners):
    a, b = backends("a"), backends("b")
    p = listeners()
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
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX: a\nY: b\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
    ids=["garbage", "no-host", "bad-header", "bad-length", "bare-lf", "bad-chunk"],
)
def test_malformed_requests_get_400_and_close(two, request_bytes):
    p, a, b = two
    data = raw_exchange(p.port, request_bytes)  # returns once the listener closed
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
    p = Listener()
    p.start()
    try:
        p.set_targets([a.target()])
        c = http.client.HTTPConnection("127.0.0.1", p.port, timeout=5)
        c.request("GET", "/")
        assert c.getresponse().read()
        port = p.port
        busy = Listener(port=port)
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
    again = Listener(port=port)
    again.start()
    try:
        again.set_targets([a.target()])
        assert ids([get(again)]) == {"a": 1}
    finally:
        again.stop()
