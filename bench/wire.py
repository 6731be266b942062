"""A minimal WebSocket client (RFC 6455) on ``asyncio.Protocol``, for holding many readers cheaply.

The load generator must not be the bottleneck it measures. A full client library spends a task
wake-up, a queue hand-off and a frame object per message on every one of 10,000 sockets; this
client parses frames straight out of ``data_received`` and calls ``on_message`` with the payload
and the arrival time, so one client process keeps up with a server process many times over.

It does what a reader needs and no more: the opening handshake (checked), unmasked server frames
(text or binary, whole or fragmented), answering pings, and the closing handshake. Client frames
(pong, close) are masked as the RFC requires. Anything else from the server is a protocol error:
the connection is dropped and ``close_code`` is 1002.

With ``offer_deflate`` it offers permessage-deflate as browsers do (RFC 7692,
``client_max_window_bits``) and inflates compressed messages, with or without the server's
context takeover. ``wire_bytes`` counts every byte read from the socket, and ``message_wire`` is
the size on the wire of the message ``on_message`` is given (its frames' headers and payloads, as
sent: compressed if it was).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import time
import zlib
from typing import Any

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_HEADER = 16 * 1024
MAX_MESSAGE = 4 * 1024 * 1024

OFFER = b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class WebSocketClient(asyncio.Protocol):
    """One client connection. Subclasses override ``on_open``, ``on_message`` and ``on_closed``.

    ``close_code`` is the code the server closed with (1006 if the TCP connection just ended,
    1002 on a protocol error, None while open); ``error`` says what went wrong, if anything.
    """

    def __init__(self, host: str, path: str, offer_deflate: bool = False) -> None:
        self.host = host
        self.path = path
        self.offer_deflate = offer_deflate
        self.deflate = False  # negotiated
        self.wire_bytes = 0
        self.message_wire = 0
        self._wire_so_far = 0  # of the fragmented message being read
        self._wbits = 15
        self._fresh_each = False  # server_no_context_takeover: each message inflates on its own
        self._inflater: Any = None
        self._compressed = False
        self.transport: asyncio.Transport | None = None
        self.is_open = False
        self.close_code: int | None = None
        self.error: str | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._key = base64.b64encode(os.urandom(16))
        self._buf = bytearray()
        self._need = 0
        self._fragments: list[bytes] | None = None
        self._close_sent = False

    # --- hooks -------------------------------------------------------------------------------

    def on_open(self, now_ns: int) -> None:
        """The handshake succeeded."""

    def on_message(self, payload: bytes, now_ns: int) -> None:
        """A whole text or binary message arrived at ``now_ns`` (time.time_ns)."""

    def on_closed(self) -> None:
        """The TCP connection is gone; ``close_code`` and ``error`` say how."""

    # --- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        request = (
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {self._key.decode()}\r\n"
            "Sec-WebSocket-Version: 13\r\n"
        )
        transport.write(request.encode() + (OFFER if self.offer_deflate else b"") + b"\r\n")

    def data_received(self, data: bytes) -> None:
        now = time.time_ns()
        self.wire_bytes += len(data)
        if self._buf:
            self._buf += data
            if len(self._buf) < self._need:
                return
            data = bytes(self._buf)
            self._buf.clear()
        if not self.is_open:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                if len(data) > MAX_HEADER:
                    self._fail("handshake response too long")
                else:
                    self._buf += data
                return
            if not self._handshake(data[:end]):
                return
            self.is_open = True
            self.on_open(now)
            data = data[end + 4 :]
        self._parse(data, now)

    def connection_lost(self, exc: Exception | None) -> None:
        self.is_open = False
        if self.close_code is None:
            self.close_code = 1006
            if exc is not None and self.error is None:
                self.error = f"{type(exc).__name__}: {exc}"
        if not self.lost.done():
            self.lost.set_result(None)
        self.on_closed()

    # --- client actions ----------------------------------------------------------------------

    def close(self, code: int = 1000) -> None:
        """Start the closing handshake; the server answers and ends the TCP connection."""
        if self.transport is None or self.transport.is_closing():
            return
        if not self.is_open:
            self.transport.close()
            return
        if not self._close_sent:
            self._close_sent = True
            self._send(OP_CLOSE, code.to_bytes(2, "big"))

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # --- internals ---------------------------------------------------------------------------

    def _handshake(self, head: bytes) -> bool:
        lines = head.split(b"\r\n")
        if not lines[0].startswith(b"HTTP/1.1 101"):
            self._fail(f"handshake refused: {lines[0].decode(errors='replace')}")
            return False
        expected = base64.b64encode(hashlib.sha1(self._key + GUID).digest())
        accepted = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"sec-websocket-accept":
                accepted = value.strip() == expected
            elif name == b"sec-websocket-extensions" and not self._extension(
                value.decode("latin-1")
            ):
                return False
        if not accepted:
            self._fail("handshake: bad Sec-WebSocket-Accept")
        return accepted

    def _extension(self, value: str) -> bool:
        """The server's permessage-deflate answer; anything we did not offer fails."""
        params = [p.strip() for p in value.split(";")]
        if params[0] != "permessage-deflate" or not self.offer_deflate or self.deflate:
            self._fail(f"handshake: extension not offered: {value}")
            return False
        self.deflate = True
        for param in params[1:]:
            key, _, arg = param.partition("=")
            if key == "server_no_context_takeover":
                self._fresh_each = True
            elif key == "server_max_window_bits":
                self._wbits = int(arg.strip('"'))
        return True

    def _message(self, payload: bytes, now: int) -> None:
        """A whole message's payload, inflated first when its first frame had RSV1."""
        if self._compressed:
            if self._inflater is None or self._fresh_each:
                self._inflater = zlib.decompressobj(-self._wbits)
            try:
                payload = self._inflater.decompress(payload + b"\x00\x00\xff\xff")
            except zlib.error as exc:
                self._fail(f"inflate: {exc}")
                return
        self.on_message(payload, now)

    def _parse(self, data: bytes, now: int) -> None:
        pos, size = 0, len(data)
        self._need = 0
        while size - pos >= 2:
            b0, b1 = data[pos], data[pos + 1]
            if b1 & 0x80:
                self._fail("server frame is masked")
                return
            length, head = b1 & 0x7F, pos + 2
            if length == 126:
                if size - head < 2:
                    break
                length, head = int.from_bytes(data[head : head + 2], "big"), head + 2
            elif length == 127:
                if size - head < 8:
                    break
                length, head = int.from_bytes(data[head : head + 8], "big"), head + 8
            if length > MAX_MESSAGE:
                self._fail(f"frame of {length} bytes")
                return
            end = head + length
            if end > size:
                self._need = end - pos
                break
            self._frame(b0, data[head:end], now, end - pos)
            pos = end
            if self.close_code is not None:
                return
        if pos < size:
            self._buf += data[pos:]

    def _frame(self, b0: int, payload: bytes, now: int, wire: int) -> None:
        fin, opcode = b0 & 0x80, b0 & 0x0F
        if b0 & 0x70 and (b0 & 0x30 or opcode not in (OP_TEXT, OP_BINARY) or not self.deflate):
            self._fail(f"reserved bits {b0 & 0x70:#x} on opcode {opcode}")
            return
        if opcode in (OP_TEXT, OP_BINARY):
            self._compressed = bool(b0 & 0x40)
            if self._fragments is not None:
                self._fail("new message inside a fragmented one")
            elif fin:
                self.message_wire = wire
                self._message(payload, now)
            else:
                self._fragments = [payload]
                self._wire_so_far = wire
        elif opcode == OP_CONT:
            if self._fragments is None:
                self._fail("continuation without a message")
                return
            self._fragments.append(payload)
            self._wire_so_far += wire
            if fin:
                self.message_wire = self._wire_so_far
                message, self._fragments = b"".join(self._fragments), None
                self._message(message, now)
        elif opcode == OP_PING:
            self._send(OP_PONG, payload)
        elif opcode == OP_PONG:
            pass
        elif opcode == OP_CLOSE:
            self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            if payload[2:]:
                self.error = payload[2:].decode(errors="replace")
            if not self._close_sent:
                self._close_sent = True
                self._send(OP_CLOSE, payload[:2])
            self.is_open = False
        else:
            self._fail(f"unknown opcode {opcode}")

    def _send(self, opcode: int, payload: bytes) -> None:
        """A masked frame; only short control frames are ever sent."""
        assert len(payload) <= 125 and self.transport is not None
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
        self.transport.write(bytes((0x80 | opcode, 0x80 | len(payload))) + mask + masked)

    def _fail(self, reason: str) -> None:
        self.close_code = 1002
        self.error = reason
        self.is_open = False
        if self.transport is not None:
            self.transport.abort()
