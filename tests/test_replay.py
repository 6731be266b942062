"""Replaying a day over the WebSocket: order exact, timing checked only loosely."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from helpers import LivefeedServer, RedisProcess, auth, livefeed, make_feed, publish

# Times of the briefs on 2024-05-01 (UTC feed): gaps of 30 s, 60 s, 120 s, then five quiet hours.
TIMES = ["10:00:00", "10:00:30", "10:01:30", "10:03:30", "15:03:30"]


@pytest.fixture(scope="module")
def replay_server(
    redis_server: RedisProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LivefeedServer]:
    """A server whose quiet-gap cap is short, so skips show without slow tests."""
    server = LivefeedServer(
        redis_server.url, "replay-" + uuid.uuid4().hex[:6], LIVEFEED_REPLAY_MAX_GAP="0.3"
    )
    server.start(log_dir=tmp_path_factory.mktemp("replay-logs"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def day_feed(
    replay_server: LivefeedServer,
    redis_server: RedisProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> str:
    with httpx.Client(base_url=replay_server.base) as client:
        slug = make_feed(client, timezone="UTC")
    path = tmp_path_factory.mktemp("replay") / "day.jsonl"
    path.write_text(
        "".join(
            json.dumps({"published_at": f"2024-05-01T{t}.000Z", "headline": f"At {t}"}) + "\n"
            for t in TIMES
        )
    )
    done = livefeed(
        "import",
        slug,
        str(path),
        "--redis-url",
        redis_server.url,
        "--key-prefix",
        replay_server.prefix,
    )
    assert done.returncode == 0, done.stderr
    return slug


async def play(
    url: str, controls: dict[str, dict[str, Any]] | None = None
) -> list[tuple[float, dict[str, Any]]]:
    """Collect (seconds since connect, frame) until the server closes; send controls on cue."""
    frames: list[tuple[float, dict[str, Any]]] = []
    started = time.monotonic()
    async with websockets.connect(url) as ws:
        async with asyncio.timeout(20):
            async for raw in ws:
                frame = json.loads(raw)
                frames.append((time.monotonic() - started, frame))
                cue = frame.get("brief", {}).get("headline") or frame["type"]
                if controls and cue in controls:
                    await ws.send(json.dumps(controls.pop(cue)))
        assert ws.close_code == 1000
    return frames


def kinds(frames: list[tuple[float, dict[str, Any]]]) -> list[str]:
    return [f.get("brief", {}).get("headline") or f["type"] for _, f in frames]


async def test_replay_plays_the_day_in_order_with_gaps_divided_by_the_speed(
    replay_server: LivefeedServer, day_feed: str
) -> None:
    frames = await play(f"{replay_server.ws_base}/ws/feeds/{day_feed}?replay=2024-05-01&speed=600")
    assert (
        kinds(frames)
        == [
            "replay_start",
            "replay_skip",  # midnight to just before 10:00
            *[f"At {t}" for t in TIMES[:4]],
            "replay_skip",
            f"At {TIMES[4]}",
            "replay_end",
        ]
    )
    start = frames[0][1]
    assert (
        start["date"] == "2024-05-01"
        and start["speed"] == 600
        and start["at"] == "2024-05-01T00:00:00.000Z"
    )
    at = {kinds(frames)[i]: t for i, (t, _) in enumerate(frames)}
    # 30 s, 60 s and 120 s of the day at 600x are 0.05, 0.1 and 0.2 s: checked loosely, in order.
    spread = at["At 10:03:30"] - at["At 10:00:00"]
    assert 0.2 < spread < 5
    skip = frames[6][1]
    assert (
        skip["from"] < skip["to"] == "2024-05-01T15:00:30.000Z"
    )  # the cap, 0.3 s at 600x, is 3 min


async def test_replay_from_a_time_sends_what_came_before_at_once(
    replay_server: LivefeedServer, day_feed: str
) -> None:
    frames = await play(
        f"{replay_server.ws_base}/ws/feeds/{day_feed}?replay=2024-05-01&speed=60&from=10:01"
    )
    assert kinds(frames)[:3] == ["replay_start", "At 10:00:00", "At 10:00:30"]
    assert frames[0][1]["at"] == "2024-05-01T10:01:00.000Z"
    # Counted from replay_start, not from connecting, which a busy machine can make slow.
    assert frames[2][0] - frames[0][0] < 1.0, "earlier briefs are state, not replayed in time"


async def test_pause_resume_speed_and_seek_are_obeyed(
    replay_server: LivefeedServer, day_feed: str
) -> None:
    url = f"{replay_server.ws_base}/ws/feeds/{day_feed}?replay=2024-05-01&speed=600&from=10:00:10"
    async with websockets.connect(url) as ws:

        async def next_frame() -> dict[str, Any]:
            frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
            return frame

        assert (await next_frame())["type"] == "replay_start"
        assert (await next_frame())["brief"]["headline"] == "At 10:00:00"
        await ws.send(json.dumps({"action": "pause"}))
        state = await next_frame()
        assert state["type"] == "replay_state" and state["paused"] is True
        with pytest.raises(TimeoutError):  # nothing plays while paused (30 s of day = 50 ms here)
            await asyncio.wait_for(ws.recv(), 0.5)
        await ws.send(json.dumps({"action": "speed", "speed": 1200}))
        assert (await next_frame())["speed"] == 1200
        await ws.send(json.dumps({"action": "resume"}))
        assert (await next_frame())["paused"] is False
        assert (await next_frame())["brief"]["headline"] == "At 10:00:30"
        await ws.send(json.dumps({"action": "seek", "to": "10:02"}))
        restart = await next_frame()
        assert restart["type"] == "replay_start" and restart["at"] == "2024-05-01T10:02:00.000Z"
        again = [(await next_frame())["brief"]["headline"] for _ in range(3)]
        assert again == ["At 10:00:00", "At 10:00:30", "At 10:01:30"]
        await ws.send("not json")
        assert (await next_frame())["type"] == "error"


@pytest.mark.parametrize(
    "query",
    ["replay=2024-02-30", "replay=someday", "replay=2024-05-01&speed=0", "replay=2024-05-01&speed=-5",
     "replay=2024-05-01&speed=fast", "replay=2024-05-01&speed=1000000", "replay=2024-05-01&speed=nan",
     "replay=2024-05-01&from=25:00"],
)  # fmt: skip
async def test_bad_replay_requests_are_closed_with_4400_and_a_reason(
    replay_server: LivefeedServer, day_feed: str, query: str
) -> None:
    async with websockets.connect(f"{replay_server.ws_base}/ws/feeds/{day_feed}?{query}") as ws:
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
    assert ws.close_code == 4400 and ws.close_reason


async def test_replay_of_an_unknown_feed_is_4404(replay_server: LivefeedServer) -> None:
    async with websockets.connect(f"{replay_server.ws_base}/ws/feeds/nope?replay=2024-05-01") as ws:
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
    assert ws.close_code == 4404


async def test_replay_of_a_day_without_briefs_just_ends(
    replay_server: LivefeedServer, day_feed: str
) -> None:
    frames = await play(f"{replay_server.ws_base}/ws/feeds/{day_feed}?replay=2024-05-02&speed=60")
    assert kinds(frames) == ["replay_start", "replay_end"]


def test_cli_replay_prints_the_day(
    replay_server: LivefeedServer, redis_server: RedisProcess, day_feed: str
) -> None:
    done = livefeed("replay", day_feed, "2024-05-01", "--speed", "10000", "--from", "10:01",
                    "--redis-url", redis_server.url, "--key-prefix", replay_server.prefix)  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("-- 2024-05-01")
    assert [line for line in lines if line[:2].isdigit()] == [f"{t[:5]}  At {t}" for t in TIMES]
    assert lines[-1] == "-- end of the day --"


def test_cli_replay_prints_a_correction_with_its_note(
    replay_server: LivefeedServer, redis_server: RedisProcess
) -> None:
    """A correction made with a note prints it beside the new headline; a silent fix after it
    prints the headline alone."""
    with httpx.Client(base_url=replay_server.base, timeout=10) as client:
        slug = make_feed(client, timezone="UTC")
        brief = publish(client, slug, "Three hurt")
        path = f"/api/feeds/{slug}/briefs/{brief['id']}"
        for change in ({"headline": "Five hurt", "correction_note": "Figure updated"},
                       {"body": "Five people were hurt."}):  # fmt: skip
            assert client.patch(path, json=change, headers=auth()).status_code == 200
    day = brief["published_at"][:10]  # UTC: the feed's zone
    done = livefeed("replay", slug, day, "--speed", "10000",
                    "--redis-url", redis_server.url, "--key-prefix", replay_server.prefix)  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = [line[7:] for line in done.stdout.splitlines() if line[:2].isdigit()]
    assert lines == ["Three hurt", "[corrected] Five hurt — Figure updated", "[updated] Five hurt"]
