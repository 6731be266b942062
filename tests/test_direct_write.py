"""The broadcast write path's one ``send`` per reader (``ws_parked.ParkedSocket.send_frames``),
over real loopback sockets and asyncio's own transport: what the socket does not take is left to
the transport, in order, and a failed socket fails the transport as ``transport.write`` would."""

from __future__ import annotations

import asyncio
import socket

from livefeed.stream.ws_parked import ParkedSocket, ParkingLot, plain_socket


class _Owner:
    def message(self) -> bool:
        return True

    def lost(self) -> None:
        pass


async def _pair() -> tuple[asyncio.Transport, ParkedSocket, socket.socket]:
    """A server-side transport over one end of a loopback TCP pair, parked; the peer end,
    unread."""
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        peer = socket.create_connection(listener.getsockname())
        server_side, _ = listener.accept()
    finally:
        listener.close()
    server_side.setblocking(False)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, server_side)
    raw = plain_socket(transport)
    assert raw is server_side
    parked = ParkedSocket(
        ParkingLot(set(), None, None, None), transport, raw, _Owner(), deflate=False, inflate_bits=0
    )
    transport.set_protocol(parked)
    return transport, parked, peer


def _read_all(peer: socket.socket, size: int) -> bytes:
    data = bytearray()
    peer.settimeout(30)
    while len(data) < size:
        chunk = peer.recv(65536)
        assert chunk, "the connection closed early"
        data += chunk
    return bytes(data)


async def test_frames_the_socket_only_partly_takes_arrive_whole_and_in_order() -> None:
    """Writes past what the kernel holds go to the transport's buffer and arrive byte for byte."""
    transport, parked, peer = await _pair()
    try:
        chunks: list[bytes] = []
        buffered = 0
        for n in range(512):  # at most 32 MiB; the kernel's buffers fill well before that
            chunks.append(bytes([n % 256]) * 65536)
            if transport.get_write_buffer_size():
                buffered += 1
            assert parked.send_frames(chunks[-1], 1 << 30)
            if buffered == 4:
                break
        assert transport.get_write_buffer_size() > 0, "the kernel took it all: nothing tested"
        expected = b"".join(chunks)
        got = await asyncio.to_thread(_read_all, peer, len(expected))
        assert got == expected
    finally:
        transport.close()
        peer.close()


async def test_a_write_to_a_reset_socket_fails_the_transport() -> None:
    """A peer that reset the connection: the transport closes, as ``transport.write`` makes it."""
    transport, parked, peer = await _pair()
    try:
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        peer.close()  # linger 0: an RST
        async with asyncio.timeout(30):
            while not transport.is_closing():
                await asyncio.sleep(0.01)
                parked.send_frames(b"x" * 1024, 1 << 30)
        assert not parked.send_frames(b"x", 1 << 30), "a failed connection takes no frames"
    finally:
        transport.close()
        peer.close()


async def test_only_asyncio_plain_transports_offer_their_socket() -> None:
    """A transport of another kind (TLS, uvloop, a test double) keeps the transport's path."""
    assert plain_socket(asyncio.BaseTransport()) is None
