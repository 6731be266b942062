"""The livefeed benchmark: fan-out at newsroom scale, measured against a reference in the same run.

    .venv/bin/python bench/run.py              # 10,000 readers, 20 s paced phase (~3-4 min)
    .venv/bin/python bench/run.py --quick      # 1,000 readers, short phases (~1 min)
    .venv/bin/python bench/run.py --workers 2  # also `livefeed serve --workers 2`, 2 x N readers
    .venv/bin/python bench/run.py --profile    # also py-spy profiles (needs py-spy installed)

What it does, loopback only, every step bounded in time:

1. Waits (up to ``--wait-quiet`` s) for the machine to be idle, then starts its own
   ``redis-server`` (AOF, ``appendfsync always``, like production) on a free port in a temporary
   directory, and client processes (``--clients``, default 4) that hold the readers, spread over
   source addresses 127.0.0.10-41 so the ephemeral port range never runs short.
2. Runs the **reference** (``bench/reference.py``: ``websockets`` alone, one XREAD task,
   ``websockets.broadcast()``), then **livefeed** (``python -m livefeed serve --redis-url ...``,
   its abuse limits on write rates turned off), one after the other on the same Redis (different
   keys), under the same load:
   - N readers connect (at most ``--connect-concurrency`` handshakes in flight) and each waits
     for its backlog of the latest 20 briefs (livefeed: the ``snapshot`` frame; reference: 20
     brief frames). Server RSS (VmRSS) is read before and after: memory per reader.
   - Phase A, paced: one brief a second for ``--paced`` seconds. Phase B, burst: ``--burst``
     briefs back to back. Bodies are 0.5-1.5 KiB of text with ``bench:<seq>:<time_ns>`` inside;
     every reader parses every frame and records its latency. Livefeed is published to through
     ``POST /api/feeds/{feed}/briefs``; the reference by an XADD of the same brief's frame
     straight to its stream (it has no API), so the reference's figures leave out the HTTP
     request and validation that livefeed's include. Server CPU (utime + stime from /proc) over
     both phases, divided by the deliveries, is the CPU per delivery.
   - A join storm: ``--storm`` fresh readers connect at once, each must get its backlog.
3. For livefeed only: publish throughput (16 concurrent editors on keep-alive connections),
   import throughput (``livefeed import`` of a generated JSONL, timed from outside, so including
   the command's start-up) and the day archive (a 5,000-brief day, median of 5 after a warm-up).
4. Prints a summary, and writes ``bench/results/<UTC time>.json`` (every figure, the machine,
   versions, the command) and ``<UTC time>.md`` plus ``latest.md`` (the table with targets).

The readers and editors are hand-written clients (``bench/wire.py``, ``clients.Editor``) because
a full client library costs more CPU per message than the server does, and on two cores the load
generator would then be what is measured. The client CPU is reported anyway, and so is the CPU
other processes on the machine used meanwhile ("the machine was shared"), which makes a figure
pessimistic.

It is never part of the test suite and asserts nothing about time: it reports numbers. Loss (a
reader that did not get a brief) is printed loudly. Only processes started here are stopped, by
their PIDs.
"""

from __future__ import annotations

import argparse
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
import tempfile
import time
from array import array
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parent))

import clients
import report
from briefs import publish_payload, reference_frame, write_archive
from profiles import Profiler
from stats import (
    cpu_seconds,
    machine_info,
    open_sockets,
    others_cpu,
    process_tree,
    raise_nofile,
    rss_kib,
    settle,
    summary,
)

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PYTHON = sys.executable
HOST = "127.0.0.1"
BACKLOG = 20
SEED_SEQ = 0


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


def spawn(
    name: str, args: list[str], log: Path, port: int, env: dict[str, str] | None = None
) -> Server:
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
    server = spawn("redis-server", args, tmp / "redis.log", port)
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
        self.server = spawn("livefeed", args, tmp / f"livefeed-{port}.log", port, env)
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


class Publisher:
    """Publishes brief ``seq`` and says when the call started, how long it took, and if it took."""

    async def publish(self, seq: int) -> tuple[int, int, bool]:
        raise NotImplementedError

    async def aclose(self) -> None:
        pass


class ReferencePublisher(Publisher):
    """XADD of the brief's frame to the reference's stream: durable before the reply."""

    def __init__(self, redis_url: str, key: str) -> None:
        self.redis = Redis.from_url(redis_url)
        self.key = key

    async def publish(self, seq: int) -> tuple[int, int, bool]:
        sent = time.time_ns()
        await self.redis.xadd(self.key, {"d": reference_frame(seq, sent)})
        return sent, time.time_ns() - sent, True

    async def aclose(self) -> None:
        await self.redis.aclose()


class LivefeedPublisher(Publisher):
    """``POST /api/feeds/{feed}/briefs``; a 201 means the brief is durable."""

    def __init__(self, livefeed: Livefeed, feed: str) -> None:
        self.client = httpx.AsyncClient(
            base_url=livefeed.base, headers=livefeed.headers(), timeout=30
        )
        self.path = f"/api/feeds/{feed}/briefs"
        self.failures: Counter[str] = Counter()

    async def publish(self, seq: int) -> tuple[int, int, bool]:
        sent = time.time_ns()
        response = await self.client.post(self.path, json=publish_payload(seq, sent))
        took = time.time_ns() - sent
        if response.status_code != 201:
            self.failures[f"{response.status_code} {response.text[:100]}"] += 1
        return sent, took, response.status_code == 201

    async def aclose(self) -> None:
        await self.client.aclose()


# --- the fan-out measurement, the same for both servers ------------------------------------------


@dataclass
class Target:
    """Where the readers connect and how their backlog arrives."""

    server: Server
    path: str
    redis_pid: int
    health: Callable[[], dict[str, Any]] | None = None


async def connect_group(
    pool: ClientPool, target: Target, name: str, count: int, concurrency: int, timeout: float
) -> dict[str, Any]:
    """Connect ``count`` readers across the client processes; rates and times, merged."""
    per = [
        {
            "name": name, "host": HOST, "port": target.server.port, "path": target.path,
            "count": share, "concurrency": max(1, min(share, concurrency)), "backlog": BACKLOG,
            "timeout": timeout,
        }
        for share in pool.shares(count)
    ]  # fmt: skip
    cpu0, watch = cpu_seconds(target.server.pid), Watch()
    replies = await pool.each("connect", timeout + 60, per)
    server_cpu = cpu_seconds(target.server.pid) - cpu0
    machine = watch.stop()
    ready = sum(r["ready"] for r in replies)
    start = min(r["start_ns"] for r in replies if r["start_ns"])
    end = max((r["ready_ns"] for r in replies if r["ready_ns"]), default=start)
    seconds = max((end - start) / 1e9, 1e-9)
    errors: Counter[str] = Counter()
    backlog_sizes: Counter[int] = Counter()
    for r in replies:
        errors.update(r["errors"])
        backlog_sizes.update({int(k): v for k, v in r["backlog_sizes"].items()})

    def merged(key: str) -> list[float]:
        return [v for r in replies for v in r[key]]

    return {
        "requested": count,
        "ready": ready,
        "failed": count - ready,
        "errors": dict(errors.most_common(5)),
        "seconds": seconds,
        "rate": ready / seconds,
        "first_frame_ms": summary(merged("first_frame_ms")),
        "backlog_ms": summary(merged("ready_ms")),
        "handshake_ms": summary(merged("open_ms")),
        "backlog_sizes": dict(backlog_sizes),
        "server_cpu_s": server_cpu,
        "server_cpu_ms_per_join": server_cpu * 1000 / max(ready, 1),
        "client_cpu_s": sum(r["cpu"] for r in replies),
        **machine,
    }


async def expect(
    pool: ClientPool, sent: dict[int, tuple[int, int, bool]], seqs: list[int], timeout: float
) -> dict[str, Any]:
    """Wait for every reader to have ``seqs`` and turn the answers into the phase's figures."""
    replies = await pool.all("expect", timeout + 30, name="main", seqs=seqs, timeout=timeout)
    per_seq: dict[int, list[int]] = {}
    latencies: list[float] = []
    closed: Counter[str] = Counter()
    other: Counter[str] = Counter()
    for r in replies:
        for seq, (count, last) in r["per_seq"].items():
            agg = per_seq.setdefault(seq, [0, 0])
            agg[0] += count
            agg[1] = max(agg[1], last)
        latencies.extend(v / 1e6 for v in array("q", r["latency_ns"]))
        closed.update(r["closed"])
        other.update(r["other_frames"])
    readers = sum(r["readers"] for r in replies)
    completion = {seq: (per_seq[seq][1] - sent[seq][0]) / 1e6 for seq in seqs if seq in per_seq}
    incomplete = [seq for seq in seqs if per_seq.get(seq, [0])[0] < readers]
    expected = sum(r["expected"] for r in replies)
    received = sum(r["received"] for r in replies)
    frames = sum(r["deliveries_total"] for r in replies)
    return {
        "briefs": len(seqs),
        "readers": readers,
        "expected": expected,
        "received": received,
        "lost": expected - received,
        "incomplete_readers": sum(r["incomplete_readers"] for r in replies),
        "briefs_not_everywhere": incomplete,
        "duplicates": sum(r["duplicates"] for r in replies),
        "out_of_order": sum(r["out_of_order"] for r in replies),
        "closed_readers": sum(r["closed_count"] for r in replies),
        "close_reasons": dict(closed.most_common(5)),
        "other_frames": dict(other),
        "completion_ms": summary(list(completion.values())),
        # first publish call started -> the last reader has the last brief
        "drain_ms": (max((per_seq[q][1] for q in per_seq), default=0) - sent[seqs[0]][0]) / 1e6
        if seqs
        else None,
        "publish_span_ms": (sent[seqs[-1]][0] + sent[seqs[-1]][1] - sent[seqs[0]][0]) / 1e6
        if seqs
        else None,
        "completion_each_ms": [round(completion.get(s, -1), 3) for s in seqs],
        "latency_ms": summary(latencies),
        "publish_call_ms": summary([sent[s][1] / 1e6 for s in seqs]),
        "mean_frame_bytes": sum(r["frame_bytes"] for r in replies) / max(frames, 1),
        "client_cpu_total": sum(r["cpu_total"] for r in replies),
    }


async def probe(target: Target) -> dict[str, Any] | None:
    return None if target.health is None else await asyncio.to_thread(target.health)


PROFILER: Profiler | None = None


@contextlib.contextmanager
def profiled(label: str, pid: int) -> Iterator[None]:
    """A py-spy profile of ``pid`` over the block, with ``--profile``; nothing otherwise."""
    if PROFILER is None:
        yield
        return
    with PROFILER.record(label, pid):
        yield


async def fanout(
    name: str, pool: ClientPool, target: Target, publisher: Publisher, opts: argparse.Namespace
) -> dict[str, Any]:
    """Connect, measure memory, publish the paced and burst phases, then the join storm."""
    pid = target.server.pid
    sent: dict[int, tuple[int, int, bool]] = {}
    say(f"{name}: seeding {BACKLOG} briefs and warming up")
    for _ in range(BACKLOG):
        await publisher.publish(SEED_SEQ)
    await connect_group(pool, target, "warm", 2 * len(pool), 8, 30)
    await pool.all("close", 30, name="warm", timeout=10)
    await asyncio.to_thread(settle, pid)
    rss0 = rss_kib(pid)
    health = {"before": await probe(target)}

    say(f"{name}: connecting {opts.readers} readers")
    timeout = max(60.0, opts.readers / 50)
    per_process = max(1, opts.connect_concurrency // len(pool))
    with profiled(f"{name}-connect", pid):
        joined = await connect_group(pool, target, "main", opts.readers, per_process, timeout)
    say(
        f"{name}: {joined['ready']} readers with backlog in {joined['seconds']:.1f} s "
        f"({joined['rate']:.0f}/s); failed {joined['failed']} {joined['errors'] or ''}"
    )
    await asyncio.to_thread(settle, pid)
    rss1 = rss_kib(pid)
    health["connected"] = await probe(target)
    target.server.check_alive()

    phases: dict[str, Any] = {}
    client0, server0 = await pool.cpu(), cpu_seconds(pid)
    plans = {
        "paced": list(range(1, opts.paced + 1)),
        "burst": list(range(opts.paced + 1, opts.paced + opts.burst + 1)),
    }
    with profiled(f"{name}-publish-phases", pid):
        for phase, seqs in plans.items():
            say(f"{name}: phase {phase}, {len(seqs)} briefs")
            server_start, client_start = cpu_seconds(pid), await pool.cpu()
            redis_start, watch = cpu_seconds(target.redis_pid), Watch()
            start = time.monotonic()
            for i, seq in enumerate(seqs):
                if phase == "paced":
                    await asyncio.sleep(max(0.0, start + i - time.monotonic()))
                sent[seq] = await publisher.publish(seq)
            took = [seq for seq in seqs if sent[seq][2]]
            result = await expect(pool, sent, took, timeout=30 + len(seqs) * opts.readers / 20_000)
            result["publish_failed"] = len(seqs) - len(took)
            result["server_cpu_s"] = cpu_seconds(pid) - server_start
            result["redis_cpu_s"] = cpu_seconds(target.redis_pid) - redis_start
            result.update(watch.stop())
            result["client_cpu_s"] = result.pop("client_cpu_total") - client_start
            phases[phase] = result
            say(
                f"{name}: {phase}: completion p50 {fmt(result['completion_ms']['p50'])} ms, "
                f"p99 {fmt(result['completion_ms']['p99'])} ms; received {result['received']}"
                f"/{result['expected']}" + (f"  LOST {result['lost']}" if result["lost"] else "")
            )
    server_cpu = cpu_seconds(pid) - server0
    client_cpu = await pool.cpu() - client0
    deliveries = sum(p["received"] for p in phases.values())

    say(f"{name}: closing readers")
    closing = await pool.all("close", 90, name="main", timeout=60)
    await asyncio.to_thread(settle, pid)
    rss2 = rss_kib(pid)
    health["closed"] = await probe(target)

    # A storm lasts about a second, so one is at the mercy of whatever else the machine does in
    # it: several, each on a settled server, and the median one reported (all rates kept).
    storms = []
    for round_ in range(1, opts.storm_rounds + 1):
        say(f"{name}: join storm {round_} of {opts.storm} readers")
        with profiled(f"{name}-storm-{round_}", pid):
            storm = await connect_group(pool, target, "storm", opts.storm, opts.storm, 120)
        say(f"{name}: storm: {storm['ready']} in {storm['seconds']:.2f} s ({storm['rate']:.0f}/s)")
        await pool.all("close", 90, name="storm", timeout=60)
        await asyncio.to_thread(settle, pid)
        storms.append(storm)
    storm = sorted(storms, key=lambda s: s["rate"])[len(storms) // 2]
    storm["rounds"] = [round(s["rate"]) for s in storms]
    health["after_storm"] = await probe(target)
    target.server.check_alive()
    return {
        "connect": joined,
        "rss_before_kib": rss0,
        "rss_after_kib": rss1,
        "memory_per_reader_kib": (rss1 - rss0) / max(joined["ready"], 1),
        "rss_after_close_kib": rss2,
        "health": health,
        "phases": phases,
        "deliveries": deliveries,
        "expected": sum(p["expected"] for p in phases.values()),
        "lost": sum(p["lost"] for p in phases.values()),
        "server_cpu_s": server_cpu,
        "server_cpu_s_per_1000": server_cpu * 1000 / max(deliveries, 1),
        "client_cpu_s": client_cpu,
        "close": {
            "closed": sum(c["closed"] for c in closing),
            "aborted": sum(c["aborted"] for c in closing),
        },
        "storm": storm,
    }


# --- the two servers -----------------------------------------------------------------------------


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
    try:
        await asyncio.to_thread(
            wait_until, lambda: port_open(server), 30, "reference did not start"
        )
        return await fanout("reference", pool, Target(server, "/", redis.pid), publisher, opts)
    finally:
        await publisher.aclose()
        server.stop()


async def run_livefeed(
    tmp: Path, pool: ClientPool, redis: Server, opts: argparse.Namespace
) -> dict[str, Any]:
    redis_url = redis_url_of(redis)
    livefeed = await asyncio.to_thread(Livefeed, tmp, redis_url, opts.livefeed_log_level, [])
    publisher = LivefeedPublisher(livefeed, "bench")
    try:
        livefeed.create_feed("bench")
        result = await fanout(
            "livefeed",
            pool,
            Target(livefeed.server, "/ws/feeds/bench", redis.pid, livefeed.health),
            publisher,
            opts,
        )
        result["publish_failures"] = dict(publisher.failures)
        result["publish"] = await publish_throughput(pool, livefeed, redis.pid, opts)
        result["import"], dates = await asyncio.to_thread(import_throughput, tmp, livefeed, opts)
        result["day_archive"] = await asyncio.to_thread(day_archive, livefeed, "archive", dates)
        livefeed.server.check_alive()
        return result
    finally:
        await publisher.aclose()
        livefeed.server.stop()
        result_log = scan_log(livefeed.server.log)
        say(f"livefeed log: {result_log['lines']} lines, {result_log['problems']} problem lines")
        LOGS["livefeed"] = result_log


LOGS: dict[str, dict[str, Any]] = {}


def scan_log(path: Path) -> dict[str, Any]:
    """Line count and the first lines that look like trouble (ERROR, WARNING, Traceback)."""
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    bad = [line for line in lines if any(w in line for w in ("ERROR", "WARNING", "Traceback"))]
    return {"path": str(path), "lines": len(lines), "problems": len(bad), "first": bad[:10]}


async def publish_throughput(
    pool: ClientPool, livefeed: Livefeed, redis_pid: int, opts: argparse.Namespace
) -> dict[str, Any]:
    """16 concurrent editors (spread over the client processes) post briefs to a fresh feed."""
    say(f"livefeed: publish throughput, {opts.editors} editors, {opts.publish_briefs} briefs")
    livefeed.create_feed("publish")
    editors = pool.shares(opts.editors)
    counts = pool.shares(opts.publish_briefs)
    per = [
        {
            "host": HOST, "port": livefeed.server.port, "feed": "publish", "token": livefeed.token,
            "editors": e, "count": c, "timeout": opts.publish_seconds,
        }
        for e, c in zip(editors, counts, strict=True)
        if e
    ]  # fmt: skip
    per += [dict(per[0], editors=0, count=0)] * (len(pool) - len(per))
    pid = livefeed.server.pid
    cpu0, redis0, watch = cpu_seconds(pid), cpu_seconds(redis_pid), Watch()
    with profiled("livefeed-publish", pid):
        replies = await pool.each("publish", opts.publish_seconds + 60, per)
    machine = watch.stop()
    server_cpu = cpu_seconds(pid) - cpu0
    redis_cpu = cpu_seconds(redis_pid) - redis0
    active = [r for r in replies if r["latency_ms"]]
    start = min(r["start_ns"] for r in active)
    end = max(r["end_ns"] for r in active)
    accepted = sum(r["accepted"] for r in replies)
    statuses: Counter[str] = Counter()
    for r in replies:
        statuses.update(r["statuses"])
    seconds = (end - start) / 1e9
    result = {
        "editors": opts.editors,
        "accepted": accepted,
        "statuses": dict(statuses),
        "seconds": seconds,
        "rate": accepted / seconds,
        "latency_ms": summary([v for r in replies for v in r["latency_ms"]]),
        "server_cpu_s": server_cpu,
        "server_cpu_ms_per_brief": server_cpu * 1000 / max(accepted, 1),
        "redis_cpu_s": redis_cpu,
        "client_cpu_s": sum(r["cpu"] for r in replies),
        **machine,
    }
    say(f"livefeed: {accepted} briefs accepted in {seconds:.2f} s ({result['rate']:.0f}/s)")
    return result


def import_throughput(
    tmp: Path, livefeed: Livefeed, opts: argparse.Namespace
) -> tuple[dict[str, Any], list[str]]:
    """``livefeed import`` of a generated JSONL into a fresh feed, timed from outside."""
    path = tmp / "archive.jsonl"
    dates = write_archive(path, opts.import_briefs, opts.day_briefs)
    livefeed.create_feed("archive")
    base = [PYTHON, "-m", "livefeed"]
    where = ["--redis-url", livefeed.redis_url, "--key-prefix", livefeed.prefix]
    t0 = time.perf_counter()
    subprocess.run([*base, "feed", "list", *where], cwd=ROOT, capture_output=True, timeout=60)
    startup = time.perf_counter() - t0
    say(f"livefeed: importing {opts.import_briefs} briefs ({path.stat().st_size >> 20} MiB)")
    t0, watch = time.perf_counter(), Watch()
    done = subprocess.run(
        [*base, "import", "archive", str(path), *where],
        cwd=ROOT, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    result = {
        **watch.stop(),
        "briefs": opts.import_briefs,
        "file_mib": round(path.stat().st_size / 2**20, 1),
        "returncode": done.returncode,
        "stderr": done.stderr[-500:],
        "seconds": seconds,
        "rate": opts.import_briefs / seconds if done.returncode == 0 else 0.0,
        "cli_startup_s": startup,
        "rate_without_startup": opts.import_briefs / max(seconds - startup, 1e-9),
    }
    say(f"livefeed: import took {seconds:.2f} s ({result['rate']:.0f}/s), rc {done.returncode}")
    if PROFILER is not None:  # a second import, into another feed, under py-spy
        livefeed.create_feed("archive-profiled")
        args = [*base, "import", "archive-profiled", str(path), *where]
        PROFILER.run("livefeed-import", args, ROOT, 1800)
    return result, dates


def day_archive(livefeed: Livefeed, feed: str, dates: list[str]) -> dict[str, Any]:
    """``GET /api/feeds/{feed}/days/{date}?limit=5000``: one warm-up, then the median of 5."""
    if not dates:
        return {"error": "no day was imported"}
    date = dates[len(dates) // 2]
    url = f"{livefeed.base}/api/feeds/{feed}/days/{date}?limit=5000"
    times: list[float] = []
    sizes: set[int] = set()
    counts: set[int] = set()
    watch = Watch()
    with httpx.Client(timeout=30) as client:
        for _ in range(6):
            t0 = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - t0) * 1000)
            sizes.add(len(response.content))
            counts.add(
                len(response.json().get("briefs", [])) if response.status_code == 200 else -1
            )
    machine = watch.stop()
    if PROFILER is not None:
        with profiled("livefeed-day", livefeed.server.pid), httpx.Client(timeout=30) as client:
            for _ in range(10):
                client.get(url)
    runs = sorted(times[1:])
    result = {
        **machine,
        "date": date,
        "first_ms": times[0],
        "runs_ms": times[1:],
        "median_ms": runs[len(runs) // 2],
        "briefs": sorted(counts),
        "bytes": sorted(sizes),
    }
    say(f"livefeed: day archive {date}: median {result['median_ms']:.1f} ms, briefs {counts}")
    return result


async def run_workers(
    tmp: Path, pool: ClientPool, redis: Server, opts: argparse.Namespace
) -> dict[str, Any]:
    """``livefeed serve --workers N``: do readers spread, and does every reader get every brief?"""
    help_text = subprocess.run(
        [PYTHON, "-m", "livefeed", "serve", "--help"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    if "--workers" not in help_text:
        return {"skipped": "livefeed serve has no --workers option yet"}
    extra = ["--workers", str(opts.workers)]
    livefeed = await asyncio.to_thread(
        Livefeed, tmp, redis_url_of(redis), opts.livefeed_log_level, extra
    )
    publisher = LivefeedPublisher(livefeed, "workers")
    pid = livefeed.server.pid
    readers = opts.workers_readers or opts.readers * opts.workers
    try:
        livefeed.create_feed("workers")
        for _ in range(BACKLOG):
            await publisher.publish(SEED_SEQ)
        target = Target(livefeed.server, "/ws/feeds/workers", redis.pid)
        await asyncio.to_thread(settle, pid)
        rss0, sockets0 = rss_kib(pid), open_sockets(pid)
        say(f"workers: connecting {readers} readers to {opts.workers} workers")
        per_process = max(1, opts.connect_concurrency // len(pool))
        joined = await connect_group(pool, target, "main", readers, per_process, 600)
        await asyncio.to_thread(settle, pid)
        rss1, sockets1 = rss_kib(pid), open_sockets(pid)
        sent: dict[int, tuple[int, int, bool]] = {}
        seqs = list(range(1, 11))
        for seq in seqs:
            sent[seq] = await publisher.publish(seq)
            await asyncio.sleep(0.5)
        result = await expect(pool, sent, seqs, timeout=60 + readers / 1000)
        await pool.all("close", 120, name="main", timeout=90)
        say(
            f"workers: {joined['ready']} readers, "
            f"received {result['received']}/{result['expected']}"
            + (f"  LOST {result['lost']}" if result["lost"] else "")
        )
        return {
            "workers": opts.workers,
            "requested": readers,
            "processes": len(process_tree(pid)),
            # sockets each process holds beyond those it held before the readers came
            "readers_per_process": {
                str(p): n - sockets0.get(p, 0) for p, n in sockets1.items() if p != pid
            },
            "connect": joined,
            "memory_per_reader_kib": (rss1 - rss0) / max(joined["ready"], 1),
            "delivery": result,
        }
    finally:
        await publisher.aclose()
        livefeed.server.stop()
        LOGS["livefeed-workers"] = scan_log(livefeed.server.log)


# --- main ----------------------------------------------------------------------------------------


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark livefeed against the reference.")
    parser.add_argument("--quick", action="store_true", help="1,000 readers, short phases")
    parser.add_argument("--readers", type=int, help="readers held (default 10,000; quick 1,000)")
    parser.add_argument("--paced", type=int, help="paced phase, seconds = briefs (20; quick 5)")
    parser.add_argument("--burst", type=int, default=20, help="briefs back to back (20)")
    parser.add_argument("--storm", type=int, help="join storm readers (2,000; quick 500)")
    parser.add_argument(
        "--storm-rounds", type=int, default=3, help="join storms, the median reported (3)"
    )
    parser.add_argument("--clients", type=int, default=4, help="client processes (4)")
    parser.add_argument("--connect-concurrency", type=int, default=256, help="handshakes in flight")
    parser.add_argument("--editors", type=int, default=16, help="concurrent editors (16)")
    parser.add_argument("--publish-briefs", type=int, default=2000, help="publish test size")
    parser.add_argument("--publish-seconds", type=float, default=10.0, help="publish test limit")
    parser.add_argument("--import-briefs", type=int, help="import size (100,000; quick 10,000)")
    parser.add_argument("--day-briefs", type=int, default=5000, help="briefs per imported day")
    parser.add_argument("--workers", type=int, default=0, help="also test serve --workers N")
    parser.add_argument(
        "--workers-readers", type=int, help="readers for the workers test (readers x workers)"
    )
    parser.add_argument(
        "--wait-quiet", type=float, default=120, help="wait up to this long for an idle machine"
    )
    parser.add_argument(
        "--profile", action="store_true", help="py-spy profiles of the servers (bench/results)"
    )
    parser.add_argument("--py-spy", help="the py-spy binary (default: on PATH, or in .venv)")
    parser.add_argument("--only", choices=["reference", "livefeed"], help="run one server only")
    parser.add_argument("--livefeed-log-level", help="pass --log-level (default: livefeed's)")
    parser.add_argument("--results", type=Path, default=BENCH / "results", help="output folder")
    opts = parser.parse_args(argv)
    defaults = {"readers": 10_000, "paced": 20, "storm": 2000, "import_briefs": 100_000}
    if opts.quick:
        defaults = {"readers": 1000, "paced": 5, "storm": 500, "import_briefs": 10_000}
    for name, value in defaults.items():
        if getattr(opts, name) is None:
            setattr(opts, name, value)
    return opts


def wait_for_quiet(limit: float) -> float:
    """Wait up to ``limit`` s for other processes to use < 0.2 cores; return what they used."""
    load = 0.0
    for _ in range(int(limit) + 1):
        watch = Watch()
        time.sleep(1.0)
        load = watch.stop()["foreign_cores"]
        if load < 0.2:
            break
        say(f"the machine is busy ({load:.1f} cores used by other processes); waiting")
    return load


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    raise_nofile()  # the servers and clients we start inherit it (and raise their own)
    load = wait_for_quiet(opts.wait_quiet)
    started = datetime.now(UTC)
    results: dict[str, Any] = {
        "command": " ".join([os.path.relpath(PYTHON, ROOT), *sys.argv]),
        "date": started.isoformat(timespec="seconds"),
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(opts).items()},
        "machine": machine_info("redis-server"),
        "other_load_at_start_cores": load,
    }
    global PROFILER
    if opts.profile:
        py_spy = opts.py_spy or shutil.which("py-spy") or str(ROOT / ".venv" / "bin" / "py-spy")
        if not Path(py_spy).exists():
            raise SystemExit(f"--profile needs py-spy (pip install py-spy); not found: {py_spy}")
        stamp = started.strftime("%Y%m%dT%H%M%SZ")
        PROFILER = Profiler(py_spy, opts.results / f"{stamp}-profiles")
    with tempfile.TemporaryDirectory(prefix="livefeed-bench-") as tmp_name:
        tmp = Path(tmp_name)
        redis = start_redis(tmp)
        pool: ClientPool | None = None
        try:
            pool = ClientPool(opts.clients)
            runs: list[tuple[str, Callable[..., Coroutine[Any, Any, dict[str, Any]]]]] = [
                ("reference", run_reference),
                ("livefeed", run_livefeed),
            ]
            for name, run in runs:
                if opts.only in (None, name):
                    results[name] = asyncio.run(run(tmp, pool, redis, opts))
            if opts.workers:
                results["workers"] = asyncio.run(run_workers(tmp, pool, redis, opts))
        finally:
            if pool is not None:
                pool.close()
            redis.stop()
    results["logs"] = LOGS
    if PROFILER is not None:
        results["profiles"] = PROFILER.summaries
    results["elapsed_s"] = (datetime.now(UTC) - started).total_seconds()
    paths = report.write(results, opts.results, started)
    print(report.summary(results))
    shown = [os.path.relpath(p, Path.cwd()) for p in paths]
    print(f"\nwritten: {', '.join(shown)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
