"""The fan-out measurement, the same for every server: readers connect, briefs are published
paced and in a burst, a bytes probe with and without permessage-deflate, then join storms.

The client processes (``servers.ClientPool``, each running ``clients.main``) hold the readers; a
``Publisher`` puts brief ``seq`` onto the server under test its own way.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from briefs import SEED_SEQ, reference_frame
from profiles import Profiler
from redis.asyncio import Redis
from servers import BACKLOG, HOST, ClientPool, Server, Watch, fmt, say
from stats import cpu_seconds, cpu_split, rss_kib, settle, summary


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


# --- the fan-out measurement, the same for both servers ------------------------------------------


@dataclass
class Target:
    """Where the readers connect and how their backlog arrives."""

    server: Server
    path: str
    redis_pid: int
    health: Callable[[], dict[str, Any]] | None = None
    collections: Callable[[], dict[str, dict[str, Any]]] | None = None
    """The server's garbage-collector pauses by generation (livefeed's ``/metrics``)."""
    python: bool = True  # py-spy can profile it (--profile)


async def connect_group(
    pool: ClientPool,
    target: Target,
    name: str,
    count: int,
    concurrency: int,
    timeout: float,
    offer_deflate: bool = False,
) -> dict[str, Any]:
    """Connect ``count`` readers across the client processes; rates and times, merged."""
    per = [
        {
            "name": name, "host": HOST, "port": target.server.port, "path": target.path,
            "count": share, "concurrency": max(1, min(share, concurrency)), "backlog": BACKLOG,
            "timeout": timeout, "offer_deflate": offer_deflate,
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
    pool: ClientPool,
    sent: dict[int, tuple[int, int, bool]],
    seqs: list[int],
    timeout: float,
    name: str = "main",
) -> dict[str, Any]:
    """Wait for every reader to have ``seqs`` and turn the answers into the phase's figures."""
    replies = await pool.all("expect", timeout + 30, name=name, seqs=seqs, timeout=timeout)
    per_seq: dict[int, list[int]] = {}
    latencies: list[float] = []
    closed: Counter[str] = Counter()
    other: Counter[str] = Counter()
    for r in replies:
        for seq, (count, last, wire) in r["per_seq"].items():
            agg = per_seq.setdefault(seq, [0, 0, 0])
            agg[0] += count
            agg[1] = max(agg[1], last)
            agg[2] += wire
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
        # the frames' sizes on the wire (headers and payload as sent), per delivery of ``seqs``
        "wire_bytes_per_delivery": sum(per_seq[s][2] for s in seqs if s in per_seq)
        / max(sum(per_seq[s][0] for s in seqs if s in per_seq), 1),
        # every byte read from the sockets since the backlog (pings, closes, frames), per delivery
        "socket_bytes_per_delivery": sum(r["socket_bytes"] for r in replies) / max(frames, 1),
        "deflate_readers": sum(r["deflate_readers"] for r in replies),
        "client_cpu_total": sum(r["cpu_total"] for r in replies),
    }


async def probe(target: Target) -> dict[str, Any] | None:
    return None if target.health is None else await asyncio.to_thread(target.health)


PROFILER: Profiler | None = None


@contextlib.contextmanager
def profiled(label: str, pid: int | None) -> Iterator[None]:
    """A py-spy profile of ``pid`` over the block, with ``--profile``; nothing otherwise."""
    if PROFILER is None or pid is None:
        yield
        return
    with PROFILER.record(label, pid):
        yield


def collection_pauses(
    before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]
) -> dict[str, dict[str, float]]:
    """Per generation, the collections between two ``collections()`` reads: how many, their
    total milliseconds and the upper bound of the longest one's histogram bucket."""
    out: dict[str, dict[str, float]] = {}
    for generation, now in sorted(after.items()):
        was = before.get(generation, {"count": 0.0, "sum": 0.0, "buckets": {}})
        grew = [
            bound for bound, count in sorted(now["buckets"].items())
            if count > was["buckets"].get(bound, 0.0)
        ]  # fmt: skip
        out[generation] = {
            "collections": now["count"] - was["count"],
            "total_ms": (now["sum"] - was["sum"]) * 1000,
            "longest_under_ms": grew[0] * 1000 if grew else 0.0,
        }
    return out


async def measure(
    name: str, pool: ClientPool, target: Target, publisher: Publisher, opts: argparse.Namespace
) -> dict[str, Any]:
    """Connect, measure memory, publish the paced and burst phases, then the join storm."""
    pid = target.server.pid
    spied = pid if target.python else None
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
    with profiled(f"{name}-connect", spied):
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
    client0, (user0, sys0) = await pool.cpu(), cpu_split(pid)
    plans = {
        "paced": list(range(1, opts.paced + 1)),
        "burst": list(range(opts.paced + 1, opts.paced + opts.burst + 1)),
    }
    collected = await asyncio.to_thread(target.collections) if target.collections else None
    with profiled(f"{name}-publish-phases", spied):
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
    user1, sys1 = cpu_split(pid)
    pauses = None
    if target.collections and collected is not None:
        pauses = collection_pauses(collected, await asyncio.to_thread(target.collections))
    server_user, server_sys = user1 - user0, sys1 - sys0
    server_cpu = server_user + server_sys
    client_cpu = await pool.cpu() - client0
    deliveries = sum(p["received"] for p in phases.values())

    say(f"{name}: closing readers")
    closing = await pool.all("close", 90, name="main", timeout=60)
    await asyncio.to_thread(settle, pid)
    rss2 = rss_kib(pid)
    health["closed"] = await probe(target)
    wire = await wire_probe(name, pool, target, publisher, opts, opts.paced + opts.burst + 1)

    # A storm lasts about a second, so one is at the mercy of whatever else the machine does in
    # it: several, each on a settled server, and the median one reported (all rates kept).
    storms = []
    for round_ in range(1, opts.storm_rounds + 1):
        say(f"{name}: join storm {round_} of {opts.storm} readers")
        with profiled(f"{name}-storm-{round_}", spied):
            storm = await connect_group(pool, target, "storm", opts.storm, opts.storm, 120)
        say(f"{name}: storm: {storm['ready']} in {storm['seconds']:.2f} s ({storm['rate']:.0f}/s)")
        await pool.all("close", 90, name="storm", timeout=60)
        await asyncio.to_thread(settle, pid)
        storms.append(storm)
    storm = sorted(storms, key=lambda s: s["rate"])[len(storms) // 2]
    storm["rounds"] = [round(s["rate"]) for s in storms]
    storm["cpu_ms_per_join_rounds"] = [s["server_cpu_ms_per_join"] for s in storms]
    health["after_storm"] = await probe(target)
    target.server.check_alive()
    return {
        "connect": joined,
        "rss_before_kib": rss0,
        "rss_after_kib": rss1,
        "memory_per_reader_kib": (rss1 - rss0) / max(joined["ready"], 1),
        "rss_after_close_kib": rss2,
        "health": health,
        "gc_publish_phases": pauses,
        "phases": phases,
        "deliveries": deliveries,
        "expected": sum(p["expected"] for p in phases.values()),
        "lost": sum(p["lost"] for p in phases.values()),
        "server_cpu_s": server_cpu,
        "server_cpu_s_per_1000": server_cpu * 1000 / max(deliveries, 1),
        "server_user_s_per_1000": server_user * 1000 / max(deliveries, 1),
        "server_sys_s_per_1000": server_sys * 1000 / max(deliveries, 1),
        "wire": wire,
        "offer_deflate": opts.offer_deflate,
        "client_cpu_s": client_cpu,
        "close": {
            "closed": sum(c["closed"] for c in closing),
            "aborted": sum(c["aborted"] for c in closing),
        },
        "storm": storm,
        "foreign_cores": max(
            joined["foreign_cores"], *(p["foreign_cores"] for p in phases.values())
        ),
    }


async def wire_probe(
    name: str,
    pool: ClientPool,
    target: Target,
    publisher: Publisher,
    opts: argparse.Namespace,
    first_seq: int,
) -> dict[str, Any]:
    """Bytes on the wire per brief, with and without offering permessage-deflate.

    Two small groups (``--probe-readers`` each), one offering deflate as browsers do and one not,
    get ``--probe-briefs`` paced briefs; each reader counts what it read from its socket.
    """
    out: dict[str, Any] = {}
    if opts.probe_readers <= 0:
        return out
    count = max(opts.probe_readers, len(pool))
    for label, offer in (("plain", False), ("deflate", True)):
        await connect_group(pool, target, f"wire-{label}", count, 16, 60, offer_deflate=offer)
    sent: dict[int, tuple[int, int, bool]] = {}
    seqs = list(range(first_seq, first_seq + opts.probe_briefs))
    for seq in seqs:
        sent[seq] = await publisher.publish(seq)
        await asyncio.sleep(0.2)
    took = [seq for seq in seqs if sent[seq][2]]
    for label in ("plain", "deflate"):
        got = await expect(pool, sent, took, 30, name=f"wire-{label}")
        out[label] = {
            "readers": got["readers"],
            "deflate_readers": got["deflate_readers"],
            "lost": got["lost"],
            "wire_bytes_per_delivery": got["wire_bytes_per_delivery"],
            "payload_bytes_per_delivery": got["mean_frame_bytes"],
        }
        await pool.all("close", 60, name=f"wire-{label}", timeout=30)
    plain = out["plain"]["wire_bytes_per_delivery"]
    deflate = out["deflate"]["wire_bytes_per_delivery"]
    say(
        f"{name}: wire bytes per brief: {plain:.0f} plain, {deflate:.0f} offering deflate "
        f"({out['deflate']['deflate_readers']} of {out['deflate']['readers']} negotiated it)"
    )
    await asyncio.to_thread(settle, target.server.pid)
    return out
