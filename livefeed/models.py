"""Feeds, briefs and stream positions: pure data and validation, no I/O.

A brief is validated and sanitised here once, on write; everything downstream (store, hub, pages)
trusts what this module produced.

The text rule (``FORBIDDEN_TEXT``): every text a client sends (headline, body, author, url,
tags, feed title, editor name) may hold any Unicode character except C0 controls other than tab,
LF and CR; DEL and the C1 controls (U+007F-U+009F); surrogates (a ``str`` can only hold them
unpaired); and the non-characters (U+FDD0-U+FDEF and the last two code points of every plane).
XML 1.0 cannot carry most of them (one would break Atom for every reader) and none is text a
reader should see. Input holding one is refused whole (``check_text``: 422 ``invalid_text``
naming the field); text stored before the rule is cleaned of them as it is read (``clean_text``).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import nh3

from livefeed.errors import BadRequest, ValidationFailed

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
_STREAM_ID_RE = re.compile(r"(\d{1,20})(?:-(\d{1,20}))?")
_U64 = 2**64 - 1
_FORBIDDEN_ASCII = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f"
_FORBIDDEN_BMP = _FORBIDDEN_ASCII + "\x80-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff"
FORBIDDEN_TEXT = re.compile(
    f"[{_FORBIDDEN_BMP}"
    + "".join(chr(plane << 16 | 0xFFFE) + chr(plane << 16 | 0xFFFF) for plane in range(1, 17))
    + "]"
)
"""One character the text rule (module docstring) forbids in any text field."""
# FORBIDDEN_TEXT scans 20 times slower than a class of BMP characters only: for text without
# astral characters (almost all of it) these find the same characters sooner.
_FORBIDDEN_ASCII_RE = re.compile(f"[{_FORBIDDEN_ASCII}]")
_FORBIDDEN_BMP_RE = re.compile(f"[{_FORBIDDEN_BMP}]")
_ASTRAL_RE = re.compile("[\U00010000-\U0010ffff]")
# Allowed tags that cannot sit inside a <p> (an HTML parser closes the paragraph at them).
_BLOCK_RE = re.compile(r"<(p|ul|ol|li|blockquote)[\s>]")
_ENTITY_RE = re.compile(r"&(#[0-9]+|#x[0-9a-fA-F]+|[a-zA-Z][a-zA-Z0-9]*);")
# Paragraphs of text and line breaks exactly as nh3 writes them: sanitising them changes
# nothing (an export re-imported, a plain-text brief). Not in the text: markup, `&` other than
# the four references nh3 writes, CR (parsing makes it LF), NUL (dropped), U+00A0 (`&nbsp;`),
# and what the text rule forbids in the BMP (the long way drops it; check_text refused the rest).
# Possessive (*+, ++): a body that is not canonical fails at once instead of backtracking.
_TEXT = rf"[^<>&\r\xa0{_FORBIDDEN_BMP}]*+"
_CANONICAL_RE = re.compile(rf"(?:<p>{_TEXT}(?:(?:<br>|&(?:amp|lt|gt|nbsp);){_TEXT})*+</p>)++")

ALLOWED_TAGS = {"p", "br", "a", "strong", "em", "ul", "ol", "li", "blockquote"}
ALLOWED_ATTRIBUTES = {"a": {"href"}}
ALLOWED_SCHEMES = {"http", "https", "mailto"}
# Built once: nh3.clean() builds its sanitiser anew on every call, which costs more than the
# cleaning itself for a 1 KiB body.
_CLEANER = nh3.Cleaner(
    tags=ALLOWED_TAGS,
    attributes={**ALLOWED_ATTRIBUTES, "*": set()},  # "*": none on every tag (ammonia: lang, title)
    url_schemes=ALLOWED_SCHEMES,
    link_rel="noopener noreferrer nofollow",
)


# --- text -----------------------------------------------------------------------------------


def _forbidden(value: str) -> re.Pattern[str]:
    """The quickest pattern that finds in ``value`` what FORBIDDEN_TEXT would find."""
    if value.isascii():
        return _FORBIDDEN_ASCII_RE
    return FORBIDDEN_TEXT if _ASTRAL_RE.search(value) else _FORBIDDEN_BMP_RE


def obeys_text_rule(value: str) -> bool:
    """True when ``value`` holds no character the text rule forbids."""
    return _forbidden(value).search(value) is None


def check_text(value: str, field: str) -> str:
    """``value`` if it obeys the text rule; else ValidationFailed ``invalid_text`` for ``field``,
    naming the first character at fault by code point (never the character itself)."""
    bad = _forbidden(value).search(value)
    if bad is None:
        return value
    point = ord(bad.group())
    kind = (
        "a surrogate"
        if 0xD800 <= point <= 0xDFFF
        else "a control character"
        if point <= 0x9F
        else "a non-character"
    )
    raise ValidationFailed(
        f"{field} contains U+{point:04X} ({kind}) at character {bad.start()}: text must not "
        "hold control characters other than tab and line breaks, surrogates or non-characters",
        code="invalid_text",
        field=field,
    )


def clean_text(value: str) -> str:
    """``value`` without the characters the text rule forbids: for text stored before the rule."""
    return _forbidden(value).sub("", value)


def _clean_line(value: str, fallback: str) -> str:
    """A one-line field cleaned, whitespace collapsed again; ``fallback`` if nothing is left."""
    return " ".join(clean_text(value).split()) or fallback


def clean_brief(brief: dict[str, Any]) -> dict[str, Any]:
    """A stored brief with its text made to obey the text rule (changed in place, returned).

    Briefs written under the rule are unchanged; the check costs one regex scan per field.
    """
    for name in ("headline", "author", "url", "body"):
        value = brief.get(name)
        if isinstance(value, str) and not obeys_text_rule(value):
            if name == "body":
                brief[name] = clean_text(value)
            else:  # a headline of nothing but control characters still needs a title
                brief[name] = _clean_line(value, "\ufffd" if name == "headline" else "")
    tags = brief.get("tags")
    if tags and not all(obeys_text_rule(t) for t in tags if isinstance(t, str)):
        brief["tags"] = [c for t in tags if isinstance(t, str) and (c := _clean_line(t, ""))]
    return brief


# --- stream positions -------------------------------------------------------------------------


@dataclass(frozen=True, order=True, slots=True)
class StreamId:
    """A Redis stream entry id ``<ms>-<seq>``; ordered like Redis orders them."""

    ms: int
    seq: int

    @classmethod
    def parse(cls, raw: str, *, name: str = "id") -> StreamId:
        """Parse ``"<ms>-<seq>"`` or ``"<ms>"`` (seq 0); raise BadRequest for anything else."""
        match = _STREAM_ID_RE.fullmatch(raw)
        if match is None:
            raise BadRequest(f"{name} must be a stream id like 1718000000000-0", code=f"bad_{name}")
        ms, seq = int(match.group(1)), int(match.group(2) or 0)
        if ms > _U64 or seq > _U64:
            raise BadRequest(f"{name} is out of range", code=f"bad_{name}")
        return cls(ms, seq)

    def __str__(self) -> str:
        return f"{self.ms}-{self.seq}"

    def next(self) -> StreamId:
        """The smallest id greater than this one."""
        return StreamId(self.ms, self.seq + 1) if self.seq < _U64 else StreamId(self.ms + 1, 0)


ZERO_ID = StreamId(0, 0)


# --- time -------------------------------------------------------------------------------------


def iso_ms(ms: int) -> str:
    """UTC ISO 8601 with milliseconds, e.g. ``2026-11-24T20:40:00.123Z``."""
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def now_ms() -> int:
    return int(datetime.now(tz=UTC).timestamp() * 1000)


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_time_label(ms: int, tz: str, now: int | None = None) -> str:
    """``HH:MM`` in the feed's zone, or ``D Mon HH:MM`` when not on today's local date."""
    zi = zone(tz)
    when = datetime.fromtimestamp(ms / 1000, tz=zi)
    today = datetime.fromtimestamp((now if now is not None else now_ms()) / 1000, tz=zi).date()
    if when.date() == today:
        return when.strftime("%H:%M")
    return f"{when.day} {when.strftime('%b %H:%M')}"


def zone_label(tz: str, ms: int | None = None) -> str:
    """The zone's abbreviation right now (``EET``/``EEST``), or its UTC offset when it has none."""
    when = datetime.fromtimestamp((ms if ms is not None else now_ms()) / 1000, tz=zone(tz))
    return when.tzname() or when.strftime("UTC%z")


# --- feeds ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Feed:
    """A feed; ``status``, ``ended_at`` and ``pinned`` change as editors work (feed meta)."""

    slug: str
    title: str
    timezone: str
    created_at: str
    status: str = "live"
    ended_at: str | None = None
    pinned: str | None = None
    language: str = DEFAULT_LANGUAGE

    def to_dict(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "title": self.title,
            "timezone": self.timezone,
            "language": self.language,
            "created_at": self.created_at,
            "status": self.status,
            "ended_at": self.ended_at,
            "pinned": self.pinned,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Feed:
        language = data.get("language", DEFAULT_LANGUAGE)
        return cls(
            data["slug"], data["title"], data["timezone"], data["created_at"], language=language
        )

    def identity(self) -> dict[str, Any]:
        """What never changes after creation: the stored feed record."""
        return {k: v for k, v in self.to_dict().items() if k in _FEED_IDENTITY}


_FEED_IDENTITY = {"slug", "title", "timezone", "language", "created_at"}


def validate_slug(value: Any) -> str:
    if not isinstance(value, str) or SLUG_RE.fullmatch(value) is None:
        raise ValidationFailed(
            "slug must be 1-64 characters of a-z, 0-9 and '-'", code="invalid_slug", field="slug"
        )
    return value


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def validate_timezone(value: Any) -> str:
    if not isinstance(value, str) or value not in _known_zones():
        raise ValidationFailed(
            "timezone must be an IANA time zone name such as Europe/Kyiv",
            code="invalid_timezone",
            field="timezone",
        )
    try:
        zone(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed(
            f"unknown time zone {value!r}", code="invalid_timezone", field="timezone"
        ) from None
    return value


def validate_language(value: Any) -> str:
    """A BCP 47 tag in its usual case (``en-gb`` becomes ``en-GB``): pages say it in ``lang``."""
    match = LANGUAGE_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None or len(value) > LANGUAGE_MAX:
        raise ValidationFailed(
            "language must be a BCP 47 language tag such as uk, ar or en-GB",
            code="invalid_language",
            field="language",
        )
    language, script, region, variants = match.groups()
    parts = [language.lower(), script and script.title(), region and region.upper()]
    return "-".join(p for p in parts if p) + variants.lower()


def parse_new_feed(payload: Any, created_ms: int) -> Feed:
    """Validate a ``{"slug", "title", "timezone"[, "language"]}`` object into a Feed."""
    data = _object(payload, {"slug", "title", "timezone", "language"})
    slug = validate_slug(data.get("slug"))
    title = validate_title(data.get("title"))
    timezone = validate_timezone(data.get("timezone"))
    language = validate_language(data.get("language", DEFAULT_LANGUAGE))
    return Feed(slug, title, timezone, iso_ms(created_ms), language=language)


def validate_title(value: Any) -> str:
    """A feed's title, on creation or retitling: 1-TITLE_MAX characters, whitespace collapsed."""
    return _text({"title": value}, "title", TITLE_MAX, required=True)


def clean_feed(feed: Feed) -> Feed:
    """``feed`` with a title that obeys the text rule (a title stored before it may not)."""
    if obeys_text_rule(feed.title):
        return feed
    return replace(feed, title=_clean_line(feed.title, "\ufffd"))


# --- briefs -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BriefDraft:
    """A validated, sanitised brief that has no stream position yet."""

    headline: str
    body: str
    author: str
    url: str | None
    tags: tuple[str, ...]
    key_event: bool = False


BRIEF_FIELDS = {"headline", "body", "author", "url", "tags", "key_event"}


def parse_new_brief(payload: Any, default_author: str, *, sanitize: bool = True) -> BriefDraft:
    """Validate a publish payload; raise ValidationFailed naming the field at fault.

    ``sanitize=False`` checks the body (a string, not too long) but leaves it as given; the
    caller then owes it a ``sanitize_body`` before the draft goes anywhere (imports sanitise as
    they write, while Redis works, once every line has been validated).
    """
    data = _object(payload, BRIEF_FIELDS)
    return BriefDraft(
        headline=_text(data, "headline", HEADLINE_MAX, required=True),
        body=_body(data.get("body", ""), sanitize=sanitize),
        author=_text(data, "author", AUTHOR_MAX, required=False) or default_author,
        url=_url(data.get("url")),
        tags=_tags(data.get("tags")),
        key_event=_flag(data.get("key_event", False), "key_event"),
    )


def parse_patch(payload: Any, *, sanitize: bool = True) -> tuple[dict[str, Any], int | None]:
    """Validate a correction: the changed fields (normalised) and the ``version`` it expects.

    BadRequest ``empty_patch`` when it changes nothing. ``sanitize=False``: as for
    ``parse_new_brief``, a ``body`` among the changes is checked but left to sanitise.
    """
    data = _object(payload, BRIEF_FIELDS | {"version"})
    version = data.get("version")
    if version is not None and (type(version) is not int or version < 1):
        raise ValidationFailed("version must be a positive whole number", field="version")
    changes: dict[str, Any] = {}
    if "headline" in data:
        changes["headline"] = _text(data, "headline", HEADLINE_MAX, required=True)
    if "body" in data:
        changes["body"] = _body(data["body"], sanitize=sanitize)
    if "author" in data:
        changes["author"] = _text(data, "author", AUTHOR_MAX, required=False)
    if "url" in data:
        changes["url"] = _url(data["url"])
    if "tags" in data:
        changes["tags"] = list(_tags(data["tags"]))
    if "key_event" in data:
        changes["key_event"] = _flag(data["key_event"], "key_event")
    if not changes:
        raise BadRequest(
            "a correction must change at least one of: " + ", ".join(sorted(BRIEF_FIELDS)),
            code="empty_patch",
        )
    return changes, version


def brief_dict(
    draft: BriefDraft,
    brief_id: str,
    published_at: str,
    *,
    version: int = 1,
    updated_at: str | None = None,
) -> dict[str, Any]:
    """The stored and wire form of a brief."""
    return {
        "id": brief_id,
        "published_at": published_at,
        "updated_at": updated_at,
        "version": version,
        "headline": draft.headline,
        "body": draft.body,
        "author": draft.author,
        "url": draft.url,
        "tags": list(draft.tags),
        "key_event": draft.key_event,
    }


def _body(raw: Any, *, sanitize: bool = True) -> str:
    if not isinstance(raw, str):
        raise ValidationFailed("body must be a string", code="invalid_type", field="body")
    if len(raw) > BODY_MAX:
        raise ValidationFailed(
            f"body must be at most {BODY_MAX} characters", code="too_long", field="body"
        )
    check_text(raw, "body")
    return sanitize_body(raw) if sanitize else raw


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationFailed(f"{name} must be true or false", code="invalid_type", field=name)
    return value


def sanitize_body(raw: str) -> str:
    """Reduce body text to the allowed HTML subset; plain text becomes paragraphs.

    Idempotent: sanitising its own output changes nothing, so exports re-import byte for byte.
    Text with tags or character references is HTML; anything else is plain text. A reference to
    a character the text rule forbids (``&#1;``) is dropped, as a tag not allowed is.
    """
    text = raw.strip()
    if not text:
        return ""
    if _CANONICAL_RE.fullmatch(text) is not None:
        return text  # what nh3 would give back (tests/test_sanitize.py), ten times sooner
    return _sanitize(text)


def _sanitize(text: str) -> str:
    """``sanitize_body`` the long way, for ``text`` already stripped."""
    if not nh3.is_html(text) and _ENTITY_RE.search(text) is None:
        paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
        text = "".join(
            "<p>" + "<br>".join(html.escape(line, quote=False) for line in p.splitlines()) + "</p>"
            for p in paragraphs
        )
    clean = clean_text(_CLEANER.clean(text)).strip()
    if clean and _BLOCK_RE.search(clean) is None:
        clean = f"<p>{clean}</p>"  # inline-only HTML: give it the paragraph plain text gets
    return clean


def _object(payload: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise BadRequest("the request body must be a JSON object", code="invalid_json")
    if not allowed.issuperset(payload):
        unknown = sorted(set(payload) - allowed)
        raise ValidationFailed(
            f"unknown field {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}",
            code="unknown_field",
            field=unknown[0],
        )
    return payload


def _text(data: dict[str, Any], name: str, limit: int, *, required: bool) -> str:
    value = data.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        code = "missing_field" if value is None else "invalid_type"
        message = f"{name} is required" if value is None else f"{name} must be a string"
        raise ValidationFailed(message, code=code, field=name)
    value = " ".join(check_text(value, name).split())
    if required and not value:
        raise ValidationFailed(f"{name} must not be empty", code="empty_field", field=name)
    if len(value) > limit:
        raise ValidationFailed(
            f"{name} must be at most {limit} characters", code="too_long", field=name
        )
    return value


def _url(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValidationFailed("url must be a string", code="invalid_type", field="url")
    url = check_text(value, "url").strip()
    if len(url) > URL_MAX:
        raise ValidationFailed(
            f"url must be an http(s) URL of at most {URL_MAX} characters",
            code="invalid_url",
            field="url",
        )
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


def _tags(value: Any) -> tuple[str, ...]:
    """Tags in the order given, repeats dropped; linear in the list, which is capped first."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValidationFailed("tags must be a list of strings", code="invalid_type", field="tags")
    if len(value) > TAGS_MAX:
        raise ValidationFailed(f"at most {TAGS_MAX} tags", code="too_many_tags", field="tags")
    tags: dict[str, None] = {}  # insertion-ordered, so repeats are dropped in constant time
    for raw in value:
        if not isinstance(raw, str):
            raise ValidationFailed(
                "tags must be a list of strings", code="invalid_type", field="tags"
            )
        tag = " ".join(check_text(raw, "tags").split())
        if not tag or len(tag) > TAG_MAX:
            raise ValidationFailed(
                f"each tag must be 1-{TAG_MAX} characters", code="invalid_tag", field="tags"
            )
        tags[tag] = None
    return tuple(tags)
