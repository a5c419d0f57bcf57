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

from ship.localcloud.alb import rewrite, rules
from ship.localcloud.alb.framing import CHUNKED, LENGTH, NO_BODY, UNTIL_CLOSE, ProtocolError

log = logging.getLogger("ship.localcloud.alb")

_IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS"})
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
LAST_CHUNK = b"0\r\n\r\n"
# Phases of an exchange (for the idle sweeper and for which callbacks are expected).
ROUTING, CONNECTING, HOLDING, WAITING, DONE = range(5)


class Forwarding:
    """Methods of ``Exchange`` that talk to the target (state lives in Exchange's slots)."""

    __slots__ = ()

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

    def connect(self, target, fresh: bool) -> None:
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
        cancel = listener.connector.open(key, self.connected)
        if self.phase == CONNECTING and self.attempt == attempt:  # still pending (not answered at once)
            self.cancel_connect = cancel

    def connected(self, up, exc) -> None:
        self.cancel_connect = None
        if self.phase != CONNECTING:
            if up is not None:
                up.close()
            return
        if exc is not None:
            return self.connect_failed(exc)
        self.attach(up, reused=False)

    def attach(self, up, reused: bool) -> None:
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
        self.router.end(key)
        self.in_flight = None
        self.tried = tried = (self.tried or set()) | {key}
        group = self.router.config.groups.get(self.route.group.arn)
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

    def retry_held(self) -> None:
        """The targets changed while this request waited: try again."""
        if self.phase != HOLDING:
            return
        group = self.router.config.groups.get(self.route.group.arn)
        target = self.router.pick(group) if group is not None else None
        if target is not None:
            self.listener.unhold(self)
            self.tried = None
            self.connect(target, fresh=False)

    # -- from the target ------------------------------------------------------------

    def upstream_data(self, up, data) -> None:
        conn = self.conn
        conn.last = self.listener.now()
        reader = self.reader
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

    def upstream_eof(self, up) -> None:
        self.resp_keep = False
        try:
            self.reader.eof()
        except ProtocolError as exc:
            return self.target_failed(exc.status, str(exc))
        if self.reader.ended:
            self.response_complete()

    def upstream_error(self, up, exc) -> None:
        self.target_failed(502, f"target connection failed: {exc}")

    def upstream_drained(self, up) -> None:
        if self.blocked:
            self.blocked = False
            self.conn.pump()

    def on_interim(self, resp) -> None:
        if resp.status != 100 and self.head.version == "1.1":  # 102/103 are relayed; 100 was ours to send
            self.conn.write(rewrite.client_head(resp, NO_BODY, True, True))
            self.responded = True

    def on_response(self, resp) -> None:
        if resp.status == 101 and not self.req.websocket:
            raise ProtocolError(502, "the target switched protocols unasked")
        v11 = self.head.version == "1.1"
        body = resp.body
        framing = body if body in (NO_BODY, LENGTH) else CHUNKED if v11 else UNTIL_CLOSE
        self.framing = framing
        self.resp_keep = resp.keep_alive
        self.status = resp.status
        self.listener.count_response(resp.status, self.in_flight)
        self.conn.write(rewrite.client_head(resp, framing, v11, self.keep and framing != UNTIL_CLOSE,
                                            self.route.cookies))
        self.responded = True

    def on_response_data(self, data) -> None:
        conn = self.conn
        if self.framing == CHUNKED:
            conn.write(b"%x\r\n%b\r\n" % (len(data), data))
        else:
            conn.write(data)

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
        if (nothing_back and self.reused and not self.retried and self.head.body == NO_BODY
                and self.head.method in _IDEMPOTENT):
            # A pooled connection the target closed as it was reused: the request was not
            # processed. Send it once more, on a new connection to the same target.
            self.retried = True
            self.listener.count("retries")
            self.router.end(self.in_flight)
            return self.connect(self.target, fresh=True)
        log.info("listener %s: %s", self.listener.name, why)
        if self.responded:
            self.keep = False
            self.conn.abort()
            return self.finish()
        self.answer_error(status, why)
