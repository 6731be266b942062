"""One reader's WebSocket: catch up from ``since`` through the stream, then follow the hub live.

The ordering rule that makes "no gap, no duplicate" hold: subscribe to the hub *before* reading the
stream, read the stream until it is exhausted, then take live events, skipping any whose id is not
after the last one sent. Any event the hub delivered before we subscribed is already in Redis, so
the range reads see it; anything later is in our queue.

Once caught up, the reader switches to the hub's direct path and its connection is parked (see
``socket.ReaderSocket``): this task ends, and the hub writes each event to the socket itself.
Where the server offers no ``ReaderSocket`` (``LIVEFEED_WS_DIRECT=0``, another ASGI server) the
task stays, sending every event through ASGI: the same frames, in the same order, with the same
close codes, at the cost of a task, its queue and a few awaits per event per reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketDisconnected

from livefeed.config import Settings
from livefeed.errors import (
    CLOSE_BAD_REQUEST,
    CLOSE_INTERNAL,
    CLOSE_POLICY,
    CLOSE_TOO_SLOW,
    CLOSE_TRY_AGAIN_LATER,
    LivefeedError,
    LivefeedException,
)
from livefeed.limits import MessageBudget
from livefeed.model.feed import Feed
from livefeed.model.frames import (
    Event,
    control_frame,
    deflated_text_frame,
    websocket_text_frame,
)
from livefeed.model.ids import StreamId
from livefeed.storage.cluster import REDIS_FAILURES
from livefeed.storage.entries import first_unchained
from livefeed.storage.store import Store
from livefeed.stream.hub import Closing, Hub, Subscriber, TooSlow
from livefeed.stream.socket import ReaderSocket, reader_socket
from livefeed.stream.source import to_event

log = logging.getLogger("livefeed.stream.reader")

"""Any Redis failure (lost connection, NOPERM, LOADING, READONLY, ...): the reader is closed with
1013 and resumes; never a 1011 and a traceback per reader."""
_CLOSE_TIMEOUT = 5.0


class _Reload(LivefeedException):
    """The reader's ``since`` is not resumable: history it needs is gone or was never here."""


class SnapshotCache:
    """The latest snapshot frame per feed, built once per stream position.

    A join storm of thousands of readers then costs one build, not one per reader; readers that
    arrive while it is being built wait for it.
    """

    def __init__(self) -> None:
        self._frames: dict[str, tuple[StreamId, asyncio.Future[Event]]] = {}

    async def get(
        self, slug: str, position: StreamId, build: Callable[[], Awaitable[Event]]
    ) -> Event:
        cached = self._frames.get(slug)
        if cached is not None and cached[0] == position:
            return await asyncio.shield(cached[1])
        future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._frames[slug] = (position, future)
        try:
            frame = await build()
        except BaseException as exc:
            if self._frames.get(slug, (None, None))[1] is future:
                del self._frames[slug]
            future.set_exception(exc)
            future.exception()  # waiters get it; nobody else needs to be told
            raise
        future.set_result(frame)
        return frame


class _ParkedReader:
    """A caught-up reader whose connection the protocol holds on its own (``ReaderSocket.park``):
    it keeps the reader to its message budget and takes it out of the hub when it goes."""

    __slots__ = ("_budget", "_done", "_hub", "_per_minute", "sub")

    def __init__(self, hub: Hub, per_minute: int, done: Callable[[], None]) -> None:
        self._hub = hub
        self.sub: Subscriber | None = None  # set once subscribed, before the park
        self._per_minute = per_minute
        self._budget: MessageBudget | None = None  # most readers never send anything
        self._done = done

    def message(self) -> bool:
        if self._budget is None:
            self._budget = MessageBudget(self._per_minute)
        return self._budget.spend()

    def lost(self) -> None:
        if self.sub is not None:
            self._hub.unsubscribe(self.sub)
        self._done()


async def serve_reader(
    websocket: WebSocket,
    store: Store,
    hub: Hub,
    settings: Settings,
    snapshots: SnapshotCache,
    on_done: Callable[[], None] = lambda: None,
) -> None:
    """Serve one reader connection until it disconnects, falls behind, or the server stops.

    Where the server offers a ``ReaderSocket`` the reader catches up in this task and is then
    parked: the task ends and the hub writes to the connection directly. ``on_done`` is called
    once, when the connection is over, whichever way it went.
    """
    slug = websocket.path_params["feed"]
    raw_since = websocket.query_params.get("since")
    handed_over = False
    sub: Subscriber | None = None
    direct = reader_socket(websocket.scope)
    parked = _ParkedReader(hub, settings.reader_messages_per_minute, on_done)
    try:
        await websocket.accept()
        if direct is not None:
            # From here the protocol handles what the reader sends, in every state: pings,
            # close, the message budget (1008), invalid UTF-8 (1007), protocol errors (1002).
            direct.adopt(parked)
        try:
            since = None if raw_since in (None, "") else StreamId.parse(raw_since, name="since")
            feed = await store.cached_feed(slug)
            sub = await hub.subscribe(slug)
        except LivefeedError as exc:
            await _close(websocket, exc.close_code, exc.message)
            return
        except Closing as exc:
            await _close(websocket, exc.code, exc.reason)
            return
        except REDIS_FAILURES:
            await _close(websocket, CLOSE_TRY_AGAIN_LATER, "storage unavailable, retry")
            return

        if direct is not None:
            # A disconnect, or a close for what the reader sent, shows up as a failed send.
            parked.sub = sub
            with contextlib.suppress(WebSocketDisconnect, WebSocketDisconnected):
                handed_over = await _send_events(
                    websocket, store, feed, sub, since, settings, snapshots, (direct, parked)
                )
            return

        # Elsewhere (another server, LIVEFEED_WS_DIRECT=0), a second task sends while this one
        # reads from the socket until it closes, which it also does after any close the sender
        # sends.
        sender = asyncio.create_task(
            _send_events(websocket, store, feed, sub, since, settings, snapshots, None)
        )
        try:
            await drain_incoming(websocket, settings)
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, Exception):
                await sender
    finally:
        if not handed_over:
            if sub is not None:
                hub.unsubscribe(sub)
            on_done()


async def _send_events(
    websocket: WebSocket,
    store: Store,
    feed: Feed,
    sub: Subscriber,
    since: StreamId | None,
    settings: Settings,
    snapshots: SnapshotCache,
    direct: tuple[ReaderSocket, _ParkedReader] | None,
) -> bool:
    """Catch the reader up, then follow the hub; True once the connection is parked.

    With ``direct``, the snapshot, the "live" frame and whatever the hub queued meanwhile go out
    in one write as the reader switches to the hub's direct path; only a catch-up from Redis
    goes through ASGI (it waits for a slow reader instead of overflowing its buffer; websockets
    compresses it there, per message, for a ``deflate`` reader).
    """
    try:
        first: list[bytes] = []
        deflate = direct is not None and direct[0].deflate  # the hub's frames: compressed once
        if since is None:
            snapshot = await _snapshot(store, feed, sub, settings, snapshots)
            since = sub.start
            if direct is None:
                await websocket.send_text(snapshot.frame)
            else:
                first.append(snapshot.deflated_wire() if deflate else snapshot.wire)
        position = await _catch_up(websocket, store, sub, since, settings)
        live = control_frame("live", last_event_id=str(position))
        if direct is None:
            await websocket.send_text(live)
        else:
            wire = deflated_text_frame if deflate else websocket_text_frame
            first.append(wire(live.encode()))
        while True:
            batch = sub.take()
            if direct is not None:
                # No await from here to the park: the hub cannot deliver in between.
                for event in batch:
                    if event.id is not None:
                        if event.id <= position:
                            continue
                        position = event.id
                    first.append(event.deflated_wire() if deflate else event.wire)
                sock, parked = direct
                limit = settings.reader_buffer_bytes
                if sub.go_direct(position, sock, limit):
                    sent = sock.send_frames(b"".join(first), limit)
                    target = sock.park(parked) if sent else None
                    if target is None:
                        return False
                    sub.redirect(target)  # the connection is another object's from now on
                    return True
                batch = []  # overflowed or closing: next_batch raises TooSlow or Closing
            for event in batch or await sub.next_batch():
                if event.id is not None:
                    if event.id <= position:
                        continue
                    position = event.id
                await websocket.send_text(event.frame)
    except TooSlow:
        await _close(websocket, CLOSE_TOO_SLOW, "too slow: reconnect with since")
    except Closing as exc:
        await _close(websocket, exc.code, exc.reason)
    except _Reload as exc:
        await websocket.send_text(control_frame("reload", reason=str(exc)))
        await _close(websocket, CLOSE_BAD_REQUEST, "history unavailable: reload")
    except REDIS_FAILURES:
        await _close(websocket, CLOSE_TRY_AGAIN_LATER, "storage unavailable, retry")
    except (WebSocketDisconnect, WebSocketDisconnected, asyncio.CancelledError):
        raise
    except Exception:
        log.exception("reader of %s failed", sub.feed)
        await _close(websocket, CLOSE_INTERNAL, "internal error")
    return False


async def _snapshot(
    store: Store, feed: Feed, sub: Subscriber, settings: Settings, snapshots: SnapshotCache
) -> Event:
    """For a reader without ``since``: the feed as it stands at ``sub.start`` (its lead and
    summary too).

    The position is the hub's when the reader joined, so anything that changes meanwhile is also
    sent as an event; applying an event to a state that already has it changes nothing.
    """

    async def build() -> Event:
        current = await store.require_feed(feed.slug)  # title, status and pin as they are now
        briefs, _ = await store.latest_briefs(feed.slug, settings.backlog_size)
        pinned = None
        if current.pinned is not None:
            (pinned,) = await store.states(feed.slug, [StreamId.parse(current.pinned)])
        lead, summary, _, _ = await store.story(feed.slug)
        frame = control_frame("snapshot", briefs=briefs, pinned=pinned, feed=current.to_dict(),
                              lead=lead, summary=summary)  # fmt: skip
        return Event.of(None, "snapshot", frame)

    return await snapshots.get(feed.slug, sub.start, build)


async def _catch_up(
    websocket: WebSocket, store: Store, sub: Subscriber, since: StreamId, settings: Settings
) -> StreamId:
    """Send everything after ``since`` and return the last id sent; ``_Reload`` as soon as an
    event after ``since`` turns out to be unreadable, whatever removed it (XDEL, XTRIM, an older
    backup restored).

    Every entry names the id generated just before it (``Entry.prev``): the first one read must
    name ``since``, each next one the one before, and the reads must reach the last id the stream
    had generated when the catch-up began. Entries written before livefeed recorded ``prev`` are
    taken on trust, with only the older check for them: ``max-deleted-entry-id`` (Redis 7 only,
    moved by XDEL, not by XTRIM). The check costs a string comparison per entry.

    A reader that is as far as the hub (the usual case: a page that just loaded) needs nothing
    from Redis at all; the hub delivers everything after ``sub.start``.
    """
    slug = sub.feed
    if since == sub.start:
        return since
    bounds = await store.bounds(slug)
    if since > bounds.last_generated:
        raise _Reload("since is newer than anything this feed holds")
    # Only for entries from before the chain: Redis 7's coarser sign that something after since
    # was deleted (an undone import may leave it at 0-1, which chained entries rightly ignore).
    unchained_gap = bounds.max_deleted is not None and since < bounds.max_deleted
    if since > sub.start:  # the hub has not read that far yet; it will deliver the rest
        return since
    position = since
    while True:
        sub.reset()
        entries = await store.read_after(slug, position, settings.catchup_page)
        broken = first_unchained(position, entries, trust_unmarked=not unchained_gap)
        for entry in entries[:broken]:
            await websocket.send_text(to_event(entry).frame)
            position = entry.id
        if broken is not None:
            raise _Reload("events after since have been removed from the feed")
        if len(entries) < settings.catchup_page and not sub.overflowed:
            if position < bounds.last_generated:  # the newest events are gone
                raise _Reload("events after since have been removed from the feed")
            return position


async def drain_incoming(websocket: WebSocket, settings: Settings) -> None:
    """Readers have nothing to say; read (and drop) frames so a disconnect is noticed.

    A reader that keeps talking anyway is closed with 1008 (policy); protocol pings do not count.
    """
    budget = MessageBudget(settings.reader_messages_per_minute)
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if not budget.spend():
            await _close(websocket, CLOSE_POLICY, "readers send no messages")


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    """Close with a code and reason, without hanging on a peer that no longer reads."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(websocket.close(code, reason[:120]), _CLOSE_TIMEOUT)
