"""A return storm: thousands of returning readers ask ``GET /api/feeds/{feed}/since/{id}`` at once.

    .venv/bin/python bench/returns.py               # 5,000 returns, 64 connections (a few minutes)
    .venv/bin/python bench/returns.py --returns 20000 --connections 128

What happens after a push alert: every reader who follows the feed opens it within the minute,
and each page asks what it missed since its own last event. This starts its own redis-server
(AOF, ``appendfsync always``) and ``livefeed serve`` on loopback, gives one feed a history
(briefs, key events, corrections of older briefs, summary updates), then sends ``--returns``
since-requests, each from a last visit among the latest ``--window`` events (so each folds 1 to
``--window`` events), over ``--connections`` keep-alive connections; then as many again, each
from a different moment (between those events), which no answer kept in the process serves.
The **peer**, in the same run against the same server: as many ``GET /api/feeds/{feed}/briefs``
(the latest 20, what a page's "load" costs through the API). For each: requests a second,
latency p50 and p99, server CPU per request, and any answer that is not a 200.

Every loop is bounded by count and each phase by ``--phase-timeout``; it asserts nothing and
prints numbers (and JSON with ``--json``). Only processes it started are stopped, by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import HOST, Livefeed, Watch, start_redis
from stats import cpu_seconds, percentile


def seed(livefeed: Livefeed, slug: str, history: int, window: int) -> list[str]:
    """``history`` briefs, then ``window`` recent events (briefs, every 10th a key event; every
    8th a correction of an older brief; every 25th a summary update); the ids readers last saw:
    each event id before and among the recent ones."""
    headers = livefeed.headers()
    old: list[str] = []
    seen: list[str] = []
    with httpx.Client(base_url=livefeed.base, headers=headers, timeout=30) as client:

        def post(headline: str, key: bool = False) -> str:
            body = {"headline": headline, "body": "<p>" + "Reporting. " * 40 + "</p>",
                    "key_event": key}  # fmt: skip
            response = client.post(f"/api/feeds/{slug}/briefs", json=body)
            response.raise_for_status()
            brief_id: str = response.json()["id"]
            return brief_id

        for n in range(history):
            old.append(post(f"Earlier brief {n}"))
        seen.append(client.get(f"/api/feeds/{slug}").json()["last_event_id"])
        for n in range(window - 1):
            if n % 8 == 7:
                target = old[n % len(old)]
                fix = {"headline": f"Earlier brief, corrected {n}", "correction_note": "Fixed"}
                client.patch(f"/api/feeds/{slug}/briefs/{target}", json=fix).raise_for_status()
            elif n % 25 == 24:
                summary = {"items": [f"Point {n}", "Another point"]}
                client.put(f"/api/feeds/{slug}/summary", json=summary).raise_for_status()
            else:
                post(f"Recent brief {n}", key=n % 10 == 0)
            seen.append(client.get(f"/api/feeds/{slug}").json()["last_event_id"])
    return seen


async def _get(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str
) -> tuple[int, bytes]:
    """One keep-alive HTTP/1.1 GET: the status and the body (Content-Length framed)."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def storm(port: int, paths: list[str], connections: int, timeout: float) -> dict[str, Any]:
    """Send every path once over ``connections`` connections, as fast as they answer."""
    queue: Iterator[str] = iter(paths)
    latencies: list[float] = []
    failures: dict[str, int] = {}

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            for path in queue:  # shared: each path is taken by one connection
                started = time.perf_counter()
                status, body = await _get(reader, writer, path)
                latencies.append(time.perf_counter() - started)
                if status != 200 or not body.startswith(b"{"):
                    failures[str(status)] = failures.get(str(status), 0) + 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(connection() for _ in range(connections))), timeout)
    wall = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "wall_s": wall,
        "per_second": len(latencies) / wall,
        "p50_ms": 1000 * (percentile(latencies, 50) or 0),
        "p99_ms": 1000 * (percentile(latencies, 99) or 0),
        "failures": failures,
    }


def measure(livefeed: Livefeed, paths: list[str], args: argparse.Namespace) -> dict[str, Any]:
    pid = livefeed.server.pid
    port = livefeed.server.port
    asyncio.run(storm(port, paths[: min(len(paths), 200)], args.connections, args.phase_timeout))
    cpu = cpu_seconds(pid)  # after a warm-up of up to 200 requests
    result = asyncio.run(storm(port, paths, args.connections, args.phase_timeout))
    used = cpu_seconds(pid) - cpu
    result["server_cpu_ms_per_request"] = 1000 * used / max(1, result["requests"])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--returns", type=int, default=5000, help="since-requests (and peers)")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections")
    parser.add_argument("--history", type=int, default=300, help="briefs before the window")
    parser.add_argument("--window", type=int, default=200, help="recent events readers missed")
    parser.add_argument("--phase-timeout", type=float, default=300.0, help="seconds per phase")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()
    rng = random.Random(17)
    with tempfile.TemporaryDirectory(prefix="livefeed-returns-") as tmp:
        redis = start_redis(Path(tmp))
        livefeed = None
        try:
            livefeed = Livefeed(Path(tmp), f"redis://{HOST}:{redis.port}/0", "warning", [])
            slug = "returns"
            livefeed.create_feed(slug)
            visits = seed(livefeed, slug, args.history, args.window)[:-1]  # the last: nothing new
            chosen = [rng.choice(visits).split("-") for _ in range(args.returns)]
            since = [f"/api/feeds/{slug}/since/{ms}-{seq}" for ms, seq in chosen]
            # Each a different id (a moment just after a visit, before the next event): every
            # request folds its range, none is answered from the cache.
            cold = [f"/api/feeds/{slug}/since/{ms}-{int(seq) + 1 + n}"
                    for n, (ms, seq) in enumerate(chosen)]  # fmt: skip
            sample = httpx.get(livefeed.base + since[0], timeout=10).json()
            watch = Watch()
            results = {
                "since": measure(livefeed, since, args),
                "uncached": measure(livefeed, cold, args),
                "briefs": measure(livefeed, [f"/api/feeds/{slug}/briefs"] * args.returns, args),
            }
            results["machine"] = watch.stop()
        finally:
            if livefeed is not None:
                livefeed.server.stop()
            redis.stop()
    keys, fixes = len(sample["key_events"]), len(sample["corrections"])
    print(f"{args.returns} returns over {args.connections} connections; each since folds 1 to "
          f"{args.window} events (a sample: {sample['new_briefs']} new briefs, {keys} key events, "
          f"{fixes} corrections)")  # fmt: skip
    for name in ("since", "uncached", "briefs"):
        r = results[name]
        print(f"  {name:8} {r['per_second']:8,.0f}/s  p50 {r['p50_ms']:6.1f} ms  p99 "
              f"{r['p99_ms']:6.1f} ms  server CPU {r['server_cpu_ms_per_request']:.2f} ms/request"
              f"  failures {r['failures'] or 0}")  # fmt: skip
    ratio = results["since"]["per_second"] / results["briefs"]["per_second"]
    print(
        f"  since / briefs throughput: {ratio:.2f}; other processes used "
        f"{results['machine']['foreign_cores']:.2f} cores meanwhile"
    )
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
