"""Embeds: the posts and articles a brief quotes, as the URL an editor sends and the snapshot kept.

Pure: no I/O (``livefeed.outbound.embeds`` fetches and builds snapshots). A snapshot is what was
posted, by whom and when, taken once when the brief is published or corrected, so the card
still shows it after the original is deleted (``deleted`` says so once a re-resolve finds it
gone). Every text field of a snapshot is plain text obeying the text rule; pages escape it.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

import msgspec
from msgspec import Meta, Struct

from livefeed.errors import ValidationFailed
from livefeed.model.days import local_time_label
from livefeed.model.ids import iso_ms
from livefeed.model.media import MEDIA_ID_LENGTH, MediaInfo, rendition_path
from livefeed.model.schema import (
    EMBED_LINE_MAX,
    EMBED_TEXT_MAX,
    EMBEDS_MAX,
    URL_MAX,
    Instant,
    Url,
)
from livefeed.model.text import check_text, clean_text

Provider = Literal["youtube", "x", "telegram", "link"]
PROVIDERS: tuple[Provider, ...] = ("youtube", "x", "telegram", "link")
PROVIDER_NAMES: dict[str, str] = {
    "youtube": "YouTube",
    "x": "X",
    "telegram": "Telegram",
    "link": "Related article",
}
"""How a provider is named to readers: "Show the post from Telegram"."""


class EmbedRef(Struct, forbid_unknown_fields=True):
    """An embed as editors send it: the URL of a post or article."""

    url: Url

    def __post_init__(self) -> None:
        self.url = embed_url(self.url)


class Embed(Struct, frozen=True, kw_only=True):
    """A resolved embed, as stored in its brief and sent to readers."""

    url: Annotated[str, Meta(description="the URL the editor gave")]
    provider: Provider
    canonical_url: Annotated[str, Meta(description="the post's or article's own address")]
    title: Annotated[str, Meta(description="video or article title; plain text")] = ""
    text: Annotated[str, Meta(description="the post's text or the article's summary; plain")] = ""
    author: Annotated[str, Meta(description="who posted or wrote it; plain text")] = ""
    handle: Annotated[str, Meta(description="the account: @name, a channel")] = ""
    outlet: Annotated[str, Meta(description="the site or outlet; plain text")] = ""
    published_at: Annotated[str | None, Meta(
        description="when it was posted, if known: UTC with milliseconds, or YYYY-MM-DD when "
        "the provider gives only the date (X)"
    )] = None  # fmt: skip
    thumbnail: Annotated[str | None, Meta(
        description="a copy of its image in our media storage: /media/{id}/{width}.jpg"
    )] = None  # fmt: skip
    frame_url: Annotated[
        str | None, Meta(description="the provider's player or post page, loaded on a click")
    ] = None
    resolved_at: Instant
    deleted: Annotated[
        bool, Meta(description="a re-resolve found the original gone: a quotation of it")
    ] = False


def stored_embeds(value: object) -> tuple[Embed, ...]:
    """Snapshots as an export line carries them, checked as ``resolve`` would have made them:
    http(s) links, thumbnails only from our store, text under the text rule; ValidationFailed
    otherwise. An import keeps them as they are (the post may be long gone)."""
    try:
        embeds = msgspec.convert(value, tuple[Embed, ...])
    except msgspec.ValidationError as exc:
        raise ValidationFailed(f"embeds: {exc}", code="invalid_type", field="embeds") from None
    if len(embeds) > EMBEDS_MAX:
        raise ValidationFailed(
            f"at most {EMBEDS_MAX} embeds", code="too_many_embeds", field="embeds"
        )
    out = []
    for embed in embeds:
        for link in (embed.url, embed.canonical_url, embed.frame_url or "https://x"):
            embed_url(link)
        if embed.thumbnail is not None and not _THUMBNAIL.fullmatch(embed.thumbnail):
            raise ValidationFailed("an embed's thumbnail must be one of ours", field="embeds")
        out.append(msgspec.structs.replace(
            embed, published_at=instant(embed.published_at), title=plain_line(embed.title),
            text=plain_text(embed.text), author=plain_line(embed.author),
            handle=plain_line(embed.handle), outlet=plain_line(embed.outlet),
        ))  # fmt: skip
    return tuple(out)


_THUMBNAIL = re.compile(rf"/media/[0-9a-f]{{{MEDIA_ID_LENGTH}}}/\d{{1,5}}\.jpg")
THUMBNAIL_WIDTH = 640
"""A card's thumbnail is at most this wide (feed.css shows it at up to 32rem)."""


def thumbnail_path(info: MediaInfo) -> str:
    """The rendition of an image a snapshot keeps as its thumbnail: the widest at most
    THUMBNAIL_WIDTH, as JPEG (every browser and feed reader shows it)."""
    width = max((w for w in info.widths if w <= THUMBNAIL_WIDTH), default=info.widths[0])
    return rendition_path(info.id, f"{width}.jpg")


def instant(value: object) -> str | None:
    """A provider's time as a snapshot keeps it: an ISO 8601 time as livefeed's UTC stamp, a
    bare date as ``YYYY-MM-DD``; None for anything else."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return date.fromisoformat(text).isoformat()
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return iso_ms(int(when.timestamp() * 1000))
    except (ValueError, OverflowError, OSError):
        return None


def time_label(published_at: str | None, timezone: str, now: int) -> str:
    """When a post was published as a card shows it: a brief's time label (the feed's zone),
    or ``1 Mar 2026`` for a provider that gives only the date."""
    published_at = instant(published_at)
    if published_at is None:
        return ""
    if len(published_at) == len("2026-03-01"):
        day = date.fromisoformat(published_at)
        return f"{day.day} {day.strftime('%b')} {day.year}"
    when = datetime.fromisoformat(published_at.replace("Z", "+00:00"))
    return local_time_label(int(when.timestamp() * 1000), timezone, now)


def embed_url(value: str) -> str:
    """``value`` checked as an http(s) URL for an embed; ValidationFailed ``invalid_url``."""
    url = check_text(value, "embeds").strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = urlsplit("")
    if len(url) > URL_MAX or parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValidationFailed(
            f"each embed url must be an http(s) URL of at most {URL_MAX} characters",
            code="invalid_url",
            field="embeds",
        )
    return url


def plain_line(value: object, limit: int = EMBED_LINE_MAX) -> str:
    """Text from a provider as one line: the text rule applied, whitespace collapsed, capped."""
    return _cap(" ".join(plain_text(value).split()), limit)


def plain_text(value: object, limit: int = EMBED_TEXT_MAX) -> str:
    """Text from a provider (already text: parsers give it with tags gone and references
    decoded) with forbidden characters removed, blank runs collapsed, at most ``limit`` long.
    Any ``<`` left is a character of the text, escaped wherever it is shown."""
    if not isinstance(value, str):
        return ""
    lines = [" ".join(line.split()) for line in clean_text(value).splitlines()]
    return _cap("\n".join(line for line in lines if line), limit)


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
