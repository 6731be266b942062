"""What the tests share: real servers started by PID, the editor token, and small helpers that
publish through the API or wait on a condition. Fixtures live in conftest.py; test modules import
these from here, never from conftest or from one another."""

from __future__ import annotations

import asyncio
import contextlib
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
from typing import Any, cast

import httpx
import orjson
import pytest
import redis
import websockets
from playwright.sync_api import Browser, sync_playwright
from websockets.asyncio.client import ClientConnection

from livefeed.storage.keys import Keys
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

    def start(self, *extra: str) -> None:
        """Start it (again, on the same port and data); ``extra`` are more redis-server options."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                self.binary or find_redis_server(), "--bind", "127.0.0.1", "--port", str(self.port),
                "--dir", str(self.data_dir), "--appendonly", "yes", "--appendfsync", "always",
                "--save", "", "--daemonize", "no", "--logfile", str(self.data_dir / "redis.log"),
                *extra,
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(self._ready, 20, "redis-server did not start")

    def _ready(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_timeout=0.5).ping())
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
            return False

    def in_sync(self) -> bool:
        """For a replica: its link to the primary is up (the first sync is done)."""
        try:
            info = redis.Redis(port=self.port, socket_timeout=0.5).info("replication")
        except (redis.ConnectionError, redis.TimeoutError):
            return False
        return bool(info.get("master_link_status") == "up")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)
        self.proc = None


class SentinelSet:
    """A primary, a replica and three Sentinels watching them (quorum 2), all on loopback.

    Sentinels call a primary down after ``down_after_ms`` without an answer, so a SIGKILLed
    primary is replaced within a few seconds. ``url`` is livefeed's ``redis+sentinel://`` URL.
    """

    MASTER = "livefeed"

    def __init__(self, base: Path, down_after_ms: int = 1000) -> None:
        self.base = base
        self.down_after_ms = down_after_ms
        self.primary = RedisProcess(base / "primary")
        self.replica = RedisProcess(base / "replica")
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{self.MASTER}/0"

    def start(self) -> None:
        self.primary.start()
        self.replica.start("--replicaof", "127.0.0.1", str(self.primary.port))
        wait_until(lambda: self.replica_in_sync(), 20, "the replica did not sync")
        for index, port in enumerate(self.sentinel_ports):
            directory = self.base / f"sentinel{index}"
            directory.mkdir(parents=True, exist_ok=True)
            conf = directory / "sentinel.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {directory}\n"
                f"sentinel monitor {self.MASTER} 127.0.0.1 {self.primary.port} 2\n"
                f"sentinel down-after-milliseconds {self.MASTER} {self.down_after_ms}\n"
                f"sentinel failover-timeout {self.MASTER} 4000\n"
                f"sentinel parallel-syncs {self.MASTER} 1\n"
            )
            self.sentinels.append(
                subprocess.Popen(
                    [
                        find_redis_server(),
                        str(conf),
                        "--sentinel",
                        "--logfile",
                        str(directory / "sentinel.log"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        wait_until(lambda: self._sentinels_agree(), 30, "the Sentinels did not find each other")

    def replica_in_sync(self) -> bool:
        return self.replica.in_sync()

    def _sentinels_agree(self) -> bool:
        for port in self.sentinel_ports:
            try:
                state = redis.Redis(port=port, socket_timeout=0.5).sentinel_master(self.MASTER)
            except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
                return False
            if not isinstance(state, dict):
                return False
            if int(state.get("num-other-sentinels", 0)) < 2 or int(state.get("num-slaves", 0)) < 1:
                return False
        return True

    def primary_port(self) -> int | None:
        """The port the Sentinels currently name as the primary's (None if they cannot say)."""
        for port in self.sentinel_ports:
            try:
                address = redis.Redis(
                    port=port, socket_timeout=0.5
                ).sentinel_get_master_addr_by_name(self.MASTER)
            except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
                continue
            if isinstance(address, (tuple, list)) and address:
                return int(address[1])
        return None

    def stop(self) -> None:
        for proc in self.sentinels:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
        self.sentinels = []
        self.replica.stop()
        self.primary.stop()


class ClusterSet:
    """A Redis Cluster of three primaries with a replica each, on loopback (AOF, ``appendfsync
    always``); ``url`` is livefeed's ``redis+cluster://`` URL. A primary SIGKILLed is replaced
    by its replica after ``node_timeout_ms``."""

    def __init__(self, base: Path, node_timeout_ms: int = 1000) -> None:
        self.base = base
        self.node_timeout_ms = node_timeout_ms
        self.nodes = [RedisProcess(base / f"node{index}") for index in range(6)]
        self._bus_ports: dict[int, int] = {}

    def start_node(self, node: RedisProcess, bus_port: int | None = None) -> None:
        """Start one node (again: same port, data and cluster state, after a SIGKILL say)."""
        # The bus port is given: the default (port + 10000) may be past 65535.
        bus = self._bus_ports.setdefault(node.port, bus_port or free_port())
        node.start(
            "--cluster-enabled", "yes", "--cluster-node-timeout", str(self.node_timeout_ms),
            "--cluster-config-file", str(node.data_dir / "nodes.conf"),
            "--cluster-port", str(bus),
        )  # fmt: skip

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes[:3]) + "/"

    def start(self) -> None:
        for node in self.nodes:
            (node.data_dir / "nodes.conf").unlink(missing_ok=True)
            self.start_node(node, free_port())
        subprocess.run(
            [
                find_redis_cli(), "--cluster", "create",
                *(f"127.0.0.1:{node.port}" for node in self.nodes),
                "--cluster-replicas", "1", "--cluster-yes",
            ],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        wait_until(self.healthy, 60, "the cluster did not come up")

    def client(self) -> redis.RedisCluster:
        """A plain (sync) cluster client for the test's own looks at the data."""
        return redis.RedisCluster(host="127.0.0.1", port=self.live_port(), socket_timeout=2)

    def live_port(self) -> int:
        return next(n.port for n in self.nodes if n.proc is not None and n.proc.poll() is None)

    def healthy(self) -> bool:
        """Every slot is served and every primary has a replica in sync."""
        try:
            with redis.Redis(port=self.live_port(), socket_timeout=0.5) as client:
                info = client.cluster("info")
            shards = self.shards()
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
            return False
        if info.get("cluster_state") != "ok" or len(shards) != 3:
            return False
        return all(len(replicas) >= 1 for replicas in shards.values()) and all(
            self._replicated(port) for port in shards
        )

    def _replicated(self, port: int) -> bool:
        """The primary on ``port`` has a replica online (its first sync done)."""
        try:
            with redis.Redis(port=port, socket_timeout=0.5) as client:
                info = client.info("replication")
        except (redis.ConnectionError, redis.TimeoutError):
            return False
        replica = info.get("slave0")
        return isinstance(replica, dict) and replica.get("state") == "online"

    def shards(self) -> dict[int, list[int]]:
        """Each primary's port with its connected replicas' ports, as CLUSTER NODES says."""
        with redis.Redis(port=self.live_port(), socket_timeout=0.5) as client:
            raw = client.execute_command("CLUSTER", "NODES")
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        lines = [line.split() for line in text.splitlines() if line.strip()]
        port_of = {f[0]: int(f[1].split("@")[0].rsplit(":", 1)[1]) for f in lines}
        shards: dict[int, list[int]] = {}
        for f in lines:
            if "master" in f[2] and "fail" not in f[2]:
                shards.setdefault(port_of[f[0]], [])
        for f in lines:
            if "slave" in f[2] and "fail" not in f[2] and f[7] == "connected":
                primary = port_of.get(f[3])
                if primary in shards:
                    shards[primary].append(port_of[f[0]])
        return shards

    def primary_of(self, key: str) -> RedisProcess:
        """The node that serves ``key``'s slot now."""
        client = self.client()
        try:
            node = client.get_node_from_key(key)  # type: ignore[no-untyped-call]
            assert node is not None
            port = int(node.port)
        finally:
            client.close()
        return next(n for n in self.nodes if n.port == port)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def find_redis_cli() -> str:
    """redis-cli beside the redis-server livefeed runs (or on PATH)."""
    beside = Path(find_redis_server()).with_name("redis-cli")
    return str(beside) if beside.exists() else "redis-cli"


TRANSPORTS: dict[str, dict[str, str]] = {"direct": {}, "asgi": {"LIVEFEED_WS_DIRECT": "0"}}
"""The two ways a server writes to readers, as the environment that selects each: livefeed's own
uvicorn protocol (direct writes, parked readers) and uvicorn's stock one (every event through
ASGI, as under any other ASGI server)."""


ON_BOTH = pytest.mark.parametrize("server", ["redis", "cluster"], indirect=True)
"""Run a test on the session's node on one Redis and on the one on a Redis Cluster (a module
using it overrides ``server`` with ``pick_server``)."""


def pick_server(server: LivefeedServer, request: pytest.FixtureRequest) -> LivefeedServer:
    """``server``, or the session's node on a Redis Cluster when the test asks for it (ON_BOTH)."""
    if getattr(request, "param", "redis") == "cluster":
        clustered: LivefeedServer = request.getfixturevalue("cluster_server")
        return clustered
    return server


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


def admin_client(url: str) -> redis.Redis:
    """A plain (sync) client of the Redis a livefeed ``redis://`` or ``redis+cluster://`` URL
    names, for the test's own looks at the data (a cluster client answers the same calls)."""
    if url.startswith("redis+cluster://"):
        host, _, port = url.removeprefix("redis+cluster://").split(",")[0].rpartition(":")
        cluster: Any = redis.RedisCluster(host=host, port=int(port.rstrip("/")), socket_timeout=5)
        return cast(redis.Redis, cluster)
    return redis.Redis.from_url(url)


def stream_length(redis_server: RedisProcess, server: LivefeedServer, slug: str) -> int:
    """How many events the feed's stream holds, read from Redis itself."""
    client = admin_client(server.redis_url or redis_server.url)
    try:
        return int(client.xlen(Keys(server.prefix).stream(slug)))
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


# --- readers that resume, and what they got ------------------------------------------------


def stream_order(event_id: str) -> tuple[int, int]:
    ms, seq = event_id.split("-")
    return int(ms), int(seq)


def stored_ids(base: str, slug: str) -> list[str]:
    """Every brief the feed holds, oldest first, read page by page through the API."""
    ids: list[str] = []
    params: dict[str, str | int] = {"limit": 100}
    while True:
        page = httpx.get(f"{base}/api/feeds/{slug}/briefs", params=params, timeout=10).json()
        ids += [b["id"] for b in page["briefs"]]
        if page["next_before"] is None:
            return sorted(ids, key=stream_order)
        params["before"] = page["next_before"]


class Follower:
    """A reader that keeps every brief id it is sent and, when cut off, resumes with ``since``.

    ``drop_after()`` gives the seconds after which each new connection is aborted (no close
    frame), or None to keep it.
    """

    def __init__(
        self, ws_base: str, slug: str, since: str, drop_after: Callable[[], float | None]
    ) -> None:
        self.url = f"{ws_base}/ws/feeds/{slug}"
        self.since = since
        self.drop_after = drop_after
        self.ids: list[str] = []
        self.connects = 0
        self.close_codes: list[int | None] = []  # codes the server closed with (not our drops)
        self.live = asyncio.Event()
        self.ws: ClientConnection | None = None
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                ws = await websockets.connect(f"{self.url}?since={self.since}", open_timeout=30)
            except (OSError, TimeoutError, websockets.InvalidHandshake):
                await asyncio.sleep(0.1)
                continue
            self.ws = ws
            self.connects += 1
            delay = self.drop_after()
            dropped = False

            def drop(ws: ClientConnection = ws) -> None:
                nonlocal dropped
                dropped = True
                ws.transport.abort()

            timer = loop.call_later(delay, drop) if delay is not None else None
            try:
                async for message in ws:
                    frame = orjson.loads(message)
                    if frame["type"] == "brief":
                        self.ids.append(frame["event_id"])
                        self.since = frame["event_id"]
                    elif frame["type"] == "live":
                        self.live.set()
            except websockets.ConnectionClosed:
                pass
            finally:
                if timer is not None:
                    timer.cancel()
            if not dropped:
                self.close_codes.append(ws.close_code)
                if ws.close_code in (4400, 4404):
                    return  # refused for good: the test reports it

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        if self.ws is not None:
            self.ws.transport.abort()


async def wait_for(
    predicate: Callable[[], bool], timeout: float, message: str | Callable[[], str]
) -> None:
    """Poll ``predicate`` until it holds; fail with ``message`` after ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(message if isinstance(message, str) else message()) from None


def differences(got: list[str], expected: list[str]) -> str:
    """What is wrong with a reader's ids, briefly: missing, repeated, out of order."""
    missing = len(set(expected) - set(got))
    repeated = len(got) - len(set(got))
    index = next((i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b), None)
    return f"{missing} missing, {repeated} repeated, first difference at index {index}"
