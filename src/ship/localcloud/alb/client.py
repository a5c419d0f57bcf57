"""A client connection to a listener: its input, its framing, its exchanges one at a time.

Memory is bounded per connection: at most ``IN_HIGH`` unparsed input bytes (reading
pauses above it), at most one slice of parse-ahead in the ``RequestReader``, and the
transport's write buffer (its high-water mark: while it is over, the target
connection is not read and the next request is not started). A client that pipelines
requests and never reads its responses therefore stops being read.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ship.localcloud.alb import pages
from ship.localcloud.alb.exchange import Exchange
from ship.localcloud.alb.forwarding import Forwarding
from ship.localcloud.alb.framing import ProtocolError, RequestHead
from ship.localcloud.alb.reactor import Stream
from ship.localcloud.alb.tunnel import Tunnel
from ship.localcloud.alb.upstream import Upstream

if TYPE_CHECKING:
    from ship.localcloud.alb.listener import Listener

log = logging.getLogger("ship.localcloud.alb")

IN_HIGH = 65536  # stop reading the client above this many unparsed bytes
IN_LOW = 16384


class ClientConnection:
    """The protocol of a client connection (asyncio's protocol interface, driven by ``reactor.Stream``)."""

    def __init__(self, listener: Listener):
        self.listener = listener
        self.transport: Stream | None = None  # from connection_made on
        self.ip = "127.0.0.1"
        self.ip_bytes = b"127.0.0.1"
        self.reader = listener.request_reader(self)
        self.exchange: Exchange | None = None
        self.tunnel: Tunnel | None = None
        self.write_paused = False
        self.batching = False  # writes wait in _out until flush() (one send per target read)
        self._out: list[bytes] = []
        self.last = 0.0
        self._in: bytes | bytearray = b""  # unparsed input (a bytearray once requests are pipelined)
        self._read_paused = False
        self._pumping = False
        self._keep = True
        self._closing = False
        self._eof = False

    # -- the protocol interface -----------------------------------------------------------

    def connection_made(self, transport: Stream) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.ip = peer[0]
            self.ip_bytes = peer[0].encode()
        self.last = self.listener.now()
        self.listener.client_opened(self)

    def data_received(self, data: bytes) -> None:
        self.last = self.listener.now()
        if self.tunnel is not None:
            self.tunnel.client_data(data)
            return
        buf = self._in
        if buf:
            if isinstance(buf, bytes):
                buf = self._in = bytearray(buf)
            buf += data
        else:
            self._in = buf = data
        if len(buf) > IN_HIGH and not self._read_paused:
            self.pause_reading()
        if not self._pumping:
            self.pump()

    def eof_received(self) -> bool:
        self._eof = True
        if self.tunnel is not None:
            self.tunnel.client_eof()
        else:
            self.pump()
        return True  # half-closed: the answers to what was sent can still be sent

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        if self.exchange is not None:
            ex, self.exchange = self.exchange, None
            ex.client_gone()
        if self.tunnel is not None:
            self.tunnel.client_gone()
            self.tunnel = None
        self.reader.close()
        self.listener.client_closed(self)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        target = self.tunnel or self.exchange
        up = target.up if target is not None else None
        if up is not None:
            up.resume_reading()
        self.pump()

    # -- reading ------------------------------------------------------------------

    def pause_reading(self) -> None:
        transport = self.transport
        if not self._read_paused and not self._closing and transport is not None:
            self._read_paused = True
            transport.pause_reading()

    def resume_reading(self) -> None:
        transport = self.transport
        if self._read_paused and not self._closing and transport is not None:
            self._read_paused = False
            transport.resume_reading()

    def pump(self) -> None:
        """Feed the reader as far as the current state allows (re-entrant calls are folded)."""
        if self._pumping or self._closing:
            return
        self._pumping = True
        try:
            self._pump()
        except ProtocolError as exc:
            self._refuse(exc)
        finally:
            self._pumping = False
        if self._read_paused and len(self._in) < IN_LOW and self.tunnel is None:
            self.resume_reading()

    def _pump(self) -> None:
        reader = self.reader
        while not self._closing and self.tunnel is None:
            ex = self.exchange
            if ex is None and reader.done:
                if not self._keep or self.write_paused:
                    return  # the answer is unsent: the next request waits
                reader.next_request()  # may start the next exchange (parsed ahead)
                continue
            if ex is not None and not ex.wants_body():
                return
            buf = self._in
            if not buf:
                break
            n = reader.feed(buf)
            if not n:
                break
            if n == len(buf):
                self._in = b""
            else:
                if isinstance(buf, bytes):  # pipelined: a bytearray drops consumed bytes without copying the rest
                    buf = self._in = bytearray(buf)
                del buf[:n]
        if self._eof:
            self._after_eof()

    # -- the reader's handler ---------------------------------------------------------

    def on_request(self, head: RequestHead) -> None:
        self.listener.count("requests")
        ex = self.exchange = Exchange(self, head)
        ex.start()

    def on_request_data(self, data: bytes) -> None:
        if self.exchange is not None:
            self.exchange.request_data(data)

    def on_request_end(self) -> None:
        if self.exchange is not None:
            self.exchange.request_end()

    # -- from the exchange --------------------------------------------------------------

    def write(self, data: bytes) -> None:
        transport = self.transport
        if self._closing or transport is None:
            return
        if self.batching:
            self._out.append(data)
        else:
            transport.write(data)

    def flush(self) -> None:
        self.batching = False
        out = self._out
        if out:
            self._out = []
            transport = self.transport
            if not self._closing and transport is not None:
                transport.write(out[0] if len(out) == 1 else b"".join(out))

    def write_eof(self) -> None:
        """Half-close towards the client once what is buffered has been sent."""
        if self.transport is not None:
            self.transport.write_eof()

    def exchange_done(self, keep: bool) -> None:
        self.exchange = None
        self._keep = keep
        if not keep:
            self.close()
        elif not self._pumping:
            self.pump()

    def start_tunnel(self, ex: Forwarding, up: Upstream, from_target: bytes) -> None:
        """The target answered 101 to a WebSocket upgrade: bytes flow both ways from now on."""
        ex.up = None
        ex.finish_tunnelled()
        self.exchange = None
        rest = self.reader.rest() + bytes(self._in)
        self._in = b""
        self.tunnel = Tunnel(self, up, from_target, rest)
        self.resume_reading()

    # -- the end ----------------------------------------------------------------------

    def _refuse(self, exc: ProtocolError) -> None:
        """A request that must not be forwarded: the balancer's answer, then close."""
        self.listener.count("requests")
        self.listener.count(str(exc.status))
        log.info("listener %s: %d to %s: %s", self.listener.name, exc.status, self.ip, exc.reason)
        ex = self.exchange
        if ex is not None:  # broken in the middle of a body being forwarded
            self.exchange = None
            ex.client_gone()
            if ex.responded:
                self.abort()
                return
        self.listener.count_response(exc.status, None)
        self.write(pages.error_page(exc.status, False))
        self.close()

    def _after_eof(self) -> None:
        """The client half-closed: close once what it sent has been answered, or cannot be."""
        ex = self.exchange
        if ex is None:
            if not self.reader.done:
                self.close()  # nothing, or part of a request that can never complete
        elif not ex.req_done and not self._in and ex.wants_body():
            self.exchange = None  # the rest of the body will never come
            ex.client_gone()
            self.abort()

    def check(self, now: float, idle: float) -> None:
        """The listener's sweeper: idle and request timeouts."""
        if self.tunnel is not None:
            if now - self.last > idle:
                self.tunnel.close()
            return
        ex = self.exchange
        if ex is not None:
            ex.check(now, idle)
        elif now - self.last > idle:
            if self._in or self.reader.busy:  # ALB: 408 for a request still incomplete
                self.listener.count("408")
                self.listener.count_response(408, None)
                self.write(pages.error_page(408, False))
            self.close()

    def close(self) -> None:
        if not self._closing:
            self.flush()
            self._closing = True
            if self.transport is not None:
                self.transport.close()  # what is buffered (an answer) is sent first

    def abort(self) -> None:
        self._closing = True
        if self.transport is not None:
            self.transport.abort()
