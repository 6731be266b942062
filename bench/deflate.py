"""Bytes on the wire and server CPU per delivery, with permessage-deflate on and off, in one run.

    .venv/bin/python bench/deflate.py                      # 2,000 readers, 40 briefs, 2 rounds
    .venv/bin/python bench/deflate.py --readers 500 --briefs 20 --rounds 1

Loopback only, every step bounded. It starts its own ``redis-server`` and, per round, one
``livefeed serve`` with ``LIVEFEED_WS_COMPRESSION=0`` and one with ``=1`` (the order alternating
between rounds, so drift on a shared machine does not favour one). Every reader offers what
Chromium offers (``permessage-deflate; client_max_window_bits``) and counts the bytes it
receives; the first reader inflates every compressed message and checks it is the JSON a frame
should be. Briefs (``bench/briefs.py``: 0.5-1.5 KiB bodies) are published one every
``--pace`` seconds; server CPU (utime and stime from /proc) over the publishing, divided by the
deliveries, is the CPU per delivery (it includes the publish requests, the same in both modes).
It asserts nothing about time: it prints the figures and the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import zlib
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from briefs import publish_payload
from servers import HOST, Livefeed, start_redis
from stats import CLOCK_TICKS, raise_nofile, rss_kib
from wire import WebSocketClient

OFFER = "permessage-deflate; client_max_window_bits"  # what Chromium sends


class CountingReader(WebSocketClient):
    """Offers deflate as a browser does; counts bytes and messages; optionally inflates each."""

    def __init__(self, host: str, path: str, check: bool) -> None:
        super().__init__(host, path)
        self.bytes = 0
        self.messages = 0
        self.compressed = 0
        self.extensions = ""
        self.check = check
        self.bad: list[str] = []
        self.live = asyncio.get_running_loop().create_future()
        self._rsv1 = False

    def connection_made(self, transport: object) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(
            (
                f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {self._key.decode()}\r\n"
                f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: {OFFER}\r\n\r\n"
            ).encode()
        )

    def data_received(self, data: bytes) -> None:
        self.bytes += len(data)
        if not self.is_open:
            head = data.split(b"\r\n\r\n", 1)[0].decode(errors="replace").lower()
            for line in head.split("\r\n"):
                if line.startswith("sec-websocket-extensions:"):
                    self.extensions = line.split(":", 1)[1].strip()
        super().data_received(data)

    def _frame(self, b0: int, payload: bytes, now: int) -> None:
        self._rsv1 = bool(b0 & 0x40)
        super()._frame(b0, payload, now)

    def on_message(self, payload: bytes, now_ns: int) -> None:
        self.messages += 1
        if self._rsv1:
            self.compressed += 1
            if self.check:
                payload = zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")
        if self.check or not self.live.done():
            try:
                frame = json.loads(payload)
            except ValueError:
                self.bad.append(payload[:40].decode(errors="replace"))
                return
            if frame.get("type") == "live" and not self.live.done():
                self.live.set_result(None)


def cpu(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of one process."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS


async def measure(lf: Livefeed, readers: int, briefs: int, pace: float) -> dict[str, float]:
    """Connect the readers, publish, wait until each has every brief; the figures."""
    slug = f"deflate-{int(time.time() * 1000) % 10**8}"
    lf.create_feed(slug)
    loop = asyncio.get_running_loop()
    rss0 = rss_kib(lf.server.pid, tree=False)
    clients: list[CountingReader] = []
    gate = asyncio.Semaphore(100)

    async def join(n: int) -> None:
        async with gate:
            _, reader = await loop.create_connection(
                lambda: CountingReader(HOST, f"/ws/feeds/{slug}", n == 0), HOST, lf.server.port
            )
            clients.append(reader)
            await asyncio.wait_for(reader.live, 60)

    await asyncio.wait_for(asyncio.gather(*(join(n) for n in range(readers))), 300)
    rss1 = rss_kib(lf.server.pid, tree=False)
    await asyncio.sleep(1)
    before = [(c.bytes, c.messages) for c in clients]
    user0, sys0 = cpu(lf.server.pid)
    async with httpx.AsyncClient(base_url=lf.base, headers=lf.headers(), timeout=30) as http:
        for seq in range(briefs):
            response = await http.post(
                f"/api/feeds/{slug}/briefs", json=publish_payload(seq + 1, time.time_ns())
            )
            response.raise_for_status()
            await asyncio.sleep(pace)
    deadline = loop.time() + 120
    while loop.time() < deadline:
        if all(c.messages - m >= briefs for c, (_, m) in zip(clients, before, strict=True)):
            break
        await asyncio.sleep(0.1)
    user1, sys1 = cpu(lf.server.pid)
    got = sum(min(c.messages - m, briefs) for c, (_, m) in zip(clients, before, strict=True))
    received = sum(c.bytes - b for c, (b, _) in zip(clients, before, strict=True))
    for c in clients:
        c.close()
    await asyncio.sleep(0.5)
    deliveries = readers * briefs
    return {
        "negotiated": float(bool(clients[0].extensions)),
        "extensions": clients[0].extensions,  # type: ignore[dict-item]
        "loss": deliveries - got,
        "bad": len(clients[0].bad),
        "compressed_share": clients[0].compressed / max(clients[0].messages, 1),
        "bytes_per_delivery": received / deliveries,
        "user_us": (user1 - user0) / deliveries * 1e6,
        "total_us": (user1 - user0 + sys1 - sys0) / deliveries * 1e6,
        "rss_kib_per_reader": (rss1 - rss0) / readers,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--readers", type=int, default=2000)
    parser.add_argument("--briefs", type=int, default=40)
    parser.add_argument("--pace", type=float, default=0.1, help="seconds between briefs")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    raise_nofile()
    results: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory(prefix="livefeed-deflate-") as tmp_dir:
        tmp = Path(tmp_dir)
        redis = start_redis(tmp)
        try:
            url = f"redis://{HOST}:{redis.port}/0"
            for round_ in range(args.rounds):
                for mode in ("off", "on") if round_ % 2 == 0 else ("on", "off"):
                    env = {"LIVEFEED_WS_COMPRESSION": "1" if mode == "on" else "0",
                           "LIVEFEED_HEARTBEAT_INTERVAL": "600"}  # fmt: skip
                    lf = Livefeed(tmp, url, None, [], env)
                    try:
                        figures = asyncio.run(measure(lf, args.readers, args.briefs, args.pace))
                    finally:
                        lf.server.stop()
                    results[mode].append(figures)
                    print(f"round {round_ + 1} {mode:>3}: {figures}", flush=True)
        finally:
            redis.stop()
    print(f"\n{args.readers} readers x {args.briefs} briefs, per delivery (round 1, round 2 ...)")
    rows = [("bytes_per_delivery", "bytes on the wire"), ("total_us", "CPU us (u+s)"),
            ("user_us", "CPU us (user)"), ("rss_kib_per_reader", "RSS KiB/reader")]  # fmt: skip
    for key, label in rows:
        off = [r[key] for r in results["off"]]
        on = [r[key] for r in results["on"]]
        ratios = ", ".join(f"{b / a:.2f}" for a, b in zip(off, on, strict=True) if a)
        print(f"  {label:<18} off {', '.join(f'{v:.1f}' for v in off):<16} "
              f"on {', '.join(f'{v:.1f}' for v in on):<16} on/off {ratios}")  # fmt: skip
    loss = sum(r["loss"] + r["bad"] for rs in results.values() for r in rs)
    print(f"  loss or bad frames: {loss}")
    return 1 if loss else 0


if __name__ == "__main__":
    sys.exit(main())
