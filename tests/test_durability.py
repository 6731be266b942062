"""Nothing acknowledged is lost: SIGKILL of the server, and of the embedded Redis."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx

from helpers import LivefeedServer, RedisProcess, auth, make_feed, stored_ids, wait_until


def publish_until_stopped(
    base: str, slug: str, acknowledged: list[str], stop: threading.Event
) -> None:
    """Publish one brief after another; record the id of each that got a 201."""
    with httpx.Client(base_url=base, timeout=5) as client:
        for n in range(10_000):
            if stop.is_set():
                return
            try:
                response = client.post(
                    f"/api/feeds/{slug}/briefs", json={"headline": f"n{n}"}, headers=auth()
                )
            except httpx.HTTPError:
                return  # the server died mid-request: that brief was never acknowledged
            if response.status_code == 201:
                acknowledged.append(response.json()["id"])


def test_briefs_acknowledged_before_a_server_sigkill_survive_it(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    server = LivefeedServer(redis_server.url, "kill-" + uuid.uuid4().hex[:8])
    server.start(log_dir=tmp_path)
    try:
        with httpx.Client(base_url=server.base) as client:
            slug = make_feed(client)
        acknowledged: list[str] = []
        stop = threading.Event()
        worker = threading.Thread(
            target=publish_until_stopped, args=(server.base, slug, acknowledged, stop)
        )
        worker.start()
        wait_until(lambda: len(acknowledged) >= 100, 30, "publishing did not get going")
        server.kill()
        stop.set()
        worker.join(10)
        server.start(log_dir=tmp_path)
        stored = stored_ids(server.base, slug)
        assert set(acknowledged) <= set(stored)
        assert len(stored) == len(set(stored))
    finally:
        server.stop()


def embedded_redis_pid(data_dir: Path) -> int:
    return int((data_dir / "redis.pid").read_text().strip())


def test_embedded_redis_keeps_every_acknowledged_brief_through_sigkills(tmp_path: Path) -> None:
    """Kill livefeed (its Redis child follows), restart it; then kill the Redis child itself."""
    data_dir = tmp_path / "var"
    server = LivefeedServer("", "livefeed")
    server.start("--data-dir", str(data_dir), log_dir=tmp_path)
    try:
        with httpx.Client(base_url=server.base) as client:
            slug = make_feed(client)
            first = [
                client.post(f"/api/feeds/{slug}/briefs", json={"headline": f"a{n}"}, headers=auth())
                for n in range(50)
            ]
        assert all(r.status_code == 201 for r in first)
        redis_pid = embedded_redis_pid(data_dir)

        server.kill()
        wait_until(lambda: not _alive(redis_pid), 15, "embedded Redis outlived its livefeed")
        server.start("--data-dir", str(data_dir), log_dir=tmp_path)
        assert set(stored_ids(server.base, slug)) == {r.json()["id"] for r in first}

        with httpx.Client(base_url=server.base) as client:
            burst = [
                client.post(f"/api/feeds/{slug}/briefs", json={"headline": f"b{n}"}, headers=auth())
                for n in range(50)
            ]
        assert all(r.status_code == 201 for r in burst)
        redis_pid = embedded_redis_pid(data_dir)
        os.kill(redis_pid, signal.SIGKILL)
        wait_until(lambda: _restarted(data_dir, redis_pid), 30, "embedded Redis was not restarted")
        wait_until(lambda: _healthy(server.base), 30, "livefeed did not recover")
        stored = set(stored_ids(server.base, slug))
        assert {r.json()["id"] for r in first + burst} <= stored
    finally:
        server.stop()
    assert not (data_dir / "redis.url").exists(), "a clean stop removes the embedded Redis address"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return b"redis-server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _restarted(data_dir: Path, old_pid: int) -> bool:
    try:
        return embedded_redis_pid(data_dir) != old_pid
    except (OSError, ValueError):
        return False


def _healthy(base: str) -> bool:
    try:
        return httpx.get(base + "/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_second_server_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    first = LivefeedServer("", "livefeed")
    first.start("--data-dir", str(data_dir), log_dir=tmp_path)
    try:
        second = LivefeedServer("", "livefeed")
        try:
            second.start("--data-dir", str(data_dir), log_dir=tmp_path)
        except RuntimeError as exc:
            assert "in use by another livefeed" in str(exc)
        else:
            second.stop()
            raise AssertionError("two servers shared one embedded data dir")
    finally:
        first.stop()
    time.sleep(0)


async def test_readers_stay_connected_through_a_redis_restart_and_get_what_follows(
    tmp_path: Path,
) -> None:
    import asyncio
    import json

    import websockets

    redis_proc = RedisProcess(tmp_path / "redis")
    redis_proc.start()
    server = LivefeedServer(redis_proc.url, "outage")
    server.start(log_dir=tmp_path)
    try:
        async with httpx.AsyncClient(base_url=server.base, timeout=10) as client:
            slug = "outage-feed"
            await client.post(
                "/api/feeds", json={"slug": slug, "title": "t", "timezone": "UTC"}, headers=auth()
            )
            before = (
                await client.post(
                    f"/api/feeds/{slug}/briefs", json={"headline": "before"}, headers=auth()
                )
            ).json()
            async with websockets.connect(
                f"{server.ws_base}/ws/feeds/{slug}?since={before['id']}"
            ) as ws:
                assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "live"

                redis_proc.stop()
                down = await client.post(
                    f"/api/feeds/{slug}/briefs", json={"headline": "lost"}, headers=auth()
                )
                assert down.status_code == 503
                assert down.json()["error"]["code"] == "unavailable"
                assert int(down.headers["retry-after"]) > 0
                assert (await client.get("/healthz")).status_code == 503

                redis_proc.start()
                after = []
                for n in range(3):
                    # A client retries a 503 with its Idempotency-Key: one brief, however often.
                    headers = {**auth(), "Idempotency-Key": f"after-{n}"}
                    for _ in range(20):
                        response = await client.post(
                            f"/api/feeds/{slug}/briefs", json={"headline": f"after {n}"},
                            headers=headers,
                        )  # fmt: skip
                        if response.status_code != 503:
                            break
                        await asyncio.sleep(0.5)
                    assert response.status_code == 201, response.text
                    after.append(response.json()["id"])
                got: list[str] = []
                async with asyncio.timeout(20):
                    while len(got) < 3:
                        frame = json.loads(await ws.recv())
                        if frame["type"] == "brief":
                            got.append(frame["event_id"])
                assert got == after, "the open socket carried on, without the refused brief"
    finally:
        server.stop()
        redis_proc.stop()


def unread_by(port: int) -> bool:
    """Whether any TCP connection to ``port`` holds bytes its server has not read yet."""
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            unread = int(fields[4].split(":")[1], 16)  # rx_queue
            if local_port == port and fields[3] == "01" and unread:  # 01: established
                return True
    return False


async def test_a_graceful_stop_tells_readers_to_reconnect_and_finishes_publishes(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    """SIGTERM: open sockets get 1001 "going away"; a publish in flight still gets its 201."""
    import asyncio

    import websockets

    server = LivefeedServer(redis_server.url, "graceful-" + uuid.uuid4().hex[:6])
    server.start(log_dir=tmp_path)
    try:
        with httpx.Client(base_url=server.base) as client:
            slug = make_feed(client)
        readers = [await websockets.connect(f"{server.ws_base}/ws/feeds/{slug}") for _ in range(5)]
        for ws in readers:
            await asyncio.wait_for(ws.recv(), 5)  # the snapshot
        assert server.proc is not None
        started, stopping = threading.Event(), threading.Event()
        answer: list[httpx.Response] = []

        def slow_body() -> Iterator[bytes]:
            yield b'{"headline": "sent while '
            started.set()
            stopping.wait(30)  # the server is told to stop meanwhile
            yield b'the server stops"}'

        def slow_publish() -> None:
            headers = {**auth(), "content-type": "application/json"}
            answer.append(
                httpx.post(
                    f"{server.base}/api/feeds/{slug}/briefs",
                    content=slow_body(),
                    headers=headers,
                    timeout=15,
                )
            )

        publisher = threading.Thread(target=slow_publish)
        publisher.start()
        try:
            assert started.wait(30)
            # The request is in flight once the server has read what was sent of it.
            wait_until(lambda: not unread_by(server.port), 30, "the server did not read it")
            server.proc.send_signal(signal.SIGTERM)
        finally:
            stopping.set()
        for ws in readers:
            with contextlib.suppress(websockets.ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
            assert ws.close_code == 1001
        publisher.join(15)
        assert answer and answer[0].status_code == 201, "the publish in flight was finished"
        assert server.proc.wait(15) in (0, 128 + signal.SIGTERM)
        server.start(log_dir=tmp_path)
        assert answer[0].json()["id"] in stored_ids(server.base, slug)
    finally:
        server.stop()
