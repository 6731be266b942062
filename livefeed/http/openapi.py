"""The HTTP API described as an OpenAPI 3.1 document, served as JSON (/api: pages/reference.py).

The schemas of feeds and briefs, and of what editors send, are generated from the models
(``MODELS``, livefeed/model/); the rest is written by hand from what the handlers do
(``http/feeds.py``, ``editing.py``, ``http/days.py``, ``pages/views.py``, ``syndication.py``).
``tests/test_openapi.py`` checks that it names every route and runs schemathesis against a live
server, so a handler that drifts from it fails there. Every error answer a route can give is
listed with its codes; the one WebSocket route is described under ``x-websockets``. Its parts
are in ``openapi_schema.py`` (builders, error codes, component schemas) and ``openapi_paths.py``
(the paths that stand apart); this module puts the document together and serves it.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from livefeed.config import Settings
from livefeed.http._helpers import json_response
from livefeed.http.days import DAY_PAGE, DAY_PAGE_MAX
from livefeed.http.openapi_desk import desk_paths, desk_schemas
from livefeed.http.openapi_paths import (
    _media,
    _replayable,
    _story_paths,
    _syndication,
    _token_paths,
    _websocket,
)
from livefeed.http.openapi_push import push_paths, push_schemas
from livefeed.http.openapi_schema import (
    _BRIEF_404,
    _BRIEF_CODES,
    _DATE,
    _EMBED_CODES,
    _FEED_404,
    _IF_MATCH,
    _VALIDATION_CODES,
    STREAM_ID,
    _errors,
    _html,
    _json,
    _op,
    _param,
    _ref,
    _schemas,
    _string,
)
from livefeed.http.since import since_paths, since_schemas
from livefeed.limits import SEARCH_PAGE, SEARCH_PAGE_MAX, SEARCH_QUERY_MAX, SEARCH_WORDS_MAX
from livefeed.model.roles import Action
from livefeed.model.schema import TAG_MAX

# --- the paths ------------------------------------------------------------------------------


def _paths(settings: Settings) -> dict[str, Any]:
    feed = _param("feed", "path", _string(), "the feed's slug")
    brief = _param("brief", "path", _string(pattern=STREAM_ID), "the brief's id")
    date = _param("date", "path", _string(pattern=_DATE), "a calendar day, YYYY-MM-DD")
    if_match = _param(
        "If-Match", "header", _string(pattern=_IF_MATCH),
        'the version you edited, e.g. "2"; a newer one answers 412',
    )  # fmt: skip
    before = _param("before", "query", _string(pattern=STREAM_ID), "only briefs older than this id")
    cursor = _param("cursor", "query", _string(pattern=STREAM_ID), "`next` of the previous page")
    topic = (
        _param("tag", "query", {"type": "string", "minLength": 1, "maxLength": TAG_MAX},
               "only briefs with this tag, matched case-folded (Kharkiv = kharkiv)"),
        _param("key_event", "query", {"type": "string", "enum": ["true"]},
               "only key events (with `tag`: key events with the tag)"),
    )  # fmt: skip
    bad_topic = ("bad_tag", "bad_key_event")

    def limit(default: int, maximum: int) -> dict[str, Any]:
        schema = {"type": "integer", "minimum": 1, "maximum": maximum, "default": default}
        return _param("limit", "query", schema, f"page size, 1 to {maximum}")

    search = (
        _param("q", "query", _string(minLength=1, maxLength=SEARCH_QUERY_MAX),
               f"words to find, at most {SEARCH_WORDS_MAX}", required=True),
        _param("cursor", "query", _string(pattern=STREAM_ID), "`next` of the previous page"),
    )  # fmt: skip
    bad_body = (400, ("invalid_json",))
    created = {"Location": "where the new resource is"}
    return {
        "/": {"get": _op("indexPage", "pages", "The list of feeds",
                         {"200": _html("the index page"), **_errors(503)})},
        "/feeds/{feed}": {"get": _op(
            "feedPage", "pages", "A feed's live reader page",
            {"200": _html("latest briefs, newest first; feed.js makes it live"),
             "404": _html("no such feed"),
             **_errors((400, ("bad_before", *bad_topic)), 503)},
            parameters=(feed, before, *topic),
        )},
        "/feeds/{feed}/search": {"get": _op(
            "searchPage", "pages", "Search a feed: the hits as a page, for readers without JS",
            {"200": _html("hits newest first, each match in <mark>"),
             "400": _html("a query or cursor that is not valid, and why"),
             "404": _html("no such feed"), **_errors(503)},
            parameters=(feed, *search),
        )},
        "/feeds/{feed}/days": {"get": _op(
            "daysPage", "pages", "Go to a day of the archive",
            {"303": {"description": "redirect to the chosen day, or the latest with briefs",
                     "headers": {"Location": {"required": True, "schema": {"type": "string"}}}},
             "404": _html("no such feed, or no briefs yet"), **_errors(503)},
            parameters=(feed, _param("date", "query", _string(), "the day to show")),
        )},
        "/feeds/{feed}/days/{date}": {"get": _op(
            "dayPage", "pages", "A day's briefs, oldest first, with the replay control",
            {"200": _html("the day page"),
             "404": _html("no such feed, or a date or cursor that is not valid"),
             **_errors((400, bad_topic), 503)},
            parameters=(feed, date, cursor, *topic),
        )},
        "/feeds/{feed}/briefs/{brief}/changes": {"get": _op(
            "changesPage", "pages", "What changed: a brief's public corrections as word diffs",
            {"200": _html("each correction's note, and its headline and text before and after"),
             "404": _html("no such feed or brief"), **_errors(503)},
            parameters=(feed, brief),
        )},
        "/embed/{feed}": {"get": _op(
            "embedPage", "pages", "The latest briefs, compact, for an iframe on other sites",
            {"200": _html("framable by the embed ancestors; embed.js keeps it live"),
             "404": _html("no such feed"), **_errors((400, bad_topic), 503)},
            parameters=(feed, _param(
                "limit", "query", {"type": "integer", "minimum": 1, "maximum": 50, "default": 10},
                "how many briefs; more than 50 shows 50, anything else not a number the default",
            ), *topic),
        )},
        **_syndication(feed, date),
        "/editor": {"get": _op("editorPage", "pages", "The newsroom's editor page",
                               {"200": _html("signs in with a token in the browser")})},
        **{path: {"get": _op(
            f"favicon{path[-3:].title()}", "pages", "The site's icon",
            {"200": {"description": "the icon, cached for a week", "content": {media: {}}}},
        )} for path, media in (("/favicon.ico", "image/x-icon"),
                               ("/favicon.svg", "image/svg+xml"))},
        "/api": {"get": _op("apiReference", "service", "This API reference as a page",
                            {"200": _html("every operation of the OpenAPI document")})},
        "/openapi.json": {"get": _op(
            "openapiDocument", "service", "This OpenAPI document",
            {"200": _json({"type": "object"}, "OpenAPI 3.1")},
        )},
        "/metrics": {"get": _op(
            "metrics", "service", "Prometheus metrics, summed over the worker processes",
            {"200": {"description": "the text exposition format, or OpenMetrics if accepted",
                     "content": {"text/plain": {"schema": {"type": "string"}},
                                 "application/openmetrics-text": {"schema": {"type": "string"}}}}},
        )},
        "/healthz": {"get": _op(
            "health", "service", "Whether Redis answers, with this worker's load",
            {"200": _json(_ref("Health"), "healthy"),
             "503": _json(_ref("Health"), "Redis does not answer within two seconds")},
        )},
        "/static/{path}": {"get": _op(
            "staticFile", "pages", "Scripts, styles and images of the pages",
            {"200": {"description": "the file", "content": {"*/*": {}}},
             "304": {"description": "not modified since the ETag sent"},
             **_errors((404, ("not_found",)))},
            parameters=(_param("path", "path", _string(), "file under web/"),),
        )},
        "/api/feeds": {
            "get": _op("listFeeds", "feeds", "Every feed",
                       {"200": _json(_ref("FeedList"), "the feeds"), **_errors(503)}),
            "post": _replayable(_op(
                "createFeed", "feeds", "Create a feed",
                {"201": _json(_ref("Feed"), "the new feed", **created),
                 **_errors(bad_body, (409, ("feed_exists",)),
                           (422, (*_VALIDATION_CODES, "invalid_slug", "invalid_timezone",
                                  "invalid_language")), 503)},
                body=_ref("NewFeed"), needs=Action.PUBLISH,
            )),
        },
        "/api/me": {"get": _op(
            "me", "editor", "Who the token belongs to",
            {"200": _json(_ref("Editor"), "the editor"), **_errors(503)}, needs=Action.READ_DESK,
        )},
        "/api/feeds/{feed}": {
            "get": _op("getFeed", "feeds", "A feed and the id to resume its stream from",
                       {"200": _json(_ref("FeedWithPosition"), "the feed"),
                        **_errors(_FEED_404, 503)},
                       parameters=(feed,)),
            "patch": _replayable(_op(
                "updateFeed", "editor",
                "End or reopen coverage, retitle, or set the language or description",
                {"200": _json(_ref("Feed"), "the feed as it now stands"),
                 **_errors((400, ("invalid_json", "empty_patch")), _FEED_404,
                           (422, (*_VALIDATION_CODES, "invalid_field", "invalid_language")), 503)},
                parameters=(feed,), body=_ref("FeedPatch"), needs=Action.PUBLISH,
                description="Publishing to an ended feed answers 409 `feed_ended`.",
            )),
        },
        "/api/feeds/{feed}/briefs": {
            "get": _op(
                "listBriefs", "briefs", "Briefs as they stand, newest first",
                {"200": _json(_ref("BriefPage"), "a page of briefs"),
                 **_errors((400, ("bad_limit", "bad_before", *bad_topic)), _FEED_404, 503)},
                parameters=(feed, limit(settings.page_size, settings.max_page_size), before,
                            *topic),
            ),
            "post": _replayable(_op(
                "publishBrief", "briefs", "Publish a brief",
                {"201": _json(_ref("Brief"), "the stored brief, once Redis has it", **created),
                 **_errors(bad_body, _FEED_404, (409, ("feed_ended", "busy")),
                           (422, _BRIEF_CODES), 503)},
                parameters=(feed,), body=_ref("NewBrief"), needs=Action.PUBLISH,
                description="`busy` (409): the brief could not be placed after a few tries; "
                "send it again (with its Idempotency-Key, safely).",
            )),
        },
        "/api/feeds/{feed}/briefs/preview": {"post": _op(
            "previewBrief", "briefs", "The brief as it would be stored; nothing is stored",
            {"200": _json(_ref("BriefPreview"), "the sanitised brief"),
             **_errors(bad_body, _FEED_404, (422, _BRIEF_CODES), 503)},
            parameters=(feed,), body=_ref("NewBrief"), needs=Action.READ_DESK,
        )},
        "/api/embeds/preview": {"post": _op(
            "previewEmbed", "editor", "The card a brief quoting this URL would show",
            {"200": _json(_ref("Embed"), "the snapshot, resolved now; nothing is stored but "
                          "its thumbnail (in media storage)"),
             **_errors(bad_body, (422, (*_VALIDATION_CODES, "invalid_url", *_EMBED_CODES)))},
            body=_ref("EmbedRef"), needs=Action.WRITE_DRAFT,
            description="`embed_not_allowed`: the provider is not allowed here, or the URL is "
            "not https or not a public address; `embed_not_found`: the post or page is gone; "
            "`embed_unavailable`: the provider is down or did not answer as it should.",
        )},
        "/api/feeds/{feed}/briefs/{brief}": {
            "get": _op(
                "getBrief", "briefs", "One brief as it stands",
                {"200": _json(_ref("Brief"), "the brief", ETag="its version, quoted"),
                 **_errors(_BRIEF_404, 503)},
                parameters=(feed, brief),
                description="Retracted briefs are 404; their history stays.",
            ),
            "patch": _replayable(_op(
                "correctBrief", "editor", "Correct a brief in place",
                {"200": _json(_ref("Brief"), "the corrected brief", ETag="its new version"),
                 **_errors((400, ("invalid_json", "empty_patch", "bad_if_match")), _BRIEF_404,
                           (409, ("busy",)), (412, ("stale_version",)),
                           (422, (*_BRIEF_CODES, "invalid_field")), 503)},
                parameters=(feed, brief, if_match), body=_ref("BriefPatch"), needs=Action.PUBLISH,
                description="Without If-Match the correction is applied on top of whatever "
                "version is current; when concurrent corrections keep winning it answers 409 "
                "`busy`: send it again.",
            )),
            "delete": _replayable(_op(
                "retractBrief", "editor", "Retract a brief",
                {"204": {"description": "retracted"},
                 **_errors((400, ("bad_if_match",)), _BRIEF_404, (412, ("stale_version",)), 503)},
                parameters=(feed, brief, if_match), needs=Action.PUBLISH,
            )),
        },
        "/api/feeds/{feed}/briefs/{brief}/history": {"get": _op(
            "briefHistory", "briefs", "Every version of a brief, with editor and time",
            {"200": _json(_ref("History"), "oldest first"), **_errors(_BRIEF_404, 503)},
            parameters=(feed, brief),
        )},
        "/api/feeds/{feed}/pin": {
            "put": _replayable(_op(
                "pinBrief", "editor", "Pin a brief above the feed",
                {"200": _json(_ref("Pinned"), "the pinned brief"),
                 **_errors(bad_body, _BRIEF_404, (422, ("invalid_field",)), 503)},
                parameters=(feed,), body=_ref("Pin"), needs=Action.PUBLISH,
            )),
            "delete": _replayable(_op(
                "unpinBrief", "editor", "Unpin",
                {"200": _json(_ref("Pinned"), "nothing is pinned"), **_errors(_FEED_404, 503)},
                parameters=(feed,), needs=Action.PUBLISH,
            )),
        },
        **{
            f"/api/feeds/{{feed}}/{kind}": _story_paths(kind, feed, if_match, bad_body)
            for kind in ("lead", "summary")
        },
        "/api/feeds/{feed}/key-events": {"get": _op(
            "keyEvents", "briefs", "Key-event briefs, newest first",
            {"200": _json(_ref("BriefList"), "the key events"), **_errors(_FEED_404, 503)},
            parameters=(feed,),
        )},
        "/api/feeds/{feed}/search": {"get": _op(
            "searchFeed", "briefs", "Briefs matching words, as they stand, newest first",
            {"200": _json(_ref("SearchResults"), "a page of hits, each match marked"),
             **_errors((400, ("bad_query", "bad_limit", "bad_cursor")), _FEED_404, 503)},
            parameters=(feed, *search, limit(SEARCH_PAGE, SEARCH_PAGE_MAX)),
            description="Every word must be in the headline, the text, the tags or the author "
            "(the last word as a prefix); case, diacritics, Arabic harakat and tatweel, and "
            "Unicode normalisation do not matter.",
        )},
        "/api/feeds/{feed}/days": {"get": _op(
            "listDays", "archive", "Days that have briefs, newest first",
            {"200": _json(_ref("DayList"), "the days"), **_errors(_FEED_404, 503)},
            parameters=(feed,),
        )},
        "/api/feeds/{feed}/days/{date}": {"get": _op(
            "getDay", "archive", "A day's briefs, oldest first, in pages",
            {"200": _json(_ref("Day"), "a page of the day", ETag="the page's ETag",
                          **{"Cache-Control": "a minute for finished days, else no-cache"}),
             "304": {"description": "unchanged since the ETag in If-None-Match"},
             **_errors((400, ("bad_limit", "bad_date", "bad_cursor", *bad_topic)), _FEED_404,
                       503)},
            parameters=(
                feed, date, limit(DAY_PAGE, DAY_PAGE_MAX), cursor, *topic,
                _param("If-None-Match", "header", _string(), "ETags you have"),
            ),
        )},
        **_media(),
        **desk_paths(),
        **push_paths(),
        **since_paths(),
        **_token_paths(),
    }  # fmt: skip


def openapi_document(settings: Settings | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every HTTP route; page limits follow ``settings``."""
    settings = settings or Settings()
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "livefeed",
            "version": "0.1.0",
            "description": (
                "A live blog: editors publish briefs, readers follow them over a WebSocket. "
                'Every error is JSON, `{"error": {"code", "message", "field"?}}`, and '
                "changes nothing. Editor operations need `Authorization: Bearer <token>`."
            ),
        },
        "tags": [
            {"name": name}
            for name in (
                "feeds",
                "briefs",
                "story",
                "editor",
                "desk",
                "archive",
                "syndication",
                "push",
                "pages",
                "service",
            )
        ],
        "paths": _paths(settings),
        "components": {
            "schemas": {**_schemas(), **desk_schemas(), **push_schemas(), **since_schemas()},
            "securitySchemes": {
                "editorToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "an editor token (`livefeed token create NAME`)",
                }
            },
        },
        "x-websockets": _websocket(),
    }


# --- serving it -----------------------------------------------------------------------------


async def openapi_json(request: Request) -> Response:
    """``GET /openapi.json``."""
    return json_response(openapi_document(request.app.state.settings))
