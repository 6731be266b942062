"""``GET /api/feeds/{feed}/search``: briefs matching words, as they stand, newest first."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from livefeed.http._helpers import feed_slug, json_response, parse_limit, state
from livefeed.limits import SEARCH_PAGE, SEARCH_PAGE_MAX
from livefeed.model.ids import StreamId
from livefeed.model.search import SearchResults, parse_query
from livefeed.newsroom.search import SearchIndex


async def find(request: Request, slug: str) -> SearchResults:
    """The page of hits ``?q=&cursor=&limit=`` asks for in feed ``slug`` (400 for a bad one)."""
    params = request.query_params
    query = parse_query(params.get("q"))
    limit = parse_limit(params.get("limit"), SEARCH_PAGE, SEARCH_PAGE_MAX)
    raw_cursor = params.get("cursor")
    cursor = StreamId.parse(raw_cursor, name="cursor") if raw_cursor else None
    index: SearchIndex = request.app.state.search
    return await index.search(slug, query, limit, cursor)


async def search_feed(request: Request) -> Response:
    store, _ = state(request)
    feed = await store.require_feed(feed_slug(request))
    return json_response(await find(request, feed.slug))
