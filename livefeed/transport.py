"""uvicorn's WebSocket protocol with a direct path for broadcast frames, and parked readers.

The ASGI path costs a task switch and several awaits per frame per reader. For live events the
hub instead calls ``send`` here for each reader, synchronously, with the frame encoded once for
everyone (what ``websockets.broadcast`` does). A reader whose unsent bytes pass a limit is not
written to any more; ``close`` sends it a close frame and aborts the connection if the peer does
not take it in time, so a stalled reader cannot hold memory.

A reader that has caught up has nothing left for its ASGI task to do, so it can ``park``: the
task ends and the protocol keeps the connection open by itself, telling a small ``Parked`` object
when the peer sends something or goes away. An idle reader then costs its socket, this protocol
and its hub entry, not a task, its coroutine frames, a receive queue and the handshake's headers.

The extension is offered in the ASGI scope under ``DIRECT_SEND``; without it (another server,
the test client) livefeed falls back to sending through ASGI.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import OPEN
from websockets.protocol import Protocol as WebSocketProtocol

from livefeed.errors import CLOSE_POLICY
from livefeed.metrics import SLOW_READERS_CLOSED

DIRECT_SEND = "livefeed.direct_send"
_ABORT_AFTER = 5.0


_CONNECTIONS = logging.getLogger("livefeed.connections")
_CONNECTIONS.setLevel(logging.WARNING)  # --log-level debug turns it up


class Parked(Protocol):
    """What a parked connection reports to: its owner in the hub."""

    def message(self) -> bool:
        """The peer sent a message; False closes the connection with 1008 (policy)."""

    def lost(self) -> None:
        """The connection is over (called once)."""


class _Unused:
    """Stands in for a parked connection's ASGI receive queue and "writable" flag: nobody reads
    or waits on them any more, and each would hold a few hundred bytes per reader."""

    def put_nowait(self, item: object) -> None:
        pass

    def empty(self) -> bool:
        return True

    def set(self) -> None:
        pass

    def clear(self) -> None:
        pass


_UNUSED = _Unused()


class DirectSendProtocol(WebSocketsSansIOProtocol):
    """Adds ``send(frames, limit) -> bool``, ``close(code, reason)`` and ``park(owner) -> bool``
    to the scope.

    Per-connection log lines ("WebSocket ... [accepted]") go to ``livefeed.connections``, quiet
    unless an operator turns it up: at ten thousand readers they cost more than the sockets.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.logger = _CONNECTIONS
        self.conn.logger = _CONNECTIONS  # websockets logs "connection open" and "closed" at INFO
        self.parked: Parked | None = None

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:
            direct = {"send": self.direct_send, "close": self.direct_close, "park": self.park}
            scope["extensions"][DIRECT_SEND] = direct

    def direct_send(self, frames: bytes, limit: int) -> bool:
        """Write whole text frames (``frames.websocket_text_frame``, joined: the same bytes for
        every reader) now; False when the reader is gone or has ``limit`` bytes unsent.

        websockets' protocol object is bypassed: it keeps no state about data frames sent
        whole, and framing each broadcast once per reader is what this path exists to avoid.
        """
        if self.close_sent or self.disconnected or self.conn.state is not OPEN:
            return False
        if self.transport.is_closing():  # failed already; uvicorn hears of it a loop turn later
            return False
        if self.transport.get_write_buffer_size() > limit:
            SLOW_READERS_CLOSED.inc()  # the hub stops writing to it and closes it with 4408
            return False
        self.transport.write(frames)
        return True

    async def send(self, message: Any) -> None:
        """ASGI send, refusing frames for a transport that has already failed (uvicorn marks the
        connection lost only a loop turn later; a catch-up page would write into the void)."""
        if message["type"] == "websocket.send" and self.transport.is_closing():
            raise ClientDisconnected
        await super().send(message)

    def direct_close(self, code: int, reason: str) -> None:
        """Send a close frame behind whatever is queued; abort if the peer does not answer it in
        time (a stalled reader would otherwise keep its unsent frames in memory)."""
        if self.close_sent or self.disconnected:
            return
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        if self.conn.state is OPEN:
            self.conn.send_close(code, reason)
            self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        owner, self.parked = self.parked, None
        if owner is not None:  # it leaves the hub now, not when the peer gets round to closing
            owner.lost()
        if self.read_paused:  # the peer's answering close frame must be read
            self.read_paused = False
            self.transport.resume_reading()
        self.close_timer = self.loop.call_later(_ABORT_AFTER, self.transport.abort)

    def park(self, owner: Parked) -> bool:
        """Keep the connection open after the ASGI task ends; report to ``owner`` from now on.

        False if the connection is already closing: the caller still owns it then.
        """
        if self.close_sent or self.disconnected or self.transport.is_closing():
            return False
        self.parked = owner
        # Drop what only the ASGI task and the handshake used.
        self.queue = self.writable = _UNUSED  # type: ignore[assignment]
        for name in ("scope", "request", "response"):
            self.__dict__.pop(name, None)
        conn, reader = self.conn, self.conn.reader
        if not reader.buffer and not reader.eof and conn.parser_exc is None:
            # websockets' server parser keeps the handshake request (all its headers) alive in
            # its frame for as long as the connection lasts. Between frames the plain frame
            # parser is in the same state (partial-message state lives on ``conn``), so swap to
            # it, as websockets itself swaps parsers on close.
            conn.parser = WebSocketProtocol.parse(conn)
            next(conn.parser)
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        return True

    def send_receive_event_to_app(self) -> None:
        if self.parked is None:
            super().send_receive_event_to_app()
            return
        self.frames = []
        if not self.close_sent and not self.parked.message():
            self.direct_close(CLOSE_POLICY, "readers send no messages")

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        owner, self.parked = self.parked, None
        if owner is not None:
            owner.lost()

    async def run_asgi(self) -> None:
        """uvicorn's, except that a parked connection stays open when the application returns."""
        try:
            result = await self.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except BaseException:
            self.logger.exception("Exception in ASGI application\n")
            self.send_500_response()
        else:
            if not self.handshake_complete:
                self.logger.error("ASGI callable returned without completing handshake.")
                self.send_500_response()
            elif result is not None:
                self.logger.error("ASGI callable should return None, but returned '%s'.", result)
        if self.close_timer is None and self.parked is None:
            self.transport.close()

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
