"""uvicorn's WebSocket protocol with a direct path for broadcast frames.

The ASGI path costs a task switch and several awaits per frame per reader. For live events the
hub instead calls ``send`` here for each reader, synchronously, with the frame encoded once for
everyone (what ``websockets.broadcast`` does). A reader whose unsent bytes pass a limit is not
written to any more; ``close`` sends it a close frame and aborts the connection if the peer does
not take it in time, so a stalled reader cannot hold memory.

The extension is offered in the ASGI scope under ``DIRECT_SEND``; without it (another server,
the test client) livefeed falls back to sending through ASGI.
"""

from __future__ import annotations

import logging
from typing import Any

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import OPEN

from livefeed.metrics import SLOW_READERS_CLOSED

DIRECT_SEND = "livefeed.direct_send"
_ABORT_AFTER = 5.0


_CONNECTIONS = logging.getLogger("livefeed.connections")
_CONNECTIONS.setLevel(logging.WARNING)  # --log-level debug turns it up


class DirectSendProtocol(WebSocketsSansIOProtocol):
    """Adds ``send(payload, limit) -> bool`` and ``close(code, reason)`` to the scope.

    Per-connection log lines ("WebSocket ... [accepted]") go to ``livefeed.connections``, quiet
    unless an operator turns it up: at ten thousand readers they cost more than the sockets.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.logger = _CONNECTIONS

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:
            direct = {"send": self.direct_send, "close": self.direct_close}
            scope["extensions"][DIRECT_SEND] = direct

    def direct_send(self, payload: bytes, limit: int) -> bool:
        """Write one text frame now; False when the reader is gone or has ``limit`` bytes unsent."""
        if self.close_sent or self.disconnected or self.conn.state is not OPEN:
            return False
        if self.transport.is_closing():  # failed already; uvicorn hears of it a loop turn later
            return False
        if self.transport.get_write_buffer_size() > limit:
            SLOW_READERS_CLOSED.inc()  # the hub stops writing to it and closes it with 4408
            return False
        self.conn.send_text(payload)
        self.transport.write(b"".join(self.conn.data_to_send()))
        return True

    async def send(self, message: Any) -> None:
        """ASGI send, refusing frames for a transport that has already failed (uvicorn marks the
        connection lost only a loop turn later; a catch-up page would write into the void)."""
        if message["type"] == "websocket.send" and self.transport.is_closing():
            raise ClientDisconnected
        await super().send(message)

    def direct_close(self, code: int, reason: str) -> None:
        """Send a close frame behind whatever is queued; abort if it is not through in time."""
        if self.close_sent or self.disconnected:
            return
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        if self.conn.state is OPEN:
            self.conn.send_close(code, reason)
            self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self.loop.call_later(_ABORT_AFTER, self._abort_if_open)

    def shutdown(self) -> None:
        """On server shutdown tell readers to come back: 1001 "going away", not uvicorn's 1012.

        HTTP requests in flight (a publish) are left to finish by uvicorn; sockets close now.
        """
        if self.handshake_complete and not self.close_sent and not self.disconnected:
            self.stop_keepalive()
            self.queue.put_nowait({"type": "websocket.disconnect", "code": 1001})
            if self.conn.state is OPEN:
                self.conn.send_close(1001, "server restarting: reconnect")
                self.transport.write(b"".join(self.conn.data_to_send()))
            self.close_sent = True
            self.transport.close()
            return
        super().shutdown()

    def _abort_if_open(self) -> None:
        if not self.transport.is_closing() or self.transport.get_write_buffer_size():
            self.transport.abort()
