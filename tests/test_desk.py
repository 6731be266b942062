"""The desk socket through real websockets clients: authentication, what each role is shown,
resume by ``since``, a revoked token, and presence across nodes; its main path also on
uvicorn's stock WebSocket protocol and on a Redis Cluster.

Desk events are written straight onto the desk stream (XADD, fields t and d as the drafts
backend writes them), so these tests hold the socket to its contract on its own.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as connect_ws

from helpers import TOKEN, LivefeedServer, RedisProcess, auth, make_feed
from livefeed.model.desk import DESK_SUBPROTOCOL, PRESENCE_TTL_MS, RECHECK_SECONDS
from livefeed.storage.connect import connect
from livefeed.storage.store import Store

Frame = dict[str, Any]


@pytest.fixture(scope="module")
async def store(server: LivefeedServer) -> AsyncIterator[Store]:
    redis = connect(server.redis_url, timeout=5, pool_size=4)
    try:
        yield Store(redis, server.prefix)
    finally:
        await redis.aclose()


@pytest.fixture
def slug(server: LivefeedServer) -> str:
    with httpx.Client(base_url=server.base, timeout=10) as client:
        return make_feed(client)


async def token_for(store: Store, role: str) -> tuple[str, str]:
    name = f"{role.title()} {uuid.uuid4().hex[:6]}"
    return name, await store.tokens.create(name, role)


def desk_url(server: LivefeedServer, slug: str, since: str | None = None) -> str:
    return f"{server.ws_base}/ws/feeds/{slug}/desk" + (f"?since={since}" if since else "")


def open_desk(
    server: LivefeedServer, slug: str, token: str = TOKEN, since: str | None = None
) -> connect_ws:
    protocols: Any = [DESK_SUBPROTOCOL, f"livefeed.token.{token}"]
    return websockets.connect(desk_url(server, slug, since), subprotocols=protocols)


async def until(ws: ClientConnection, wanted: str, timeout: float = 15) -> list[Frame]:
    """Frames (heartbeats skipped) up to and including the first of type ``wanted``."""
    frames: list[Frame] = []
    async with asyncio.timeout(timeout):
        while not frames or frames[-1]["type"] != wanted:
            frame = json.loads(await ws.recv())
            if frame["type"] != "heartbeat":
                frames.append(frame)
    return frames


async def closed(ws: ClientConnection, timeout: float = 15) -> tuple[int, str]:
    """Read until the server closes; its close code and reason."""
    async with asyncio.timeout(timeout):
        with pytest.raises(websockets.ConnectionClosed) as info:
            while True:
                await ws.recv()
    rcvd = info.value.rcvd
    assert rcvd is not None, "the server closed without a close frame"
    return rcvd.code, rcvd.reason


async def add_desk_event(
    store: Store, slug: str, kind: str, draft_id: str, owner: str, **fields: Any
) -> str:
    """A desk event as the drafts backend writes it (``model.draft.desk_payload``)."""
    draft = {"id": draft_id, "owner": owner, "status": "submitted", "headline": f"H {draft_id}",
             **fields}  # fmt: skip
    data = {
        "draft": draft,
        "by": {"name": owner, "role": "contributor"},
        "at": "2026-12-01T10:00:00Z",
    }
    raw = await store.redis.xadd(store.keys.desk(slug), {"t": kind, "d": orjson.dumps(data)})
    return raw.decode() if isinstance(raw, bytes) else str(raw)


async def test_desk_authenticates_by_subprotocol(server: LivefeedServer, slug: str) -> None:
    """A token in a ``livefeed.token.`` subprotocol opens the desk; only livefeed.desk is echoed."""
    async with open_desk(server, slug) as ws:
        assert ws.subprotocol == DESK_SUBPROTOCOL
        frames = await until(ws, "live")
        assert frames[0]["type"] == "snapshot"
        assert frames[0]["viewer"]["role"] == "admin"
        assert frames[0]["drafts"] == [] and frames[0]["editing"] == []


async def test_desk_authenticates_by_first_message(
    server: LivefeedServer, store: Store, slug: str
) -> None:
    """Without a token subprotocol, ``{"type": "auth", "token"}`` as first message opens it."""
    name, token = await token_for(store, "contributor")
    async with websockets.connect(desk_url(server, slug)) as ws:
        await ws.send(json.dumps({"type": "auth", "token": token}))
        frames = await until(ws, "live")
        assert frames[0]["viewer"] == {"editor": name, "role": "contributor"}


async def test_desk_refuses_missing_wrong_and_late_tokens(
    server: LivefeedServer, slug: str
) -> None:
    """A wrong token, a first message that is not auth, or none in time: closed 1008."""
    async with open_desk(server, slug, token="lf_wrong") as ws:
        code, reason = await closed(ws)
        assert code == 1008 and reason.startswith("invalid_token")
    async with websockets.connect(desk_url(server, slug)) as ws:
        await ws.send(json.dumps({"type": "editing", "item": "brief:1-0"}))
        code, reason = await closed(ws)
        assert code == 1008 and reason.startswith("unauthorized")
    async with websockets.connect(desk_url(server, slug)) as ws:
        code, reason = await closed(ws)
        assert code == 1008 and reason.startswith("unauthorized")


async def test_desk_refuses_token_in_url(server: LivefeedServer, slug: str) -> None:
    """``?token=`` on the desk socket is refused before it opens, as on every route."""
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(desk_url(server, slug) + f"?token={TOKEN}"):
            pass


async def test_desk_shows_contributors_only_their_own_drafts(
    server: LivefeedServer, store: Store, slug: str
) -> None:
    """An editor sees every draft's events; a contributor only their own drafts'."""
    alice, alice_token = await token_for(store, "contributor")
    bob, _ = await token_for(store, "contributor")
    _, editor_token = await token_for(store, "editor")
    async with (
        open_desk(server, slug, alice_token) as mine,
        open_desk(server, slug, editor_token) as editor,
    ):
        await until(mine, "live")
        await until(editor, "live")
        await add_desk_event(store, slug, "draft_submitted", "bobs", bob)
        await add_desk_event(store, slug, "draft_submitted", "alices", alice)
        seen = await until(editor, "draft_submitted") + await until(editor, "draft_submitted")
        assert [f["draft"]["id"] for f in seen] == ["bobs", "alices"]
        assert seen[1]["by"]["name"] == alice and "by" not in seen[1]["draft"]
        (frame,) = await until(mine, "draft_submitted")
        assert frame["draft"]["id"] == "alices" and frame["id"] == seen[1]["id"]


async def test_desk_resumes_with_since(server: LivefeedServer, store: Store, slug: str) -> None:
    """Reconnecting with ``since`` gets every missed visible event once, in order; a ``since``
    newer than the desk stream gets ``reload`` and 4400."""
    name, token = await token_for(store, "contributor")
    async with open_desk(server, slug, token) as ws:
        since = (await until(ws, "live"))[-1]["id"]
    missed = [await add_desk_event(store, slug, "draft_saved", f"d{n}", name) for n in range(3)]
    await add_desk_event(store, slug, "draft_saved", "other", "Somebody else")
    async with open_desk(server, slug, token, since=since) as ws:
        frames = await until(ws, "live")
        assert [f["id"] for f in frames[:-1]] == missed
        assert frames[-1]["id"] > missed[-1]
    async with open_desk(server, slug, since="99999999999999-0") as ws:
        assert (await until(ws, "reload"))[-1]["type"] == "reload"
        assert (await closed(ws))[0] == 4400


async def test_desk_closes_a_revoked_tokens_socket(
    server: LivefeedServer, store: Store, slug: str
) -> None:
    """Revoking a token closes its open desk socket (1008) within the re-check interval."""
    name, token = await token_for(store, "contributor")
    async with open_desk(server, slug, token) as ws:
        await until(ws, "live")
        assert await store.tokens.revoke(name)
        code, reason = await closed(ws, timeout=RECHECK_SECONDS * 3 + 5)
        assert code == 1008 and reason.startswith("invalid_token")


async def test_desk_asks_a_socket_whose_role_changed_to_reconnect(
    server: LivefeedServer, store: Store, slug: str
) -> None:
    """A token whose role changes has its desk socket closed with 1013, to reconnect and be
    shown what the new role may see."""
    name, token = await token_for(store, "editor")
    async with open_desk(server, slug, token) as ws:
        await until(ws, "live")
        assert await store.tokens.set_role(name, "contributor")
        code, reason = await closed(ws, timeout=RECHECK_SECONDS * 3 + 5)
        assert code == 1013 and reason.startswith("role changed")


async def test_desk_answers_pings_and_echoes_a_close_before_auth(
    server: LivefeedServer, slug: str
) -> None:
    """Waiting for its auth message, the socket still answers pings and a client's close."""
    async with websockets.connect(desk_url(server, slug)) as ws:
        await asyncio.wait_for(await ws.ping(), 5)
        await ws.close(1000, "bye")
        assert ws.close_code == 1000


async def test_desk_closes_on_a_bad_message(server: LivefeedServer, slug: str) -> None:
    """An ``editing`` for something that is no brief or draft closes the socket with 4400."""
    async with open_desk(server, slug) as ws:
        await until(ws, "live")
        await ws.send(json.dumps({"type": "editing", "item": "<script>"}))
        assert (await closed(ws))[0] == 4400


async def test_presence_is_shown_and_cleared_when_a_socket_closes(
    server: LivefeedServer, store: Store, slug: str
) -> None:
    """Another desk socket is told who edits what, and told at once when that socket closes."""
    olena, token = await token_for(store, "editor")
    async with open_desk(server, slug) as watcher:
        await until(watcher, "live")
        async with open_desk(server, slug, token) as editor:
            await until(editor, "live")
            await editor.send(json.dumps({"type": "editing", "item": "brief:1-0"}))
            (*_, shown) = await until(watcher, "editing")
            assert shown["item"] == "brief:1-0" and shown["editor"] == olena
            async with open_desk(server, slug) as late:
                assert (await until(late, "live"))[0]["editing"][0]["editor"] == olena
        (*_, gone) = await until(watcher, "editing_stopped")
        assert gone["item"] == "brief:1-0" and gone["editor"] == olena


async def test_presence_shown_to_a_contributor_is_on_briefs_and_their_own_drafts(
    server: LivefeedServer, store: Store, slug: str
) -> None:
    """A contributor is not told who edits someone else's draft; they are told about briefs."""
    _, token = await token_for(store, "contributor")
    async with open_desk(server, slug, token) as mine, open_desk(server, slug) as editor:
        await until(mine, "live")
        await until(editor, "live")
        await editor.send(json.dumps({"type": "editing", "item": "draft:someone-elses"}))
        await editor.send(json.dumps({"type": "editing", "item": "brief:2-0"}))
        frames = await until(mine, "editing")
        assert [f["item"] for f in frames if f["type"].startswith("editing")] == ["brief:2-0"]


async def test_presence_lapses_when_its_node_dies(
    server: LivefeedServer, redis_server: RedisProcess, slug: str, tmp_path: Path
) -> None:
    """Presence held on a node that is killed lapses, and other nodes say so, within seconds."""
    other = LivefeedServer(redis_server.url, server.prefix)
    other.start(log_dir=tmp_path)
    try:
        async with open_desk(server, slug) as watcher:
            await until(watcher, "live")
            dying = await websockets.connect(desk_url(other, slug),
                                             subprotocols=[f"livefeed.token.{TOKEN}"])  # type: ignore[list-item]  # fmt: skip
            try:
                await until(dying, "live")
                await dying.send(json.dumps({"type": "editing", "item": "draft:abc"}))
                await until(watcher, "editing")
                other.kill()
                (*_, gone) = await until(watcher, "editing_stopped", PRESENCE_TTL_MS / 1000 + 10)
                assert gone["item"] == "draft:abc"
            finally:
                await dying.close()
    finally:
        other.stop()


@pytest.mark.parametrize("where", ["asgi_server", "cluster_server"])
async def test_desk_main_path_holds_on_the_stock_transport_and_on_a_cluster(
    where: str, request: pytest.FixtureRequest
) -> None:
    """On uvicorn's stock protocol (every frame through ASGI) and on a Redis Cluster: a
    contributor's draft, made and submitted through the API, reaches an editor's desk live; a
    socket opened later has it in its snapshot with who is editing it; that clears on close."""
    node: LivefeedServer = request.getfixturevalue(where)
    redis = connect(node.redis_url, timeout=5, pool_size=2)
    try:
        name, token = await token_for(Store(redis, node.prefix), "contributor")
    finally:
        await redis.aclose()
    async with httpx.AsyncClient(base_url=node.base, timeout=15) as client:
        created = await client.post("/api/feeds", headers=auth(), json={
            "slug": f"d-{uuid.uuid4().hex[:8]}", "title": "Desk", "timezone": "UTC"})  # fmt: skip
        assert created.status_code == 201, created.text
        slug = created.json()["slug"]
        # The editor's token in a subprotocol, the contributor's in the first message.
        async with open_desk(node, slug) as editor, connect_ws(desk_url(node, slug)) as writer:
            assert (await until(editor, "live"))[0]["drafts"] == []
            await writer.send(json.dumps({"type": "auth", "token": token}))
            assert (await until(writer, "live"))[0]["viewer"]["editor"] == name
            drafts = f"/api/feeds/{slug}/drafts"
            made = await client.post(drafts, headers=auth(token), json={"headline": "Filed"})
            assert made.status_code == 201, made.text
            draft = made.json()["id"]
            sent = await client.post(f"{drafts}/{draft}/submit", headers=auth(token))
            assert sent.status_code == 200, sent.text
            seen = await until(editor, "draft_submitted")
            assert [(f["type"], f["draft"]["id"]) for f in seen] == [
                ("draft_saved", draft), ("draft_submitted", draft)]  # fmt: skip
            await writer.send(json.dumps({"type": "editing", "item": f"draft:{draft}"}))
            (*_, shown) = await until(editor, "editing")
            assert (shown["item"], shown["editor"]) == (f"draft:{draft}", name)
            async with open_desk(node, slug) as late:
                snapshot, *_, live = await until(late, "live")
                assert [d["id"] for d in snapshot["drafts"]] == [draft]
                assert [e["editor"] for e in live["editing"]] == [name]
            await writer.close()
            (*_, gone) = await until(editor, "editing_stopped")
            assert gone["item"] == f"draft:{draft}"
