"""One request's way through the balancer: checks, rule, target, upstream, response.

An ``Exchange`` is driven by callbacks: the client connection hands it the request
head, body pieces and end (from its ``RequestReader``); the target connection hands it
bytes, which its ``ResponseReader`` turns into the response head, body and end. It
answers by itself what an ALB answers by itself (``pages``), forwards the rest, and
ends with ``conn.exchange_done(keep_alive)``.

Failures map to ALB's answers: no routable target 503; a target that refuses,
resets or answers garbage 502; a target silent past the idle timeout, or no
connection within the 10 s connect timeout, 504. A refused connection is retried on
another target; when the refusing target is still in ``initial`` state (registered
before its server listens, as when scaling from zero) the request waits for the next
health decision instead, since nothing of it was sent.
"""

from __future__ import annotations

import logging

from ship.localcloud.alb import desync, pages, rewrite, rules
from ship.localcloud.alb.framing import CHUNKED, LENGTH, NO_BODY, UNTIL_CLOSE, ProtocolError

log = logging.getLogger("ship.localcloud.alb")

_IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS"})
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_LAST_CHUNK = b"0\r\n\r\n"
_DESYNC_COUNTERS = tuple("desync_" + t.lower() for t in desync.TIERS)
# Phases (for the idle sweeper and for which callbacks are expected).
ROUTING, CONNECTING, HOLDING, WAITING, DONE = range(5)


class Exchange:
    __slots__ = ("conn", "listener", "router", "head", "req", "route", "target", "in_flight", "up", "cancel_connect",
                 "reader", "upstream_head", "pending", "req_done", "sent_all", "blocked", "responded", "framing",
                 "keep", "close_target", "resp_keep", "reused", "retried", "tried", "phase", "deadline",
                 "expect_continue", "status", "attempt")

    def __init__(self, conn, head):
        self.conn = conn
        self.listener = conn.listener
        self.router = conn.listener.router
        self.head = head
        self.req = None
        self.route = None
        self.target = None
        self.in_flight = None
        self.up = None
        self.cancel_connect = None
        self.reader = None
        self.upstream_head = b""
        self.pending: list = []
        self.req_done = head.body == NO_BODY  # the whole request has come from the client
        self.sent_all = False  # ... and has been handed to the target connection
        self.blocked = False
        self.responded = False  # a response byte went to the client
        self.framing = NO_BODY
        self.keep = head.keep_alive
        self.close_target = False
        self.resp_keep = False
        self.reused = False
        self.retried = False
        self.tried = None
        self.phase = ROUTING
        self.deadline = 0.0
        self.expect_continue = False
        self.status = 0
        self.attempt = 0

    # -- from the client ----------------------------------------------------------

    def start(self) -> None:
        head = self.head
        req = self.req = rewrite.inspect(head)
        refused = rewrite.refusal(req)
        if refused is not None:
            return self.answer_error(refused[0], refused[1])
        verdict = desync.classify(head.method, head.target, b"HTTP/" + head.version.encode(), head.headers)
        self.listener.count(_DESYNC_COUNTERS[verdict.tier])
        act = desync.action(self.router.config.desync_mode, verdict.tier)
        if act == desync.REJECT:
            return self.answer_error(400, f"desync mitigation: {verdict.name} ({verdict.reason})")
        if act == desync.FORWARD_THEN_CLOSE:
            self.keep = False
            self.close_target = True
        action = self.router.action(req, self.conn.ip)
        if isinstance(action, rules.Forward):
            return self.forward(action)
        if isinstance(action, rules.FixedResponse):
            return self.answer(action.status, pages.fixed_response(
                action.status, action.content_type, action.body, self._keep_after_answer(), head.method == b"HEAD"))
        if isinstance(action, rules.Redirect):
            cfg = self.router.config
            location = rules.redirect_location(action, req, cfg.protocol, cfg.listener_port)
            return self.answer(action.status, pages.redirect_response(
                action.status, location, self._keep_after_answer(), head.method == b"HEAD"))
        return self.answer_error(503, "no rule matched")

    def request_data(self, data) -> None:
        if self.phase == DONE:
            return
        up = self.up
        if up is None or self.phase != WAITING:
            self.pending.append(data)
            return
        if self.head.body == CHUNKED:
            data = b"%x\r\n%b\r\n" % (len(data), data)
        if not up.write(data):
            self.blocked = True

    def request_end(self) -> None:
        if self.req_done:
            return
        self.req_done = True
        if self.phase == WAITING and self.up is not None:
            if self.head.body == CHUNKED:
                self.up.write(_LAST_CHUNK)
            self.sent_all = True

    def wants_body(self) -> bool:
        """Whether the client connection may feed more of the request body now."""
        return self.phase == WAITING and not self.blocked and self.up is not None

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
                data += _LAST_CHUNK
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
            # Registered before it listens: nothing was sent, wait for the health check's word.
            self.phase = HOLDING
            self.deadline = listener.now() + listener.connect_timeout
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
            conn.write(_LAST_CHUNK)
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
            self.conn.write(_LAST_CHUNK)
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

    # -- answers and the end ----------------------------------------------------------

    def _keep_after_answer(self) -> bool:
        return self.keep and self.head.body == NO_BODY  # an unread body cannot be skipped safely

    def answer(self, status: int, data: bytes) -> None:
        self.keep = self._keep_after_answer()
        self.listener.count_response(status, None)
        self.conn.write(data)
        self.responded = True
        self.finish()

    def answer_error(self, status: int, why: str) -> None:
        self.listener.count(str(status))
        if status in (400, 408):
            log.info("listener %s: %d to %s: %s", self.listener.name, status, self.conn.ip, why)
            self.keep = False
        self.answer(status, pages.error_page(status, self._keep_after_answer()))

    def check(self, now: float, idle: float) -> None:
        """The listener's sweeper: timeouts."""
        phase = self.phase
        if phase == CONNECTING and now > self.deadline:
            cancel, self.cancel_connect = self.cancel_connect, None
            if cancel is not None:
                cancel()
            self.answer_error(504, "no connection to the target within the connect timeout")
        elif phase == HOLDING and now > self.deadline:
            self.listener.unhold(self)
            self.answer_error(502, "target refused the connection")
        elif phase == WAITING and now - self.conn.last > idle:
            if self.responded:
                self.keep = False
                self.conn.abort()
                self.finish()
            else:
                self.answer_error(504 if self.req_done else 408, "idle timeout")

    def finish_tunnelled(self) -> None:
        """The connection became a tunnel (a 101): this exchange is over, its target connection lives on."""
        self.phase = DONE
        if self.in_flight is not None:
            self.router.end(self.in_flight)
            self.in_flight = None

    def finish(self, notify: bool = True) -> None:
        """Release the target connection (to the pool when it can serve again) and tell the client side."""
        if self.phase == DONE:
            return
        self.phase = DONE
        listener = self.listener
        if self.in_flight is not None:
            self.router.end(self.in_flight)
            self.in_flight = None
        cancel, self.cancel_connect = self.cancel_connect, None
        if cancel is not None:
            cancel()
        listener.unhold(self)
        up, self.up = self.up, None
        if up is not None:
            reader = self.reader
            if (self.resp_keep and self.sent_all and not self.close_target and reader is not None
                    and reader.reusable and not up.closed):
                listener.pool.put(up, listener.now())
            else:
                up.close()
        if notify:
            self.conn.exchange_done(self.keep and self.req_done and self.framing != UNTIL_CLOSE)

    def client_gone(self) -> None:
        """The client connection is gone or broken: drop everything, tell nobody."""
        self.keep = False
        self.resp_keep = False
        self.finish(notify=False)
