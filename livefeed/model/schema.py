"""Feeds and briefs: their fields, limits and validation. Pure: no I/O.

A brief is validated and sanitised here once, on write; everything downstream (store, hub, pages)
trusts what this module produced. Text fields obey the text rule (``livefeed.model.text``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfoNotFoundError, available_timezones

from livefeed.errors import BadRequest, ValidationFailed
from livefeed.model.days import zone
from livefeed.model.ids import iso_ms
from livefeed.model.text import _clean_line, check_text, obeys_text_rule, sanitize_body

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
