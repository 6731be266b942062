"""``/feeds/{feed}/search?q=``: search results rendered on the server, for readers without JS.

The same hits as ``GET /api/feeds/{feed}/search`` (``http.search.find``); each match is a
<mark> around escaped text, as web/js/search.js builds it on the live page.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from livefeed.errors import BadRequest
from livefeed.http.search import find
from livefeed.limits import SEARCH_QUERY_MAX
from livefeed.model.days import local_time_label
from livefeed.model.ids import StreamId
from livefeed.pages.views import not_found, render
from livefeed.storage.store import Store

TEMPLATE_GLOBALS = {"search_max": SEARCH_QUERY_MAX}
"""What _search_form.html reads on every page that has the search box."""


async def search_page(request: Request) -> Response:
    """The hits for ``?q=``, newest first, a page at a time; a bad query says why (400)."""
    store: Store = request.app.state.store
    slug = request.path_params["feed"]
    feed = await store.get_feed(slug)
    if feed is None:
        return not_found(request, f"feed “{slug}”")
    context = {"feed": feed, "lang": feed.language, "q": request.query_params.get("q", "")}
    try:
        results = await find(request, slug)
    except BadRequest as exc:
        return render(request, "search.html", {**context, "problem": exc.message}, status=400)
    now = await store.now_ms()
    hits = [
        {
            "hit": h,
            "local_time": local_time_label(StreamId.parse(h.brief.id).ms, feed.timezone, now),
        }
        for h in results.hits
    ]
    return render(request, "search.html", {**context, "hits": hits, "next": results.next})
