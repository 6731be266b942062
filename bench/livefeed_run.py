"""livefeed under the benchmark: the fan-out run (``fanout.measure``) and what only livefeed has.

Publish throughput (``--editors`` concurrent editors on keep-alive connections), the import of a
generated JSONL (timed from outside, so with the command's start-up), the day archive API, and
``serve --workers N`` holding ``N x --readers`` readers with every brief reaching every reader.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import fanout
import httpx
from briefs import SEED_SEQ, publish_payload, write_archive
from fanout import Publisher, Target, connect_group, expect, profiled
from servers import (
    BACKLOG,
    HOST,
    PYTHON,
    ROOT,
    ClientPool,
    Livefeed,
    Server,
    Watch,
    redis_url_of,
    say,
)
from stats import cpu_seconds, open_sockets, process_tree, rss_kib, settle, summary


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


async def run_livefeed(
    tmp: Path, pool: ClientPool, redis: Server, opts: argparse.Namespace
) -> dict[str, Any]:
    redis_url = redis_url_of(redis)
    livefeed = await asyncio.to_thread(Livefeed, tmp, redis_url, opts.livefeed_log_level, [])
    publisher = LivefeedPublisher(livefeed, "bench")
    try:
        livefeed.create_feed("bench")
        result = await fanout.measure(
            "livefeed",
            pool,
            Target(
                livefeed.server,
                "/ws/feeds/bench",
                redis.pid,
                livefeed.health,
                livefeed.collections,
            ),
            publisher,
            opts,
        )
        result["publish_failures"] = dict(publisher.failures)
        if not LOGS.get("livefeed"):  # publish, import and the day API: the first run only
            result["publish"] = await publish_throughput(pool, livefeed, redis.pid, opts)
            result["import"], dates = await asyncio.to_thread(
                import_throughput, tmp, livefeed, opts
            )
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
    if fanout.PROFILER is not None:  # a second import, into another feed, under py-spy
        livefeed.create_feed("archive-profiled")
        args = [*base, "import", "archive-profiled", str(path), *where]
        fanout.PROFILER.run("livefeed-import", args, ROOT, 1800)
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
    if fanout.PROFILER is not None:
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
        Livefeed, tmp, redis_url_of(redis), opts.livefeed_log_level, extra, None, "all"
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
