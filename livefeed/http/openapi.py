"""The HTTP API described as an OpenAPI 3.1 document, served as JSON (/api: pages/reference.py).

The schemas of feeds and briefs, and of what editors send, are generated from the models
(``MODELS``, livefeed/model/); the rest is written by hand from what the handlers do
(``http/feeds.py``, ``editing.py``, ``http/days.py``, ``pages/views.py``, ``syndication.py``).
``tests/test_openapi.py`` checks that it names every route and runs schemathesis against a live
server, so a handler that drifts from it fails there. Every error answer a route can give is
listed with its codes; the one WebSocket route is described under ``x-websockets``.
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from livefeed.config import Settings
from livefeed.errors import (
    CLOSE_BAD_REQUEST,
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL,
    CLOSE_NORMAL,
    CLOSE_NOT_FOUND,
    CLOSE_POLICY,
    CLOSE_TOO_SLOW,
    CLOSE_TRY_AGAIN_LATER,
)
from livefeed.http._helpers import json_response
from livefeed.http.days import DAY_PAGE, DAY_PAGE_MAX
from livefeed.model.brief import Brief, BriefPatch, NewBrief
from livefeed.model.embed import EmbedRef
from livefeed.model.feed import Feed, FeedPatch, NewFeed
from livefeed.model.ids import FULL_ID_PATTERN, STREAM_ID_PATTERN
from livefeed.model.media import MEDIA_ID_PATTERN, RENDITION_TYPES, MediaInfo
from livefeed.model.schema import Pin
from livefeed.model.story import Lead, NewLead, NewSummary, Summary
from livefeed.storage.idempotency import KEY_PATTERN, TTL_SECONDS
from livefeed.stream.replay import MAX_SPEED, MIN_SPEED

STREAM_ID = STREAM_ID_PATTERN
"""A stream position as clients may send it: ``<ms>-<seq>`` or ``<ms>``."""
_FULL_ID = FULL_ID_PATTERN
_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_CLOCK = r"^[0-9]{2}:[0-9]{2}(:[0-9]{2})?$"
_IF_MATCH = r'^\s*(\*|(W/)?"[0-9]{1,9}")\s*$'  # weak tags are well-formed but never match

_ERROR_MEANING = {
    400: "Bad request",
    401: "No editor token, or one that is not valid or was revoked",
    404: "Not found",
    409: "Conflict",
    412: "The brief changed since the version sent; `error.current_version` says which is current",
    413: "The request body is over the size limit",
    415: "The request body is not `application/json`",
    422: "A field is not valid (`error.field` names it), or an Idempotency-Key was used for "
    "another request",
    429: "Over a rate limit; retry after `Retry-After` seconds",
    431: "The request's headers add up to more than the limit",
    503: "Redis is unreachable; retry after `Retry-After` seconds",
}
_VALIDATION_CODES = (
    "unknown_field", "missing_field", "empty_field", "invalid_type", "too_long", "invalid_text",
)  # fmt: skip
_EMBED_CODES = ("embed_not_allowed", "embed_not_found", "embed_unavailable")
_BRIEF_CODES = (
    *_VALIDATION_CODES, "invalid_url", "invalid_tag", "too_many_tags", "invalid_field",
    "too_many_media", "duplicate_media", "unknown_media", "missing_alt", "too_many_embeds",
    *_EMBED_CODES,
)  # fmt: skip
_STORY_CODES = (
    *_VALIDATION_CODES, "invalid_field", "missing_alt", "too_many_items", "too_many_media",
)  # fmt: skip


# --- small builders -------------------------------------------------------------------------


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(
    properties: dict[str, Any], required: tuple[str, ...] = (), *, closed: bool = False
) -> dict[str, Any]:
    """An object schema; ``closed`` when the server rejects fields it does not know."""
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    return schema


def _string(description: str = "", **constraints: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", **constraints}
    if description:
        schema["description"] = description
    return schema


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _json(schema: dict[str, Any], description: str, **headers: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }
    if headers:
        response["headers"] = {
            name: {"description": text, "required": True, "schema": {"type": "string"}}
            for name, text in headers.items()
        }
    return response


def _html(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


def _error(status: int, *codes: str) -> dict[str, Any]:
    """An error answer whose ``error.code`` is one of ``codes``."""
    schema = {
        "allOf": [
            _ref("Error"),
            {"properties": {"error": {"properties": {"code": {"enum": list(codes)}}}}},
        ]
    }
    description = f"{_ERROR_MEANING[status]}: " + ", ".join(f"`{c}`" for c in codes)
    headers: dict[str, str] = {}
    if status in (429, 503):
        headers["Retry-After"] = "seconds to wait before retrying"
    if status == 401:
        headers["WWW-Authenticate"] = 'always `Bearer realm="livefeed"`'
    return _json(schema, description, **headers)


def _errors(*statuses: int | tuple[int, tuple[str, ...]]) -> dict[str, Any]:
    """Error responses by status; a bare status takes its usual codes from ``_COMMON``."""
    out: dict[str, Any] = {}
    for item in statuses:
        status, codes = (item, _COMMON[item]) if isinstance(item, int) else item
        out[str(status)] = _error(status, *codes)
    return out


_COMMON: dict[int, tuple[str, ...]] = {
    401: ("unauthorized", "invalid_token"),
    413: ("payload_too_large",),
    415: ("unsupported_media_type",),
    429: ("rate_limited",),
    431: ("headers_too_large",),
    503: ("unavailable", "not_replicated"),
}
_FEED_404 = (404, ("feed_not_found",))
_BRIEF_404 = (404, ("feed_not_found", "brief_not_found"))


def _param(
    name: str, where: str, schema: dict[str, Any], description: str, *, required: bool = False
) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": required or where == "path",
        "description": description,
        "schema": schema,
    }


def _op(
    operation_id: str,
    tag: str,
    summary: str,
    responses: dict[str, Any],
    *,
    parameters: tuple[dict[str, Any], ...] = (),
    body: dict[str, Any] | None = None,
    editor: bool = False,
    description: str = "",
) -> dict[str, Any]:
    """One operation. Editor operations need the bearer token and share its failures.

    Any request can be refused for oversized headers (431), before it reaches a handler.
    """
    operation: dict[str, Any] = {"operationId": operation_id, "tags": [tag], "summary": summary}
    if description:
        operation["description"] = description
    if parameters:
        operation["parameters"] = list(parameters)
    if body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body}},
        }
        responses = {**_errors(413, 415), **responses}
    if editor:
        operation["security"] = [{"editorToken": []}]
        responses = {**_errors(401, 429), **responses}
    responses = {**_errors(431), **responses}
    operation["responses"] = dict(sorted(responses.items()))
    return operation


# --- the schemas ----------------------------------------------------------------------------


MODELS: tuple[type[msgspec.Struct], ...] = (
    Feed, NewFeed, FeedPatch, Brief, NewBrief, BriefPatch, Pin, EmbedRef, NewLead, Lead,
    NewSummary, Summary, MediaInfo,
)  # fmt: skip
"""The models whose JSON Schemas are the components of the same name, generated."""
_ALWAYS_SENT = (Feed, Brief, Lead, Summary)
"""Answers carry every field of these, defaults too (a default is for data stored before)."""


def model_schemas() -> dict[str, Any]:
    """``components.schemas`` for ``MODELS``, from msgspec, with what a model says beyond
    its fields (``json_schema_extra``) and every field of an answer required."""
    _, components = msgspec.json.schema_components(
        MODELS, ref_template="#/components/schemas/{name}"
    )
    schemas: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(components))  # () is []
    for model in MODELS:
        schema = schemas[model.__name__]
        schema.update(getattr(model, "json_schema_extra", {}))
        if model in _ALWAYS_SENT:
            schema["required"] = list(schema["properties"])
        elif not schema.get("required", True):
            del schema["required"]
    return schemas


def _schemas() -> dict[str, Any]:
    schemas = model_schemas()
    feed, brief = schemas["Feed"], schemas["Brief"]
    unplaced = {"id": {"type": "null"}, "published_at": {"type": "null"},
                "updated_at": {"type": "null"}, "version": {"const": 0}}  # fmt: skip
    return {
        **schemas,
        "Error": _obj(
            {
                "error": _obj(
                    {
                        "code": _string("machine-readable, see each response"),
                        "message": _string("for people; never contains a token"),
                        "field": _string("the request field at fault"),
                        "current_version": {"type": "integer", "minimum": 0},  # 0: a lead never set
                    },
                    ("code", "message"),
                    closed=True,
                )
            },
            ("error",),
            closed=True,
        ),
        "FeedWithPosition": _obj(
            {
                **feed["properties"],
                "last_event_id": _string("resume a stream from here", pattern=FULL_ID_PATTERN),
            },
            (*feed["required"], "last_event_id"),
        ),
        "FeedList": _obj({"feeds": {"type": "array", "items": _ref("Feed")}}, ("feeds",)),
        "BriefPreview": _obj(
            {**brief["properties"], **unplaced},
            tuple(brief["required"]),
        ),
        "BriefPage": _obj(
            {
                "briefs": {"type": "array", "items": _ref("Brief")},
                "next_before": _nullable(_string("pass as ?before= for older", pattern=_FULL_ID)),
            },
            ("briefs", "next_before"),
        ),
        "BriefList": _obj({"briefs": {"type": "array", "items": _ref("Brief")}}, ("briefs",)),
        "History": _obj(
            {
                "id": _string(pattern=_FULL_ID),
                "versions": {
                    "type": "array",
                    "items": _obj(
                        {
                            "version": {"type": "integer", "minimum": 0},
                            "action": {"enum": ["created", "updated", "deleted"]},
                            "at": _string(format="date-time"),
                            "event_id": _string(pattern=_FULL_ID),
                            "editor": _nullable(_string()),
                            "brief": _nullable(_ref("Brief")),
                        },
                        ("version", "action", "at", "event_id", "editor", "brief"),
                    ),
                },
            },
            ("id", "versions"),
        ),
        "Pinned": _obj({"pinned": _nullable(_ref("Brief"))}, ("pinned",)),
        **{
            f"Current{name}": _obj(
                {name.lower(): _nullable(_ref(name)), "version": {"type": "integer", "minimum": 0}},
                (name.lower(), "version"),
            )
            for name in ("Lead", "Summary")
        },
        "DayList": _obj(
            {
                "days": {
                    "type": "array",
                    "items": _obj(
                        {
                            "date": _string(format="date", pattern=_DATE),
                            "count": {"type": "integer", "minimum": 1},
                        },
                        ("date", "count"),
                    ),
                }
            },
            ("days",),
        ),
        "Day": _obj(
            {
                "date": _string(format="date", pattern=_DATE),
                "timezone": _string(),
                "briefs": {"type": "array", "items": _ref("Brief")},
                "next": _nullable(_string("pass as ?cursor= for the next page", pattern=_FULL_ID)),
            },
            ("date", "timezone", "briefs", "next"),
        ),
        "JsonFeed": _obj(
            {
                "version": {"const": "https://jsonfeed.org/version/1.1"},
                "title": _string(),
                "home_page_url": _string(),
                "feed_url": _string(),
                "description": _string(),
                "authors": {"type": "array", "items": _obj({"name": _string()}, ("name",))},
                "items": {
                    "type": "array",
                    "items": _obj(
                        {
                            "id": _string("the brief's permalink"),
                            "url": _string(),
                            "title": _string(),
                            "external_url": _string(),
                            "content_html": _string(),
                            "content_text": _string(),
                            "date_published": _string(format="date-time"),
                            "date_modified": _string(format="date-time"),
                            "authors": {"type": "array", "items": _obj({"name": _string()})},
                            "tags": {"type": "array", "items": _string()},
                        },
                        ("id", "url", "title", "date_published", "date_modified"),
                    ),
                },
            },
            ("version", "title", "home_page_url", "feed_url", "items"),
        ),
        "Editor": _obj({"editor": _string("the token's editor name")}, ("editor",)),
        "Health": _obj(
            {
                "status": {"enum": ["ok", "unhealthy"]},
                "redis": {"enum": ["ok", "unreachable"]},
                "readers": {"type": "integer", "minimum": 0},
                "tasks": {"type": "integer", "minimum": 0},
                "clock_offset_ms": {
                    "type": "integer",
                    "description": "how far Redis's clock, which stamps every event, is ahead of "
                    "this worker's (negative: behind)",
                },
            },
            ("status", "redis"),
        ),
    }


def _story_paths(
    kind: str, feed: dict[str, Any], if_match: dict[str, Any], bad_body: tuple[int, tuple[str, ...]]
) -> dict[str, Any]:
    """GET, PUT and DELETE of the feed's lead or summary (``kind``)."""
    name = kind.title()
    return {
        "get": _op(
            f"get{name}", "story", f"The {kind} as it stands (null: none) and its version",
            {"200": _json(_ref(f"Current{name}"), f"the {kind}", ETag="its version, quoted"),
             **_errors(_FEED_404, 503)},
            parameters=(feed,),
        ),
        "put": _replayable(_op(
            f"set{name}", "editor", f"Set the {kind}, replacing any other",
            {"200": _json(_ref(name), f"the stored {kind}", ETag="its new version"),
             **_errors((400, ("invalid_json", "bad_if_match")), _FEED_404, (409, ("busy",)),
                       (412, ("stale_version",)), (422, _STORY_CODES), 503)},
            parameters=(feed, if_match), body=_ref(f"New{name}"), editor=True,
            description="Readers get it live as a `" + kind + "_updated` event.",
        )),
        "delete": _replayable(_op(
            f"clear{name}", "editor", f"Clear the {kind}",
            {"204": {"description": "cleared (or there was none)"},
             **_errors((400, ("bad_if_match",)), _FEED_404, (409, ("busy",)),
                       (412, ("stale_version",)), 503)},
            parameters=(feed, if_match), editor=True,
        )),
    }  # fmt: skip


def _replayable(operation: dict[str, Any]) -> dict[str, Any]:
    """An editor write that takes an ``Idempotency-Key``: its header, the 400 for a key that is
    not one, the 422 for a key used for another request, and the header that marks a replay."""
    operation["parameters"] = [*operation.get("parameters", []), _param(
        "Idempotency-Key", "header", _string(pattern=KEY_PATTERN),
        f"one key per intent, reused on its retries: a retry within {TTL_SECONDS // 3600} h gets "
        "the first answer back and changes nothing",
    )]  # fmt: skip
    responses = operation["responses"]
    for status, code in (("400", "bad_idempotency_key"), ("422", "idempotency_key_reused")):
        codes: list[str] = []
        if status in responses:
            schema = responses[status]["content"]["application/json"]["schema"]
            codes = schema["allOf"][1]["properties"]["error"]["properties"]["code"]["enum"]
        responses[status] = _error(int(status), *codes, code)
    for status, response in responses.items():
        if status.startswith("2"):
            response.setdefault("headers", {})["Idempotent-Replayed"] = {
                "description": "`true` when this answers a retry of an intent carried out before",
                "required": False,
                "schema": {"enum": ["true"]},
            }
    operation["responses"] = dict(sorted(responses.items()))
    return operation


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

    def limit(default: int, maximum: int) -> dict[str, Any]:
        schema = {"type": "integer", "minimum": 1, "maximum": maximum, "default": default}
        return _param("limit", "query", schema, f"page size, 1 to {maximum}")

    bad_body = (400, ("invalid_json",))
    created = {"Location": "where the new resource is"}
    return {
        "/": {"get": _op("indexPage", "pages", "The list of feeds",
                         {"200": _html("the index page"), **_errors(503)})},
        "/feeds/{feed}": {"get": _op(
            "feedPage", "pages", "A feed's live reader page",
            {"200": _html("latest briefs, newest first; feed.js makes it live"),
             "404": _html("no such feed"),
             **_errors((400, ("bad_before",)), 503)},
            parameters=(feed, before),
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
             **_errors(503)},
            parameters=(feed, date, cursor),
        )},
        "/embed/{feed}": {"get": _op(
            "embedPage", "pages", "The latest briefs, compact, for an iframe on other sites",
            {"200": _html("framable by the embed ancestors; embed.js keeps it live"),
             "404": _html("no such feed"), **_errors(503)},
            parameters=(feed, _param(
                "limit", "query", {"type": "integer", "minimum": 1, "maximum": 50, "default": 10},
                "how many briefs; more than 50 shows 50, anything else not a number the default",
            )),
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
                body=_ref("NewFeed"), editor=True,
            )),
        },
        "/api/me": {"get": _op(
            "me", "editor", "Who the token belongs to",
            {"200": _json(_ref("Editor"), "the editor"), **_errors(503)}, editor=True,
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
                parameters=(feed,), body=_ref("FeedPatch"), editor=True,
                description="Publishing to an ended feed answers 409 `feed_ended`.",
            )),
        },
        "/api/feeds/{feed}/briefs": {
            "get": _op(
                "listBriefs", "briefs", "Briefs as they stand, newest first",
                {"200": _json(_ref("BriefPage"), "a page of briefs"),
                 **_errors((400, ("bad_limit", "bad_before")), _FEED_404, 503)},
                parameters=(feed, limit(settings.page_size, settings.max_page_size), before),
            ),
            "post": _replayable(_op(
                "publishBrief", "briefs", "Publish a brief",
                {"201": _json(_ref("Brief"), "the stored brief, once Redis has it", **created),
                 **_errors(bad_body, _FEED_404, (409, ("feed_ended", "busy")),
                           (422, _BRIEF_CODES), 503)},
                parameters=(feed,), body=_ref("NewBrief"), editor=True,
                description="`busy` (409): the brief could not be placed after a few tries; "
                "send it again (with its Idempotency-Key, safely).",
            )),
        },
        "/api/feeds/{feed}/briefs/preview": {"post": _op(
            "previewBrief", "briefs", "The brief as it would be stored; nothing is stored",
            {"200": _json(_ref("BriefPreview"), "the sanitised brief"),
             **_errors(bad_body, _FEED_404, (422, _BRIEF_CODES), 503)},
            parameters=(feed,), body=_ref("NewBrief"), editor=True,
        )},
        "/api/embeds/preview": {"post": _op(
            "previewEmbed", "editor", "The card a brief quoting this URL would show",
            {"200": _json(_ref("Embed"), "the snapshot, resolved now; nothing is stored but "
                          "its thumbnail (in media storage)"),
             **_errors(bad_body, (422, (*_VALIDATION_CODES, "invalid_url", *_EMBED_CODES)))},
            body=_ref("EmbedRef"), editor=True,
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
                parameters=(feed, brief, if_match), body=_ref("BriefPatch"), editor=True,
                description="Without If-Match the correction is applied on top of whatever "
                "version is current; when concurrent corrections keep winning it answers 409 "
                "`busy`: send it again.",
            )),
            "delete": _replayable(_op(
                "retractBrief", "editor", "Retract a brief",
                {"204": {"description": "retracted"},
                 **_errors((400, ("bad_if_match",)), _BRIEF_404, (412, ("stale_version",)), 503)},
                parameters=(feed, brief, if_match), editor=True,
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
                parameters=(feed,), body=_ref("Pin"), editor=True,
            )),
            "delete": _replayable(_op(
                "unpinBrief", "editor", "Unpin",
                {"200": _json(_ref("Pinned"), "nothing is pinned"), **_errors(_FEED_404, 503)},
                parameters=(feed,), editor=True,
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
             **_errors((400, ("bad_limit", "bad_date", "bad_cursor")), _FEED_404, 503)},
            parameters=(
                feed, date, limit(DAY_PAGE, DAY_PAGE_MAX), cursor,
                _param("If-None-Match", "header", _string(), "ETags you have"),
            ),
        )},
        **_media(),
    }  # fmt: skip


def _media() -> dict[str, Any]:
    """Uploading images and audio, and their files (http/media.py)."""
    upload = _op(
        "uploadMedia",
        "media",
        "Upload an image or an audio clip",
        {
            "201": _json(_ref("MediaInfo"), "its renditions, stored", Location="its first file"),
            "200": _json(_ref("MediaInfo"), "these bytes were uploaded before: the same record"),
            **_errors(
                413, 415, (400, ("no_file",)), (422, ("corrupt_media", "too_many_pixels")), 503
            ),
        },
        editor=True,
        description="The raw file as the body (any Content-Type), or its `file` part of a "
        "multipart/form-data form. The type is read from the bytes: JPEG, PNG, WebP, HEIC (with "
        "pillow-heif), MP3, M4A, OGG. Location, device and other metadata are removed.",
    )
    upload["requestBody"] = {
        "required": True,
        "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": _obj({"file": {"type": "string", "format": "binary"}}, ("file",))
            },
        },
    }
    name = _param(
        "name",
        "path",
        _string(pattern=r"^[0-9a-z]+\.[a-z0-9]+$"),
        "`<width>.webp`, `<width>.jpg`, `16x9.jpg`, `4x3.jpg`, `1x1.jpg` or `audio.<format>`",
    )
    media = _param("media", "path", _string(pattern=MEDIA_ID_PATTERN), "the upload's id")
    served = {
        t: {"schema": {"type": "string", "format": "binary"}}
        for t in sorted(set(RENDITION_TYPES.values()))
    }
    file = _op(
        "mediaFile",
        "media",
        "One file of an upload; immutable",
        {
            "200": {
                "description": "the file, `Cache-Control: public, max-age=31536000, "
                "immutable`, with an ETag",
                "content": served,
            },
            "206": {"description": "the range asked for (audio seeking)", "content": served},
            "304": {"description": "unchanged: the ETag in If-None-Match"},
            **_errors((404, ("media_not_found",))),
        },
        parameters=(media, name, _param("If-None-Match", "header", _string(), "ETags you have")),
    )
    return {"/api/media": {"post": upload}, "/media/{media}/{name}": {"get": file}}


def _syndication(feed: dict[str, Any], date: dict[str, Any]) -> dict[str, Any]:
    """Atom and JSON Feed documents of a feed (its latest briefs) and of each of its days."""
    if_none_match = _param("If-None-Match", "header", _string(), "ETags you have")
    headers = {
        "ETag": "the document's ETag",
        "Cache-Control": "a minute for finished days, else no-cache",
        "Access-Control-Allow-Origin": "always `*`: public, readable from any site",
    }
    formats = {
        "atom.xml": ("Atom", "application/atom+xml", {"type": "string"}),
        "feed.json": ("JSONFeed", "application/feed+json", _ref("JsonFeed")),
    }
    paths: dict[str, Any] = {}
    for name, (kind, media, schema) in formats.items():
        document = {
            "description": f"{kind} 1.x, newest first",
            "content": {media: {"schema": schema}},
            "headers": {
                h: {"description": text, "required": True, "schema": {"type": "string"}}
                for h, text in headers.items()
            },
        }
        unchanged = {"description": "unchanged since the ETag in If-None-Match"}
        paths[f"/feeds/{{feed}}/{name}"] = {
            "get": _op(
                f"feed{kind}",
                "syndication",
                f"The feed's latest briefs as {kind}",
                {"200": document, "304": unchanged, **_errors(_FEED_404, 503)},
                parameters=(feed, if_none_match),
            )
        }
        paths[f"/feeds/{{feed}}/days/{{date}}/{name}"] = {
            "get": _op(
                f"day{kind}",
                "syndication",
                f"A day's briefs as {kind}",
                {
                    "200": document,
                    "304": unchanged,
                    **_errors((400, ("bad_date",)), _FEED_404, 503),
                },
                parameters=(feed, date, if_none_match),
            )
        }
    return paths  # fmt: skip


def _websocket() -> dict[str, Any]:
    """The one WebSocket route, which OpenAPI cannot describe, as an ``x-`` extension."""
    since = _param("since", "query", _string(pattern=STREAM_ID), "resume after this event id")
    return {
        "/ws/feeds/{feed}": {
            "summary": "The live stream (or, with replay, a day played back); frames are JSON",
            "parameters": [
                _param("feed", "path", _string(), "the feed's slug"),
                since,
                _param("replay", "query", _string(pattern=_DATE), "play this day instead"),
                _param(
                    "speed",
                    "query",
                    {"type": "number", "minimum": MIN_SPEED, "maximum": MAX_SPEED, "default": 1},
                    "replay speed",
                ),
                _param("from", "query", _string(pattern=_CLOCK), "replay from this local time"),
            ],
            "closeCodes": {
                str(CLOSE_NORMAL): "the replayed day is over",
                str(CLOSE_POLICY): "origin not allowed, too many connections, or a reader "
                "that keeps sending messages",
                "1009": "a message over the size limit (readers send nothing)",
                str(CLOSE_GOING_AWAY): "server going away: reconnect with since",
                str(CLOSE_INTERNAL): "internal error: reconnect with backoff",
                str(CLOSE_TRY_AGAIN_LATER): "Redis unavailable: reconnect with backoff",
                str(CLOSE_BAD_REQUEST): "bad since, replay, speed or from; or after a reload frame",
                str(CLOSE_NOT_FOUND): "unknown feed",
                str(CLOSE_TOO_SLOW): "too slow: reconnect at once with since",
            },
        }
    }


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
                "archive",
                "syndication",
                "pages",
                "service",
            )
        ],
        "paths": _paths(settings),
        "components": {
            "schemas": _schemas(),
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
