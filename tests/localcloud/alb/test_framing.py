"""The framing layer on llhttp: what a client byte stream becomes, byte for byte."""

from __future__ import annotations

import pytest

from ship.localcloud.alb import framing
from ship.localcloud.alb.framing import CHUNKED, LENGTH, NO_BODY, UNTIL_CLOSE, ProtocolError


class Recorder:
    def __init__(self):
        self.events = []

    def on_request(self, head):
        self.events.append(("head", head.method, head.target, head.version, head.body, head.length))

    def on_request_data(self, data):
        if self.events and self.events[-1][0] == "data":
            self.events[-1] = ("data", self.events[-1][1] + bytes(data))
        else:
            self.events.append(("data", bytes(data)))

    def on_request_end(self):
        self.events.append(("end",))


def read_all(stream: bytes, pieces: int = 0):
    """Feed ``stream`` (optionally cut into small pieces) and answer every request at once.

    Returns (events, unconsumed bytes, error status or None)."""
    rec = Recorder()
    reader = framing.RequestReader(rec)
    buf = bytearray()
    chunks = [stream] if not pieces else [stream[i:i + pieces] for i in range(0, len(stream), pieces)]
    try:
        for chunk in chunks:
            buf += chunk
            while True:
                if reader.done:
                    reader.next_request()
                    continue
                n = reader.feed(buf)
                if not n:
                    break
                del buf[:n]
    except ProtocolError as exc:
        return rec.events, bytes(buf), exc.status
    return rec.events, bytes(buf), None


GET = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize("pieces", [0, 1, 3, 7])
def test_requests_are_framed_whatever_the_segmentation(pieces):
    stream = (GET + b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
              + b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n"
              b"T: 1\r\n\r\n" + GET)
    events, rest, err = read_all(stream, pieces)
    assert err is None and rest == b""
    assert events == [
        ("head", b"GET", b"/a", "1.1", NO_BODY, -1), ("end",),
        ("head", b"POST", b"/b", "1.1", LENGTH, 5), ("data", b"hello"), ("end",),
        ("head", b"POST", b"/c", "1.1", CHUNKED, -1), ("data", b"abcde"), ("end",),
        ("head", b"GET", b"/a", "1.1", NO_BODY, -1), ("end",),
    ]


def test_nothing_past_a_request_is_parsed_until_it_is_answered():
    rec = Recorder()
    reader = framing.RequestReader(rec)
    buf = bytearray(GET * 3)
    n = reader.feed(buf)
    assert n == len(GET) and reader.done
    assert reader.feed(buf[n:]) == 0  # waits for next_request()
    assert rec.events == [("head", b"GET", b"/a", "1.1", NO_BODY, -1), ("end",)]


def test_parse_ahead_after_a_chunked_body_is_bounded_and_replayed_in_order():
    chunked = b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n"
    rec = Recorder()
    reader = framing.RequestReader(rec)
    buf = bytearray(chunked + GET * 10000)
    consumed = 0
    while not reader.done:
        n = reader.feed(buf[consumed:])
        consumed += n
    # The slice that ended the body may have parsed some GETs ahead, never more than a slice.
    assert consumed <= len(chunked) + framing.CHUNK_SLICE
    answered = 0
    while answered < 10000:
        reader.next_request()
        while not reader.done:
            n = reader.feed(buf[consumed:])
            assert n
            consumed += n
        answered += 1
    assert consumed == len(buf)
    assert [e[0] for e in rec.events].count("head") == 10001


@pytest.mark.parametrize("stream,status", [
    (b"GET / HTTP/1.1\nHost: x\r\n\r\n", 400),                       # bare LF request line
    (b"GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n", 400),               # bare LF header line
    (b"GET / HTTP/1.1\r\nHost: x\rX: y\r\n\r\n", 400),               # bare CR
    (b"GET /\r\n", 400),                                              # HTTP/0.9, answered at once
    (b"GET /\r\nHost: x\r\n\r\n", 400),
    (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    (b"GET / HTTP/1.2\r\nHost: x\r\n\r\n", 400),
    (b"GET /a\x00b HTTP/1.1\r\nHost: x\r\n\r\n", 400),               # NUL in the request line
    (b"GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n", 400),        # NUL in a value
    (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x7fb\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", 400),       # obs-fold
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\x0b\r\n\r\nabc", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9223372036854775808\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551615\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n", 501),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX0\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\n0\n\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n Host: x\r\n\r\n", 400),
    (b"FOO / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET /" + b"a" * (16 * 1024) + b" HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * (16 * 1024) + b"\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X: " + b"a" * 8000 + b"\r\n" * 1 + b"".join(
        b"X%d: %s\r\n" % (i, b"a" * 8000) for i in range(9)) + b"\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: h2c\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
])
@pytest.mark.parametrize("pieces", [0, 1])
def test_rejected_before_anything_is_forwarded(stream, status, pieces):
    events, _rest, err = read_all(stream, pieces)
    assert err == status
    assert ("end",) not in events  # never a complete request (a chunk already read may have been streamed)


def test_a_head_without_end_is_bounded():
    rec = Recorder()
    reader = framing.RequestReader(rec)
    with pytest.raises(ProtocolError) as e:
        for _ in range(100):
            reader.feed(b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 2000)
    assert e.value.status == 400
    assert rec.events == []


@pytest.mark.parametrize("stream,events,rest", [
    # Content-Length and chunked together: chunked frames the body, Content-Length is ignored.
    # (the slice that ends a chunked body is parsed whole: the partial GET is held by the reader)
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
     b"GET /s HTTP/1.1\r\n",
     [("head", b"POST", b"/", "1.1", CHUNKED, -1), ("end",)], b""),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
     [("head", b"POST", b"/", "1.1", CHUNKED, -1), ("end",)], b""),
    # identity: no transfer coding, the Content-Length frames the body.
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\nContent-Length: 3\r\n\r\nabcGET",
     [("head", b"POST", b"/", "1.1", LENGTH, 3), ("data", b"abc"), ("end",)], b"GET"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\nGET",
     [("head", b"GET", b"/", "1.1", NO_BODY, -1), ("end",)], b"GET"),
    # An upgrade stops the parser after the head: what follows is left for a tunnel.
    (b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x00",
     [("head", b"GET", b"/ws", "1.1", NO_BODY, -1), ("end",)], b"\x81\x00"),
    (b"POST / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: h2c\r\nContent-Length: 2\r\n\r\nhiGET",
     [("head", b"POST", b"/", "1.1", LENGTH, 2), ("data", b"hi"), ("end",)], b"GET"),
    # Empty lines before a request are skipped (RFC 9112 2.2).
    (b"\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n", [("head", b"GET", b"/a", "1.1", NO_BODY, -1), ("end",)], b""),
    (b"GET /a HTTP/1.0\r\n\r\n", [("head", b"GET", b"/a", "1.0", NO_BODY, -1), ("end",)], b""),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
     [("head", b"POST", b"/", "1.1", NO_BODY, 0), ("end",)], b""),
])
def test_framing_decisions(stream, events, rest):
    rec = Recorder()
    reader = framing.RequestReader(rec)
    buf = bytearray(stream)
    while not reader.done:
        n = reader.feed(buf)
        if not n:
            break
        del buf[:n]
    assert rec.events == events
    assert bytes(buf) == rest


class ResponseRecorder:
    def __init__(self):
        self.events = []

    def on_interim(self, head):
        self.events.append(("interim", head.status))

    def on_response(self, head):
        self.events.append(("head", head.status, head.body, head.length, head.keep_alive))

    def on_response_data(self, data):
        self.events.append(("data", bytes(data)))

    def on_response_end(self):
        self.events.append(("end",))


@pytest.mark.parametrize("stream,head_request,events,stray", [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", False,
     [("head", 200, LENGTH, 2, True), ("data", b"hi"), ("end",)], False),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 200 OK\r\n\r\n", False,
     [("head", 200, LENGTH, 2, True), ("data", b"hi"), ("end",)], True),
    (b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nX", False,
     [("head", 204, NO_BODY, -1, True), ("end",)], True),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", True, [("head", 200, NO_BODY, 10, True), ("end",)], False),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789", True,
     [("head", 200, NO_BODY, 10, True), ("end",)], True),
    (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", False,
     [("head", 304, NO_BODY, 10, True), ("end",)], False),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early\r\nLink: x\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
     False, [("interim", 100), ("interim", 103), ("head", 200, NO_BODY, 0, True), ("end",)], False),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nT: x\r\n\r\n", False,
     [("head", 200, CHUNKED, -1, True), ("data", b"hi"), ("end",)], False),
    (b"HTTP/1.0 200 OK\r\n\r\nabc", False, [("head", 200, UNTIL_CLOSE, -1, False), ("data", b"abc")], False),
])
def test_response_framing(stream, head_request, events, stray):
    rec = ResponseRecorder()
    reader = framing.ResponseReader(rec, head_request)
    reader.feed(stream)
    assert rec.events == events
    assert reader.stray is stray


@pytest.mark.parametrize("stream", [
    b"this is not HTTP at all\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc",
    b"HTTP/1.1 200 OK\r\nX: a\x00\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
])
def test_malformed_responses_are_502(stream):
    reader = framing.ResponseReader(ResponseRecorder(), False)
    with pytest.raises(ProtocolError) as e:
        reader.feed(stream)
    assert e.value.status == 502


def test_response_until_close_and_early_close():
    rec = ResponseRecorder()
    reader = framing.ResponseReader(rec, False)
    reader.feed(b"HTTP/1.1 200 OK\r\n\r\nab")
    reader.eof()
    assert rec.events[-1] == ("end",)
    reader = framing.ResponseReader(ResponseRecorder(), False)
    reader.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab")
    with pytest.raises(ProtocolError):
        reader.eof()


def test_switching_protocols_keeps_the_bytes_after_the_head():
    rec = ResponseRecorder()
    reader = framing.ResponseReader(rec, False)
    reader.feed(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x02hi")
    assert rec.events == [("head", 101, NO_BODY, -1, True)]
    assert reader.switched == b"\x81\x02hi"
