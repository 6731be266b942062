"""The reader's WebSocket against RFC 6455, driven with hand-built frames over a raw socket.

Each behaviour is checked in the three states a reader's connection can be in: parked (caught
up, held by ``livefeed.stream.uvicorn_ws``), catching up (a resume from far back: megabytes of
events written through ASGI) and replaying (``?replay=``). What the server must answer is what
RFC 6455 requires and what ``websockets``' own server answers for the same bytes.

Every test runs on both transports (``helpers.TRANSPORTS``); on uvicorn's stock protocol a
"parked" reader is one that has caught up and is served by its task. The two things only
livefeed's protocol does are marked as expected failures there (strict: should uvicorn start
doing them, the mark must go).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import SERVER
from websockets.protocol import Protocol as WebSocketProtocol
from websockets.server import ServerProtocol

from helpers import (
    TRANSPORTS,
    LivefeedServer,
    RedisProcess,
    livefeed,
    make_feed,
    publish,
    wait_until,
)
from livefeed.stream.socket import READER_SOCKET, DirectSocket, Parked, reader_socket
from livefeed.stream.ws_parked import between_frames

TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA

CATCHUP_BRIEFS = 640
BODY = "Long read. " * 1_500  # ~16 KB a brief: the catch-up is about 10 MB
SMALL_RCVBUF = 16 * 1024
"""A reader's receive buffer small enough that a catch-up of megabytes is still being written
while the test talks to the server (Linux would otherwise let it grow to take the whole of it)."""


def frame(
    opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0, mask: bool = True
) -> bytes:
    """A client frame as RFC 6455 5.2 lays it out: masked unless told otherwise."""
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    length = len(payload)
    bit = 0x80 if mask else 0
    if length < 126:
        head += bytes([bit | length])
    elif length < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", length)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", length)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()


class RawSocket:
    """A WebSocket client that sends exactly the bytes it is given and parses what comes back."""

    def __init__(
        self, port: int, path: str, rcvbuf: int | None = None, extensions: str | None = None
    ) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(30)
        self.buffer = b""
        self.rsv1 = False  # the last frame read was compressed (permessage-deflate)
        self._inflater: zlib._Decompress | None = None
        self.pace = 0.0  # seconds to sleep after each read of 4 KB: a slow reader
        try:
            self.sock.connect(("127.0.0.1", port))
            key = base64.b64encode(os.urandom(16)).decode()
            offer = f"Sec-WebSocket-Extensions: {extensions}\r\n" if extensions else ""
            self.sock.sendall(
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n{offer}"
                "Sec-WebSocket-Version: 13\r\n\r\n".encode()
            )
            while b"\r\n\r\n" not in self.buffer:
                self._fill()
            self.head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            assert self.head.startswith(b"HTTP/1.1 101"), self.head
        except BaseException:
            self.sock.close()
            raise

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> None:
        chunk = self.sock.recv(4096 if self.pace else 65536)
        if not chunk:
            raise EOFError("connection closed by the server")
        self.buffer += chunk
        if self.pace:
            time.sleep(self.pace)

    def _take(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self._fill()
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def inflate(self, payload: bytes) -> bytes:
        """A compressed server message, inflated; one inflater for the connection, in case the
        server keeps its compression context between messages (uvicorn's stock protocol)."""
        if self._inflater is None:
            self._inflater = zlib.decompressobj(wbits=-15)
        return self._inflater.decompress(payload + b"\x00\x00\xff\xff")

    def read_frame(self) -> tuple[int, bytes]:
        """The next server frame as (opcode, payload); server frames are never masked."""
        first, second = self._take(2)
        assert second & 0x80 == 0, "a server must not mask its frames"
        self.rsv1 = bool(first & 0x40)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._take(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._take(8))
        return first & 0x0F, self._take(length)

    def until(self, opcode: int) -> tuple[list[dict[str, object]], bytes]:
        """Read frames until one with ``opcode``; return the text frames before it and its
        payload."""
        texts: list[dict[str, object]] = []
        while True:
            op, payload = self.read_frame()
            if op == opcode:
                return texts, payload
            if op == TEXT:
                texts.append(json.loads(payload))

    def close_code(self) -> int:
        """Read up to the server's close frame and return its code (1005 when it has none)."""
        _, payload = self.until(CLOSE)
        return struct.unpack("!H", payload[:2])[0] if payload else 1005

    def read_live(self) -> list[dict[str, object]]:
        """Text frames up to and including the "live" frame: the reader is parked after it."""
        texts: list[dict[str, object]] = []
        while not texts or texts[-1]["type"] != "live":
            op, payload = self.read_frame()
            assert op == TEXT, (op, payload)
            texts.append(json.loads(payload))
        return texts


@pytest.fixture(scope="module", params=sorted(TRANSPORTS))
def ws_server(
    redis_server: RedisProcess,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[LivefeedServer]:
    """A server of this module's own, so its log holds only what these tests caused."""
    env = TRANSPORTS[request.param]
    server = LivefeedServer(redis_server.url, "ws-" + uuid.uuid4().hex[:6], **env)
    server.start(log_dir=tmp_path_factory.mktemp("ws-logs"))
    yield server
    server.stop()


def import_day(server: LivefeedServer, redis_url: str, path: Path, count: int) -> str:
    """A UTC feed with ``count`` long briefs on 2024-05-01, one a second from 10:00, written
    with the bulk import path."""
    with httpx.Client(base_url=server.base) as client:
        slug = make_feed(client, timezone="UTC")
    with open(path, "w") as out:
        for i in range(count):
            at = f"2024-05-01T10:{i // 60 % 60:02d}:{i % 60:02d}.000Z"
            out.write(json.dumps({"published_at": at, "headline": f"Brief {i}", "body": BODY}))
            out.write("\n")
    done = livefeed(
        "import", slug, str(path), "--redis-url", redis_url, "--key-prefix", server.prefix
    )
    assert done.returncode == 0, done.stderr
    return slug


@pytest.fixture(scope="module")
def big_feed(
    ws_server: LivefeedServer, redis_server: RedisProcess, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """A feed whose whole history is about 10 MB, more than the kernel buffers on both ends
    hold: resuming from its start is a long catch-up."""
    path = tmp_path_factory.mktemp("big") / "day.jsonl"
    return import_day(ws_server, redis_server.url, path, CATCHUP_BRIEFS)


STATES = ["parked", "catching_up", "replaying"]


def connect(server: LivefeedServer, state: str, big_feed: str) -> RawSocket:
    """A raw connection whose server side is in ``state`` when this returns."""
    if state == "parked":
        ws = RawSocket(server.port, f"/ws/feeds/{big_feed}")
        try:
            ws.read_live()
        except BaseException:
            ws.close()
            raise
        return ws
    if state == "catching_up":
        ws = RawSocket(server.port, f"/ws/feeds/{big_feed}?since=0", rcvbuf=SMALL_RCVBUF)
        try:
            for _ in range(3):
                assert ws.read_frame()[0] == TEXT
        except BaseException:
            ws.close()
            raise
        return ws
    ws = RawSocket(server.port, f"/ws/feeds/{big_feed}?replay=2024-05-01&speed=1")
    try:
        op, payload = ws.read_frame()
        assert op == TEXT and json.loads(payload)["type"] == "replay_start"
    except BaseException:
        ws.close()
        raise
    return ws


def expect_failure_on_asgi(
    server: LivefeedServer, request: pytest.FixtureRequest, reason: str
) -> None:
    """Mark the running test as an expected failure on uvicorn's stock protocol, for ``reason``."""
    if server.env.get("LIVEFEED_WS_DIRECT") == "0":
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))


def texts_have_live(texts: list[dict[str, object]]) -> bool:
    return any(t["type"] == "live" for t in texts)


PROTOCOL_ERRORS = {
    "ping_over_125_bytes": frame(PING, b"p" * 126),
    "close_code_999": frame(CLOSE, close_payload(999)),
    "close_code_1005": frame(CLOSE, close_payload(1005)),
    "close_code_5000": frame(CLOSE, close_payload(5000)),
    "unmasked_frame": frame(TEXT, b"{}", mask=False),
    "reserved_bit": frame(TEXT, b"{}", rsv=0b100),
    "unknown_opcode": frame(0x3, b""),
    "continuation_without_start": frame(CONT, b"tail"),
    "fragmented_close": frame(CLOSE, close_payload(1000), fin=False),
}


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("case", sorted(PROTOCOL_ERRORS))
def test_a_protocol_error_from_the_client_is_closed_with_1002(
    ws_server: LivefeedServer, big_feed: str, state: str, case: str
) -> None:
    """Frames RFC 6455 forbids get close code 1002 in every state, as websockets' server does."""
    ws = connect(ws_server, state, big_feed)
    try:
        ws.send(PROTOCOL_ERRORS[case])
        assert ws.close_code() == 1002
    finally:
        ws.close()


@pytest.mark.parametrize("state", STATES)
def test_a_text_message_that_is_not_utf8_is_closed_with_1007(
    ws_server: LivefeedServer, big_feed: str, state: str
) -> None:
    """Invalid UTF-8 in a text message gets 1007 in every state, also split over fragments."""
    ws = connect(ws_server, state, big_feed)
    try:
        ws.send(frame(TEXT, b'{"a":"\xe2\x82', fin=False) + frame(CONT, b'"}'))
        assert ws.close_code() == 1007
    finally:
        ws.close()


@pytest.mark.parametrize("state", STATES)
def test_a_ping_with_a_125_byte_payload_is_echoed(
    ws_server: LivefeedServer, big_feed: str, state: str
) -> None:
    """The largest ping RFC 6455 allows is answered with a pong carrying the same payload."""
    ws = connect(ws_server, state, big_feed)
    try:
        payload = os.urandom(125)
        ws.send(frame(PING, payload))
        assert ws.until(PONG)[1] == payload
    finally:
        ws.close()


@pytest.mark.parametrize("state", STATES)
def test_a_ping_between_the_fragments_of_a_message_is_answered(
    ws_server: LivefeedServer, big_feed: str, state: str
) -> None:
    """A ping may come between a message's fragments: it is answered and the message is whole."""
    ws = connect(ws_server, state, big_feed)
    try:
        ws.send(frame(TEXT, b'{"action":', fin=False) + frame(PING, b"mid"))
        assert ws.until(PONG)[1] == b"mid"
        ws.send(frame(CONT, b'"pause"}') + frame(PING, b"after"))
        assert ws.until(PONG)[1] == b"after"
        ws.send(frame(CLOSE, close_payload(1000)))
        assert ws.close_code() == 1000
    finally:
        ws.close()


@pytest.mark.parametrize("state", STATES)
def test_a_close_from_the_client_is_echoed(
    ws_server: LivefeedServer, big_feed: str, state: str
) -> None:
    """The closing handshake completes in every state: the server echoes the code, then EOF."""
    ws = connect(ws_server, state, big_feed)
    try:
        ws.send(frame(CLOSE, close_payload(4000, "bye")))
        assert ws.close_code() == 4000
        assert ws.sock.recv(1) == b""
    finally:
        ws.close()


def test_a_ping_during_a_catch_up_is_answered_before_it_ends(
    ws_server: LivefeedServer, big_feed: str
) -> None:
    """A reader that has sent a message and then pings mid catch-up gets its pong before the
    catch-up is over, not after megabytes more (what was sent is not left in a receive queue)."""
    ws = connect(ws_server, "catching_up", big_feed)
    try:
        ws.send(frame(TEXT, b"{}"))
        time.sleep(0.2)  # the ping in a segment of its own, read after the message
        ws.send(frame(PING, b"are you there"))
        texts, payload = ws.until(PONG)
        assert payload == b"are you there"
        assert not texts_have_live(texts)
    finally:
        ws.close()


def test_a_close_during_a_catch_up_is_answered_and_stops_it(
    ws_server: LivefeedServer, big_feed: str
) -> None:
    """A close mid catch-up (after a message) is echoed before the catch-up's end, and
    nothing follows it."""
    ws = connect(ws_server, "catching_up", big_feed)
    try:
        ws.send(frame(TEXT, b"{}"))
        time.sleep(0.2)
        ws.send(frame(CLOSE, close_payload(1000)))
        texts, payload = ws.until(CLOSE)
        assert payload == close_payload(1000)
        assert not texts_have_live(texts)
        assert ws.buffer == b"" and ws.sock.recv(1) == b""
    finally:
        ws.close()


def test_messages_during_a_catch_up_count_against_the_budget(
    ws_server: LivefeedServer, big_feed: str
) -> None:
    """A reader that talks while catching up is closed with 1008 then, not let off at the park."""
    ws = connect(ws_server, "catching_up", big_feed)
    try:
        ws.send(b"".join(frame(TEXT, b"") for _ in range(100)))
        texts, payload = ws.until(CLOSE)
        assert payload[:2] == struct.pack("!H", 1008)
        assert not texts_have_live(texts)
    finally:
        ws.close()


def test_a_client_frame_cut_across_segments_as_the_reader_parks_is_read_whole(
    ws_server: LivefeedServer,
) -> None:
    """A ping whose header arrives before the park and its payload after is one ping: the
    parked socket keeps websockets' parser until the frame ends."""
    with httpx.Client(base_url=ws_server.base) as client:
        slug = make_feed(client)
        for i in range(3):
            publish(client, slug, f"Brief {i}")
    for _ in range(5):  # the header must arrive while the reader catches up; repeat to be sure
        ws = RawSocket(ws_server.port, f"/ws/feeds/{slug}?since=0")
        try:
            whole = frame(PING, b"whole")
            ws.send(whole[:6])  # header and mask: the parser takes them and waits for 5 bytes
            ws.read_live()
            time.sleep(0.05)
            ws.send(whole[6:])
            assert ws.until(PONG)[1] == b"whole"
            ws.send(frame(PING, b"next"))
            assert ws.until(PONG)[1] == b"next"
        finally:
            ws.close()


def test_client_protocol_errors_are_not_logged_as_errors(
    ws_server: LivefeedServer, big_feed: str, request: pytest.FixtureRequest
) -> None:
    """Invalid frames and invalid UTF-8, in every state, leave no ERROR line or traceback in
    the server's log (a hostile client could otherwise flood it)."""
    expect_failure_on_asgi(
        ws_server, request, "uvicorn logs invalid UTF-8 at ERROR, with a traceback"
    )
    bad = [frame(TEXT, b"\xff"), frame(0x3, b""), frame(PING, b"p" * 126)]
    for state in STATES:
        for data in bad:
            ws = connect(ws_server, state, big_feed)
            try:
                ws.send(data)
                assert ws.close_code() in (1002, 1007)
            finally:
                ws.close()
    with httpx.Client(base_url=ws_server.base) as client:  # a request after them, logged
        marker = f"/healthz?after-{uuid.uuid4().hex}"
        assert client.get(marker).status_code == 200
    wait_until(lambda: marker in ws_server.log(), 10, "the server did not log the request")
    log = ws_server.log()
    assert "Traceback" not in log
    assert not [line for line in log.splitlines() if "ERROR" in line]


@pytest.fixture(scope="module")
def keepalive_server(
    redis_server: RedisProcess, ws_server: LivefeedServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LivefeedServer]:
    """A server on ``ws_server``'s data that pings every second and waits 2 s for the pong."""
    server = LivefeedServer(
        redis_server.url,
        ws_server.prefix,
        LIVEFEED_WS_PING_INTERVAL="1",
        LIVEFEED_WS_PING_TIMEOUT="2",
        **ws_server.env,  # the same transport
    )
    server.start(log_dir=tmp_path_factory.mktemp("keepalive-logs"))
    yield server
    server.stop()


def slow_readers_closed(server: LivefeedServer) -> float:
    text = httpx.get(server.base + "/metrics", timeout=10).text
    (line,) = [
        ln for ln in text.splitlines() if ln.startswith("livefeed_slow_readers_closed_total")
    ]
    return float(line.split()[-1])


def test_a_reader_catching_up_too_slowly_is_closed_with_4408(
    keepalive_server: LivefeedServer, big_feed: str, request: pytest.FixtureRequest
) -> None:
    """A reader taking a catch-up at 100 KB/s (answering every ping it reads) cannot answer
    the keepalive ping in time, since it sits behind megabytes: it gets 4408 "too slow" (and
    resumes with since), not 1011 and a reset."""
    expect_failure_on_asgi(
        keepalive_server,
        request,
        "uvicorn sends 1011 on a keepalive timeout, behind the unsent catch-up",
    )
    before = slow_readers_closed(keepalive_server)
    ws = RawSocket(keepalive_server.port, f"/ws/feeds/{big_feed}?since=0", rcvbuf=SMALL_RCVBUF)
    try:
        ws.pace = 0.04
        deadline = time.monotonic() + 30
        code: int | None = None
        while slow_readers_closed(keepalive_server) == before:
            assert time.monotonic() < deadline, "the slow reader was not closed in 30 s"
            for _ in range(5):
                op, payload = ws.read_frame()
                assert not (op == TEXT and json.loads(payload)["type"] == "live")
                if op == PING:
                    ws.send(frame(PONG, payload))
                if op == CLOSE:
                    code = struct.unpack("!H", payload[:2])[0]
                    break
            if code is not None:
                break
        ws.pace = 0  # take the rest at once: the server aborts a reader that leaves its close
        if code is None:
            code = ws.close_code()
        assert code == 4408
    finally:
        ws.close()


def test_a_parked_reader_that_answers_no_ping_is_closed_with_4408(
    keepalive_server: LivefeedServer, request: pytest.FixtureRequest
) -> None:
    """Parked readers are pinged every ping interval: one that answers stays connected, one that
    does not is closed with 4408 (too slow: resume with since) once the ping timeout passes."""
    expect_failure_on_asgi(keepalive_server, request, "uvicorn sends 1011 on a keepalive timeout")
    with httpx.Client(base_url=keepalive_server.base) as client:
        slug = make_feed(client)
    answering = RawSocket(keepalive_server.port, f"/ws/feeds/{slug}")
    silent = RawSocket(keepalive_server.port, f"/ws/feeds/{slug}")
    pongs = 0
    failure: list[BaseException] = []

    def answer() -> None:  # the ping interval is 1 s: answer every ping for 8 s
        nonlocal pongs
        try:
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline:
                op, payload = answering.read_frame()
                assert op != CLOSE, payload
                if op == PING:
                    answering.send(frame(PONG, payload))
                    pongs += 1
        except BaseException as exc:
            failure.append(exc)

    try:
        answering.read_live()
        silent.read_live()
        thread = threading.Thread(target=answer)
        thread.start()
        _, payload = silent.until(CLOSE)  # it reads the pings, and answers none
        thread.join(30)
        assert struct.unpack("!H", payload[:2])[0] == 4408
        assert not failure, failure
        assert pongs >= 3
        answering.send(frame(PING, b"alive"))
        assert answering.until(PONG)[1] == b"alive"
    finally:
        answering.close()
        silent.close()


def deflated(opcode: int, text: bytes, *, fragments: int = 1) -> bytes:
    """A client message compressed on its own (RFC 7692 7.2.1: the tail 00 00 ff ff dropped),
    in ``fragments`` frames: RSV1 on the first only."""
    deflater = zlib.compressobj(wbits=-15)
    data = (deflater.compress(text) + deflater.flush(zlib.Z_SYNC_FLUSH))[:-4]
    cut = [len(data) * i // fragments for i in range(fragments + 1)]
    return b"".join(
        frame(opcode if i == 0 else CONT, data[cut[i] : cut[i + 1]], fin=i == fragments - 1,
              rsv=0b100 if i == 0 else 0)
        for i in range(fragments)
    )  # fmt: skip


def read_live_inflating(ws: RawSocket) -> None:
    """Read text frames up to the "live" one, inflating those sent compressed (RSV1)."""
    while True:
        op, payload = ws.read_frame()
        assert op == TEXT, (op, payload)
        if json.loads(ws.inflate(payload) if ws.rsv1 else payload)["type"] == "live":
            return


def close_code_past_compressed(ws: RawSocket) -> int:
    """The server's close code, past frames whose payload may be compressed."""
    while True:
        op, payload = ws.read_frame()
        if op == CLOSE:
            return struct.unpack("!H", payload[:2])[0] if payload else 1005


@pytest.mark.parametrize("state", ["parked", "catching_up"])
def test_a_deflate_reader_inflates_what_it_is_sent_and_checks_its_utf8(
    ws_server: LivefeedServer, big_feed: str, state: str
) -> None:
    """With permessage-deflate negotiated, compressed text from the reader is inflated (and a
    ping after it answered); text that inflates to invalid UTF-8 gets 1007, and a compressed
    control frame 1002."""
    path = f"/ws/feeds/{big_feed}" + ("?since=0" if state == "catching_up" else "")
    offer = "permessage-deflate; client_max_window_bits"
    cases = [
        (deflated(TEXT, b'{"a":"\xe2\x82\xac"}', fragments=2) + frame(PING, b"ok"), None),
        (deflated(TEXT, b'{"a":"\xe2\x82"}' * 20, fragments=2), 1007),
        (frame(PING, b"zipped", rsv=0b100), 1002),
    ]
    for data, code in cases:
        ws = RawSocket(ws_server.port, path, rcvbuf=SMALL_RCVBUF, extensions=offer)
        try:
            assert b"permessage-deflate" in ws.head.lower()
            if state == "parked":
                read_live_inflating(ws)
            else:
                ws.read_frame()
            ws.send(data)
            if code is None:
                while ws.read_frame() != (PONG, b"ok"):
                    pass
                ws.send(frame(CLOSE, close_payload(1000)))
                code = 1000
            assert close_code_past_compressed(ws) == code
        finally:
            ws.close()


def test_the_parser_is_between_frames_only_after_a_whole_frame() -> None:
    """``between_frames`` holds after the handshake and after each whole frame, not after a
    frame's header alone: the parked socket drops websockets' connection only then."""
    conn = ServerProtocol()
    key = base64.b64encode(os.urandom(16)).decode()
    conn.receive_data(
        f"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    (request,) = conn.events_received()
    assert isinstance(request, Request)
    conn.send_response(conn.accept(request))
    assert between_frames(conn.parser)
    ping = frame(PING, b"12345")
    conn.receive_data(ping[:6])
    assert not between_frames(conn.parser)
    conn.receive_data(ping[6:])
    assert between_frames(conn.parser)
    assert [(f.opcode, f.data) for f in conn.events_received() if isinstance(f, Frame)] == [
        (Opcode.PING, b"12345")
    ]
    fresh = WebSocketProtocol(SERVER)  # as a parked socket makes one when bytes arrive
    assert between_frames(fresh.parser)
    fresh.receive_data(ping[:3])  # a partial header stays in the buffer: still inside a frame
    assert not between_frames(fresh.parser)


def test_only_a_reader_socket_in_the_scope_turns_the_direct_path_on() -> None:
    """``reader_socket`` finds the server's ``ReaderSocket``; a scope without one, or with
    something else under the key (another server's extension), means the ASGI path."""

    class Socket:
        deflate = False

        def send_frames(self, frames: bytes, limit: int) -> bool:
            return True

        def close(self, code: int, reason: str) -> None:
            pass

        def adopt(self, owner: Parked) -> None:
            pass

        def park(self, owner: Parked) -> DirectSocket | None:
            return self

    sock = Socket()
    assert reader_socket({"extensions": {READER_SOCKET: sock}}) is sock
    assert reader_socket({"extensions": {READER_SOCKET: {"send": print}}}) is None
    assert reader_socket({"extensions": {}}) is None
    assert reader_socket({"extensions": None}) is None
    assert reader_socket({}) is None
