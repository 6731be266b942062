"""Server CPU per join and per delivery, checkout against checkout, in one invocation (issue 18).

    .venv/bin/python bench/joins.py                          # this checkout, 1,000 joins, 2 rounds
    .venv/bin/python bench/joins.py --against /work/main     # and another checkout, alternating
    .venv/bin/python bench/joins.py --readers 2000 --profile # py-spy of each storm (bench/results)

For each checkout and round a fresh ``livefeed serve`` (that checkout's own .venv) runs on its
own redis-server, loopback only, with a feed of 20 briefs. After 20 warm-up readers, N readers
join at once (100 handshakes in flight) and each reads up to its "live" frame; the server's
user and sys CPU over the storm (from /proc) is divided by N. Then ``--briefs`` briefs are
published one after another while every reader reads them, and the server's CPU from the first
publish until every reader has them all is divided by the deliveries (publishing included, the
same for both checkouts). Printed per round: CPU per join, of which user, joins per second, and
CPU per delivery, of which user. Every wait has a deadline; the machine is shared, so read
the ratios between checkouts of the same invocation, not the absolute figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import websockets
from parked import park as storm
from run import free_port, wait_until

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-joins-token-0123456789"
_TICK = os.sysconf("SC_CLK_TCK")


def cpu(pid: int) -> tuple[float, float]:
    """User and sys CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / _TICK, int(fields[12]) / _TICK


async def deliveries(sockets: list[websockets.ClientConnection], publish: Any, briefs: int) -> None:
    """Publish ``briefs`` briefs; return once every socket has read each of them."""

    async def read(ws: websockets.ClientConnection) -> None:
        seen = 0
        while seen < briefs:
            if json.loads(await ws.recv())["type"] == "brief":
                seen += 1

    async with asyncio.timeout(300):
        readers = [asyncio.create_task(read(ws)) for ws in sockets]
        try:
            for n in range(briefs):
                await publish(n)
            await asyncio.gather(*readers)
        finally:
            for task in readers:
                task.cancel()


def measure(
    root: Path, readers: int, briefs: int, tmp: Path, py_spy: str | None
) -> dict[str, float]:
    redis_port, port = free_port(), free_port()
    data = tmp / uuid.uuid4().hex[:6]
    data.mkdir()
    redis = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(redis_port), "--dir", str(data),
         "--save", "", "--appendonly", "no", "--maxclients", "10000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    args = [str(root / ".venv/bin/python"), "-m", "livefeed", "serve", "--port", str(port)]
    args += ["--redis-url", f"redis://127.0.0.1:{redis_port}/0", "--log-level", "warning"]
    env = {**os.environ, "LIVEFEED_EDITOR_TOKEN": TOKEN, "LIVEFEED_CONNECTIONS_PER_ADDRESS": "0"}
    with open(data / "server.log", "wb") as log:  # the child has its own copy of the fd
        server = subprocess.Popen(args, cwd=root, stdout=log, stderr=log, env=env)
    base = f"http://127.0.0.1:{port}"
    profiler: subprocess.Popen[bytes] | None = None
    try:

        def healthy() -> bool:
            if server.poll() is not None:
                raise RuntimeError((data / "server.log").read_text())
            try:
                return httpx.get(base + "/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, 60, "server did not start")
        slug = "joins-" + uuid.uuid4().hex[:6]
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=base, timeout=10, headers=headers) as client:
            client.post("/api/feeds", json={"slug": slug, "title": "J", "timezone": "UTC"})
            for n in range(20):
                body = {"headline": f"brief {n}", "body": "a typical paragraph " * 12}
                client.post(f"/api/feeds/{slug}/briefs", json=body)

        async def run() -> dict[str, float]:
            nonlocal profiler
            ws_base = f"ws://127.0.0.1:{port}"
            warm = await storm(ws_base, slug, 20)
            await asyncio.sleep(0.5)
            if py_spy is not None:
                out = ROOT / "bench/results" / f"joins-{root.name}-{data.name}.txt"
                out.parent.mkdir(exist_ok=True)
                profiler = subprocess.Popen(
                    [py_spy, "record", "--pid", str(server.pid), "--rate", "250", "--format",
                     "raw", "--nonblocking", "--duration", "600", "-o", str(out)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
                await asyncio.sleep(1)
            user0, sys0 = cpu(server.pid)
            started = time.perf_counter()
            sockets = await storm(ws_base, slug, readers)
            elapsed = time.perf_counter() - started
            await asyncio.sleep(0.2)  # the last parks
            user1, sys1 = cpu(server.pid)
            async with httpx.AsyncClient(base_url=base, timeout=30, headers=headers) as client:

                async def publish(n: int) -> None:
                    body = {"headline": f"live {n}", "body": "a typical paragraph " * 12}
                    response = await client.post(f"/api/feeds/{slug}/briefs", json=body)
                    response.raise_for_status()

                await deliveries([*warm, *sockets], publish, briefs)
            user2, sys2 = cpu(server.pid)
            for ws in [*warm, *sockets]:
                await ws.close()
            sent = (readers + len(warm)) * briefs
            return {
                "ms_per_join": (user1 - user0 + sys1 - sys0) * 1000 / readers,
                "user_ms_per_join": (user1 - user0) * 1000 / readers,
                "joins_per_s": readers / elapsed,
                "us_per_delivery": (user2 - user1 + sys2 - sys1) * 1e6 / sent,
                "user_us_per_delivery": (user2 - user1) * 1e6 / sent,
            }

        try:
            return asyncio.run(run())
        except BaseException:
            print((data / "server.log").read_text()[-3000:], file=sys.stderr)
            raise
    finally:
        procs = [p for p in (profiler, server, redis) if p is not None]
        for proc in procs:
            proc.send_signal(signal.SIGINT if proc is profiler else signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--briefs", type=int, default=100, help="published after the storm")
    other = "another checkout (with its own .venv) to measure alternately"
    parser.add_argument("--against", type=Path, action="append", default=[], help=other)
    parser.add_argument("--profile", action="store_true", help="py-spy each storm")
    args = parser.parse_args()
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) if args.profile else None
    if args.profile and py_spy is None:
        raise SystemExit("--profile needs py-spy in this .venv (pip install py-spy)")
    roots = [ROOT, *args.against]
    results: dict[str, list[dict[str, Any]]] = {str(r): [] for r in roots}
    with tempfile.TemporaryDirectory(prefix="livefeed-joins-") as tmp:
        for n in range(args.rounds):
            for root in roots:
                figures = measure(root, args.readers, args.briefs, Path(tmp), py_spy)
                results[str(root)].append(figures)
                print(
                    f"round {n + 1} {root}: {figures['ms_per_join']:.3f} ms CPU per join "
                    f"(user {figures['user_ms_per_join']:.3f}), "
                    f"{figures['joins_per_s']:.0f} joins/s; "
                    f"{figures['us_per_delivery']:.2f} us CPU per delivery "
                    f"(user {figures['user_us_per_delivery']:.2f})",
                    flush=True,
                )
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
