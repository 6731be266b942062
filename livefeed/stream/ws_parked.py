"""A parked reader's connection as one small object: what is left of a WebSocket once its reader
has caught up and only the hub writes to it.

At the park ``uvicorn_ws.DirectSendProtocol`` hands its transport to a ``ParkedSocket``
(``transport.set_protocol``) and is dropped, and with it websockets' connection object, its
parser (which holds the handshake request), the negotiated extension objects, uvicorn's
attribute dict and the keepalive timers. A parked reader then costs its socket and transport, this
object (a dozen slots) and its hub entry.

What the peer still sends is read by websockets' own sans-I/O ``Protocol``, made when bytes
arrive and dropped again between frames, so RFC 6455 holds as before: pings are answered, a close
is echoed, protocol errors get 1002, oversized messages 1009, text that is not UTF-8 1007, and
messages count against the reader's budget (1008). A whole pong, the one frame readers send all
the time (to the keepalive pings), is recognised without it. permessage-deflate was negotiated
with ``client_no_context_takeover``, so a compressed message inflates on its own: no inflater is
kept between messages either.

Keepalive pings for every parked socket of a server go out from one timer (``ParkingLot``), in
slices, instead of two timers per connection; a socket that has not answered a ping
``ws_ping_timeout`` seconds later is closed with 4408 (too slow), as before the park.

This module and ``uvicorn_ws`` are the only ones that know websockets' and asyncio's internals.
"""

from __future__ import annotations

import asyncio
import codecs
import logging
import socket
import struct
import types
import weakref
from asyncio import selector_events
from typing import Any

from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import CloseCode, Frame, Opcode
from websockets.protocol import OPEN, SERVER
from websockets.protocol import Protocol as WebSocketProtocol
from websockets.streams import StreamReader

from livefeed.errors import CLOSE_GOING_AWAY, CLOSE_POLICY, CLOSE_TOO_SLOW
from livefeed.metrics import SLOW_READERS_CLOSED
from livefeed.model.frames import DEFLATE_WINDOW_BITS
from livefeed.stream.socket import Parked

ABORT_AFTER = 5.0
"""Seconds a closing connection may take to read its close frame before it is aborted."""
_PLAIN_TRANSPORT = getattr(selector_events, "_SelectorSocketTransport", None)
_PING_SLICE = 1000
"""Parked sockets pinged per turn of the event loop."""
_CONNECTIONS = logging.getLogger("livefeed.connections")
UTF8_DECODER = codecs.getincrementaldecoder("utf-8")
_DATA = (Opcode.TEXT, Opcode.BINARY, Opcode.CONT)


def plain_socket(transport: asyncio.BaseTransport) -> socket.socket | None:
    """The socket under asyncio's plain selector transport (not TLS, not uvloop), else None."""
    if type(transport) is not _PLAIN_TRANSPORT:
        return None
    raw = getattr(transport, "_sock", None)
    return raw if isinstance(raw, socket.socket) else None


def between_frames(parser: object) -> bool:
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


def _whole_pong(data: bytes) -> bool:
    """``data`` is exactly one masked, unfragmented pong frame with no extension bits."""
    size = len(data)
    return size >= 6 and data[0] == 0x8A and data[1] & 0x80 != 0 and size == 6 + (data[1] & 0x7F)


class ParkingLot:
    """The parked sockets of one server, what they share (its limits, uvicorn's set of open
    connections, which its shutdown walks) and the one timer that pings them all."""

    def __init__(
        self,
        connections: set[Any],
        max_size: int | None,
        ping_interval: float | None,
        ping_timeout: float | None,
    ) -> None:
        self.connections = connections
        self.max_size = max_size
        self.ping_interval = ping_interval if ping_interval and ping_interval > 0 else None
        self.ping_timeout = ping_timeout
        self.sockets: set[ParkedSocket] = set()
        self._round = 0
        self._timer: asyncio.TimerHandle | None = None

    def add(self, sock: ParkedSocket) -> None:
        self.sockets.add(sock)
        self.connections.add(sock)
        if self._timer is None and self.ping_interval is not None:
            self._timer = asyncio.get_running_loop().call_later(self.ping_interval, self._ping)

    def _ping(self) -> None:
        """Ping every parked socket, a slice per loop turn; check the answers after the timeout."""
        self._timer = None
        if not self.sockets or self.ping_interval is None:
            return  # the next park starts the timer again
        loop = asyncio.get_running_loop()
        self._round += 1
        number = self._round
        frame = b"\x89\x04" + struct.pack("!I", number & 0xFFFFFFFF)
        _in_slices(loop, list(self.sockets), lambda sock: sock.ping(number, frame))
        self._timer = loop.call_later(self.ping_interval, self._ping)
        if self.ping_timeout is not None:
            loop.call_later(self.ping_timeout, self._check, number)

    def _check(self, number: int) -> None:
        loop = asyncio.get_running_loop()
        _in_slices(loop, list(self.sockets), lambda sock: sock.check_pong(number))


def _in_slices(
    loop: asyncio.AbstractEventLoop, sockets: list[ParkedSocket], call: Any, start: int = 0
) -> None:
    """``call(sock)`` for each socket, ``_PING_SLICE`` of them per loop turn."""
    for sock in sockets[start : start + _PING_SLICE]:
        call(sock)
    if start + _PING_SLICE < len(sockets):
        loop.call_soon(_in_slices, loop, sockets, call, start + _PING_SLICE)


_LOTS: weakref.WeakKeyDictionary[object, ParkingLot] = weakref.WeakKeyDictionary()


def parking_lot(
    server_state: object,
    connections: set[Any],
    max_size: int | None,
    ping_interval: float | None,
    ping_timeout: float | None,
) -> ParkingLot:
    """The ``ParkingLot`` of the uvicorn server whose state is ``server_state``."""
    lot = _LOTS.get(server_state)
    if lot is None:
        lot = _LOTS[server_state] = ParkingLot(connections, max_size, ping_interval, ping_timeout)
    return lot


class ParkedSocket(asyncio.Protocol):
    """A parked reader's connection (a ``socket.DirectSocket``): the hub writes whole frames to
    it; what the peer sends is handled here; ``owner`` hears when it goes."""

    __slots__ = (
        "_conn",
        "_inflate",
        "_lot",
        "_owner",
        "_pinged",
        "_raw",
        "_text",
        "_timer",
        "_transport",
        "closing",
        "deflate",
    )

    def __init__(
        self,
        lot: ParkingLot,
        transport: asyncio.Transport,
        raw: socket.socket | None,
        owner: Parked,
        *,
        deflate: bool,
        inflate_bits: int,
        conn: WebSocketProtocol | None = None,
        text: codecs.IncrementalDecoder | None = None,
    ) -> None:
        """``inflate_bits``: the window of the peer's compressed messages, 0 if it negotiated no
        compression; ``conn``: websockets' connection when the peer is inside a frame or a
        fragmented message (``text``: the decoder of a text one)."""
        self._lot = lot
        self._transport = transport
        self._raw = raw
        self._owner: Parked | None = owner
        self.deflate = deflate
        self._inflate = inflate_bits
        self._conn = conn
        self._text = text
        self._pinged = 0  # the first unanswered keepalive ping's number
        self._timer: asyncio.TimerHandle | None = None
        self.closing = False  # a close was sent, or the connection is gone

    def send_frames(self, frames: bytes, limit: int) -> bool:
        """Write whole frames now; False if closing or ``limit`` bytes are still unsent.

        This runs once per reader per event. On asyncio's plain transport (``_raw`` set) a
        transport with nothing buffered and not closing is read from its attributes and the
        frames sent in one ``send``, with no other call in Python. What the socket does not
        take, or an error, goes to ``transport.write``, which sends again and buffers the rest
        (or fails and closes), as it does when it sends first itself.
        """
        if self.closing:
            return False
        transport = self._transport
        raw = self._raw
        if raw is not None and not transport._buffer and not transport._closing:  # type: ignore[attr-defined]
            try:
                sent = raw.send(frames)
            except (BlockingIOError, InterruptedError, OSError):
                sent = 0
            if sent != len(frames):
                transport.write(frames[sent:] if sent else frames)
            return True
        if transport.is_closing():
            return False
        if transport.get_write_buffer_size() > limit:
            SLOW_READERS_CLOSED.inc()  # the hub stops writing to it and closes it with 4408
            return False
        transport.write(frames)
        return True

    def close(self, code: int, reason: str) -> None:
        """Send a close frame behind what is queued; abort if the peer does not take it in time."""
        if self.closing or self._transport.is_closing():
            return
        self.closing = True
        conn = self._connection()
        conn.send_close(code, reason)
        self._transport.write(b"".join(conn.data_to_send()))
        self._leave()
        self._timer = asyncio.get_running_loop().call_later(ABORT_AFTER, self._transport.abort)

    def shutdown(self) -> None:
        """The server stops (uvicorn calls this): tell the reader to come back, 1001."""
        if not self.closing and not self._transport.is_closing():
            self.closing = True
            conn = self._connection()
            conn.send_close(CLOSE_GOING_AWAY, "server restarting: reconnect")
            self._transport.write(b"".join(conn.data_to_send()))
            self._leave()
        self._transport.close()

    def ping(self, number: int, frame: bytes) -> None:
        """Send keepalive ping ``number`` (its frame); the first unanswered one is remembered."""
        if self.closing or self._transport.is_closing():
            return
        if not self._pinged:
            self._pinged = number
        self._transport.write(frame)

    def check_pong(self, number: int) -> None:
        """Ping ``number`` or an earlier one is still unanswered: too slow to follow (4408)."""
        if self._pinged and self._pinged <= number and not self.closing:
            SLOW_READERS_CLOSED.inc()
            self.close(CLOSE_TOO_SLOW, "too slow: reconnect with since")

    def data_received(self, data: bytes) -> None:
        conn = self._conn
        if conn is None:
            if _whole_pong(data):
                self._pinged = 0
                return
            conn = self._connection()
        conn.receive_data(data)
        if conn.parser_exc is not None:
            self._failed(conn)
            return
        for event in conn.events_received():
            if not isinstance(event, Frame):
                continue
            if event.opcode is Opcode.PONG:
                self._pinged = 0
            elif event.opcode in _DATA and not self.closing and not self._message(conn, event):
                return
        transport = self._transport
        if transport.is_closing():
            return
        writes = conn.data_to_send()
        if writes:
            transport.write(b"".join(writes))
        if conn.close_rcvd is not None:  # echoed, or the answer to ours: the handshake is over
            self._leave()
            transport.close()
        elif (
            conn.state is OPEN
            and conn.current_size is None
            and self._text is None
            and between_frames(conn.parser)
        ):
            self._conn = None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._conn = self._text = None
        self._lot.connections.discard(self)
        self._leave()

    def _message(self, conn: WebSocketProtocol, frame: Frame) -> bool:
        """A data frame from the peer: check a text message's UTF-8 (1007) and count each whole
        message against the budget (1008); False once the connection is closing."""
        try:
            if frame.opcode is Opcode.TEXT:
                if frame.fin:
                    str(frame.data, "utf-8")
                else:
                    self._text = UTF8_DECODER()
                    self._text.decode(frame.data)
            elif self._text is not None:
                self._text.decode(frame.data, final=frame.fin)
                if frame.fin:
                    self._text = None
        except UnicodeDecodeError as exc:
            self._text = None
            conn.fail(CloseCode.INVALID_DATA, f"{exc.reason} at position {exc.start}")
            self._failed(conn)
            return False
        owner = self._owner
        if frame.fin and owner is not None and not owner.message():
            self.close(CLOSE_POLICY, "readers send no messages")
            return False
        return True

    def _failed(self, conn: WebSocketProtocol) -> None:
        """The peer broke the protocol: send websockets' close, log one short line, close."""
        close = conn.close_sent
        if _CONNECTIONS.isEnabledFor(logging.INFO):
            peer = self._transport.get_extra_info("peername") or ("?", "?")
            _CONNECTIONS.info(
                "%s:%s - WebSocket closed for a protocol error: %s %s",
                *peer[:2],
                close.code if close else 1006,
                close.reason if close else "",
            )
        self.closing = True
        transport = self._transport
        writes = conn.data_to_send()
        if writes:
            transport.write(b"".join(writes))
        self._leave()
        transport.close()
        self._timer = asyncio.get_running_loop().call_later(ABORT_AFTER, transport.abort)

    def _connection(self) -> WebSocketProtocol:
        """websockets' connection object for this socket, made now if there is none."""
        conn = self._conn
        if conn is None:
            conn = WebSocketProtocol(SERVER, max_size=self._lot.max_size, logger=_CONNECTIONS)
            if self._inflate:
                conn.extensions = [
                    PerMessageDeflate(True, True, self._inflate, DEFLATE_WINDOW_BITS)
                ]
            self._conn = conn
        return conn

    def _leave(self) -> None:
        """No more pings; the owner (the reader's hub entry) hears that the reader is gone."""
        self._lot.sockets.discard(self)
        owner, self._owner = self._owner, None
        if owner is not None:
            owner.lost()
