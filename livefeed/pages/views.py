"""Server-rendered HTML pages: readable without JavaScript, then brought to life by web/feed.js."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from urllib.parse import quote, urlencode

import msgspec
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from livefeed.errors import BadRequest, LivefeedError
from livefeed.http.days import DAY_PAGE, read_day
from livefeed.model import schema
from livefeed.model.brief import Brief
from livefeed.model.days import local_clock, local_time_label, zone_label
from livefeed.model.embed import PROVIDER_NAMES, Embed, time_label
from livefeed.model.ids import StreamId
from livefeed.model.story import Lead, Summary
from livefeed.model.topics import Topic, parse_topic, tag_key
from livefeed.newsroom import actions
from livefeed.pages import changes, structured
from livefeed.storage.store import Store

# A strict policy: no inline script or style, sockets only back to this origin.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


def _templates(request: Request) -> Jinja2Templates:
    templates: Jinja2Templates = request.app.state.templates
    return templates


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    status: int = 200,
    ancestors: str | None = None,
) -> Response:
    """A template with the security headers; ``ancestors`` overrides who may frame it."""
    response = _templates(request).TemplateResponse(request, name, context, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    ancestors = ancestors or request.app.state.settings.frame_ancestors
    # Embeds' "Show the post" frames: only the allowed providers' (privacy-enhanced) origins.
    frames = " ".join(request.app.state.resolver.providers.frame_origins())
    response.headers["Content-Security-Policy"] += f"; frame-src 'self' {frames}".rstrip()
    response.headers["Content-Security-Policy"] += f"; frame-ancestors {ancestors}"
    return response


async def index_page(request: Request) -> Response:
    store: Store = request.app.state.store
    return render(request, "index.html", {"feeds": await store.list_feeds()})


async def feed_page(request: Request) -> Response:
    """The live page: latest briefs newest first (or an older page with ``?before=``); with
    ``?tag=`` and/or ``?key_event=true`` only that topic's (``model.topics``)."""
    store: Store = request.app.state.store
    settings = request.app.state.settings
    slug = request.path_params["feed"]
    feed = await store.get_feed(slug)
    if feed is None:
        return not_found(request, f"feed “{slug}”")
    raw_before = request.query_params.get("before") or None
    before = StreamId.parse(raw_before, name="before") if raw_before else None
    topic = parse_topic(request.query_params)
    # The position first: a brief published in between is then both on the page and resent
    # over the socket (the page skips the copy), never on neither.
    bounds = await store.bounds(slug)
    if topic.filtered:
        briefs, older = await store.topic_briefs(slug, topic, settings.page_size, before)
    else:
        briefs, older = await store.latest_briefs(slug, settings.page_size, before)
    keys = await actions.key_events(store, feed)
    pinned = None
    if feed.pinned is not None:
        (pinned,) = await store.states(slug, [StreamId.parse(feed.pinned)])
    lead, summary, _, _ = await store.story(slug)
    now = await store.now_ms()
    ended_ms = _ms(feed.ended_at)
    base = structured.base_url(request)
    meta = structured.reader_meta(base, feed, briefs, raw_before, lead)
    feeds = structured.alternates(base, slug, feed.title)
    story = structured.Story(lead, summary, settings.publisher_name, settings.publisher_logo)
    return render(
        request,
        "feed.html",
        {
            "feed": feed,
            "lang": feed.language,
            "briefs": [_view(b, feed.timezone, now) for b in briefs],
            "before": raw_before,
            "older_before": None if older is None else str(older),
            "last_event_id": str(bounds.last_generated),
            "tz_label": zone_label(feed.timezone, now),
            "pinned": pinned and _view(pinned, feed.timezone, now),
            "key_events": [_view(b, feed.timezone, now) for b in keys],
            "ended_local": local_time_label(ended_ms, feed.timezone, now) if ended_ms else None,
            "description": meta.description,
            "lead": _story_view(lead, feed.timezone, now),
            "summary": _story_view(summary, feed.timezone, now),
            **_topic_view(topic, briefs),
            **structured.page_head(meta, base, slug, briefs, feeds, story),
        },
    )


def _topic_view(topic: Topic, briefs: list[Brief]) -> dict[str, Any]:
    """What a filtered page shows of its topic: ``topic`` (its heading, the tag as the briefs
    spell it, else as asked for) and ``topic_query`` (``&tag=…`` for its links), both empty
    when the page is not filtered."""
    if not topic.filtered:
        return {"topic": None, "topic_query": ""}
    tag = topic.tag
    if tag is not None:
        spelled = (t for b in briefs for t in b.tags if tag_key(t) == topic.key)
        tag = next(spelled, tag)
    heading = "Key events" if topic.key_event else ""
    if tag is not None:
        heading = f"{heading} tagged" if heading else "Tagged"
    view = {"tag": tag, "key_event": topic.key_event, "heading": heading}
    return {"topic": view, "topic_query": "&" + urlencode(Topic(tag, topic.key_event).query())}


def _ms(iso: str | None) -> int | None:
    return None if iso is None else int(datetime.fromisoformat(iso).timestamp() * 1000)


def _view(brief: Brief, timezone: str, now: int) -> dict[str, Any]:
    """What a template shows of a brief: its fields, and when it was published and (if
    corrected) updated on the feed's local clock."""
    view: dict[str, Any] = msgspec.structs.asdict(brief)
    view["local_time"] = local_time_label(StreamId.parse(brief.id).ms, timezone, now)
    updated = _ms(brief.updated_at)
    view["updated_local"] = local_time_label(updated, timezone, now) if updated else None
    view["embeds"] = [_embed_view(e, timezone, now) for e in brief.embeds]
    corrected = _ms(brief.correction.at) if brief.correction else None
    view["corrected_local"] = local_time_label(corrected, timezone, now) if corrected else None
    return view


async def changes_page(request: Request) -> Response:
    """``/feeds/{feed}/briefs/{brief}/changes``: a brief's public corrections, each with its
    note and a word-level diff of headline and body (``pages.changes``)."""
    store: Store = request.app.state.store
    slug = request.path_params["feed"]
    feed = await store.get_feed(slug)
    if feed is None:
        return not_found(request, f"feed “{slug}”")
    raw = request.path_params["brief"]
    try:
        target = StreamId.parse(raw, name="id")
        versions = await actions.history(store, feed, target)
    except LivefeedError:
        return not_found(request, "such brief", (structured.feed_path(slug), feed.title))
    now = await store.now_ms()
    current = next((v["brief"] for v in reversed(versions) if v["brief"]), None)
    shown, older = changes.public_changes(versions)
    listed = [
        {"change": c, "local": local_time_label(_ms(c.at) or 0, feed.timezone, now)} for c in shown
    ]
    context = {
        "feed": feed,
        "lang": feed.language,
        "brief_id": str(target),
        "headline": current["headline"] if current else "",
        "changes": listed,
        "older": older,
    }
    return render(request, "changes.html", context)


def _embed_view(embed: Embed, timezone: str, now: int) -> dict[str, Any]:
    """What _embeds.html shows of a snapshot: its fields, the provider's name and its time."""
    view: dict[str, Any] = msgspec.structs.asdict(embed)
    view["provider_name"] = PROVIDER_NAMES[embed.provider]
    view["time_label"] = time_label(embed.published_at, timezone, now)
    view["date_only"] = len(embed.published_at or "") == len("2026-03-01")
    return view


def _story_view(part: Lead | Summary | None, timezone: str, now: int) -> dict[str, Any] | None:
    """What a template shows of the lead or the summary: its fields and when it last changed."""
    if part is None:
        return None
    view: dict[str, Any] = msgspec.structs.asdict(part)
    view["updated_local"] = local_time_label(_ms(part.updated_at) or 0, timezone, now)
    return view


async def days_page(request: Request) -> Response:
    """``/feeds/{feed}/days[?date=]``: go to the chosen day, or the latest one with briefs."""
    store: Store = request.app.state.store
    feed = await store.get_feed(request.path_params["feed"])
    if feed is None:
        return not_found(request, f"feed “{request.path_params['feed']}”")
    chosen = request.query_params.get("date")
    if not chosen:
        days = await store.days(feed.slug)
        if not days:
            back = (f"/feeds/{feed.slug}", f"See the live page of {feed.title}")
            return not_found(request, f"archive for “{feed.title}” yet", back)
        chosen = days[0][0]
    return RedirectResponse(f"/feeds/{feed.slug}/days/{quote(chosen)}", status_code=303)


async def day_page(request: Request) -> Response:
    """A day as it finally stands, oldest first, with a Replay control for readers with JS."""
    store: Store = request.app.state.store
    feed = await store.get_feed(request.path_params["feed"])
    if feed is None:
        return not_found(request, f"feed “{request.path_params['feed']}”")
    raw_date = request.path_params["date"]
    topic = parse_topic(request.query_params)
    try:
        day, briefs, after = await read_day(
            store, feed, raw_date, request.query_params.get("cursor"), DAY_PAGE, topic
        )
    except BadRequest:
        back = (f"/feeds/{feed.slug}/days", f"See the days of {feed.title}")
        return not_found(request, f"day “{raw_date}”", back)
    days = [d for d, _ in await store.days(feed.slug)]
    earlier = [d for d in days if d < day.iso]
    later = [d for d in days if d > day.iso]
    show_zone = day.hours != 24
    now = await store.now_ms()
    day_title = day.date.strftime("%A %-d %B %Y")
    base = structured.base_url(request)
    bounds = (day.start_ms, day.end_ms)
    cursor = request.query_params.get("cursor")
    meta = structured.day_meta(base, feed, day.iso, day_title, bounds, briefs, now, cursor)
    feeds = structured.alternates(base, feed.slug, feed.title, day.iso)
    views = []
    for brief in briefs:
        view = _view(brief, feed.timezone, now)
        ms = StreamId.parse(brief.id).ms
        view["local_time"] = local_clock(ms, feed.timezone)[:5]
        if show_zone:
            view["local_time"] += " " + zone_label(feed.timezone, ms)
        views.append(view)
    return render(
        request,
        "day.html",
        {
            "feed": feed,
            "lang": feed.language,
            "day": day,
            "day_title": day_title,
            "briefs": views,
            "next_cursor": None if after is None else str(after),
            "cursor": cursor,
            "days": [(d, day_label(d)) for d in days],
            "previous_day": earlier[0] if earlier else None,
            "next_day": later[-1] if later else None,
            "previous_label": short_day(earlier[0]) if earlier else None,
            "next_label": short_day(later[-1]) if later else None,
            "tz_label": zone_label(feed.timezone, (day.start_ms + day.end_ms) // 2),
            "tag_base": f"/feeds/{feed.slug}/days/{day.iso}",
            **_topic_view(topic, briefs),
            **structured.page_head(meta, base, feed.slug, briefs, feeds),
        },
    )


def short_day(iso: str) -> str:
    """``2026-11-29`` as people read it in a link: ``Sun 29 Nov``."""
    return date.fromisoformat(iso).strftime("%a %-d %b")


def day_label(iso: str) -> str:
    """``2026-11-29`` as the day picker lists it: ``Sun 29 Nov 2026``."""
    return date.fromisoformat(iso).strftime("%a %-d %b %Y")


def not_found(
    request: Request, what: str, back: tuple[str, str] = ("/", "See all live feeds")
) -> Response:
    """404 with a way on: ``back`` is the link (href, text) nearest to what was asked for."""
    context = {"what": what, "back_href": back[0], "back_text": back[1]}
    return render(request, "not_found.html", context, status=404)


# What the editor's fields and counters allow, from the model's own limits: rendered into the
# page (maxlength attributes, and <meta name="livefeed-limits"> for web/js/limits.js).
EDITOR_LIMITS = {
    "headline": schema.HEADLINE_MAX,
    "body": schema.BODY_MAX,
    "author": schema.AUTHOR_MAX,
    "url": schema.URL_MAX,
    "tags": schema.TAGS_MAX,
    "tag": schema.TAG_MAX,
    "title": schema.TITLE_MAX,
    "language": schema.LANGUAGE_MAX,
    "slug": schema.SLUG_MAX,
    "media": schema.MEDIA_MAX,
    "alt": schema.ALT_MAX,
    "caption": schema.CAPTION_MAX,
    "credit": schema.CREDIT_MAX,
    "transcript": schema.TRANSCRIPT_MAX,
    "standfirst": schema.STANDFIRST_MAX,
    "summary_title": schema.SUMMARY_TITLE_MAX,
    "summary_items": schema.SUMMARY_ITEMS_MAX,
    "summary_item": schema.SUMMARY_ITEM_MAX,
    "embeds": schema.EMBEDS_MAX,
    "correction_note": schema.CORRECTION_NOTE_MAX,
}


async def editor_page(request: Request) -> Response:
    """The newsroom's page; it signs in with a token and works through the JSON API."""
    return render(request, "editor.html", {"limits": EDITOR_LIMITS})


EMBED_BRIEFS = 10
EMBED_BRIEFS_MAX = 50


async def embed_page(request: Request) -> Response:
    """``/embed/{feed}[?limit=N]``: the latest briefs in a compact page for an iframe on other
    sites (web/embed-loader.js), kept live by web/embed.js. Frameable by
    ``settings.embed_ancestors`` (any site by default), unlike every other page."""
    store: Store = request.app.state.store
    settings = request.app.state.settings
    slug = request.path_params["feed"]
    feed = await store.get_feed(slug)
    if feed is None:
        what = {"what": f"feed “{slug}”"}
        return render(request, "not_found.html", what, 404, settings.embed_ancestors)
    raw_limit = request.query_params.get("limit", "")
    limit = (
        min(int(raw_limit), EMBED_BRIEFS_MAX)
        if raw_limit.isascii() and raw_limit.isdigit()
        else EMBED_BRIEFS
    )
    topic = parse_topic(request.query_params)
    # The stream position first, then the briefs: a brief published in between is then both on
    # the page and sent again over the socket (embed.js skips it), never on neither.
    bounds = await store.bounds(slug)
    if topic.filtered:
        briefs, _ = await store.topic_briefs(slug, topic, max(limit, 1))
    else:
        briefs, _ = await store.latest_briefs(slug, max(limit, 1))
    pinned = None
    if feed.pinned is not None:
        (pinned,) = await store.states(slug, [StreamId.parse(feed.pinned)])
    _, summary, _, _ = await store.story(slug)
    now = await store.now_ms()
    context: dict[str, Any] = {
        "feed": feed,
        "lang": feed.language,
        "briefs": [_view(b, feed.timezone, now) for b in briefs],
        "pinned": pinned and _view(pinned, feed.timezone, now),
        "summary": _story_view(summary, feed.timezone, now),
        "limit": max(limit, 1),
        "last_event_id": str(bounds.last_generated),
        "tz_label": zone_label(feed.timezone, now),
        **_topic_view(topic, briefs),
    }
    return render(request, "embed.html", context, ancestors=settings.embed_ancestors)


_ICONS = {
    "/favicon.ico": ("favicon.ico", "image/x-icon"),
    "/favicon.svg": ("favicon.svg", "image/svg+xml"),
}


async def favicon(request: Request) -> Response:
    """``/favicon.ico`` (asked for by browsers and feed readers unprompted) and ``/favicon.svg``
    (linked from every page): static files, cached for a week."""
    name, media_type = _ICONS[request.url.path]
    path = request.app.state.settings.web_dir / name
    headers = {"Cache-Control": "public, max-age=604800"}
    return FileResponse(path, media_type=media_type, headers=headers)
