"""What goes to readers: events and the text of their frames, built once for every reader.

Pure: no I/O. The hub hands ``Event``s out; ``reader`` and ``replay`` send control frames.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson

from livefeed.model.ids import StreamId


@dataclass(frozen=True, slots=True)
class Event:
    """What the hub hands out: stream position (None for heartbeats) and the frame, built once.

    ``payload`` is the frame's UTF-8 bytes, written as they are to every reader; ``order`` sorts
    like the id (-1 for frames without one) and is cheap to compare on the hot path.
    """

    id: StreamId | None
    type: str
    frame: str
    payload: bytes
    order: int
    wire: bytes
    """The whole WebSocket text frame as it goes on the wire: the same bytes for every reader."""
    _deflated: bytes | None = field(default=None, compare=False, repr=False)

    def deflated_wire(self) -> bytes:
        """The frame for readers that negotiated permessage-deflate (``deflated_text_frame``),
        compressed on first use and kept: once per event, the same bytes for every such reader."""
        deflated = self._deflated
        if deflated is None:
            deflated = deflated_text_frame(self.payload, self.wire)
            object.__setattr__(self, "_deflated", deflated)  # a cache; the event is unchanged
        return deflated

    @classmethod
    def of(cls, event_id: StreamId | None, event_type: str, frame: str) -> Event:
        order = -1 if event_id is None else event_id.ms << 64 | event_id.seq
        payload = frame.encode()
        return cls(event_id, event_type, frame, payload, order, websocket_text_frame(payload))


def websocket_text_frame(payload: bytes) -> bytes:
    """A final, unmasked, uncompressed text frame (RFC 6455 5.2), as a server sends it.

    Such a frame does not depend on the connection, so a broadcast builds it once per event.
    """
    return _frame_head(0x81, len(payload)) + payload


DEFLATE_WINDOW_BITS = 12
"""The LZ77 window (bits) broadcast frames are compressed with: what livefeed offers as
``server_max_window_bits``, so a client asking for a smaller window gets the plain socket."""
DEFLATE_MIN_BYTES = 128
"""Payloads shorter than this go uncompressed (RSV1 clear, as RFC 7692 section 6 allows), even
to deflate readers: ``live`` and heartbeats would not shrink, and compressing costs a
compressor's set-up."""


def deflated_text_frame(payload: bytes, plain: bytes | None = None) -> bytes:
    """A final, unmasked text frame whose payload is compressed as one message with no context
    taken over (RFC 7692 7.2.1: raw DEFLATE, a sync flush, its trailing 00 00 ff ff removed) and
    RSV1 set; short payloads as ``plain`` (or ``websocket_text_frame``), RSV1 clear.

    Such a frame fits every connection that negotiated ``server_no_context_takeover`` with a
    window of at least ``DEFLATE_WINDOW_BITS``, so a broadcast builds it once per event.
    """
    if len(payload) < DEFLATE_MIN_BYTES:
        return plain if plain is not None else websocket_text_frame(payload)
    compressor = zlib.compressobj(6, zlib.DEFLATED, -DEFLATE_WINDOW_BITS, 8)
    data = (compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]
    return _frame_head(0xC1, len(data)) + data


def _frame_head(first: int, length: int) -> bytes:
    if length < 126:
        return struct.pack("!BB", first, length)
    if length < 65536:
        return struct.pack("!BBH", first, 126, length)
    return struct.pack("!BBQ", first, 127, length)


def event_frame(event_type: str, event_id: str, data: bytes) -> str:
    """Frame text for a stream entry whose stored data is a JSON object, without re-encoding it."""
    head = f'{{"type":"{event_type}","event_id":"{event_id}"'
    body = data.decode()
    return head + "}" if body == "{}" else head + "," + body[1:]


def control_frame(event_type: str, **fields: Any) -> str:
    """Frame text for a message that is not a stream entry (live, heartbeat, reload); a model
    among ``fields`` (a Brief in a snapshot) goes as its JSON form."""
    return orjson.dumps({"type": event_type, **fields}, default=msgspec.to_builtins).decode()
