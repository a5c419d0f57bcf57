"""The same readers as ``framing``, on h11 (python-hyper) instead of llhttp.

Kept so that ``benchmarks/lb_overhead.py`` can measure both parsers in one run
(``Listener(parser="h11")``). The listener's supported framing is ``framing``
(httptools): the conformance suite runs on it. h11 frames as h11 does (it accepts
bare-LF line endings, for one); the ALB rules applied on top are the same.
"""

from __future__ import annotations

from typing import Iterable

import h11

from ship.localcloud.alb.framing import (
    CHUNKED, HEADERS_LIMIT, LENGTH, NO_BODY, REQUEST_LINE_LIMIT, UNTIL_CLOSE, ProtocolError, RequestHandler,
    RequestHead, ResponseHandler, ResponseHead, content_length, request_body_framing, transfer_codings,
)

__all__ = ["RequestReader", "ResponseReader"]

_LIMIT = REQUEST_LINE_LIMIT + HEADERS_LIMIT + 4


def _tokens(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> set[bytes]:
    out: set[bytes] = set()
    for n, v in headers:
        if n.lower() == name:
            out.update(t.strip().lower() for t in v.split(b","))
    return out


class RequestReader:
    __slots__ = ("_handler", "_conn", "done", "_started")

    def __init__(self, handler: RequestHandler):
        self._handler: RequestHandler | None = handler  # None once closed
        self._conn = h11.Connection(h11.SERVER, max_incomplete_event_size=_LIMIT)
        self.done = False
        self._started = False

    @property
    def busy(self) -> bool:
        return self._started or bool(self._conn.trailing_data[0])

    def rest(self) -> bytes:
        """What h11 holds beyond the current request (the start of a tunnel after an upgrade)."""
        data = self._conn.trailing_data[0]
        self._conn = h11.Connection(h11.SERVER, max_incomplete_event_size=_LIMIT)
        return data

    def close(self) -> None:
        self._handler = None
        self.done = True

    def feed(self, buf: bytes | bytearray) -> int:
        if self.done:
            return 0
        self._conn.receive_data(bytes(buf))
        self._events()
        return len(buf)

    def next_request(self) -> None:
        self.done = False
        rest, closed = self._conn.trailing_data
        self._conn = h11.Connection(h11.SERVER, max_incomplete_event_size=_LIMIT)
        if rest:
            self._conn.receive_data(rest)
        self._events()

    def _events(self) -> None:
        conn, handler = self._conn, self._handler
        while not self.done and handler is not None:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise ProtocolError(exc.error_status_hint or 400, f"malformed request: {exc}") from None
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Request):
                self._started = True
                handler.on_request(self._head(event))
            elif isinstance(event, h11.Data):
                handler.on_request_data(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self._started = False
                self.done = True
                handler.on_request_end()
            else:
                return

    def _head(self, event: h11.Request) -> RequestHead:
        headers = list(event.headers.raw_items())
        version = event.http_version.decode()
        lengths = [v for n, v in headers if n.lower() == b"content-length"]
        codings = transfer_codings([v for n, v in headers if n.lower() == b"transfer-encoding"])
        length = content_length(lengths)
        body = request_body_framing(codings, length)
        connection = _tokens(headers, b"connection")
        keep = b"close" not in connection if version == "1.1" else b"keep-alive" in connection
        upgrade = event.method == b"CONNECT" or (b"upgrade" in connection and bool(_tokens(headers, b"upgrade")))
        if body == NO_BODY:
            length = -1 if length < 0 else 0
        return RequestHead(event.method, event.target, version, headers, body,
                           length if body != CHUNKED else -1, keep, upgrade)


class ResponseReader:
    __slots__ = ("_handler", "_conn", "_head_request", "_skipped", "ended", "stray", "switched")

    def __init__(self, handler: ResponseHandler, head_request: bool):
        self._handler: ResponseHandler | None = handler  # None once closed
        self._head_request = head_request
        conn = self._conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=64 * 1024)
        # h11 frames a response by the request it answers: tell it the method, and allow an upgrade.
        conn.send(h11.Request(method=b"HEAD" if head_request else b"GET", target=b"/",
                              headers=[(b"Host", b"target"), (b"Connection", b"upgrade"), (b"Upgrade", b"websocket")]))
        conn.send(h11.EndOfMessage())
        self._skipped = False
        self.ended = False
        self.stray = False
        self.switched: bytes | None = None

    def close(self) -> None:
        self._handler = None

    @property
    def reusable(self) -> bool:
        return self.ended and not self.stray and not self._skipped

    def feed(self, data: bytes) -> None:
        if self.ended or self.switched is not None:
            self.stray = self.stray or bool(data)
            return
        self._conn.receive_data(bytes(data))
        self._events()

    def eof(self) -> None:
        if self.ended or self.switched is not None:
            return
        self._conn.receive_data(b"")
        self._events()
        if not self.ended:
            raise ProtocolError(502, "the target closed the connection before the response was complete")

    def _events(self) -> None:
        conn, handler = self._conn, self._handler
        while not self.ended and handler is not None:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise ProtocolError(502, f"malformed response from the target: {exc}") from None
            if event is h11.NEED_DATA:
                return
            if event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
                if conn.their_state is h11.SWITCHED_PROTOCOL:
                    self.switched = conn.trailing_data[0]
                return
            if isinstance(event, h11.InformationalResponse):
                head = self._head(event, NO_BODY, -1)
                if event.status_code == 101:
                    handler.on_response(head)
                else:
                    handler.on_interim(head)
            elif isinstance(event, h11.Response):
                handler.on_response(self._final(event))
            elif isinstance(event, h11.Data):
                handler.on_response_data(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self.ended = True
                self.stray = bool(conn.trailing_data[0])
                handler.on_response_end()

    def _head(self, event: h11.Response | h11.InformationalResponse, body: int, length: int) -> ResponseHead:
        return ResponseHead(event.status_code, event.reason, event.http_version.decode(),
                            list(event.headers.raw_items()), body, length, True)

    def _final(self, event: h11.Response) -> ResponseHead:
        headers = list(event.headers.raw_items())
        try:
            length = content_length([v for n, v in headers if n.lower() == b"content-length"])
        except ProtocolError as exc:
            raise ProtocolError(502, exc.reason) from None
        codings = transfer_codings([v for n, v in headers if n.lower() == b"transfer-encoding"])
        if self._head_request or event.status_code in (204, 304):
            body = NO_BODY
            self._skipped = length > 0 or bool(codings)
        elif codings:
            body, length = CHUNKED, -1
        elif length >= 0:
            body = LENGTH if length else NO_BODY
        else:
            body = UNTIL_CLOSE
        keep = b"close" not in _tokens(headers, b"connection") and event.http_version == b"1.1"
        head = self._head(event, body, length)
        head.keep_alive = keep and body != UNTIL_CLOSE
        return head
