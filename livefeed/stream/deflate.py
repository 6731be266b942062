"""permessage-deflate (RFC 7692) as a broadcast can honour it: one compressed frame per event
that every reader which negotiated it can inflate.

``BroadcastDeflate`` is websockets' server factory with ``server_no_context_takeover`` always
(each message compressed on its own), ``client_no_context_takeover`` always (RFC 7692 7.1.1.2
lets a server ask it unoffered: no inflater is kept per connection for what clients send),
``server_max_window_bits`` of ``frames.DEFLATE_WINDOW_BITS`` (an offer of fewer bits is
declined, so that reader gets the plain socket) and the client's ``client_max_window_bits`` as
offered. ``broadcast_deflate`` tells whether a connection's negotiated extensions let the
frames of ``frames.deflated_text_frame`` through.
"""

from __future__ import annotations

from collections.abc import Sequence

from websockets.exceptions import NegotiationError
from websockets.extensions.base import Extension
from websockets.extensions.permessage_deflate import (
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from websockets.typing import ExtensionParameter

from livefeed.model.frames import DEFLATE_WINDOW_BITS


class BroadcastDeflate(ServerPerMessageDeflateFactory):
    """permessage-deflate with no context takeover either way and a server window of
    ``DEFLATE_WINDOW_BITS``; an offer that limits the window further is declined."""

    def __init__(self) -> None:
        super().__init__(
            server_no_context_takeover=True,
            client_no_context_takeover=True,
            server_max_window_bits=DEFLATE_WINDOW_BITS,
            compress_settings={"memLevel": 8},
        )

    def process_request_params(
        self, params: Sequence[ExtensionParameter], accepted_extensions: Sequence[Extension]
    ) -> tuple[list[ExtensionParameter], PerMessageDeflate]:
        narrower = [
            value
            for name, value in params
            if name == "server_max_window_bits" and value and value.isdigit()
            and int(value) < DEFLATE_WINDOW_BITS
        ]  # fmt: skip
        if narrower:
            raise NegotiationError(f"server_max_window_bits below {DEFLATE_WINDOW_BITS}")
        return super().process_request_params(params, accepted_extensions)


def broadcast_deflate(extensions: Sequence[Extension]) -> bool:
    """True if the negotiated extensions let a frame from ``deflated_text_frame`` through."""
    return any(
        isinstance(ext, PerMessageDeflate)
        and ext.local_no_context_takeover
        and ext.local_max_window_bits >= DEFLATE_WINDOW_BITS
        for ext in extensions
    )
