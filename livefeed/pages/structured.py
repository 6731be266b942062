"""What search engines and link previews read from a page: schema.org JSON-LD and Open Graph.

Pure builders over a feed and its briefs as they stand (the dicts ``store.py`` returns), so a
correction shows as a later ``dateModified`` and a retracted brief is simply not there. The
JSON-LD goes into ``<script type="application/ld+json">``: a data block the browser never runs, so
the strict ``script-src 'self'`` policy does not apply to it, but its text must not be able to
close the element, which is why ``<``, ``>`` and ``&`` are written as ``\\u003c`` and so on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import orjson
from markupsafe import Markup
from starlette.requests import Request

from livefeed.model.brief import Brief
from livefeed.model.feed import Feed
from livefeed.model.ids import iso_ms
from livefeed.model.media import CROPS, Media, crop_size, largest, lead_image, rendition_path
from livefeed.model.story import Lead, Summary
from livefeed.model.text import plain_text

# str.replace, not str.translate: translate costs 80 ns a character, 56 ms for a 700 kB page.
_JSON_ESCAPES = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"))


@dataclass(frozen=True, slots=True)
class PageMeta:
    """What a page says about itself: its address, title, description and the times it covers.

    ``url`` is absolute; times are ISO 8601 (UTC); ``coverage_end`` is None while coverage goes on.
    """

    url: str
    title: str
    description: str
    published: str
    modified: str
    coverage_start: str
    coverage_end: str | None
    image: PageImage | None = None


@dataclass(frozen=True, slots=True)
class PageImage:
    """A page's picture for search engines and link previews: absolute URLs of its crops
    (16:9 first, then 4:3 and 1:1, as Google asks), the 16:9 one's size, and its alt text."""

    crops: tuple[str, ...]
    width: int
    height: int
    alt: str


def page_image(base: str, briefs: list[Brief], lead: Lead | None = None) -> PageImage | None:
    """The picture a page is shown by: the lead's first image when the feed's lead has one;
    else the first brief's (in page order) image with role lead, else the first image any of
    its briefs has."""
    chosen = lead_image(lead.media) if lead is not None else None
    if chosen is None:
        items = [item for b in briefs if (item := lead_image(b.media))]
        chosen = next((m for m in items if m.role == "lead"), items[0] if items else None)
    if chosen is None:
        return None
    width, height = crop_size(chosen.width, chosen.height, "16x9")
    crops = tuple(base + rendition_path(chosen.id, f"{label}.jpg") for label in CROPS)
    return PageImage(crops, width, height, chosen.alt)


def image_object(base: str, item: Media) -> dict[str, Any]:
    """An image of a brief as a schema.org ``ImageObject``."""
    image: dict[str, Any] = {
        "@type": "ImageObject",
        "contentUrl": base + largest(item),
        "url": base + largest(item),
        "width": item.widths[-1],
        "height": round(item.height * item.widths[-1] / max(1, item.width)),
    }
    if item.caption:
        image["caption"] = item.caption
    if item.alt:
        image["description"] = item.alt
    if item.credit:
        image["creditText"] = item.credit
    return image


def base_url(request: Request) -> str:
    """This service's public address, without a trailing slash: ``LIVEFEED_PUBLIC_URL`` if set.

    Otherwise the address the request reached it at, which trusts the client's ``Host`` header;
    behind a reverse proxy that is the public address only if the proxy passes ``Host`` on and
    its ``X-Forwarded-Proto`` is trusted (``LIVEFEED_FORWARDED_ALLOW_IPS``).
    """
    public: str = request.app.state.settings.public_url
    return (public or str(request.base_url)).rstrip("/")


def feed_path(slug: str) -> str:
    return f"/feeds/{quote(slug)}"


def permalink(base: str, slug: str, brief_id: str) -> str:
    """A brief's stable address: the live page at it (web/js/permalink.js finds older ones)."""
    return f"{base}{feed_path(slug)}#{brief_id}"


def brief_modified(brief: Brief) -> str:
    """When a brief last changed: its correction time, else its publication time."""
    return brief.updated_at or brief.published_at


def latest(*times: str | None) -> str:
    """The latest of some ISO 8601 times (compared as instants, not as text)."""
    return max((t for t in times if t), key=_ms)


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def reader_meta(
    base: str, feed: Feed, briefs: list[Brief], before: str | None, lead: Lead | None = None
) -> PageMeta:
    """The live page (or one of its older pages, ``?before=``)."""
    url = base + feed_path(feed.slug) + (f"?before={quote(before)}" if before else "")
    ended = feed.ended_at if feed.status == "ended" else None
    # Imported history can be older than the feed itself.
    started = min((feed.created_at, *(b.published_at for b in briefs)), key=_ms)
    return PageMeta(
        url=url,
        title=feed.title,
        description=describe(feed, lead),
        published=started,
        modified=latest(started, ended, *map(brief_modified, briefs)),
        coverage_start=started,
        coverage_end=ended,
        image=page_image(base, briefs, lead),
    )


def describe(feed: Feed, lead: Lead | None = None) -> str:
    """What a feed's pages say they are: its description, else the lead's standfirst, else
    "Live updates: <title>"."""
    return feed.description or (lead and lead.standfirst) or f"Live updates: {feed.title}"


@dataclass(frozen=True, slots=True)
class Story:
    """What the LiveBlogPosting says besides its updates: the lead (``articleBody``), the summary
    (``abstract``) and the publisher (name and logo address; empty: none)."""

    lead: Lead | None = None
    summary: Summary | None = None
    publisher: str = ""
    logo: str = ""


def day_meta(
    base: str,
    feed: Feed,
    day_iso: str,
    day_title: str,
    bounds: tuple[int, int],
    briefs: list[Brief],
    now: int,
    cursor: str | None = None,
) -> PageMeta:
    """A day page (``?cursor=`` for its later part): its coverage runs over the day (``bounds``,
    UTC ms, inclusive), or stops when coverage of the feed ended that day, and has ended once
    that moment has passed."""
    start_ms, end_ms = bounds
    ended_ms = _ms(feed.ended_at) if feed.status == "ended" and feed.ended_at else None
    if ended_ms is not None and start_ms <= ended_ms < end_ms:
        end_ms = ended_ms
    start, end = iso_ms(start_ms), iso_ms(end_ms)
    published = min((b.published_at for b in briefs), key=_ms, default=start)
    return PageMeta(
        url=f"{base}{feed_path(feed.slug)}/days/{day_iso}"
        + (f"?cursor={quote(cursor)}" if cursor else ""),
        title=f"{feed.title} — {day_title}",
        description=f"{feed.title}: every update from {day_title}",
        published=published,
        modified=latest(published, *map(brief_modified, briefs)),
        coverage_start=start,
        coverage_end=end if end_ms < now else None,
        image=page_image(base, briefs),
    )


def live_blog_posting(
    meta: PageMeta, base: str, slug: str, briefs: list[Brief], story: Story | None = None
) -> dict[str, Any]:
    """The schema.org ``LiveBlogPosting`` for a page, each brief a ``BlogPosting`` update, in the
    page's order (newest first on the live page, oldest first on a day page). With ``story``:
    the lead is its ``articleBody`` (standfirst, then body, as plain text), the summary its
    ``abstract`` (one line per item) and the publisher an ``Organization``."""
    posting: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "LiveBlogPosting",
        "@id": meta.url,
        "url": meta.url,
        "mainEntityOfPage": meta.url,
        "headline": meta.title,
        "description": meta.description,
        "datePublished": meta.published,
        "dateModified": meta.modified,
        "coverageStartTime": meta.coverage_start,
    }
    if meta.coverage_end is not None:
        posting["coverageEndTime"] = meta.coverage_end
    if meta.image is not None:
        posting["image"] = list(meta.image.crops)
    if story is not None:
        posting.update(_story(base, story))
    posting["liveBlogUpdate"] = [blog_posting(base, slug, b) for b in briefs]
    return posting


def blog_posting(base: str, slug: str, brief: Brief) -> dict[str, Any]:
    """One brief as a schema.org ``BlogPosting`` whose ``url`` is its permalink."""
    link = permalink(base, slug, brief.id)
    posting: dict[str, Any] = {
        "@type": "BlogPosting",
        "@id": link,
        "url": link,
        "headline": brief.headline,
        "articleBody": plain_text(brief.body),
        "datePublished": brief.published_at,
        "dateModified": brief_modified(brief),
    }
    if brief.author:
        posting["author"] = {"@type": "Person", "name": brief.author}
    if brief.tags:
        posting["keywords"] = list(brief.tags)
    images = [image_object(base, m) for m in brief.media if m.kind == "image"]
    if images:
        posting["image"] = images
    if brief.correction:
        posting["correction"] = {
            "@type": "CorrectionComment",
            "text": brief.correction.note,
            "datePublished": brief.correction.at,
        }
    return posting


def _story(base: str, story: Story) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if story.lead is not None:
        lead = story.lead
        out["articleBody"] = "\n".join(t for t in (lead.standfirst, plain_text(lead.body)) if t)
        if lead.author:
            out["author"] = {"@type": "Person", "name": lead.author}
    if story.summary is not None:
        items = (" ".join(plain_text(item).split()) for item in story.summary.items)
        out["abstract"] = "\n".join(item for item in items if item)
    if story.publisher:
        publisher: dict[str, Any] = {"@type": "Organization", "name": story.publisher}
        if story.logo:
            logo = story.logo if "://" in story.logo else base + story.logo
            publisher["logo"] = {"@type": "ImageObject", "url": logo}
        out["publisher"] = publisher
    return out


def json_ld(data: dict[str, Any]) -> Markup:
    """``<script type="application/ld+json">`` holding ``data``, safe to put in a page as it is."""
    text = orjson.dumps(data).decode()
    for char, escape in _JSON_ESCAPES:
        text = text.replace(char, escape)
    return Markup(f'<script type="application/ld+json">{text}</script>')  # noqa: S704 - escaped above


def social_tags(meta: PageMeta) -> list[tuple[str, str, str]]:
    """Open Graph and Twitter card tags as ``(attribute, name, content)``; the template escapes."""
    tags = [
        ("property", "og:type", "article"),
        ("property", "og:site_name", "livefeed"),
        ("property", "og:title", meta.title),
        ("property", "og:description", meta.description),
        ("property", "og:url", meta.url),
        ("property", "article:published_time", meta.published),
        ("property", "article:modified_time", meta.modified),
        ("name", "twitter:card", "summary_large_image" if meta.image else "summary"),
        ("name", "twitter:title", meta.title),
        ("name", "twitter:description", meta.description),
    ]
    if meta.image is not None:
        tags += [
            ("property", "og:image", meta.image.crops[0]),
            ("property", "og:image:width", str(meta.image.width)),
            ("property", "og:image:height", str(meta.image.height)),
            ("property", "og:image:alt", meta.image.alt),
            ("name", "twitter:image", meta.image.crops[0]),
            ("name", "twitter:image:alt", meta.image.alt),
        ]
    return tags


def alternates(
    base: str, slug: str, title: str, day_iso: str | None = None
) -> list[dict[str, str]]:
    """``<link rel="alternate">`` targets: Atom and JSON Feed, for a day first when on one."""
    links: list[dict[str, str]] = []
    if day_iso is not None:
        day = f"{base}{feed_path(slug)}/days/{day_iso}"
        links += _feed_links(day, f"{title}, {day_iso}")
    return links + _feed_links(base + feed_path(slug), title)


def _feed_links(prefix: str, title: str) -> list[dict[str, str]]:
    return [
        {"type": "application/atom+xml", "title": f"{title} (Atom)", "href": f"{prefix}/atom.xml"},
        {
            "type": "application/feed+json",
            "title": f"{title} (JSON Feed)",
            "href": f"{prefix}/feed.json",
        },
    ]


def page_head(
    meta: PageMeta,
    base: str,
    slug: str,
    briefs: list[Brief],
    feeds: list[dict[str, str]],
    story: Story | None = None,
) -> dict[str, Any]:
    """Template context for web/templates/_head_meta.html."""
    return {
        "head_meta": {
            "canonical": meta.url,
            "social": social_tags(meta),
            "json_ld": json_ld(live_blog_posting(meta, base, slug, briefs, story)),
            "alternates": feeds,
        }
    }
