"""The OpenAPI paths and schemas of the desk: drafts, review, scheduling and the audit
(``http/drafts.py``). The schemas are generated from ``model/draft.py``."""

from __future__ import annotations

from typing import Any

import msgspec

from livefeed.http.openapi_paths import _replayable
from livefeed.http.openapi_schema import (
    _BRIEF_CODES,
    _IF_MATCH,
    _VALIDATION_CODES,
    STREAM_ID,
    _errors,
    _json,
    _obj,
    _op,
    _param,
    _ref,
    _string,
)
from livefeed.model.draft import DESK_EVENTS, LISTED, Draft, DraftFields, PublishAt, SendBack
from livefeed.model.roles import Action

DESK_MODELS: tuple[type[msgspec.Struct], ...] = (Draft, DraftFields, PublishAt, SendBack)

_DRAFT_404 = (404, ("feed_not_found", "draft_not_found"))
_MINE = (403, ("not_your_draft",))
_FIELDS_CODES = tuple(c for c in _BRIEF_CODES if not c.startswith("embed_") and c not in (
    "unknown_media", "missing_alt"))  # fmt: skip
"""A draft's fields are checked as a brief's when saved; uploads and embeds when published."""


def desk_schemas() -> dict[str, Any]:
    """The draft models' schemas (a Draft answer carries every field) and the desk's lists."""
    _, components = msgspec.json.schema_components(
        DESK_MODELS, ref_template="#/components/schemas/{name}"
    )
    schemas: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(components))
    schemas["Draft"]["required"] = list(schemas["Draft"]["properties"])
    schemas.get("DraftFields", {}).pop("required", None)
    patch = msgspec.json.decode(msgspec.json.encode(schemas["DraftFields"]))
    version = {"type": "integer", "minimum": 1, "description": "the version edited (If-Match)"}
    patch["properties"]["version"] = version
    event = _obj({
        "type": {"enum": list(DESK_EVENTS)}, "id": _string("the desk stream id"),
        "draft": _ref("Draft"), "by": _ref("DeskBy"), "at": _string(format="date-time"),
    }, ("type", "id", "draft", "by", "at"))  # fmt: skip
    line = _obj({
        "id": _string("the desk stream id"), "action": {"enum": list(DESK_EVENTS)},
        "at": _string(format="date-time"), "by": _ref("DeskBy"),
        "draft": _string(), "owner": _string("who wrote the draft"),
        "status": {"type": "string"}, "headline": {"type": "string"},
        "brief": {"type": ["string", "null"]}, "note": {"type": ["string", "null"]},
        "reason": _string("why a schedule failed, e.g. feed_ended"),
        "scheduled": {"const": True, "description": "published by the scheduler"},
        "scheduled_for": {"type": ["string", "null"]},
    }, ("id", "action", "at", "by", "draft", "owner", "status", "headline", "brief"))  # fmt: skip
    return {
        **schemas,
        "DraftPatch": patch,
        "DraftList": _obj({"drafts": {"type": "array", "items": _ref("Draft")}}, ("drafts",)),
        "PublishedDraft": _obj(
            {"brief": _ref("Brief"), "draft": _ref("Draft")}, ("brief", "draft")
        ),
        "DeskEvents": _obj({"events": {"type": "array", "items": event}}, ("events",)),
        "Audit": _obj(
            {
                "audit": {"type": "array", "items": line},
                "next_cursor": {"type": ["string", "null"]},
            },
            ("audit", "next_cursor"),
        ),
    }


def desk_paths() -> dict[str, Any]:
    feed = _param("feed", "path", _string(), "the feed's slug")
    draft = _param("draft", "path", _string(), "the draft's id")
    if_match = _param("If-Match", "header", _string(pattern=_IF_MATCH),
                      'the version you edited, e.g. "2"; a newer one answers 412')  # fmt: skip
    status = _param("status", "query", {"enum": list(LISTED)}, "only drafts in this status")
    one = (feed, draft)
    answer = _json(_ref("Draft"), "the draft as it now stands", ETag="its version, quoted")

    def change(
        op_id: str,
        summary: str,
        needs: Action,
        codes: dict[str, Any],
        description: str = "",
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return _replayable(_op(
            op_id, "desk", summary, {"200": answer, **_errors(_DRAFT_404, 503), **codes},
            parameters=one, needs=needs, body=body, description=description,
        ))  # fmt: skip

    publish = _replayable(_op(
        "publishDraft", "desk", "Publish a draft now, or schedule it",
        {"201": _json(_ref("PublishedDraft"), "published: the brief, and the draft marked "
                      "published with its id", Location="where the brief is read"),
         "200": answer,
         **_errors((400, ("invalid_json",)), _DRAFT_404,
                   (409, ("draft_not_editable", "feed_ended", "busy")),
                   (422, (*_BRIEF_CODES, "invalid_time")), 503)},
        parameters=one, body=_ref("PublishAt"), needs=Action.REVIEW,
        description="No body, or `at` null or not in the future: published now, appended to "
        "the public stream like any brief (its `published_at` is when it went out); the draft "
        "is validated as a brief first. A future `at`: 200, the draft `scheduled`; the "
        "scheduler publishes it then, exactly once. A draft is published at most once: a "
        "second publish is 409 `draft_not_editable`.",
    ))  # fmt: skip
    publish["requestBody"]["required"] = False
    return {
        "/api/feeds/{feed}/drafts": {
            "get": _op(
                "listDrafts", "desk", "Drafts: a contributor's own, every one for editors",
                {"200": _json(_ref("DraftList"), "newest change first; discarded ones are not "
                              "listed"),
                 **_errors((400, ("bad_status",)), (404, ("feed_not_found",)), 503)},
                parameters=(feed, status), needs=Action.READ_DESK,
            ),
            "post": _replayable(_op(
                "createDraft", "desk", "Start a draft",
                {"201": _json(_ref("Draft"), "the draft", ETag="its version, quoted"),
                 **_errors((400, ("invalid_json",)), (404, ("feed_not_found",)),
                           (422, _FIELDS_CODES), 503)},
                parameters=(feed,), body=_ref("DraftFields"), needs=Action.WRITE_DRAFT,
                description="Every field is optional while drafting (an empty headline too); "
                "each limit is a brief's. The byline defaults to the token's name.",
            )),
        },
        "/api/feeds/{feed}/drafts/{draft}": {
            "get": _op("getDraft", "desk", "One draft",
                       {"200": answer, **_errors(_DRAFT_404, _MINE, 503)},
                       parameters=one, needs=Action.READ_DESK),
            "patch": _replayable(_op(
                "editDraft", "desk", "Change a draft's fields (only those sent)",
                {"200": answer,
                 **_errors((400, ("invalid_json", "bad_if_match", "bad_version")), _MINE,
                           _DRAFT_404, (409, ("draft_not_editable", "busy")),
                           (412, ("stale_version",)), (422, _FIELDS_CODES), 503)},
                parameters=(*one, if_match), body=_ref("DraftPatch"), needs=Action.WRITE_DRAFT,
                description="Its writer while it is a draft or submitted; an editor until it "
                "is published (a scheduled draft stays scheduled).",
            )),
            "delete": _replayable(_op(
                "discardDraft", "desk", "Discard a draft",
                {"204": {"description": "discarded: gone from the lists, kept for the audit"},
                 **_errors(_MINE, _DRAFT_404, (409, ("draft_not_editable", "busy")), 503)},
                parameters=one, needs=Action.WRITE_DRAFT,
            )),
        },
        "/api/feeds/{feed}/drafts/{draft}/submit": {"post": change(
            "submitDraft", "Submit one's draft for review", Action.WRITE_DRAFT,
            _errors(_MINE, (409, ("draft_not_editable", "busy"))),
        )},
        "/api/feeds/{feed}/drafts/{draft}/send-back": {"post": change(
            "sendBackDraft", "Send a submitted or scheduled draft back with a note", Action.REVIEW,
            _errors((400, ("invalid_json",)), (409, ("draft_not_editable", "busy")),
                    (422, (*_VALIDATION_CODES,))),
            body=_ref("SendBack"),
        )},
        "/api/feeds/{feed}/drafts/{draft}/publish": {"post": publish},
        "/api/feeds/{feed}/drafts/{draft}/unschedule": {"post": change(
            "unscheduleDraft", "Take a scheduled draft back to the review queue", Action.REVIEW,
            _errors((409, ("draft_not_editable", "busy"))),
            description="It becomes `submitted` again; nothing is published.",
        )},
        "/api/feeds/{feed}/drafts/{draft}/history": {"get": _op(
            "draftHistory", "desk", "A draft's desk events, oldest first",
            {"200": _json(_ref("DeskEvents"), "as the desk WebSocket sends them"),
             **_errors(_DRAFT_404, _MINE, 503)},
            parameters=one, needs=Action.READ_DESK,
        )},
        "/api/feeds/{feed}/audit": {"get": _op(
            "getAudit", "desk", "Every desk action, newest first",
            {"200": _json(_ref("Audit"), "a page; `next_cursor` pages further back"),
             **_errors((400, ("bad_limit", "bad_cursor")), (404, ("feed_not_found",)), 503)},
            parameters=(feed, _param("cursor", "query", _string(pattern=STREAM_ID),
                                     "`next_cursor` of the previous page"),
                        _param("limit", "query", {"type": "integer", "minimum": 1,
                                                  "maximum": 100, "default": 100},
                               "page size, 1 to 100")),
            needs=Action.READ_AUDIT,
            description="Who wrote, submitted, sent back, scheduled, published or discarded "
            "each draft, in which role, and when; a published draft's line names its writer "
            "(`owner`) and the editor who published it (`by`).",
        )},
    }  # fmt: skip
