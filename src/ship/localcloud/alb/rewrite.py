"""What an ALB changes in the messages it relays (pure functions, bytes in, bytes out).

Towards the target (ALB user guide, "HTTP headers and Application Load Balancers"):
``X-Forwarded-For`` gets the client address appended (the default ``append`` mode),
``X-Forwarded-Proto`` and ``X-Forwarded-Port`` are set to the listener's,
``X-Amzn-Trace-Id`` gets a ``Root`` (or a ``Self`` when the client sent one),
hop-by-hop headers are removed and the body framing is written anew. Towards the
client the target's framing and hop-by-hop headers are replaced the same way.

Framing headers and ``Host`` are never removed because a client named them in
``Connection`` (that was a request-smuggling hole): the framing a target sees is
always the one this balancer parsed.
"""

from __future__ import annotations

import random
import re

from ship.localcloud.alb.framing import CHUNKED, LENGTH, NO_BODY, UNTIL_CLOSE, RequestHead, ResponseHead

__all__ = ["Request", "inspect", "refusal", "target_head", "client_head", "trace_id", "XFF_LIMIT"]

XFF_LIMIT = 30  # ALB: HTTP 463 when X-Forwarded-For holds more than 30 addresses
# Removed when relaying, both ways (RFC 9110 7.6.1, plus the Proxy-* family).
_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding",
                  b"upgrade", b"content-length"})
# Request headers the balancer writes itself.
_OWN = frozenset({b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-port", b"x-amzn-trace-id", b"expect"})
_NEVER_CONNECTION_NAMED = frozenset({b"host", b"content-length", b"transfer-encoding", b"close", b"keep-alive",
                                     b"upgrade", b""})
_VALID_NAME = re.compile(rb"[A-Za-z0-9-]+").fullmatch  # routing.http.drop_invalid_header_fields
_getrandbits = random.getrandbits


class Request:
    """What routing and rewriting need to know about a request, read once from its head."""

    __slots__ = ("head", "host", "hosts", "path", "query", "connection", "upgrade", "expect", "xff", "xff_count",
                 "trace", "cookies", "websocket")

    def __init__(self, head: RequestHead):
        self.head = head
        self.hosts: list[bytes] = []  # Host header values, stripped
        self.connection: set[bytes] = set()  # Connection tokens, lower-case
        self.upgrade = b""
        self.expect: bytes | None = None
        self.xff: bytes | None = None  # the X-Forwarded-For values, joined
        self.xff_count = 0
        self.trace: bytes | None = None  # the client's X-Amzn-Trace-Id
        self.cookies: list[bytes] = []  # Cookie header values
        target = head.target
        q = target.find(b"?")
        self.path = target if q < 0 else target[:q]
        self.query = b"" if q < 0 else target[q + 1:]
        self.host = b""
        self.websocket = False


def inspect(head: RequestHead) -> Request:
    """One pass over the headers for what the balancer acts on."""
    req = Request(head)
    for name, value in head.headers:
        n = name.lower()
        if n == b"host":
            req.hosts.append(value.strip())
        elif n == b"connection":
            req.connection.update(t.strip().lower() for t in value.split(b","))
        elif n == b"upgrade":
            req.upgrade = value.strip().lower()
        elif n == b"expect":
            req.expect = value.strip().lower()
        elif n == b"x-forwarded-for":
            v = value.strip()
            req.xff = v if req.xff is None else req.xff + b", " + v
            req.xff_count += len([p for p in v.split(b",") if p.strip()])
        elif n == b"x-amzn-trace-id":
            req.trace = value.strip()
        elif n == b"cookie":
            req.cookies.append(value)
    if req.hosts:
        host = req.hosts[0].lower()
        # "example.com:8080" -> "example.com"; "[::1]:80" -> "[::1]"
        colon = host.rfind(b":")
        req.host = host[:colon] if colon > host.rfind(b"]") else host
    req.websocket = (head.upgrade and head.method == b"GET" and head.body == NO_BODY
                     and b"websocket" in [t.strip() for t in req.upgrade.split(b",")])
    return req


def refusal(req: Request) -> tuple[int, str] | None:
    """(status, reason) when ALB would answer the request itself, else None."""
    head = req.head
    if len(req.hosts) > 1 or (head.version == "1.1" and not req.hosts):
        return 400, "an HTTP/1.1 request needs exactly one Host header"
    if head.method == b"TRACE":
        return 405, "TRACE is not supported"  # ALB: HTTP 405
    if head.method == b"CONNECT":
        return 400, "CONNECT is not supported"
    if req.xff_count > XFF_LIMIT:
        return 463, "X-Forwarded-For holds more than 30 addresses"
    if req.expect is not None and req.expect != b"100-continue":
        return 417, "unsupported expectation"
    return None


def trace_id(epoch: int, incoming: bytes | None) -> bytes:
    """X-Amzn-Trace-Id as ALB sets it: a new Root, or the client's kept with a new Self."""
    fresh = b"1-%08x-%024x" % (epoch, _getrandbits(96))
    if incoming is None:
        return b"Root=" + fresh
    if b"Root=" in incoming:
        kept = b";".join(p for p in incoming.split(b";") if p.strip()[:5] != b"Self=")
        return b"Self=" + fresh + b";" + kept
    return b"Root=" + fresh + (b";" + incoming if incoming else b"")


def target_head(req: Request, client_ip: bytes, forwarded: bytes, trace: bytes, default_host: bytes,
                drop_invalid: bool) -> bytes:
    """The request head sent to the target (HTTP/1.1).

    ``forwarded`` holds the balancer's own X-Forwarded-Proto/-Port lines; ``default_host``
    is the Host given to an HTTP/1.0 request that had none.
    """
    head = req.head
    named = req.connection - _NEVER_CONNECTION_NAMED
    out = [b"%s %s HTTP/1.1" % (head.method, head.target)]
    append = out.append
    for name, value in head.headers:
        n = name.lower()
        if n in _HOP or n in _OWN or (named and n in named) or n[:6] == b"proxy-":
            continue
        if drop_invalid and _VALID_NAME(name) is None:
            continue
        append(name + b": " + value)
    if not req.hosts:
        append(b"Host: " + default_host)
    if head.body == CHUNKED:
        append(b"Transfer-Encoding: chunked")
    elif head.length >= 0:
        append(b"Content-Length: %d" % head.length)
    if req.websocket:
        append(b"Connection: upgrade")
        append(b"Upgrade: " + req.upgrade)
    append(b"X-Forwarded-For: " + (req.xff + b", " + client_ip if req.xff else client_ip))
    append(forwarded)
    append(b"X-Amzn-Trace-Id: " + trace)
    append(b"\r\n")
    return b"\r\n".join(out)


def client_head(resp: ResponseHead, framing: int, v11: bool, keep_alive: bool, extra: tuple[bytes, ...] = ()) -> bytes:
    """The response head sent to the client.

    ``framing`` is how the body goes to the client: LENGTH (as received), CHUNKED
    (re-chunked: the target sent chunked or until-close), UNTIL_CLOSE (an HTTP/1.0
    client reads until close) or NO_BODY. ``extra`` holds lines to add (Set-Cookie).
    """
    switching = resp.status == 101
    named: set[bytes] = set()
    out = [b"HTTP/1.1 %d %s" % (resp.status, resp.reason)]
    append = out.append
    for name, value in resp.headers:
        n = name.lower()
        if n == b"connection":
            named.update(t.strip().lower() for t in value.split(b","))
        elif n in _HOP:
            if switching and n == b"upgrade":
                append(name + b": " + value)
        else:
            append(name + b": " + value)
    drop = named - _NEVER_CONNECTION_NAMED
    if drop and not switching:
        out = [out[0]] + [h for h in out[1:] if h.split(b":", 1)[0].lower() not in drop]
        append = out.append
    if framing == LENGTH or (framing == NO_BODY and resp.length >= 0 and resp.status not in (204, 101)
                             and resp.status >= 200):
        append(b"Content-Length: %d" % resp.length)
    elif framing == CHUNKED:
        append(b"Transfer-Encoding: chunked")
    if switching:
        append(b"Connection: upgrade")
    elif not keep_alive or framing == UNTIL_CLOSE:
        append(b"Connection: close")
    elif not v11:
        append(b"Connection: keep-alive")
    out.extend(extra)
    append(b"\r\n")
    return b"\r\n".join(out)
