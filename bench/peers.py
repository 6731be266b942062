"""The servers livefeed is measured against, each under the same load (``fanout.measure``).

- **reference**: ``bench/reference.py``, ``websockets.broadcast()`` from one XREAD task.
- **nchan**: nginx + Nchan with a Redis store (``bench/nchan.py``), published to over HTTP.
- **node**: Node.js + ``ws`` from one XREAD loop (``bench/peers/node/server.js``),
  perMessageDeflate off; **node-deflate** the same with it on (ws's defaults).

The reference and Node are published to by an XADD of the brief's frame to their stream; Nchan
by a POST of the same frame text to its publisher location. Nchan and Node are installed by
``bench/peers/install``; where one is missing, its run is skipped with the reason.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
import nchan
from briefs import reference_frame
from fanout import Publisher, ReferencePublisher, Target, measure
from servers import (
    BACKLOG,
    BENCH,
    HOST,
    PYTHON,
    ClientPool,
    Server,
    free_port,
    port_open,
    redis_url_of,
    say,
    spawn,
    wait_until,
)

NODE_DIR = BENCH / "peers" / "node"

Run = Callable[[Path, ClientPool, Server, argparse.Namespace], Coroutine[Any, Any, dict[str, Any]]]


class NchanPublisher(Publisher):
    """POST of the brief's frame text to Nchan's publisher location (stored in Redis first)."""

    def __init__(self, port: int) -> None:
        self.client = httpx.AsyncClient(base_url=f"http://{HOST}:{port}", timeout=30)

    async def publish(self, seq: int) -> tuple[int, int, bool]:
        sent = time.time_ns()
        response = await self.client.post(
            nchan.PUBLISH_PATH,
            content=reference_frame(seq, sent),
            headers={"Content-Type": "application/json"},
        )
        return sent, time.time_ns() - sent, response.status_code in (201, 202)

    async def aclose(self) -> None:
        await self.client.aclose()


async def _serve(
    name: str,
    server: Server,
    path: str,
    publisher: Publisher,
    pool: ClientPool,
    redis: Server,
    opts: argparse.Namespace,
    python: bool = False,
) -> dict[str, Any]:
    try:
        await asyncio.to_thread(wait_until, lambda: port_open(server), 30, f"{name} did not start")
        target = Target(server, path, redis.pid, python=python)
        return await measure(name, pool, target, publisher, opts)
    finally:
        await publisher.aclose()
        server.stop()


async def run_reference(
    tmp: Path, pool: ClientPool, redis: Server, opts: argparse.Namespace
) -> dict[str, Any]:
    redis_url = redis_url_of(redis)
    key = "bench-ref-" + secrets.token_hex(4)
    port = free_port()
    args = [PYTHON, str(BENCH / "reference.py"), "--port", str(port), "--redis-url", redis_url]
    args += ["--key", key, "--backlog", str(BACKLOG), "--max-seconds", "3600"]
    server = spawn("reference", args, tmp / "reference.log", port)
    publisher = ReferencePublisher(redis_url, key)
    return await _serve("reference", server, "/", publisher, pool, redis, opts, python=True)


async def run_nchan(
    tmp: Path, pool: ClientPool, redis: Server, opts: argparse.Namespace
) -> dict[str, Any]:
    missing = nchan.available()
    if missing:
        return {"skipped": missing}
    port = free_port()
    prefix = tmp / f"nchan-{port}"
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    command = nchan.write(prefix, HOST, port, redis_url_of(redis), BACKLOG, nofile=nofile)
    server = spawn("nchan", command, prefix / "nginx.out", port)
    return await _serve(
        "nchan", server, nchan.SUBSCRIBE_PATH, NchanPublisher(port), pool, redis, opts
    )


def node_missing() -> str | None:
    """None when node and the installed ``ws`` are there, else why not."""
    if shutil.which("node") is None:
        return "node is not on PATH (apt-get install nodejs)"
    if not (NODE_DIR / "node_modules" / "ws").is_dir():
        return f"ws is not installed in {NODE_DIR} (bench/peers/install node)"
    return None


async def _run_node(
    name: str, deflate: bool, tmp: Path, pool: ClientPool, redis: Server, opts: argparse.Namespace
) -> dict[str, Any]:
    missing = node_missing()
    if missing:
        return {"skipped": missing}
    redis_url = redis_url_of(redis)
    key = f"bench-{name}-" + secrets.token_hex(4)
    port = free_port()
    args = ["node", str(NODE_DIR / "server.js"), "--port", str(port), "--redis-url", redis_url]
    args += ["--key", key, "--backlog", str(BACKLOG), "--max-seconds", "3600"]
    args += ["--deflate"] if deflate else []
    server = spawn(name, args, tmp / f"{name}.log", port)
    return await _serve(name, server, "/", ReferencePublisher(redis_url, key), pool, redis, opts)


async def run_node(
    tmp: Path, pool: ClientPool, redis: Server, opts: argparse.Namespace
) -> dict[str, Any]:
    return await _run_node("node", False, tmp, pool, redis, opts)


async def run_node_deflate(
    tmp: Path, pool: ClientPool, redis: Server, opts: argparse.Namespace
) -> dict[str, Any]:
    return await _run_node("node-deflate", True, tmp, pool, redis, opts)


PEERS: dict[str, Run] = {
    "reference": run_reference,
    "nchan": run_nchan,
    "node": run_node,
    "node-deflate": run_node_deflate,
}


def skipped(name: str, result: dict[str, Any]) -> bool:
    """Say so when a peer was skipped; True then."""
    if "skipped" in result:
        say(f"{name}: skipped: {result['skipped']}")
        return True
    return False


def versions() -> dict[str, str]:
    """The peers' versions as installed here (nginx and Nchan, Node and ws), for the report."""

    out: dict[str, str] = {}
    if nchan.available() is None:
        nginx = subprocess.run(["nginx", "-v"], capture_output=True, text=True, timeout=10)
        built = nginx.stderr.strip().split(": ")[-1]  # nginx/1.22.1
        out["nchan"] = f"Nchan {nchan.module_version() or '?'}, {built}"
    if node_missing() is None:
        node = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=10)
        ws = json.loads((NODE_DIR / "node_modules" / "ws" / "package.json").read_text())["version"]
        out["node"] = out["node-deflate"] = f"Node {node.stdout.strip()}, ws {ws}"
    return out
