"""The benchmark's pure parts and its wire client: the Nchan config, the side-by-side report, and
permessage-deflate as the load generator reads it. Needs neither nginx nor Node (the peers)."""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory

from helpers import ROOT


@pytest.fixture(scope="module")
def bench() -> Iterator[dict[str, ModuleType]]:
    """bench/'s modules, imported as bench/run.py imports them (bench/ on sys.path)."""
    path = str(ROOT / "bench")
    sys.path.insert(0, path)
    try:
        yield {name: importlib.import_module(name) for name in ("nchan", "peers_report", "wire")}
    finally:
        sys.path.remove(path)


# --- the Nchan peer's config -----------------------------------------------------------------------


def test_nchan_config_keeps_every_path_in_its_prefix(
    bench: dict[str, ModuleType], tmp_path: Path
) -> None:
    """The generated nginx.conf writes its pid, log and temp files under its own dir only."""
    command = bench["nchan"].write(tmp_path, "127.0.0.1", 8123, "redis://127.0.0.1:6400/0")
    text = (tmp_path / "nginx.conf").read_text()
    locations = {bench["nchan"].PUBLISH_PATH, bench["nchan"].SUBSCRIBE_PATH}
    paths = [w.rstrip(";") for w in text.split() if w.startswith("/") and w not in locations]
    module = str(bench["nchan"].MODULE)
    assert paths and all(p.startswith(str(tmp_path)) or p == module for p in paths)
    assert f"pid {tmp_path / 'nginx.pid'};" in text
    assert command[:3] == ["nginx", "-p", str(tmp_path)]
    assert "-e" in command  # the error log before the config is read: also in the dir


def test_nchan_config_serves_the_backlog_from_redis(bench: dict[str, ModuleType]) -> None:
    """One worker, a Redis store, and the backlog as `oldest` of a 20-message buffer."""
    text = bench["nchan"].config(Path("/tmp/x"), "127.0.0.1", 8123, "redis://127.0.0.1:6400/0")
    assert "worker_processes 1;" in text
    assert 'nchan_redis_server "redis://127.0.0.1:6400/0";' in text
    assert text.count("nchan_redis_pass bench_redis;") == 2  # publisher and subscriber
    assert "nchan_subscriber_first_message oldest;" in text
    assert text.count("nchan_message_buffer_length 20;") == 2
    assert "listen 127.0.0.1:8123" in text


def test_nchan_missing_is_a_reason_to_skip(
    bench: dict[str, ModuleType], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without the Nchan module the peer is skipped, saying how to install it."""
    monkeypatch.setattr(bench["nchan"], "MODULE", tmp_path / "ngx_nchan_module.so")
    reason = bench["nchan"].available()
    assert reason is not None and "bench/peers/install nchan" in reason


# --- the side-by-side report -------------------------------------------------------------------


def _run(cpu: float, user: float, storm: float, memory: float, p99: float) -> dict[str, Any]:
    return {
        "phases": {"paced": {"completion_ms": {"p50": p99 / 2, "p99": p99, "max": p99 + 1}}},
        "server_cpu_s_per_1000": cpu / 1000,
        "server_user_s_per_1000": user / 1000,
        "server_sys_s_per_1000": (cpu - user) / 1000,
        "storm": {"rate": storm, "server_cpu_ms_per_join": 0.2, "cpu_ms_per_join_rounds": [0.2]},
        "memory_per_reader_kib": memory,
        "wire": {
            "plain": {"wire_bytes_per_delivery": 800.0},
            "deflate": {"wire_bytes_per_delivery": 400.0},
        },
        "lost": 0,
    }


def test_peers_table_shows_the_other_run_in_brackets(bench: dict[str, ModuleType]) -> None:
    """Each server's row has the shown run's figure and, where it differs, the other's."""
    nchan = _run(13.6, 2.0, 3228, 10.2, 181)
    nchan["other"] = _run(11.8, 2.0, 1715, 10.2, 181)
    results = {"nchan": nchan, "livefeed": _run(13.1, 4.4, 1353, 10.1, 222)}
    table = bench["peers_report"].table(results)
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines()[2:]}
    assert set(rows) == {bench["peers_report"].SERVERS["nchan"], "livefeed"}
    nchan_row = rows[bench["peers_report"].SERVERS["nchan"]]
    assert "13.6 (11.8)" in nchan_row and "3,228 (1,715)" in nchan_row
    assert "| 2.0 |" in nchan_row  # the same in both runs: no brackets
    assert "800 / 400" in rows["livefeed"]


def test_targets_say_what_is_still_behind(bench: dict[str, ModuleType]) -> None:
    """Livefeed is judged against the named peer; the misses are listed, the node-less one not."""
    results = {
        "nchan": _run(13.6, 2.0, 3228, 10.2, 181),
        "livefeed": _run(13.1, 4.4, 1353, 10.1, 222),
    }
    verdicts = {row[0].split(" (")[0]: row[3] for row in bench["peers_report"].verdicts(results)}
    assert verdicts["user CPU per delivery ≤ Nchan's"] is False
    assert verdicts["total CPU per delivery ≤ Nchan's"] is True
    assert verdicts["join storm conn/s ≥ Nchan's"] is False
    assert verdicts["memory per reader ≤ Node+ws's"] is None  # Node did not run
    assert verdicts["bytes per brief for a browser ≤ 0.6 x the plain frame"] is True
    text = bench["peers_report"].ratios(results)
    assert "Still behind: user CPU per delivery ≤ Nchan's" in text


# --- permessage-deflate in the load generator's client ------------------------------------------


async def _read_all(wire: ModuleType, port: int, offer: bool, count: int) -> list[Any]:
    """Connect one bench client, collect ``count`` messages with each one's size on the wire."""
    loop = asyncio.get_running_loop()
    got: list[tuple[bytes, int]] = []
    done: asyncio.Future[None] = loop.create_future()

    class Client(wire.WebSocketClient):  # type: ignore[name-defined,misc]
        def on_message(self, payload: bytes, now_ns: int) -> None:
            got.append((payload, self.message_wire))
            if len(got) == count and not done.done():
                done.set_result(None)

    client = Client(f"127.0.0.1:{port}", "/", offer)
    transport, _ = await loop.create_connection(lambda: client, "127.0.0.1", port)
    try:
        await asyncio.wait_for(done, 10)
        return [got, client.deflate, client.close_code]
    finally:
        transport.close()


@pytest.mark.parametrize("fresh_each", [True, False], ids=["no_context_takeover", "takeover"])
def test_wire_client_inflates_permessage_deflate(
    bench: dict[str, ModuleType], fresh_each: bool
) -> None:
    """Offering deflate, the client gets every message intact and counts the compressed size."""
    messages = [(f'{{"type":"brief","n":{i},"body":"' + "the bridge stays shut " * 40 + '"}')
                for i in range(3)]  # fmt: skip

    async def handler(connection: ServerConnection) -> None:
        for message in messages:
            await connection.send(message)
        await connection.wait_closed()

    async def main() -> tuple[list[Any], list[Any]]:
        factory = ServerPerMessageDeflateFactory(server_no_context_takeover=fresh_each)
        async with serve(handler, "127.0.0.1", 0, compression=None, extensions=[factory]) as srv:
            port = next(iter(srv.sockets)).getsockname()[1]
            offered = await _read_all(bench["wire"], port, True, len(messages))
            plain = await _read_all(bench["wire"], port, False, len(messages))
            return offered, plain

    (got, deflated, code), (plain, plain_deflated, _) = asyncio.run(main())
    assert deflated is True and plain_deflated is False and code is None
    assert [payload.decode() for payload, _ in got] == messages
    assert [payload.decode() for payload, _ in plain] == messages
    assert all(size < len(payload) / 2 for payload, size in got)
    assert [size for _, size in plain] == [len(m) + 4 for m in messages]  # 126-length header
