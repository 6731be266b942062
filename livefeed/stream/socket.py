"""The seam between livefeed's streaming code and the server that holds its connections.

The reader knows its connection as a ``ReaderSocket``: write frames now, close with a code, take
over what the peer sends (``adopt``) and keep the connection open after the ASGI task ends
(``park``), reporting to a ``Parked``. The hub knows only the ``DirectSocket`` it writes to: the
``ReaderSocket`` itself, or the smaller object ``park`` hands the connection to.
``livefeed.stream.uvicorn_ws`` implements both; a server that does not (another ASGI server,
uvicorn's stock protocols, or ``LIVEFEED_WS_DIRECT=0``) offers no ``ReaderSocket`` and readers
are served through plain ASGI sends, a task each (``livefeed.stream.reader``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

READER_SOCKET = "livefeed.reader_socket"
"""The key under ``scope["extensions"]`` whose value is the connection's ``ReaderSocket``."""


class Parked(Protocol):
    """What an adopted connection reports to: its reader (and, once parked, its hub entry)."""

    def message(self) -> bool:
        """The peer sent a message; False closes the connection with 1008 (policy)."""

    def lost(self) -> None:
        """The parked connection is over (called once, and only after ``park``)."""


class DirectSocket(Protocol):
    """A reader's WebSocket connection as the hub writes to it, without awaiting.

    Every method is synchronous and safe to call in any state: on a connection that is closing
    or gone, writes return False and closes do nothing.
    """

    deflate: bool
    """The connection negotiated permessage-deflate with ``server_no_context_takeover`` and a
    window of at least ``frames.DEFLATE_WINDOW_BITS``: frames for it are ``Event.deflated_wire``
    (compressed once per event); otherwise the plain ``Event.wire``. Fixed once accepted."""

    def send_frames(self, frames: bytes, limit: int) -> bool:
        """Write whole WebSocket text frames (``Event.wire`` or, for a ``deflate`` connection,
        ``Event.deflated_wire``, joined) now; False if the connection is closing or gone, or
        already holds more than ``limit`` bytes unsent (a reader too slow to follow: the caller
        closes it with 4408)."""

    def close(self, code: int, reason: str) -> None:
        """Send a close frame behind what is queued; abort the connection if the peer has not
        taken it a few seconds later. A second close is a no-op."""


@runtime_checkable
class ReaderSocket(DirectSocket, Protocol):
    """A reader's WebSocket connection as the reader uses it: a ``DirectSocket`` that can also
    take over what the peer sends and outlive the ASGI task."""

    def adopt(self, owner: Parked) -> None:
        """Handle the peer's frames on the connection itself from now on (pings, close,
        protocol errors), counting each message it sends with ``owner.message()``."""

    def park(self, owner: Parked) -> DirectSocket | None:
        """Keep the connection open once the ASGI task ends, and tell ``owner`` when it goes;
        return what to write to from now on (this object may be dropped), or None (the caller
        still owns the connection) if it is already closing."""


_CONFORMING: set[type] = set()
"""Types seen to implement ``ReaderSocket``: the protocol check (a walk over its members) is
made once per type, not once per join."""


def reader_socket(scope: Mapping[str, object]) -> ReaderSocket | None:
    """The ``ReaderSocket`` the server offers for this ASGI connection, if any."""
    extensions = scope.get("extensions")
    if not isinstance(extensions, Mapping):
        return None
    sock = extensions.get(READER_SOCKET)
    if type(sock) in _CONFORMING:
        return sock
    if not isinstance(sock, ReaderSocket):
        return None
    _CONFORMING.add(type(sock))
    return sock
