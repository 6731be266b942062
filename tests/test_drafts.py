"""Drafts and review through the API: contributors write and submit, editors send back and
publish; drafts stay off everything public; each change is one desk event; the audit.

HTTP tests run against the session's livefeed server, each on a feed of its own, with
contributor and editor tokens made in Redis (``store.tokens.create``).
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import redis.asyncio as aioredis
from websockets.sync.client import connect

from helpers import TOKEN, LivefeedServer, RedisProcess, auth, livefeed, make_feed
from livefeed.storage.keys import Keys
from livefeed.storage.store import Store


def make_token(redis_server: RedisProcess, server: LivefeedServer, role: str) -> tuple[str, str]:
    """A new token with ``role`` for a new name; (name, token)."""
    name = f"{role.title()} {uuid.uuid4().hex[:6]}"

    async def create() -> str:
        client = aioredis.Redis.from_url(redis_server.url)
        try:
            return await Store(client, server.prefix).tokens.create(name, role)
        finally:
            await client.aclose()

    return name, asyncio.run(create())


@pytest.fixture
def writer(redis_server: RedisProcess, server: LivefeedServer) -> tuple[str, dict[str, str]]:
    name, token = make_token(redis_server, server, "contributor")
    return name, auth(token)


@pytest.fixture
def editor(redis_server: RedisProcess, server: LivefeedServer) -> tuple[str, dict[str, str]]:
    name, token = make_token(redis_server, server, "editor")
    return name, auth(token)


def drafts_url(slug: str, *parts: str) -> str:
    return "/".join([f"/api/feeds/{slug}/drafts", *parts])


def new_draft(http: httpx.Client, slug: str, headers: dict[str, str], **fields: Any) -> Any:
    response = http.post(drafts_url(slug), json=fields, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def desk_events(redis_server: RedisProcess, server: LivefeedServer, slug: str) -> list[Any]:
    client = redis.Redis.from_url(redis_server.url)
    try:
        rows: list[Any] = client.xrange(Keys(server.prefix).desk(slug))  # type: ignore[assignment]
    finally:
        client.close()
    return [(fields[b"t"].decode(), json.loads(fields[b"d"])) for _, fields in rows]


def test_contributor_drafts_submits_and_an_editor_sends_back_then_publishes(
    http: httpx.Client, feed: str, writer: tuple[str, dict[str, str]],
    editor: tuple[str, dict[str, str]],
) -> None:  # fmt: skip
    """The review lifecycle: an incomplete draft saved, edited, submitted, sent back with a
    note, resubmitted and published as a brief whose author is the writer."""
    name, w = writer
    editor_name, e = editor
    draft = new_draft(http, feed, w, body="Notes so far")
    assert (draft["status"], draft["owner"], draft["author"], draft["version"]) == (
        "draft", name, name, 1,
    )  # fmt: skip
    assert draft["headline"] == "" and draft["brief"] is None
    edited = http.patch(drafts_url(feed, draft["id"]), json={"headline": "Bridge closed"},
                        headers={**w, "If-Match": '"1"'})  # fmt: skip
    assert edited.status_code == 200, edited.text
    assert (edited.json()["headline"], edited.json()["body"]) == (
        "Bridge closed",
        "<p>Notes so far</p>",
    )
    assert edited.headers["ETag"] == '"2"'
    submitted = http.post(drafts_url(feed, draft["id"], "submit"), headers=w)
    assert submitted.json()["status"] == "submitted" and submitted.json()["submitted_at"]
    queue = http.get(drafts_url(feed), params={"status": "submitted"}, headers=e).json()
    assert [d["id"] for d in queue["drafts"]] == [draft["id"]]
    back = http.post(drafts_url(feed, draft["id"], "send-back"), json={"note": "Source?"},
                     headers=e)  # fmt: skip
    assert (back.json()["status"], back.json()["note"]) == ("draft", "Source?")
    assert http.post(drafts_url(feed, draft["id"], "submit"), headers=w).status_code == 200
    published = http.post(drafts_url(feed, draft["id"], "publish"), headers=e)
    assert published.status_code == 201, published.text
    brief, done = published.json()["brief"], published.json()["draft"]
    assert (brief["headline"], brief["author"]) == ("Bridge closed", name)
    assert (done["status"], done["brief"], done["published_by"]) == (
        "published", brief["id"], editor_name,
    )  # fmt: skip
    public = http.get(f"/api/feeds/{feed}/briefs").json()["briefs"]
    assert [b["id"] for b in public] == [brief["id"]]
    assert brief["published_at"] == done["updated_at"]


def test_every_draft_change_appends_one_desk_event_with_the_draft_and_who(
    http: httpx.Client, feed: str, writer: tuple[str, dict[str, str]],
    editor: tuple[str, dict[str, str]], redis_server: RedisProcess, server: LivefeedServer,
) -> None:  # fmt: skip
    """Saved, submitted, published and discarded each append a desk event carrying the draft
    as it then stood, by {name, role} and at; nothing else reaches the desk stream."""
    name, w = writer
    editor_name, e = editor
    one = new_draft(http, feed, w, headline="One")
    http.post(drafts_url(feed, one["id"], "submit"), headers=w)
    http.post(drafts_url(feed, one["id"], "publish"), headers=e)
    two = new_draft(http, feed, w, headline="Two")
    assert http.delete(drafts_url(feed, two["id"]), headers=w).status_code == 204
    events = desk_events(redis_server, server, feed)
    assert [t for t, _ in events] == [
        "draft_saved", "draft_submitted", "draft_published", "draft_saved", "draft_discarded",
    ]  # fmt: skip
    assert [d["draft"]["version"] for _, d in events] == [1, 2, 3, 1, 2]
    assert events[2][1]["by"] == {"name": editor_name, "role": "editor"}
    assert events[2][1]["brief"] == events[2][1]["draft"]["brief"]
    assert events[0][1]["by"] == {"name": name, "role": "contributor"}
    assert all(d["at"] for _, d in events)
    listed = http.get(drafts_url(feed), headers=w).json()["drafts"]
    assert [d["id"] for d in listed] == [one["id"]], "a discarded draft leaves the lists"


def test_a_stale_if_match_on_a_draft_is_412_and_changes_nothing(
    http: httpx.Client, feed: str, writer: tuple[str, dict[str, str]]
) -> None:
    """An edit based on an older version is refused with 412 and the current version."""
    _, w = writer
    draft = new_draft(http, feed, w, headline="First")
    url = drafts_url(feed, draft["id"])
    assert http.patch(url, json={"body": "a"}, headers={**w, "If-Match": '"1"'}).status_code == 200
    stale = http.patch(url, json={"body": "b"}, headers={**w, "If-Match": '"1"'})
    assert stale.status_code == 412
    assert stale.json()["error"]["current_version"] == 2
    assert http.get(url, headers=w).json()["body"] == "<p>a</p>"


def test_a_contributor_may_not_publish_nor_touch_anothers_draft(
    http: httpx.Client, feed: str, writer: tuple[str, dict[str, str]],
    redis_server: RedisProcess, server: LivefeedServer,
) -> None:  # fmt: skip
    """403 forbidden_role to publish, send back or read the audit; 403 not_your_draft for
    another writer's draft; lists show a contributor only their own."""
    _, w = writer
    _, other_token = make_token(redis_server, server, "contributor")
    other = auth(other_token)
    draft = new_draft(http, feed, w, headline="Mine")
    url = drafts_url(feed, draft["id"])
    for response in (
        http.post(url + "/publish", headers=w),
        http.post(url + "/send-back", json={"note": "x"}, headers=w),
        http.get(f"/api/feeds/{feed}/audit", headers=w),
    ):
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "forbidden_role"
    for response in (
        http.get(url, headers=other),
        http.patch(url, json={"headline": "Theirs"}, headers=other),
        http.post(url + "/submit", headers=other),
        http.delete(url, headers=other),
    ):
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "not_your_draft"
    assert http.get(drafts_url(feed), headers=other).json()["drafts"] == []
    assert http.get(url, headers=w).json()["version"] == 1, "nothing changed"


def test_bad_draft_requests_are_json_4xx_and_change_nothing(
    http: httpx.Client, feed: str, writer: tuple[str, dict[str, str]],
    editor: tuple[str, dict[str, str]],
) -> None:  # fmt: skip
    """Unknown fields, limits, an unknown draft, a bad status filter, a bad time and an
    incomplete draft's publish each answer a JSON error with the brief's codes."""
    _, w = writer
    _, e = editor
    draft = new_draft(http, feed, w, headline="")
    url = drafts_url(feed, draft["id"])
    cases = [
        (http.post(drafts_url(feed), json={"nope": 1}, headers=w), 422, "unknown_field"),
        (http.post(drafts_url(feed), json={"headline": "x" * 301}, headers=w), 422, "too_long"),
        (http.patch(url, json={"tags": ["x" * 41]}, headers=w), 422, "invalid_tag"),
        (http.get(drafts_url(feed, "ffff00"), headers=w), 404, "draft_not_found"),
        (http.get(drafts_url(feed, "no%20such"), headers=w), 404, "draft_not_found"),
        (http.get(drafts_url(feed), params={"status": "x"}, headers=w), 400, "bad_status"),
        (http.post(url + "/publish", json={"at": "soon"}, headers=e), 422, "invalid_time"),
        (http.post(url + "/publish", headers=e), 422, "empty_field"),
        (http.post(url + "/unschedule", headers=e), 409, "draft_not_editable"),
        (http.patch(url, json={"body": "x"}, headers={**w, "If-Match": "1"}), 400, "bad_if_match"),
    ]
    for response, status, code in cases:
        assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    assert http.get(url, headers=w).json()["version"] == 1
    assert http.get(f"/api/feeds/{feed}/briefs").json()["briefs"] == []


def test_a_draft_is_published_once_however_often_publish_is_sent(
    http: httpx.Client, server: LivefeedServer, feed: str, editor: tuple[str, dict[str, str]]
) -> None:
    """Eight publishes of one draft at once, and a retry with the same Idempotency-Key,
    make one brief: the others are 409 draft_not_editable, the retry gets the first answer."""
    _, e = editor
    draft = new_draft(http, feed, e, headline="Once only")
    url = drafts_url(feed, draft["id"], "publish")
    keyed = {**e, "Idempotency-Key": uuid.uuid4().hex}
    statuses: list[int] = []

    def send() -> None:
        with httpx.Client(base_url=server.base, timeout=10) as client:
            statuses.append(client.post(url, headers=keyed).status_code)

    threads = [threading.Thread(target=send) for _ in range(4)]
    threads += [threading.Thread(target=lambda: statuses.append(
        httpx.post(server.base + url, headers=e, timeout=10).status_code)) for _ in range(4)]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses.count(201) >= 1 and set(statuses) <= {201, 409}, statuses
    assert statuses.count(409) <= 4
    retry = http.post(url, headers=keyed)
    assert retry.status_code == 201 and retry.headers.get("Idempotent-Replayed") == "true"
    briefs = http.get(f"/api/feeds/{feed}/briefs").json()["briefs"]
    assert [b["headline"] for b in briefs] == ["Once only"]
    assert retry.json()["brief"]["id"] == briefs[0]["id"]


MARKER = "zq-unpublished-7c1e"


def test_a_drafts_text_reaches_no_public_response_or_frame_until_published(
    http: httpx.Client, server: LivefeedServer, feed: str, writer: tuple[str, dict[str, str]],
    editor: tuple[str, dict[str, str]],
) -> None:  # fmt: skip
    """A marker in a draft (saved, submitted, scheduled, sent back) is in no public page, API
    answer, feed or WebSocket frame; once published, the brief carries it and nothing else of
    the desk does."""
    _, w = writer
    _, e = editor
    with connect(f"{server.ws_base}/ws/feeds/{feed}", open_timeout=10) as ws:
        ws.recv(timeout=10)  # the hello/ready frame
        first = new_draft(http, feed, w, headline=f"Head {MARKER}", body=f"Body {MARKER}")
        hidden = new_draft(http, feed, w, headline=f"Other {MARKER}-never")
        http.post(drafts_url(feed, first["id"], "submit"), headers=w)
        http.post(drafts_url(feed, hidden["id"], "submit"), headers=w)
        http.post(drafts_url(feed, hidden["id"], "send-back"), json={"note": f"n {MARKER}"},
                  headers=e)  # fmt: skip
        http.post(drafts_url(feed, hidden["id"], "publish"), json={"at": "2099-01-01T00:00:00Z"},
                  headers=e)  # fmt: skip
        before = _public_text(http, feed)
        assert MARKER not in before
        frames = _frames(ws, 0.5)
        assert MARKER not in frames
        published = http.post(drafts_url(feed, first["id"], "publish"), headers=e).json()
        after = _public_text(http, feed, published["brief"]["id"])
        assert f"Head {MARKER}" in after
        assert f"{MARKER}-never" not in after and f"n {MARKER}" not in after
        live = _frames(ws, 2.0, until=MARKER)
        assert f"Head {MARKER}" in live and f"{MARKER}-never" not in live
        assert "draft" not in json.loads(live.splitlines()[-1]).get("type", "")


def _frames(ws: Any, seconds: float, until: str | None = None) -> str:
    """What the socket sent within ``seconds`` (or until a frame holds ``until``), one a line."""
    got: list[str] = []
    try:
        while True:
            text = ws.recv(timeout=seconds)
            got.append(str(text))
            if until is not None and until in str(text):
                break
    except TimeoutError:
        pass
    return "\n".join(got)


def _public_text(http: httpx.Client, slug: str, brief_id: str | None = None) -> str:
    """Every public page, API answer and feed of ``slug``, concatenated."""
    today = http.get(f"/api/feeds/{slug}/days").json()
    days = [d["date"] for d in today.get("days", [])]
    paths = [
        "/", f"/feeds/{slug}", f"/feeds/{slug}/days", f"/feeds/{slug}/atom.xml",
        f"/feeds/{slug}/feed.json", f"/embed/{slug}", "/api/feeds", f"/api/feeds/{slug}",
        f"/api/feeds/{slug}/briefs", f"/api/feeds/{slug}/days", f"/api/feeds/{slug}/key-events",
        f"/api/feeds/{slug}/lead", f"/api/feeds/{slug}/summary",
    ]  # fmt: skip
    for day in days:
        paths += [f"/feeds/{slug}/days/{day}", f"/api/feeds/{slug}/days/{day}",
                  f"/feeds/{slug}/days/{day}/atom.xml", f"/feeds/{slug}/days/{day}/feed.json"]  # fmt: skip
    if brief_id:
        paths += [f"/api/feeds/{slug}/briefs/{brief_id}",
                  f"/api/feeds/{slug}/briefs/{brief_id}/history",
                  f"/feeds/{slug}/briefs/{brief_id}/changes"]  # fmt: skip
    texts = []
    for path in paths:
        response = http.get(path, follow_redirects=True)
        assert response.status_code in (200, 404), (path, response.status_code)
        texts.append(response.text)
    return "\n".join(texts)


def test_the_audit_names_writer_and_publisher_newest_first_and_pages(
    http: httpx.Client, feed: str, writer: tuple[str, dict[str, str]],
    editor: tuple[str, dict[str, str]],
) -> None:  # fmt: skip
    """An admin reads every desk action newest first, paged by cursor; the published line
    names the draft's owner and the editor who published it, and the brief."""
    name, w = writer
    editor_name, e = editor
    draft = new_draft(http, feed, w, headline="Audited")
    http.post(drafts_url(feed, draft["id"], "submit"), headers=w)
    brief = http.post(drafts_url(feed, draft["id"], "publish"), headers=e).json()["brief"]
    assert http.get(f"/api/feeds/{feed}/audit", headers=e).status_code == 403
    first = http.get(f"/api/feeds/{feed}/audit", params={"limit": 2}, headers=auth(TOKEN)).json()
    assert [line["action"] for line in first["audit"]] == ["draft_published", "draft_submitted"]
    top = first["audit"][0]
    assert (top["owner"], top["by"], top["brief"], top["draft"]) == (
        name, {"name": editor_name, "role": "editor"}, brief["id"], draft["id"],
    )  # fmt: skip
    rest = http.get(f"/api/feeds/{feed}/audit", params={"cursor": first["next_cursor"]},
                    headers=auth(TOKEN)).json()  # fmt: skip
    assert [line["action"] for line in rest["audit"]] == ["draft_saved"]
    assert rest["next_cursor"] is None
    assert rest["audit"][0]["by"] == {"name": name, "role": "contributor"}
    bad = http.get(f"/api/feeds/{feed}/audit", params={"cursor": "x"}, headers=auth(TOKEN))
    assert bad.status_code == 400


def test_export_audit_adds_the_desk_actions_to_an_export(
    http: httpx.Client, feed: str, writer: tuple[str, dict[str, str]],
    redis_server: RedisProcess, server: LivefeedServer, tmp_path: Path,
) -> None:  # fmt: skip
    """``livefeed export --audit`` ends with the audit, oldest first, as {"audit": line}
    lines; such an export imports into a new feed (the audit lines are skipped)."""
    name, w = writer
    draft = new_draft(http, feed, w, headline="Exported")
    http.post(drafts_url(feed, draft["id"], "publish"), headers=auth(TOKEN))
    out = tmp_path / "export.jsonl"
    common = ("--redis-url", redis_server.url, "--key-prefix", server.prefix)
    done = livefeed("export", feed, "--audit", "-o", str(out), *common)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    audit = [line["audit"] for line in lines if "audit" in line]
    assert [a["action"] for a in audit] == ["draft_saved", "draft_published"]
    assert audit[1]["owner"] == name and audit[1]["by"]["role"] == "admin"
    assert "audit" not in lines[0] and lines[0]["headline"] == "Exported"
    plain = livefeed("export", feed, *common)
    assert "audit" not in plain.stdout
    target = make_feed(http)
    imported = livefeed("import", target, str(out), *common)
    assert imported.returncode == 0, imported.stderr
    assert [b["headline"] for b in http.get(f"/api/feeds/{target}/briefs").json()["briefs"]] == [
        "Exported"
    ]
