"""Publish rate and latency when every 2xx waits for a replica (LIVEFEED_MIN_REPLICAS=1).

For each lag (default 0, 10 and 50 ms), a primary and a replica run on loopback with the
replica's link to the primary through a TCP proxy in this process that holds every chunk, in
both directions, for the lag (so a WAIT needs about two lags: the write one way, the ack back).
A fresh ``livefeed serve`` with ``LIVEFEED_MIN_REPLICAS=1`` takes ``--editors`` concurrent
editors publishing ``--briefs`` briefs; printed per lag: briefs/s accepted, latency p50/p99,
and the statuses. The editors run in this process (one httpx client each) beside the proxy's
thread, so the absolute rates are lower than bench/run.py's (whose editors have processes of
their own): read the rows against each other. A round without a replica wait
(``LIVEFEED_MIN_REPLICAS=0``, lag 0) comes first, as the peer measured in the same run.
Loopback only; every phase has a deadline.

    .venv/bin/python bench/replicas.py
    .venv/bin/python bench/replicas.py --lags 0 10 --briefs 1000
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import redis
from run import HOST, Livefeed, Server, free_port, port_open, spawn, wait_until
from stats import percentile


class DelayProxy:
    """Forwards TCP from ``listen`` to ``target``, holding each chunk ``delay`` seconds, in a
    thread with its own event loop so the publishers' load does not skew the delay."""

    def __init__(self, target: int, delay: float) -> None:
        self.port = free_port()
        self.target = target
        self.delay = delay
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        self.ready.wait(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._client, HOST, self.port))
        self.ready.set()
        try:
            self.loop.run_forever()
        finally:
            server.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(HOST, self.target)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
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
                queue.put_nowait((time.monotonic() + self.delay, chunk))
                if not chunk:
                    break
            await sender
        except (ConnectionError, OSError):
            sender.cancel()
            writer.close()

    def stop(self) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.loop.stop()

        self.loop.call_soon_threadsafe(lambda: self.loop.create_task(cancel_all()))
        self.thread.join(10)


def start_redis(tmp: Path, name: str, *extra: str) -> Server:
    data = tmp / name
    data.mkdir()
    port = free_port()
    args = [
        "redis-server", "--bind", HOST, "--port", str(port), "--dir", str(data),
        "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no",
        *extra,
    ]  # fmt: skip
    server = spawn(name, args, tmp / f"{name}.log", port)
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


async def publish(livefeed: Livefeed, editors: int, briefs: int) -> dict[str, Any]:
    """``editors`` concurrent editors post ``briefs`` briefs in all; rate and latencies."""
    livefeed.create_feed("replicas")
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    url = f"{livefeed.base}/api/feeds/replicas/briefs"

    async def editor(k: int) -> None:
        async with httpx.AsyncClient(timeout=30, headers=livefeed.headers()) as client:
            for n in range(k, briefs, editors):
                began = time.perf_counter()
                answer = await client.post(url, json={"headline": f"n{n}", "body": "Body."})
                latencies.append((time.perf_counter() - began) * 1000)
                statuses[answer.status_code] += 1

    began = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(editor(k) for k in range(editors))), 300)
    seconds = time.perf_counter() - began
    return {
        "rate": statuses[201] / seconds,
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "statuses": dict(statuses),
    }


def one_round(tmp: Path, lag_ms: float, min_replicas: int, opts: argparse.Namespace) -> str:
    primary = start_redis(tmp, "primary")
    proxy = DelayProxy(primary.port, lag_ms / 1000)
    replica = start_redis(tmp, "replica", "--replicaof", HOST, str(proxy.port))
    livefeed: Livefeed | None = None
    try:
        wait_until(lambda: in_sync(replica), 60, "the replica did not sync")
        waits = {"LIVEFEED_MIN_REPLICAS": str(min_replicas), "LIVEFEED_REPLICA_TIMEOUT": "5"}
        livefeed = Livefeed(tmp, f"redis://{HOST}:{primary.port}/0", None, [], waits)
        result = asyncio.run(publish(livefeed, opts.editors, opts.briefs))
    finally:
        if livefeed is not None:
            livefeed.server.stop()
        replica.stop()
        proxy.stop()
        primary.stop()
    return (
        f"| {lag_ms:g} ms | {min_replicas} | {result['rate']:,.0f} | {result['p50']:.1f} | "
        f"{result['p99']:.1f} | {result['statuses']} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lags", type=float, nargs="+", default=[0, 10, 50])
    parser.add_argument("--editors", type=int, default=16)
    parser.add_argument("--briefs", type=int, default=2000)
    opts = parser.parse_args()
    rows = [
        "| replica lag (each way) | MIN_REPLICAS | briefs/s | p50 ms | p99 ms | statuses |",
        "|--:|--:|--:|--:|--:|---|",
    ]
    rounds = [(0.0, 0)] + [(lag, 1) for lag in opts.lags]
    for lag, wait in rounds:
        with tempfile.TemporaryDirectory(prefix="livefeed-replicas-") as tmp:
            rows.append(one_round(Path(tmp), lag, wait, opts))
            print(rows[-1], flush=True)
    print(f"\n{opts.editors} editors, {opts.briefs} briefs a round, one livefeed process\n")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
