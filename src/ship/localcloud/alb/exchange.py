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
from typing import TYPE_CHECKING

from ship.localcloud.alb import desync, pages, rewrite, rules
from ship.localcloud.alb.forwarding import CONNECTING, DONE, HOLDING, LAST_CHUNK, ROUTING, WAITING, Forwarding
from ship.localcloud.alb.framing import CHUNKED, NO_BODY, UNTIL_CLOSE, RequestHead

if TYPE_CHECKING:
    from ship.localcloud.alb.client import ClientConnection

log = logging.getLogger("ship.localcloud.alb")

_DESYNC_COUNTERS = tuple("desync_" + t.lower() for t in desync.TIERS)  # requests that were not Compliant
_VERSIONS = {"1.1": b"HTTP/1.1", "1.0": b"HTTP/1.0"}


class Exchange(Forwarding):
    __slots__ = ()  # the state is declared in Forwarding

    def __init__(self, conn: ClientConnection, head: RequestHead):
        self.conn = conn
        self.listener = conn.listener
        self.router = conn.listener.router
        self.head = head
        self.req = rewrite.inspect(head)
        self.route = None
        self.target = None
        self.in_flight = None
        self.up = None
        self.cancel_connect = None
        self.reader = None
        self.upstream_head = b""
        self.pending = []
        self.req_done = head.body == NO_BODY
        self.sent_all = False
        self.blocked = False
        self.responded = False
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
        self.hold_until = 0.0

    # -- from the client ----------------------------------------------------------

    def start(self) -> None:
        head = self.head
        req = self.req
        refused = rewrite.refusal(req)
        if refused is not None:
            return self.answer_error(refused[0], refused[1])
        verdict = desync.classify(head.method, head.target, _VERSIONS.get(head.version) or head.version.encode(),
                                  head.headers, chars_checked=True)
        if verdict.tier:
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

    def request_data(self, data: bytes) -> None:
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
                self.up.write(LAST_CHUNK)
            self.sent_all = True

    def wants_body(self) -> bool:
        """Whether the client connection may feed more of the request body now."""
        return self.phase == WAITING and not self.blocked and self.up is not None

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
        reader, self.reader = self.reader, None
        if up is not None:
            clean = reader is not None and reader.reusable and self.sent_all and not up.closed
            if clean and self.resp_keep and not self.close_target:
                listener.pool.put(up, listener.now())
            elif clean and not self.resp_keep:
                listener.pool.linger(up, listener.now())  # it said Connection: close: let it close first
            else:
                up.close()
        if reader is not None:
            reader.close()
        if notify:
            self.conn.exchange_done(self.keep and self.req_done and self.framing != UNTIL_CLOSE)

    def client_gone(self) -> None:
        """The client connection is gone or broken: drop everything, tell nobody."""
        self.keep = False
        self.resp_keep = False
        self.finish(notify=False)
