"""Connections to targets: non-blocking sockets watched by the listener's reactor, and their pool.

No transport object per target connection: with targets that close after every
response (gunicorn's sync worker) one is made per request, so the fewer objects and
system calls around it the better. Every buffer is bounded: ``write`` reports when
more than ``WRITE_HIGH`` bytes wait, and the caller stops feeding until
``upstream_drained``. An idle pooled connection that receives anything (a close, or
bytes nobody asked for) is closed at once.
"""

from __future__ import annotations

import errno
import socket
import threading
from typing import Callable, Collection, Protocol

from _socket import socket as _raw_socket  # the C socket type: no Python-level __init__ per target connection

from ship.localcloud.alb.reactor import READ, TROUBLE, WRITE, Reactor, set_nodelay
from ship.localcloud.alb.targets import TargetKey

__all__ = ["Upstream", "UpstreamHandler", "Connector", "Connected", "Pool", "WRITE_HIGH", "WRITE_LOW", "RECV_SIZE"]

RECV_SIZE = 65536
WRITE_HIGH = 65536
WRITE_LOW = 16384


class UpstreamHandler(Protocol):
    """What an upstream connection tells (an exchange, or a WebSocket tunnel)."""

    def upstream_data(self, up: Upstream, data: bytes) -> None: ...

    def upstream_eof(self, up: Upstream) -> None: ...

    def upstream_error(self, up: Upstream, exc: OSError) -> None: ...

    def upstream_drained(self, up: Upstream) -> None: ...


class Upstream:
    """One connection to a target. ``handler`` gets upstream_data / upstream_eof /
    upstream_error / upstream_drained; without a handler (idle in the pool) any input closes it."""

    __slots__ = ("reactor", "sock", "fd", "key", "handler", "closed", "idle_since", "_reading", "_wbuf",
                 "_nodelay", "lingering_in")

    def __init__(self, reactor: Reactor, sock: _raw_socket, key: TargetKey):
        self.reactor = reactor
        self.sock = sock
        self.fd = sock.fileno()
        self.key = key
        self.handler: UpstreamHandler | None = None
        self.closed = False
        self.idle_since = 0.0
        self._wbuf: bytearray | None = None
        self._nodelay = False
        self.lingering_in: dict[Upstream, float] | None = None  # the pool's table of connections closing
        # after their target
        self._reading = True
        reactor.add(self.fd, READ, self._on_events)

    def _watch(self) -> None:
        if not self.closed:
            self.reactor.modify(self.fd, (READ if self._reading else 0) | (WRITE if self._wbuf is not None else 0))

    def _on_events(self, events: int) -> None:
        if events & WRITE and self._wbuf is not None:
            self._on_writable()
        if self._reading and events & (READ | TROUBLE) and not self.closed:
            self._on_readable()

    # -- reading ----------------------------------------------------------------

    def _on_readable(self) -> None:
        try:
            data = self.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            handler = self.handler
            self.close()
            if handler is not None:
                handler.upstream_error(self, exc)
            return
        handler = self.handler
        if handler is None:  # idle: the target closed it, or sent what nobody asked for
            self.close()
        elif data:
            handler.upstream_data(self, data)
        else:
            self._reading = False
            self._watch()
            handler.upstream_eof(self)

    def pause_reading(self) -> None:
        if self._reading:
            self._reading = False
            self._watch()

    def resume_reading(self) -> None:
        if not self._reading and not self.closed:
            self._reading = True
            self._watch()

    # -- writing ----------------------------------------------------------------

    def set_nodelay(self) -> None:
        if not self._nodelay:
            self._nodelay = True
            set_nodelay(self.sock)

    def write(self, data: bytes) -> bool:
        """Send ``data``; False when more than WRITE_HIGH bytes now wait to be sent."""
        if self.closed:
            return True
        wbuf = self._wbuf
        if wbuf is not None:
            wbuf += data
            return len(wbuf) <= WRITE_HIGH
        try:
            n = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError as exc:
            self.reactor.call_soon(self._write_failed, exc)
            return True
        if n < len(data):
            self._wbuf = bytearray(memoryview(data)[n:])
            self._watch()
            return len(self._wbuf) <= WRITE_HIGH
        return True

    def _write_failed(self, exc: OSError) -> None:
        handler = self.handler
        if not self.closed:
            self.close()
            if handler is not None:
                handler.upstream_error(self, exc)

    def _on_writable(self) -> None:
        wbuf = self._wbuf
        if wbuf is None:
            return
        try:
            n = self.sock.send(wbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._write_failed(exc)
            return
        del wbuf[:n]
        if not wbuf:
            self._wbuf = None
            self._watch()
        if len(wbuf) <= WRITE_LOW and self.handler is not None:
            self.handler.upstream_drained(self)

    @property
    def pending(self) -> int:
        return len(self._wbuf) if self._wbuf is not None else 0

    def shutdown_write(self) -> None:
        if self._wbuf is None and not self.closed:
            try:
                self.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def close_after_target(self, lingering: dict[Upstream, float], until: float) -> None:
        """Close once the target has closed its side (it said it would): the target, not the
        balancer, then holds the TIME_WAIT state, as with HAProxy. Anything it sends closes it
        at once; the pool closes it at ``until`` if the target stays silent."""
        if self.closed:
            return
        self.handler = None  # any input now closes it (see _on_readable)
        self.lingering_in = lingering
        lingering[self] = until
        self.resume_reading()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.handler = None
        self._wbuf = None
        if self.lingering_in is not None:
            self.lingering_in.pop(self, None)
            self.lingering_in = None
        self.reactor.remove(self.fd)
        self.sock.close()


def _numeric_family(host: str) -> int:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except (OSError, ValueError):
            continue
        return family
    return 0


Connected = Callable[["Upstream | OSError"], None]  # told the connection, or why there is none
Cancel = Callable[[], None]


class Connector:
    """Opens connections to targets; ``open`` calls ``done(upstream)`` or ``done(error)``,
    possibly before it returns (a local connect often completes at once). Returns a cancel function."""

    def __init__(self, reactor: Reactor):
        self.reactor = reactor
        self._families: dict[str, int] = {}
        self.connects = 0

    def open(self, key: TargetKey, done: Connected) -> Cancel:
        self.connects += 1
        family = self._families.get(key[0])
        if family is None:
            family = self._families[key[0]] = _numeric_family(key[0])
        if not family:
            return self._resolve_then_open(key, done)
        return self._open_numeric(family, key, key, done)

    def _open_numeric(self, family: int, addr: tuple[str, int], key: TargetKey, done: Connected) -> Cancel:
        """Connect to ``addr`` (a numeric address: (host, port), or IPv6's (host, port, flow, scope))."""
        reactor = self.reactor
        sock = _raw_socket(family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
        err = sock.connect_ex(addr[:2])
        if err == 0:
            done(Upstream(reactor, sock, key))
            return _noop
        if err not in (errno.EINPROGRESS, errno.EAGAIN):
            sock.close()
            done(OSError(err, f"connect to {addr[0]}:{addr[1]}: {errno.errorcode.get(err, err)}"))
            return _noop
        try:  # on loopback the handshake has usually completed within connect(): no trip through the loop
            sock.getpeername()
        except OSError:
            pass
        else:
            done(Upstream(reactor, sock, key))
            return _noop
        fd = sock.fileno()

        def writable(_events: int) -> None:
            reactor.remove(fd)
            e = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if e:
                sock.close()
                done(OSError(e, f"connect to {addr[0]}:{addr[1]}: {errno.errorcode.get(e, e)}"))
            else:
                done(Upstream(reactor, sock, key))

        def cancel() -> None:
            if sock.fileno() >= 0:
                reactor.remove(fd)
                sock.close()

        reactor.add(fd, WRITE, writable)
        return cancel

    def _resolve_then_open(self, key: TargetKey, done: Connected) -> Cancel:
        """A target named by host name: resolved on a thread of its own (each time: its address may change)."""
        cancelled: list[bool] = []

        def resolve() -> None:
            result: tuple[int, tuple[str, int]] | OSError
            try:
                infos = socket.getaddrinfo(key[0], key[1], type=socket.SOCK_STREAM)
                addrs = [(int(f), (str(a[0]), int(a[1]))) for f, _t, _p, _n, a in infos
                         if f in (socket.AF_INET, socket.AF_INET6)]
                result = addrs[0] if addrs else OSError(f"cannot resolve {key[0]}")
            except OSError as exc:
                result = exc
            self.reactor.call_soon_threadsafe(resolved, result)

        def resolved(result: tuple[int, tuple[str, int]] | OSError) -> None:
            if cancelled:
                return
            if isinstance(result, OSError):
                done(result)
            else:
                self._open_numeric(result[0], result[1], key, done)

        threading.Thread(target=resolve, name=f"resolve-{key[0]}", daemon=True).start()
        return lambda: cancelled.append(True)


def _noop() -> None:
    return None


class Pool:
    """Idle keep-alive connections per target, at most ``per_target`` each, for ``keepalive`` seconds."""

    def __init__(self, per_target: int = 64, keepalive: float = 60.0):
        self.per_target = per_target
        self.keepalive = keepalive
        self._idle: dict[TargetKey, list[Upstream]] = {}
        # Closing after their target: connection -> deadline (close_after_target).
        self._lingering: dict[Upstream, float] = {}
        self.reused = 0

    def take(self, key: TargetKey, now: float) -> Upstream | None:
        conns = self._idle.get(key)
        while conns:
            up = conns.pop()
            if not up.closed and now - up.idle_since < self.keepalive:
                self.reused += 1
                return up
            up.close()
        return None

    def put(self, up: Upstream, now: float) -> None:
        conns = self._idle.setdefault(up.key, [])
        if len(conns) >= self.per_target:
            up.close()
            return
        up.handler = None
        up.idle_since = now
        up.resume_reading()  # watch it: a close or stray bytes while idle close it
        conns.append(up)

    def linger(self, up: Upstream, now: float, seconds: float = 2.0) -> None:
        """Let the target close first (Upstream.close_after_target), for at most ``seconds``."""
        up.close_after_target(self._lingering, now + seconds)

    def expire(self, now: float, keep_keys: Collection[TargetKey] | None = None) -> None:
        for up, until in list(self._lingering.items()):
            if until > now:
                break  # in the order they began lingering, with the same delay
            up.close()
        for key, conns in list(self._idle.items()):
            alive = [u for u in conns if not u.closed and now - u.idle_since < self.keepalive
                     and (keep_keys is None or key in keep_keys)]
            for u in conns:
                if u not in alive:
                    u.close()
            if alive:
                self._idle[key] = alive
            else:
                del self._idle[key]

    def close_all(self) -> None:
        for conns in self._idle.values():
            for u in conns:
                u.close()
        self._idle.clear()
        for u in list(self._lingering):
            u.close()

    def idle_count(self) -> int:
        return sum(len(v) for v in self._idle.values())
