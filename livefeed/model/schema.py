"""Feeds and briefs as typed models: each field once, with its limit and JSON Schema. Pure: no I/O.

The input models (NewFeed, FeedPatch, NewBrief, BriefPatch, Pin, ReplayControl) validate what a
client sends: msgspec checks types, unknown fields and raw lengths; each ``__post_init__`` applies
livefeed's own rules (the text rule of ``livefeed.model.text``, whitespace collapse, tag
de-duplication, the url check) and sanitising is left to the caller. ``decode`` turns what
msgspec refuses into livefeed's error codes through one table (``_CODES``), so the
``{"error": {"code", "message", "field"}}`` answers stay as documented. Feed and Brief are the
stored and wire forms; ``http/openapi.py`` generates the API's schemas from these classes.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from typing import Annotated, Any, ClassVar, Literal, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfoNotFoundError, available_timezones

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from livefeed.errors import BadRequest, ValidationFailed
from livefeed.model.days import zone
from livefeed.model.ids import FULL_ID_PATTERN, STREAM_ID_PATTERN, iso_ms
from livefeed.model.text import (
    NOT_BLANK_PATTERN,
    TEXT_PATTERN,
    _clean_line,
    check_text,
    clean_text,
    obeys_text_rule,
    sanitize_body,
)

HEADLINE_MAX = 300
BODY_MAX = 20_000
AUTHOR_MAX = 100
URL_MAX = 2048
TAGS_MAX = 10
"""Tags a brief may carry; a longer list is refused even if it repeats some (they count once)."""
TAG_MAX = 40
TITLE_MAX = 200

SLUG_RE = re.compile(r"[a-z0-9-]{1,64}")
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
_SLUG_PATTERN = r"^[a-z0-9-]{1,64}$"
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
Tags = Annotated[tuple[Tag, ...], Meta(
    max_length=TAGS_MAX, description=f"at most {TAGS_MAX} items, repeats too; a repeat counts once"
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
    ("range", None): "invalid_field",
    ("*", "slug"): "invalid_slug",
    ("*", "timezone"): "invalid_timezone",
    ("*", "language"): "invalid_language",
    ("*", "version"): "invalid_field",
    ("*", "status"): "invalid_field",
    ("*", "brief_id"): "invalid_field",
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
        raise _refusal("object", None, "the request body must be a JSON object")
    if model.__struct_config__.forbid_unknown_fields and not _fields(model).issuperset(payload):
        unknown = sorted(set(payload) - _fields(model), key=str)[0]
        allowed = ", ".join(sorted(_fields(model)))
        raise _refusal("unknown", unknown, f"unknown field {unknown!r}; allowed: {allowed}")
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
        return _refusal("missing", named.group(1), f"{named.group(1)} is required")
    text = message[: at.start()] if at else message
    if ", got `null`" in text:
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
        return _refusal(kind, field, f"{field} is required")
    return _refusal(kind, field, f"{field}: {text}" if field else text)


def _refusal(kind: str, field: str | None, message: str) -> Exception:
    code = _CODES.get(("*", field)) if kind != "unknown" else None
    code = code or _CODES.get((kind, field)) or _CODES[(kind, None)]
    if code in ("invalid_json", "empty_patch"):
        return BadRequest(message, code=code)
    return ValidationFailed(message, code=code, field=field)


# --- feeds ------------------------------------------------------------------------------------


class Feed(Struct, frozen=True):
    """A feed; ``status``, ``ended_at`` and ``pinned`` change as editors work (feed meta)."""

    slug: Slug
    title: Annotated[str, Meta(min_length=1, max_length=TITLE_MAX)]
    timezone: Annotated[str, Meta(description="IANA time zone name")]
    created_at: Instant
    status: Status = "live"
    ended_at: Instant | None = None
    pinned: Annotated[str, _meta("id of the pinned brief", pattern=FULL_ID_PATTERN)] | None = None
    language: Annotated[
        str, _meta("BCP 47 language tag of what the feed publishes, e.g. uk or en-GB")
    ] = DEFAULT_LANGUAGE

    def to_dict(self) -> dict[str, Any]:
        value: dict[str, Any] = msgspec.to_builtins(self)
        return value

    def identity(self) -> dict[str, Any]:
        """What never changes after creation: the stored feed record."""
        return {k: v for k, v in self.to_dict().items() if k in _FEED_IDENTITY}


_FEED_IDENTITY = {"slug", "title", "timezone", "language", "created_at"}


class NewFeed(Struct, forbid_unknown_fields=True):
    """A feed to create."""

    slug: Slug
    title: Title
    timezone: Timezone
    language: Language = DEFAULT_LANGUAGE

    def __post_init__(self) -> None:
        validate_slug(self.slug)
        self.title = validate_title(self.title)
        self.timezone = validate_timezone(self.timezone)
        self.language = validate_language(self.language)


class FeedPatch(Struct, forbid_unknown_fields=True):
    """``status`` ends or reopens coverage, ``title`` retitles, ``language`` is pages' lang."""

    json_schema_extra: ClassVar[dict[str, Any]] = {"minProperties": 1}

    status: Status | None = None
    title: Title | None = None
    language: Language | None = None

    def __post_init__(self) -> None:
        if self.title is not None:
            self.title = validate_title(self.title)
        if self.language is not None:
            self.language = validate_language(self.language)


def validate_slug(value: str) -> str:
    if SLUG_RE.fullmatch(value) is None:
        raise _refusal("type", "slug", "slug must be 1-64 characters of a-z, 0-9 and '-'")
    return value


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def validate_timezone(value: str) -> str:
    message = "timezone must be an IANA time zone name such as Europe/Kyiv"
    if value not in _known_zones():
        raise _refusal("type", "timezone", message)
    try:
        zone(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise _refusal("type", "timezone", f"unknown time zone {value!r}") from None
    return value


def validate_language(value: str) -> str:
    """A BCP 47 tag in its usual case (``en-gb`` becomes ``en-GB``): pages say it in ``lang``."""
    match = LANGUAGE_RE.fullmatch(value)
    if match is None or len(value) > LANGUAGE_MAX:
        message = "language must be a BCP 47 language tag such as uk, ar or en-GB"
        raise _refusal("type", "language", message)
    language, script, region, variants = match.groups()
    parts = [language.lower(), script and script.title(), region and region.upper()]
    return "-".join(p for p in parts if p) + variants.lower()


def validate_title(value: str) -> str:
    """A feed's title, on creation or retitling: 1-TITLE_MAX characters, whitespace collapsed."""
    return _text(value, "title", TITLE_MAX, required=True)


def parse_new_feed(payload: Any, created_ms: int) -> Feed:
    """Validate a ``{"slug", "title", "timezone"[, "language"]}`` object into a Feed."""
    new = decode(payload, NewFeed)
    return Feed(new.slug, new.title, new.timezone, iso_ms(created_ms), language=new.language)


def clean_feed(feed: Feed) -> Feed:
    """``feed`` with a title that obeys the text rule (a title stored before it may not)."""
    if obeys_text_rule(feed.title):
        return feed
    return msgspec.structs.replace(feed, title=_clean_line(feed.title, "\ufffd"))


# --- briefs -----------------------------------------------------------------------------------


class NewBrief(Struct, forbid_unknown_fields=True):
    """A brief to publish. Validated, it is a draft: the body still wants sanitising."""

    headline: Headline
    body: Body = ""
    author: Author | None = None
    url: Url | None = None
    tags: Tags | None = None
    key_event: bool = False

    def __post_init__(self) -> None:
        self.headline = _text(self.headline, "headline", HEADLINE_MAX, required=True)
        check_text(self.body, "body")
        self.author = _text(self.author or "", "author", AUTHOR_MAX, required=False)
        self.url = _url(self.url)
        self.tags = _tags(self.tags)


BriefDraft = NewBrief
BRIEF_FIELDS = frozenset(NewBrief.__struct_fields__)


class BriefPatch(Struct, forbid_unknown_fields=True):
    """A correction: any of a brief's fields (at least one), and the ``version`` it edits."""

    json_schema_extra: ClassVar[dict[str, Any]] = {"minProperties": 1}

    headline: Headline | UnsetType = UNSET
    body: Body | UnsetType = UNSET
    author: Author | UnsetType | None = UNSET
    url: Url | UnsetType | None = UNSET
    tags: Tags | UnsetType | None = UNSET
    key_event: bool | UnsetType = UNSET
    version: Annotated[Version | None, _meta("the version edited; the same as If-Match")] = None

    def __post_init__(self) -> None:
        if not isinstance(self.headline, UnsetType):
            self.headline = _text(self.headline, "headline", HEADLINE_MAX, required=True)
        if not isinstance(self.body, UnsetType):
            check_text(self.body, "body")
        if not isinstance(self.author, UnsetType):
            self.author = _text(self.author or "", "author", AUTHOR_MAX, required=False)
        if not isinstance(self.url, UnsetType):
            self.url = _url(self.url)
        if not isinstance(self.tags, UnsetType):
            self.tags = _tags(self.tags)

    def changes(self) -> dict[str, Any]:
        """The fields it sets, normalised (tags as a list, as a brief's JSON has them)."""
        out = {k: v for k, v in msgspec.structs.asdict(self).items() if v is not UNSET}
        out.pop("version")
        if "tags" in out:
            out["tags"] = list(out["tags"])
        return out


class Brief(Struct, frozen=True, kw_only=True):
    """A brief as stored and sent: a validated draft at a stream position, in its n-th version.

    Defaults are for briefs stored before a field existed; every brief sent has them all.
    """

    id: FullId
    published_at: Instant
    updated_at: Instant | None = None
    version: Version = 1
    headline: Annotated[str, Meta(min_length=1, max_length=HEADLINE_MAX)]
    body: Annotated[str, Meta(description="sanitised HTML")] = ""
    author: str = ""
    url: str | None = None
    tags: tuple[str, ...] = ()
    key_event: bool = False


class Pin(Struct):
    """The brief to pin above the feed."""

    brief_id: Annotated[str, _meta("the brief to pin", pattern=STREAM_ID_PATTERN)]


class ReplayControl(Struct):
    """What a replay socket accepts: pause, resume, seek to a local ``to`` time, or ``speed``."""

    action: Literal["pause", "resume", "seek", "speed"]
    to: Annotated[str, _meta("HH:MM or HH:MM:SS, the feed's local time")] | None = None
    speed: float | str | None = None


def parse_new_brief(payload: Any, default_author: str, *, sanitize: bool = True) -> NewBrief:
    """Validate a publish payload; raise ValidationFailed naming the field at fault.

    ``sanitize=False`` checks the body (a string, not too long) but leaves it as given; the
    caller then owes it a ``sanitize_body`` before the draft goes anywhere (imports sanitise as
    they write, while Redis works, once every line has been validated).
    """
    draft = decode(payload, NewBrief)
    if not draft.author:
        draft.author = default_author
    if sanitize:
        draft.body = sanitize_body(draft.body)
    return draft


def parse_patch(payload: Any, *, sanitize: bool = True) -> tuple[dict[str, Any], int | None]:
    """Validate a correction: the changed fields (normalised) and the ``version`` it expects.

    BadRequest ``empty_patch`` when it changes nothing. ``sanitize=False``: as for
    ``parse_new_brief``, a ``body`` among the changes is checked but left to sanitise.
    """
    if isinstance(payload, dict) and "version" in payload:  # a bad version says so first
        try:
            msgspec.convert(payload["version"], Version | None)
        except msgspec.ValidationError:
            raise _refusal("type", "version", "version must be a positive whole number") from None
    patch = decode(payload, BriefPatch)
    changes = patch.changes()
    if not changes:
        raise BadRequest(
            "a correction must change at least one of: " + ", ".join(sorted(BRIEF_FIELDS)),
            code="empty_patch",
        )
    if sanitize and "body" in changes:
        changes["body"] = sanitize_body(changes["body"])
    return changes, patch.version


def new_brief(
    draft: NewBrief,
    brief_id: str,
    published_at: str,
    *,
    version: int = 1,
    updated_at: str | None = None,
) -> Brief:
    """``draft`` as a brief at ``brief_id``."""
    return Brief(
        id=brief_id,
        published_at=published_at,
        updated_at=updated_at,
        version=version,
        headline=draft.headline,
        body=draft.body,
        author=draft.author or "",
        url=draft.url,
        tags=tuple(draft.tags or ()),
        key_event=draft.key_event,
    )


def brief_dict(
    draft: NewBrief,
    brief_id: str,
    published_at: str,
    *,
    version: int = 1,
    updated_at: str | None = None,
) -> dict[str, Any]:
    """The stored and wire form of a brief, as a dict: ``new_brief``'s encoding."""
    brief = new_brief(draft, brief_id, published_at, version=version, updated_at=updated_at)
    value: dict[str, Any] = msgspec.to_builtins(brief)
    return value


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(Brief)


def encode_brief(brief: Brief) -> bytes:
    """A brief's one JSON form: stored in Redis, sent to readers, exported."""
    return _ENCODER.encode(brief)


def decode_brief(raw: bytes) -> Brief:
    """A stored brief, its text cleaned of what the text rule forbids (stored before it)."""
    return clean_brief(_DECODER.decode(raw))


def clean_brief(brief: Brief) -> Brief:
    """``brief`` with its text made to obey the text rule; briefs written under it unchanged."""
    texts = (brief.headline, brief.author, brief.url or "", brief.body, *brief.tags)
    if all(obeys_text_rule(t) for t in texts):
        return brief
    return msgspec.structs.replace(
        brief,
        headline=_clean_line(brief.headline, "\ufffd"),  # a headline still needs a title
        author=_clean_line(brief.author, ""),
        url=_clean_line(brief.url, "") or None if brief.url is not None else None,
        body=clean_text(brief.body),
        tags=tuple(c for t in brief.tags if (c := _clean_line(t, ""))),
    )


def _text(value: str, name: str, limit: int, *, required: bool) -> str:
    value = " ".join(check_text(value, name).split())
    if required and not value:
        raise ValidationFailed(f"{name} must not be empty", code="empty_field", field=name)
    if len(value) > limit:
        raise ValidationFailed(
            f"{name} must be at most {limit} characters", code="too_long", field=name
        )
    return value


def _url(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    url = check_text(value, "url").strip()
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        parts = urlsplit("")
    if len(url) > URL_MAX or parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValidationFailed(
            f"url must be an http(s) URL of at most {URL_MAX} characters",
            code="invalid_url",
            field="url",
        )
    return url


def _tags(value: tuple[str, ...] | None) -> tuple[str, ...]:
    """Tags in the order given, repeats dropped; linear in the list, which is capped first."""
    tags: dict[str, None] = {}  # insertion-ordered, so repeats are dropped in constant time
    for raw in value or ():
        tag = " ".join(check_text(raw, "tags").split())
        if not tag or len(tag) > TAG_MAX:
            raise ValidationFailed(
                f"each tag must be 1-{TAG_MAX} characters", code="invalid_tag", field="tags"
            )
        tags[tag] = None
    return tuple(tags)
