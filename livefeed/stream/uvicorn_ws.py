"""uvicorn's WebSocket protocol as a ``ReaderSocket``: direct writes of broadcast frames, and
parked readers.

The ASGI path costs a task switch and several awaits per frame per reader. For live events the
hub instead calls ``send_frames`` for each reader, synchronously, with the frame encoded once for
everyone (what ``websockets.broadcast`` does): here for the batch that goes out as the reader
parks, then the ``ParkedSocket``'s for the rest. A reader whose unsent bytes pass a limit
is not written to any more; ``close`` sends it a close frame and aborts the connection if the
peer does not take it in time, so a stalled reader cannot hold memory.

A reader ``adopt``s its connection as soon as it is accepted: from then on this protocol handles
what the peer sends by itself, in every state (catching up, parked), as websockets' own server
does: pings are answered, a close is echoed, messages count against the reader's budget (1008),
a text message that is not UTF-8 gets 1007, protocol errors 1002 and oversized messages 1009.
Nothing waits in the ASGI receive queue while a catch-up is written, and a catch-up stops as soon
as the connection is closing. Client protocol errors are logged once, briefly, at INFO on
``livefeed.connections`` (quiet unless turned up): a hostile client cannot flood the log.

A reader that has caught up has nothing left for its ASGI task to do, so it can ``park``: the
task ends and the connection is handed to a ``ws_parked.ParkedSocket`` (``transport.set_protocol``),
one small object that keeps it open, tells a ``Parked`` object when the peer goes away, and
handles what the peer sends with a websockets connection made only while bytes arrive. This
protocol object is dropped then, with websockets' connection, its parser (which holds the
handshake request), uvicorn's state and timers: an idle reader costs its socket, its transport,
that object and its hub entry, not a task, its coroutine frames, a receive queue, the handshake's
headers or two keepalive timers (``bench/parked.py`` measures it).

Slow readers, in every state: a reader is closed with 4408 (too slow) when its unsent bytes pass
the hub's limit (live), when its catch-up queue overflows (``hub``), or when it does not answer a
keepalive ping within ``ws_ping_timeout`` (a catch-up is written with flow control, so there the
symptom is a ping stuck behind unread data); it is aborted if it has not taken the close frame
``ABORT_AFTER`` seconds later.

Compression (``LIVEFEED_WS_COMPRESSION``, uvicorn's ``ws_per_message_deflate``): every socket of
this protocol (readers, the desk, replay) accepts permessage-deflate as ``stream.deflate``'s
``BroadcastDeflate`` negotiates it (no context takeover either way). A reader so negotiated is
``deflate``: the hub writes it each event's frame compressed once (``Event.deflated_wire``);
what goes through ASGI (a catch-up from Redis, the desk's and replay's frames) websockets
compresses per message on the connection, and what the peer sends it decompresses.

The protocol object itself is offered in the ASGI scope under ``socket.READER_SOCKET``; without
it (another server, uvicorn's stock protocols: ``LIVEFEED_WS_DIRECT=0``) livefeed falls back to
sending through ASGI. This module and ``ws_parked`` are the only ones that know uvicorn's and
websockets' internals; tests/test_transport.py holds them to RFC 6455, and CI runs them against
their newest releases.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import CloseCode
from websockets.protocol import OPEN

from livefeed.errors import CLOSE_POLICY, CLOSE_TOO_SLOW
from livefeed.metrics import SLOW_READERS_CLOSED
from livefeed.stream.deflate import BroadcastDeflate, broadcast_deflate
from livefeed.stream.socket import READER_SOCKET, DirectSocket, Parked, ReaderSocket
from livefeed.stream.ws_parked import (
    ABORT_AFTER,
    UTF8_DECODER,
    ParkedSocket,
    between_frames,
    parking_lot,
    plain_socket,
)

_CONNECTIONS = logging.getLogger("livefeed.connections")
_CONNECTIONS.setLevel(logging.WARNING)  # --log-level debug turns it up


_BROADCAST_DEFLATE = [BroadcastDeflate()]
"""The extensions every connection offers: a factory holds only its settings, so one serves all
(websockets reads the list, never changes it)."""


class DirectSendProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol, offering itself to the application as its
    connection's ``ReaderSocket`` (``send_frames``, ``close``, ``adopt``, ``park``).

    Per-connection log lines ("WebSocket ... [accepted]") go to ``livefeed.connections``, quiet
    unless an operator turns it up: at ten thousand readers they cost more than the sockets.
    """

    owner: Parked | None = None
    """Set by ``adopt``: the peer's frames are handled here and its messages counted by it."""
    deflate = False
    """Set at the handshake: the peer negotiated ``BroadcastDeflate`` (``ReaderSocket``)."""
    raw: socket.socket | None = None
    """The connection's socket, where the transport is asyncio's plain selector one (not TLS,
    not uvloop): the ``ParkedSocket`` sends on it directly while nothing is buffered."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.logger = _CONNECTIONS
        self.conn.logger = _CONNECTIONS  # websockets logs "connection open" and "closed" at INFO
        if config.ws_per_message_deflate:
            self.conn.available_extensions = _BROADCAST_DEFLATE
        self.lot = parking_lot(
            server_state,
            server_state.connections,
            config.ws_max_size,
            config.ws_ping_interval,
            config.ws_ping_timeout,
        )

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        if self.conn.extensions and broadcast_deflate(self.conn.extensions):
            self.deflate = True
        raw = plain_socket(self.transport)
        if raw is not None:
            self.raw = raw
        scope = getattr(self, "scope", None)
        if scope is not None:
            sock: ReaderSocket = self
            scope["extensions"][READER_SOCKET] = sock

    def send_frames(self, frames: bytes, limit: int) -> bool:
        """Write whole text frames (``Event.wire``, or ``Event.deflated_wire`` if ``deflate``,
        joined: the same bytes for every reader) now; False when the reader is gone or has
        ``limit`` bytes unsent.

        websockets' protocol object is bypassed: it keeps no state about data frames sent
        whole (nor, with ``server_no_context_takeover``, about compressed ones), and framing
        each broadcast once per reader is what this path exists to avoid.
        """
        if self.close_sent or self.disconnected or self.conn.state is not OPEN:
            return False
        transport = self.transport
        if transport.is_closing():  # failed already; uvicorn hears of it a loop turn later
            return False
        if transport.get_write_buffer_size() > limit:
            SLOW_READERS_CLOSED.inc()  # the hub stops writing to it and closes it with 4408
            return False
        transport.write(frames)  # once per join: the parked socket writes the rest
        return True

    async def send(self, message: Any) -> None:
        """ASGI send, refusing frames once the connection is closing: the transport failed
        (uvicorn marks it lost only a loop turn later), the peer closed, or a close was sent.

        uvicorn raises RuntimeError for a send after its close, which the application would log
        as a crash with a traceback: a client's protocol error during a catch-up is not one. A
        second close is a no-op.
        """
        kind = message["type"]
        if self.handshake_complete and kind in ("websocket.send", "websocket.close"):
            # Wait here, not in uvicorn's send: a close may come while the buffer drains.
            await self.writable.wait()
            if self.close_sent or self.disconnected or self.transport.is_closing():
                if kind == "websocket.close":
                    return
                raise ClientDisconnected
        await super().send(message)

    def adopt(self, owner: Parked) -> None:
        """Handle the peer's frames here from now on, counting its messages with ``owner``.

        Anything the peer sent before is taken out of the receive queue and counted too.
        """
        self.owner = owner
        while isinstance(self.queue, asyncio.Queue) and not self.queue.empty():
            item = self.queue.get_nowait()
            if item["type"] != "websocket.receive":
                self.queue.put_nowait(item)  # a disconnect: the task sees it as a failed send
                break
            if not self.close_sent and not owner.message():
                self.close(CLOSE_POLICY, "readers send no messages")
        if self.read_paused and not self.close_sent:
            self.read_paused = False
            self.transport.resume_reading()

    def close(self, code: int, reason: str) -> None:
        """Send a close frame behind whatever is queued; abort if the peer does not answer it in
        time (a stalled reader would otherwise keep its unsent frames in memory)."""
        if self.close_sent or self.disconnected:
            return
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        if self.conn.state is OPEN:
            self.conn.send_close(code, reason)
            self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        if self.read_paused:  # the peer's answering close frame must be read
            self.read_paused = False
            self.transport.resume_reading()
        self.writable.set()  # a catch-up waiting to write wakes, and stops
        self.close_timer = self.loop.call_later(ABORT_AFTER, self.transport.abort)

    def park(self, owner: Parked) -> DirectSocket | None:
        """Hand the connection to a ``ParkedSocket`` reporting to ``owner``, and return it; this
        object is dropped then. None if the connection is already closing: the caller still
        owns it then.

        A peer inside a frame or a fragmented message keeps its websockets connection (and the
        text decoder) until the message ends; any other peer's is dropped with this object.
        """
        if self.close_sent or self.disconnected or self.transport.is_closing():
            return None
        conn = self.conn
        text = None
        if self.frames and self.curr_msg_data_type == "text":
            text = UTF8_DECODER()
            try:
                text.decode(b"".join(self.frames))
            except UnicodeDecodeError as exc:
                self.conn.fail(CloseCode.INVALID_DATA, f"{exc.reason} at position {exc.start}")
                self.handle_parser_exception()
                return None
        inside = self.frames or conn.current_size is not None or not between_frames(conn.parser)
        inflate = [e for e in conn.extensions if isinstance(e, PerMessageDeflate)]
        parked = ParkedSocket(
            self.lot,
            self.transport,
            self.raw,
            owner,
            deflate=self.deflate,
            inflate_bits=inflate[0].remote_max_window_bits if inflate else 0,
            conn=conn if inside else None,
            text=text,
        )
        self.stop_keepalive()
        self.connections.discard(self)
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        self.transport.set_protocol(parked)
        self.lot.add(parked)
        return parked

    def send_receive_event_to_app(self) -> None:
        """A whole message from the peer: 1007 unless text is UTF-8; then the reader's budget
        (adopted connections) or the ASGI receive queue (others, like a replay's controls)."""
        frames, self.frames = self.frames, []
        if self.close_sent:
            return
        data = frames[0] if len(frames) == 1 else b"".join(frames)
        text: str | None = None
        if self.curr_msg_data_type == "text":
            try:
                text = data.decode()
            except UnicodeDecodeError as exc:
                self.conn.fail(CloseCode.INVALID_DATA, f"{exc.reason} at position {exc.start}")
                self.handle_parser_exception()
                return
        owner = self.owner
        if owner is not None:
            if not owner.message():
                self.close(CLOSE_POLICY, "readers send no messages")
            return
        if text is not None:
            self.queue.put_nowait({"type": "websocket.receive", "text": text})
        else:
            self.queue.put_nowait({"type": "websocket.receive", "bytes": data})
        if not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()

    def handle_close(self, event: Any) -> None:
        super().handle_close(event)
        self.writable.set()  # a catch-up waiting to write wakes, and stops

    def handle_parser_exception(self) -> None:
        """The peer broke the protocol (or sent invalid UTF-8): close with websockets' code,
        log one short line, and abort if the close frame is not taken in time."""
        if self.close_sent:  # the peer broke the protocol while we were closing: end it
            self.transport.close()
            return
        close = self.conn.close_sent
        if self.logger.isEnabledFor(logging.INFO):
            self.logger.info(
                "%s:%s - WebSocket closed for a protocol error: %s %s",
                *(self.client or ("?", "?")),
                close.code if close else 1006,
                close.reason if close else "",
            )
        if close is not None:
            super().handle_parser_exception()
        else:  # an abnormal closure (1006): there is no close frame to send
            self.close_sent = True
            self.transport.close()
        self.writable.set()
        self.close_timer = self.loop.call_later(ABORT_AFTER, self.transport.abort)

    def keepalive_timeout(self) -> None:
        """A keepalive ping went unanswered: the peer is gone or has not read up to it. Either
        way it is a reader too slow to follow (4408; it resumes with ``since``), not uvicorn's
        1011 followed by a close that waits for the unsent bytes to drain."""
        self.pong_timer = None
        self.pending_ping_payload = None
        if self.close_sent or self.disconnected or self.transport.is_closing():
            return
        SLOW_READERS_CLOSED.inc()
        self.close(CLOSE_TOO_SLOW, "too slow: reconnect with since")

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
        if self.close_timer is None and self.transport.get_protocol() is self:
            self.transport.close()  # not parked: the connection ends with the application

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
