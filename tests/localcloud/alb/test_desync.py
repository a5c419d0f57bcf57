"""Desync classification: the port must give http-desync-guardian's verdict on its own test cases,
and the mitigation modes must act as ALB documents them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from ship.localcloud.alb import desync
from ship.localcloud.alb.desync import (
    ACCEPTABLE, AMBIGUOUS, COMPLIANT, FORWARD, FORWARD_THEN_CLOSE, REJECT, SEVERE, TIERS,
)

CASES_DIR = Path(__file__).parent / "desync_guardian"


def _unescape(s) -> bytes:
    """The library's test harness unescapes \\xNN, \\n, ... after YAML, then uses the UTF-8 bytes."""
    s = str(s)
    out = []
    i = 0
    simple = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
    while i < len(s):
        ch = s[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = s[i + 1]
        if nxt == "x":
            out.append(chr(int(s[i + 2:i + 4], 16)))
            i += 4
        else:
            out.append(simple.get(nxt, nxt))
            i += 2
    return "".join(out).encode()


def _cases():
    for path in sorted(CASES_DIR.glob("*.yaml")):
        for case in yaml.safe_load(path.read_text()):
            yield pytest.param(case, id=f"{path.stem}: {case['name']}")


@pytest.mark.parametrize("case", list(_cases()))
def test_guardian_test_cases(case):
    headers = [(_unescape(h["name"]), _unescape(h["value"])) for h in case.get("headers") or []]
    verdict = desync.classify(_unescape(case["method"]), _unescape(case["uri"]), _unescape(case["version"]),
                              headers)
    assert (TIERS[verdict.tier], verdict.reason) == (case["expected"]["tier"], case["expected"]["reason"])


def test_there_are_guardian_cases_for_every_tier():
    tiers = {c.values[0]["expected"]["tier"] for c in _cases()}
    assert tiers == set(TIERS)


@pytest.mark.parametrize("method,uri,version,headers,tier,reason", [
    (b"GET", b"/", b"HTTP/1.1", [(b"Host", b"x")], COMPLIANT, "Compliant"),
    (b"POST", b"/", b"HTTP/1.1", [(b"Content-Length", b"3"), (b"Transfer-Encoding", b"chunked")],
     AMBIGUOUS, "BothTeClPresent"),                                        # CL.TE / TE.CL
    (b"POST", b"/", b"HTTP/1.1", [(b"Transfer_Encoding", b"chunked")], AMBIGUOUS, "SuspiciousHeader"),
    (b"POST", b"/", b"HTTP/1.1", [(b"Transfer-Encoding ", b"chunked")], AMBIGUOUS, "SuspiciousHeader"),
    (b"POST", b"/", b"HTTP/1.1", [("Transfer-Encod\u0131ng".encode(), b"chunked")], AMBIGUOUS,
     "SuspiciousHeader"),                                                  # dotless i
    (b"POST", b"/", b"HTTP/1.1", [(b"Transfer-Encoding", b"chunked"), (b"Transfer-Encoding", b"chunked")],
     SEVERE, "MultipleTransferEncodingChunked"),
    (b"POST", b"/", b"HTTP/1.1", [(b"Transfer-Encoding", b"xchunked")], SEVERE, "BadTransferEncoding"),
    (b"POST", b"/", b"HTTP/1.1", [(b"Content-Length", b"1"), (b"Content-Length", b"2")],
     SEVERE, "MultipleContentLength"),
    (b"POST", b"/", b"HTTP/1.1", [(b"Content-Length", b"1"), (b"Content-Length", b"1")],
     AMBIGUOUS, "DuplicateContentLength"),
    (b"POST", b"/", b"HTTP/1.1", [(b"Content-Length", b"1\x0b")], SEVERE, "BadContentLength"),
    (b"GET", b"/", b"HTTP/1.1", [(b"Content-Length", b"0")], ACCEPTABLE, "GetHeadZeroContentLength"),
    (b"GET", b"/", b"HTTP/1.1", [(b"Content-Length", b"5")], AMBIGUOUS, "UndefinedContentLengthSemantics"),
    (b"POST", b"/", b"HTTP/1.0", [(b"Transfer-Encoding", b"chunked")], AMBIGUOUS,
     "UndefinedTransferEncodingSemantics"),
    (b"GET", b"/a\x01", b"HTTP/1.1", [], AMBIGUOUS, "AmbiguousUri"),
    (b"GET", b"/a\x00", b"HTTP/1.1", [], SEVERE, "BadUri"),
    (b"GET", b"/", b"HTTP/1.1", [(b"X", b"a\x00")], SEVERE, "BadHeader"),
    (b"GET", b"/", b"HTTP/1.1", [(b"X", b"a\x01")], ACCEPTABLE, "NonCompliantHeader"),
    (b"G ET", b"/", b"HTTP/1.1", [], SEVERE, "BadMethod"),
    (b"GET", b"/", b"", [], ACCEPTABLE, "NonCompliantVersion"),
    (b"GET", b"/", b"HTTP/1.2", [], ACCEPTABLE, "NonCompliantVersion"),
    (b"GET", b"/", b"HTTP/1.x", [], SEVERE, "BadVersion"),
])
def test_smuggling_shapes(method, uri, version, headers, tier, reason):
    assert desync.classify(method, uri, version, headers) == (tier, reason)


@pytest.mark.parametrize("mode,expected", [
    ("monitor", [FORWARD, FORWARD, FORWARD, FORWARD]),
    ("defensive", [FORWARD, FORWARD, FORWARD_THEN_CLOSE, REJECT]),
    ("strictest", [FORWARD, REJECT, REJECT, REJECT]),
])
def test_mitigation_modes(mode, expected):
    assert [desync.action(mode, t) for t in (COMPLIANT, ACCEPTABLE, AMBIGUOUS, SEVERE)] == expected


def _llhttp_would_accept(method: bytes, uri: bytes, version: bytes, headers) -> bool:
    token = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+").fullmatch
    return (version in (b"HTTP/1.1", b"HTTP/1.0") and token(method) is not None
            and re.search(rb"[\x00-\x20\x7f]", uri) is None
            and all(token(n) is not None and re.search(rb"[\x00-\x08\x0a-\x1f\x7f]", v) is None for n, v in headers))


def _parsed(case) -> tuple:
    return (_unescape(case["method"]), _unescape(case["uri"]), _unescape(case["version"]),
            [(_unescape(h["name"]), _unescape(h["value"])) for h in case.get("headers") or []])


@pytest.mark.parametrize("case", [c for c in _cases() if _llhttp_would_accept(*_parsed(c.values[0]))])
def test_the_shortcut_for_parser_checked_requests_gives_the_same_verdict(case):
    """The listener tells classify that llhttp has checked the characters already: for every
    guardian case llhttp would accept, that must change nothing."""
    method, uri, version, headers = _parsed(case)
    assert desync.classify(method, uri, version, headers, chars_checked=True) == \
        desync.classify(method, uri, version, headers)
