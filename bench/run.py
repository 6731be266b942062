"""The livefeed benchmark: fan-out at newsroom scale, measured against its peers in the same run.

    bench/peers/install                        # once: Nchan (apt) and Node's ws (npm)
    .venv/bin/python bench/run.py              # 10,000 readers, every server twice
    .venv/bin/python bench/run.py --quick      # 1,000 readers, short phases, one run each
    .venv/bin/python bench/run.py --only nchan,livefeed --runs 1
    .venv/bin/python bench/run.py --workers 2  # also `livefeed serve --workers 2`, 2 x N readers
    .venv/bin/python bench/run.py --profile    # also py-spy profiles (needs py-spy installed)

What it does, loopback only, every step bounded in time:

1. Waits (up to ``--wait-quiet`` s) for the machine to be idle, then starts its own
   ``redis-server`` (AOF, ``appendfsync always``, like production) on a free port in a temporary
   directory, and client processes (``--clients``, default 4) that hold the readers, spread over
   source addresses 127.0.0.10-41 so the ephemeral port range never runs short.
2. Runs the peers (``bench/peers.py``: the websockets **reference**, **Nchan**, **Node + ws**
   without and with perMessageDeflate), then **livefeed** (``python -m livefeed serve
   --redis-url ...``, its abuse limits on write rates turned off), one after the other on the
   same Redis (different keys), each pinned to ``--server-core`` while the load generator and
   redis-server keep the other cores, ``--runs`` times, under the same load
   (``bench/fanout.py``):
   - N readers connect (at most ``--connect-concurrency`` handshakes in flight) and each waits
     for its backlog of the latest 20 briefs (livefeed: the ``snapshot`` frame; the peers: 20
     brief frames). Server RSS (VmRSS) is read before and after: memory per reader.
   - Phase A, paced: one brief a second for ``--paced`` seconds. Phase B, burst: ``--burst``
     briefs back to back. Bodies are 0.5-1.5 KiB of text with ``bench:<seq>:<time_ns>`` inside;
     every reader parses every frame and records its latency. Livefeed is published to through
     ``POST /api/feeds/{feed}/briefs``; the reference and Node by an XADD of the same brief's
     frame straight to their stream, Nchan by a POST of it to its publisher location, so the
     peers' figures leave out the validation that livefeed's include. Server CPU (utime and
     stime from /proc) over both phases, divided by the deliveries, is the CPU per delivery.
   - Bytes on the wire per delivery, for a few readers that offer permessage-deflate and a few
     that do not (``fanout.wire_probe``).
   - A join storm: ``--storm`` fresh readers connect at once, each must get its backlog.
3. For livefeed only: publish throughput (16 concurrent editors on keep-alive connections),
   import throughput (``livefeed import`` of a generated JSONL, timed from outside, so including
   the command's start-up) and the day archive (a 5,000-brief day, median of 5 after a warm-up).
4. Prints a summary, and writes ``bench/results/<UTC time>.json`` (every figure, the machine,
   versions, the command) and ``<UTC time>.md`` plus ``latest.md``: the servers side by side
   with the quieter run shown (``bench/peers_report.py``), and the table with targets.

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
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fanout
import livefeed_run
import peers
import report
from profiles import Profiler
from servers import (
    BENCH,
    HOST,
    PIN,
    PYTHON,
    ROOT,
    ClientPool,
    Livefeed,
    Server,
    Watch,
    free_port,
    pin,
    port_open,
    say,
    spawn,
    start_redis,
    wait_until,
)
from stats import machine_info, raise_nofile

__all__ = ["HOST", "Livefeed", "Server", "free_port", "port_open", "spawn", "wait_until"]

# Every server measured, in the order of a run: the peers, then livefeed.
SERVERS: dict[str, peers.Run] = {**peers.PEERS, "livefeed": livefeed_run.run_livefeed}


# --- main -----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark livefeed against its peers.")
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
    parser.add_argument(
        "--only",
        type=lambda v: v.split(","),
        help=f"these servers only, comma-separated ({','.join(SERVERS)})",
    )
    parser.add_argument("--runs", type=int, help="runs of every server, the quieter shown (2)")
    parser.add_argument(
        "--offer-deflate",
        action="store_true",
        help="the main readers offer permessage-deflate, as browsers do (default: they do not)",
    )
    parser.add_argument(
        "--probe-readers", type=int, default=100, help="readers per bytes-on-the-wire probe group"
    )
    parser.add_argument("--probe-briefs", type=int, default=5, help="briefs of the bytes probe")
    parser.add_argument(
        "--server-core", type=int, default=0, help="the core the servers are pinned to (0)"
    )
    parser.add_argument("--no-pin", action="store_true", help="pin nothing (taskset)")
    parser.add_argument("--livefeed-log-level", help="pass --log-level (default: livefeed's)")
    parser.add_argument("--results", type=Path, default=BENCH / "results", help="output folder")
    opts = parser.parse_args(argv)
    defaults = {
        "readers": 10_000, "paced": 20, "storm": 2000, "import_briefs": 100_000, "runs": 2,
    }  # fmt: skip
    if opts.quick:
        defaults = {
            "readers": 1000, "paced": 5, "storm": 500, "import_briefs": 10_000, "runs": 1,
        }  # fmt: skip
    unknown = set(opts.only or ()) - set(SERVERS)
    if unknown:
        parser.error(f"--only: unknown {sorted(unknown)}; known: {', '.join(SERVERS)}")
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


def quieter(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run other processes disturbed least, with the other runs' figures under "other"."""
    measured = [r for r in runs if "phases" in r]
    if not measured:
        return runs[0]
    shown = min(measured, key=lambda r: r.get("foreign_cores", 0.0))
    rest = [r for r in measured if r is not shown]
    if rest:
        shown["other"] = rest[0]
    for run in measured:  # livefeed's publish, import and day figures come from its first run
        for key in ("publish", "import", "day_archive", "publish_failures"):
            if key in run and key not in shown:
                shown[key] = run[key]
    return shown


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    raise_nofile()  # the servers and clients we start inherit it (and raise their own)
    say(pin(None if opts.no_pin else opts.server_core))
    load = wait_for_quiet(opts.wait_quiet)
    started = datetime.now(UTC)
    results: dict[str, Any] = {
        "command": " ".join([os.path.relpath(PYTHON, ROOT), *sys.argv]),
        "date": started.isoformat(timespec="seconds"),
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(opts).items()},
        "machine": {**machine_info("redis-server"), "peers": peers.versions(), "pin": dict(PIN)},
        "other_load_at_start_cores": load,
    }
    if opts.profile:
        py_spy = opts.py_spy or shutil.which("py-spy") or str(ROOT / ".venv" / "bin" / "py-spy")
        if not Path(py_spy).exists():
            raise SystemExit(f"--profile needs py-spy (pip install py-spy); not found: {py_spy}")
        stamp = started.strftime("%Y%m%dT%H%M%SZ")
        fanout.PROFILER = Profiler(py_spy, opts.results / f"{stamp}-profiles")
    with tempfile.TemporaryDirectory(prefix="livefeed-bench-") as tmp_name:
        tmp = Path(tmp_name)
        redis = start_redis(tmp)
        pool: ClientPool | None = None
        try:
            pool = ClientPool(opts.clients)
            every: dict[str, list[dict[str, Any]]] = {}
            for round_ in range(1, opts.runs + 1):
                for name, run in SERVERS.items():
                    if opts.only and name not in opts.only:
                        continue
                    if any("skipped" in r for r in every.get(name, ())):
                        continue
                    say(f"=== run {round_} of {opts.runs}: {name}")
                    result = asyncio.run(run(tmp, pool, redis, opts))
                    peers.skipped(name, result)
                    every.setdefault(name, []).append(result)
            for name, runs in every.items():
                results[name] = quieter(runs)
            if opts.workers:
                results["workers"] = asyncio.run(livefeed_run.run_workers(tmp, pool, redis, opts))
        finally:
            if pool is not None:
                pool.close()
            redis.stop()
    results["logs"] = livefeed_run.LOGS
    if fanout.PROFILER is not None:
        results["profiles"] = fanout.PROFILER.summaries
    results["elapsed_s"] = (datetime.now(UTC) - started).total_seconds()
    paths = report.write(results, opts.results, started)
    print(report.summary(results))
    shown = [os.path.relpath(p, Path.cwd()) for p in paths]
    print(f"\nwritten: {', '.join(shown)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
