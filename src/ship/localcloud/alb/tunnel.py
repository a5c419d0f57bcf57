"""After a target's 101 to a WebSocket upgrade: bytes both ways until either side closes.

ALB supports WebSockets natively; the idle timeout still applies (the listener's sweeper
closes a tunnel in which nothing moved for that long). Backpressure both ways: a full
target send buffer pauses reading the client, a full client transport pauses reading
the target.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ship.localcloud.alb.upstream import Upstream

if TYPE_CHECKING:
    from ship.localcloud.alb.client import ClientConnection


class Tunnel:
    __slots__ = ("conn", "up", "_client_eof", "_target_eof")

    def __init__(self, conn: ClientConnection, up: Upstream, from_target: bytes, from_client: bytes):
        self.conn = conn
        self.up = up
        self._client_eof = False
        self._target_eof = False
        up.handler = self
        conn.listener.count("websockets")
        if from_target:
            conn.write(from_target)
        if from_client and not up.write(from_client):
            conn.pause_reading()

    # client -> target
    def client_data(self, data: bytes) -> None:
        if not self.up.write(data):
            self.conn.pause_reading()

    def upstream_drained(self, up: Upstream) -> None:
        self.conn.resume_reading()

    def client_eof(self) -> None:
        self._client_eof = True
        if self._target_eof:
            self.close()
        else:
            self.up.shutdown_write()

    def client_gone(self) -> None:
        self.up.close()

    # target -> client
    def upstream_data(self, up: Upstream, data: bytes) -> None:
        conn = self.conn
        conn.last = conn.listener.now()
        conn.write(data)
        if conn.write_paused:
            up.pause_reading()

    def upstream_eof(self, up: Upstream) -> None:
        self._target_eof = True
        if self._client_eof:
            self.close()
        else:
            self.conn.write_eof()

    def upstream_error(self, up: Upstream, exc: OSError) -> None:
        self.close()

    def close(self) -> None:
        self.up.close()
        self.conn.close()
