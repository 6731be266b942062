"""Publish rate and latency when every 2xx waits for a replica (LIVEFEED_MIN_REPLICAS=1).

For each lag (default 0, 10 and 50 ms), a primary and a replica run on loopback with the
replica's link to the primary through a TCP proxy, in a process of its own, that holds every
chunk, in both directions, for the lag (so a WAIT needs about two lags: the write one way, the
ack back). A fresh ``livefeed serve`` with ``LIVEFEED_MIN_REPLICAS=1`` takes ``--editors``
concurrent editors publishing ``--briefs`` briefs; the editors are bench/clients.py's, spread
over ``--clients`` processes of their own (bench/servers.py ClientPool), so the load generator
is not what sets the rate. Printed per round: briefs/s accepted, the ratio to the peer,
latency p50/p99, the statuses, the CPU seconds of livefeed and of the editors, and the cores
that processes this run did not start used meanwhile (on a shared machine). A round
without a replica wait (``LIVEFEED_MIN_REPLICAS=0``, lag 0) comes first, as the peer measured
in the same run. Loopback only; every phase has a deadline.

    .venv/bin/python bench/replicas.py
    .venv/bin/python bench/replicas.py --lags 0 10 --briefs 1000
    .venv/bin/python bench/replicas.py --lags 10 --workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket
import tempfile
import time
from collections import Counter
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import redis
from servers import (
    HOST,
    ClientPool,
    Livefeed,
    Server,
    Watch,
    free_port,
    port_open,
    spawn,
    wait_until,
)
from stats import cpu_seconds, nofile_of, percentile, raise_nofile


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Chunks leave in order, each ``delay`` after it arrived."""
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def send() -> None:
        while True:
            due, chunk = await queue.get()
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if not chunk:
                writer.close()
                return
            writer.write(chunk)
            await writer.drain()

    sender = asyncio.create_task(send())
    try:
        while True:
            chunk = await reader.read(65536)
            queue.put_nowait((time.monotonic() + delay, chunk))
            if not chunk:
                break
        await sender
    except (ConnectionError, OSError):
        sender.cancel()
        writer.close()


def _proxy_main(port: int, target: int, delay: float, lifetime: float) -> None:
    """Entry point of the proxy process: forward ``port`` to ``target`` until ``lifetime``."""

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(HOST, target)
        await asyncio.gather(_pipe(reader, up_writer, delay), _pipe(up_reader, writer, delay))

    async def serve() -> None:
        server = await asyncio.start_server(client, HOST, port)
        async with server:
            await asyncio.sleep(lifetime)

    asyncio.run(serve())


class DelayProxy:
    """Forwards TCP from ``port`` to ``target``, holding each chunk ``delay`` seconds, in a
    process of its own so neither the editors' load nor livefeed's skews the delay."""

    def __init__(self, target: int, delay: float, lifetime: float = 3600) -> None:
        self.port = free_port()
        context = multiprocessing.get_context("spawn")
        self.proc: BaseProcess = context.Process(
            target=_proxy_main, args=(self.port, target, delay, lifetime), name="lag-proxy"
        )
        self.proc.start()
        wait_until(self._listening, 20, "the lag proxy did not start")

    def _listening(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.join(10)


def start_redis(tmp: Path, name: str, *extra: str) -> Server:
    data = tmp / name
    data.mkdir()
    port = free_port()
    args = [
        "redis-server", "--bind", HOST, "--port", str(port), "--dir", str(data),
        "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no",
        *extra,
    ]  # fmt: skip
    server = spawn(name, args, tmp / f"{name}.log", port, where=None)
    wait_until(lambda: port_open(server), 20, f"{name} did not start")
    return server


def in_sync(replica: Server) -> bool:
    client = redis.Redis(host=HOST, port=replica.port, socket_timeout=1)
    try:
        return bool(client.info("replication").get("master_link_status") == "up")
    except redis.RedisError:
        return False
    finally:
        client.close()


async def publish(
    pool: ClientPool, livefeed: Livefeed, editors: int, briefs: int
) -> dict[str, Any]:
    """``editors`` concurrent editors, spread over the pool, post ``briefs`` briefs in all."""
    livefeed.create_feed("replicas")
    per = [
        {
            "host": HOST, "port": livefeed.server.port, "feed": "replicas",
            "token": livefeed.token, "editors": e, "count": c, "timeout": 240.0,
        }
        for e, c in zip(pool.shares(editors), pool.shares(briefs), strict=True)
    ]  # fmt: skip
    cpu0, watch = cpu_seconds(livefeed.server.pid), Watch()
    replies = await pool.each("publish", 300, per)
    server_cpu, machine = cpu_seconds(livefeed.server.pid) - cpu0, watch.stop()
    active = [r for r in replies if r["latency_ms"]]
    seconds = (max(r["end_ns"] for r in active) - min(r["start_ns"] for r in active)) / 1e9
    statuses: Counter[str] = Counter()
    for r in replies:
        statuses.update(r["statuses"])
    latencies = [v for r in replies for v in r["latency_ms"]]
    return {
        "rate": sum(r["accepted"] for r in replies) / seconds,
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "statuses": dict(statuses),
        "server_cpu_s": server_cpu,
        "client_cpu_s": sum(r["cpu"] for r in replies),
        "foreign_cores": machine["foreign_cores"],
    }


def one_round(
    tmp: Path, pool: ClientPool, lag_ms: float, min_replicas: int, opts: argparse.Namespace
) -> dict[str, Any]:
    primary = start_redis(tmp, "primary")
    proxy = DelayProxy(primary.port, lag_ms / 1000)
    replica = start_redis(tmp, "replica", "--replicaof", HOST, str(proxy.port))
    livefeed: Livefeed | None = None
    try:
        wait_until(lambda: in_sync(replica), 60, "the replica did not sync")
        waits = {"LIVEFEED_MIN_REPLICAS": str(min_replicas), "LIVEFEED_REPLICA_TIMEOUT": "5"}
        workers = ["--workers", str(opts.workers)]
        url = f"redis://{HOST}:{primary.port}/0"
        livefeed = Livefeed(tmp, url, None, workers, waits, where=None)
        result = asyncio.run(publish(pool, livefeed, opts.editors, opts.briefs))
        result["nofile"] = nofile_of(livefeed.server.pid)
    finally:
        if livefeed is not None:
            livefeed.server.stop()
        replica.stop()
        proxy.stop()
        primary.stop()
    return {"lag_ms": lag_ms, "min_replicas": min_replicas, **result}


def row(result: dict[str, Any], peer: float) -> str:
    return (
        f"| {result['lag_ms']:g} ms | {result['min_replicas']} | {result['rate']:,.0f} | "
        f"{result['rate'] / peer:.2f} | {result['p50']:.1f} | {result['p99']:.1f} | "
        f"{result['statuses']} | {result['server_cpu_s']:.1f} | {result['client_cpu_s']:.1f} | "
        f"{result['foreign_cores']:.2f} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lags", type=float, nargs="+", default=[0, 10, 50])
    parser.add_argument("--editors", type=int, default=16)
    parser.add_argument("--briefs", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=2, help="editor processes")
    parser.add_argument("--workers", type=int, default=1, help="livefeed worker processes")
    opts = parser.parse_args()
    raise_nofile()
    rows = [
        "| replica lag (each way) | MIN_REPLICAS | briefs/s | ratio to no wait | p50 ms | p99 ms | "
        "statuses | livefeed CPU s | editors CPU s | other processes' cores |",
        "|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|",
    ]
    pool = ClientPool(opts.clients)
    try:
        peer = 0.0
        for lag, wait in [(0.0, 0)] + [(lag, 1) for lag in opts.lags]:
            with tempfile.TemporaryDirectory(prefix="livefeed-replicas-") as tmp:
                result = one_round(Path(tmp), pool, lag, wait, opts)
            peer = peer or result["rate"]
            rows.append(row(result, peer))
            print(rows[-1], flush=True)
    finally:
        pool.close()
    print(
        f"\n{opts.editors} editors in {opts.clients} processes, {opts.briefs} briefs a round, "
        f"livefeed --workers {opts.workers} (open files, soft and hard: {result['nofile']})\n"
    )
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
