"""The load generator's client processes: readers that time every brief, and editors that publish.

Each process runs one asyncio loop and obeys commands from the orchestrator (``bench/run.py``) sent
over a pipe: ``connect`` a group of readers, ``expect`` a set of briefs and report what arrived,
``close`` a group, ``publish`` as a few concurrent editors, ``exit``. Every wait has a deadline.
Each answer carries the process's CPU seconds, so the orchestrator can tell when the load
generator, not the server, is the limit.

A reader is ready once it has its initial backlog: livefeed's ``snapshot`` frame, or the first
``backlog`` brief frames from the reference, Nchan or Node (they send the same frame text). A
reader may offer permessage-deflate (``offer_deflate``); it then counts the compressed bytes it
read off the socket, as every reader does, and parses the inflated frame. Every ``brief`` frame
after that is a live delivery: the reader parses it, takes ``seq`` and ``sent_ns`` from the
body's marker and records the latency, duplicates and out-of-order arrivals.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import traceback
from array import array
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import orjson
from briefs import MARK, SEED_SEQ, publish_payload
from stats import own_cpu, raise_nofile
from wire import WebSocketClient

IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)


@dataclass
class Group:
    """Readers connected together (the main readers, a join storm) and what they received."""

    backlog: int
    readers: list[Reader] = field(default_factory=list)
    latencies: array[int] = field(default_factory=lambda: array("q"))
    seqs: array[int] = field(default_factory=lambda: array("q"))
    # seq -> [count, max recv_ns, bytes on the wire in all]
    per_seq: dict[int, list[int]] = field(default_factory=dict)
    frame_bytes: int = 0
    other: Counter[str] = field(default_factory=Counter)


class Reader(WebSocketClient):
    """One reader: waits for its backlog, then records every live brief."""

    def __init__(self, group: Group, host: str, path: str, offer_deflate: bool = False) -> None:
        super().__init__(host, path, offer_deflate)
        self.group = group
        self.start_ns = time.time_ns()
        self.open_ns = 0
        self.first_ns = 0
        self.ready_ns = 0
        self.ready_wire = 0  # wire_bytes when the backlog was complete
        self.backlog_seen = 0
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.got = bytearray(64)
        self.unique = 0
        self.duplicates = 0
        self.out_of_order = 0
        self.last_seq = 0

    def on_open(self, now_ns: int) -> None:
        self.open_ns = now_ns

    def on_message(self, payload: bytes, now_ns: int) -> None:
        if not self.first_ns:
            self.first_ns = now_ns
        frame = orjson.loads(payload)
        kind = frame.get("type")
        group = self.group
        if kind == "brief":
            if not self.ready_ns:  # the reference's backlog
                self.backlog_seen += 1
                if self.backlog_seen >= group.backlog:
                    self._ready(now_ns)
                return
            match = MARK.search(frame["brief"]["body"])
            if match is None:
                group.other["brief without marker"] += 1
                return
            seq, sent = int(match[1]), int(match[2])
            if seq == SEED_SEQ:  # a backlog brief beyond the first ``backlog`` (Nchan's can be)
                group.other["extra backlog brief"] += 1
                return
            self._deliver(seq, sent, now_ns, len(payload))
        elif kind == "snapshot":
            self.backlog_seen = len(frame["briefs"])
            if self.backlog_seen < group.backlog:
                group.other[f"snapshot of {self.backlog_seen} briefs"] += 1
            self._ready(now_ns)
        else:
            group.other[str(kind)] += 1

    def _ready(self, now_ns: int) -> None:
        self.ready_ns = now_ns
        self.ready_wire = self.wire_bytes
        if not self.ready.done():
            self.ready.set_result(None)

    def _deliver(self, seq: int, sent: int, now_ns: int, size: int) -> None:
        group = self.group
        if seq >= len(self.got):
            self.got.extend(bytes(seq + 64 - len(self.got)))
        if self.got[seq]:
            self.duplicates += 1
            return
        self.got[seq] = 1
        self.unique += 1
        if seq < self.last_seq:
            self.out_of_order += 1
        self.last_seq = seq
        group.latencies.append(now_ns - sent)
        group.seqs.append(seq)
        group.frame_bytes += size
        agg = group.per_seq.get(seq)
        if agg is None:
            group.per_seq[seq] = [1, now_ns, self.message_wire]
        else:
            agg[0] += 1
            agg[2] += self.message_wire
            if now_ns > agg[1]:
                agg[1] = now_ns

    def on_closed(self) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(self.error or f"closed {self.close_code}"))
            self.ready.exception()  # retrieved: a failed connect is counted, not raised


class Worker:
    """The state of one client process."""

    def __init__(self, index: int, sources: list[str]) -> None:
        self.index = index
        self.sources = sources
        self.groups: dict[str, Group] = {}
        self._next_source = 0

    def _source(self) -> str:
        self._next_source = (self._next_source + 1) % len(self.sources)
        return self.sources[self._next_source]

    async def _open(
        self, group: Group, host: str, port: int, path: str, offer_deflate: bool
    ) -> Reader:
        """One TCP connection from one of our 127.0.0.x source addresses, then the handshake."""
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        reader = Reader(group, f"{host}:{port}", path, offer_deflate)
        group.readers.append(reader)
        try:
            sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.bind((self._source(), 0))
            sock.setblocking(False)
            await loop.sock_connect(sock, (host, port))
            await loop.create_connection(lambda: reader, sock=sock)
        except OSError as exc:
            sock.close()
            reader.error = f"connect: {type(exc).__name__}: {exc}"
            reader.close_code = 1006
            if not reader.ready.done():
                reader.ready.set_exception(exc)
                reader.ready.exception()
        return reader

    async def connect(
        self,
        name: str,
        host: str,
        port: int,
        path: str,
        count: int,
        concurrency: int,
        backlog: int,
        timeout: float,
        offer_deflate: bool = False,
    ) -> dict[str, Any]:
        """Connect ``count`` readers, at most ``concurrency`` handshakes in flight at once;
        ``offer_deflate`` offers permessage-deflate as a browser does."""
        cpu0 = own_cpu()
        group = self.groups[name] = Group(backlog)
        gate = asyncio.Semaphore(concurrency)
        deadline = time.monotonic() + timeout

        async def one() -> None:
            async with gate:
                reader = await self._open(group, host, port, path, offer_deflate)
                left = max(deadline - time.monotonic(), 0.01)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(reader.ready), left)

        await asyncio.gather(*(one() for _ in range(count)))
        ready = [r for r in group.readers if r.ready_ns]
        errors = Counter(
            (r.error or f"no backlog after {timeout:.0f} s")[:120]
            for r in group.readers
            if not r.ready_ns
        )
        return {
            "ready": len(ready),
            "failed": count - len(ready),
            "errors": dict(errors.most_common(5)),
            "start_ns": min((r.start_ns for r in group.readers), default=0),
            "ready_ns": max((r.ready_ns for r in ready), default=0),
            "first_frame_ms": [(r.first_ns - r.start_ns) / 1e6 for r in ready],
            "ready_ms": [(r.ready_ns - r.start_ns) / 1e6 for r in ready],
            "open_ms": [(r.open_ns - r.start_ns) / 1e6 for r in ready],
            "backlog_sizes": dict(Counter(r.backlog_seen for r in ready)),
            "cpu": own_cpu() - cpu0,
        }

    async def expect(self, name: str, seqs: list[int], timeout: float) -> dict[str, Any]:
        """Wait until every ready reader has every brief in ``seqs`` (or the deadline); report."""
        group = self.groups[name]
        wanted = set(seqs)
        readers = [r for r in group.readers if r.ready_ns]
        deadline = time.monotonic() + timeout

        def has_all(reader: Reader) -> bool:
            got = reader.got
            return all(s < len(got) and got[s] for s in wanted)

        def all_delivered() -> bool:  # cheap: one lookup per brief, not per reader
            return all(group.per_seq.get(s, (0,))[0] >= len(readers) for s in wanted)

        pending = [r for r in readers if r.is_open]
        checked = time.monotonic()
        while time.monotonic() < deadline and not all_delivered():
            await asyncio.sleep(0.05)
            if time.monotonic() - checked > 1.0:  # some reader closed? then do not wait for it
                checked = time.monotonic()
                pending = [r for r in pending if r.is_open and not has_all(r)]
                if not pending:
                    break
        received = sum(sum(1 for s in wanted if s < len(r.got) and r.got[s]) for r in readers)
        closed = Counter(
            f"{r.close_code} {r.error or ''}".strip()[:120] for r in readers if not r.is_open
        )
        keep = [i for i, s in enumerate(group.seqs) if s in wanted]
        return {
            "readers": len(readers),
            "expected": len(readers) * len(wanted),
            "received": received,
            "incomplete_readers": sum(1 for r in readers if not has_all(r)),
            "duplicates": sum(r.duplicates for r in readers),
            "out_of_order": sum(r.out_of_order for r in readers),
            "closed": dict(closed.most_common(5)),
            "closed_count": sum(closed.values()),
            "per_seq": {s: group.per_seq[s] for s in wanted if s in group.per_seq},
            "latency_ns": array("q", (group.latencies[i] for i in keep)).tobytes(),
            "frame_bytes": group.frame_bytes,
            "socket_bytes": sum(r.wire_bytes - r.ready_wire for r in readers),
            "deflate_readers": sum(1 for r in readers if r.deflate),
            "deliveries_total": len(group.seqs),
            "other_frames": dict(group.other),
            "cpu_total": own_cpu(),
        }

    async def cpu(self) -> dict[str, Any]:
        return {"cpu_total": own_cpu()}

    async def close(self, name: str, timeout: float) -> dict[str, Any]:
        """Close a group with the closing handshake; abort whatever has not gone by the deadline."""
        group = self.groups.pop(name, None)
        if group is None:
            return {"closed": 0, "aborted": 0}
        for reader in group.readers:
            reader.close()
        waiting = [r.lost for r in group.readers if r.transport is not None]
        _, slow = await asyncio.wait(waiting, timeout=timeout) if waiting else (set(), set())
        aborted = 0
        for reader in group.readers:
            if not reader.lost.done():
                reader.abort()
                aborted += 1
        return {"closed": len(group.readers) - aborted, "aborted": aborted, "slow": len(slow)}

    async def publish(
        self, host: str, port: int, feed: str, token: str, editors: int, count: int, timeout: float
    ) -> dict[str, Any]:
        """``editors`` concurrent editors post ``count`` briefs in all, or until ``timeout``."""
        cpu0 = own_cpu()
        statuses: Counter[str] = Counter()
        latencies: list[float] = []
        issued = 0
        deadline = time.monotonic() + timeout
        path = f"/api/feeds/{feed}/briefs"

        async def editor() -> None:
            nonlocal issued
            connection = Editor(host, port, token)
            try:
                while issued < count and time.monotonic() < deadline:
                    issued += 1
                    seq = 1_000_000 + self.index * 100_000 + issued
                    body = orjson.dumps(publish_payload(seq, time.time_ns()))
                    t0 = time.perf_counter()
                    try:
                        status = await asyncio.wait_for(connection.post(path, body), 30)
                        statuses[str(status)] += 1
                    except (
                        OSError,
                        EOFError,
                        asyncio.LimitOverrunError,
                        TimeoutError,
                        ValueError,
                    ) as exc:
                        statuses[type(exc).__name__] += 1
                        await connection.close()
                    latencies.append((time.perf_counter() - t0) * 1000)
            finally:
                await connection.close()

        start = time.time_ns()
        await asyncio.gather(*(editor() for _ in range(editors)))
        end = time.time_ns()
        return {
            "statuses": dict(statuses),
            "accepted": statuses["201"],
            "start_ns": start,
            "end_ns": end,
            "latency_ms": latencies,
            "cpu": own_cpu() - cpu0,
        }


class Editor:
    """One editor's keep-alive HTTP/1.1 connection: POST a JSON body, read the whole answer.

    Hand-written for the same reason as the readers' client: httpx spends about 1.5 ms of CPU
    per request, so 16 httpx editors on a 2-core machine take the CPU the server needs and the
    generator, not livefeed, sets the rate. This costs a tenth of that.
    """

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port = host, port
        self.head = (
            f"Host: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\n"
        )
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> int:
        """The response's status; ValueError for a response this client cannot read."""
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        request = f"POST {path} HTTP/1.1\r\n{self.head}Content-Length: {len(body)}\r\n\r\n"
        self.writer.write(request.encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length, keep_alive = None, True
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                keep_alive = False
        if length is None:
            raise ValueError("response without Content-Length")
        await self.reader.readexactly(length)
        if not keep_alive:
            await self.close()
        return status

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


async def _serve(conn: Connection, worker: Worker, idle_limit: float, lifetime: float) -> None:
    """Obey commands until ``exit``, the orchestrator's end of the pipe closes, long silence, or
    the end of ``lifetime``."""
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + lifetime
    while time.monotonic() < deadline:
        readable: asyncio.Future[None] = loop.create_future()

        def wake(future: asyncio.Future[None] = readable) -> None:
            if not future.done():
                future.set_result(None)

        loop.add_reader(conn.fileno(), wake)
        try:
            await asyncio.wait_for(readable, idle_limit)
        except TimeoutError:
            print(f"client {worker.index}: no command for {idle_limit:.0f} s, exiting", flush=True)
            return
        finally:
            loop.remove_reader(conn.fileno())
        try:
            command: dict[str, Any] = conn.recv()
        except EOFError:
            return
        op = command.pop("op")
        if op == "exit":
            for name in list(worker.groups):
                await worker.close(name, 5)
            conn.send({"ok": True})
            return
        try:
            result = await getattr(worker, op)(**command)
            conn.send({"ok": True, **result})
        except Exception:
            conn.send({"ok": False, "error": traceback.format_exc()})


def main(conn: Connection, index: int, sources: list[str]) -> None:
    """Entry point of a client process (``multiprocessing`` target)."""
    raise_nofile()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(conn, Worker(index, sources), idle_limit=3600, lifetime=4 * 3600))
    conn.close()
    os._exit(0)
