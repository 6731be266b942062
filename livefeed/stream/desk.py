"""The desk socket, ``/ws/feeds/{feed}/desk``: the editor-only desk stream and presence, live.

A client authenticates with its token in a subprotocol (``livefeed.token.<token>`` beside
``livefeed.desk``, the only one echoed) or in its first message (``{"type": "auth", "token"}``
within ``AUTH_SECONDS``); failures close with 1008 and a reason that starts with the error code
(``unauthorized``, ``invalid_token``, ``forbidden_role``, ``rate_limited``). Then it gets a
snapshot (the queue and who is editing what; with ``since``, the missed events instead, under
the reader stream's rules: each once, in order, or ``reload`` and 4400), a ``live`` frame, and
every desk event and presence change after it. A contributor is shown only their own drafts'
events, and presence on briefs and on their own drafts.

Every desk stream this process follows is read by one blocking XREAD (``Followers`` over
``Keys.desk``) and fanned out by a ``Hub`` of its own; presence comes over one pub/sub
subscription per process (``desk_room.DeskRoom``). Each socket keeps a task (desk sockets are
few) and its queue: one that falls behind is closed with 4408 and resumes with ``since``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import orjson
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
    TooManyRequests,
    Unavailable,
)
from livefeed.limits import MessageBudget
from livefeed.model import desk
from livefeed.model.frames import Event, control_frame
from livefeed.model.ids import StreamId
from livefeed.model.roles import Actor
from livefeed.newsroom import drafts
from livefeed.storage.cluster import REDIS_FAILURES
from livefeed.storage.entries import Entry, first_unchained
from livefeed.storage.presence import Member, member_of
from livefeed.storage.store import Store
from livefeed.stream.desk_room import DeskClient, DeskRoom
from livefeed.stream.hub import Closing, TooSlow

log = logging.getLogger("livefeed.stream.desk")

_CLOSE_TIMEOUT = 5.0
QUEUED = ("submitted", "scheduled")

Authenticate = Callable[[str], Awaitable[Actor]]
"""A token to its holder if they may read the desk; raises Unauthorized, Forbidden, 429."""
Lookup = Callable[[str], Awaitable[Actor | None]]
"""A token to its holder as Redis has it now, without rate limits (the periodic re-check)."""
Queue = Callable[[str, Actor], Awaitable[list[Any]]]
"""The drafts a desk snapshot shows ``actor`` on a feed: the queue, the schedule, their own."""


def desk_event(entry: Entry) -> Event:
    """A desk-stream entry as the desk's frame (``model.desk.desk_frame``), built once."""
    return Event.of(entry.id, entry.type, desk.desk_frame(entry.type, str(entry.id), entry.data))


class _Reload(LivefeedException):
    """The desk client's ``since`` is not resumable."""


async def serve_desk(
    websocket: WebSocket,
    room: DeskRoom,
    store: Store,
    settings: Settings,
    authenticate: Authenticate,
    lookup: Lookup,
    queue: Queue,
) -> None:
    """Serve one desk connection until it closes, its token stops being valid, or the server
    stops; its presence is withdrawn as it goes."""
    slug = websocket.path_params["feed"]
    offered = list(websocket.scope.get("subprotocols") or [])
    token = next((p[len(desk.TOKEN_SUBPROTOCOL) :] for p in offered
                  if p.startswith(desk.TOKEN_SUBPROTOCOL)), None)  # fmt: skip
    await websocket.accept(desk.DESK_SUBPROTOCOL if desk.DESK_SUBPROTOCOL in offered else None)
    try:
        if token is None:
            token = await _auth_message(websocket)
            if token is None:
                return
        actor = await authenticate(token)
        since = _since(websocket.query_params.get("since"))
        await store.require_feed(slug)
        sub = await room.hub.subscribe(slug)
    except (TooManyRequests, Unavailable) as exc:
        await _close(websocket, CLOSE_TRY_AGAIN_LATER, f"{exc.code}: {exc.message}")
        return
    except LivefeedError as exc:
        code = CLOSE_POLICY if exc.status in (401, 403) else exc.close_code
        await _close(websocket, code, f"{exc.code}: {exc.message}")
        return
    except Closing as exc:
        await _close(websocket, exc.code, exc.reason)
        return
    except REDIS_FAILURES:
        await _close(websocket, CLOSE_TRY_AGAIN_LATER, "storage unavailable, retry")
        return
    client = DeskClient(actor, sub)
    room.join(slug, client)
    holding: list[Member] = []  # this connection's presence member, if any
    sender = asyncio.create_task(_send(websocket, room, store, settings, client, since, queue))
    checker = asyncio.create_task(_recheck(client, token, lookup))
    try:
        await _receive(websocket, room, slug, client, settings, holding)
    finally:
        for task in (sender, checker):
            task.cancel()
        for task in (sender, checker):
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, Exception):
                await task
        room.leave(slug, client)
        room.hub.unsubscribe(sub)
        for member in holding:
            with contextlib.suppress(*REDIS_FAILURES, TimeoutError):
                await asyncio.wait_for(room.presence.withdraw(slug, member), _CLOSE_TIMEOUT)


async def _auth_message(websocket: WebSocket) -> str | None:
    """The token of the first message, ``{"type": "auth", "token"}``; None (and the socket
    closed with 1008) when it does not come in time or is something else."""
    try:
        message = await asyncio.wait_for(websocket.receive(), desk.AUTH_SECONDS)
    except TimeoutError:
        await _close(websocket, CLOSE_POLICY, "unauthorized: send the token first")
        return None
    if message["type"] == "websocket.disconnect":
        return None
    parsed = _json(message)
    token = parsed.get("token") if parsed.get("type") == "auth" else None
    if not isinstance(token, str) or not token:
        await _close(websocket, CLOSE_POLICY, "unauthorized: the first message must be auth")
        return None
    return token


def _since(raw: str | None) -> StreamId | None:
    return None if raw in (None, "") else StreamId.parse(raw, name="since")


async def _send(
    websocket: WebSocket,
    room: DeskRoom,
    store: Store,
    settings: Settings,
    client: DeskClient,
    since: StreamId | None,
    queue: Queue,
) -> None:
    """The snapshot or the catch-up, ``live``, then every visible event as it comes."""
    sub, actor, slug = client.sub, client.actor, client.sub.feed
    try:
        if since is None:
            drafts = await queue(slug, actor)
            client.own.update(str(d["id"]) for d in drafts if d.get("owner") == actor.name)
            editing = await room.presence.current(slug)
            await websocket.send_text(control_frame(
                "snapshot", id=str(sub.start), drafts=drafts,
                editing=[e for e in editing if client.sees_presence(e["item"], e["editor"])],
                viewer={"editor": actor.name, "role": actor.role},
            ))  # fmt: skip
            since = sub.start
        position = await _catch_up(websocket, store, client, since, settings)
        editing = [e for e in await room.presence.current(slug)
                   if client.sees_presence(e["item"], e["editor"])]  # fmt: skip
        await websocket.send_text(control_frame("live", id=str(position), editing=editing))
        while True:
            for event in await sub.next_batch():
                if event.id is not None:
                    if event.id <= position:
                        continue
                    position = event.id
                    if not _visible(client, event):
                        continue
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
        log.exception("desk socket of %s failed", slug)
        await _close(websocket, CLOSE_INTERNAL, "internal error")


def _visible(client: DeskClient, event: Event) -> bool:
    """Whether the client may see a desk event (a contributor: their own drafts' only)."""
    if drafts.may_review(client.actor):
        return True
    draft = orjson.loads(event.payload).get("draft")
    if not isinstance(draft, dict) or draft.get("owner") != client.actor.name:
        return False
    client.own.add(str(draft.get("id")))
    return True


async def _catch_up(
    websocket: WebSocket, store: Store, client: DeskClient, since: StreamId, settings: Settings
) -> StreamId:
    """Send the visible desk events after ``since`` and return the last id read; ``_Reload``
    when ``since`` is newer than the desk stream or events after it are gone (the reader's
    rules, ``reader._catch_up``)."""
    sub, slug = client.sub, client.sub.feed
    if since == sub.start:
        return since
    bounds = await store.desk_bounds(slug)
    if since > bounds.last_generated:
        raise _Reload("since is newer than anything this desk holds")
    unchained_gap = bounds.max_deleted is not None and since < bounds.max_deleted
    if since > sub.start:
        return since
    position = since
    while True:
        sub.reset()
        entries = await store.desk_after(slug, position, settings.catchup_page)
        broken = first_unchained(position, entries, trust_unmarked=not unchained_gap)
        for entry in entries[:broken]:
            event = desk_event(entry)
            if _visible(client, event):
                await websocket.send_text(event.frame)
            position = entry.id
        if broken is not None:
            raise _Reload("desk events after since have been removed")
        if len(entries) < settings.catchup_page and not sub.overflowed:
            if position < bounds.last_generated:
                raise _Reload("desk events after since have been removed")
            return position


async def _recheck(client: DeskClient, token: str, lookup: Lookup) -> None:
    """Look the token up every ``RECHECK_SECONDS``: revoked closes the socket (1008); a changed
    role asks it to reconnect (1013) so that it is shown what the new role may see."""
    while True:
        await asyncio.sleep(desk.RECHECK_SECONDS)
        try:
            now = await lookup(token)
        except REDIS_FAILURES:
            continue  # checked again next time; Redis down closes the socket anyway
        if now is None:
            client.sub.close(CLOSE_POLICY, "invalid_token: the token was revoked")
            return
        if now.role != client.actor.role:
            client.sub.close(CLOSE_TRY_AGAIN_LATER, "role changed: reconnect")
            return


async def _receive(
    websocket: WebSocket,
    room: DeskRoom,
    slug: str,
    client: DeskClient,
    settings: Settings,
    holding: list[Member],
) -> None:
    """What the client sends: ``editing`` (renewals too) and ``idle``; anything else, or more
    than ``reader_messages_per_minute``, closes it (4400, 1008)."""
    budget = MessageBudget(settings.reader_messages_per_minute)
    connection = secrets.token_hex(6)
    actor = client.actor
    closed = False
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if closed:
            continue  # what a client sends after our close frame, before its own
        if not budget.spend():
            closed = True
            await _close(websocket, CLOSE_POLICY, "rate_limited: too many desk messages")
            continue
        parsed = _json(message)
        kind = parsed.get("type")
        try:
            if kind == "editing":
                member = member_of(desk.parse_item(parsed.get("item")), actor.name, actor.role,
                                   connection)  # fmt: skip
                if holding and holding[0] != member:
                    await room.presence.withdraw(slug, holding.pop())
                holding[:] = [member]
                await room.presence.announce(slug, member, desk.PRESENCE_TTL_MS)
            elif kind == "idle":
                if holding:
                    await room.presence.withdraw(slug, holding.pop())
            else:
                closed = True
                await _close(websocket, CLOSE_BAD_REQUEST, "bad_message: send editing or idle")
        except LivefeedError as exc:
            closed = True
            await _close(websocket, CLOSE_BAD_REQUEST, f"{exc.code}: {exc.message}")
        except REDIS_FAILURES:
            closed = True
            await _close(websocket, CLOSE_TRY_AGAIN_LATER, "storage unavailable, retry")


def _json(message: Any) -> dict[str, Any]:
    """A text message as a JSON object; {} for anything else."""
    text = message.get("text")
    if not isinstance(text, str):
        return {}
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    """Close with a code and reason, without hanging on a peer that no longer reads."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(websocket.close(code, reason[:120]), _CLOSE_TIMEOUT)


async def desk_queue(store: Store, slug: str, actor: Actor) -> list[Any]:
    """The drafts a snapshot shows ``actor``: every submitted and scheduled draft they may see
    (a contributor: their own) and their own drafts still being written."""
    feed = await store.require_feed(slug)
    return [
        msgspec.to_builtins(d) for d in await drafts.listed(store, feed, actor, None)
        if d.status in QUEUED or (d.status == "draft" and d.owner == actor.name)
    ]  # fmt: skip
