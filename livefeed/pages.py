"""Server-rendered HTML pages: readable without JavaScript, then brought to life by web/feed.js."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from livefeed.models import StreamId, local_time_label, now_ms, zone_label
from livefeed.store import Store

# A strict policy: no inline script or style, sockets only back to this origin.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


def _templates(request: Request) -> Jinja2Templates:
    templates: Jinja2Templates = request.app.state.templates
    return templates


def _render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    response = _templates(request).TemplateResponse(request, name, context, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    return response


async def index_page(request: Request) -> Response:
    store: Store = request.app.state.store
    return _render(request, "index.html", {"feeds": await store.list_feeds()})


async def feed_page(request: Request) -> Response:
    """The live page: latest briefs newest first (or an older page with ``?before=``)."""
    store: Store = request.app.state.store
    settings = request.app.state.settings
    slug = request.path_params["feed"]
    feed = await store.get_feed(slug)
    if feed is None:
        return _render(request, "not_found.html", {"what": f"feed “{slug}”"}, status=404)
    raw_before = request.query_params.get("before") or None
    before = StreamId.parse(raw_before, name="before") if raw_before else None
    briefs, older = await store.latest_briefs(slug, settings.page_size, before)
    bounds = await store.bounds(slug)
    now = now_ms()
    for brief in briefs:
        brief["local_time"] = local_time_label(StreamId.parse(brief["id"]).ms, feed.timezone, now)
    return _render(
        request,
        "feed.html",
        {
            "feed": feed,
            "briefs": briefs,
            "before": raw_before,
            "older_before": None if older is None else str(older),
            "last_event_id": str(bounds.last_generated),
            "tz_label": zone_label(feed.timezone, now),
        },
    )
