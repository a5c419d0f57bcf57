"""Raw-socket conformance: bytes in, the bytes a recording target received, bytes back.

Every request-smuggling shape here asserts what reached the target (parsed there by h11,
independently of the listener's llhttp), not only the status code. ALB's documented
answers: "Troubleshoot your Application Load Balancers" (HTTP 400, 405, 408, 463, 501,
502, 503, 504, 505) and "Desync mitigation mode".
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from helpers import wait_until
from ship.localcloud.alb.listener import Listener
from ship.localcloud.alb.targets import Target

from .support import config, parse_responses, raw_exchange, read_response, send_and_wait_close

pytestmark = pytest.mark.timeout(60)

HOST = b"Host: x\r\n"


@pytest.fixture
def lb(recording, listeners):
    """A listener in front of one recording target; ``lb(**config)`` for other settings."""
    made = {}

    def make(respond=None, **kw):
        t = recording(respond)
        p = listeners(config(**kw))
        p.set_targets([t.target()])
        made["t"] = t
        return p, t

    return make


def only_request(t):
    assert len(t.requests) == 1, t.requests
    method, target, headers, body = t.requests[0]
    return method, target, dict(headers), body


# ---------------------------------------------------------------------------
# Request smuggling: CL.TE, TE.CL, TE.TE, lengths, hop-by-hop abuse
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("stream,body", [
    # CL.TE: a front end that believes Content-Length would forward "G" as the start of the next request.
    (b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG", b""),
    # TE.CL: a back end that believes Content-Length would read "8\r\nSMUGGLED..." as a new request.
    (b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"8\r\nSMUGGLED\r\n0\r\n\r\n", b"SMUGGLED"),
], ids=["CL.TE", "TE.CL"])
def test_content_length_with_chunked_is_forwarded_chunked_then_both_connections_close(lb, stream, body):
    p, t = lb()
    data = send_and_wait_close(p.port, stream)
    [(status, headers, _)] = parse_responses(data)
    assert status == 200 and headers["connection"] == "close"  # Ambiguous: defensive mode closes
    method, _target, h, got = only_request(t)
    assert got == body
    assert h[b"transfer-encoding"] == b"chunked" and b"content-length" not in h
    wait_until(lambda: t.closed == 1, timeout=5, what="the target connection to be closed", step=0.01)
    assert b"GPOST" not in t.received() and t.received().count(b"POST ") == 1


@pytest.mark.parametrize("mode", ["strictest"])
def test_strictest_mode_refuses_ambiguous_requests(lb, mode):
    p, t = lb(desync_mode=mode)
    data = send_and_wait_close(p.port, b"POST / HTTP/1.1\r\n" + HOST +
                               b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG")
    assert data.startswith(b"HTTP/1.1 400")
    assert t.received() == b""


def test_monitor_mode_forwards_ambiguous_requests_and_keeps_connections(lb):
    p, t = lb(desync_mode="monitor")
    stream = (b"GET /a HTTP/1.1\r\n" + HOST + b"Content-Length: 2\r\n\r\nhi"  # GET with a body: Ambiguous
              + b"GET /b HTTP/1.1\r\n" + HOST + b"\r\n")
    answers = parse_responses(send_and_wait_close(p.port, stream))
    assert [a[2] for a in answers] == [b"path=/a", b"path=/b"]
    assert [(r[1], r[3]) for r in t.requests] == [(b"/a", b"hi"), (b"/b", b"")]
    assert len(t.connections) == 1  # the target connection was kept


@pytest.mark.parametrize("te,status", [
    (b"Transfer-Encoding: xchunked\r\n", 501),
    (b"Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n", 501),
    (b"Transfer-Encoding: gzip, chunked\r\n", 501),
    (b"Transfer-Encoding : chunked\r\n", 400),
    (b"Transfer-Encoding:\r\n chunked\r\n", 400),               # obs-fold
    (b"X: y\nTransfer-Encoding: chunked\r\n", 400),              # bare LF before it
    (b"\x0bTransfer-Encoding: chunked\r\n", 400),
    (b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", 400),
    (b"Transfer-Encoding: chunked, identity\r\n", 400),
    (b"Transfer-Encoding: \x00chunked\r\n", 400),
], ids=["xchunked", "chunked+x", "gzip,chunked", "space-before-colon", "obs-fold", "bare-lf", "vtab-name",
        "chunked-twice", "chunked-not-last", "nul"])
def test_transfer_encoding_obfuscations_are_refused_before_anything_is_forwarded(lb, te, status):
    p, t = lb()
    data = send_and_wait_close(p.port, b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 5\r\n" + te +
                               b"\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n" + HOST + b"\r\n")
    assert data.startswith(b"HTTP/1.1 %d" % status), data[:80]
    assert data.count(b"HTTP/1.1") == 1
    assert t.received() == b""


def test_tab_before_chunked_is_plain_whitespace(lb):
    p, t = lb()
    answers = parse_responses(send_and_wait_close(
        p.port, b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding:\tchunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"))
    assert answers[0][0] == 200
    assert only_request(t)[3] == b"abc"


def test_lookalike_transfer_encoding_is_not_framing_and_closes_both_sides(lb):
    """Transfer_Encoding is no framing header for the listener; a target that normalises '_'
    to '-' might think otherwise, so the exchange is Ambiguous: both connections close."""
    p, t = lb()
    data = send_and_wait_close(p.port, b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 5\r\n"
                               b"Transfer_Encoding: chunked\r\n\r\n0\r\n\r\n")
    [(status, headers, _)] = parse_responses(data)
    assert status == 200 and headers["connection"] == "close"
    assert only_request(t)[3] == b"0\r\n\r\n"  # the declared Content-Length, nothing more
    wait_until(lambda: t.closed == 1, timeout=5, what="the target connection to be closed", step=0.01)


def test_invalid_header_names_are_dropped_when_the_attribute_says_so(lb):
    p, t = lb(drop_invalid_header_fields=True)
    send_and_wait_close(p.port, b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 1\r\n"
                        b"Transfer_Encoding: chunked\r\nX-Good: 1\r\n\r\nz")
    _m, _t, h, body = only_request(t)
    assert b"transfer_encoding" not in h and h[b"x-good"] == b"1" and body == b"z"


@pytest.mark.parametrize("length", [
    b"Content-Length: 3\r\nContent-Length: 3", b"Content-Length: 3\r\nContent-Length: 4", b"Content-Length: 3, 3",
    b"Content-Length: +3", b"Content-Length: -3", b"Content-Length: 0x3", b"Content-Length: 3\x0b",
    b"Content-Length: 3 3", b"Content-Length: 3.0", b"Content-Length: 9223372036854775808",
    b"Content-Length: 18446744073709551616", b"Content-Length: " + b"9" * 40,
], ids=["duplicate", "different", "list", "plus", "minus", "hex", "vertical-tab", "two-numbers", "decimal",
        "2^63", "2^64", "40-digits"])
def test_malformed_and_duplicate_lengths_are_refused(lb, length):
    p, t = lb()
    data = send_and_wait_close(p.port, b"POST / HTTP/1.1\r\n" + HOST + length + b"\r\n\r\nabcGET / HTTP/1.1\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 400") and data.count(b"HTTP/1.1") == 1
    assert t.received() == b""


def test_largest_content_length_is_forwarded_as_digits(lb):
    p, t = lb()
    with socket.create_connection(("127.0.0.1", p.port), timeout=5) as s:
        s.sendall(b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 9223372036854775807\r\n\r\nabc")
        wait_until(lambda: b"\r\n\r\nabc" in t.received(), timeout=5, what="the body to reach the target", step=0.01)
    assert b"\r\nContent-Length: 9223372036854775807\r\n" in t.received()


@pytest.mark.parametrize("named", [b"Content-Length", b"Transfer-Encoding", b"Host", b"content-length, host"])
def test_framing_headers_and_host_survive_being_named_in_connection(lb, named):
    """The hand-framed proxy dropped them: the body then became a second request at the target."""
    p, t = lb()
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    if b"transfer" in named.lower():
        framing, body = b"Transfer-Encoding: chunked\r\n", b"%x\r\n%s\r\n0\r\n\r\n" % (len(smuggled), smuggled)
    else:
        framing, body = b"Content-Length: %d\r\n" % len(smuggled), smuggled
    stream = b"POST /a HTTP/1.1\r\nHost: x\r\nConnection: " + named + b"\r\n" + framing + b"\r\n" + body
    answers = parse_responses(send_and_wait_close(p.port, stream))
    assert [a[2] for a in answers] == [b"path=/a"]
    method, target, h, got = only_request(t)
    assert (method, target, h[b"host"]) == (b"POST", b"/a", b"x")
    assert got == smuggled
    assert b"/smuggled" not in [r[1] for r in t.requests]


def test_other_headers_named_in_connection_are_hop_by_hop(lb):
    p, t = lb()
    send_and_wait_close(p.port, b"GET / HTTP/1.1\r\n" + HOST + b"Connection: X-Private\r\nX-Private: secret\r\n"
                        b"X-Public: 1\r\n\r\n")
    h = only_request(t)[2]
    assert b"x-private" not in h and h[b"x-public"] == b"1"


# ---------------------------------------------------------------------------
# Pipelining, and what targets send outside a response's framing
# ---------------------------------------------------------------------------


def test_pipelined_requests_are_answered_in_order(lb):
    p, t = lb()
    stream = b"".join(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(50))
    stream += b"POST /post HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
    stream += b"GET /last HTTP/1.1\r\nHost: x\r\n\r\n"
    answers = parse_responses(send_and_wait_close(p.port, stream))
    assert [a[2] for a in answers] == [b"path=/%d" % i for i in range(50)] + [b"path=/post", b"path=/last"]
    assert [r[1] for r in t.requests] == [b"/%d" % i for i in range(50)] + [b"/post", b"/last"]
    assert t.requests[50][3] == b"hi"


def _two_requests_on_separate_connections(p, first: bytes, method: str = "GET"):
    a = parse_responses(send_and_wait_close(p.port, first), [method])
    b = parse_responses(send_and_wait_close(p.port, b"GET /second HTTP/1.1\r\n" + HOST + b"\r\n"))
    return a, b


@pytest.mark.parametrize("extra,method,first", [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\npoisoned", "GET", b"GET /first HTTP/1.1\r\n"),
    (b"poisoned", "GET", b"GET /204 HTTP/1.1\r\n"),
    (b"poisoned", "HEAD", b"HEAD /first HTTP/1.1\r\n"),
], ids=["second-response", "after-204", "body-to-head"])
def test_bytes_outside_a_response_never_reach_another_client(lb, extra, method, first):
    def respond(request, body):
        if request.target == b"/second":
            return b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\npath=second"
        if request.target == b"/204":
            return b"HTTP/1.1 204 No Content\r\n\r\n" + extra
        return b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n" + (b"" if method == "HEAD" else b"first") + extra

    p, t = lb(respond)
    a, b = _two_requests_on_separate_connections(p, first + HOST + b"\r\n", method)
    assert a[0][2] in (b"first", b"")
    assert b == [(200, b[0][1], b"path=second")]
    wait_until(lambda: t.closed >= 1, timeout=5, what="the poisoned target connection to be dropped", step=0.01)
    assert len(t.connections) == 2


@pytest.mark.parametrize("status_line", [b"HTTP/1.1 204 No Content", b"HTTP/1.1 200 OK"], ids=["204", "HEAD"])
def test_a_body_sent_late_after_a_bodiless_response_never_reaches_another_client(lb, status_line):
    """The target answers without a body but declares one, then sends it a moment later: by then
    its connection must not be serving another client."""
    def respond(request, body):
        if request.target == b"/second":
            return b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\npath=second"
        threading.Timer(0.2, send_late, args=(sock_of[0],)).start()
        return status_line + b"\r\nContent-Length: 27\r\n\r\n"

    def send_late(sock):
        try:
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\npoisoned")
        except OSError:
            pass  # the listener has dropped that connection already

    sock_of = []
    p, t = lb(respond)
    t.on_connection = sock_of.append
    method = "HEAD" if b"200" in status_line else "GET"
    a, b = _two_requests_on_separate_connections(p, method.encode() + b" /first HTTP/1.1\r\n" + HOST + b"\r\n", method)
    assert a[0][0] in (200, 204)
    assert b == [(200, b[0][1], b"path=second")]
    assert len(t.connections) == 2


@pytest.mark.parametrize("response", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc",
    b"HTTP/1.1 200 OK\r\nX: a\rSet-Cookie: evil=1\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
    b"HTTP/1.1 200 OK\r\nX: a\x00b\r\nContent-Length: 0\r\n\r\n",
    b"garbage\r\n\r\n",
], ids=["cl-and-te", "two-lengths", "bare-cr-injection", "bare-lf", "nul", "garbage"])
def test_malformed_responses_are_502_and_never_relayed(lb, response):
    p, t = lb(lambda request, body: response)
    data = send_and_wait_close(p.port, b"GET / HTTP/1.1\r\n" + HOST + b"\r\n")
    assert data.startswith(b"HTTP/1.1 502") and b"evil" not in data


# ---------------------------------------------------------------------------
# Bytes the listener must never forward
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [
    b"GET /a\x00b HTTP/1.1\r\n" + HOST + b"\r\n",
    b"GET /a\x01b HTTP/1.1\r\n" + HOST + b"\r\n",
    b"GET /a\x7fb HTTP/1.1\r\n" + HOST + b"\r\n",
    b"GET /a\tb HTTP/1.1\r\n" + HOST + b"\r\n",
    b"GET /a\rb HTTP/1.1\r\n" + HOST + b"\r\n",
    b"G\x00T / HTTP/1.1\r\n" + HOST + b"\r\n",
    b"GET / HTTP/1.1\r\n" + HOST + b"X: a\x00b\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + HOST + b"X: a\x01b\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + HOST + b"X: a\x1fb\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + HOST + b"X: a\x7fb\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + HOST + b"X: a\rb\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\x00y\r\n\r\n",
])
def test_control_bytes_in_the_request_line_or_headers_get_400(lb, stream):
    p, t = lb()
    assert send_and_wait_close(p.port, stream).startswith(b"HTTP/1.1 400")
    assert t.received() == b""


def test_bare_lf_and_http_0_9_get_400_at_once(lb):
    p, t = lb()  # idle timeout 60 s: an answer within the socket timeout (5 s) is not the idle timer's
    assert raw_exchange(p.port, b"GET / HTTP/1.1\nHost: x\n\n").startswith(b"HTTP/1.1 400")
    assert raw_exchange(p.port, b"GET /\r\n").startswith(b"HTTP/1.1 400")
    assert raw_exchange(p.port, b"GET /index.html\n").startswith(b"HTTP/1.1 400")
    assert t.received() == b""


def test_http_1_0_without_host_is_forwarded_with_one(lb):
    p, t = lb(default_host="my-lb-123.us-east-1.elb.amazonaws.com")
    data = raw_exchange(p.port, b"GET /old HTTP/1.0\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200")
    assert t.received().startswith(b"GET /old HTTP/1.1\r\n")
    assert only_request(t)[2][b"host"] == b"my-lb-123.us-east-1.elb.amazonaws.com"


# ---------------------------------------------------------------------------
# ALB's limits and its own answers
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("stream,status", [
    (b"GET /" + b"a" * (16 * 1024) + b" HTTP/1.1\r\n" + HOST + b"\r\n", 400),
    (b"GET / HTTP/1.1\r\n" + HOST + b"X: " + b"a" * (16 * 1024) + b"\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n" + HOST + b"".join(b"X-%d: %s\r\n" % (i, b"a" * 8000) for i in range(9)) + b"\r\n", 400),
    (b"TRACE / HTTP/1.1\r\n" + HOST + b"\r\n", 405),
    (b"GET / HTTP/1.1\r\n" + HOST + b"X-Forwarded-For: " + b", ".join([b"10.0.0.1"] * 31) + b"\r\n\r\n", 463),
    (b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: gzip\r\n\r\n", 501),
    (b"GET / HTTP/2.0\r\n" + HOST + b"\r\n", 505),
    (b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 1\r\nExpect: the-unexpected\r\n\r\nz", 417),
    (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
], ids=["request-line-16K", "header-16K", "headers-64K", "trace", "xff-31", "te-gzip", "http2-syntax", "expect",
        "no-host", "two-hosts"])
def test_albs_own_answers(lb, stream, status):
    p, t = lb()
    data = send_and_wait_close(p.port, stream)
    assert data.startswith(b"HTTP/1.1 %d" % status), data[:60]
    assert b"Server: awselb/2.0" in data
    assert t.received() == b""


def test_just_under_the_limits_is_forwarded(lb):
    p, t = lb()
    long_line = b"GET /" + b"a" * (16 * 1024 - 100) + b" HTTP/1.1\r\n"
    headers = b"".join(b"X-%d: %s\r\n" % (i, b"a" * 7000) for i in range(8))
    xff = b"X-Forwarded-For: " + b", ".join([b"10.0.0.1"] * 30) + b"\r\n"
    answers = parse_responses(send_and_wait_close(p.port, long_line + HOST + headers + xff + b"\r\n"))
    assert answers[0][0] == 200
    assert only_request(t)[2][b"x-forwarded-for"].count(b",") == 30  # 30 plus the client's address


def test_identity_transfer_coding_is_accepted(lb):
    p, t = lb()
    stream = (b"POST /i HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: identity\r\nContent-Length: 3\r\n\r\nabc"
              b"GET /next HTTP/1.1\r\n" + HOST + b"\r\n")
    answers = parse_responses(send_and_wait_close(p.port, stream))
    assert answers[0][0] == 200
    method, target, h, body = t.requests[0]
    assert (target, body) == (b"/i", b"abc") and b"transfer-encoding" not in dict(h)


def test_408_for_a_request_left_incomplete(lb):
    p, t = lb(idle_timeout=1)
    with socket.create_connection(("127.0.0.1", p.port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        data = s.recv(65536)
    assert data.startswith(b"HTTP/1.1 408")
    assert t.received() == b""


def test_an_idle_keep_alive_connection_is_closed_without_an_answer(lb):
    p, t = lb(idle_timeout=1)
    with socket.create_connection(("127.0.0.1", p.port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        first = read_response(s)
        rest = s.recv(65536)
    assert first[0] == 200 and rest == b""


def test_idle_timeout_counts_from_the_last_byte_in_either_direction(recording, listeners):
    """A response streamed for longer than the idle timeout is not cut, nor is the keep-alive
    connection right after a slow response."""
    def respond(request, body):
        if request.target == b"/slow":
            time.sleep(1.5)
        return b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    t = recording(respond)
    p = listeners(config(idle_timeout=2))
    p.set_targets([t.target()])
    with socket.create_connection(("127.0.0.1", p.port), timeout=10) as s:
        s.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(s)[0] == 200
        time.sleep(1.0)  # 2.5 s after the request head, 1 s after the last byte
        s.sendall(b"GET /again HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(s)[0] == 200


def test_a_long_streamed_response_is_not_cut_by_the_idle_timeout(listeners):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def serve():
        c, _ = server.accept()
        with c:
            c.recv(65536)
            c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for _ in range(6):
                time.sleep(0.5)
                c.sendall(b"1\r\nx\r\n")
            c.sendall(b"0\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    p = listeners(config(idle_timeout=1))
    p.set_targets([Target("127.0.0.1", server.getsockname()[1], "healthy")])
    try:
        answers = parse_responses(send_and_wait_close(p.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", timeout=10))
        assert answers == [(200, answers[0][1], b"xxxxxx")]
    finally:
        thread.join(10)
        server.close()


# ---------------------------------------------------------------------------
# Targets registered before they listen (scaling from zero under traffic)
# ---------------------------------------------------------------------------


def test_a_request_refused_by_an_initial_target_waits_for_the_health_decision(recording, listeners):
    reserved = socket.socket()
    reserved.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    port = reserved.getsockname()[1]
    p = listeners()
    p.set_targets([Target("127.0.0.1", port, "initial")])
    box = []
    client = threading.Thread(target=lambda: box.append(
        send_and_wait_close(p.port, b"GET /early HTTP/1.1\r\nHost: x\r\n\r\n", timeout=15)))
    client.start()
    try:
        wait_until(lambda: p.stats()["connect_errors"] >= 1, timeout=5, what="a refused connection", step=0.01)
        reserved.listen(8)  # the server is up now; its health check passes
        served = []

        def serve():
            c, _ = reserved.accept()
            with c:
                served.append(c.recv(65536))
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

        server = threading.Thread(target=serve, daemon=True)
        server.start()
        p.set_targets([Target("127.0.0.1", port, "healthy")])
        client.join(15)
        server.join(5)
    finally:
        reserved.close()
    assert box and box[0].startswith(b"HTTP/1.1 200"), box
    assert served[0].startswith(b"GET /early HTTP/1.1\r\n")
    assert p.stats()["502"] == 0


def test_a_held_request_gets_502_when_the_target_never_listens(recording):
    reserved = socket.socket()
    reserved.bind(("127.0.0.1", 0))
    port = reserved.getsockname()[1]
    p = Listener(config(), connect_timeout=1)
    p.start()
    try:
        p.set_targets([Target("127.0.0.1", port, "initial")])
        box = []
        client = threading.Thread(target=lambda: box.append(
            send_and_wait_close(p.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", timeout=15)))
        client.start()
        wait_until(lambda: p.stats()["connect_errors"] >= 1, timeout=5, what="a refused connection", step=0.01)
        for i in range(5):  # targets changing meanwhile retry the request; the wait stays bounded
            p.set_targets([Target("127.0.0.1", port, "initial"), Target("127.0.0.1", port + i + 1, "draining")])
        client.join(15)
    finally:
        p.stop()
        reserved.close()
    assert box and box[0].startswith(b"HTTP/1.1 502")


def test_refused_by_an_initial_target_goes_to_another_one(recording, listeners):
    reserved = socket.socket()
    reserved.bind(("127.0.0.1", 0))
    t = recording()
    p = listeners()
    p.set_targets([Target("127.0.0.1", reserved.getsockname()[1], "initial"), t.target("initial")])
    try:
        for i in range(6):
            data = send_and_wait_close(p.port, b"POST /%d HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nz" % i)
            assert data.startswith(b"HTTP/1.1 200")
    finally:
        reserved.close()
    assert len(t.requests) == 6 and p.stats()["502"] == 0


# ---------------------------------------------------------------------------
# Upgrades
# ---------------------------------------------------------------------------


def test_a_non_websocket_upgrade_is_forwarded_as_a_plain_request(lb):
    p, t = lb()
    answers = parse_responses(send_and_wait_close(
        p.port, b"GET /u HTTP/1.1\r\n" + HOST + b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\nGET /next HTTP/1.1\r\n" + HOST + b"\r\n"))
    assert [a[2] for a in answers] == [b"path=/u", b"path=/next"]
    h = dict(t.requests[0][2])
    assert b"upgrade" not in h and b"http2-settings" not in h


def test_101_to_a_request_that_asked_for_no_websocket_is_502(lb):
    p, t = lb(lambda request, body: b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n")
    data = send_and_wait_close(p.port, b"GET / HTTP/1.1\r\n" + HOST + b"\r\n")
    assert data.startswith(b"HTTP/1.1 502")
