"""uvicorn's WebSocket protocol as a ``ReaderSocket``: direct writes of broadcast frames, and
parked readers.

The ASGI path costs a task switch and several awaits per frame per reader. For live events the
hub instead calls ``send_frames`` here for each reader, synchronously, with the frame encoded
once for everyone (what ``websockets.broadcast`` does). A reader whose unsent bytes pass a limit
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
task ends and the protocol keeps the connection open by itself, telling a small ``Parked`` object
when the peer goes away. An idle reader then costs its socket, this protocol and its hub entry,
not a task, its coroutine frames, a receive queue and the handshake's headers. Swapping
websockets' server parser for the plain frame parser at the park (``_swap_parser``) is what
frees the handshake: ``bench/parked.py`` measured 2,000 parked readers at 6.0 KiB of server RSS
each with the swap and 9.6 KiB without (tracemalloc: 5.9 against 9.2 KiB): 3.3 to 3.7 KiB, over
a third, per reader (2026-12, uvicorn 0.54, websockets 17). It costs nothing per broadcast frame:
the hub's writes never go through the parser.

Slow readers, in every state: a reader is closed with 4408 (too slow) when its unsent bytes pass
the hub's limit (live), when its catch-up queue overflows (``hub``), or when it does not answer a
keepalive ping within ``ws_ping_timeout`` (a catch-up is written with flow control, so there the
symptom is a ping stuck behind unread data); it is aborted if it has not taken the close frame
``_ABORT_AFTER`` seconds later.

Compression (``LIVEFEED_WS_COMPRESSION``, uvicorn's ``ws_per_message_deflate``): every socket of
this protocol (readers, the desk, replay) accepts permessage-deflate as ``stream.deflate``'s
``BroadcastDeflate`` negotiates it (no context takeover either way). A reader so negotiated is
``deflate``: the hub writes it each event's frame compressed once (``Event.deflated_wire``);
what goes through ASGI (a catch-up from Redis, the desk's and replay's frames) websockets
compresses per message on the connection, and what the peer sends it decompresses.

The protocol object itself is offered in the ASGI scope under ``socket.READER_SOCKET``; without
it (another server, uvicorn's stock protocols: ``LIVEFEED_WS_DIRECT=0``) livefeed falls back to
sending through ASGI. This module is the only one that knows uvicorn's and websockets' internals;
tests/test_transport.py holds it to RFC 6455, and CI runs it against their newest releases.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import types
from asyncio import selector_events
from typing import Any

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import CloseCode
from websockets.protocol import OPEN
from websockets.protocol import Protocol as WebSocketProtocol
from websockets.streams import StreamReader

from livefeed.errors import CLOSE_POLICY, CLOSE_TOO_SLOW
from livefeed.metrics import SLOW_READERS_CLOSED
from livefeed.stream.deflate import BroadcastDeflate, broadcast_deflate
from livefeed.stream.socket import READER_SOCKET, Parked, ReaderSocket

_ABORT_AFTER = 5.0
_PLAIN_TRANSPORT = getattr(selector_events, "_SelectorSocketTransport", None)


def plain_socket(transport: asyncio.BaseTransport) -> socket.socket | None:
    """The socket under asyncio's plain selector transport (not TLS, not uvloop), else None."""
    if type(transport) is not _PLAIN_TRANSPORT:
        return None
    raw = getattr(transport, "_sock", None)
    return raw if isinstance(raw, socket.socket) else None


def write_unbuffered(transport: asyncio.WriteTransport, raw: socket.socket, data: bytes) -> None:
    """``transport.write(data)`` for a transport with nothing buffered, whose socket is ``raw``,
    in one ``send`` when the socket takes it all (the usual reader: nothing else in Python).

    What the socket does not take, or an error, goes to ``transport.write``, which sends again
    and buffers the rest (or fails and closes), as it does when it sends first itself.
    """
    try:
        sent = raw.send(data)
    except (BlockingIOError, InterruptedError, OSError):
        sent = 0
    if sent != len(data):
        transport.write(data[sent:] if sent else data)


_CONNECTIONS = logging.getLogger("livefeed.connections")
_CONNECTIONS.setLevel(logging.WARNING)  # --log-level debug turns it up


def _between_frames(parser: object) -> bool:
    """True if websockets' parser waits for the first byte of a frame, not inside one.

    An empty buffer does not say so: the parser takes a frame's header as soon as it has it and
    then waits for the rest. Between frames the innermost generator is ``StreamReader.at_eof``
    called from ``Protocol.parse`` itself (``Frame.parse`` only reads exact lengths).
    """
    chain: list[types.GeneratorType[Any, Any, Any]] = []
    while isinstance(parser, types.GeneratorType):
        chain.append(parser)
        parser = parser.gi_yieldfrom
    return len(chain) >= 2 and chain[-1].gi_code is _AT_EOF and chain[-2].gi_code is _FRAME_LOOP


_AT_EOF = StreamReader.at_eof.__code__
_FRAME_LOOP = WebSocketProtocol.parse.__code__


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
    """uvicorn's websockets-sansio protocol, offering itself to the application as its
    connection's ``ReaderSocket`` (``send_frames``, ``close``, ``adopt``, ``park``).

    Per-connection log lines ("WebSocket ... [accepted]") go to ``livefeed.connections``, quiet
    unless an operator turns it up: at ten thousand readers they cost more than the sockets.
    """

    owner: Parked | None = None
    """Set by ``adopt``: the peer's frames are handled here and its messages counted by it."""
    swap_parser = False
    """Parked while a client frame was half received: swap parsers at the frame's end."""
    deflate = False
    """Set at the handshake: the peer negotiated ``BroadcastDeflate`` (``ReaderSocket``)."""
    raw: socket.socket | None = None
    """The connection's socket, where the transport is asyncio's plain selector one (not TLS,
    not uvloop): ``send_frames`` sends on it directly while nothing is buffered."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.logger = _CONNECTIONS
        self.conn.logger = _CONNECTIONS  # websockets logs "connection open" and "closed" at INFO
        if self.config.ws_per_message_deflate:
            self.conn.available_extensions = [BroadcastDeflate()]
        self.parked: Parked | None = None

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
        unsent = transport.get_write_buffer_size()
        if unsent > limit:
            SLOW_READERS_CLOSED.inc()  # the hub stops writing to it and closes it with 4408
            return False
        if unsent or self.raw is None:
            transport.write(frames)
        else:
            write_unbuffered(transport, self.raw, frames)
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
        owner, self.parked = self.parked, None
        if owner is not None:  # it leaves the hub now, not when the peer gets round to closing
            owner.lost()
        if self.read_paused:  # the peer's answering close frame must be read
            self.read_paused = False
            self.transport.resume_reading()
        self.writable.set()  # a catch-up waiting to write wakes, and stops
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
        self.__dict__.pop("owner", None)  # ``parked`` counts its messages now: one slot less
        if not self._swap_parser():
            self.swap_parser = True
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        return True

    def _swap_parser(self) -> bool:
        """Drop websockets' server parser for the plain frame parser, between two frames only;
        False if inside a frame.

        The server parser keeps the handshake request (all its headers) alive in its frame for
        as long as the connection lasts. Between frames the plain parser is in the same state
        (partial-message state lives on ``conn``), as when websockets itself swaps parsers on
        close; inside a frame the new parser would read the rest as a new frame, so the swap
        waits for the frame's end (``data_received``).
        """
        conn = self.conn
        if conn.state is not OPEN or conn.parser_exc is not None or conn.reader.eof:
            return True  # closing: the parser is discarding anyway
        if not _between_frames(conn.parser):
            return False
        conn.parser = WebSocketProtocol.parse(conn)
        next(conn.parser)
        return True

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.swap_parser and self._swap_parser():
            del self.swap_parser  # back to the class's False

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
        owner = self.parked or self.owner
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
        owner, self.parked = self.parked, None
        if owner is not None:
            owner.lost()
        self.writable.set()
        self.close_timer = self.loop.call_later(_ABORT_AFTER, self.transport.abort)

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
