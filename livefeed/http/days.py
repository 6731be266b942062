"""Earlier days of a feed: the day list and a day's briefs as JSON, cached by ETag."""

from __future__ import annotations

import hashlib

import orjson
from starlette.requests import Request
from starlette.responses import Response

from livefeed.http._helpers import feed_slug, json_response, parse_limit, state
from livefeed.model.brief import Brief
from livefeed.model.days import Day, parse_day
from livefeed.model.feed import Feed
from livefeed.model.ids import StreamId
from livefeed.model.topics import Topic, parse_topic
from livefeed.storage.store import Store

DAY_PAGE = 1000
DAY_PAGE_MAX = 5000


async def list_days(request: Request) -> Response:
    """``{"days": [{"date", "count"}]}``, newest first: the days that have briefs."""
    store, _ = state(request)
    feed = await store.require_feed(feed_slug(request))
    days = await store.days(feed.slug)
    return json_response({"days": [{"date": d, "count": c} for d, c in days]})


async def read_day(
    store: Store,
    feed: Feed,
    raw_date: str,
    raw_cursor: str | None,
    limit: int,
    topic: Topic | None = None,
) -> tuple[Day, list[Brief], StreamId | None]:
    """A day's briefs (of ``topic``) as they stand, oldest first, from ``raw_cursor`` on
    (validated here)."""
    day = parse_day(raw_date, feed.timezone)
    cursor = StreamId.parse(raw_cursor, name="cursor") if raw_cursor else None
    if topic is not None and topic.filtered:
        bounds = (day.start_ms, day.end_ms)
        briefs, after = await store.topic_briefs(feed.slug, topic, limit, day=bounds, after=cursor)
    else:
        briefs, after = await store.briefs_between(
            feed.slug, day.start_ms, day.end_ms, cursor, limit
        )
    return day, briefs, after


async def get_day(request: Request) -> Response:
    """``{"date", "timezone", "briefs", "next"}``; ``?cursor=<next>&limit=`` pages on;
    ``?tag=`` and/or ``?key_event=true`` keep to one topic.

    Answers ``If-None-Match`` with 304; a finished day may be cached briefly by anyone (it only
    changes when a brief of that day is corrected or retracted), today (by Redis's clock, which
    stamps the briefs) must be revalidated.
    """
    store, _ = state(request)
    feed = await store.require_feed(feed_slug(request))
    limit = parse_limit(request.query_params.get("limit"), DAY_PAGE, DAY_PAGE_MAX)
    day = parse_day(request.path_params["date"], feed.timezone)
    raw_cursor = request.query_params.get("cursor")
    cursor = StreamId.parse(raw_cursor, name="cursor") if raw_cursor else None
    topic = parse_topic(request.query_params)
    # Every change to a brief is an event in the feed's stream, so the stream's position and
    # length name the state of every day: the ETag comes from them, before any brief is read
    # (a revalidation costs one command), and read first, so the body is never older than it.
    bounds = await store.bounds(feed.slug)
    version = f"{feed.slug}|{day.iso}|{cursor}|{limit}|{bounds.last_generated}|{bounds.length}"
    if topic.filtered:
        version += f"|{topic.key}|{topic.key_event}"
    etag = '"' + hashlib.blake2b(version.encode(), digest_size=16).hexdigest() + '"'
    headers = {
        "ETag": etag,
        "Cache-Control": "public, max-age=60" if day.end_ms < await store.now_ms() else "no-cache",
    }
    if etag in _etags(request.headers.get("if-none-match", "")):
        return Response(status_code=304, headers=headers)
    if topic.filtered:
        raws, after = await store.topics.page(
            feed.slug, limit, tag=topic.key, key_event=topic.key_event,
            start_ms=day.start_ms, end_ms=day.end_ms, after=cursor,
        )  # fmt: skip
    else:
        raws, after = await store.brief_page(
            feed.slug, limit, day.start_ms, day.end_ms, after=cursor
        )
    # The stored briefs are JSON already: join them rather than decode and encode 5,000 of them.
    head = orjson.dumps({"date": day.iso, "timezone": feed.timezone})[:-1]
    tail = orjson.dumps({"next": None if after is None else str(after)})[1:]
    body = head + b',"briefs":[' + b",".join(raws) + b"]," + tail
    return Response(body, media_type="application/json", headers=headers)


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}
