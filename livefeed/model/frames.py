"""What goes to readers: events and the text of their frames, built once for every reader.

Pure: no I/O. The hub hands ``Event``s out; ``reader`` and ``replay`` send control frames.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
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

    @classmethod
    def of(cls, event_id: StreamId | None, event_type: str, frame: str) -> Event:
        order = -1 if event_id is None else event_id.ms << 64 | event_id.seq
        payload = frame.encode()
        return cls(event_id, event_type, frame, payload, order, websocket_text_frame(payload))


def websocket_text_frame(payload: bytes) -> bytes:
    """A final, unmasked, uncompressed text frame (RFC 6455 5.2), as a server sends it.

    Such a frame does not depend on the connection, so a broadcast builds it once per event.
    """
    length = len(payload)
    if length < 126:
        head = struct.pack("!BB", 0x81, length)
    elif length < 65536:
        head = struct.pack("!BBH", 0x81, 126, length)
    else:
        head = struct.pack("!BBQ", 0x81, 127, length)
    return head + payload


def event_frame(event_type: str, event_id: str, data: bytes) -> str:
    """Frame text for a stream entry whose stored data is a JSON object, without re-encoding it."""
    head = f'{{"type":"{event_type}","event_id":"{event_id}"'
    body = data.decode()
    return head + "}" if body == "{}" else head + "," + body[1:]


def control_frame(event_type: str, **fields: Any) -> str:
    """Frame text for a message that is not a stream entry (live, heartbeat, reload); a model
    among ``fields`` (a Brief in a snapshot) goes as its JSON form."""
    return orjson.dumps({"type": event_type, **fields}, default=msgspec.to_builtins).decode()
