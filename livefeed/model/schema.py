"""Feeds and briefs as typed models: each field once, with its limit and JSON Schema. Pure: no I/O.

The input models (NewFeed, FeedPatch, NewBrief, BriefPatch, Pin, ReplayControl) validate what a
client sends: msgspec checks types, unknown fields and raw lengths; each ``__post_init__`` applies
livefeed's own rules (the text rule of ``livefeed.model.text``, whitespace collapse, tag
de-duplication, the url check) and sanitising is left to the caller. ``decode`` turns what
msgspec refuses into livefeed's error codes through one table (``_CODES``), so the
``{"error": {"code", "message", "field"}}`` answers stay as documented. The models live in
``model/feed.py`` and ``model/brief.py``; ``http/openapi.py`` generates the API's schemas from them.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import Meta, Struct

from livefeed.errors import BadRequest, ValidationFailed
from livefeed.model.ids import FULL_ID_PATTERN, STREAM_ID_PATTERN
from livefeed.model.text import (
    NOT_BLANK_PATTERN,
    TEXT_PATTERN,
    check_text,
)

HEADLINE_MAX = 300
BODY_MAX = 20_000
AUTHOR_MAX = 100
URL_MAX = 2048
TAGS_MAX = 10
"""Tags a brief may carry; a longer list is refused even if it repeats some (they count once)."""
TAG_MAX = 40
TITLE_MAX = 200
DESCRIPTION_MAX = 300
"""A feed's description: the pages' meta description and og:description."""
STANDFIRST_MAX = 600
SUMMARY_TITLE_MAX = 100
SUMMARY_ITEMS_MAX = 20
SUMMARY_ITEM_MAX = 1000
MEDIA_MAX = 10
"""Images and audio items a brief may carry (livefeed.model.media)."""
ALT_MAX = 1000
CAPTION_MAX = 1000
CREDIT_MAX = 200
EMBEDS_MAX = 4
"""Posts and articles one brief may quote (``embeds``); each is fetched when it is published."""
EMBED_TEXT_MAX = 2000
"""A snapshot's text (a post, an article's summary) is cut to this many characters."""
EMBED_LINE_MAX = 300
"""A snapshot's one-line fields (title, author, handle, outlet) are cut to this many."""
TRANSCRIPT_MAX = 20_000
CORRECTION_NOTE_MAX = 500
"""A correction's note to readers ("Casualty figure updated from 3 to 5"), one line."""

SLUG_MAX = 64
SLUG_RE = re.compile(rf"[a-z0-9-]{{1,{SLUG_MAX}}}")
# A BCP 47 language tag as pages need it: language, then optional script, region and variants
# (``uk``, ``sr-Latn``, ``en-GB``, ``es-419``); private-use and extension subtags are not taken.
LANGUAGE_RE = re.compile(
    r"([a-z]{2,3})(?:-([a-z]{4}))?(?:-([a-z]{2}|[0-9]{3}))?((?:-(?:[a-z0-9]{5,8}|[0-9][a-z0-9]{3}))*)",
    re.IGNORECASE | re.ASCII,  # ASCII: no Kelvin sign for a k
)
LANGUAGE_MAX = 35
DEFAULT_LANGUAGE = "en"

_TEXT_RULE = (
    "no control characters but tab, LF and CR, no surrogates, no non-characters "
    "(422 `invalid_text`)"
)
# Patterns below are JSON Schema (ECMA-262) for the API document; the checks in
# ``__post_init__`` are the ones that decide (Python's ``$`` would let a trailing newline by).
_SLUG_PATTERN = rf"^[a-z0-9-]{{1,{SLUG_MAX}}}$"
_LANGUAGE_PATTERN = (
    r"^[A-Za-z]{2,3}(-[A-Za-z]{4})?(-([A-Za-z]{2}|[0-9]{3}))?"
    r"(-([A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*$"
)
_URL_PATTERN = r"^(\s*[Hh][Tt][Tt][Pp][Ss]?://\S|$)"  # or empty: no link


def _meta(description: str, **schema: Any) -> Meta:
    """A field's description, and JSON Schema keywords msgspec does not check (the model does)."""
    return Meta(description=description, extra_json_schema=schema or None)


def _line(limit: int, description: str, *, blank: bool = False) -> Meta:
    """A one-line text field: whitespace collapsed, then at most ``limit`` characters."""
    schema: dict[str, Any] = {"maxLength": limit, "pattern": TEXT_PATTERN}
    if not blank:
        schema.update(minLength=1, pattern=NOT_BLANK_PATTERN)
    return Meta(description=f"{description}; {_TEXT_RULE}", extra_json_schema=schema)


Slug = Annotated[str, _meta("a-z, 0-9 and '-'", pattern=_SLUG_PATTERN)]
Title = Annotated[str, _line(TITLE_MAX, "the feed's name; whitespace is collapsed")]
Description = Annotated[str, _line(
    DESCRIPTION_MAX, "what the feed covers: the pages' meta and og:description", blank=True
)]  # fmt: skip
Timezone = Annotated[str, _meta("IANA time zone name, e.g. Europe/Kyiv", minLength=1)]
Language = Annotated[str, Meta(
    description="BCP 47 language tag, e.g. uk, ar or en-GB (default en): pages' lang",
    extra_json_schema={"pattern": _LANGUAGE_PATTERN, "maxLength": LANGUAGE_MAX},
)]  # fmt: skip
Headline = Annotated[str, _line(HEADLINE_MAX, "plain text; whitespace is collapsed")]
Body = Annotated[str, Meta(
    max_length=BODY_MAX, extra_json_schema={"pattern": TEXT_PATTERN},
    description="plain text (blank lines make paragraphs) or HTML, reduced to p, br, a[href], "
    f"strong, em, ul, ol, li, blockquote; {_TEXT_RULE}",
)]  # fmt: skip
Author = Annotated[
    str, _line(AUTHOR_MAX, "byline; empty or null: the token's editor name", blank=True)
]
Url = Annotated[str, Meta(
    description=f"an http(s) link; empty or null for none; {_TEXT_RULE}",
    extra_json_schema={"maxLength": URL_MAX, "pattern": _URL_PATTERN},
)]  # fmt: skip
Tag = Annotated[str, _line(TAG_MAX, "a topic")]
CorrectionNote = Annotated[str, _line(
    CORRECTION_NOTE_MAX, "what was corrected, shown to readers; whitespace is collapsed; "
    "empty or null: a silent fix", blank=True,
)]  # fmt: skip
Tags = Annotated[tuple[Tag, ...], Meta(
    max_length=TAGS_MAX, description=f"at most {TAGS_MAX} items, repeats too; a repeat counts once"
)]  # fmt: skip
_Item = TypeVar("_Item")
MediaItems = Annotated[tuple[_Item, ...], Meta(
    max_length=MEDIA_MAX, description=f"images and audio, at most {MEDIA_MAX}, in order"
)]  # fmt: skip
Version = Annotated[int, Meta(ge=1)]
FullId = Annotated[str, _meta("a stream entry id", pattern=FULL_ID_PATTERN)]
Instant = Annotated[str, _meta("UTC with milliseconds", format="date-time")]
Status = Literal["live", "ended"]


# --- errors -----------------------------------------------------------------------------------

# What msgspec refused (its kind, and the field if the code depends on it) -> livefeed's code.
# Kinds: missing, unknown, null (a null where the type has none), type, length, range, object.
# A ``*`` kind is any kind for that field.
_CODES: dict[tuple[str, str | None], str] = {
    ("object", None): "invalid_json",
    ("missing", None): "missing_field",
    ("unknown", None): "unknown_field",
    ("null", None): "invalid_type",
    ("null", "headline"): "missing_field",
    ("null", "title"): "missing_field",
    ("type", None): "invalid_type",
    ("length", None): "too_long",
    ("length", "tags"): "too_many_tags",
    ("length", "media"): "too_many_media",
    ("length", "items"): "too_many_items",
    ("length", "embeds"): "too_many_embeds",
    ("range", None): "invalid_field",
    ("*", "slug"): "invalid_slug",
    ("*", "timezone"): "invalid_timezone",
    ("*", "language"): "invalid_language",
    ("*", "version"): "invalid_field",
    ("*", "status"): "invalid_field",
    ("*", "brief_id"): "invalid_field",
    ("*", "role"): "invalid_field",  # a token's role (model.tokens)
}
_AT = re.compile(r" - at `\$\.?([A-Za-z_]*)[^`]*`$")
_NAMED = re.compile(r"field `([^`]+)`")

M = TypeVar("M", bound=Struct)


def decode(payload: Any, model: type[M]) -> M:
    """``payload`` (parsed JSON) as ``model``; a LivefeedError with livefeed's code otherwise.

    Unknown fields are looked for first, and the first in sorted order named, whatever else
    is wrong: a misspelt field says so rather than that a required one is missing.
    """
    if not isinstance(payload, dict):
        raise refusal("object", None, "the request body must be a JSON object")
    if model.__struct_config__.forbid_unknown_fields and not _fields(model).issuperset(payload):
        unknown = sorted(set(payload) - _fields(model), key=str)[0]
        allowed = ", ".join(sorted(_fields(model)))
        raise refusal("unknown", unknown, f"unknown field {unknown!r}; allowed: {allowed}")
    try:
        return msgspec.convert(payload, model)
    except msgspec.ValidationError as exc:
        raise _translate(str(exc)) from None


@cache
def _fields(model: type[Struct]) -> frozenset[str]:
    return frozenset(model.__struct_fields__)


def _translate(message: str) -> Exception:
    at = _AT.search(message)
    field = at.group(1) if at else None
    named = _NAMED.search(message)
    if message.startswith("Object missing required field") and named:
        return refusal("missing", named.group(1), f"{named.group(1)} is required")
    if message.startswith("Object contains unknown field") and named:  # in a nested object
        return refusal("unknown", field, f"{field}: unknown field {named.group(1)!r}")
    text = message[: at.start()] if at else message
    if text.startswith("Object contains unknown field"):  # in a nested object (embeds)
        kind = "unknown"
    elif ", got `null`" in text:
        kind = "null"
    elif " of length " in text:
        kind = "length"
    elif re.search(r"` [<>]=? ", text):
        kind = "range"
    elif field is None:
        kind = "object"
    else:
        kind = "type"
    if kind == "null" and _CODES.get((kind, field)) == "missing_field":
        return refusal(kind, field, f"{field} is required")
    return refusal(kind, field, f"{field}: {text}" if field else text)


def refusal(kind: str, field: str | None, message: str) -> Exception:
    code = _CODES.get(("*", field)) if kind != "unknown" else None
    code = code or _CODES.get((kind, field)) or _CODES[(kind, None)]
    if code in ("invalid_json", "empty_patch"):
        return BadRequest(message, code=code)
    return ValidationFailed(message, code=code, field=field)


def collapsed_line(value: str, name: str, limit: int, *, required: bool) -> str:
    """``value`` obeying the text rule, whitespace collapsed, 1 (if required) to ``limit`` long."""
    value = " ".join(check_text(value, name).split())
    if required and not value:
        raise ValidationFailed(f"{name} must not be empty", code="empty_field", field=name)
    if len(value) > limit:
        raise ValidationFailed(
            f"{name} must be at most {limit} characters", code="too_long", field=name
        )
    return value


# --- small request models ---------------------------------------------------------------------


class Pin(Struct):
    """The brief to pin above the feed."""

    brief_id: Annotated[str, _meta("the brief to pin", pattern=STREAM_ID_PATTERN)]


class ReplayControl(Struct):
    """What a replay socket accepts: pause, resume, seek to a local ``to`` time, or ``speed``."""

    action: Literal["pause", "resume", "seek", "speed"]
    to: Annotated[str, _meta("HH:MM or HH:MM:SS, the feed's local time")] | None = None
    speed: float | str | None = None
