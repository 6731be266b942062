"""/api/tokens: admins list, make, re-role and revoke tokens; a change holds at once on every
node; a retried creation has one effect; the token is shown once and never stored in clear."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import orjson
import pytest
from redis.asyncio import Redis

from helpers import LivefeedServer, RedisProcess, auth, livefeed
from livefeed.storage import idempotency
from livefeed.storage.store import Store


def _name() -> str:
    return "Reporter " + uuid.uuid4().hex[:8]


def test_an_admin_makes_lists_changes_and_revokes_a_token(http: httpx.Client) -> None:
    """POST answers the token once; GET lists name, role and time only; PATCH changes the role
    (it holds at the next request); DELETE revokes; a second one, or PATCH of nobody, is 404."""
    name = _name()
    made = http.post("/api/tokens", json={"name": name, "role": "contributor"}, headers=auth())
    assert made.status_code == 201, made.text
    body = made.json()
    token = body["token"]
    assert body == {"name": name, "role": "contributor", "created_at": body["created_at"],
                    "token": token}  # fmt: skip
    assert made.headers["location"] == "/api/tokens/" + quote(name, safe="")
    assert "idempotent-replayed" not in made.headers
    assert http.get("/api/me", headers=auth(token)).json() == {
        "editor": name,
        "role": "contributor",
    }

    listed = http.get("/api/tokens", headers=auth())
    assert listed.status_code == 200
    (mine,) = [t for t in listed.json()["tokens"] if t["name"] == name]
    assert mine == {"name": name, "role": "contributor", "created_at": body["created_at"]}
    assert token not in listed.text and "sha256" not in listed.text

    again = http.post("/api/tokens", json={"name": name, "role": "admin"}, headers=auth())
    assert again.status_code == 409 and again.json()["error"]["code"] == "token_exists"

    url = "/api/tokens/" + quote(name, safe="")
    changed = http.patch(url, json={"role": "editor"}, headers=auth())
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"name": name, "role": "editor", "created_at": body["created_at"]}
    assert http.get("/api/me", headers=auth(token)).json()["role"] == "editor"

    assert http.delete(url, headers=auth()).status_code == 204
    assert http.get("/api/me", headers=auth(token)).status_code == 401
    for response in (http.delete(url, headers=auth()), http.patch(url, json={"role": "admin"},
                                                                  headers=auth())):  # fmt: skip
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "token_not_found"


def test_a_name_with_a_slash_is_managed_by_its_url_encoded_path(http: httpx.Client) -> None:
    """Any name the CLI takes can be changed through the API: ``/`` and non-ASCII are
    percent-encoded in the path."""
    name = f"Łucja Żak / Kyiv {uuid.uuid4().hex[:6]}"
    assert http.post("/api/tokens", json={"name": name}, headers=auth()).status_code == 201
    url = "/api/tokens/" + quote(name, safe="")
    changed = http.patch(url, json={"role": "admin"}, headers=auth())
    assert changed.status_code == 200 and changed.json()["role"] == "admin", changed.text
    assert http.delete(url, headers=auth()).status_code == 204


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"name": "x", "role": "boss"}, 422, "invalid_field"),
        ({"name": " padded", "role": "editor"}, 422, "invalid_field"),
        ({"name": "", "role": "editor"}, 422, "empty_field"),
        ({"name": "x" * 101}, 422, "too_long"),
        ({"name": "bell\x07"}, 422, "invalid_text"),
        ({"role": "editor"}, 422, "missing_field"),
        ({"name": "x", "token": "mine"}, 422, "unknown_field"),
        (["x"], 400, "invalid_json"),
    ],
)
def test_a_bad_token_request_is_refused_and_changes_nothing(
    http: httpx.Client, body: object, status: int, code: str
) -> None:
    """A bad name, role or body: the JSON error with its code, and the list unchanged."""
    before = http.get("/api/tokens", headers=auth()).json()
    response = http.post("/api/tokens", json=body, headers=auth())
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    named = http.patch("/api/tokens/x", json={"role": "boss"}, headers=auth())
    assert named.status_code == 422 and named.json()["error"]["code"] == "invalid_field"
    assert http.get("/api/tokens", headers=auth()).json() == before


def test_a_retried_creation_makes_one_token_and_never_shows_it_again(http: httpx.Client) -> None:
    """The same Idempotency-Key again: 201 with the same record, ``token: null`` and
    ``Idempotent-Replayed``; the first token still works; the key with another body is 422."""
    name = _name()
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = http.post("/api/tokens", json={"name": name}, headers={**auth(), **key})
    assert first.status_code == 201, first.text
    token = first.json()["token"]
    retry = http.post("/api/tokens", json={"name": name}, headers={**auth(), **key})
    assert retry.status_code == 201, retry.text
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json() == {**first.json(), "token": None}
    assert http.get("/api/me", headers=auth(token)).json()["editor"] == name
    other = http.post("/api/tokens", json={"name": _name()}, headers={**auth(), **key})
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
    names = [t["name"] for t in http.get("/api/tokens", headers=auth()).json()["tokens"]]
    assert names.count(name) == 1


async def test_a_creation_retried_after_its_process_stopped_mid_way_has_one_effect(
    redis_server: RedisProcess,
) -> None:
    """A process that made the token but stopped before keeping the result: the retry knows the
    token as its own (its record names the intent), and keeps answering so once it is revoked."""
    redis = Redis.from_url(redis_server.url)
    try:
        store = Store(redis, "ti-" + uuid.uuid4().hex[:8])
        intent = idempotency.token_intent(store.keys, "k", "Admin", "/api/tokens", {"name": "A"})
        made, token = await store.tokens.issue("A", "editor", intent)
        assert token is not None
        await redis.set(intent.key, orjson.dumps({"fingerprint": intent.fingerprint}))
        assert await store.tokens.issue("A", "editor", intent) == (made, None)
        assert await store.tokens.revoke("A")
        assert await store.tokens.issue("A", "editor", intent) == (made, None)
        assert await store.tokens.records() == []
    finally:
        await redis.aclose()


@pytest.fixture(scope="module")
def nodes(redis_server: RedisProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
    list[LivefeedServer]
]:  # fmt: skip
    """Two app processes on one Redis and key prefix, with no operator token: only stored
    tokens work there."""
    prefix = "tn-" + uuid.uuid4().hex[:8]
    log_dir: Path = tmp_path_factory.mktemp("token-nodes")
    servers = [LivefeedServer(redis_server.url, prefix, LIVEFEED_EDITOR_TOKEN="") for _ in "ab"]
    try:
        for server in servers:
            server.start(log_dir=log_dir)
        yield servers
    finally:
        for server in servers:
            server.stop()


def test_a_role_change_or_revocation_holds_at_once_on_every_node(
    nodes: list[LivefeedServer], redis_server: RedisProcess
) -> None:
    """An admin (made with the CLI) demotes an editor on node A: on node B the next publish is
    403 ``forbidden_role``; revoked on B, the token is 401 on A at its next request."""
    a, b = nodes
    common = ["--redis-url", redis_server.url, "--key-prefix", a.prefix]
    created = livefeed("token", "create", "Desk admin", "--role", "admin", *common)
    assert created.returncode == 0, created.stderr
    admin = created.stdout.strip()
    with (
        httpx.Client(base_url=a.base, timeout=10) as on_a,
        httpx.Client(base_url=b.base, timeout=10) as on_b,
    ):
        feed = "f-" + uuid.uuid4().hex[:12]
        new = {"slug": feed, "title": "Two nodes", "timezone": "UTC"}
        assert on_a.post("/api/feeds", json=new, headers=auth(admin)).status_code == 201
        name = _name()
        made = on_a.post("/api/tokens", json={"name": name, "role": "editor"}, headers=auth(admin))
        editor = made.json()["token"]
        post = f"/api/feeds/{feed}/briefs"
        assert on_b.post(post, json={"headline": "h"}, headers=auth(editor)).status_code == 201

        url = "/api/tokens/" + quote(name, safe="")
        assert on_a.patch(url, json={"role": "contributor"}, headers=auth(admin)).status_code == 200
        refused = on_b.post(post, json={"headline": "h"}, headers=auth(editor))
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden_role"

        assert on_b.delete(url, headers=auth(editor)).status_code == 403
        assert on_b.delete(url, headers=auth(admin)).status_code == 204
        assert on_a.get("/api/me", headers=auth(editor)).status_code == 401


def test_the_last_admin_token_keeps_its_role_without_an_operator_token(
    nodes: list[LivefeedServer], redis_server: RedisProcess
) -> None:
    """Without LIVEFEED_EDITOR_TOKEN, demoting or revoking the only admin is 409 ``last_admin``
    and changes nothing; once another admin exists, it is allowed."""
    a, _ = nodes
    common = ["--redis-url", redis_server.url, "--key-prefix", a.prefix]
    name = _name()
    created = livefeed("token", "create", name, "--role", "admin", *common)
    assert created.returncode == 0, created.stderr
    admin = created.stdout.strip()
    url = "/api/tokens/" + quote(name, safe="")
    with httpx.Client(base_url=a.base, timeout=10) as http:
        others = [t for t in http.get("/api/tokens", headers=auth(admin)).json()["tokens"]
                  if t["role"] == "admin" and t["name"] != name]  # fmt: skip
        for other in others:  # an admin another test made: this one is to be the last
            gone = http.delete("/api/tokens/" + quote(other["name"], safe=""), headers=auth(admin))
            assert gone.status_code == 204
        for response in (http.patch(url, json={"role": "editor"}, headers=auth(admin)),
                         http.delete(url, headers=auth(admin))):  # fmt: skip
            assert response.status_code == 409, response.text
            assert response.json()["error"]["code"] == "last_admin"
        assert http.get("/api/me", headers=auth(admin)).json()["role"] == "admin"
        second = http.post("/api/tokens", json={"name": _name(), "role": "admin"},
                           headers=auth(admin))  # fmt: skip
        assert second.status_code == 201
        assert http.patch(url, json={"role": "editor"}, headers=auth(admin)).status_code == 200
