"""The processes the benchmark starts (servers, redis-server, the client processes), each stopped
by its PID, and where they run: the servers pinned to one core with ``taskset``, the load
generator to the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import clients
import httpx
from stats import others_cpu

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PYTHON = sys.executable
HOST = "127.0.0.1"
BACKLOG = 20
# Where processes run: "server" is the core (taskset -c list) every server under test gets,
# "all" every core (for `serve --workers N`); empty when not pinned. The load generator (this
# process, its client processes and redis-server) keeps the other cores: see pin().
PIN: dict[str, str] = {}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(check: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise TimeoutError(what)


# --- processes we start --------------------------------------------------------------------------


@dataclass
class Server:
    """A child process we started, stopped by its PID; its output goes to ``log``."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    port: int

    @property
    def pid(self) -> int:
        return self.proc.pid

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            tail = self.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; log:\n{tail}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class Watch:
    """CPU that other processes used over a stretch of the run ("foreign" CPU).

    The machine may be shared (the lead's own servers and tests): foreign CPU says how much the
    figures of that stretch were disturbed. Everything this run starts descends from this process.
    """

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.others = others_cpu()

    def stop(self) -> dict[str, float]:
        wall = time.monotonic() - self.start
        now = others_cpu()
        foreign = sum(cpu - self.others.get(pid, 0.0) for pid, cpu in now.items())
        return {"wall_s": wall, "foreign_cpu_s": foreign, "foreign_cores": foreign / wall}


def pin(server_core: int | None) -> str:
    """Pin this process (and so what it starts) off ``server_core``; servers go onto it.

    None, one core, or no ``taskset``: nothing is pinned. Returns what was done, to print.
    """
    cores = sorted(os.sched_getaffinity(0))
    if server_core is None or len(cores) < 2 or shutil.which("taskset") is None:
        PIN.clear()
        return "not pinned"
    if server_core not in cores:
        raise SystemExit(f"--server-core {server_core} is not one of this process's {cores}")
    others = [c for c in cores if c != server_core]
    os.sched_setaffinity(0, others)
    PIN.update(server=str(server_core), all=",".join(map(str, cores)))
    return f"servers on core {server_core}, load generator and redis-server on {others}"


def spawn(
    name: str,
    args: list[str],
    log: Path,
    port: int,
    env: dict[str, str] | None = None,
    where: str | None = "server",
) -> Server:
    """Start ``args``; ``where`` is a key of PIN (its cores via taskset) or None (inherit)."""
    cores = PIN.get(where) if where else None
    if cores:
        args = ["taskset", "-c", cores, *args]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, **(env or {})}
        )
    return Server(name, proc, log, port)


def port_open(server: Server) -> bool:
    server.check_alive()
    try:
        with socket.create_connection((HOST, server.port), timeout=0.5):
            return True
    except OSError:
        return False


def redis_url_of(redis: Server) -> str:
    return f"redis://{HOST}:{redis.port}/0"


def start_redis(tmp: Path) -> Server:
    data = tmp / "redis"
    data.mkdir()
    port = free_port()
    args = [
        "redis-server", "--bind", HOST, "--port", str(port), "--dir", str(data),
        "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no",
        "--maxclients", "10000",
    ]  # fmt: skip
    server = spawn("redis-server", args, tmp / "redis.log", port, where=None)
    wait_until(lambda: port_open(server), 20, "redis-server did not start")
    return server


class Livefeed:
    """``python -m livefeed serve`` against our Redis, with an editor token and a key prefix."""

    def __init__(
        self,
        tmp: Path,
        redis_url: str,
        log_level: str | None,
        extra: list[str],
        more_env: dict[str, str] | None = None,
        where: str = "server",
    ) -> None:
        self.token = "bench-" + secrets.token_urlsafe(16)
        self.prefix = "bench-" + secrets.token_hex(4)
        self.redis_url = redis_url
        port = free_port()
        args = [PYTHON, "-m", "livefeed", "serve", "--redis-url", redis_url, "--port", str(port)]
        args += ["--key-prefix", self.prefix, *extra]
        if log_level:
            args += ["--log-level", log_level]
        # The abuse limits (per-editor and per-address write rates) are off: all of the load comes
        # from one editor on one address, and the benchmark measures what the server can take.
        env = {
            "LIVEFEED_EDITOR_TOKEN": self.token,
            "LIVEFEED_EDITOR_RATE": "0",
            "LIVEFEED_ADDRESS_WRITE_RATE": "0",
            **(more_env or {}),
        }
        self.server = spawn("livefeed", args, tmp / f"livefeed-{port}.log", port, env, where)
        self.base = f"http://{HOST}:{port}"
        wait_until(self._healthy, 60, f"livefeed did not start; see {self.server.log}")

    def _healthy(self) -> bool:
        self.server.check_alive()
        try:
            return httpx.get(self.base + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def health(self) -> dict[str, Any]:
        """``/healthz`` of whichever worker answers: its connected readers and asyncio tasks."""
        try:
            body: dict[str, Any] = httpx.get(self.base + "/healthz", timeout=10).json()
            return body
        except (httpx.HTTPError, ValueError) as exc:
            return {"error": repr(exc)}

    def collections(self) -> dict[str, dict[str, Any]]:
        """``livefeed_gc_pause_seconds`` from ``/metrics``, per generation: ``count``, ``sum``
        (seconds) and ``buckets`` (upper bound in seconds -> cumulative count)."""
        text = httpx.get(self.base + "/metrics", timeout=10).text
        found: dict[str, dict[str, Any]] = {}
        for line in text.splitlines():
            if not line.startswith("livefeed_gc_pause_seconds_"):
                continue
            name, _, number = line.rpartition(" ")
            kind = name[len("livefeed_gc_pause_seconds_") :].split("{")[0]
            labels = dict(part.split("=", 1) for part in name[name.index("{") + 1 : -1].split(","))
            generation = labels["generation"].strip('"')
            entry = found.setdefault(generation, {"count": 0.0, "sum": 0.0, "buckets": {}})
            if kind == "bucket":
                entry["buckets"][float(labels["le"].strip('"'))] = float(number)
            elif kind in ("count", "sum"):
                entry[kind] = float(number)
        return found

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def create_feed(self, slug: str, timezone: str = "UTC") -> None:
        body = {"slug": slug, "title": f"Benchmark {slug}", "timezone": timezone}
        response = httpx.post(
            self.base + "/api/feeds", json=body, headers=self.headers(), timeout=10
        )
        if response.status_code != 201:
            raise RuntimeError(f"creating feed {slug}: {response.status_code} {response.text}")


class ClientPool:
    """The client processes; each command goes to all of them and every answer is awaited."""

    def __init__(self, count: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.conns: list[Connection] = []
        self.procs: list[BaseProcess] = []
        for index in range(count):
            ours, theirs = context.Pipe()
            sources = [f"127.0.0.{10 + index * 4 + k}" for k in range(4)]
            proc = context.Process(
                target=clients.main, args=(theirs, index, sources), name=f"bench-client-{index}"
            )
            proc.start()
            theirs.close()
            self.conns.append(ours)
            self.procs.append(proc)

    def __len__(self) -> int:
        return len(self.conns)

    def shares(self, total: int) -> list[int]:
        base, extra = divmod(total, len(self))
        return [base + (1 if i < extra else 0) for i in range(len(self))]

    def call(self, commands: list[dict[str, Any]], timeout: float) -> list[dict[str, Any]]:
        for conn, command in zip(self.conns, commands, strict=True):
            conn.send(command)
        deadline = time.monotonic() + timeout
        replies = []
        for index, conn in enumerate(self.conns):
            if not conn.poll(max(deadline - time.monotonic(), 0.1)):
                raise TimeoutError(f"client {index} did not answer {commands[index]['op']}")
            reply = conn.recv()
            if not reply.pop("ok"):
                raise RuntimeError(f"client {index}: {reply['error']}")
            replies.append(reply)
        return replies

    async def all(self, op: str, wait: float, **args: Any) -> list[dict[str, Any]]:
        """Send ``op`` with the same ``args`` to every client; ``wait`` bounds the answers."""
        commands = [{"op": op, **args} for _ in self.conns]
        return await asyncio.to_thread(self.call, commands, wait)

    async def each(self, op: str, wait: float, per: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send ``op`` with its own arguments to each client."""
        return await asyncio.to_thread(self.call, [{"op": op, **p} for p in per], wait)

    async def cpu(self) -> float:
        return float(sum(r["cpu_total"] for r in await self.all("cpu", 10)))

    def close(self) -> None:
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.send({"op": "exit"})
        for conn, proc in zip(self.conns, self.procs, strict=True):
            if conn.poll(15):
                with contextlib.suppress(EOFError):
                    conn.recv()
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)


# --- publishing ----------------------------------------------------------------------------------


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
