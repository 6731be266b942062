"""``GET /api/feeds/{feed}/since/{id}``: what a returning reader missed, and its OpenAPI part.

Public and briefly cacheable: the answer for an id only grows as events are appended, and a
few seconds late is fine for a line above the feed. The fold is ``newsroom/since.py``.
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from livefeed.http._helpers import feed_slug, json_response, state
from livefeed.http.openapi_schema import STREAM_ID, _errors, _json, _op, _param, _ref, _string
from livefeed.limits import SINCE_MAX_EVENTS
from livefeed.model.since import SinceBrief, SinceCorrection, SinceLinks, SinceReport
from livefeed.newsroom.since import SinceCache, since_report

SINCE_MODELS: tuple[type[msgspec.Struct], ...] = (
    SinceReport, SinceBrief, SinceCorrection, SinceLinks,
)  # fmt: skip
CACHE_SECONDS = 5


async def get_since(request: Request) -> Response:
    """The ``SinceReport`` after the path's id."""
    store, _ = state(request)
    cache = getattr(request.app.state, "since_cache", None)
    if cache is None:  # one per process, made on first use
        cache = request.app.state.since_cache = SinceCache()
    report = await since_report(store, feed_slug(request), request.path_params["since"], cache)
    return json_response(report, headers={"Cache-Control": f"public, max-age={CACHE_SECONDS}"})


def since_schemas() -> dict[str, Any]:
    """The report's schemas, generated from ``model/since.py``; an answer has every field."""
    _, components = msgspec.json.schema_components(
        SINCE_MODELS, ref_template="#/components/schemas/{name}"
    )
    schemas: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(components))
    for schema in schemas.values():
        schema["required"] = list(schema["properties"])
    return schemas


def since_paths() -> dict[str, Any]:
    feed = _param("feed", "path", _string(), "the feed's slug")
    since = _param("since", "path", _string(pattern=STREAM_ID), "the last event id the reader saw")
    return {
        "/api/feeds/{feed}/since/{since}": {"get": _op(
            "sinceLastVisit", "briefs", "What happened after an event id: one line's worth",
            {"200": _json(_ref("SinceReport"), "the counts and lists",
                          **{"Cache-Control": f"public, max-age={CACHE_SECONDS}"}),
             **_errors((400, ("bad_since", "since_in_future")), (404, ("feed_not_found",)), 503)},
            parameters=(feed, since),
            description=f"Folds at most {SINCE_MAX_EVENTS} events; beyond that, or when events "
            "after the id are no longer in the stream, `too_much` is true and `links` say where "
            "to look. An id later than Redis's clock (by over 5 s) is `since_in_future`.",
        )},
    }  # fmt: skip
