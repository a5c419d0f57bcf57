"""HTTP desync mitigation as ALB does it: classify each request, then act on the mode.

``classify()`` is a port of AWS's http-desync-guardian (github.com/aws/http-desync-guardian,
Apache-2.0, ``src/request_analyzer.rs`` and ``src/http_token_utils.rs``), which ALB uses:
a request is Compliant, Acceptable, Ambiguous or Severe, with a reason named as the
library names it. ``action()`` is the table of ALB's desync mitigation modes
("Desync mitigation mode", ALB user guide):

    =============  =========  ======================  =========
    tier           monitor    defensive (default)     strictest
    =============  =========  ======================  =========
    Compliant      forward    forward                 forward
    Acceptable     forward    forward                 reject
    Ambiguous      forward    forward, then close     reject
    Severe         forward    reject                  reject
    =============  =========  ======================  =========

"forward, then close" closes both the client and the target connection after the
response; "reject" answers 400 and closes the client connection. Whatever the mode,
what cannot be framed at all is refused before it gets here (``framing``).
Pure functions: no I/O, no state.
"""

from __future__ import annotations

import re
from typing import NamedTuple, Sequence

__all__ = ["COMPLIANT", "ACCEPTABLE", "AMBIGUOUS", "SEVERE", "TIERS", "MODES", "Verdict", "classify", "action",
           "FORWARD", "FORWARD_THEN_CLOSE", "REJECT"]

COMPLIANT, ACCEPTABLE, AMBIGUOUS, SEVERE = range(4)
TIERS = ("Compliant", "Acceptable", "Ambiguous", "Severe")
MODES = ("monitor", "defensive", "strictest")
FORWARD, FORWARD_THEN_CLOSE, REJECT = "forward", "forward-then-close", "reject"

_TE = b"transfer-encoding"
_CL = b"content-length"
_VALID_TE = (b"chunked", b"compress", b"deflate", b"gzip", b"identity")
_TCHAR = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_BAD = frozenset(b"\r\n\x00")  # never acceptable in a header or the URI
_WS = b" \t"
_ALNUM = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
# Header value characters: VCHAR, obs-text, SP and HTAB.
_VALUE_CHARS = frozenset(range(0x20, 0x7f)) | frozenset(range(0x80, 0x100)) | {0x09}
# Two-byte UTF-8 characters that upper-case to an ASCII letter of TE/CL: 'ſ' -> S, 'ı' -> I.
_LOOKALIKES = {(ord("s"), 0xC5, 0xBF), (ord("i"), 0xC4, 0xB1)}
_IDENTICAL, _SAME_LETTERS, _DISTANT = range(3)
# Fast paths (the verdict is the same; the byte loops below run only when these say "maybe").
_NOT_TCHAR = re.compile(rb"[^!#$%&'*+\-.^_`|~0-9A-Za-z]").search
_NOT_VALUE_CHAR = re.compile(rb"[^\t\x20-\x7e\x80-\xff]").search
_NOT_URI_CHAR = re.compile(rb"[\x00-\x20\x7f]").search
_PLAIN_NAME = re.compile(rb"[\x21-\x7e]*").fullmatch  # no whitespace, CTL or non-ASCII (lookalikes)
_H_COMPLIANT, _H_NON_COMPLIANT, _H_BAD = range(3)

_Headers = Sequence[tuple[bytes, bytes]]  # (name, value) pairs as received


class Verdict(NamedTuple):
    tier: int
    reason: str

    @property
    def name(self) -> str:
        return TIERS[self.tier]


def action(mode: str, tier: int) -> str:
    """What the load balancer does with a request of ``tier`` in desync mitigation ``mode``."""
    if mode == "monitor":
        return FORWARD
    if mode == "strictest":
        return FORWARD if tier == COMPLIANT else REJECT
    if tier == SEVERE:
        return REJECT
    return FORWARD_THEN_CLOSE if tier == AMBIGUOUS else FORWARD


_COMPLIANT = Verdict(COMPLIANT, "Compliant")


def _plainly_compliant(method: bytes, uri: bytes, headers: _Headers) -> bool:
    """The common case, decided with a few scans of the joined bytes: token method and
    names, clean URI and values, no Content-Length or Transfer-Encoding (nor a look-alike)."""
    names = b"|".join([n for n, _v in headers])  # "|" is a tchar: it cannot hide a bad byte
    if not method or _NOT_TCHAR(method) is not None or _NOT_TCHAR(names) is not None:
        return False
    if _NOT_URI_CHAR(uri) is not None or _NOT_VALUE_CHAR(b"\t".join([v for _n, v in headers])) is not None:
        return False
    low = names.lower()
    if (b"transfer" in low or b"content" in low) and not _no_framing_lookalike(headers):
        return False
    return all(n for n, _v in headers)


def _no_framing_lookalike(headers: _Headers) -> bool:
    """No header is Content-Length, Transfer-Encoding, or close to either."""
    for name, _v in headers:
        low = name.lower()
        if (b"transfer" in low or b"content" in low) and _similarities(name) != (_DISTANT, _DISTANT):
            return False
    return True


class _State:
    __slots__ = ("tier", "reason")

    def __init__(self) -> None:
        self.tier = COMPLIANT
        self.reason = "Compliant"

    def upgrade(self, tier: int, reason: str) -> None:
        if tier > self.tier:  # the first reason found at the highest tier is kept
            self.tier, self.reason = tier, reason


def classify(method: bytes, uri: bytes, version: bytes, headers: _Headers, chars_checked: bool = False) -> Verdict:
    """The http-desync-guardian verdict for a parsed request.

    ``version`` is the request line's version token (b"HTTP/1.1"; b"" for HTTP/0.9);
    ``headers`` the (name, value) pairs as received. ``chars_checked`` says that a strict
    parser has already refused control bytes in the request line and values and anything
    but tokens in the method and names (llhttp, h11): only the framing headers remain.
    """
    if version >= b"HTTP/2":
        return Verdict(COMPLIANT, "Compliant")  # out of the library's scope
    if version == b"HTTP/1.1" or version == b"HTTP/1.0":
        if chars_checked:
            low = b"|".join([n for n, _v in headers]).lower()
            if b"transfer" not in low and b"content" not in low or _no_framing_lookalike(headers):
                return _COMPLIANT
        elif _plainly_compliant(method, uri, headers):
            return _COMPLIANT
    if not version.strip(_WS):
        version = b"HTTP/0.9"
    state = _State()
    te_idx: list[int] = []  # indexes of Transfer-Encoding headers (or of look-alikes)
    cl_idx: list[int] = []  # ... of Content-Length headers
    for i, (name, value) in enumerate(headers):
        _scan_header(state, name, value, i, te_idx, cl_idx)
    _check_te_cl(state, method, version, headers, te_idx, cl_idx)
    _check_method(state, method)
    _check_version(state, version)
    _check_uri(state, uri)
    return Verdict(state.tier, state.reason)


def _similarities(name: bytes) -> tuple[int, int]:
    """(TE similarity, CL similarity) of a header name."""
    if _PLAIN_NAME(name) is not None:
        # Without whitespace, control or non-ASCII bytes the letters of a look-alike are
        # contiguous: no "transfer"/"content" in the name, nothing similar.
        low = name.lower()
        if b"transfer" not in low and b"content" not in low:
            return _DISTANT, _DISTANT
    te_sim = similarity(_TE, name)
    return te_sim, (similarity(_CL, name) if te_sim == _DISTANT else _DISTANT)


def _scan_header(state: _State, name: bytes, value: bytes, i: int, te_idx: list[int], cl_idx: list[int]) -> int:
    te_sim, cl_sim = _similarities(name)
    essential = te_sim == _IDENTICAL or cl_sim == _IDENTICAL
    tier = max(_name_tier(name), _value_tier(value))
    if tier == _H_BAD:
        state.upgrade(SEVERE, "BadHeader")
    elif tier == _H_NON_COMPLIANT:
        state.upgrade(ACCEPTABLE, "NonCompliantHeader")
    trimmed = name.strip(_WS)
    if not trimmed or trimmed[:1] == b":":
        state.upgrade(AMBIGUOUS, "EmptyHeader")
        return _H_BAD
    if not essential and tier != _H_BAD:
        if te_sim == _SAME_LETTERS:
            te_idx.append(i)
        elif cl_sim == _SAME_LETTERS:
            cl_idx.append(i)
        else:
            return tier
        state.upgrade(AMBIGUOUS, "SuspiciousHeader")  # e.g. Transfer_Encoding, "Content-Length "
        return _H_NON_COMPLIANT
    if te_sim == _IDENTICAL:
        te_idx.append(i)
    elif cl_sim == _IDENTICAL:
        cl_idx.append(i)
    return tier


def _name_tier(name: bytes) -> int:
    if name and _NOT_TCHAR(name) is None:
        return _H_COMPLIANT
    tier = _H_COMPLIANT
    for b in name:
        if b not in _TCHAR:
            if b in _BAD:
                return _H_BAD
            tier = _H_NON_COMPLIANT
    return tier


def _value_tier(value: bytes) -> int:
    if _NOT_VALUE_CHAR(value) is None:
        return _H_COMPLIANT
    tier = _H_COMPLIANT
    for b in value:
        if b not in _VALUE_CHARS:
            if b in _BAD:
                return _H_BAD
            tier = _H_NON_COMPLIANT
    return tier


def _check_te_cl(state: _State, method: bytes, version: bytes, headers: _Headers, te_idx: list[int],
                 cl_idx: list[int]) -> None:
    if not te_idx and not cl_idx:
        return
    if version <= b"HTTP/1.0" and te_idx:
        state.upgrade(AMBIGUOUS, "UndefinedTransferEncodingSemantics")
        return
    if version < b"HTTP/1.0" and cl_idx:
        state.upgrade(AMBIGUOUS, "UndefinedContentLengthSemantics")
        return
    has_te = _check_transfer_encoding(state, headers, te_idx)
    cl = _content_length(state, headers, cl_idx)
    if method in (b"GET", b"HEAD"):  # a body has no defined semantics (RFC 7231 4.3)
        if has_te:
            state.upgrade(AMBIGUOUS, "UndefinedTransferEncodingSemantics")
        if cl == 0:
            state.upgrade(ACCEPTABLE, "GetHeadZeroContentLength")
        elif cl is not None and cl > 0:
            state.upgrade(AMBIGUOUS, "UndefinedContentLengthSemantics")
    if cl is not None and has_te:
        state.upgrade(AMBIGUOUS, "BothTeClPresent")


def _check_transfer_encoding(state: _State, headers: _Headers, te_idx: list[int]) -> bool:
    chunked_seen = False
    for i in te_idx:
        for item in headers[i][1].split(b","):
            coding = item.strip(_WS).split(b";", 1)[0].strip(_WS).lower()
            if coding not in _VALID_TE:
                state.upgrade(SEVERE, "BadTransferEncoding")
                continue
            is_chunked = coding == b"chunked"
            if chunked_seen and is_chunked:
                state.upgrade(SEVERE, "MultipleTransferEncodingChunked")
            chunked_seen = is_chunked
    return bool(te_idx)


def _content_length(state: _State, headers: _Headers, cl_idx: list[int]) -> int | None:
    value = None
    for i in cl_idx:
        text = headers[i][1].strip(_WS)
        if not text.isdigit() or not text.isascii() or int(text) >= 2 ** 64:
            state.upgrade(SEVERE, "BadContentLength")
            continue
        n = int(text)
        if value is None:
            value = n
        elif value != n:
            state.upgrade(SEVERE, "MultipleContentLength")
        else:
            state.upgrade(AMBIGUOUS, "DuplicateContentLength")
    return value


def _check_method(state: _State, method: bytes) -> None:
    if not method or _NOT_TCHAR(method) is not None:
        state.upgrade(SEVERE, "BadMethod")


def _check_version(state: _State, version: bytes) -> None:
    trimmed = version.strip(_WS)
    if trimmed == b"HTTP/0.9":
        state.upgrade(ACCEPTABLE, "NonCompliantVersion")
        return
    valid = len(trimmed) == 8 and trimmed[:7] == b"HTTP/1." and trimmed[7:8].isdigit()
    if not valid:
        state.upgrade(SEVERE, "BadVersion")
    elif len(trimmed) != len(version) or trimmed[7:8] > b"1":
        state.upgrade(ACCEPTABLE, "NonCompliantVersion")


def _check_uri(state: _State, uri: bytes) -> None:
    if _NOT_URI_CHAR(uri) is None:
        return
    for b in uri:
        if b > 0x20 and b != 0x7F:
            continue
        if b in _BAD:
            state.upgrade(SEVERE, "BadUri")
            return
        if b == 0x20:
            state.upgrade(ACCEPTABLE, "SpaceInUri")
        else:
            state.upgrade(AMBIGUOUS, "AmbiguousUri")


def similarity(important: bytes, header: bytes) -> int:
    """How close ``header`` is to the lower-case name ``important``: identical (any case),
    the same letters with other delimiters or padding ("Transfer_Encoding", " Content-Length"),
    or distant (http-desync-guardian's determine_similarity)."""
    n = len(header)
    if n < len(important):
        return _DISTANT
    j = _next_alnum(header, 0)
    identical = j == 0 and len(important) == n
    for c in important:
        if j == n:
            return _DISTANT
        delimiter = c == 0x2D  # '-'
        same, after = _same_char(c, header, j)
        if not same:
            if not delimiter:
                break
            identical = False
        j = _next_alnum(header, after) if delimiter else _next_symbol(header, after)
    exhausted = j == n
    if exhausted and identical:
        return _IDENTICAL
    if exhausted or _next_alnum(header, j) == n:
        return _SAME_LETTERS
    return _DISTANT


def _same_char(c: int, header: bytes, i: int) -> tuple[bool, int]:
    h = header[i]
    if c == (h | 0x20 if 0x41 <= h <= 0x5A else h):
        return True, i + 1
    if i + 1 < len(header) and (c, h, header[i + 1]) in _LOOKALIKES:
        return True, i + 2
    return False, i + 1


def _next_alnum(value: bytes, i: int) -> int:
    n = len(value)
    while i < n and value[i] not in _ALNUM:
        i += 1
    return i


def _next_symbol(value: bytes, i: int) -> int:
    n = len(value)
    while i < n and value[i] <= 0x20:
        i += 1
    return i
