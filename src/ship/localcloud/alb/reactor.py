"""A small event loop for the listeners: file descriptor callbacks, timers, thread-safe calls,
and ``Stream``, a socket transport with asyncio's protocol interface.

Why not asyncio: relaying a request costs a listener a few socket calls plus
dispatching three or four readiness events. asyncio's selector loop spends about 80 µs
of Python per relayed request on that dispatching alone (handles, selector keys,
transport bookkeeping) and uvloop's poll handles cost seven system calls per target
connection; measured with an empty relay, this loop costs about 30 µs (see
benchmarks/lb_overhead.py). It uses epoll directly where there is one (Linux), the
``selectors`` module elsewhere.
"""

from __future__ import annotations

import _socket
import heapq
import logging
import select
import selectors
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

log = logging.getLogger("ship.localcloud.alb")

__all__ = ["Reactor", "Stream", "StreamProtocol", "Timer", "READ", "WRITE", "TROUBLE", "listening_socket",
           "set_nodelay"]

READ = getattr(select, "EPOLLIN", 1)
WRITE = getattr(select, "EPOLLOUT", 4)
TROUBLE = getattr(select, "EPOLLERR", 8) | getattr(select, "EPOLLHUP", 16)
_RECV_SIZE = 262144

Handler = Callable[[int], None]  # called with the events a descriptor is ready for
_Call = tuple[Callable[..., object], tuple[Any, ...]]  # a function and its arguments


@dataclass(order=True, slots=True)
class Timer:
    """A call made later (``Reactor.call_later``); ``cancel()`` keeps it from running."""

    when: float  # time.monotonic()
    seq: int  # the order of calls due at the same time
    fn: Callable[..., object] | None = field(compare=False)
    args: tuple[Any, ...] = field(compare=False)

    def cancel(self) -> None:
        self.fn = None


class _SelectorsPoller:
    """``select.epoll``'s interface over ``selectors`` (platforms without epoll)."""

    def __init__(self) -> None:
        self._sel = selectors.DefaultSelector()

    @staticmethod
    def _events(mask: int) -> int:
        return (selectors.EVENT_READ if mask & READ else 0) | (selectors.EVENT_WRITE if mask & WRITE else 0)

    def register(self, fd: int, mask: int) -> None:
        self._sel.register(fd, self._events(mask))

    def modify(self, fd: int, mask: int) -> None:
        self._sel.modify(fd, self._events(mask))

    def unregister(self, fd: int) -> None:
        self._sel.unregister(fd)

    def poll(self, timeout: float) -> list[tuple[int, int]]:
        ready = self._sel.select(None if timeout < 0 else timeout)
        return [(key.fd, (READ if ev & selectors.EVENT_READ else 0) | (WRITE if ev & selectors.EVENT_WRITE else 0))
                for key, ev in ready]

    def close(self) -> None:
        self._sel.close()


class Reactor:
    """One thread's event loop: ``add``/``modify``/``remove`` a descriptor with a
    ``handler(events)``, ``call_soon``, ``call_later``, ``call_soon_threadsafe``."""

    time = staticmethod(time.monotonic)

    def __init__(self) -> None:
        self._poller: select.epoll | _SelectorsPoller
        self._poller = select.epoll() if hasattr(select, "epoll") else _SelectorsPoller()
        self.kind = "epoll" if hasattr(select, "epoll") else "selectors"
        self._handlers: dict[int, Handler] = {}
        self._masks: dict[int, int] = {}  # registered descriptors and their masks; a zero mask is not registered
        self._soon: deque[_Call] = deque()
        self._timers: list[Timer] = []  # a heap
        self._seq = 0
        self._foreign: deque[_Call] = deque()
        self._foreign_lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._stopping = False
        self.add(self._wake_r.fileno(), READ, self._woken)

    # -- descriptors ----------------------------------------------------------------

    def add(self, fd: int, mask: int, handler: Handler) -> None:
        self._handlers[fd] = handler
        self._masks[fd] = 0
        self.modify(fd, mask)

    def modify(self, fd: int, mask: int) -> None:
        """Change what ``fd`` is watched for; with a zero mask it is not watched at all (not
        even for errors, which a level-triggered poll would otherwise report forever)."""
        old = self._masks.get(fd)
        if old is None or old == mask:
            return
        self._masks[fd] = mask
        if not old:
            self._poller.register(fd, mask)
        elif not mask:
            self._poller.unregister(fd)
        else:
            self._poller.modify(fd, mask)

    def remove(self, fd: int) -> None:
        if self._handlers.pop(fd, None) is not None and self._masks.pop(fd, 0):
            try:
                self._poller.unregister(fd)
            except (OSError, KeyError, ValueError):
                pass

    # -- calls ------------------------------------------------------------------------

    def call_soon(self, fn: Callable[..., object], *args: Any) -> None:
        self._soon.append((fn, args))

    def call_later(self, delay: float, fn: Callable[..., object], *args: Any) -> Timer:
        """Run ``fn`` after ``delay`` seconds; ``cancel()`` the timer returned to keep it from running."""
        self._seq += 1
        timer = Timer(time.monotonic() + delay, self._seq, fn, args)
        heapq.heappush(self._timers, timer)
        return timer

    def call_soon_threadsafe(self, fn: Callable[..., object], *args: Any) -> None:
        with self._foreign_lock:
            self._foreign.append((fn, args))
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # a wake-up is pending already, or the loop is gone

    def _woken(self, _events: int) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass
        with self._foreign_lock:
            calls, self._foreign = self._foreign, deque()
        self._soon.extend(calls)

    # -- running ----------------------------------------------------------------------

    def stop(self) -> None:
        self._stopping = True

    def run_forever(self) -> None:
        poll = self._poller.poll
        handlers = self._handlers
        while not self._stopping:
            for fd, events in poll(self._timeout()):
                handler = handlers.get(fd)
                if handler is not None:
                    try:
                        handler(events)
                    except Exception:  # a bug: logged; the loop and the other connections go on
                        log.exception("listener: unexpected error handling descriptor %s", fd)
            self._run_due()

    def _timeout(self) -> float:
        if self._soon:
            return 0
        timers = self._timers
        while timers and timers[0].fn is None:
            heapq.heappop(timers)
        if not timers:
            return 1.0
        return max(0.0, min(1.0, timers[0].when - time.monotonic()))

    def _run_due(self) -> None:
        timers = self._timers
        if timers:
            now = time.monotonic()
            while timers and timers[0].when <= now:
                timer = heapq.heappop(timers)
                if timer.fn is not None:
                    self._soon.append((timer.fn, timer.args))
        soon = self._soon
        for _ in range(len(soon)):
            fn, args = soon.popleft()
            try:
                fn(*args)
            except Exception:
                log.exception("listener: unexpected error in a scheduled call")

    def close(self) -> None:
        self._poller.close()
        self._wake_r.close()
        self._wake_w.close()


class StreamProtocol(Protocol):
    """What a ``Stream`` drives: asyncio's protocol interface."""

    def connection_made(self, transport: Stream) -> None: ...

    def data_received(self, data: bytes) -> None: ...

    def eof_received(self) -> bool: ...

    def connection_lost(self, exc: Exception | None) -> None: ...

    def pause_writing(self) -> None: ...

    def resume_writing(self) -> None: ...


class Stream:
    """A connected socket with asyncio's transport interface, driving an asyncio-style
    protocol (connection_made, data_received, eof_received, connection_lost,
    pause_writing, resume_writing). Writes beyond ``HIGH`` unsent bytes pause the
    protocol's writing until no more than ``LOW`` are left."""

    HIGH = 65536
    LOW = 16384
    __slots__ = ("reactor", "sock", "fd", "protocol", "peer", "_reading", "_wbuf", "_closing", "_closed",
                 "_write_paused", "_shut_after_flush")

    def __init__(self, reactor: Reactor, sock: socket.socket, protocol: StreamProtocol):
        self.reactor = reactor
        self.sock = sock
        self.fd = sock.fileno()
        self.protocol = protocol
        self.peer: Any  # (host, port, ...) for an IP socket, as socket.getpeername() gives it
        try:
            self.peer = sock.getpeername()
        except OSError:
            self.peer = None
        self._reading = True
        self._wbuf: bytearray | None = None
        self._closing = False
        self._closed = False
        self._write_paused = False
        self._shut_after_flush = False
        reactor.add(self.fd, READ, self._on_events)
        protocol.connection_made(self)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.peer if name == "peername" else default

    def is_closing(self) -> bool:
        return self._closing or self._closed

    def _watch(self) -> None:
        if not self._closed:
            self.reactor.modify(self.fd, (READ if self._reading else 0) | (WRITE if self._wbuf else 0))

    def _on_events(self, events: int) -> None:
        if events & WRITE and self._wbuf:
            self._flush()
        if self._reading and events & (READ | TROUBLE) and not self._closed:
            self._read()

    def _read(self) -> None:
        try:
            data = self.sock.recv(_RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(exc)
            return
        if data:
            self.protocol.data_received(data)
            return
        self._reading = False
        self._watch()
        if not self.protocol.eof_received():
            self.close()

    # -- the transport interface -------------------------------------------------------------

    def pause_reading(self) -> None:
        if self._reading:
            self._reading = False
            self._watch()

    def resume_reading(self) -> None:
        if not self._reading and not self._closing and not self._closed:
            self._reading = True
            self._watch()

    def write(self, data: bytes) -> None:
        if self._closing or self._closed:
            return
        wbuf = self._wbuf
        if wbuf is None:
            try:
                n = self.sock.send(data)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError as exc:
                self.reactor.call_soon(self._lost, exc)
                self._closing = True
                self._reading = False
                self._watch()
                return
            if n == len(data):
                return
            self._wbuf = wbuf = bytearray(memoryview(data)[n:])
            self._watch()
        else:
            wbuf += data
        if len(wbuf) > self.HIGH and not self._write_paused:
            self._write_paused = True
            self.protocol.pause_writing()

    def _flush(self) -> None:
        wbuf = self._wbuf
        if wbuf is None:
            return
        try:
            n = self.sock.send(wbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(exc)
            return
        del wbuf[:n]
        if wbuf:
            if self._write_paused and len(wbuf) <= self.LOW:
                self._write_paused = False
                self.protocol.resume_writing()
            return
        self._wbuf = None
        if self._closing:
            self._lost(None)
            return
        self._watch()
        if self._shut_after_flush:
            self._shutdown()
        if self._write_paused:
            self._write_paused = False
            self.protocol.resume_writing()

    def write_eof(self) -> None:
        if self._wbuf:
            self._shut_after_flush = True
        else:
            self._shutdown()

    def _shutdown(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        """Close once what is buffered has been sent; connection_lost follows."""
        if self._closing or self._closed:
            return
        self._closing = True
        self._reading = False
        if self._wbuf:
            self._watch()
        else:
            self.reactor.call_soon(self._lost, None)

    def abort(self) -> None:
        if self._closed:
            return
        self._closing = True
        self._reading = False
        self._wbuf = None
        self._watch()
        self.reactor.call_soon(self._lost, None)

    def _lost(self, exc: Exception | None) -> None:
        if self._closed:
            return
        self._closed = True
        self._closing = True
        self._wbuf = None
        self.reactor.remove(self.fd)
        try:
            self.sock.close()
        finally:
            self.protocol.connection_lost(exc)


def listening_socket(host: str, port: int, backlog: int = 1024) -> socket.socket:
    """A non-blocking listening TCP socket (OSError when the port is taken)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def set_nodelay(sock: _socket.socket) -> None:
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass
