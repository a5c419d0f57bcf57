"""The target side of an exchange: choosing and connecting to a target, sending the request
on, and relaying the response (``Exchange`` is ``Forwarding`` plus the client side).

A connection refused by a target is retried on another target of the group; when the
refusing target is in ``initial`` state (registered before its server listens, as when a
service scales from zero) the request waits for the next health decision instead (up to
the 10 s connect timeout), since nothing of it was sent. A pooled connection that the
target had closed as it was reused is retried once, on a new connection, for a bodiless
idempotent request. Response bytes are written to the client in one send per target read.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ship.localcloud.alb import rewrite, rules
from ship.localcloud.alb.framing import (CHUNKED, LENGTH, NO_BODY, UNTIL_CLOSE, ProtocolError, RequestHead,
                                         ResponseFraming, ResponseHead)
from ship.localcloud.alb.routing import Route, Router
from ship.localcloud.alb.targets import Target, TargetGroup, TargetKey
from ship.localcloud.alb.upstream import Cancel, Upstream

if TYPE_CHECKING:
    from ship.localcloud.alb.client import ClientConnection
    from ship.localcloud.alb.listener import Listener

log = logging.getLogger("ship.localcloud.alb")

_IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS"})
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
LAST_CHUNK = b"0\r\n\r\n"
# Phases of an exchange (for the idle sweeper and for which callbacks are expected).
ROUTING, CONNECTING, HOLDING, WAITING, DONE = range(5)


class Forwarding:
    """Methods of ``Exchange`` that talk to the target, and the state of the whole exchange
    (declared here, set by ``Exchange.__init__``)."""

    __slots__ = ("conn", "listener", "router", "head", "req", "route", "target", "in_flight", "up", "cancel_connect",
                 "reader", "upstream_head", "pending", "req_done", "sent_all", "blocked", "responded", "framing",
                 "keep", "close_target", "resp_keep", "reused", "retried", "tried", "phase", "deadline",
                 "expect_continue", "status", "attempt", "hold_until")

    conn: ClientConnection
    listener: Listener
    router: Router
    head: RequestHead
    req: rewrite.Request
    route: Route | None  # once routed
    target: Target | None  # the target being tried
    in_flight: TargetKey | None  # counted in the router's in-flight requests
    up: Upstream | None  # the target connection
    cancel_connect: Cancel | None  # while a connection is being opened
    reader: ResponseFraming | None  # the target's response
    upstream_head: bytes  # the request head as the target gets it
    pending: list[bytes]  # body pieces received before the target connection was there
    req_done: bool  # the whole request has come from the client
    sent_all: bool  # ... and has been handed to the target connection
    blocked: bool  # the target connection's write buffer is full
    responded: bool  # a response byte went to the client
    framing: int  # how the response body goes to the client (framing.NO_BODY, ...)
    keep: bool  # the client connection may carry another request
    close_target: bool  # the target connection must not be reused (desync mitigation)
    resp_keep: bool  # the target said its connection may be reused
    reused: bool  # the target connection came from the pool
    retried: bool  # sent once more on a new connection after a pooled one failed
    tried: set[TargetKey] | None  # targets that refused the connection
    phase: int  # ROUTING, CONNECTING, HOLDING, WAITING or DONE
    deadline: float  # of CONNECTING or HOLDING (monotonic)
    expect_continue: bool  # a 100 Continue is owed to the client
    status: int  # of the response, 0 until it came
    attempt: int  # connection attempts so far
    hold_until: float  # how long a refused request may wait for the health check (monotonic), 0 if not

    if TYPE_CHECKING:  # the client side, in Exchange
        def answer_error(self, status: int, why: str) -> None: ...

        def finish(self, notify: bool = True) -> None: ...

    # -- routing and connecting -----------------------------------------------------

    def forward(self, action: rules.Forward) -> None:
        route = self.route = self.router.route(action, self.req)
        if route.target is None:
            return self.answer_error(503, "no target to route to")
        listener = self.listener
        cfg = self.router.config
        self.upstream_head = rewrite.target_head(
            self.req, self.conn.ip_bytes, listener.forwarded_line, rewrite.trace_id(listener.epoch, self.req.trace),
            cfg.default_host.encode(), cfg.drop_invalid_header_fields)
        self.expect_continue = self.req.expect is not None and self.head.body != NO_BODY and self.head.version == "1.1"
        self.connect(route.target, fresh=False)

    def connect(self, target: Target, fresh: bool) -> None:
        self.target = target
        self.in_flight = self.router.begin(target)
        key = self.in_flight
        listener = self.listener
        up = None if fresh else listener.pool.take(key, listener.now())
        if up is not None:
            return self.attach(up, reused=True)
        self.phase = CONNECTING
        self.deadline = listener.now() + listener.connect_timeout
        self.attempt = attempt = self.attempt + 1
        connector = listener.connector
        if connector is None:  # the listener is not serving
            return self.answer_error(503, "the listener is not serving")
        cancel = connector.open(key, self.connected)
        if self.phase == CONNECTING and self.attempt == attempt:  # still pending (not answered at once)
            self.cancel_connect = cancel

    def connected(self, result: Upstream | OSError) -> None:
        self.cancel_connect = None
        if self.phase != CONNECTING:
            if isinstance(result, Upstream):
                result.close()
            return
        if isinstance(result, OSError):
            return self.connect_failed(result)
        self.attach(result, reused=False)

    def attach(self, up: Upstream, reused: bool) -> None:
        self.up = up
        self.reused = reused
        up.handler = self
        up.resume_reading()
        if self.reader is not None:  # a retry: the previous attempt's reader
            self.reader.close()
        self.reader = self.listener.response_reader(self, self.head.method == b"HEAD")
        self.phase = WAITING
        if self.expect_continue:
            self.expect_continue = False
            self.conn.write(_CONTINUE)
        data = self.upstream_head
        if self.pending:
            chunked = self.head.body == CHUNKED
            data += b"".join(b"%x\r\n%b\r\n" % (len(p), p) if chunked else p for p in self.pending)
            self.pending = []
        if self.req_done:
            if self.head.body == CHUNKED:
                data += LAST_CHUNK
            self.sent_all = True
        elif self.head.body != NO_BODY:
            up.set_nodelay()  # the body follows in pieces
        if not up.write(data):
            self.blocked = True
        self.conn.pump()

    def connect_failed(self, exc: OSError) -> None:
        listener = self.listener
        listener.count("connect_errors")
        key = self.in_flight
        if key is None:  # not connecting
            return
        self.router.end(key)
        self.in_flight = None
        self.tried = tried = (self.tried or set()) | {key}
        group = self._current_group()
        alt = self.router.pick(group, avoid=tried) if group is not None else None
        if alt is not None:
            listener.count("retries")
            return self.connect(alt, fresh=False)
        if any(self.router.target_state(k) == "initial" for k in tried):
            # Registered before it listens: nothing was sent, wait for the health check's word
            # (at most the connect timeout in all, however often the targets change meanwhile).
            now = listener.now()
            if not self.hold_until:
                self.hold_until = now + listener.connect_timeout
            if now < self.hold_until:
                self.phase = HOLDING
                self.deadline = self.hold_until
                listener.hold(self)
                return
        log.info("listener %s: target %s:%s refused the connection: %s", listener.name, key[0], key[1], exc)
        self.answer_error(502, "target refused the connection")

    def _current_group(self) -> TargetGroup | None:
        """The routed target group as the listener's configuration has it now."""
        routed = self.route.group if self.route is not None else None
        return self.router.config.groups.get(routed.arn) if routed is not None else None

    def retry_held(self) -> None:
        """The targets changed while this request waited: try again."""
        if self.phase != HOLDING:
            return
        group = self._current_group()
        target = self.router.pick(group) if group is not None else None
        if target is not None:
            self.listener.unhold(self)
            self.tried = None
            self.connect(target, fresh=False)

    # -- from the target ------------------------------------------------------------

    def upstream_data(self, up: Upstream, data: bytes) -> None:
        conn = self.conn
        conn.last = self.listener.now()
        reader = self.reader
        if reader is None:  # finished: nothing more is read from this connection
            return
        conn.batching = True  # the head and body of a small response leave in one send
        try:
            reader.feed(data)
        except ProtocolError as exc:
            conn.flush()
            return self.target_failed(exc.status, str(exc))
        if reader.ended and self.framing == CHUNKED:
            conn.write(LAST_CHUNK)
        conn.flush()
        if reader.switched is not None:
            return conn.start_tunnel(self, up, reader.switched)
        if reader.ended:
            self.finish()
        elif conn.write_paused and self.up is not None:
            self.up.pause_reading()

    def upstream_eof(self, up: Upstream) -> None:
        self.resp_keep = False
        reader = self.reader
        if reader is None:
            return
        try:
            reader.eof()
        except ProtocolError as exc:
            return self.target_failed(exc.status, str(exc))
        if reader.ended:
            self.response_complete()

    def upstream_error(self, up: Upstream, exc: OSError) -> None:
        self.target_failed(502, f"target connection failed: {exc}")

    def upstream_drained(self, up: Upstream) -> None:
        if self.blocked:
            self.blocked = False
            self.conn.pump()

    def on_interim(self, resp: ResponseHead) -> None:
        if resp.status != 100 and self.head.version == "1.1":  # 102/103 are relayed; 100 was ours to send
            self.conn.write(rewrite.client_head(resp, NO_BODY, True, True))
            self.responded = True

    def on_response(self, resp: ResponseHead) -> None:
        if resp.status == 101 and not self.req.websocket:
            raise ProtocolError(502, "the target switched protocols unasked")
        v11 = self.head.version == "1.1"
        body = resp.body
        framing = body if body in (NO_BODY, LENGTH) else CHUNKED if v11 else UNTIL_CLOSE
        self.framing = framing
        self.resp_keep = resp.keep_alive
        self.status = resp.status
        self.listener.count_response(resp.status, self.in_flight)
        cookies = self.route.cookies if self.route is not None else ()
        self.conn.write(rewrite.client_head(resp, framing, v11, self.keep and framing != UNTIL_CLOSE, cookies))
        self.responded = True

    def on_response_data(self, data: bytes) -> None:
        conn = self.conn
        if self.framing == CHUNKED:
            conn.write(b"%x\r\n%b\r\n" % (len(data), data))
        else:
            conn.write(data)

    def finish_tunnelled(self) -> None:
        """The connection became a tunnel (a 101): this exchange is over, its target connection lives on."""
        self.phase = DONE
        if self.in_flight is not None:
            self.router.end(self.in_flight)
            self.in_flight = None

    def on_response_end(self) -> None:
        """Nothing to do here: the end is acted on once the reader has seen all it was fed."""

    def response_complete(self) -> None:
        if self.framing == CHUNKED:
            self.conn.write(LAST_CHUNK)
        self.finish()

    def target_failed(self, status: int, why: str) -> None:
        """The target closed, reset or garbled the exchange before its response was complete."""
        up = self.up
        self.up = None
        if up is not None:
            up.close()
        nothing_back = not self.responded and self.status == 0
        target, key = self.target, self.in_flight
        if (nothing_back and self.reused and not self.retried and self.head.body == NO_BODY
                and self.head.method in _IDEMPOTENT and target is not None and key is not None):
            # A pooled connection the target closed as it was reused: the request was not
            # processed. Send it once more, on a new connection to the same target.
            self.retried = True
            self.listener.count("retries")
            self.router.end(key)
            return self.connect(target, fresh=True)
        log.info("listener %s: %s", self.listener.name, why)
        if self.responded:
            self.keep = False
            self.conn.abort()
            return self.finish()
        self.answer_error(status, why)
