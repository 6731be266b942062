"""A parked reader's connection is one small object (``livefeed.stream.ws_parked``).

These tests run uvicorn in the test's own process, with livefeed's protocol and an application
that parks every WebSocket it accepts, so they can see which objects a parked connection keeps
alive. What the parked socket answers on the wire, in every state, is tests/test_transport.py's.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
import websockets
from websockets.frames import CloseCode

from livefeed.model.frames import websocket_text_frame
from livefeed.stream.socket import DirectSocket, reader_socket
from livefeed.stream.uvicorn_ws import DirectSendProtocol


@dataclass
class Owner:
    """A ``Parked`` that records what it hears."""

    messages: int = 0
    budget: int = 100
    gone: asyncio.Event = field(default_factory=asyncio.Event)

    def message(self) -> bool:
        self.messages += 1
        return self.messages <= self.budget

    def lost(self) -> None:
        self.gone.set()


class ParkingApp:
    """Accepts every WebSocket, adopts it and parks it at once; keeps weak references to the
    protocol objects and strong ones to the parked sockets."""

    def __init__(self) -> None:
        self.protocols: list[weakref.ref[Any]] = []
        self.parked: list[DirectSocket] = []
        self.owners: list[Owner] = []
        self.ready = asyncio.Condition()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "websocket"
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        sock = reader_socket(scope)
        assert sock is not None
        owner = Owner()
        sock.adopt(owner)
        parked = sock.park(owner)
        assert parked is not None
        self.protocols.append(weakref.ref(sock))
        self.parked.append(parked)
        self.owners.append(owner)
        async with self.ready:
            self.ready.notify_all()

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(30), self.ready:
            await self.ready.wait_for(lambda: len(self.parked) >= count)


@pytest.fixture
async def parking() -> AsyncIterator[tuple[ParkingApp, str, uvicorn.Server]]:
    app = ParkingApp()
    config = uvicorn.Config(
        app, ws=DirectSendProtocol, lifespan="off", log_level="warning", ws_ping_interval=None
    )
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)  # what ``serve`` sets before ``startup``
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await server.startup(sockets=[sock])
    try:
        yield app, f"ws://127.0.0.1:{sock.getsockname()[1]}/", server
    finally:
        if not server.should_exit:  # a test that stopped it already
            await server.shutdown(sockets=[sock])
        sock.close()


async def test_a_parked_connection_drops_uvicorns_protocol_and_websockets_connection(
    parking: tuple[ParkingApp, str, uvicorn.Server],
) -> None:
    """Once parked, nothing holds the protocol object that did the handshake (nor, through it,
    websockets' connection with the handshake request): the parked socket alone writes frames,
    answers pings and echoes the close."""
    app, url, _ = parking
    async with websockets.connect(url) as ws:
        await app.wait_for(1)
        for _ in range(3):
            gc.collect()
        assert app.protocols[0]() is None, gc.get_referrers(app.protocols[0]())
        assert app.parked[0].send_frames(websocket_text_frame(b'{"type":"live"}'), 1 << 20)
        async with asyncio.timeout(10):
            assert await ws.recv() == '{"type":"live"}'
            await (await ws.ping(b"still there"))
            await ws.send("a message")
            await ws.close()
        async with asyncio.timeout(10):
            await app.owners[0].gone.wait()
    assert ws.close_code == CloseCode.NORMAL_CLOSURE
    assert app.owners[0].messages == 1
    assert not app.parked[0].send_frames(websocket_text_frame(b"{}"), 1 << 20)


async def test_a_parked_socket_closes_with_its_code_and_the_server_stop_sends_1001(
    parking: tuple[ParkingApp, str, uvicorn.Server],
) -> None:
    """``close`` sends its code and reason; a server stopping tells every parked reader to come
    back (1001) and waits for none of them longer than its graceful timeout."""
    app, url, server = parking
    first = await websockets.connect(url)
    second = await websockets.connect(url)
    try:
        await app.wait_for(2)
        app.parked[0].close(4408, "too slow: reconnect with since")
        async with asyncio.timeout(10):
            await first.wait_closed()
            await app.owners[0].gone.wait()
        assert (first.close_code, first.close_reason) == (4408, "too slow: reconnect with since")
        server.should_exit = True
        async with asyncio.timeout(20):
            await server.shutdown()
            await second.wait_closed()
        assert second.close_code == CloseCode.GOING_AWAY
        assert app.owners[1].gone.is_set()
    finally:
        await first.close()
        await second.close()


async def test_messages_to_a_parked_socket_count_against_its_owners_budget(
    parking: tuple[ParkingApp, str, uvicorn.Server],
) -> None:
    """Each whole message, compressed or not, fragmented or not, is counted once; past the
    budget the socket closes with 1008."""
    app, url, _ = parking
    async with websockets.connect(url, compression="deflate") as ws:
        await app.wait_for(1)
        app.owners[0].budget = 3
        await ws.send("compressed " * 50)
        await ws.send(["frag", "mented"])
        await ws.send(b"binary")
        await ws.send("one too many")
        async with asyncio.timeout(10):
            await ws.wait_closed()
    assert ws.close_code == CloseCode.POLICY_VIOLATION
    assert app.owners[0].messages == 4
