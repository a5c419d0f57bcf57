"""HTTP/1.1 message framing on llhttp (httptools): where a message starts and ends.

The parser decides what a message is; this module only decides how much of a
connection's input it may see at a time, and rejects on top what llhttp accepts
but an ALB does not (ALB's documented answers are in the comments):

* ``RequestReader`` frames the requests of one client connection. It feeds the
  parser a request head up to its blank line, a Content-Length body exactly,
  and a chunked body in slices of ``CHUNK_SLICE`` bytes, so that after the end
  of a request the parser has seen at most one slice of what follows. Events
  parsed past the end of the current request (only possible at the end of a
  chunked body) are queued and replayed by ``next_request()``. Nothing is
  parsed ahead otherwise: a client that pipelines requests waits in the
  caller's bounded input buffer.
* ``ResponseReader`` frames one response from a target. Bytes outside that
  response's framing (after a 204, after a HEAD answer, past Content-Length)
  mark the reader ``stray``: the caller must drop that target connection.

Both call a handler (``on_request`` / ``on_request_data`` / ``on_request_end``,
``on_response`` / ``on_response_data`` / ``on_response_end`` / ``on_interim``)
and raise ``ProtocolError`` for what must not be forwarded.
"""

from __future__ import annotations

from typing import Iterable, Protocol, Sequence

from httptools import HttpParserError, HttpParserUpgrade, HttpRequestParser, HttpResponseParser

__all__ = [
    "ProtocolError", "RequestHead", "ResponseHead", "RequestReader", "ResponseReader", "Headers",
    "RequestHandler", "ResponseHandler", "RequestFraming", "ResponseFraming",
    "NO_BODY", "LENGTH", "CHUNKED", "UNTIL_CLOSE",
    "REQUEST_LINE_LIMIT", "HEADER_LIMIT", "HEADERS_LIMIT", "CHUNK_SLICE", "MAX_CONTENT_LENGTH",
]

# Body framing of a message.
NO_BODY, LENGTH, CHUNKED, UNTIL_CLOSE = range(4)

# ALB: "The request header exceeded 16 K per request line, 16 K per single header,
# or 64 K for the entire request header" -> 400 (Troubleshoot your ALB, HTTP 400).
REQUEST_LINE_LIMIT = 16 * 1024
HEADER_LIMIT = 16 * 1024
HEADERS_LIMIT = 64 * 1024
# How much of a chunked request body the parser sees at once: the most it can
# parse past the end of a request before the caller has answered it.
CHUNK_SLICE = 16 * 1024
# A Content-Length must be plain digits within a signed 64-bit integer.
MAX_CONTENT_LENGTH = 2 ** 63 - 1
_HEAD_BYTES_LIMIT = REQUEST_LINE_LIMIT + HEADERS_LIMIT + 4
_RESPONSE_HEAD_LIMIT = 64 * 1024
_TE_CODINGS = frozenset({b"chunked", b"identity"})  # ALB: anything else is 501
_CRLF2 = b"\r\n\r\n"
_OWS = b" \t"

Headers = list[tuple[bytes, bytes]]  # (name, value) pairs, as received, in order


class ProtocolError(Exception):
    """A message that must not be forwarded; ``status`` is what the client gets."""

    def __init__(self, status: int, reason: str):
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


class _Stop(Exception):
    """Raised inside a parser callback to stop llhttp; the reason is kept aside."""


class RequestHead:
    """A request head as received: raw method, target and header bytes, in order."""

    __slots__ = ("method", "target", "version", "headers", "body", "length", "keep_alive", "upgrade")

    def __init__(self, method: bytes, target: bytes, version: str, headers: Headers, body: int, length: int,
                 keep_alive: bool, upgrade: bool):
        self.method = method
        self.target = target
        self.version = version  # "1.0" or "1.1"
        self.headers = headers  # [(name, value)], names and values as received
        self.body = body  # NO_BODY, LENGTH or CHUNKED
        self.length = length  # the Content-Length for LENGTH, else -1
        self.keep_alive = keep_alive
        self.upgrade = upgrade  # llhttp saw Connection: upgrade + Upgrade (or CONNECT)

    def __repr__(self) -> str:
        return f"RequestHead({self.method!r} {self.target!r} HTTP/{self.version}, {len(self.headers)} headers)"


class ResponseHead:
    __slots__ = ("status", "reason", "version", "headers", "body", "length", "keep_alive")

    def __init__(self, status: int, reason: bytes, version: str, headers: Headers, body: int, length: int,
                 keep_alive: bool):
        self.status = status
        self.reason = reason
        self.version = version
        self.headers = headers
        self.body = body
        self.length = length
        self.keep_alive = keep_alive


class RequestHandler(Protocol):
    """What a request reader tells (the client connection; the reader itself while it parses ahead)."""

    def on_request(self, head: RequestHead) -> None: ...

    def on_request_data(self, data: bytes) -> None: ...

    def on_request_end(self) -> None: ...


class ResponseHandler(Protocol):
    """What a response reader tells (the exchange)."""

    def on_interim(self, resp: ResponseHead) -> None: ...

    def on_response(self, resp: ResponseHead) -> None: ...

    def on_response_data(self, data: bytes) -> None: ...

    def on_response_end(self) -> None: ...


class RequestFraming(Protocol):
    """A request reader: ``RequestReader`` here, or ``framing_h11.RequestReader``."""

    done: bool

    def feed(self, buf: bytes | bytearray) -> int: ...

    def next_request(self) -> None: ...

    def rest(self) -> bytes: ...

    def close(self) -> None: ...

    @property
    def busy(self) -> bool: ...


class ResponseFraming(Protocol):
    """A response reader: ``ResponseReader`` here, or ``framing_h11.ResponseReader``."""

    ended: bool
    stray: bool
    switched: bytes | None

    def feed(self, data: bytes) -> None: ...

    def eof(self) -> None: ...

    def close(self) -> None: ...

    @property
    def reusable(self) -> bool: ...


_FramingValues = tuple[list[bytes], list[bytes]]  # ([Content-Length values], [Transfer-Encoding values])


def _note_framing(values: _FramingValues | None, name: bytes, value: bytes) -> _FramingValues | None:
    """Keep the values of Content-Length and Transfer-Encoding aside as headers arrive."""
    low = name.lower()
    if low == b"content-length" or low == b"transfer-encoding":
        if values is None:
            values = ([], [])
        values[low == b"transfer-encoding"].append(value)
    return values


def content_length(values: Sequence[bytes]) -> int:
    """The one Content-Length of a message, -1 if none; ProtocolError(400) unless plain digits in 63 bits."""
    if not values:
        return -1
    if len(values) > 1:
        raise ProtocolError(400, "more than one Content-Length")
    v = values[0].strip(_OWS)
    if not v.isdigit() or not v.isascii() or len(v) > 19 or int(v) > MAX_CONTENT_LENGTH:
        raise ProtocolError(400, "Content-Length is not a decimal number within 64 bits")
    return int(v)


def transfer_codings(values: Iterable[bytes]) -> list[bytes]:
    """The Transfer-Encoding codings, lower-cased, in order."""
    out = []
    for value in values:
        for item in value.split(b","):
            out.append(item.strip(_OWS).lower())
    return out


def request_body_framing(codings: Sequence[bytes], length: int) -> int:
    """NO_BODY, LENGTH or CHUNKED for a request, after ALB's rules on Transfer-Encoding.

    ALB (HTTP 501): "The supported values for Transfer-Encoding are chunked and
    identity"; chunked must come once and last (RFC 9112 6.3), otherwise the body
    length cannot be determined (400). ``identity`` means no transfer coding.
    """
    if codings:
        unknown = [c for c in codings if c not in _TE_CODINGS]
        if unknown:
            if any(not c for c in unknown):
                raise ProtocolError(400, "empty Transfer-Encoding coding")
            raise ProtocolError(501, "Transfer-Encoding other than chunked or identity")
        chunked = codings.count(b"chunked")
        if chunked > 1 or (chunked and codings[-1] != b"chunked"):
            raise ProtocolError(400, "chunked is not the final transfer coding, or comes twice")
        if chunked:
            return CHUNKED
    return LENGTH if length > 0 else NO_BODY


# Where the reader is in the current request (what it may feed next).
_HEAD, _PARSED_BODY, _COUNTED_BODY, _FAILED = range(4)
# What a reader parsing ahead queues: a request head, a piece of its body, or its end (None).
_Event = RequestHead | bytes | None


class _Ahead:
    """Where a reader's events go while it parses ahead of ``next_request()``: a queue of
    request heads, body pieces and ends (None), replayed to the handler in order."""

    __slots__ = ("events",)

    def __init__(self) -> None:
        self.events: list[_Event] = []

    def on_request(self, head: RequestHead) -> None:
        self.events.append(head)

    def on_request_data(self, data: bytes) -> None:
        self.events.append(data)

    def on_request_end(self) -> None:
        self.events.append(None)

    def replay(self, handler: RequestHandler) -> bool:
        """Hand the handler the queued events up to the end of one request; True if it ended."""
        events = self.events
        i, ended = -1, False
        for i, event in enumerate(events):
            if isinstance(event, RequestHead):
                handler.on_request(event)
            elif event is not None:
                handler.on_request_data(event)
            else:
                handler.on_request_end()
                ended = True
                break
        del events[:i + 1]
        return ended

    def drop_incomplete(self) -> None:
        """Forget the events of a request parsed ahead that will never be complete."""
        events = self.events
        last = max((i for i, event in enumerate(events) if event is None), default=-1)
        del events[last + 1:]


class RequestReader:
    """Frames the requests of one client connection (see the module docstring).

    ``feed(buf)`` parses what the current request allows from the start of
    ``buf`` and returns how many bytes it consumed. Once a request has ended
    (``done``) it consumes nothing until ``next_request()``. After an upgrade
    request the bytes that follow its head are left unconsumed, so that the
    caller can tunnel them.
    """

    __slots__ = ("_handler", "_sink", "_ahead", "_parser", "_phase", "_remaining", "_lookbehind", "_head_fed",
                 "_url", "_url_len", "_url_done", "_headers", "_framing_values", "_header_bytes", "_failure",
                 "_pending", "_chunked", "_ended", "done")

    # Set for each request by _start_message (and the parser by _new_parser).
    _lookbehind: bytes  # the last bytes of the head fed so far: its blank line may straddle two feeds
    _head_fed: int
    _url: list[bytes]
    _url_len: int
    _url_done: bool
    _headers: Headers
    _framing_values: _FramingValues | None
    _header_bytes: int
    _pending: int | None  # the Content-Length of a body llhttp does not frame (see _begin_counted)
    _chunked: bool
    _parser: HttpRequestParser | None  # None once closed

    def __init__(self, handler: RequestHandler):
        self._handler: RequestHandler | None = handler  # None once closed
        # Where events go: the handler, or the queue while parsing ahead.
        self._sink: RequestHandler | None = handler
        self._ahead = _Ahead()
        self._failure: ProtocolError | None = None  # waiting behind requests parsed ahead
        self._phase = _HEAD
        self._remaining = 0
        self._ended = 0  # requests ended so far
        self.done = False  # the current request has ended; call next_request()
        self._new_parser()
        self._start_message()

    # -- driving ------------------------------------------------------------

    def feed(self, buf: bytes | bytearray) -> int:
        """Feed the parser from ``buf``; returns the number of bytes consumed."""
        phase = self._phase
        parser = self._parser
        if self.done or phase == _FAILED or parser is None:
            return 0
        if phase == _COUNTED_BODY:
            return self._feed_counted(buf)
        if phase == _HEAD:
            if self._lookbehind:
                n = self._head_extent(buf)
            else:
                i = buf.find(_CRLF2)
                n = len(buf) if i < 0 else i + 4
        elif self._chunked:
            n = min(len(buf), CHUNK_SLICE)
        else:
            n = min(len(buf), self._remaining)
        data = buf if n == len(buf) else buf[:n]
        ended = self._ended
        try:
            parser.feed_data(data)
        except HttpParserUpgrade as up:
            n = up.args[0]  # llhttp stopped after an upgrade head: the rest is not parsed
        except HttpParserError as exc:
            self._parse_failed(exc)
        pending = self._pending
        if pending is not None:
            self._begin_counted(pending)
        elif self._phase == _HEAD and ended == self._ended:
            self._head_progress(parser, data, n)
        return n

    def next_request(self) -> None:
        """Start the next request: replay what was parsed ahead of it, if anything."""
        if not self.done:
            raise RuntimeError("next_request() before the current request ended")
        self.done = False
        handler = self._handler
        if handler is None:
            return  # closed
        self.done = self._ahead.replay(handler)
        if not self.done and not self._ahead.events:
            self._sink = handler
            if self._failure is not None:
                failure, self._failure = self._failure, None
                raise failure

    def rest(self) -> bytes:
        """Bytes the reader took but did not parse (none: it stops where llhttp stops)."""
        return b""

    def close(self) -> None:
        """Drop the parser and the handler (reference cycles the garbage collector would break)."""
        self._parser = None
        self._handler = self._sink = None
        self.done = True

    @property
    def busy(self) -> bool:
        """Part of a request has been read (an idle timeout now means 408)."""
        return self._phase != _HEAD or self._head_fed > 0 or bool(self._url)

    # -- feeding helpers ------------------------------------------------------

    def _head_extent(self, buf: bytes | bytearray) -> int:
        """How much of ``buf`` belongs to the current head: up to its blank line, else all of it."""
        lb = self._lookbehind
        if lb:  # the blank line may straddle the previous feed and this one
            j = (lb + bytes(buf[:3])).find(_CRLF2)
            if j >= 0:
                return j + 4 - len(lb)
        i = buf.find(_CRLF2)
        return len(buf) if i < 0 else i + 4

    def _head_progress(self, parser: HttpRequestParser, data: bytes | bytearray, n: int) -> None:
        """After feeding part of a head: limits, and HTTP/0.9 (which llhttp would wait on)."""
        self._head_fed += n
        self._lookbehind = bytes(data[-3:])
        if self._head_fed > _HEAD_BYTES_LIMIT:
            raise self._fail(400, "request header larger than 64 K")
        if not self._url_done:
            if self._head_fed > REQUEST_LINE_LIMIT:
                raise self._fail(400, "request line longer than 16 K")
        elif data[-1:] == b"\n" and parser.get_http_version() == "0.0":
            # "GET /\r\n" is complete for HTTP/0.9; llhttp waits for more. ALB answers 400.
            raise self._fail(400, "HTTP/0.9 request")

    def _fail(self, status: int, reason: str) -> ProtocolError:
        self._phase = _FAILED
        return ProtocolError(status, reason)

    def _feed_counted(self, buf: bytes | bytearray) -> int:
        n = min(len(buf), self._remaining)
        if n:
            self._remaining -= n
            sink = self._sink
            if sink is not None:
                sink.on_request_data(bytes(buf[:n]))
        if not self._remaining:
            self._phase = _HEAD
            self._start_message()
            self._message_ended()
        return n

    def _begin_counted(self, length: int) -> None:
        """After a head whose body llhttp does not frame: an identity coding (llhttp would
        read until EOF) or an upgrade (llhttp stops after the head). Exactly the declared
        Content-Length (``length``) follows; a fresh parser takes the next request."""
        self._pending = None
        self._new_parser()
        if self._sink is not self._handler:  # parsed ahead: the boundary is lost
            self._phase = _FAILED
            self._failure = ProtocolError(400, "request cannot be framed after a pipelined chunked body")
            self._ahead.drop_incomplete()
            return
        self._remaining = length
        self._phase = _COUNTED_BODY
        if not length:
            self._feed_counted(b"")

    def _parse_failed(self, exc: HttpParserError) -> None:
        cause = exc.__context__
        if self._failure is None and cause is not None and not isinstance(cause, (_Stop, ProtocolError)):
            raise cause  # a bug in a handler: not the client's fault
        failure = self._failure or (cause if isinstance(cause, ProtocolError) else
                                    ProtocolError(400, f"malformed request: {exc}"))
        self._failure = None
        self._phase = _FAILED
        if self._sink is self._handler:
            raise failure
        self._failure = failure  # behind a request that is still being answered
        self._ahead.drop_incomplete()

    def _new_parser(self) -> None:
        parser = HttpRequestParser(self)
        # Both leniencies only change how llhttp frames a body; this reader decides
        # the framing itself at the end of the head (request_body_framing) and
        # rejects what ALB rejects before a body byte is fed.
        parser.set_dangerous_leniencies(lenient_chunked_length=True, lenient_transfer_encoding=True)
        self._parser = parser

    def _start_message(self) -> None:
        self._lookbehind = b""
        self._head_fed = 0
        self._url = []
        self._url_len = 0
        self._url_done = False
        self._headers = []
        self._framing_values = None
        self._header_bytes = 0
        self._pending = None
        self._chunked = False

    def _message_ended(self) -> None:
        self._ended += 1
        sink = self._sink
        if sink is None:
            return  # closed
        sink.on_request_end()
        if self._sink is self._handler:
            self.done = True
            self._sink = self._ahead  # parse ahead into the queue until next_request()

    # -- llhttp callbacks -----------------------------------------------------------

    def on_url(self, piece: bytes) -> None:
        self._url.append(piece)
        self._url_len += len(piece)
        self._url_done = True
        if self._url_len > REQUEST_LINE_LIMIT:
            self._failure = ProtocolError(400, "request line longer than 16 K")
            raise _Stop

    def on_header(self, name: bytes, value: bytes) -> None:
        n = len(name)
        size = n + len(value) + 4
        total = self._header_bytes = self._header_bytes + size
        if size > HEADER_LIMIT or total > HEADERS_LIMIT:
            self._failure = ProtocolError(400, "a request header longer than 16 K" if size > HEADER_LIMIT
                                          else "request headers larger than 64 K")
            raise _Stop
        self._headers.append((name, value))
        if n == 14 or n == 17:
            self._framing_values = _note_framing(self._framing_values, name, value)

    def on_headers_complete(self) -> None:
        try:
            head = self._make_head()
        except ProtocolError as exc:
            self._failure = exc
            raise _Stop from None
        self._phase = _PARSED_BODY
        sink = self._sink
        if sink is not None:
            sink.on_request(head)

    def on_body(self, data: bytes) -> None:
        if self._phase == _PARSED_BODY:
            if not self._chunked:
                self._remaining -= len(data)
            sink = self._sink
            if sink is not None:
                sink.on_request_data(data)

    def on_message_complete(self) -> None:
        if self._phase != _PARSED_BODY or self._pending is not None:
            return  # a body llhttp does not frame is passed on counted (_begin_counted)
        self._phase = _HEAD
        self._start_message()
        self._message_ended()

    def _make_head(self) -> RequestHead:
        parser = self._parser
        if parser is None:  # closed by a handler while this parser was calling back
            raise ProtocolError(400, "connection closed")
        version = parser.get_http_version()
        if version == "0.9":
            raise ProtocolError(400, "HTTP/0.9 request")
        if version not in ("1.1", "1.0"):  # ALB: HTTP 505 for an unexpected HTTP version
            raise ProtocolError(505, f"HTTP/{version} request on an HTTP/1 connection")
        headers = self._headers
        lengths, encodings = self._framing_values or ((), ())
        length = content_length(lengths) if lengths else -1
        codings = transfer_codings(encodings) if encodings else ()
        body = request_body_framing(codings, length)
        upgrade = parser.should_upgrade()
        if body == CHUNKED:
            if upgrade:
                raise ProtocolError(400, "upgrade request with a chunked body")
            self._chunked = True
            length = -1
        else:
            self._remaining = max(length, 0)
            if codings or upgrade:
                self._pending = self._remaining
            if body == NO_BODY:
                length = -1 if length < 0 else 0
        url = self._url[0] if len(self._url) == 1 else b"".join(self._url)
        return RequestHead(parser.get_method(), url, version, headers, body, length,
                           parser.should_keep_alive(), upgrade)


class ResponseReader:
    """Frames one response from a target; ``stray`` when bytes follow its end.

    A 101 answer ends with ``switched`` holding the bytes after its head (the
    start of the other protocol). A HEAD answer ends at its head whatever its
    headers say (llhttp does not know the request method).
    """

    __slots__ = ("_handler", "_parser", "_head_request", "_headers", "_framing_values", "_reason", "_status",
                 "_body", "_head_bytes", "_final", "_skipped", "ended", "stray", "switched")

    _headers: Headers
    _framing_values: _FramingValues | None
    _reason: bytes
    _status: int
    _body: int
    _head_bytes: int  # -1 once the head is complete (what follows is body or trailers)

    def __init__(self, handler: ResponseHandler, head_request: bool):
        self._handler: ResponseHandler | None = handler  # None once closed
        self._head_request = head_request
        self._parser: HttpResponseParser | None = HttpResponseParser(self)  # None once closed
        self._final = False  # a final (non-1xx) response head was seen
        self.ended = False  # the final response is complete
        self.stray = False  # bytes arrived outside the response's framing
        self.switched: bytes | None = None  # after a 101 head: the bytes that followed it
        self._skipped = False  # the head declared a body the response may not have (HEAD, 204, 304)
        self._begin()

    def _begin(self) -> None:
        self._headers = []
        self._framing_values = None
        self._reason = b""
        self._status = 0
        self._body = NO_BODY
        self._head_bytes = 0

    def feed(self, data: bytes) -> None:
        parser = self._parser
        if self.ended or self.switched is not None or parser is None:
            if data:
                self.stray = True
            return
        try:
            parser.feed_data(data)
        except HttpParserUpgrade as up:
            if self._status == 101:
                self.switched = bytes(data[up.args[0]:])
            else:
                self.stray = True
        except HttpParserError as exc:
            if self.ended or self.stray:
                self.stray = True  # whatever follows a complete response is dropped with its connection
                return
            cause = exc.__context__
            if cause is not None and not isinstance(cause, _Stop):
                raise cause from None  # ProtocolError, or a bug in the handler
            raise ProtocolError(502, f"malformed response from the target: {exc}") from None

    def close(self) -> None:
        """Drop the parser: it holds this reader's bound methods, a cycle only the garbage
        collector would otherwise break (one per response)."""
        self._parser = None
        self._handler = None

    @property
    def reusable(self) -> bool:
        """The connection may carry another exchange: the response ended exactly where its
        framing says, and did not declare a body it was not allowed to send (a target that
        sends it anyway would have it read as the next client's response)."""
        return self.ended and not self.stray and not self._skipped

    def eof(self) -> None:
        """The target closed its connection: ends a response framed by the close."""
        if self.ended or self.switched is not None:
            return
        if self._final and self._body == UNTIL_CLOSE:
            self._end()
            return
        raise ProtocolError(502, "the target closed the connection before the response was complete")

    # -- llhttp callbacks -----------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._final:
            self.stray = True  # a second response nobody asked for
            raise _Stop

    def on_status(self, reason: bytes) -> None:
        self._reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._head_bytes < 0:
            return  # a trailer section: not relayed
        n = len(name)
        self._head_bytes += n + len(value) + 4
        if self._head_bytes > _RESPONSE_HEAD_LIMIT:
            raise ProtocolError(502, "response headers larger than 64 K")
        self._headers.append((name, value))
        if n == 14 or n == 17:
            self._framing_values = _note_framing(self._framing_values, name, value)

    def on_headers_complete(self) -> None:
        parser, handler = self._parser, self._handler
        if parser is None or handler is None:
            raise _Stop  # closed by the handler while its parser was calling back
        status = parser.get_status_code()
        self._status = status
        self._head_bytes = -1  # what follows the head is body, or trailers
        if status < 100 or status > 599:
            raise ProtocolError(502, f"status {status} from the target")
        if status < 200 and status != 101:
            handler.on_interim(ResponseHead(status, self._reason, parser.get_http_version(), self._headers,
                                            NO_BODY, -1, True))
            return
        self._final = True
        head = self._final_head(parser, status)
        handler.on_response(head)
        if self._head_request and status != 101:
            self._end()

    def _final_head(self, parser: HttpResponseParser, status: int) -> ResponseHead:
        headers = self._headers
        lengths, encodings = self._framing_values or ((), ())
        try:
            length = content_length(lengths) if lengths else -1
        except ProtocolError as exc:
            raise ProtocolError(502, exc.reason) from None
        codings = transfer_codings(encodings) if encodings else ()
        if self._head_request or status in (101, 204, 304):
            body = NO_BODY  # RFC 9112 6.3: no body, whatever the headers say
            self._skipped = length > 0 or bool(codings)
        elif codings:
            # As llhttp frames it: chunked when it is the final coding, else until close.
            body = CHUNKED if codings[-1] == b"chunked" else UNTIL_CLOSE
            length = -1
        elif length >= 0:
            body = LENGTH if length else NO_BODY
        else:
            body = UNTIL_CLOSE
        self._body = body
        return ResponseHead(status, self._reason, parser.get_http_version(), headers, body, length,
                            parser.should_keep_alive() and body != UNTIL_CLOSE)

    def on_body(self, data: bytes) -> None:
        handler = self._handler
        if self.ended or handler is None:
            self.stray = True  # a body after a HEAD answer (or after the reader was closed)
            raise _Stop
        handler.on_response_data(data)

    def on_message_complete(self) -> None:
        if not self._final:
            self._begin()  # after a 1xx the final response follows
        elif not self.ended and self._status != 101:
            self._end()

    def _end(self) -> None:
        self.ended = True
        handler = self._handler
        if handler is not None:
            handler.on_response_end()
