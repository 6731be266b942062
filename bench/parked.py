"""Memory per parked reader: what a caught-up reader costs the server while it waits.

    .venv/bin/python bench/parked.py                 # 2,000 readers, each mode twice
    .venv/bin/python bench/parked.py --readers 500 --rounds 1
    .venv/bin/python bench/parked.py --rss-only      # no tracemalloc: RSS without its overhead
    .venv/bin/python bench/parked.py --top 15        # and where the bytes that remain are

For each mode ("direct": as shipped, each reader handed to a ``ws_parked.ParkedSocket`` once it
caught up; "asgi": ``LIVEFEED_WS_DIRECT=0``, uvicorn's stock protocol with a task per reader, as
under any ASGI server) a fresh ``livefeed serve`` runs in a child process on its own
redis-server, loopback only. The child traces its allocations (tracemalloc); after 20 warm-up
readers, N readers connect (offering permessage-deflate, as browsers do) and park (each reads up
to its "live" frame), and the server's traced memory (after a gc) and RSS are read before and
after. Printed: bytes per parked reader, both ways, per round; with ``--top``, the allocation
sites that grew most, per reader. Every wait has a deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

import httpx
import websockets
from run import free_port, wait_until

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-parked-token-0123456789"


def child(port: int, redis_url: str, direct: bool, report: Path, trace: bool, top: int) -> None:
    """Run the server in this process; on SIGUSR1 write traced bytes (after a gc) to ``report``
    and, the second time, the ``top`` sites that grew since the first."""
    sys.path.insert(0, str(ROOT))
    if not direct:
        os.environ["LIVEFEED_WS_DIRECT"] = "0"
    from livefeed.config import Settings
    from livefeed.ops.serve import serve

    if trace:
        tracemalloc.start(6 if top else 1)
    snapshots: list[tracemalloc.Snapshot] = []

    def dump(signum: int, frame: object) -> None:
        gc.collect()
        lines = [str(tracemalloc.get_traced_memory()[0] if trace else 0)]
        if trace and top:
            snapshots.append(tracemalloc.take_snapshot())
            if len(snapshots) == 2:
                grown = snapshots[1].compare_to(snapshots[0], "traceback")[:top]
                for stat in grown:
                    where = " <- ".join(
                        f"{Path(f.filename).name}:{f.lineno}" for f in reversed(stat.traceback)
                    )
                    lines.append(f"{stat.size_diff}\t{stat.count_diff}\t{where}")
        report.write_text("\n".join(lines))

    signal.signal(signal.SIGUSR1, dump)
    settings = Settings.from_env(
        port=port, redis_url=redis_url, editor_token=TOKEN, log_level="warning"
    )
    sys.exit(serve(settings))


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def traced(pid: int, report: Path) -> list[str]:
    """The child's report: traced bytes, then the sites that grew (tab-separated)."""
    report.unlink(missing_ok=True)
    os.kill(pid, signal.SIGUSR1)
    wait_until(lambda: report.exists() and report.read_text(), 60, "no tracemalloc report")
    return report.read_text().splitlines()


async def park(base: str, slug: str, count: int) -> list[websockets.ClientConnection]:
    """``count`` readers, each read up to its "live" frame (then parked by the server)."""
    sockets: list[websockets.ClientConnection] = []
    limit = asyncio.Semaphore(100)

    async def one() -> None:
        async with limit:
            ws = await websockets.connect(f"{base}/ws/feeds/{slug}", max_queue=4)
            sockets.append(ws)
            async with asyncio.timeout(60):
                while json.loads(await ws.recv())["type"] != "live":
                    pass

    async with asyncio.timeout(300):
        await asyncio.gather(*(one() for _ in range(count)))
    return sockets


def measure(direct: bool, readers: int, tmp: Path, trace: bool, top: int) -> dict[str, Any]:
    redis_port, port = free_port(), free_port()
    data = tmp / uuid.uuid4().hex[:6]
    data.mkdir()
    redis = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(redis_port), "--dir", str(data),
         "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    report = data / "traced"
    code = f"import sys; sys.path.insert(0, {str(ROOT / 'bench')!r}); import parked; " + (
        f"parked.child({port}, 'redis://127.0.0.1:{redis_port}/0', {direct}, "
        f"__import__('pathlib').Path({str(report)!r}), {trace}, {top})"
    )
    with open(data / "server.log", "wb") as log:  # the child has its own copy of the fd
        server = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            if server.poll() is not None:
                raise RuntimeError((data / "server.log").read_text())
            try:
                return httpx.get(base + "/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, 60, "server did not start")
        slug = "parked-" + uuid.uuid4().hex[:6]
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=base, timeout=10, headers=headers) as client:
            client.post("/api/feeds", json={"slug": slug, "title": "P", "timezone": "UTC"})
            for n in range(20):
                client.post(f"/api/feeds/{slug}/briefs", json={"headline": f"b{n}", "body": "x"})

        async def run() -> dict[str, Any]:
            ws_base = f"ws://127.0.0.1:{port}"
            warm = await park(ws_base, slug, 20)  # the hub's channel, caches, first imports
            await asyncio.sleep(1)
            before = (await asyncio.to_thread(traced, server.pid, report), rss(server.pid))
            sockets = await park(ws_base, slug, readers)
            await asyncio.sleep(1)
            after = (await asyncio.to_thread(traced, server.pid, report), rss(server.pid))
            for ws in [*warm, *sockets]:
                await ws.close()
            return {
                "traced_per_reader": (int(after[0][0]) - int(before[0][0])) / readers,
                "rss_per_reader": (after[1] - before[1]) / readers,
                "sites": after[0][1:],
            }

        return asyncio.run(run())
    finally:
        for proc in (server, redis):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rss-only", action="store_true", help="serve without tracemalloc")
    parser.add_argument("--top", type=int, default=0, help="show the N sites that grew most")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="livefeed-parked-"))
    try:
        for round_ in range(1, args.rounds + 1):
            for direct in (True, False):
                got = measure(direct, args.readers, tmp, not args.rss_only, args.top)
                print(
                    f"round {round_} {'direct' if direct else 'asgi':6} {args.readers} readers: "
                    f"traced {got['traced_per_reader']:7.0f} B/reader, "
                    f"RSS {got['rss_per_reader']:7.0f} B/reader",
                    flush=True,
                )
                for line in got["sites"]:
                    size, _, where = line.split("\t")
                    print(f"    {int(size) / args.readers:7.0f} B/reader  {where}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
