"""Every route of the app against every role: one table says what each route needs, and a real
server answers accordingly, refusing before it reads the body and changing nothing."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from helpers import WS, LivefeedServer, RedisProcess, app_routes, auth, make_feed, publish
from livefeed.http.openapi import openapi_document
from livefeed.model.roles import REQUIRED, Action, Role, allowed
from livefeed.storage.keys import Keys

PUBLIC = None

# (method, path template) -> the Action the route needs, or PUBLIC. A new route fails
# test_the_table_lists_every_route_of_the_app until it has its row here.
ROUTES: dict[tuple[str, str], Action | None] = {
    ("GET", "/"): PUBLIC,
    ("GET", "/feeds/{feed}"): PUBLIC,
    ("GET", "/feeds/{feed}/days"): PUBLIC,
    ("GET", "/feeds/{feed}/days/{date}"): PUBLIC,
    ("GET", "/feeds/{feed}/briefs/{brief}/changes"): PUBLIC,
    ("GET", "/feeds/{feed}/search"): PUBLIC,
    ("GET", "/feeds/{feed}/atom.xml"): PUBLIC,
    ("GET", "/feeds/{feed}/feed.json"): PUBLIC,
    ("GET", "/feeds/{feed}/days/{date}/atom.xml"): PUBLIC,
    ("GET", "/feeds/{feed}/days/{date}/feed.json"): PUBLIC,
    ("GET", "/embed/{feed}"): PUBLIC,
    ("GET", "/editor"): PUBLIC,
    ("GET", "/favicon.ico"): PUBLIC,
    ("GET", "/favicon.svg"): PUBLIC,
    ("GET", "/sw.js"): PUBLIC,
    ("GET", "/api/push/key"): PUBLIC,
    ("POST", "/api/feeds/{feed}/push-subscriptions"): PUBLIC,
    ("DELETE", "/api/feeds/{feed}/push-subscriptions/{subscription}"): PUBLIC,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/api"): PUBLIC,
    ("GET", "/api/feeds"): PUBLIC,
    ("POST", "/api/feeds"): Action.PUBLISH,
    ("GET", "/api/me"): Action.READ_DESK,
    ("GET", "/api/tokens"): Action.MANAGE_TOKENS,
    ("POST", "/api/tokens"): Action.MANAGE_TOKENS,
    ("PATCH", "/api/tokens/{name}"): Action.MANAGE_TOKENS,
    ("DELETE", "/api/tokens/{name}"): Action.MANAGE_TOKENS,
    ("GET", "/api/feeds/{feed}"): PUBLIC,
    ("PATCH", "/api/feeds/{feed}"): Action.PUBLISH,
    ("GET", "/api/feeds/{feed}/briefs"): PUBLIC,
    ("POST", "/api/feeds/{feed}/briefs"): Action.PUBLISH,
    ("POST", "/api/feeds/{feed}/briefs/preview"): Action.READ_DESK,
    ("GET", "/api/feeds/{feed}/briefs/{brief}"): PUBLIC,
    ("PATCH", "/api/feeds/{feed}/briefs/{brief}"): Action.PUBLISH,
    ("DELETE", "/api/feeds/{feed}/briefs/{brief}"): Action.PUBLISH,
    ("GET", "/api/feeds/{feed}/briefs/{brief}/history"): PUBLIC,
    ("PUT", "/api/feeds/{feed}/pin"): Action.PUBLISH,
    ("DELETE", "/api/feeds/{feed}/pin"): Action.PUBLISH,
    ("GET", "/api/feeds/{feed}/key-events"): PUBLIC,
    ("GET", "/api/feeds/{feed}/search"): PUBLIC,
    ("GET", "/api/feeds/{feed}/lead"): PUBLIC,
    ("PUT", "/api/feeds/{feed}/lead"): Action.PUBLISH,
    ("DELETE", "/api/feeds/{feed}/lead"): Action.PUBLISH,
    ("GET", "/api/feeds/{feed}/summary"): PUBLIC,
    ("PUT", "/api/feeds/{feed}/summary"): Action.PUBLISH,
    ("DELETE", "/api/feeds/{feed}/summary"): Action.PUBLISH,
    ("GET", "/api/feeds/{feed}/days"): PUBLIC,
    ("GET", "/api/feeds/{feed}/since/{since}"): PUBLIC,
    ("GET", "/api/feeds/{feed}/days/{date}"): PUBLIC,
    ("GET", "/api/feeds/{feed}/drafts"): Action.READ_DESK,
    ("POST", "/api/feeds/{feed}/drafts"): Action.WRITE_DRAFT,
    ("GET", "/api/feeds/{feed}/drafts/{draft}"): Action.READ_DESK,
    ("PATCH", "/api/feeds/{feed}/drafts/{draft}"): Action.WRITE_DRAFT,
    ("DELETE", "/api/feeds/{feed}/drafts/{draft}"): Action.WRITE_DRAFT,
    ("POST", "/api/feeds/{feed}/drafts/{draft}/submit"): Action.WRITE_DRAFT,
    ("POST", "/api/feeds/{feed}/drafts/{draft}/send-back"): Action.REVIEW,
    ("POST", "/api/feeds/{feed}/drafts/{draft}/publish"): Action.REVIEW,
    ("POST", "/api/feeds/{feed}/drafts/{draft}/unschedule"): Action.REVIEW,
    ("GET", "/api/feeds/{feed}/drafts/{draft}/history"): Action.READ_DESK,
    ("GET", "/api/feeds/{feed}/audit"): Action.READ_AUDIT,
    ("POST", "/api/embeds/preview"): Action.WRITE_DRAFT,
    ("POST", "/api/media"): Action.WRITE_DRAFT,
    ("GET", "/api/media/{media}"): Action.WRITE_DRAFT,
    ("GET", "/media/{media}/{name}"): PUBLIC,
    ("GET", "/static/{path}"): PUBLIC,
    (WS, "/ws/feeds/{feed}"): PUBLIC,
    (WS, "/ws/feeds/{feed}/desk"): Action.READ_DESK,
}

ROLES = (None, Role.CONTRIBUTOR, Role.EDITOR, Role.ADMIN)
"""Who sends each request: nobody (no token), then a token of each role."""
NOT_JSON = b"{"
"""Every write's body: a handler that read it before checking the role would answer 400."""


def test_the_table_lists_every_route_of_the_app() -> None:
    """Each HTTP method and WebSocket route is classified, and the table names no other."""
    routes = app_routes()
    assert set(ROUTES) - routes == set(), "rows for routes the app does not have"
    assert routes - set(ROUTES) == set(), "routes without a row in ROUTES: classify them"


def test_the_openapi_document_states_each_routes_role() -> None:
    """Public operations have no security; the others the bearer scheme, their lowest role in
    the description, and 403 ``forbidden_role`` exactly when that role is above contributor
    (a contributor's route may have a 403 of its own: ``not_your_draft``)."""
    document = openapi_document()
    for (method, path), action in ROUTES.items():
        if method == WS:
            assert path in document["x-websockets"], path
            continue
        op = document["paths"][path][method.lower()]
        where = f"{method} {path}"
        if action is None:
            assert "security" not in op and "401" not in op["responses"], where
            continue
        role = REQUIRED[action]
        assert op["security"] == [{"editorToken": []}], where
        assert f"the {role} role" in op["description"], where
        refusal = json.dumps(op["responses"].get("403", {}))  # a draft's own 403 is another
        assert ("forbidden_role" in refusal) is (role is not Role.CONTRIBUTOR), where


@dataclass(frozen=True)
class Desk:
    """A feed with a brief to aim requests at, a token of each role, and Redis to watch."""

    feed: str
    brief: str
    date: str
    tokens: dict[Role, str]
    redis: redis.Redis
    keys: Keys

    def url(self, path: str) -> str:
        return path.format(
            feed=self.feed, brief=self.brief, date=self.date, name="nobody-" + uuid.uuid4().hex,
            media="0" * 16, path="feed.css", draft="0" * 12, subscription="0" * 64,
            since=self.brief,
        )  # fmt: skip

    def state(self) -> tuple[Any, ...]:
        """What a refused request must leave as it was: the feed's record, meta and both
        streams, and every token's record."""
        return (
            self.redis.xlen(self.keys.stream(self.feed)),
            self.redis.xlen(self.keys.desk(self.feed)),
            self.redis.get(self.keys.feed(self.feed)),
            self.redis.hgetall(self.keys.meta(self.feed)),
            self.redis.hgetall(self.keys.tokens),
        )


@pytest.fixture(scope="module")
def desk(server: LivefeedServer, redis_server: RedisProcess) -> Iterator[Desk]:
    client = redis.Redis(port=redis_server.port)
    try:
        with httpx.Client(base_url=server.base, timeout=10) as http:
            feed = make_feed(http)
            brief = publish(http, feed, "Aimed at by every route")
            pin = http.put(f"/api/feeds/{feed}/pin", json={"brief_id": brief["id"]}, headers=auth())
            assert pin.status_code == 200, pin.text
            tokens: dict[Role, str] = {}
            for role in Role:
                name = f"{role} {uuid.uuid4().hex[:8]}"
                made = http.post("/api/tokens", json={"name": name, "role": role}, headers=auth())
                assert made.status_code == 201, made.text
                tokens[role] = made.json()["token"]
        date = brief["published_at"][:10]
        yield Desk(feed, brief["id"], date, tokens, client, Keys(server.prefix))
    finally:
        client.close()


@pytest.mark.parametrize(
    ("method", "path"),
    [pytest.param(m, p, id=f"{m} {p}") for m, p in ROUTES if m != WS],
)
def test_each_route_answers_each_role_as_the_table_says(
    method: str, path: str, desk: Desk, http: httpx.Client
) -> None:
    """401 without a token, 403 ``forbidden_role`` for a role below the route's, anything else
    for the rest; a refused request changes nothing, and is refused before its body is read."""
    action = ROUTES[(method, path)]
    for role in ROLES:
        headers = auth(desk.tokens[role]) if role is not None else {}
        if method == "DELETE":
            headers["If-Match"] = '"0"'  # an allowed retraction or clearing stays a 412
        body = None
        if method in ("POST", "PUT", "PATCH"):
            headers["Content-Type"] = "application/json"
            body = NOT_JSON
        before = desk.state()
        response = http.request(method, desk.url(path), headers=headers, content=body)
        where = f"{method} {path} as {role or 'nobody'}: {response.status_code} {response.text}"
        if action is None or (role is not None and allowed(role, action)):
            assert response.status_code not in (401, 403), where
            continue
        if role is None:
            assert response.status_code == 401, where
            assert response.headers["www-authenticate"] == 'Bearer realm="livefeed"', where
        else:
            assert response.status_code == 403, where
            assert response.json()["error"]["code"] == "forbidden_role", where
        assert desk.state() == before, f"{where}: a refused request changed something"


@pytest.mark.parametrize("path", [p for m, p in ROUTES if m == WS and ROUTES[(m, p)] is None])
def test_each_public_socket_opens_for_everyone(
    path: str, desk: Desk, server: LivefeedServer
) -> None:
    """A public WebSocket opens and sends its first frame without a token, and with each."""
    for role in ROLES:
        headers = auth(desk.tokens[role]) if role is not None else {}
        with connect(server.ws_base + desk.url(path), additional_headers=headers) as ws:
            frame = json.loads(ws.recv(timeout=10))
            assert isinstance(frame.get("type"), str), (path, role, frame)


def test_the_desk_socket_opens_for_each_role_and_for_no_one_else(
    desk: Desk, server: LivefeedServer
) -> None:
    """The desk socket (READ_DESK) opens for a token of each role, showing that role; without
    one it is closed with 1008."""
    url = server.ws_base + desk.url("/ws/feeds/{feed}/desk")
    for role in ROLES:
        with connect(url) as ws:
            token = desk.tokens[role] if role is not None else ""
            ws.send(json.dumps({"type": "auth", "token": token}))
            if role is None:
                with pytest.raises(ConnectionClosed) as closed:
                    ws.recv(timeout=10)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
                continue
            frame = json.loads(ws.recv(timeout=10))
            assert frame["type"] == "snapshot" and frame["viewer"]["role"] == role, frame
