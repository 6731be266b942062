"""Atom and JSON Feed 1.1 for a feed and for each of its days, for feed readers and other sites.

Both are built from the briefs as they stand: a correction is the same entry with a later
``updated`` / ``date_modified``, a retraction is no entry at all. Entry ids are the briefs'
permalinks, so they stay the same however often a brief is corrected. Atom is written by feedgen
(escaping, element order, dates); JSON Feed is plain JSON.

Responses carry an ``ETag`` (``If-None-Match`` gets 304, so polling readers cost little) and
``Access-Control-Allow-Origin: *``: the content is public and other sites may read it from a page.

A brief's images and audio are enclosures (Atom) and attachments (JSON Feed); each post or
article it quotes is a related link: Atom's ``<link rel="related">``, and in JSON Feed, which
has no such field, the ``_livefeed.related`` extension object. A public correction's note ends
the entry's HTML content ("Corrected: …", escaped); JSON Feed also has it as
``_livefeed.correction`` (``{"note", "at"}``).
"""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from feedgen.ext.base import BaseEntryExtension
from feedgen.feed import FeedGenerator
from feedgen.util import xml_elem
from starlette.requests import Request
from starlette.responses import Response

from livefeed.http.days import DAY_PAGE, read_day
from livefeed.model.brief import Brief
from livefeed.model.embed import PROVIDER_NAMES, Embed
from livefeed.model.feed import Feed
from livefeed.model.ids import StreamId
from livefeed.model.media import AUDIO_TYPES, Media, largest, lead_image, rendition_path
from livefeed.pages.structured import (
    PageMeta,
    base_url,
    brief_modified,
    day_meta,
    permalink,
    reader_meta,
)
from livefeed.storage.store import Store

FEED_ENTRIES = 50  # the live feed's latest briefs; a day's feed has all of it (up to DAY_PAGE)
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
ATOM_TYPE = "application/atom+xml; charset=utf-8"
JSON_FEED_TYPE = "application/feed+json; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Syndicated:
    """What a feed document is made of: the page it mirrors, its own address and the briefs."""

    base: str
    feed: Feed
    meta: PageMeta
    self_url: str
    briefs: list[Brief]  # newest first
    finished: bool  # a day that is over: it changes only when a brief of it is corrected


async def _live(request: Request) -> Syndicated:
    store: Store = request.app.state.store
    feed = await store.require_feed(request.path_params["feed"])
    briefs, _ = await store.latest_briefs(feed.slug, FEED_ENTRIES)
    base = base_url(request)
    meta = reader_meta(base, feed, briefs, None)
    return Syndicated(base, feed, meta, base + request.url.path, briefs, finished=False)


async def _day(request: Request) -> Syndicated:
    store: Store = request.app.state.store
    feed = await store.require_feed(request.path_params["feed"])
    day, briefs, _ = await read_day(store, feed, request.path_params["date"], None, DAY_PAGE)
    base = base_url(request)
    now = await store.now_ms()
    title = day.date.strftime("%A %-d %B %Y")
    meta = day_meta(base, feed, day.iso, title, (day.start_ms, day.end_ms), briefs, now)
    self_url = base + request.url.path
    newest_first = sorted(briefs, key=lambda b: StreamId.parse(b.id), reverse=True)
    return Syndicated(base, feed, meta, self_url, newest_first, day.end_ms < now)


def atom_document(source: Syndicated) -> bytes:
    """An Atom 1.0 feed: one entry per brief, its content the sanitised body as HTML."""
    meta, slug = source.meta, source.feed.slug
    fg = FeedGenerator()
    fg.id(meta.url)
    fg.title(meta.title)
    fg.subtitle(meta.description)
    fg.link(href=meta.url, rel="alternate", type="text/html")
    fg.link(href=source.self_url, rel="self", type="application/atom+xml")
    fg.author({"name": source.feed.title})  # entries without a byline inherit it
    fg.updated(_datetime(meta.modified))
    fg.generator("livefeed")
    for brief in source.briefs:
        link = permalink(source.base, slug, brief.id)
        entry = fg.add_entry(order="append")
        entry.id(link)
        entry.title(brief.headline)
        # One link only: feedgen 1.0 writes an entry link's href but drops its rel and type
        # (python-feedgen issue 135), so a second (related) link would read as a second alternate.
        entry.link(href=link, rel="alternate", type="text/html")
        if brief.body or brief.correction:
            entry.content(_content(brief), type="html")
        entry.published(_datetime(brief.published_at))
        entry.updated(_datetime(brief_modified(brief)))
        if brief.author:
            entry.author({"name": brief.author})
        for tag in brief.tags:
            entry.category(term=tag)
        if brief.media or brief.embeds:
            entry.register_extension("enclosures", _Enclosures, atom=True, rss=False)
            entry.enclosures.links = [_enclosure(source.base, m) for m in brief.media] + [
                {"rel": "related", "type": "text/html", **_related(e)} for e in brief.embeds
            ]
    document: bytes = fg.atom_str(pretty=True)
    return document


def json_feed_document(source: Syndicated) -> dict[str, Any]:
    """A JSON Feed 1.1 object (https://jsonfeed.org/version/1.1)."""
    meta = source.meta
    return {
        "version": JSON_FEED_VERSION,
        "title": meta.title,
        "home_page_url": meta.url,
        "feed_url": source.self_url,
        "description": meta.description,
        "authors": [{"name": source.feed.title}],
        "items": [_json_item(source.base, source.feed.slug, b) for b in source.briefs],
    }


class _Enclosures(BaseEntryExtension):  # type: ignore[misc]
    """An entry's ``<link rel="enclosure">`` elements, one per image or audio item, and its
    ``<link rel="related">`` ones, one per embed.

    Written by an extension (feedgen's public seam) because feedgen 1.0 drops an entry link's
    rel and type (python-feedgen issue 135), which would make an enclosure read as an alternate.
    """

    def __init__(self) -> None:
        self.links: list[dict[str, str]] = []

    def extend_atom(self, entry: Any) -> Any:
        for attributes in self.links:
            xml_elem("link", entry, **attributes)
        return entry


def _enclosure(base: str, item: Media) -> dict[str, str]:
    """An item's file for feed readers: an image's largest JPEG, or the audio itself."""
    if item.kind == "image":
        link = {"rel": "enclosure", "href": base + largest(item), "type": "image/jpeg"}
    else:
        href = base + rendition_path(item.id, f"audio.{item.format}")
        link = {"rel": "enclosure", "href": href, "type": AUDIO_TYPES[item.format]}
    if item.caption or item.alt:
        link["title"] = item.caption or item.alt
    return link


def _related(embed: Embed) -> dict[str, str]:
    """A quoted post or article as a link: its canonical address, titled by what it is."""
    what = embed.title or embed.author or embed.outlet
    name = PROVIDER_NAMES[embed.provider]
    return {"href": embed.canonical_url, "title": f"{name}: {what}" if what else name}


def _json_item(base: str, slug: str, brief: Brief) -> dict[str, Any]:
    link = permalink(base, slug, brief.id)
    item: dict[str, Any] = {"id": link, "url": link, "title": brief.headline}
    if brief.url:
        item["external_url"] = brief.url
    if brief.body or brief.correction:
        item["content_html"] = _content(brief)
    else:
        item["content_text"] = brief.headline  # an item must have content_html or content_text
    item["date_published"] = brief.published_at
    item["date_modified"] = brief_modified(brief)
    if brief.author:
        item["authors"] = [{"name": brief.author}]
    if brief.tags:
        item["tags"] = list(brief.tags)
    image = lead_image(brief.media)
    if image is not None:
        item["image"] = base + largest(image)
    if brief.media:
        item["attachments"] = [
            {"url": link["href"], "mime_type": link["type"]}
            | ({"title": link["title"]} if "title" in link else {})
            for link in map(lambda m: _enclosure(base, m), brief.media)
        ]
    if brief.embeds:
        related = [_related(e) for e in brief.embeds]
        item["_livefeed"] = {"related": [{"url": r["href"], "title": r["title"]} for r in related]}
    if brief.correction:
        correction = {"note": brief.correction.note, "at": brief.correction.at}
        item.setdefault("_livefeed", {})["correction"] = correction
    return item


def _content(brief: Brief) -> str:
    """The sanitised body as HTML, and after it a public correction's note, escaped."""
    if brief.correction is None:
        return brief.body
    return f"{brief.body}<p><em>Corrected: {html.escape(brief.correction.note)}</em></p>"


def _datetime(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def _respond(request: Request, body: bytes, media_type: str, finished: bool) -> Response:
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {
        "ETag": etag,
        "Cache-Control": "public, max-age=60" if finished else "no-cache",
        "Access-Control-Allow-Origin": "*",
    }
    sent = {
        t.strip().removeprefix("W/") for t in request.headers.get("if-none-match", "").split(",")
    }
    if etag in sent:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


def _as_atom(request: Request, source: Syndicated) -> Response:
    return _respond(request, atom_document(source), ATOM_TYPE, source.finished)


def _as_json_feed(request: Request, source: Syndicated) -> Response:
    body = orjson.dumps(json_feed_document(source))
    return _respond(request, body, JSON_FEED_TYPE, source.finished)


async def feed_atom(request: Request) -> Response:
    """``GET /feeds/{feed}/atom.xml``: the latest briefs."""
    return _as_atom(request, await _live(request))


async def feed_json(request: Request) -> Response:
    """``GET /feeds/{feed}/feed.json``: the latest briefs."""
    return _as_json_feed(request, await _live(request))


async def day_atom(request: Request) -> Response:
    """``GET /feeds/{feed}/days/{date}/atom.xml``: a day's briefs; 400 ``bad_date``."""
    return _as_atom(request, await _day(request))


async def day_json(request: Request) -> Response:
    """``GET /feeds/{feed}/days/{date}/feed.json``: a day's briefs; 400 ``bad_date``."""
    return _as_json_feed(request, await _day(request))
