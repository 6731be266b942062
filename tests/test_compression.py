"""permessage-deflate (RFC 7692) on the reader socket: negotiated with server_no_context_takeover,
each broadcast frame compressed once, and every frame a deflate reader gets decompressing to the
plain reader's JSON, on both transports, in the websockets client and in Chromium.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from playwright.sync_api import Page, expect
from websockets.extensions.base import Extension
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
)
from websockets.frames import Frame, Opcode
from websockets.typing import ExtensionParameter

from helpers import (
    LivefeedServer,
    RedisProcess,
    auth,
    frames_until,
    has_live,
    make_feed,
    publish,
)
from livefeed.model.frames import (
    DEFLATE_MIN_BYTES,
    DEFLATE_WINDOW_BITS,
    deflated_text_frame,
    websocket_text_frame,
)

JsonFrame = dict[str, Any]
BODY = " ".join(f"Paragraph {n}: the council met again tonight about the bridge." for n in range(8))


class _Recorded(PerMessageDeflate):
    """The client's deflate extension, noting each frame from the server as it arrives."""

    seen: list[tuple[Opcode, bool, int]]

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        self.seen.append((frame.opcode, frame.rsv1, len(frame.data)))
        return super().decode(frame, max_size=max_size)


class Recording(ClientPerMessageDeflateFactory):
    """Offers permessage-deflate as ``websockets`` does (or with ``params``) and records, per
    frame received, its opcode, RSV1 and size on the wire."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.seen: list[tuple[Opcode, bool, int]] = []

    def process_response_params(
        self, params: Sequence[ExtensionParameter], accepted_extensions: Sequence[Extension]
    ) -> PerMessageDeflate:
        ext = super().process_response_params(params, accepted_extensions)
        recorded = _Recorded(
            ext.remote_no_context_takeover,
            ext.local_no_context_takeover,
            ext.remote_max_window_bits,
            ext.local_max_window_bits,
            ext.compress_settings,
        )
        recorded.seen = self.seen
        return recorded

    def data_frames(self) -> list[tuple[bool, int]]:
        return [(rsv1, size) for op, rsv1, size in self.seen if op in (Opcode.TEXT, Opcode.BINARY)]


@pytest.fixture
def either(
    server: LivefeedServer, transport: str, request: pytest.FixtureRequest
) -> LivefeedServer:
    """The session's server for this test's transport (conftest's ``server`` or ``asgi_server``)."""
    if transport == "direct":
        return server
    asgi: LivefeedServer = request.getfixturevalue("asgi_server")
    return asgi


@pytest.fixture
def api(either: LivefeedServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=either.base, timeout=10) as client:
        yield client


def extensions_header(ws: websockets.ClientConnection) -> str:
    assert ws.response is not None
    return ws.response.headers.get("Sec-WebSocket-Extensions") or ""


def correct_and_retract(http: httpx.Client, slug: str, brief_id: str) -> None:
    url = f"/api/feeds/{slug}/briefs/{brief_id}"
    fixed = http.patch(url, json={"headline": "Bridge closed (corrected)"}, headers=auth())
    assert fixed.status_code == 200, fixed.text
    assert http.delete(url, headers=auth()).status_code == 204


def until(kind: str) -> Any:
    return lambda frames: any(f["type"] == kind for f in frames)


async def test_deflate_and_plain_readers_on_one_feed_get_the_same_frames(
    either: LivefeedServer, api: httpx.Client, transport: str
) -> None:
    """A deflate reader's snapshot, briefs, correction and retraction decompress to exactly the
    plain reader's frames; RSV1 is set only on data frames, and a compressed brief is smaller."""
    slug = make_feed(api)
    publish(api, slug, "Already there", body=BODY)
    url = f"{either.ws_base}/ws/feeds/{slug}"
    recording = Recording()
    deflate = await websockets.connect(url, extensions=[recording], compression=None)
    plain = await websockets.connect(url, compression=None)
    try:
        if transport == "direct":
            offered = extensions_header(deflate)
            assert "server_no_context_takeover" in offered
            assert "client_no_context_takeover" in offered
        assert extensions_header(plain) == ""
        start = [await frames_until(ws, has_live) for ws in (deflate, plain)]
        brief = publish(api, slug, "Bridge closed", body=BODY)
        correct_and_retract(api, slug, brief["id"])
        got = [await frames_until(ws, until("brief_deleted")) for ws in (deflate, plain)]
        assert [f["type"] for f in got[0]] == ["brief", "brief_updated", "brief_deleted"]
        assert got[0] == got[1]
        assert start[0] == start[1] and start[0][0]["type"] == "snapshot"
        pong = await deflate.ping()
        await asyncio.wait_for(pong, 10)
    finally:
        await deflate.close()
        await plain.close()
    brief_frame = len(json.dumps(got[1][0], separators=(",", ":")).encode())
    data = recording.data_frames()
    assert any(rsv1 for rsv1, _ in data), "no frame was compressed"
    compressed = [size for rsv1, size in data if rsv1]
    assert min(compressed) < brief_frame  # the brief went compressed, and smaller
    controls = [rsv1 for op, rsv1, _ in recording.seen if op not in (Opcode.TEXT, Opcode.BINARY)]
    assert controls and not any(controls)  # the pong and the close: never compressed


async def test_a_deflate_reader_catching_up_with_since_gets_the_plain_readers_frames(
    either: LivefeedServer, api: httpx.Client, transport: str
) -> None:
    """A catch-up from ``since`` (briefs, a correction, a retraction, then live) decompresses
    to what a plain reader resuming from the same id gets."""
    slug = make_feed(api)
    first = publish(api, slug, "First", body=BODY)
    second = publish(api, slug, "Second", body=BODY)
    correct_and_retract(api, slug, second["id"])
    url = f"{either.ws_base}/ws/feeds/{slug}?since={first['id']}"
    recording = Recording()
    got = []
    for extensions in ([recording], None):
        async with websockets.connect(url, extensions=extensions, compression=None) as ws:
            got.append(await frames_until(ws, has_live))
    assert [f["type"] for f in got[0]] == ["brief", "brief_updated", "brief_deleted", "live"]
    assert got[0] == got[1]
    assert any(rsv1 for rsv1, _ in recording.data_frames())


async def test_a_parked_deflate_reader_gets_heartbeats_and_a_reload_frame(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    """Heartbeats reach a parked deflate reader; a ``since`` newer than the feed gets the
    ``reload`` frame and its close (4400), all readable through the extension."""
    server = LivefeedServer(redis_server.url, "hb-" + uuid.uuid4().hex[:6],
                            LIVEFEED_HEARTBEAT_INTERVAL="0.3")  # fmt: skip
    server.start(log_dir=tmp_path)
    try:
        with httpx.Client(base_url=server.base, timeout=10) as http:
            slug = make_feed(http)
        recording = Recording()
        url = f"{server.ws_base}/ws/feeds/{slug}"
        async with websockets.connect(url, extensions=[recording], compression=None) as ws:
            kinds: list[str] = []
            async with asyncio.timeout(20):
                while kinds.count("heartbeat") < 2:
                    kinds.append(json.loads(await ws.recv())["type"])
            assert kinds[:2] == ["snapshot", "live"]
        reload = Recording()
        async with websockets.connect(
            url + "?since=99999999999999-0", extensions=[reload], compression=None
        ) as ws:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
        assert frame["type"] == "reload" and ws.close_code == 4400
        assert [op for op, _, _ in reload.seen] == [Opcode.TEXT, Opcode.CLOSE]
        assert not any(rsv1 for op, rsv1, _ in reload.seen if op is Opcode.CLOSE)
    finally:
        server.stop()


async def test_a_client_offering_no_context_takeover_and_window_bits_gets_them(
    server: LivefeedServer, http: httpx.Client
) -> None:
    """Offering client_no_context_takeover and both window sizes: the server answers with
    server_no_context_takeover, its window of 12 bits and the client's, and frames decompress."""
    slug = make_feed(http)
    offer = Recording(
        client_no_context_takeover=True, server_max_window_bits=14, client_max_window_bits=10
    )
    url = f"{server.ws_base}/ws/feeds/{slug}"
    async with websockets.connect(url, extensions=[offer], compression=None) as ws:
        agreed = extensions_header(ws)
        await frames_until(ws, has_live)
        publish(http, slug, "Windowed", body=BODY)
        frames = await frames_until(ws, until("brief"))
    for param in ("server_no_context_takeover", "client_no_context_takeover",
                  "server_max_window_bits=12", "client_max_window_bits=10"):  # fmt: skip
        assert param in agreed, agreed
    assert frames[-1]["brief"]["headline"] == "Windowed"
    assert any(rsv1 for rsv1, _ in offer.data_frames())


def handshake(port: int, path: str, extensions: str | None) -> tuple[bytes, bytes]:
    """A raw upgrade with ``extensions`` as the Sec-WebSocket-Extensions header (None: none);
    the response head, and whatever followed it within a second or two."""
    header = "" if extensions is None else f"Sec-WebSocket-Extensions: {extensions}\r\n"
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        f"{header}\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request.encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        if head.startswith(b"HTTP/1.1 101"):
            sock.settimeout(2)
            with contextlib.suppress(TimeoutError):
                rest += sock.recv(65536)
        return head, rest


@pytest.mark.parametrize(
    "offer",
    [None, "permessage-deflate; server_max_window_bits=10", "permessage-deflate; bogus=1",
     "permessage-deflate; server_max_window_bits=99", "x-webkit-deflate-frame",
     "permessage-deflate; ;=,;", '"permessage-deflate"'],
)  # fmt: skip
def test_an_offer_it_cannot_honour_gets_the_plain_socket_or_a_clean_refusal(
    server: LivefeedServer, http: httpx.Client, offer: str | None
) -> None:
    """No offer, a smaller server window, unknown or malformed parameters: a 101 without the
    extension and plain frames (RSV1 clear), or a 400; never a 500."""
    slug = make_feed(http)
    publish(http, slug, "Plain", body=BODY)
    head, rest = handshake(server.port, f"/ws/feeds/{slug}", offer)
    status = head.split(b"\r\n")[0]
    assert status.startswith((b"HTTP/1.1 101", b"HTTP/1.1 400")), head
    if status.startswith(b"HTTP/1.1 101"):
        assert b"sec-websocket-extensions" not in head.lower()
        assert rest and rest[0] == 0x81, rest[:2]  # FIN, text, RSV1 clear: the plain snapshot


async def test_a_deflate_reader_sending_a_compressed_control_in_replay_is_answered(
    server: LivefeedServer, http: httpx.Client
) -> None:
    """A replay's controls, compressed by the client, are decompressed and obeyed."""
    slug = make_feed(http, timezone="UTC")
    publish(http, slug, "Replayed", body=BODY)
    day = datetime.now(UTC).date().isoformat()
    url = f"{server.ws_base}/ws/feeds/{slug}?replay={day}"
    async with websockets.connect(url) as ws:  # the client's default offer; it compresses
        assert "permessage-deflate" in extensions_header(ws)
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "replay_start"
        await ws.send(json.dumps({"action": "pause"}))
        async with asyncio.timeout(10):
            while (frame := json.loads(await ws.recv()))["type"] != "replay_state":
                pass
    assert frame["paused"] is True


@pytest.fixture
def handshakes(lone_page: Page) -> Iterator[list[str]]:
    """The Sec-WebSocket-Extensions of every WebSocket the page opens, through CDP."""
    seen: list[str] = []
    cdp = lone_page.context.new_cdp_session(lone_page)
    cdp.send("Network.enable")

    def response(event: dict[str, Any]) -> None:
        headers = {k.lower(): v for k, v in event["response"]["headers"].items()}
        seen.append(headers.get("sec-websocket-extensions", ""))

    cdp.on("Network.webSocketHandshakeResponseReceived", response)
    yield seen
    cdp.detach()


@pytest.mark.browser
def test_chromium_renders_live_briefs_and_a_correction_over_a_compressed_socket(
    lone_page: Page, handshakes: list[str], server: LivefeedServer, http: httpx.Client
) -> None:
    """Chromium negotiates deflate (server_no_context_takeover) and the reader page shows a
    live brief and then its correction."""
    page = lone_page
    slug = make_feed(http)
    publish(http, slug, "Already there", body=BODY)
    page.goto(f"{server.base}/feeds/{slug}")
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "live", timeout=10000)
    assert handshakes and "server_no_context_takeover" in handshakes[0], handshakes
    brief = publish(http, slug, "Bridge closed", body=BODY)
    first = page.locator("#briefs > li.brief").first
    expect(first.locator(".brief-headline")).to_have_text("Bridge closed", timeout=10000)
    url = f"/api/feeds/{slug}/briefs/{brief['id']}"
    fixed = http.patch(url, json={"headline": "Bridge reopened"}, headers=auth())
    assert fixed.status_code == 200, fixed.text
    expect(first.locator(".brief-headline")).to_have_text("Bridge reopened", timeout=10000)


def test_a_compressed_frame_inflates_to_its_payload_and_short_ones_stay_plain() -> None:
    """``deflated_text_frame``: FIN, RSV1 and text, a raw DEFLATE message any peer with
    server_no_context_takeover inflates; a payload under ``DEFLATE_MIN_BYTES`` goes plain."""
    payload = json.dumps({"type": "brief", "body": BODY}).encode()
    frame = deflated_text_frame(payload)
    assert frame[0] == 0xC1 and len(frame) < len(payload)
    length, data = frame[1], frame[2:]
    if length == 126:
        length, data = int.from_bytes(frame[2:4], "big"), frame[4:]
    assert length == len(data)
    inflater = PerMessageDeflate(True, True, DEFLATE_WINDOW_BITS, DEFLATE_WINDOW_BITS)
    assert inflater.decode(Frame(Opcode.TEXT, data, rsv1=True)).data == payload
    short = b'{"type":"live","last_event_id":"1-0"}'
    assert len(short) < DEFLATE_MIN_BYTES
    assert deflated_text_frame(short) == websocket_text_frame(short)
