"""What the listener changes in relayed messages: pure functions, bytes in, bytes out."""

from __future__ import annotations

import re

import pytest

from ship.localcloud.alb import rewrite
from ship.localcloud.alb.framing import CHUNKED, LENGTH, NO_BODY, UNTIL_CLOSE, RequestHead, ResponseHead

FWD = b"X-Forwarded-Proto: http\r\nX-Forwarded-Port: 80"


def head(headers, method=b"GET", target=b"/p?q", version="1.1", body=NO_BODY, length=-1, upgrade=False):
    return RequestHead(method, target, version, list(headers), body, length, True, upgrade)


def lines(data: bytes) -> list:
    assert data.endswith(b"\r\n\r\n")
    return data[:-4].split(b"\r\n")


def test_target_head_replaces_hop_by_hop_framing_and_forwarding_headers():
    req = rewrite.inspect(head([
        (b"Host", b"example.com"), (b"Connection", b"keep-alive, X-Private, Content-Length, Host"),
        (b"X-Private", b"1"), (b"Keep-Alive", b"5"), (b"TE", b"trailers"), (b"Proxy-Authorization", b"x"),
        (b"Content-Length", b"3"), (b"X-Forwarded-For", b"203.0.113.7"), (b"X-Forwarded-Proto", b"https"),
        (b"X-Forwarded-Port", b"1"), (b"Expect", b"100-continue"), (b"Cookie", b"a=b"),
    ], method=b"POST", body=LENGTH, length=3))
    out = lines(rewrite.target_head(req, b"127.0.0.1", FWD, b"Root=1-x", b"lb", False))
    assert out == [b"POST /p?q HTTP/1.1", b"Host: example.com", b"Cookie: a=b", b"Content-Length: 3",
                   b"X-Forwarded-For: 203.0.113.7, 127.0.0.1", b"X-Forwarded-Proto: http", b"X-Forwarded-Port: 80",
                   b"X-Amzn-Trace-Id: Root=1-x"]


@pytest.mark.parametrize("version,headers,host", [
    ("1.0", [], b"Host: my-lb.elb.amazonaws.com"),
    ("1.0", [(b"Host", b"given")], b"Host: given"),
])
def test_http_1_0_gets_a_host_and_goes_out_as_1_1(version, headers, host):
    out = lines(rewrite.target_head(rewrite.inspect(head(headers, version=version)), b"10.0.0.1", FWD, b"Root=r",
                                    b"my-lb.elb.amazonaws.com", False))
    assert out[0] == b"GET /p?q HTTP/1.1" and host in out


def test_chunked_bodies_and_websockets():
    chunked = rewrite.inspect(head([(b"Host", b"h"), (b"Transfer-Encoding", b"chunked"), (b"Content-Length", b"9")],
                                   method=b"POST", body=CHUNKED))
    out = lines(rewrite.target_head(chunked, b"ip", FWD, b"t", b"lb", False))
    assert b"Transfer-Encoding: chunked" in out and not any(x.startswith(b"Content-Length") for x in out)
    ws = rewrite.inspect(head([(b"Host", b"h"), (b"Upgrade", b"websocket"), (b"Connection", b"Upgrade"),
                               (b"Sec-WebSocket-Key", b"k")], upgrade=True))
    assert ws.websocket
    out = lines(rewrite.target_head(ws, b"ip", FWD, b"t", b"lb", False))
    assert b"Connection: upgrade" in out and b"Upgrade: websocket" in out and b"Sec-WebSocket-Key: k" in out


def test_drop_invalid_header_fields():
    req = rewrite.inspect(head([(b"Host", b"h"), (b"X_Under", b"1"), (b"X.Dot", b"2"), (b"X-Ok-9", b"3")]))
    out = lines(rewrite.target_head(req, b"ip", FWD, b"t", b"lb", True))
    assert b"X-Ok-9: 3" in out and not any(x.startswith((b"X_Under", b"X.Dot")) for x in out)


@pytest.mark.parametrize("headers,method,refusal", [
    ([(b"Host", b"h")], b"GET", None),
    ([], b"GET", 400),
    ([(b"Host", b"a"), (b"Host", b"b")], b"GET", 400),
    ([(b"Host", b"h")], b"TRACE", 405),
    ([(b"Host", b"h"), (b"X-Forwarded-For", b", ".join([b"1.1.1.1"] * 30))], b"GET", None),
    ([(b"Host", b"h"), (b"X-Forwarded-For", b", ".join([b"1.1.1.1"] * 20)),
      (b"X-Forwarded-For", b", ".join([b"1.1.1.1"] * 11))], b"GET", 463),
    ([(b"Host", b"h"), (b"Expect", b"100-Continue")], b"POST", None),
    ([(b"Host", b"h"), (b"Expect", b"something")], b"POST", 417),
])
def test_refusals(headers, method, refusal):
    got = rewrite.refusal(rewrite.inspect(head(headers, method=method)))
    assert (got[0] if got else None) == refusal


def test_trace_ids():
    assert re.fullmatch(rb"Root=1-0000000a-[0-9a-f]{24}", rewrite.trace_id(10, None))
    kept = rewrite.trace_id(10, b"Root=1-5759e988-bd862e3fe1be46a994272793;Self=old;Sampled=1")
    assert re.fullmatch(rb"Self=1-0000000a-[0-9a-f]{24};Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1", kept)
    assert rewrite.trace_id(10, b"Foo=bar").endswith(b";Foo=bar")


def response(status=200, headers=(), body=LENGTH, length=5):
    return ResponseHead(status, b"OK", "1.1", list(headers), body, length, True)


@pytest.mark.parametrize("resp,framing,v11,keep,expected", [
    (response(headers=[(b"Content-Length", b"5"), (b"X-A", b"1")]), LENGTH, True, True,
     [b"HTTP/1.1 200 OK", b"X-A: 1", b"Content-Length: 5"]),
    (response(headers=[(b"Transfer-Encoding", b"chunked")], body=CHUNKED, length=-1), CHUNKED, True, True,
     [b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked"]),
    (response(headers=[], body=UNTIL_CLOSE, length=-1), UNTIL_CLOSE, False, True,
     [b"HTTP/1.1 200 OK", b"Connection: close"]),
    (response(headers=[(b"Content-Length", b"5")]), LENGTH, False, True,
     [b"HTTP/1.1 200 OK", b"Content-Length: 5", b"Connection: keep-alive"]),
    (response(headers=[(b"Connection", b"close, X-Hop"), (b"X-Hop", b"1"), (b"Keep-Alive", b"t")]), LENGTH, True, False,
     [b"HTTP/1.1 200 OK", b"Content-Length: 5", b"Connection: close"]),
    (response(status=304, headers=[(b"Content-Length", b"5")], body=NO_BODY), NO_BODY, True, True,
     [b"HTTP/1.1 304 OK", b"Content-Length: 5"]),
    (response(status=101, headers=[(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade")], body=NO_BODY,
              length=-1), NO_BODY, True, True,
     [b"HTTP/1.1 101 OK", b"Upgrade: websocket", b"Connection: upgrade"]),
])
def test_client_head(resp, framing, v11, keep, expected):
    assert lines(rewrite.client_head(resp, framing, v11, keep)) == expected
