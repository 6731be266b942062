"""Replaying a day as it happened: the day's events in order, original gaps divided by a speed.

``Player`` reads the day from the stream in pages (never one unbounded read) and yields frames
at the right moments; it obeys controls (pause, resume, seek, speed) that arrive on a queue.
``serve_replay`` connects a player to a WebSocket; the CLI's ``replay`` prints what it yields.

Frames, besides the stream's own event frames:
    replay_start   {date, timezone, speed, at, day_start, day_end}  (again after every seek:
                   a client starts a fresh page; events before ``at`` follow at once)
    replay_skip    {from, to}   a quiet gap longer than the cap was shortened
    replay_state   {paused, speed, at}   after pause, resume or a speed change
    replay_end     the day is over
    error          {message}    a control that could not be understood
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import msgspec
from redis.exceptions import RedisError
from starlette.websockets import WebSocket, WebSocketDisconnect

from livefeed.config import Settings
from livefeed.errors import CLOSE_POLICY, CLOSE_TRY_AGAIN_LATER, BadRequest, LivefeedError
from livefeed.limits import MessageBudget
from livefeed.metrics import REPLAYS, REPLAYS_ACTIVE
from livefeed.model.days import Day, parse_clock, parse_day
from livefeed.model.feed import Feed
from livefeed.model.frames import control_frame
from livefeed.model.ids import iso_ms
from livefeed.model.schema import ReplayControl
from livefeed.storage.store import Store
from livefeed.stream.source import to_event

MIN_SPEED = 0.1
MAX_SPEED = 10_000.0
PAGE = 200


def parse_speed(raw: str | None) -> float:
    """A positive number no larger than MAX_SPEED (default 1), else BadRequest."""
    if raw is None or raw == "":
        return 1.0
    try:
        speed = float(raw)
    except ValueError:
        speed = float("nan")
    if not MIN_SPEED <= speed <= MAX_SPEED:  # also false for nan and inf
        raise BadRequest(
            f"speed must be a number from {MIN_SPEED:g} to {MAX_SPEED:g}", code="bad_speed"
        )
    return speed


@dataclass(slots=True)
class Control:
    """A reader's request during a replay."""

    action: str  # pause | resume | seek | speed
    to_ms: int | None = None
    speed: float | None = None


def parse_control(raw: str | bytes, day: Day) -> Control:
    """A control message (``ReplayControl``); BadRequest for anything else."""
    try:
        control = msgspec.json.decode(raw, type=ReplayControl)
    except msgspec.ValidationError as exc:
        if str(exc).endswith("`$.to`"):
            raise BadRequest("seek needs to: HH:MM or HH:MM:SS") from None
        if str(exc).endswith("`$.speed`"):
            parse_speed("nan")  # raises, saying what a speed is
        raise BadRequest("action must be pause, resume, seek or speed") from None
    except msgspec.DecodeError:
        raise BadRequest("controls are JSON objects with an action") from None
    if control.action == "seek":
        if control.to is None:
            raise BadRequest("seek needs to: HH:MM or HH:MM:SS")
        return Control("seek", to_ms=day.at_clock(*parse_clock(control.to)))
    if control.action == "speed":
        return Control("speed", speed=parse_speed(str(control.speed)))
    return Control(control.action)


class Player:
    """Plays one day of one feed at a speed; the clock is in the day's original milliseconds."""

    def __init__(self, store: Store, feed: Feed, day: Day, speed: float, max_gap: float) -> None:
        self.store = store
        self.feed = feed
        self.day = day
        self.speed = speed
        self.max_gap = max_gap
        self.controls: asyncio.Queue[Control] = asyncio.Queue()
        self.paused = False
        self.clock = day.start_ms

    def _start_frame(self) -> str:
        return control_frame(
            "replay_start",
            date=self.day.iso,
            timezone=self.feed.timezone,
            speed=self.speed,
            at=iso_ms(self.clock),
            day_start=iso_ms(self.day.start_ms),
            day_end=iso_ms(self.day.end_ms),
        )

    def _state_frame(self) -> str:
        return control_frame(
            "replay_state", paused=self.paused, speed=self.speed, at=iso_ms(self.clock)
        )

    async def play(self, start_ms: int) -> AsyncIterator[str]:
        """Yield frames as the day unfolds from ``start_ms``; seeks restart from the new time."""
        seek: int | None = start_ms
        while seek is not None:
            self.clock, seek = seek, None
            yield self._start_frame()
            async for frame in self._from_start():
                if isinstance(frame, int):
                    seek = frame
                    break
                yield frame
        yield control_frame("replay_end")

    async def _from_start(self) -> AsyncIterator[str | int]:
        """Events of the day; those before the clock at once, the rest on time. An int is a seek."""
        high = f"{self.day.end_ms}-{2**64 - 1}"
        low = f"{self.day.start_ms}-0"
        while True:
            entries = await self.store.read_range(self.feed.slug, low, high, PAGE)
            for entry in entries:
                if entry.id.ms > self.clock:
                    async for item in self._advance_to(entry.id.ms):
                        yield item
                        if isinstance(item, int):
                            return
                yield to_event(entry).frame
            if len(entries) < PAGE:
                break
            low = f"({entries[-1].id}"

    async def _advance_to(self, target: int) -> AsyncIterator[str | int]:
        """Let the clock run to ``target`` at the current speed, obeying controls meanwhile."""
        loop = asyncio.get_running_loop()
        while True:
            if self.paused:
                control = await self.controls.get()
            else:
                gap_ms = target - self.clock
                if gap_ms <= 0:
                    return
                cap_ms = self.max_gap * self.speed * 1000
                if gap_ms > cap_ms:
                    skipped_to = int(target - cap_ms)
                    yield control_frame(
                        "replay_skip", **{"from": iso_ms(self.clock), "to": iso_ms(skipped_to)}
                    )
                    self.clock = skipped_to
                    gap_ms = target - self.clock
                started = loop.time()
                try:
                    control = await asyncio.wait_for(
                        self.controls.get(), gap_ms / self.speed / 1000
                    )
                except TimeoutError:
                    self.clock = target
                    return
                self.clock = min(
                    target, int(self.clock + (loop.time() - started) * self.speed * 1000)
                )
            if control.action == "seek" and control.to_ms is not None:
                self.paused = False
                yield control.to_ms
                return
            if control.action == "pause":
                self.paused = True
            elif control.action == "resume":
                self.paused = False
            elif control.action == "speed" and control.speed is not None:
                self.speed = control.speed
            yield self._state_frame()


async def serve_replay(
    websocket: WebSocket, store: Store, feed: Feed, day: Day, speed: float, start_ms: int,
    settings: Settings,
) -> None:  # fmt: skip
    """Play a day to one socket until it ends or the reader leaves."""
    player = Player(store, feed, day, speed, settings.replay_max_gap)
    budget = MessageBudget(settings.reader_messages_per_minute)

    async def receive() -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if not budget.spend():
                await websocket.close(CLOSE_POLICY, "too many controls")
                return
            raw = message.get("text") or message.get("bytes") or b""
            try:
                player.controls.put_nowait(parse_control(raw, day))
            except BadRequest as exc:
                await websocket.send_text(control_frame("error", message=exc.message))

    async def send() -> None:
        try:
            async for frame in player.play(start_ms):
                await websocket.send_text(frame)
        except (RedisError, OSError):
            await websocket.close(CLOSE_TRY_AGAIN_LATER, "storage unavailable, retry")
            return
        await websocket.close(1000, "replay over")

    tasks = [asyncio.create_task(receive()), asyncio.create_task(send())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, Exception):
                await task


async def open_replay(websocket: WebSocket, store: Store, settings: Settings) -> None:
    """``WS /ws/feeds/{feed}?replay=YYYY-MM-DD&speed=N[&from=HH:MM]``: validate, then play."""
    params = websocket.query_params
    await websocket.accept()
    try:
        feed = await store.require_feed(websocket.path_params["feed"])
        day = parse_day(params.get("replay", ""), feed.timezone)
        speed = parse_speed(params.get("speed"))
        raw_from = params.get("from")
        start_ms = day.at_clock(*parse_clock(raw_from)) if raw_from else day.start_ms
    except LivefeedError as exc:
        await websocket.close(exc.close_code, exc.message[:120])
        return
    except (RedisError, OSError):
        await websocket.close(CLOSE_TRY_AGAIN_LATER, "storage unavailable, retry")
        return
    REPLAYS.inc()
    with REPLAYS_ACTIVE.track_inprogress():
        await serve_replay(websocket, store, feed, day, speed, start_ms, settings)
