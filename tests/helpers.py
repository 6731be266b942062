"""What the tests share: real servers started by PID, the editor token, and small helpers that
publish through the API or wait on a condition. Fixtures live in conftest.py; test modules import
these from here, never from conftest or from one another."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from playwright.sync_api import Browser, sync_playwright
from websockets.asyncio.client import ClientConnection

from livefeed.storage.redis_server import find_redis_server, free_port

TOKEN = "test-editor-token-0123456789"

ROOT = Path(__file__).resolve().parent.parent

JsonFrame = dict[str, Any]
"""A WebSocket frame as the tests read it: the server's JSON, decoded."""


class RedisProcess:
    """A redis-server child with AOF and ``appendfsync always``, like the embedded mode."""

    def __init__(self, data_dir: Path, binary: str | None = None) -> None:
        self.data_dir = data_dir
        self.binary = binary  # None: the redis-server livefeed itself would run
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                self.binary or find_redis_server(), "--bind", "127.0.0.1", "--port", str(self.port),
                "--dir", str(self.data_dir), "--appendonly", "yes", "--appendfsync", "always",
                "--save", "", "--daemonize", "no", "--logfile", str(self.data_dir / "redis.log"),
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(self._ready, 20, "redis-server did not start")

    def _ready(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_timeout=0.5).ping())
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
            return False

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)
        self.proc = None


TRANSPORTS: dict[str, dict[str, str]] = {"direct": {}, "asgi": {"LIVEFEED_WS_DIRECT": "0"}}
"""The two ways a server writes to readers, as the environment that selects each: livefeed's own
uvicorn protocol (direct writes, parked readers) and uvicorn's stock one (every event through
ASGI, as under any other ASGI server)."""


class LivefeedServer:
    """``python -m livefeed serve`` on a free port, started and stopped by PID."""

    def __init__(self, redis_url: str, prefix: str, **env: str) -> None:
        self.redis_url = redis_url
        self.prefix = prefix
        self.port = free_port()
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_base(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self, *extra: str, log_dir: Path | None = None) -> None:
        env = {**os.environ, "LIVEFEED_EDITOR_TOKEN": TOKEN, "LIVEFEED_KEY_PREFIX": self.prefix}
        # Tests publish far faster than an editor would: rate limits are off unless a test
        # turns them on (tests/test_limits.py).
        env.update(LIVEFEED_EDITOR_RATE="0", LIVEFEED_ADDRESS_WRITE_RATE="0")
        env.update(self.env)
        args = [sys.executable, "-m", "livefeed", "serve", "--port", str(self.port)]
        if self.redis_url:
            args += ["--redis-url", self.redis_url]
        log_dir = log_dir or Path(os.environ.get("TMPDIR", "/tmp"))
        self.log_path = log_dir / f"livefeed-{self.port}-{uuid.uuid4().hex[:6]}.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [*args, *extra], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )
        wait_until(self._healthy, 30, f"livefeed did not start; see {self.log_path}")

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"livefeed exited; log:\n{self.log()}")
        try:
            return httpx.get(self.base + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


def wait_until(predicate: Callable[[], object], timeout: float, message: str) -> None:
    """Poll ``predicate`` every 50 ms until it is true; ``TimeoutError(message)`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise TimeoutError(message)


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_feed(client: httpx.Client, timezone: str = "Europe/Kyiv") -> str:
    slug = "f-" + uuid.uuid4().hex[:12]
    response = client.post(
        "/api/feeds",
        json={"slug": slug, "title": f"Feed {slug}", "timezone": timezone},
        headers=auth(),
    )
    assert response.status_code == 201, response.text
    return slug


def publish(client: httpx.Client, slug: str, headline: str, **fields: Any) -> dict[str, Any]:
    response = client.post(
        f"/api/feeds/{slug}/briefs",
        json={"headline": headline, "body": "Body.", **fields},
        headers=auth(),
    )
    assert response.status_code == 201, response.text
    brief: dict[str, Any] = response.json()
    return brief


def stream_length(redis_server: RedisProcess, server: LivefeedServer, slug: str) -> int:
    """How many events the feed's stream holds, read from Redis itself."""
    client = redis.Redis.from_url(redis_server.url)
    try:
        return int(client.xlen(f"{server.prefix}:feed:{slug}:events"))
    finally:
        client.close()


def livefeed(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the ``livefeed`` command from the checkout, ``env`` over the test's environment."""
    return subprocess.run(
        [sys.executable, "-m", "livefeed", *args],
        capture_output=True, text=True, timeout=60, cwd=ROOT, env={**os.environ, **env},
    )  # fmt: skip


async def frames_until(
    ws: ClientConnection, predicate: Callable[[list[JsonFrame]], object], timeout: float = 10
) -> list[JsonFrame]:
    """Receive frames (skipping heartbeats) until ``predicate(frames)`` holds."""
    frames: list[JsonFrame] = []
    async with asyncio.timeout(timeout):
        while not predicate(frames):
            frame = json.loads(await ws.recv())
            if frame["type"] != "heartbeat":
                frames.append(frame)
    return frames


def has_live(frames: list[JsonFrame]) -> bool:
    return any(f["type"] == "live" for f in frames)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


def launch_chromium() -> Iterator[Browser]:
    """Debian's headless Chromium through Playwright; skipped where it is missing, except in CI."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing; .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True
        )
        yield browser
        browser.close()


def read_until_closed(sock: socket.socket, timeout: float) -> bytes | None:
    """Everything the server sends until it closes the connection; None if it sends nothing
    and keeps it open. Bytes that came without a close yet are returned too, never dropped (the
    close may follow a moment later)."""
    deadline = time.monotonic() + timeout
    data = b""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk
    return data or None
