"""The local stand-in for an Application Load Balancer HTTP listener.

``ListenerProxy`` listens on a local port and forwards HTTP/1.1 requests to
the targets registered in its target group, the way an ALB listener does:

* round robin over ``healthy`` targets; when none is healthy it fails open
  and round-robins over every ``initial``/``unhealthy`` target; ``draining``
  and ``unused`` targets get no new requests (requests in flight finish);
  ``algorithm="least_outstanding_requests"`` (the other ALB target group
  algorithm) picks the target with the fewest requests in flight instead;
* 503 when there is nothing to route to, 502 when a target refuses, resets
  or answers garbage, 504 when a target stays silent past the idle timeout;
* ``X-Forwarded-For`` (appended), ``X-Forwarded-Proto``, ``X-Forwarded-Port``
  (the ALB listener's port, not the local one) and ``X-Amzn-Trace-Id``;
* keep-alive towards clients, pooled keep-alive connections to targets,
  request and response bodies streamed in both directions.

The proxy runs an asyncio event loop (uvloop when it is importable) in a
daemon thread of its own; ``set_targets`` may be called from any thread.
Client connections are asyncio protocols with a lean buffered reader; target
connections are bare non-blocking sockets watched with ``add_reader`` (no
transport per connection: with targets that close after every response, one
is made per request).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import random
import re
import socket
import threading
import time
from dataclasses import dataclass
from email.utils import formatdate
from typing import Iterable

__all__ = ["ListenerProxy", "Target", "TARGET_STATES", "ALGORITHMS"]

log = logging.getLogger(__name__)

TARGET_STATES = frozenset({"initial", "healthy", "unhealthy", "draining", "unused", "unavailable"})
# "unavailable" is what ELB reports when health checks are disabled: such a target
# always receives traffic, like a healthy one.
_ROUTED_STATES = frozenset({"healthy", "unavailable"})
_FAIL_OPEN_STATES = frozenset({"initial", "unhealthy"})
# The target group's load_balancing.algorithm.type values this proxy implements.
ALGORITHMS = frozenset({"round_robin", "least_outstanding_requests"})


@dataclass(frozen=True)
class Target:
    """One registered target of the listener's target group."""

    host: str
    port: int
    state: str  # "initial" | "healthy" | "unhealthy" | "draining" | "unused" (| "unavailable")


# --------------------------------------------------------------------------
# Protocol constants
# --------------------------------------------------------------------------

_CRLF = b"\r\n"
_CRLF2 = b"\r\n\r\n"
_CHUNK = 65536  # largest piece read or written at once while streaming
_SMALL_BODY = 65536  # bodies up to this size go out in the same write as the head
_HEAD_LIMIT = 65536  # request/response head (and chunk-size line) size limit
_MAX_TRAILER_LINES = 100
_POOL_MAX_IDLE_PER_TARGET = 256
_PAUSE_AT = 2 * _HEAD_LIMIT  # stop reading a connection whose unread input exceeds this
_WRITE_HIGH = 65536  # drain() waits while more than this is unsent to a target ...
_WRITE_LOW = 16384  # ... until no more than this is left
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_LAST_CHUNK = b"0\r\n\r\n"
_IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS"})

_token = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+").fullmatch
_hex = re.compile(rb"[0-9A-Fa-f]{1,16}").fullmatch
_getrandbits = random.getrandbits

# What to do with a request header (by lower-case name); others pass as-is.
_RQ_HOST, _RQ_CL, _RQ_TE, _RQ_CONN, _RQ_DROP, _RQ_EXPECT, _RQ_XFF, _RQ_TRACE = range(8)
_REQUEST_HEADERS = {
    b"host": _RQ_HOST,
    b"content-length": _RQ_CL,
    b"transfer-encoding": _RQ_TE,
    b"connection": _RQ_CONN,
    b"keep-alive": _RQ_DROP,
    b"te": _RQ_DROP,
    b"trailer": _RQ_DROP,
    b"upgrade": _RQ_DROP,
    b"expect": _RQ_EXPECT,
    b"x-forwarded-for": _RQ_XFF,
    b"x-forwarded-proto": _RQ_DROP,  # the balancer sets these two itself
    b"x-forwarded-port": _RQ_DROP,
    b"x-amzn-trace-id": _RQ_TRACE,
}
# What to do with a response header; others pass as-is.
_RS_CL, _RS_TE, _RS_CONN, _RS_DROP = range(4)
_RESPONSE_HEADERS = {
    b"content-length": _RS_CL,
    b"transfer-encoding": _RS_TE,
    b"connection": _RS_CONN,
    b"keep-alive": _RS_DROP,
    b"te": _RS_DROP,
    b"trailer": _RS_DROP,
    b"upgrade": _RS_DROP,
}

# Request body framing / response body framing.
_NONE, _LENGTH, _CHUNKED, _UNTIL_CLOSE = range(4)
# Connection phases, for the idle-timeout sweeper.
_CLIENT, _UPSTREAM = 0, 1

_REASONS = {
    400: "Bad Request",
    417: "Expectation Failed",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
    505: "HTTP Version Not Supported",
}
_CLASS_KEYS = ("1xx", "2xx", "3xx", "4xx", "5xx")


def _error_response(status: int, keep_alive: bool) -> bytes:
    title = f"{status} {_REASONS[status]}"
    body = (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n</body>\r\n</html>\r\n"
    ).encode()
    head = (
        f"HTTP/1.1 {title}\r\n"
        f"Server: awselb/2.0\r\n"
        f"Date: {formatdate(usegmt=True)}\r\n"
        f"Content-Type: text/html\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    ).encode()
    return head + body


class _ClientGone(Exception):
    """The client closed, reset or stalled its connection."""


class _BadRequest(Exception):
    """The client sent something that is not valid HTTP/1.1."""

    def __init__(self, status: int = 400):
        super().__init__(status)
        self.status = status


class _UpstreamFailed(Exception):
    """The target closed, reset or answered something that is not HTTP."""


class _Buffered:
    """Incoming bytes of one connection, read with StreamReader-like calls.

    Cheaper than ``asyncio.StreamReader``: one bytearray, one waiter, no locks,
    and bodies leave by swapping the buffer out rather than copying it.
    Subclasses feed it (``data_received`` / a readable socket) and implement
    ``_pause``/``_resume`` for backpressure.
    """

    __slots__ = ("_loop", "_buf", "_eof", "_exc", "_waiter", "_paused")

    def _init_buffer(self, loop) -> None:
        self._loop = loop
        self._buf = bytearray()
        self._eof = False
        self._exc = None
        self._waiter = None
        self._paused = False

    def _wake(self) -> None:
        w = self._waiter
        if w is not None:
            self._waiter = None
            if not w.done():
                w.set_result(None)

    async def _wait(self) -> None:
        if self._paused:
            self._resume()
        w = self._waiter = self._loop.create_future()
        try:
            await w
        finally:
            self._waiter = None

    def at_eof(self) -> bool:
        return self._eof and not self._buf

    async def readuntil(self, sep: bytes) -> bytes:
        """Bytes up to and including ``sep``, at most _HEAD_LIMIT of them."""
        buf = self._buf
        start = 0
        while True:
            i = buf.find(sep, start)
            if i >= 0:
                end = i + len(sep)
                if end > _HEAD_LIMIT:
                    raise asyncio.LimitOverrunError("separator is found, but chunk is longer than limit", i)
                if end == len(buf):
                    data = bytes(buf)
                    buf.clear()
                else:
                    data = bytes(buf[:end])
                    del buf[:end]
                return data
            if len(buf) > _HEAD_LIMIT:
                raise asyncio.LimitOverrunError("separator is not found, and chunk exceeds the limit", len(buf))
            if self._exc is not None:
                raise self._exc
            if self._eof:
                partial = bytes(buf)
                buf.clear()
                raise asyncio.IncompleteReadError(partial, None)
            start = max(0, len(buf) - len(sep) + 1)
            await self._wait()
            buf = self._buf

    async def readexactly(self, n: int) -> bytes:
        buf = self._buf
        while len(buf) < n:
            if self._exc is not None:
                raise self._exc
            if self._eof:
                partial = bytes(buf)
                buf.clear()
                raise asyncio.IncompleteReadError(partial, n)
            await self._wait()
            buf = self._buf
        if len(buf) == n:
            self._buf = bytearray()
            return buf
        data = bytes(buf[:n])
        del buf[:n]
        return data

    async def read(self, n: int):
        """Up to ``n`` bytes (a bytes-like object), b"" at EOF."""
        buf = self._buf
        while not buf:
            if self._exc is not None:
                raise self._exc
            if self._eof:
                return b""
            await self._wait()
            buf = self._buf
        if len(buf) <= n:
            self._buf = bytearray()  # hand the buffer over instead of copying it
            data = buf
        else:
            data = bytes(buf[:n])
            del buf[:n]
        if self._paused and len(self._buf) < _CHUNK:
            self._resume()
        return data

    def _pause(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _resume(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class _Upstream(_Buffered):
    """One connection to a target: a bare non-blocking socket on the event loop.

    No transport/protocol pair: a connection to a target that closes after every
    response (gunicorn's sync worker) is made and dropped per request, so the
    fewer objects and system calls around it, the better.
    """

    __slots__ = ("sock", "fd", "key", "idle_since", "closed", "nodelay", "_reading", "_wbuf", "_wexc", "_wwaiter")

    def __init__(self, loop, sock: socket.socket, key):
        self._init_buffer(loop)
        self.sock = sock
        self.fd = sock.fileno()
        self.key = key
        self.idle_since = 0.0
        self.closed = False
        self.nodelay = False
        self._wbuf = None
        self._wexc = None
        self._wwaiter = None
        loop.add_reader(self.fd, self._on_readable)
        self._reading = True

    # -- reading
    def _on_readable(self) -> None:
        try:
            data = self.sock.recv(_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._exc = exc
            self._stop_reading()
        else:
            if data:
                buf = self._buf
                buf += data
                if len(buf) > _PAUSE_AT:
                    self._paused = True
                    self._stop_reading()
            else:
                self._eof = True
                self._stop_reading()
        self._wake()

    def _stop_reading(self) -> None:
        if self._reading:
            self._reading = False
            self._loop.remove_reader(self.fd)

    def _pause(self) -> None:
        self._paused = True
        self._stop_reading()

    def _resume(self) -> None:
        self._paused = False
        if not self._reading and not self.closed and not self._eof and self._exc is None:
            self._reading = True
            self._loop.add_reader(self.fd, self._on_readable)

    def usable(self) -> bool:
        """Idle in the pool and still fit for a new request?"""
        return not (self.closed or self._eof or self._buf or self._exc is not None or self._wexc is not None)

    # -- writing
    def set_nodelay(self) -> None:
        if not self.nodelay:
            self.nodelay = True
            try:
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

    def write(self, data) -> None:
        if self.closed or self._wexc is not None:
            return
        if self._wbuf:
            self._wbuf += data
            return
        try:
            n = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError as exc:
            self._wexc = exc
            return
        if n < len(data):
            self._wbuf = bytearray(memoryview(data)[n:])
            self._loop.add_writer(self.fd, self._on_writable)

    def _on_writable(self) -> None:
        wbuf = self._wbuf
        try:
            n = self.sock.send(wbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._wexc = exc
            n = len(wbuf)
        del wbuf[:n]
        if not wbuf:
            self._wbuf = None
            self._loop.remove_writer(self.fd)
        w = self._wwaiter
        if w is not None and (self._wbuf is None or len(wbuf) <= _WRITE_LOW):
            self._wwaiter = None
            if not w.done():
                w.set_result(None)

    async def drain(self) -> None:
        if self._wexc is None and self._wbuf is not None and len(self._wbuf) > _WRITE_HIGH:
            w = self._wwaiter = self._loop.create_future()
            try:
                await w
            finally:
                self._wwaiter = None
        if self._wexc is not None:
            raise self._wexc
        if self.closed:
            raise ConnectionAbortedError("connection to the target was closed")

    # -- closing
    def abort(self) -> None:
        if self.closed:
            return
        self.closed = True
        loop = self._loop
        if self._reading:
            self._reading = False
            loop.remove_reader(self.fd)
        if self._wbuf is not None:
            self._wbuf = None
            loop.remove_writer(self.fd)
        self.sock.close()
        if self._exc is None:
            self._exc = ConnectionAbortedError("connection to the target was closed")
        self._wake()
        w = self._wwaiter
        if w is not None:
            self._wwaiter = None
            if not w.done():
                w.set_result(None)

    close = abort  # a finished exchange leaves nothing to flush


class _Client(_Buffered, asyncio.Protocol):
    """One client connection: the protocol, its buffered reader, and the state
    read by the idle-timeout sweeper."""

    __slots__ = ("proxy", "transport", "task", "ip", "phase", "t", "timed_out", "up", "_lost", "_wpaused", "_drainer")

    def __init__(self, proxy: "ListenerProxy"):
        self.proxy = proxy
        self.transport = None
        self.task = None
        self.ip = b"127.0.0.1"
        self.phase = _CLIENT
        self.t = proxy._now
        self.timed_out = False
        self.up = None
        self._lost = False
        self._wpaused = False
        self._drainer = None

    # -- asyncio.Protocol
    def connection_made(self, transport) -> None:
        self.transport = transport
        loop = self.proxy._loop
        self._init_buffer(loop)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.ip = peer[0].encode()
        self.task = loop.create_task(self.proxy._serve_client(self))

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        if len(buf) > _PAUSE_AT and not self._paused:
            self._pause()
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return True  # half-closed: the answer can still be sent

    def connection_lost(self, exc) -> None:
        self._lost = True
        if exc is None:
            self._eof = True
        else:
            self._exc = exc
        self._wake()
        self._release_drainer()

    def pause_writing(self) -> None:
        self._wpaused = True

    def resume_writing(self) -> None:
        self._wpaused = False
        self._release_drainer()

    def _release_drainer(self) -> None:
        w = self._drainer
        if w is not None:
            self._drainer = None
            if not w.done():
                w.set_result(None)

    def _pause(self) -> None:
        self._paused = True
        try:
            self.transport.pause_reading()
        except (AttributeError, RuntimeError):
            pass

    def _resume(self) -> None:
        self._paused = False
        if not self._lost:
            try:
                self.transport.resume_reading()
            except (AttributeError, RuntimeError):
                pass

    # -- writing
    def write(self, data) -> None:
        self.transport.write(data)

    async def drain(self) -> None:
        if self._wpaused and not self._lost:
            w = self._drainer = self._loop.create_future()
            try:
                await w
            finally:
                self._drainer = None
        if self._lost:
            raise ConnectionResetError("client connection lost")


def _numeric_family(host: str) -> int:
    """AF_INET/AF_INET6 for a numeric address, 0 for a name that needs resolving."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except (OSError, ValueError):
            continue
        return family
    return 0


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop  # optional: faster when present, never required
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class ListenerProxy:
    """An ALB-like HTTP listener on ``host:port`` forwarding to targets.

    ``listener_port`` is the port of the listener being emulated (it goes into
    ``X-Forwarded-Port``); ``port`` is the local port to bind, 0 for any free
    one. ``idle_timeout`` is the ALB idle timeout in seconds: a target that
    sends nothing for that long gets a 504, an idle client connection is closed.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        listener_port: int = 80,
        protocol: str = "HTTP",
        *,
        idle_timeout: float = 60.0,
        upstream_keepalive: float = 30.0,
        connect_timeout: float = 10.0,
        algorithm: str = "round_robin",
    ):
        protocol = str(protocol or "HTTP").upper()
        if protocol not in ("HTTP", "HTTPS"):
            raise ValueError(f"listener protocol {protocol!r} is not an ALB listener protocol (HTTP, HTTPS)")
        if protocol == "HTTPS":
            # No certificates locally: an HTTPS listener is served as plain HTTP.
            log.info("HTTPS listener on port %s is served as plain HTTP locally", listener_port)
        if idle_timeout <= 0 or upstream_keepalive <= 0 or connect_timeout <= 0:
            raise ValueError("timeouts must be positive")
        if algorithm not in ALGORITHMS:
            raise ValueError(f"load balancing algorithm {algorithm!r} is not one of {sorted(ALGORITHMS)}")
        self.algorithm = algorithm
        self.host = host
        self.listener_port = int(listener_port)
        self.protocol = protocol
        self.idle_timeout = float(idle_timeout)
        self.upstream_keepalive = float(upstream_keepalive)
        self.connect_timeout = float(connect_timeout)
        self._requested_port = int(port)
        self._bound_port: int | None = None
        self._forwarded = b"X-Forwarded-Proto: http\r\nX-Forwarded-Port: %d" % self.listener_port

        self._lock = threading.Lock()
        self._targets: tuple = ()
        self._warned_states: set = set()
        self._routable: tuple = ()
        self._routable_keys: frozenset = frozenset()
        self._rr = 0
        self._least_outstanding = algorithm == "least_outstanding_requests"
        self._outstanding: dict = {}  # (host, port) -> requests in flight (loop thread only)

        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server = None
        self._stopping = False
        self._clients: set = set()
        self._pool: dict = {}
        self._busy_upstreams: set = set()
        self._families: dict = {}
        self._now = 0.0
        self._epoch_hex = b"00000000"
        self._tick = min(1.0, self.idle_timeout / 4, self.connect_timeout / 4)
        # While connecting, a client's activity stamp is back-dated so that the idle
        # sweeper fires after connect_timeout rather than idle_timeout.
        self._connect_t0 = min(0.0, self.connect_timeout - self.idle_timeout)
        self._reset_stats()

    # ------------------------------------------------------------------
    # Public interface (any thread)
    # ------------------------------------------------------------------

    @property
    def port(self) -> int | None:
        """The bound local port (``None`` before ``start``)."""
        return self._bound_port

    def start(self) -> None:
        """Bind and serve in a daemon thread; return once listening.

        Raises ``OSError`` when the port cannot be bound (e.g. it is busy).
        """
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("ListenerProxy is already started")
            started = threading.Event()
            box: list = []
            thread = threading.Thread(
                target=self._run, args=(started, box), name=f"alb-listener-{self.listener_port}", daemon=True
            )
            self._stopping = False
            thread.start()
            started.wait()
            if box:
                thread.join()
                raise box[0]
            self._thread = thread

    def stop(self) -> None:
        """Close the listener and every connection, and join the thread. Idempotent."""
        with self._lock:
            thread, self._thread = self._thread, None
            loop = self._loop
        if thread is None:
            return
        try:
            loop.call_soon_threadsafe(self._shutdown)
        except RuntimeError:  # loop already closed
            pass
        thread.join(timeout=30)
        if thread.is_alive():  # pragma: no cover - would be a bug
            log.error("listener thread on port %s did not stop", self._bound_port)

    def set_targets(self, targets: Iterable[Target]) -> None:
        """Replace the whole target set. Cheap when the set is unchanged.

        Targets in a state this proxy does not know get no traffic (and a warning).
        """
        new = tuple(targets)
        with self._lock:
            if new == self._targets:
                return
            for t in new:
                if t.state not in TARGET_STATES and t.state not in self._warned_states:
                    self._warned_states.add(t.state)
                    log.warning("target %s:%s has unknown state %r: it gets no traffic", t.host, t.port, t.state)
            healthy = tuple(t for t in new if t.state in _ROUTED_STATES)
            routable = healthy or tuple(t for t in new if t.state in _FAIL_OPEN_STATES)
            self._targets = new
            # One attribute each, swapped atomically; the loop thread only reads them.
            self._routable_keys = frozenset((t.host, t.port) for t in routable)
            self._routable = routable
            loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._prune_pool)
            except RuntimeError:
                pass

    def stats(self) -> dict:
        """Counters since start: requests, responses per class, 502/503/504, per target."""
        s = dict(self._stats)
        s["targets"] = {f"{h}:{p}": n for (h, p), n in dict(self._per_target).items()}
        s["open_client_connections"] = len(self._clients)
        s["idle_upstream_connections"] = sum(len(v) for v in list(self._pool.values()))
        return s

    def __enter__(self) -> "ListenerProxy":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------
    # Event loop thread
    # ------------------------------------------------------------------

    def _reset_stats(self) -> None:
        self._stats = dict.fromkeys(
            (
                "connections", "requests", "1xx", "2xx", "3xx", "4xx", "5xx",
                "400", "502", "503", "504", "upstream_connects", "upstream_reused", "retries",
            ),
            0,
        )
        self._per_target: dict = {}

    def _run(self, started: threading.Event, box: list) -> None:
        loop = _new_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop  # the client protocols created by the server need it
        try:
            self._server = loop.run_until_complete(
                loop.create_server(lambda: _Client(self), self.host, self._requested_port, backlog=1024)
            )
        except BaseException as exc:  # bind failure: hand it to start()
            box.append(exc)
            self._loop = None
            loop.close()
            started.set()
            return
        self._bound_port = self._server.sockets[0].getsockname()[1]
        self._clients = set()
        self._pool = {}
        self._busy_upstreams = set()
        self._reset_stats()
        self._sweep()
        started.set()
        try:
            loop.run_forever()
        finally:
            try:
                tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for t in tasks:
                    t.cancel()
                if tasks:
                    loop.run_until_complete(asyncio.wait(tasks, timeout=5))
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                self._loop = None
                asyncio.set_event_loop(None)
                loop.close()

    def _shutdown(self) -> None:
        self._stopping = True
        if self._server is not None:
            self._server.close()  # closes the listening socket right away
            self._server = None
        for c in list(self._clients):
            c.transport.abort()
            if c.task is not None:
                c.task.cancel()
        for up in list(self._busy_upstreams):
            up.abort()
        for conns in self._pool.values():
            for up in conns:
                up.abort()
        self._pool.clear()
        self._loop.stop()

    def _sweep(self) -> None:
        """Periodic: refresh the cached clock, enforce idle timeouts, expire idle pool entries."""
        loop = self._loop
        if self._stopping or loop is None:
            return
        now = self._now = loop.time()
        self._epoch_hex = b"%08x" % int(time.time())
        limit = now - self.idle_timeout
        for c in list(self._clients):
            if c.t < limit:
                if c.phase == _UPSTREAM:
                    if not c.timed_out:
                        c.timed_out = True
                        c.task.cancel()
                else:
                    c.transport.abort()
        stale = now - self.upstream_keepalive
        for key, conns in list(self._pool.items()):
            keep = [u for u in conns if u.idle_since >= stale and u.usable()]
            if len(keep) != len(conns):
                for u in conns:
                    if u not in keep:
                        u.abort()
                if keep:
                    self._pool[key] = keep
                else:
                    del self._pool[key]
        loop.call_later(self._tick, self._sweep)

    def _prune_pool(self) -> None:
        """Close idle connections to targets that no longer receive requests."""
        keys = self._routable_keys
        for key in [k for k in self._pool if k not in keys]:
            for up in self._pool.pop(key):
                up.abort()

    # -- routing and the upstream pool ---------------------------------

    def _pick(self, avoid: Target | None = None) -> Target | None:
        group = self._routable
        n = len(group)
        if not n:
            return None
        i = self._rr
        self._rr = i + 1
        if self._least_outstanding and n > 1:
            # The target with the fewest requests in flight; ties in round-robin order.
            out = self._outstanding
            best = None
            low = 0
            for j in range(n):
                t = group[(i + j) % n]
                if avoid is not None and t.host == avoid.host and t.port == avoid.port:
                    continue
                k = out.get((t.host, t.port), 0)
                if best is None or k < low:
                    best, low = t, k
                    if not k:
                        break
            return best
        t = group[i % n]
        if avoid is not None and t.host == avoid.host and t.port == avoid.port:
            for j in range(1, n):
                t = group[(i + j) % n]
                if t.host != avoid.host or t.port != avoid.port:
                    return t
            return None
        return t

    def _pool_get(self, key) -> _Upstream | None:
        conns = self._pool.get(key)
        while conns:
            up = conns.pop()
            if not up.usable():
                up.abort()
                continue
            return up
        return None

    def _pool_put(self, up: _Upstream) -> None:
        if self._stopping or up.key not in self._routable_keys:
            up.abort()
            return
        conns = self._pool.get(up.key)
        if conns is None:
            conns = self._pool[up.key] = []
        if len(conns) >= _POOL_MAX_IDLE_PER_TARGET:
            up.abort()
            return
        up.idle_since = self._now
        conns.append(up)

    async def _connect(self, key) -> _Upstream:
        self._stats["upstream_connects"] += 1
        loop = self._loop
        family = self._families.get(key)
        if family is None:
            family = self._families[key] = _numeric_family(key[0])
        if family:
            addrs = [(family, key)]
        else:  # a host name: resolve it (each time, as its address may change)
            infos = await loop.getaddrinfo(key[0], key[1], type=socket.SOCK_STREAM)
            addrs = [(fam, addr) for fam, _type, _proto, _name, addr in infos
                     if fam in (socket.AF_INET, socket.AF_INET6)]
            if not addrs:
                raise OSError(f"cannot resolve {key[0]}")
        err = None
        for family, addr in addrs:
            try:
                return _Upstream(loop, await self._connect_sock(family, addr), key)
            except OSError as exc:
                err = exc
        raise err

    async def _connect_sock(self, family, addr) -> socket.socket:
        # A non-blocking connect to a local target completes within the call,
        # which saves a trip through the loop.
        sock = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
        try:
            err = sock.connect_ex(addr)
            if err == errno.EINPROGRESS:
                try:
                    sock.getpeername()
                except OSError:
                    await self._loop.sock_connect(sock, addr)
            elif err:
                raise OSError(err, f"connect to {addr[0]}:{addr[1]}: {errno.errorcode.get(err, err)}")
        except BaseException:
            sock.close()
            raise
        return sock

    # -- client side ---------------------------------------------------

    async def _serve_client(self, conn: _Client) -> None:
        self._clients.add(conn)
        self._stats["connections"] += 1
        keep = False
        try:
            while True:
                conn.phase = _CLIENT
                try:
                    head = await conn.readuntil(_CRLF2)
                except asyncio.IncompleteReadError as e:
                    if e.partial.strip():
                        self._reject(conn, 400)
                    break
                except asyncio.LimitOverrunError:
                    self._reject(conn, 431)
                    break
                conn.t = self._now
                if head[:2] == _CRLF:  # stray empty lines before a request are allowed
                    head = head.lstrip(_CRLF)
                    if not head:
                        continue
                try:
                    keep = await self._handle(conn, head)
                except _BadRequest as e:
                    self._reject(conn, e.status)
                    keep = False
                if not keep:
                    break
        except (ConnectionError, OSError, _ClientGone):
            keep = False
        except asyncio.CancelledError:
            keep = False
            if not self._stopping:
                raise
        except Exception:  # a bug: log it, drop this connection, keep serving others
            log.exception("listener proxy: unexpected error on a client connection")
            keep = False
        finally:
            self._clients.discard(conn)
            if conn.up is not None:
                conn.up.abort()
                self._busy_upstreams.discard(conn.up)
                conn.up = None
            if self._stopping:
                conn.transport.abort()
            else:
                conn.transport.close()  # flushes what is buffered (e.g. an error page) first

    async def _handle(self, conn: _Client, head: bytes) -> bool:
        """Parse one request head, forward it, relay the answer. Returns keep-alive."""
        text = head[:-4]
        lines = text.split(_CRLF)
        n = len(lines) - 1
        if text.count(b"\n") != n or text.count(b"\r") != n:
            raise _BadRequest()  # bare CR or LF: refuse rather than guess
        parts = lines[0].split(b" ")
        if len(parts) != 3:
            raise _BadRequest()
        method, target, version = parts
        if version == b"HTTP/1.1":
            v11 = True
        elif version == b"HTTP/1.0":
            v11 = False
        elif version[:5] == b"HTTP/" and len(version) == 8:
            raise _BadRequest(505)
        else:
            raise _BadRequest()
        if not target or _token(method) is None:
            raise _BadRequest()

        out = [b"%s %s HTTP/1.1" % (method, target)]
        append = out.append
        keep = v11
        cl = -1
        te = None
        host = 0
        expect = None
        xff = None
        trace = None
        extra_conn = None
        kinds = _REQUEST_HEADERS
        for line in lines[1:]:
            c = line.find(b":")
            if c <= 0:
                raise _BadRequest()
            name = line[:c]
            lname = name.lower()
            kind = kinds.get(lname)
            if kind is None:
                if _token(name) is None:
                    raise _BadRequest()
                if lname[:6] != b"proxy-":
                    append(line)
            elif kind == _RQ_HOST:
                host += 1
                append(line)
            elif kind == _RQ_CL:
                v = line[c + 1:].strip()
                if not v.isdigit() or (cl >= 0 and int(v) != cl):
                    raise _BadRequest()
                cl = int(v)
            elif kind == _RQ_TE:
                v = line[c + 1:].strip().lower()
                te = v if te is None else te + b"," + v
            elif kind == _RQ_CONN:
                for tok in line[c + 1:].lower().split(b","):
                    tok = tok.strip()
                    if tok == b"close":
                        keep = False
                    elif tok == b"keep-alive":
                        keep = keep or not v11
                    elif tok:
                        extra_conn = (extra_conn or set()) | {tok}
            elif kind == _RQ_XFF:
                v = line[c + 1:].strip()
                xff = v if xff is None else xff + b", " + v
            elif kind == _RQ_TRACE:
                trace = line[c + 1:].strip()
            elif kind == _RQ_EXPECT:
                expect = line[c + 1:].strip().lower()
            # _RQ_DROP: hop-by-hop or set by the balancer: not forwarded
        if v11 and host != 1:
            raise _BadRequest()
        if host > 1:
            raise _BadRequest()

        if te is not None:
            # Only "chunked" (alone) is relayed; with Content-Length too it is a smuggling attempt.
            if cl >= 0 or not v11:
                raise _BadRequest()
            if te != b"chunked":
                raise _BadRequest(501 if te.endswith(b"chunked") else 400)
            body = _CHUNKED
            append(b"Transfer-Encoding: chunked")
        elif cl > 0:
            body = _LENGTH
            append(b"Content-Length: %d" % cl)
        else:
            body = _NONE
            if cl == 0:
                append(b"Content-Length: 0")
        if expect is not None:
            if expect != b"100-continue":
                self._reject(conn, 417)
                return False
            expect = v11 and body != _NONE
        if extra_conn:  # headers named in Connection are hop-by-hop too
            out = [out[0]] + [h for h in out[1:] if h.split(b":", 1)[0].strip().lower() not in extra_conn]
            append = out.append

        append(b"X-Forwarded-For: " + (xff + b", " + conn.ip if xff else conn.ip))
        append(self._forwarded)
        fresh_id = b"1-" + self._epoch_hex + b"-%024x" % _getrandbits(96)
        if trace is None:
            append(b"X-Amzn-Trace-Id: Root=" + fresh_id)
        elif b"Root=" in trace:
            kept = b";".join(p for p in trace.split(b";") if p.strip()[:5] != b"Self=")
            append(b"X-Amzn-Trace-Id: Self=" + fresh_id + b";" + kept)
        else:
            append(b"X-Amzn-Trace-Id: Root=" + fresh_id + (b";" + trace if trace else b""))
        append(b"")
        append(b"")
        return await self._forward(conn, _CRLF.join(out), method, body, cl, expect, v11, keep)

    # -- forwarding ----------------------------------------------------

    def _reply_error(self, conn: _Client, status: int, keep: bool) -> bool:
        """Answer with the balancer's own error page (request already counted)."""
        stats = self._stats
        stats[_CLASS_KEYS[status // 100 - 1]] += 1
        if str(status) in stats:
            stats[str(status)] += 1
        conn.write(_error_response(status, keep))
        return keep

    def _reject(self, conn: _Client, status: int) -> None:
        """Refuse a request that was not forwarded; the connection is closed after it."""
        self._stats["requests"] += 1
        self._reply_error(conn, status, False)

    async def _forward(self, conn, up_head, method, body, cl, expect, v11, keep) -> bool:
        stats = self._stats
        stats["requests"] += 1
        target = self._pick()
        if target is None:
            return self._reply_error(conn, 503, keep and body == _NONE)
        outstanding = self._outstanding
        counted = (target.host, target.port)  # in flight to this target until the exchange ends
        outstanding[counted] = outstanding.get(counted, 0) + 1

        conn.phase = _UPSTREAM
        conn.t = self._now
        body_done = body == _NONE  # request body fully read from the client?
        responded = False  # any response byte sent to the client?
        up = None
        retried = False
        try:
            while True:
                key = (target.host, target.port)
                up = None if retried else self._pool_get(key)
                reused = up is not None
                if reused:
                    stats["upstream_reused"] += 1
                else:
                    conn.t = self._connect_t0 + self._now  # the sweeper fires after connect_timeout
                    try:
                        up = await self._connect(key)
                    except OSError:
                        # Nothing was sent: safe to try a different target once.
                        alt = None if retried else self._pick(target)
                        if alt is not None:
                            retried = True
                            stats["retries"] += 1
                            target = alt
                            outstanding[counted] -= 1
                            counted = (target.host, target.port)
                            outstanding[counted] = outstanding.get(counted, 0) + 1
                            continue
                        return self._reply_error(conn, 502, keep and body_done)
                conn.t = self._now
                conn.up = up
                self._busy_upstreams.add(up)

                upstream_broke = False
                if body == _NONE:
                    up.write(up_head)
                else:
                    if expect:
                        conn.write(_CONTINUE)
                        expect = False
                    try:
                        await self._send_body(conn, up, up_head, body, cl)
                        body_done = True
                    except _UpstreamFailed:
                        # The target may have answered early (e.g. 413) and closed:
                        # try to read that answer below; the client body is not drained.
                        upstream_broke = True

                try:
                    rhead = await up.readuntil(_CRLF2)
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError) as e:
                    self._drop_upstream(conn, up)
                    up = None
                    nothing = not isinstance(e, asyncio.IncompleteReadError) or not e.partial
                    if (
                        reused and nothing and not retried and body == _NONE
                        and method in _IDEMPOTENT and not upstream_broke
                    ):
                        # A pooled keep-alive connection the target had closed just as
                        # we reused it: the request was never processed; resend once on
                        # a fresh connection to the same target.
                        retried = True
                        stats["retries"] += 1
                        continue
                    return self._reply_error(conn, 502, keep and body_done)
                per = self._per_target
                per[key] = per.get(key, 0) + 1
                break

            # 1xx interim responses: relay 102/103 to HTTP/1.1 clients, skip 100.
            while rhead[9:10] == b"1":
                if rhead[9:12] == b"101":
                    self._drop_upstream(conn, up)
                    up = None
                    return self._reply_error(conn, 502, False)
                if v11 and rhead[9:12] != b"100" and rhead[:5] == b"HTTP/":
                    conn.write(b"HTTP/1.1" + rhead[8:])
                    responded = True
                try:
                    rhead = await up.readuntil(_CRLF2)
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
                    self._drop_upstream(conn, up)
                    up = None
                    if responded:
                        conn.transport.abort()
                        return False
                    return self._reply_error(conn, 502, keep and body_done)

            parsed = self._parse_response(rhead)
            if parsed is None:
                self._drop_upstream(conn, up)
                up = None
                if responded:
                    conn.transport.abort()
                    return False
                return self._reply_error(conn, 502, keep and body_done)
            status, out, rframing, rlength, up_keep = parsed
            if method == b"HEAD" or status == 204 or status == 304:
                rframing = _NONE
            if rframing == _CHUNKED or rframing == _UNTIL_CLOSE:
                if v11:
                    out.append(b"Transfer-Encoding: chunked")
                else:
                    keep = False  # an HTTP/1.0 client reads the body until close
            keep = keep and body_done
            if not keep:
                out.append(b"Connection: close")
            elif not v11:
                out.append(b"Connection: keep-alive")
            out.append(b"")
            out.append(b"")

            writer = conn
            klass = _CLASS_KEYS[status // 100 - 1]
            if rframing == _NONE:
                stats[klass] += 1
                writer.write(_CRLF.join(out))
            elif rframing == _LENGTH and rlength <= _SMALL_BODY:
                try:
                    data = await up.readexactly(rlength)
                except (asyncio.IncompleteReadError, OSError):
                    self._drop_upstream(conn, up)
                    up = None
                    if responded:
                        conn.transport.abort()
                        return False
                    return self._reply_error(conn, 502, False)
                stats[klass] += 1
                writer.write(_CRLF.join(out) + data)
            else:
                stats[klass] += 1
                writer.write(_CRLF.join(out))
                responded = True
                try:
                    if rframing == _LENGTH:
                        await self._copy_length(conn, up, writer, rlength, _UpstreamFailed, _ClientGone)
                    elif rframing == _CHUNKED:
                        await self._copy_chunked(conn, up, writer, _UpstreamFailed, _UpstreamFailed,
                                                 _ClientGone, v11)
                    else:
                        await self._copy_until_close(conn, up, writer, v11)
                except (_UpstreamFailed, _ClientGone):
                    self._drop_upstream(conn, up)
                    up = None
                    conn.transport.abort()
                    return False

            # Done: the target connection goes back to the pool when it can.
            conn.up = None
            self._busy_upstreams.discard(up)
            if up_keep and body_done and rframing != _UNTIL_CLOSE:
                self._pool_put(up)
            else:
                up.close()
            up = None
            return keep
        except _ClientGone:
            return False
        except _BadRequest as e:  # malformed chunked request body
            if not responded:
                self._reply_error(conn, e.status, False)
            return False
        except asyncio.CancelledError:
            if self._stopping or not conn.timed_out:
                raise
            task = asyncio.current_task()
            if task is not None and hasattr(task, "uncancel"):
                task.uncancel()
            conn.timed_out = False
            if responded:
                conn.transport.abort()
                return False
            return self._reply_error(conn, 504, keep and body_done)
        finally:
            conn.phase = _CLIENT
            n = outstanding[counted] - 1
            if n:
                outstanding[counted] = n
            else:
                del outstanding[counted]
            if up is not None:
                self._drop_upstream(conn, up)

    def _drop_upstream(self, conn: _Client, up: _Upstream) -> None:
        up.abort()
        self._busy_upstreams.discard(up)
        if conn.up is up:
            conn.up = None

    def _parse_response(self, rhead: bytes):
        """Parse a response head; returns (status, header lines, framing, length, reusable) or None."""
        text = rhead[:-4]
        lines = text.split(_CRLF)
        n = len(lines) - 1
        if text.count(b"\n") != n or text.count(b"\r") != n:
            return None
        status_line = lines[0]
        version = status_line[:8]
        if version == b"HTTP/1.1":
            up_keep = True
        elif version == b"HTTP/1.0":
            up_keep = False
        else:
            return None
        code = status_line[9:12]
        if status_line[8:9] != b" " or not code.isdigit() or status_line[12:13] not in (b" ", b""):
            return None
        status = int(code)
        if status < 100 or status > 599:
            return None
        out = [b"HTTP/1.1" + status_line[8:]]
        append = out.append
        length = -1
        chunked = False
        cl_line = None
        extra_conn = None
        kinds = _RESPONSE_HEADERS
        for line in lines[1:]:
            c = line.find(b":")
            if c <= 0:
                return None
            kind = kinds.get(line[:c].lower())
            if kind is None:
                append(line)
            elif kind == _RS_CL:
                v = line[c + 1:].strip()
                if not v.isdigit() or (length >= 0 and int(v) != length):
                    return None
                length = int(v)
                cl_line = line
            elif kind == _RS_TE:
                if line[c + 1:].strip().lower() != b"chunked":
                    return None  # no transfer coding but plain chunked is relayed
                chunked = True
            elif kind == _RS_CONN:
                for tok in line[c + 1:].lower().split(b","):
                    tok = tok.strip()
                    if tok == b"close":
                        up_keep = False
                    elif tok == b"keep-alive":
                        up_keep = True
                    elif tok:
                        extra_conn = (extra_conn or set()) | {tok}
        if extra_conn:
            out = [out[0]] + [h for h in out[1:] if h.split(b":", 1)[0].strip().lower() not in extra_conn]
        if chunked:
            framing = _CHUNKED  # Transfer-Encoding wins over Content-Length
        elif length >= 0:
            framing = _LENGTH
            out.append(cl_line)
        else:
            framing = _UNTIL_CLOSE
        if framing == _UNTIL_CLOSE and (status < 200 or status == 204 or status == 304):
            framing = _NONE
        return status, out, framing, length, up_keep

    # -- body copying ----------------------------------------------------

    async def _send_body(self, conn, up, up_head, body, cl) -> None:
        """Stream the request body from the client to the target."""
        reader = conn
        if body == _LENGTH and cl <= _SMALL_BODY:
            try:
                data = await reader.readexactly(cl)
            except (asyncio.IncompleteReadError, OSError):
                raise _ClientGone() from None
            up.write(up_head + data)
            return
        up.set_nodelay()  # the body follows in pieces
        up.write(up_head)
        if body == _LENGTH:
            await self._copy_length(conn, reader, up, cl, _ClientGone, _UpstreamFailed)
        else:
            await self._copy_chunked(conn, reader, up, _ClientGone, _BadRequest, _UpstreamFailed, True)

    async def _copy_length(self, conn, src, dst, remaining, src_err, dst_err) -> None:
        while remaining:
            try:
                data = await src.read(remaining if remaining < _CHUNK else _CHUNK)
            except OSError:
                raise src_err() from None
            if not data:
                raise src_err()
            remaining -= len(data)
            dst.write(data)
            try:
                await dst.drain()
            except OSError:
                raise dst_err() from None
            conn.t = self._now

    async def _copy_chunked(self, conn, src, dst, src_err, bad_err, dst_err, rechunk) -> None:
        """Copy a chunked body; re-emit it chunked, or de-chunked when ``rechunk`` is false."""
        while True:
            try:
                line = await src.readuntil(_CRLF)
            except (asyncio.IncompleteReadError, OSError):
                raise src_err() from None
            except asyncio.LimitOverrunError:
                raise bad_err() from None
            size_field = line[:-2].split(b";", 1)[0].strip()
            if _hex(size_field) is None:
                raise bad_err()
            size = int(size_field, 16)
            if size == 0:
                for _ in range(_MAX_TRAILER_LINES):  # trailers are hop-by-hop here: dropped
                    try:
                        t = await src.readuntil(_CRLF)
                    except (asyncio.IncompleteReadError, OSError):
                        raise src_err() from None
                    except asyncio.LimitOverrunError:
                        raise bad_err() from None
                    if t == _CRLF:
                        break
                else:
                    raise bad_err()
                if rechunk:
                    dst.write(_LAST_CHUNK)
                try:
                    await dst.drain()
                except OSError:
                    raise dst_err() from None
                return
            if rechunk:
                dst.write(b"%x\r\n" % size)
            await self._copy_length(conn, src, dst, size, src_err, dst_err)
            try:
                end = await src.readexactly(2)
            except (asyncio.IncompleteReadError, OSError):
                raise src_err() from None
            if end != _CRLF:
                raise bad_err()
            if rechunk:
                dst.write(_CRLF)

    async def _copy_until_close(self, conn, src, dst, rechunk) -> None:
        while True:
            try:
                data = await src.read(_CHUNK)
            except OSError:
                raise _UpstreamFailed() from None
            if not data:
                break
            if rechunk:
                dst.write(b"%x\r\n%b\r\n" % (len(data), data))
            else:
                dst.write(data)
            try:
                await dst.drain()
            except OSError:
                raise _ClientGone() from None
            conn.t = self._now
        if rechunk:
            dst.write(_LAST_CHUNK)
