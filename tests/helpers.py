"""What the tests share: real servers started by PID, the editor token, and small helpers that
publish through the API or wait on a condition. Fixtures live in conftest.py; test modules import
these from here, never from conftest or from one another."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.server
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import http_ece
import httpx
import orjson
import pytest
import redis
import websockets
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import Browser, sync_playwright
from starlette.routing import Mount, Route, WebSocketRoute
from websockets.asyncio.client import ClientConnection

from livefeed.app import create_app
from livefeed.config import Settings
from livefeed.storage.keys import Keys
from livefeed.storage.redis_server import find_redis_server, free_port

TOKEN = "test-editor-token-0123456789"

ROOT = Path(__file__).resolve().parent.parent

JsonFrame = dict[str, Any]
"""A WebSocket frame as the tests read it: the server's JSON, decoded."""


class RedisProcess:
    """A redis-server child with AOF and ``appendfsync always``, like the embedded mode. As a
    primary it starts a replica's full sync at once, not after Redis's default 5 s wait for more
    replicas to join (every test that starts a replica would otherwise wait it out)."""

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
                "--repl-diskless-sync-delay", "0", *extra,
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(self._ready, 20, "redis-server did not start")

    def _ready(self) -> bool:
        try:  # closed here, not by the collector: a failed ping's traceback keeps it in a cycle
            with redis.Redis(port=self.port, socket_timeout=0.5) as client:
                return bool(client.ping())
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
            return False

    def in_sync(self) -> bool:
        """For a replica: its link to the primary is up (the first sync is done)."""
        try:
            with redis.Redis(port=self.port, socket_timeout=0.5) as client:
                info = client.info("replication")
        except (redis.ConnectionError, redis.TimeoutError):
            return False
        return bool(info.get("master_link_status") == "up")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)
        self.proc = None


class DelayProxy:
    """A TCP proxy on a free loopback port that forwards to ``target``, holding every chunk
    ``delay`` seconds in each direction: a lagging link, e.g. a replica's to its primary.

    It stands for the far machine's network: when either side closes or fails, both are cut at
    once and the bytes still held are dropped, as a crashed primary's unsent bytes are. It runs
    in a thread with its own event loop, so the test's own load does not skew the delay.
    """

    def __init__(self, target: int, delay: float) -> None:
        self.port = free_port()
        self.target = target
        self.delay = delay
        self.held = threading.Event()
        """Set (``hold()``): nothing is forwarded, as on a link that stalls; chunks wait."""
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise TimeoutError("the delay proxy did not start")

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", self.port)
        )
        self._ready.set()
        try:
            self.loop.run_forever()
        finally:
            server.close()
            self.loop.run_until_complete(server.wait_closed())
            self.loop.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.transport.abort()
            return
        pipes = [
            asyncio.create_task(self._pipe(reader, up_writer)),
            asyncio.create_task(self._pipe(up_reader, writer)),
        ]
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pipe in pipes:
                pipe.cancel()
            await asyncio.gather(*pipes, return_exceptions=True)
            writer.transport.abort()
            up_writer.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Chunks leave in order, each ``delay`` after it arrived; returns when ``reader`` ends."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def send() -> None:
            while True:
                due, chunk = await queue.get()
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                while self.held.is_set():
                    await asyncio.sleep(0.005)
                writer.write(chunk)
                await writer.drain()

        sender = asyncio.create_task(send())
        try:
            while chunk := await reader.read(65536):
                queue.put_nowait((time.monotonic() + self.delay, chunk))
        except OSError:
            pass
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await sender

    def hold(self) -> None:
        """Stop forwarding, in both directions, until the proxy stops (a link that stalls)."""
        self.held.set()

    def stop(self) -> None:
        """Cut every connection and stop the thread."""

        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.loop.stop()

        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(lambda: self.loop.create_task(cancel_all()))
            self._thread.join(10)


class SentinelSet:
    """A primary, a replica and three Sentinels watching them (quorum 2), all on loopback.

    Sentinels call a primary down after ``down_after_ms`` without an answer, so a SIGKILLed
    primary is replaced within a few seconds. ``url`` is livefeed's ``redis+sentinel://`` URL.
    """

    MASTER = "livefeed"

    def __init__(
        self,
        base: Path,
        down_after_ms: int = 1000,
        *,
        lag: float | None = None,
        failover_timeout_ms: int = 4000,
    ) -> None:
        self.base = base
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.primary = RedisProcess(base / "primary")
        self.replica = RedisProcess(base / "replica")
        self.lag = lag
        """Seconds each way the replica's link to the primary is held (a ``DelayProxy``); the
        Sentinels put a replica whose primary address is not the one they know back on the real
        one after ``failover_timeout_ms``, so a test with a lag sets that above its length."""
        self.proxy: DelayProxy | None = None
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{self.MASTER}/0"

    def start(self) -> None:
        self.primary.start()
        upstream = self.primary.port
        if self.lag is not None:
            self.proxy = DelayProxy(self.primary.port, self.lag)
            upstream = self.proxy.port
        self.replica.start("--replicaof", "127.0.0.1", str(upstream))
        wait_until(lambda: self.replica_in_sync(), 20, "the replica did not sync")
        for index, port in enumerate(self.sentinel_ports):
            directory = self.base / f"sentinel{index}"
            directory.mkdir(parents=True, exist_ok=True)
            conf = directory / "sentinel.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {directory}\n"
                f"sentinel monitor {self.MASTER} 127.0.0.1 {self.primary.port} 2\n"
                f"sentinel down-after-milliseconds {self.MASTER} {self.down_after_ms}\n"
                f"sentinel failover-timeout {self.MASTER} {self.failover_timeout_ms}\n"
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
        if self.proxy is not None:
            self.proxy.stop()
            self.proxy = None


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


ON_BOTH = pytest.mark.parametrize("redis_kind", ["redis", "cluster"], indirect=True)
"""Run a test on the session's node on one Redis and on the one on a Redis Cluster (a module
using it overrides ``server`` with ``pick_server``). It parametrizes conftest's ``redis_kind``,
not ``server``: a parameter on ``server`` reached the session's server too, which then
restarted each time the parameter changed."""


def pick_server(server: LivefeedServer, request: pytest.FixtureRequest) -> LivefeedServer:
    """``server``, or the session's node on a Redis Cluster when the test asks for it (ON_BOTH)."""
    if request.getfixturevalue("redis_kind") == "cluster":
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
        # Tests reach no site but their own: embeds are off unless a test turns them on and
        # points them at a Site (tests/test_embeds.py).
        env.update(LIVEFEED_EMBED_PROVIDERS="")
        # Likewise push: subscriptions only to the suite's own push service (tests/test_push.py).
        env.update(LIVEFEED_PUSH_HOSTS="127.0.0.1")
        env.update(self.env)
        args = [sys.executable, "-m", "livefeed", "serve", "--port", str(self.port)]
        if self.redis_url:
            args += ["--redis-url", self.redis_url]
        log_dir = log_dir or Path(os.environ.get("TMPDIR", "/tmp"))
        self.log_path = log_dir / f"livefeed-{self.port}-{uuid.uuid4().hex[:6]}.log"
        # Uploads go beside the log, never into the user's own data directory.
        env.setdefault("LIVEFEED_MEDIA_DIR", str(self.log_path.with_suffix(".media")))
        env.setdefault("LIVEFEED_SEARCH_DIR", str(self.log_path.with_suffix(".search")))
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


class Site:
    """A small web server on a free loopback port answering what a test ``put`` at each path
    (the query is ignored), for livefeed's outbound fetches; ``hits`` lists each path+query."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[int, str, bytes, dict[str, str]]] = {}
        self.hits: list[str] = []
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.hits.append(self.path)
                status, kind, body, headers = site.pages.get(
                    self.path.split("?")[0], (404, "text/plain", b"not here", {})
                )
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def put(self, path: str, body: bytes | str, kind: str = "text/html; charset=utf-8",
            status: int = 200, headers: dict[str, str] | None = None) -> str:  # fmt: skip
        """Answer ``body`` at ``path``; the URL of it."""
        data = body.encode() if isinstance(body, str) else body
        self.pages[path] = (status, kind, data, headers or {})
        return self.base + path

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


UNSAFE_MARKUP = """(selector) => {
    const bad = [];
    for (const el of document.querySelectorAll(selector)) {
        for (const attr of el.attributes) {
            if (attr.name.startsWith('on')) bad.push(el.tagName + ' ' + attr.name);
        }
        if (['SCRIPT', 'IFRAME', 'OBJECT', 'EMBED', 'SVG', 'MATH', 'STYLE'].includes(el.tagName.toUpperCase()))
            bad.push(el.tagName);
        for (const name of ['href', 'src', 'cite']) {
            const value = el.getAttribute(name);
            if (value !== null && !/^(https?:|mailto:|\\/|#)/i.test(value)) bad.push(name + ' ' + value);
        }
    }
    return bad;
}"""
"""Evaluated in a page with a CSS selector: what in it could run script (an ``on*`` attribute,
a script-capable element, a link or source that is not http(s), mailto, a path or a fragment)."""


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
    """Every brief the feed holds, oldest first, read page by page through the API.

    A 503 (Redis still loading its data after a restart, say) is retried as a client would,
    for up to 30 s; any other failure is the test's.
    """
    ids: list[str] = []
    params: dict[str, str | int] = {"limit": 100}
    deadline = time.monotonic() + 30
    while True:
        response = httpx.get(f"{base}/api/feeds/{slug}/briefs", params=params, timeout=10)
        if response.status_code == 503 and time.monotonic() < deadline:
            time.sleep(0.2)
            continue
        assert response.status_code == 200, (response.status_code, response.text)
        page = response.json()
        ids += [b["id"] for b in page["briefs"]]
        if page["next_before"] is None:
            return sorted(ids, key=stream_order)
        params["before"] = page["next_before"]


class Follower:
    """A reader that keeps every brief id it is sent and, when cut off, resumes with ``since``.

    ``drop_after()`` gives the seconds after which each new connection is aborted (no close
    frame), or None to keep it. With ``reload_from``, a ``reload`` frame makes it forget what
    it got and start over from that id, as a page that reloads does (``reloads`` counts them);
    without, it stops there.
    """

    def __init__(
        self,
        ws_base: str,
        slug: str,
        since: str,
        drop_after: Callable[[], float | None],
        reload_from: str | None = None,
    ) -> None:
        self.url = f"{ws_base}/ws/feeds/{slug}"
        self.since = since
        self.drop_after = drop_after
        self.reload_from = reload_from
        self.reloads = 0
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
            reloading = False
            try:
                async for message in ws:
                    frame = orjson.loads(message)
                    if frame["type"] == "brief":
                        self.ids.append(frame["event_id"])
                        self.since = frame["event_id"]
                    elif frame["type"] == "live":
                        self.live.set()
                    elif frame["type"] == "reload" and self.reload_from is not None:
                        self.reloads += 1
                        self.ids, self.since = [], self.reload_from
                        reloading = True
                        break
            except websockets.ConnectionClosed:
                pass
            finally:
                if timer is not None:
                    timer.cancel()
            if reloading:
                await ws.close()
                continue
            if not dropped:
                self.close_codes.append(ws.close_code)
                if ws.close_code in (4400, 4404):
                    return  # refused for good: the test reports it
                if ws.close_code == 1013:  # Redis unavailable: back off a little, as pages do
                    await asyncio.sleep(0.2)

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


def wait_for_demo(base: str) -> None:
    """Wait until ``serve --demo`` has seeded its feed (pinned its lead, the last step): its
    pictures take a few seconds of CPU after the server answers."""

    def seeded() -> bool:
        response = httpx.get(f"{base}/api/feeds/demo", timeout=10)
        return response.status_code == 200 and response.json()["pinned"] is not None

    wait_until(seeded, 60, "the demo feed was not seeded")


def image_bytes(width: int = 800, height: int = 600, fmt: str = "JPEG", **save: Any) -> bytes:
    """A small picture drawn with Pillow (a gradient and a box, so it compresses like one)."""
    from PIL import Image, ImageDraw

    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    ImageDraw.Draw(image).rectangle((width // 4, height // 4, width // 2, height // 2), "red")
    out = io.BytesIO()
    image.save(out, fmt, **save)
    return out.getvalue()


def upload(client: httpx.Client, data: bytes, status: int | None = None) -> dict[str, Any]:
    """POST ``data`` to /api/media as the raw body; the answer, checked to have ``status``
    (by default 201, or 200 for bytes some test uploaded before)."""
    response = client.post("/api/media", content=data, headers=auth())
    assert response.status_code in ((200, 201) if status is None else (status,)), response.text
    info: dict[str, Any] = response.json()
    return info


WS = "WS"
"""The method ``app_routes`` gives a WebSocket route."""
HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


def app_routes() -> set[tuple[str, str]]:
    """(method or WS, path template) of every route the app declares; HEAD comes with GET, and
    a mount serves ``{path}`` below it."""
    app = create_app(Settings(redis_url="redis://127.0.0.1:1/0"))  # routes only; never started
    found: set[tuple[str, str]] = set()
    for route in app.routes:
        if isinstance(route, Route):
            found |= {(m, route.path_format) for m in (route.methods or {"GET"}) & HTTP_METHODS}
        elif isinstance(route, WebSocketRoute):
            found.add((WS, route.path_format))
        elif isinstance(route, Mount):
            found.add(("GET", route.path + "/{path}"))
    return found


# --- web push (tests/test_push*.py) ----------------------------------------------------------


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class PushBrowser:
    """A subscription's private side, as a browser keeps it."""

    endpoint: str
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    secret: bytes = field(default_factory=lambda: os.urandom(16))

    def json(self, mode: str) -> dict[str, Any]:
        point = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "mode": mode,
            "keys": {"p256dh": b64(point), "auth": b64(self.secret)},
        }

    def decrypt(self, body: bytes) -> dict[str, Any]:
        plain = http_ece.decrypt(
            body, private_key=self.key, auth_secret=self.secret, version="aes128gcm"
        )
        message: dict[str, Any] = json.loads(plain)
        return message


class PushService:
    """A push service on loopback: records each message by path; ``/gone/...`` answers 410.

    ``hold_after``: once that many were taken, further requests wait until ``release`` (the
    crash test kills the sender while they wait); those are not counted as delivered."""

    def __init__(self) -> None:
        self.messages: dict[str, list[tuple[dict[str, str], bytes]]] = {}
        self.lock = threading.Lock()
        self.hold_after: int | None = None
        self.held = 0
        self.release = threading.Event()
        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with service.lock:
                    taken = sum(len(v) for v in service.messages.values())
                    hold = service.hold_after is not None and taken >= service.hold_after
                    if hold:
                        service.held += 1
                if hold:
                    service.release.wait(60)
                    self._answer(201)
                    return
                if self.path.startswith("/gone/"):
                    self._answer(410)
                    return
                with service.lock:
                    service.messages.setdefault(self.path, []).append((dict(self.headers), body))
                self._answer(201)

            def _answer(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def got(self, path: str) -> list[tuple[dict[str, str], bytes]]:
        with self.lock:
            return list(self.messages.get(path, []))

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def follow(client: httpx.Client, slug: str, browser: PushBrowser, mode: str) -> str:
    """Subscribe ``browser`` to ``slug``'s alerts in ``mode``; the subscription's id."""
    answer = client.post(f"/api/feeds/{slug}/push-subscriptions", json=browser.json(mode))
    assert answer.status_code == 201, answer.text
    sid: str = answer.json()["id"]
    return sid


PUSH_ENV = {
    "LIVEFEED_PUSH_TEST_LOOPBACK": "1",
    "LIVEFEED_PUSH_POLL_INTERVAL": "0.1",
    "LIVEFEED_VAPID_SUBJECT": "mailto:desk@example.org",
}
