"""Connections to targets: non-blocking sockets watched by the event loop, and their pool.

No asyncio transport per target connection: with targets that close after every
response (gunicorn's sync worker) one is made per request, so the fewer objects and
system calls around it the better. Every buffer is bounded: ``write`` reports when
more than ``WRITE_HIGH`` bytes wait, and the caller stops feeding until
``upstream_drained``. An idle pooled connection that receives anything (a close, or
bytes nobody asked for) is closed at once.
"""

from __future__ import annotations

import errno
import socket

__all__ = ["Upstream", "Connector", "Pool", "WRITE_HIGH", "WRITE_LOW", "RECV_SIZE"]

RECV_SIZE = 65536
WRITE_HIGH = 65536
WRITE_LOW = 16384


class Upstream:
    """One connection to a target. ``handler`` gets upstream_data / upstream_eof /
    upstream_error / upstream_drained; without a handler (idle in the pool) any input closes it."""

    __slots__ = ("loop", "sock", "fd", "key", "handler", "closed", "idle_since", "_reading", "_paused", "_wbuf",
                 "_nodelay")

    def __init__(self, loop, sock: socket.socket, key: tuple):
        self.loop = loop
        self.sock = sock
        self.fd = sock.fileno()
        self.key = key
        self.handler = None
        self.closed = False
        self.idle_since = 0.0
        self._wbuf: bytearray | None = None
        self._paused = False
        self._nodelay = False
        loop.add_reader(self.fd, self._on_readable)
        self._reading = True

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
            self._stop_reading()
            handler.upstream_eof(self)

    def _stop_reading(self) -> None:
        if self._reading:
            self._reading = False
            self.loop.remove_reader(self.fd)

    def pause_reading(self) -> None:
        self._paused = True
        self._stop_reading()

    def resume_reading(self) -> None:
        self._paused = False
        if not self._reading and not self.closed:
            self._reading = True
            self.loop.add_reader(self.fd, self._on_readable)

    # -- writing ----------------------------------------------------------------

    def set_nodelay(self) -> None:
        if not self._nodelay:
            self._nodelay = True
            try:
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

    def write(self, data) -> bool:
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
            self.loop.call_soon(self._write_failed, exc)
            return True
        if n < len(data):
            self._wbuf = bytearray(memoryview(data)[n:])
            self.loop.add_writer(self.fd, self._on_writable)
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
            self.loop.remove_writer(self.fd)
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

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.handler = None
        self._stop_reading()
        if self._wbuf is not None:
            self._wbuf = None
            self.loop.remove_writer(self.fd)
        self.sock.close()


def _numeric_family(host: str) -> int:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except (OSError, ValueError):
            continue
        return family
    return 0


class Connector:
    """Opens connections to targets; ``open`` calls ``done(upstream, None)`` or ``done(None, error)``,
    possibly before it returns (a local connect often completes at once). Returns a cancel function."""

    def __init__(self, loop):
        self.loop = loop
        self._families: dict = {}
        self.connects = 0

    def open(self, key: tuple, done):
        self.connects += 1
        family = self._families.get(key[0])
        if family is None:
            family = self._families[key[0]] = _numeric_family(key[0])
        if not family:
            task = self.loop.create_task(self._resolve_then_open(key, done))
            return task.cancel
        return self._open_numeric(family, key, key, done)

    def _open_numeric(self, family: int, addr: tuple, key: tuple, done):
        loop = self.loop
        sock = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
        err = sock.connect_ex(addr[:2])
        if err == 0:
            done(Upstream(loop, sock, key), None)
            return _noop
        if err not in (errno.EINPROGRESS, errno.EAGAIN):
            sock.close()
            done(None, OSError(err, f"connect to {addr[0]}:{addr[1]}: {errno.errorcode.get(err, err)}"))
            return _noop
        try:  # on loopback the handshake has usually completed within connect(): no trip through the loop
            sock.getpeername()
        except OSError:
            pass
        else:
            done(Upstream(loop, sock, key), None)
            return _noop
        fd = sock.fileno()

        def writable():
            loop.remove_writer(fd)
            e = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if e:
                sock.close()
                done(None, OSError(e, f"connect to {addr[0]}:{addr[1]}: {errno.errorcode.get(e, e)}"))
            else:
                done(Upstream(loop, sock, key), None)

        def cancel():
            if sock.fileno() >= 0:
                loop.remove_writer(fd)
                sock.close()

        loop.add_writer(fd, writable)
        return cancel

    async def _resolve_then_open(self, key: tuple, done) -> None:
        try:
            infos = await self.loop.getaddrinfo(key[0], key[1], type=socket.SOCK_STREAM)
        except OSError as exc:
            done(None, exc)
            return
        for family, _t, _p, _n, addr in infos:
            if family in (socket.AF_INET, socket.AF_INET6):
                self._open_numeric(family, addr, key, done)
                return
        done(None, OSError(f"cannot resolve {key[0]}"))


def _noop() -> None:
    return None


class Pool:
    """Idle keep-alive connections per target, at most ``per_target`` each, for ``keepalive`` seconds."""

    def __init__(self, per_target: int = 64, keepalive: float = 60.0):
        self.per_target = per_target
        self.keepalive = keepalive
        self._idle: dict = {}
        self.reused = 0

    def take(self, key: tuple, now: float) -> Upstream | None:
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

    def expire(self, now: float, keep_keys=None) -> None:
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

    def idle_count(self) -> int:
        return sum(len(v) for v in self._idle.values())
