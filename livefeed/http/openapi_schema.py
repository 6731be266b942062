"""The OpenAPI document's parts: its small builders, the error answers and their codes, and the
component schemas, generated from the models (``MODELS``) where a model exists.

``http/openapi.py`` puts the document together; ``http/openapi_paths.py`` has the paths that
stand apart (the story so far, media, syndication, the WebSocket).
"""

from __future__ import annotations

from typing import Any

import msgspec

from livefeed.model.brief import Brief, BriefPatch, NewBrief
from livefeed.model.embed import EmbedRef
from livefeed.model.feed import Feed, FeedPatch, NewFeed
from livefeed.model.ids import FULL_ID_PATTERN, STREAM_ID_PATTERN
from livefeed.model.media import MediaInfo
from livefeed.model.roles import REQUIRED, ROLES, Action, Role
from livefeed.model.schema import Pin
from livefeed.model.search import SearchResults
from livefeed.model.story import Lead, NewLead, NewSummary, Summary
from livefeed.model.tokens import IssuedToken, NewToken, TokenPatch, TokenRecord

STREAM_ID = STREAM_ID_PATTERN
"""A stream position as clients may send it: ``<ms>-<seq>`` or ``<ms>``."""
_FULL_ID = FULL_ID_PATTERN
_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_CLOCK = r"^[0-9]{2}:[0-9]{2}(:[0-9]{2})?$"
_IF_MATCH = r'^\s*(\*|(W/)?"[0-9]{1,9}")\s*$'  # weak tags are well-formed but never match

_ERROR_MEANING = {
    400: "Bad request",
    401: "No editor token, or one that is not valid or was revoked",
    403: "The token is valid but its role may not do this",
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
_MEDIA_CODES = ("too_many_media", "duplicate_media", "unknown_media", "missing_alt")
"""What a list of media items (a brief's, the lead's) may be refused with."""
_BRIEF_CODES = (
    *_VALIDATION_CODES, "invalid_url", "invalid_tag", "too_many_tags", "invalid_field",
    *_MEDIA_CODES, "too_many_embeds", *_EMBED_CODES,
)  # fmt: skip
_STORY_CODES = (*_VALIDATION_CODES, "invalid_field", "too_many_items", *_MEDIA_CODES)


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
    403: ("forbidden_role",),
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
    needs: Action | None = None,
    description: str = "",
) -> dict[str, Any]:
    """One operation. Operations that ``needs`` an action take the bearer token, share its
    failures and say the lowest role allowed (``model.roles.REQUIRED``).

    Any request can be refused for oversized headers (431), before it reaches a handler.
    """
    operation: dict[str, Any] = {"operationId": operation_id, "tags": [tag], "summary": summary}
    if needs is not None:
        role = REQUIRED[needs]
        description = f"{description}\n\nNeeds a token with the {role} role or higher.".strip()
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
    if needs is not None:
        operation["security"] = [{"editorToken": []}]
        responses = {**_errors(401, 429), **responses}
        if REQUIRED[needs] is not Role.CONTRIBUTOR:
            responses = {**_errors(403), **responses}
    responses = {**_errors(431), **responses}
    operation["responses"] = dict(sorted(responses.items()))
    return operation


# --- the schemas ----------------------------------------------------------------------------


MODELS: tuple[type[msgspec.Struct], ...] = (
    Feed, NewFeed, FeedPatch, Brief, NewBrief, BriefPatch, Pin, EmbedRef, NewLead, Lead,
    NewSummary, Summary, MediaInfo, TokenRecord, IssuedToken, NewToken, TokenPatch,
    SearchResults,
)  # fmt: skip
"""The models whose JSON Schemas are the components of the same name, generated."""
_ALWAYS_SENT = (Feed, Brief, Lead, Summary, TokenRecord, IssuedToken, SearchResults)
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
        "TokenList": _obj({"tokens": {"type": "array", "items": _ref("TokenRecord")}}, ("tokens",)),
        "Editor": _obj(
            {
                "editor": _string("the token's editor name"),
                "role": {"enum": list(ROLES), "description": "what the token may do"},
            },
            ("editor", "role"),
        ),
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
