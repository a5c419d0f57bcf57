"""A listener's life: a loopback port, an event loop thread, its connections and timers.

``Listener`` serves one ALB listener on a local port. Its configuration
(``ListenerConfig``: rules, target groups and their targets, the load balancer's
attributes) is replaced whole with ``configure`` from any thread and takes effect
for the next request. ``adopt`` hands it a connection accepted elsewhere (the
emulator's port, for host-named URLs). ``request_counts`` may be called from any
thread.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any, Callable, Iterable

from ship.localcloud.alb import framing
from ship.localcloud.alb.client import ClientConnection
from ship.localcloud.alb.forwarding import Forwarding
from ship.localcloud.alb.framing import RequestFraming, RequestHandler, ResponseFraming, ResponseHandler
from ship.localcloud.alb.reactor import READ, Reactor, Stream, listening_socket, set_nodelay
from ship.localcloud.alb.routing import DEFAULT_GROUP, ListenerConfig, Router
from ship.localcloud.alb.targets import Target, TargetKey
from ship.localcloud.alb.upstream import Connector, Pool

log = logging.getLogger("ship.localcloud.alb")

__all__ = ["Listener", "PARSERS"]

PARSERS = ("httptools", "h11")
_STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
_COUNTERS = ("connections", "requests", "1xx", "2xx", "3xx", "4xx", "5xx", "400", "405", "408", "417", "463",
             "501", "502", "503", "504", "505", "retries", "connect_errors", "websockets", "desync_acceptable",
             "desync_ambiguous", "desync_severe")


RequestReaderFactory = Callable[[RequestHandler], RequestFraming]
ResponseReaderFactory = Callable[[ResponseHandler, bool], ResponseFraming]  # (handler, answers a HEAD)


def _codec(parser: str) -> tuple[RequestReaderFactory, ResponseReaderFactory]:
    if parser == "httptools":
        return framing.RequestReader, framing.ResponseReader
    if parser == "h11":
        from ship.localcloud.alb import framing_h11

        return framing_h11.RequestReader, framing_h11.ResponseReader
    raise ValueError(f"parser {parser!r} is not one of {', '.join(PARSERS)}")


class Listener:
    def __init__(self, config: ListenerConfig | None = None, host: str = "127.0.0.1", port: int = 0, *,
                 parser: str = "httptools", connect_timeout: float = 10.0, name: str = ""):
        self.request_reader, self.response_reader = _codec(parser)
        self.parser = parser
        self.host = host
        self.name = name or f"{host}:{port}"
        self.connect_timeout = float(connect_timeout)
        self.router = Router(config or ListenerConfig())
        self._requested_port = int(port)
        self._bound_port: int | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._reactor: Reactor | None = None
        self._server: socket.socket | None = None
        self._stopping = False
        self.clients: set[ClientConnection] = set()
        self.pool = Pool(keepalive=self.router.config.idle_timeout)
        self.connector: Connector | None = None  # from start() on
        self._held: set[Forwarding] = set()  # requests waiting for a health decision
        self._stats = dict.fromkeys(_COUNTERS, 0)
        self._per_target: dict[TargetKey, int] = {}  # responses per target
        self.epoch = int(time.time())
        self.forwarded_line = b""
        self._apply(self.router.config)

    # -- any thread ------------------------------------------------------------------

    @property
    def port(self) -> int | None:
        return self._bound_port

    @property
    def config(self) -> ListenerConfig:
        return self.router.config

    def start(self) -> None:
        """Bind and serve on a thread of its own (OSError when the port is taken)."""
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("listener already started")
            server = listening_socket(self.host, self._requested_port)
            self._bound_port = server.getsockname()[1]
            self._server = server
            reactor = self._reactor = Reactor()
            self.connector = Connector(reactor)
            reactor.add(server.fileno(), READ, self._accept)
            self._stopping = False
            thread = threading.Thread(target=self._run, args=(reactor,), daemon=True,
                                      name=f"alb-listener-{self.router.config.listener_port}")
            thread.start()
            self._thread = thread
        log.info("listener %s serving on %s:%s (%s)", self.name, self.host, self._bound_port, self.parser)

    def stop(self) -> None:
        """Close the port and every connection; idempotent."""
        with self._lock:
            thread, self._thread = self._thread, None
            reactor = self._reactor
        if thread is None or reactor is None:
            return
        reactor.call_soon_threadsafe(self._shutdown)
        thread.join(timeout=30)
        if thread.is_alive():  # pragma: no cover - would be a bug
            log.error("listener %s: thread did not stop", self.name)

    def configure(self, config: ListenerConfig) -> None:
        """Serve by ``config`` from the next request on."""
        if config == self.router.config:
            return
        self._apply(config)
        reactor = self._reactor
        if self._thread is not None and reactor is not None:
            reactor.call_soon_threadsafe(self._config_changed)

    def set_targets(self, targets: Iterable[Target], group: str = DEFAULT_GROUP) -> None:
        """Replace one target group's targets (the default group of a default configuration)."""
        self.configure(self.router.config.with_targets(group, targets))

    def adopt(self, sock: socket.socket) -> None:
        """Serve a connection accepted elsewhere, as if it had arrived on this listener's port."""
        reactor = self._reactor
        if self._thread is None or reactor is None:
            sock.close()
            raise RuntimeError("listener not started")
        reactor.call_soon_threadsafe(self._serve, sock)

    def request_counts(self) -> dict[str, int]:
        return self.router.request_counts()

    def stats(self) -> dict[str, Any]:
        s: dict[str, Any] = dict(self._stats)
        s["targets"] = {f"{h}:{p}": n for (h, p), n in dict(self._per_target).items()}
        s["open_client_connections"] = len(self.clients)
        s["idle_upstream_connections"] = self.pool.idle_count()
        s["upstream_reused"] = self.pool.reused
        s["upstream_connects"] = self.connector.connects if self.connector else 0
        s["in_flight"] = {f"{h}:{p}": n for (h, p), n in dict(self.router.in_flight).items()}
        return s

    def __enter__(self) -> "Listener":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _apply(self, config: ListenerConfig) -> None:
        self.router.config = config
        self.pool.keepalive = config.idle_timeout
        self.forwarded_line = b"X-Forwarded-Proto: %s\r\nX-Forwarded-Port: %d" % (
            config.protocol.lower().encode(), config.listener_port)

    # -- loop thread -------------------------------------------------------------------

    now = staticmethod(time.monotonic)

    def count(self, key: str) -> None:
        stats = self._stats
        stats[key] = stats.get(key, 0) + 1

    def count_response(self, status: int, target_key: TargetKey | None) -> None:
        self._stats[_STATUS_CLASSES[status // 100 - 1]] += 1
        if target_key is not None:
            self._per_target[target_key] = self._per_target.get(target_key, 0) + 1

    def client_opened(self, conn: ClientConnection) -> None:
        self.clients.add(conn)
        self._stats["connections"] += 1
        if self._stopping:
            conn.abort()

    def client_closed(self, conn: ClientConnection) -> None:
        self.clients.discard(conn)

    def hold(self, exchange: Forwarding) -> None:
        self._held.add(exchange)

    def unhold(self, exchange: Forwarding) -> None:
        self._held.discard(exchange)

    def _config_changed(self) -> None:
        self.pool.expire(self.now(), self.router.routable_keys())
        for ex in list(self._held):
            ex.retry_held()

    def _accept(self, _events: int) -> None:
        server = self._server
        if server is None:  # closed
            return
        for _ in range(64):
            try:
                sock, _addr = server.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of descriptors, or the like: the connection waits in the backlog
                log.warning("listener %s: accept failed: %s", self.name, exc)
                return
            self._serve(sock)

    def _serve(self, sock: socket.socket) -> None:
        reactor = self._reactor
        if self._stopping or reactor is None:
            sock.close()
            return
        sock.setblocking(False)
        set_nodelay(sock)
        try:
            Stream(reactor, sock, ClientConnection(self))
        except OSError:
            sock.close()

    def _run(self, reactor: Reactor) -> None:
        self._sweep()
        try:
            reactor.run_forever()
        finally:
            for _ in range(3):  # aborted connections run connection_lost (which closes their targets)
                reactor._run_due()
            reactor.close()

    def _sweep(self) -> None:
        """Every tick: idle and request timeouts, expired pooled connections, the trace epoch."""
        reactor = self._reactor
        if self._stopping or reactor is None:
            return
        now = time.monotonic()
        self.epoch = int(time.time())
        idle = self.router.config.idle_timeout
        for conn in list(self.clients):
            try:
                conn.check(now, idle)
            except Exception:  # a bug: drop that connection, keep the listener
                log.exception("listener %s: timeout handling failed", self.name)
                conn.abort()
        self.pool.expire(now)
        reactor.call_later(min(1.0, idle / 4), self._sweep)

    def _shutdown(self) -> None:
        self._stopping = True
        reactor = self._reactor
        if reactor is None:
            return
        if self._server is not None:
            reactor.remove(self._server.fileno())
            self._server.close()
            self._server = None
        for conn in list(self.clients):
            conn.abort()
        self.pool.close_all()
        reactor.stop()
