"""The OpenAPI paths that stand apart from the feeds' and briefs': the lead and summary, media
uploads and files, Atom and JSON Feed, tokens, and the WebSocket (``x-websockets``).
"""

from __future__ import annotations

from typing import Any

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
from livefeed.http.openapi_schema import (
    _CLOCK,
    _DATE,
    _FEED_404,
    _STORY_CODES,
    _VALIDATION_CODES,
    STREAM_ID,
    _error,
    _errors,
    _json,
    _obj,
    _op,
    _param,
    _ref,
    _string,
)
from livefeed.model.desk import AUTH_SECONDS, DESK_SUBPROTOCOL, RECHECK_SECONDS, TOKEN_SUBPROTOCOL
from livefeed.model.media import MEDIA_ID_PATTERN, RENDITION_TYPES
from livefeed.model.roles import Action
from livefeed.storage.idempotency import KEY_PATTERN, TTL_SECONDS
from livefeed.stream.replay import MAX_SPEED, MIN_SPEED


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
            parameters=(feed, if_match), body=_ref(f"New{name}"), needs=Action.PUBLISH,
            description="Readers get it live as a `" + kind + "_updated` event.",
        )),
        "delete": _replayable(_op(
            f"clear{name}", "editor", f"Clear the {kind}",
            {"204": {"description": "cleared (or there was none)"},
             **_errors((400, ("bad_if_match",)), _FEED_404, (409, ("busy",)),
                       (412, ("stale_version",)), 503)},
            parameters=(feed, if_match), needs=Action.PUBLISH,
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
        needs=Action.WRITE_DRAFT,
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
    record = _op(
        "getMedia",
        "media",
        "An upload's record: kind, size and renditions",
        {
            "200": _json(_ref("MediaInfo"), "as its upload answered it"),
            **_errors((404, ("media_not_found",))),
        },
        needs=Action.WRITE_DRAFT,
        parameters=(media,),
        description="For an editor reopening a draft, which names its media by id only.",
    )
    return {
        "/api/media": {"post": upload},
        "/api/media/{media}": {"get": record},
        "/media/{media}/{name}": {"get": file},
    }


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


def _token_paths() -> dict[str, Any]:
    """``/api/tokens``: admins manage the named people's tokens (``http/tokens.py``)."""
    name = _param("name", "path", _string(), "the person's name, URL-encoded")
    # not_found: a name no token can have (a line break does not match the route at all)
    missing = (404, ("token_not_found", "not_found"))
    kept = (409, ("last_admin",))
    bad_body = (400, ("invalid_json",))
    return {
        "/api/tokens": {
            "get": _op(
                "listTokens", "editor", "Everyone with a token, with role; never the tokens",
                {"200": _json(_ref("TokenList"), "by name"), **_errors(503)},
                needs=Action.MANAGE_TOKENS,
            ),
            "post": _replayable(_op(
                "createToken", "editor", "Make a token for a named person",
                {"201": _json(_ref("IssuedToken"), "the record and the token, shown only here",
                              Location="where the record is"),
                 **_errors(bad_body, (409, ("token_exists",)),
                           (422, (*_VALIDATION_CODES, "invalid_field")), 503)},
                body=_ref("NewToken"), needs=Action.MANAGE_TOKENS,
                description="Only the token's hash is stored, so a retry with the same "
                "Idempotency-Key answers the record with `token: null`.",
            )),
        },
        "/api/tokens/{name}": {
            "patch": _op(
                "setTokenRole", "editor", "Give a token another role, at once on every node",
                {"200": _json(_ref("TokenRecord"), "the record as it now stands"),
                 **_errors(bad_body, missing, kept,
                           (422, (*_VALIDATION_CODES, "invalid_field")), 503)},
                parameters=(name,), body=_ref("TokenPatch"), needs=Action.MANAGE_TOKENS,
                description="`last_admin` (409): without LIVEFEED_EDITOR_TOKEN, the only admin "
                "token keeps its role.",
            ),
            "delete": _op(
                "revokeToken", "editor", "Revoke a token, at once on every node",
                {"204": {"description": "revoked"}, **_errors(missing, kept, 503)},
                parameters=(name,), needs=Action.MANAGE_TOKENS,
                description="`last_admin` (409): without LIVEFEED_EDITOR_TOKEN, the only admin "
                "token stays.",
            ),
        },
    }  # fmt: skip


def _websocket() -> dict[str, Any]:
    """The WebSocket routes, which OpenAPI cannot describe, as an ``x-`` extension."""
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
        },
        "/ws/feeds/{feed}/desk": {
            "summary": "The desk, live (contributors and up): drafts, the review queue, who is "
            f"editing what. Send the token as subprotocol {TOKEN_SUBPROTOCOL}<token> beside "
            f"{DESK_SUBPROTOCOL} (the one echoed), or as the first message "
            f'{{"type": "auth", "token"}} within {AUTH_SECONDS:g} s; never in the URL',
            "parameters": [_param("feed", "path", _string(), "the feed's slug"), since],
            "closeCodes": {
                str(CLOSE_POLICY): "unauthorized / invalid_token / forbidden_role (the reason "
                "says which; a revoked token's socket within "
                f"{RECHECK_SECONDS:g} s), rate_limited, origin or connection cap",
                str(CLOSE_TRY_AGAIN_LATER): "Redis unavailable, or the token's role changed: "
                "reconnect",
                str(CLOSE_BAD_REQUEST): "bad since or message; or after a reload frame",
                str(CLOSE_NOT_FOUND): "unknown feed",
                str(CLOSE_TOO_SLOW): "too slow: reconnect at once with since",
                str(CLOSE_GOING_AWAY): "server going away: reconnect with since",
            },
        },
    }
