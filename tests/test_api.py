"""The JSON API against a real livefeed server and a real Redis: feeds, publishing, paging."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import TypedDict

import httpx
import pytest

from helpers import TOKEN, LivefeedServer, RedisProcess, auth, make_feed, publish, stream_length

ISO_MS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


def test_publish_answers_201_with_the_stored_brief(http: httpx.Client, feed: str) -> None:
    response = http.post(
        f"/api/feeds/{feed}/briefs",
        json={"headline": "Bridge closed", "body": "Police closed the bridge.", "author": "Ana",
              "url": "https://example.org/a", "tags": ["roads"]},
        headers=auth(),
    )  # fmt: skip
    assert response.status_code == 201
    brief = response.json()
    assert re.fullmatch(r"\d+-\d+", brief["id"])
    assert ISO_MS.fullmatch(brief["published_at"])
    assert brief["headline"] == "Bridge closed"
    assert brief["body"] == "<p>Police closed the bridge.</p>"
    assert brief["author"] == "Ana"
    assert brief["url"] == "https://example.org/a" and brief["tags"] == ["roads"]
    listed = http.get(f"/api/feeds/{feed}/briefs").json()["briefs"]
    assert listed == [brief]


def test_author_defaults_to_the_editor_name(http: httpx.Client, feed: str) -> None:
    assert publish(http, feed, "No byline")["author"] == "Newsroom"


def test_briefs_list_newest_first_and_pages_back_with_before(http: httpx.Client, feed: str) -> None:
    ids = [publish(http, feed, f"Brief {n}")["id"] for n in range(5)]
    first = http.get(f"/api/feeds/{feed}/briefs", params={"limit": 2}).json()
    assert [b["id"] for b in first["briefs"]] == ids[::-1][:2]
    second = http.get(
        f"/api/feeds/{feed}/briefs", params={"limit": 2, "before": first["next_before"]}
    ).json()
    assert [b["id"] for b in second["briefs"]] == ids[::-1][2:4]
    last = http.get(
        f"/api/feeds/{feed}/briefs", params={"limit": 2, "before": second["next_before"]}
    ).json()
    assert [b["id"] for b in last["briefs"]] == ids[:1]
    assert last["next_before"] is None


def test_feeds_are_created_explicitly_and_listed(http: httpx.Client) -> None:
    slug = make_feed(http, timezone="America/New_York")
    feeds = http.get("/api/feeds").json()["feeds"]
    mine = [f for f in feeds if f["slug"] == slug]
    assert mine and mine[0]["timezone"] == "America/New_York"
    again = http.post(
        "/api/feeds", json={"slug": slug, "title": "Again", "timezone": "UTC"}, headers=auth()
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "feed_exists"


def test_publishing_to_an_unknown_feed_is_404_and_creates_nothing(
    http: httpx.Client, redis_server: RedisProcess, server: LivefeedServer
) -> None:
    slug = "never-created-" + uuid.uuid4().hex[:6]
    response = http.post(f"/api/feeds/{slug}/briefs", json={"headline": "x"}, headers=auth())
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "feed_not_found"
    assert stream_length(redis_server, server, slug) == 0
    assert http.get(f"/api/feeds/{slug}").status_code == 404


class Request(TypedDict, total=False):
    """What a bad publish sends, beyond the editor's token."""

    content: bytes
    json: object
    data: dict[str, str]
    headers: dict[str, str]


BAD_PUBLISHES: list[tuple[str, Request, int, str]] = [
    # (description, what to send, expected status, expected error code)
    ("malformed JSON", {"content": b'{"headline": ', "headers": {"content-type": "application/json"}}, 400, "invalid_json"),
    ("JSON that is not an object", {"json": ["headline"]}, 400, "invalid_json"),
    ("missing headline", {"json": {"body": "x"}}, 422, "missing_field"),
    ("empty headline", {"json": {"headline": "  "}}, 422, "empty_field"),
    ("headline of the wrong type", {"json": {"headline": 12}}, 422, "invalid_type"),
    ("headline over 300 characters", {"json": {"headline": "h" * 301}}, 422, "too_long"),
    ("body over 20,000 characters", {"json": {"headline": "h", "body": "b" * 20_001}}, 422, "too_long"),
    ("tags of the wrong type", {"json": {"headline": "h", "tags": "a,b"}}, 422, "invalid_type"),
    ("a url that is not http(s)", {"json": {"headline": "h", "url": "javascript:alert(1)"}}, 422, "invalid_url"),
    ("an unknown field", {"json": {"headline": "h", "headlin": "typo"}}, 422, "unknown_field"),
    ("a form body", {"data": {"headline": "h"}}, 415, "unsupported_media_type"),
    ("no content type", {"content": b'{"headline": "h"}'}, 415, "unsupported_media_type"),
    ("a body over the size limit", {"json": {"headline": "h", "body": "x" * 300_000}}, 413, "payload_too_large"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("what", "kwargs", "status", "code"), BAD_PUBLISHES, ids=[b[0] for b in BAD_PUBLISHES]
)
def test_bad_publish_gets_a_json_error_and_leaves_the_stream_unchanged(
    http: httpx.Client, redis_server: RedisProcess, server: LivefeedServer, feed: str,
    what: str, kwargs: Request, status: int, code: str,
) -> None:  # fmt: skip
    publish(http, feed, "Existing")
    response = http.post(
        f"/api/feeds/{feed}/briefs", headers={**auth(), **kwargs.get("headers", {})},
        content=kwargs.get("content"), json=kwargs.get("json"), data=kwargs.get("data"),
    )  # fmt: skip
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    assert stream_length(redis_server, server, feed) == 1


def test_a_body_over_the_limit_without_content_length_is_413(http: httpx.Client, feed: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"headline": "h", "body": "'
        for _ in range(40):
            yield b"x" * 10_000
        yield b'"}'

    response = http.post(
        f"/api/feeds/{feed}/briefs", content=chunks(),
        headers={**auth(), "content-type": "application/json"},
    )  # fmt: skip
    assert response.status_code == 413


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": TOKEN},
        {"Authorization": "Basic eDp5"},
    ],
    ids=["no token", "wrong token", "no scheme", "basic auth"],
)
def test_publish_without_a_valid_token_is_401(
    http: httpx.Client, redis_server: RedisProcess, server: LivefeedServer, feed: str,
    headers: dict[str, str],
) -> None:  # fmt: skip
    response = http.post(f"/api/feeds/{feed}/briefs", json={"headline": "h"}, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] in {"unauthorized", "invalid_token"}
    assert "wrong-token" not in response.text
    assert stream_length(redis_server, server, feed) == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"slug": "Not A Slug", "title": "t", "timezone": "UTC"}, "slug"),
        ({"slug": "ok-" + "x" * 70, "title": "t", "timezone": "UTC"}, "slug"),
        ({"slug": "tz-bad", "title": "t", "timezone": "Europe/Atlantis"}, "timezone"),
        ({"slug": "tz-bad", "title": "t", "timezone": 3}, "timezone"),
    ],
)
def test_invalid_feed_is_422(http: httpx.Client, payload: dict[str, object], field: str) -> None:
    response = http.post("/api/feeds", json=payload, headers=auth())
    assert response.status_code == 422
    assert response.json()["error"]["field"] == field


def test_creating_a_feed_needs_a_token(http: httpx.Client) -> None:
    response = http.post("/api/feeds", json={"slug": "x", "title": "t", "timezone": "UTC"})
    assert response.status_code == 401


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "ten"},
        {"before": "yesterday"},
        {"before": "1-2-3"},
    ],
)
def test_bad_paging_parameters_are_400(
    http: httpx.Client, feed: str, params: dict[str, str]
) -> None:
    response = http.get(f"/api/feeds/{feed}/briefs", params=params)
    assert response.status_code == 400
    assert response.json()["error"]["code"] in {"bad_limit", "bad_before"}


def test_unknown_routes_and_methods_get_json_errors(http: httpx.Client) -> None:
    assert http.get("/api/nothing").json()["error"]["code"] == "not_found"
    response = http.delete("/api/feeds")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_healthz_reports_redis_reachable(http: httpx.Client) -> None:
    response = http.get("/healthz")
    assert response.status_code == 200 and response.json()["redis"] == "ok"


def test_paging_before_the_first_possible_id_is_an_empty_page(
    http: httpx.Client, feed: str
) -> None:
    publish(http, feed, "Only")
    response = http.get(f"/api/feeds/{feed}/briefs", params={"before": "0"})
    assert response.status_code == 200 and response.json() == {"briefs": [], "next_before": None}
    assert http.get(f"/feeds/{feed}", params={"before": "0-0"}).status_code == 200
