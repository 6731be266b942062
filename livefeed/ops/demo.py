"""The demo feed: generated briefs about an invented storm, posted every ``demo_interval`` s.

All text is generated here from invented places and people, so a newcomer sees the page move
without any real news content.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from datetime import timedelta

from msgspec.structs import replace
from redis.exceptions import RedisError

from livefeed.config import Settings
from livefeed.errors import Conflict
from livefeed.model.brief import BriefDraft, parse_new_brief
from livefeed.model.days import day_containing, day_of
from livefeed.model.draft import parse_fields
from livefeed.model.embed import Embed
from livefeed.model.feed import Feed
from livefeed.model.ids import StreamId, iso_ms, now_ms
from livefeed.model.media import MediaInfo
from livefeed.model.roles import Actor, Role
from livefeed.model.story import parse_lead, parse_summary
from livefeed.model.text import sanitize_body
from livefeed.newsroom import actions, drafts, story
from livefeed.newsroom.transfer import ImportedBrief, import_briefs
from livefeed.ops import demo_media
from livefeed.ops.demo_embeds import QUOTING, demo_embeds
from livefeed.storage.store import Store

log = logging.getLogger("livefeed.ops.demo")

DEMO_SLUG = "demo"
DEMO_EDITOR = "Demo desk"
"""The named editor whose token ``serve --demo`` prints."""
DEMO_CONTRIBUTOR = "Field reporter"
"""The demo's contributor (``serve --demo`` prints their token too): one of their drafts waits
in the review queue when the demo starts."""
DEMO_DRAFT = {
    "headline": "Ferry services to the islands suspended until morning",
    "body": "The harbour master says crossings resume at first light if the wind drops.",
    "tags": ["transport"],
}
DEMO_FEED = {"title": "Storm Halvard: live updates (demo)", "timezone": "Europe/Lisbon"}

_PLACES = [
    "Northmere",
    "Castell Bay",
    "the Arden valley",
    "Port Wyle",
    "Elsbridge",
    "the ring road",
    "Halden Point",
    "Oxley Marsh",
]
_AGENCIES = ["the coastguard", "the regional fire service", "the power operator", "the met office"]
_AUTHORS = ["Mara Quint", "Tobias Lenn", "Ayo Feld", "Ines Varga"]
_HEADLINES = [
    "Winds gust past {speed} km/h in {place}",
    "{agency} opens a second shelter in {place}",
    "Trains suspended between {place} and {place2}",
    "{count} homes without power in {place}",
    "Flood barrier raised at {place} as tide peaks",
    "Ferry crossings to {place} cancelled for the evening",
    "Schools in {place} to stay shut tomorrow",
    "Volunteers fill sandbags on the harbour wall at {place}",
    "Fallen tree blocks the main road out of {place}",
    "Evacuation advised for low-lying streets in {place}",
    "Bus services around {place} resume with delays",
    "Hospital in {place} switches to backup generators",
    "Bridge at {place} closed to high-sided vehicles",
    "{agency} rescues two people from a car in floodwater near {place}",
]
_SENTENCES = [
    "{agency} says crews are working in shifts and asks people to stay off the roads.",
    "Residents describe roof tiles and branches scattered across {place}.",
    "The next update from {agency} is expected within the hour.",
    "Forecasters expect the strongest gusts to pass {place} before midnight.",
    "A spokesperson for {agency} said no injuries had been reported so far.",
    "Our reporter in {place} says the rain has eased but the wind is still strong.",
    "Local radio is carrying a list of open shelters every fifteen minutes.",
    "Drivers heading to {place2} are asked to allow at least an extra hour.",
]
_LEAD = {
    "headline": "Storm Halvard makes landfall: what we know so far",
    "body": "Storm Halvard reached the coast early this morning with gusts of more than 130 km/h."
    "\n\nThousands of homes are without power, several rail lines are closed and shelters are "
    "open in every district. This post is pinned: it is updated as the picture changes.",
    "author": "Ines Varga",
    "tags": ["weather"],
    "key_event": True,
}


_STORY = {
    "headline": "Storm Halvard batters the coast",
    "standfirst": "The strongest storm in a decade has closed roads and rail lines and left "
    "thousands without power; shelters are open in every district.",
    "body": "Storm Halvard made landfall before dawn at Halden Point, with gusts of more than "
    "130 km/h along the coast.\n\nThe met office has kept its red warning in place until "
    "tomorrow morning. The coastguard asks people to keep away from sea fronts and harbour walls.",
    "author": "Ines Varga",
}
_FACTS = [
    "Gusts of up to {speed} km/h recorded at Halden Point",
    "About {count} homes without power across the region",
    "Red weather warning in place until 09:00 tomorrow",
    "Trains between Northmere and Port Wyle suspended",
    "{shelters} shelters open; the list is read on local radio every 15 minutes",
    "Schools in Castell Bay and Elsbridge closed tomorrow",
    "No injuries reported so far, the regional fire service says",
]
_DESCRIPTION = "An invented storm, live: the demo feed of livefeed, with generated updates."


def summary_points(rng: random.Random) -> dict[str, object]:
    """A "What we know" box: a few of the facts, in order, with today's figures."""
    words = {"speed": rng.randrange(110, 150, 5), "count": f"{rng.randrange(4000, 30000, 500):,}",
             "shelters": rng.randint(6, 14)}  # fmt: skip
    picked = sorted(rng.sample(range(len(_FACTS)), rng.randint(4, 6)))
    return {"items": [_FACTS[i].format(**words) for i in picked]}


class Writer:
    """Invented briefs that do not repeat soon: every headline is used once, in a shuffled
    order, before any comes round again, each time about another place."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.scenes: list[MediaInfo] = []
        """The demo's pictures, once drawn (``demo_media``); none if they could not be."""
        self._deck: list[tuple[str, str]] = []
        self._round = 0

    def brief(self, key_event: bool = False) -> dict[str, object]:
        """A plausible, invented brief as a publish payload."""
        rng = self.rng
        if not self._deck:
            # Round r gives headline j the place j + r: each pair once in len(_PLACES) rounds.
            shift, self._round = self._round, self._round + 1
            self._deck = [
                (t, _PLACES[(j + shift) % len(_PLACES)]) for j, t in enumerate(_HEADLINES)
            ]
            rng.shuffle(self._deck)
        template, place = self._deck.pop()
        words = {
            "place": place,
            "place2": rng.choice([p for p in _PLACES if p != place]),
            "agency": rng.choice(_AGENCIES),
            "speed": rng.randrange(80, 150, 5),
            "count": f"{rng.randrange(200, 9000, 50):,}",
        }
        picked = rng.sample(_SENTENCES, 2 * rng.randint(1, 3))
        sentences = [_capital(s.format(**words)) for s in picked]
        paragraphs = [" ".join(sentences[i : i + 2]) for i in range(0, len(sentences), 2)]
        return {
            "headline": _capital(template.format(**words)),
            "body": "\n\n".join(paragraphs),
            "author": rng.choice(_AUTHORS),
            "tags": rng.sample(["weather", "transport", "power", "flooding"], rng.randint(0, 2)),
            "key_event": key_event,
        }


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


async def ensure_demo_feed(store: Store) -> Feed:
    feed = Feed(DEMO_SLUG, DEMO_FEED["title"], DEMO_FEED["timezone"], iso_ms(now_ms()))
    try:
        return await store.create_feed(feed)
    except Conflict:
        return await store.require_feed(DEMO_SLUG)


_LEASE_MS = 3000
"""How long the demo poster's lease lasts unrenewed: the longest silence when its process dies."""


async def run_demo(store: Store, settings: Settings) -> None:
    """Create the demo feed if needed and seed it with everything a reader can see, then post
    one brief every interval (now and then a key event, a correction or a new summary).

    Across workers and nodes only the holder of a short lease, renewed every second, seeds and
    posts: when its process dies another takes over within ``_LEASE_MS``.
    """
    rng = random.Random()
    writer = Writer(rng)
    holder = f"{os.getpid()}-{rng.random()}"
    while True:
        try:
            feed = await ensure_demo_feed(store)
            leader = await store.hold_lease("demo", holder, _LEASE_MS)
            if leader and (await store.bounds(DEMO_SLUG)).first is None:
                writer.scenes = await _scenes(store, settings)
                await seed(store, feed, writer, embeds=await demo_embeds(store, settings))
                await queue_draft(store, feed)
            break
        except RedisError as exc:
            log.warning("demo feed setup failed (%s); retrying", exc)
            await asyncio.sleep(2)
    loop = asyncio.get_running_loop()
    step = min(1.0, settings.demo_interval)
    next_post = loop.time() + settings.demo_interval * rng.uniform(0.7, 1.3)
    posted = 0
    while True:
        await asyncio.sleep(step)
        try:
            if not await store.hold_lease("demo", holder, _LEASE_MS) or loop.time() < next_post:
                continue
            next_post = loop.time() + settings.demo_interval * rng.uniform(0.7, 1.3)
            posted += 1
            if posted % 11 == 0:
                await _update_summary(store, feed, rng)
            elif posted % 7 == 0:
                await _correct_latest(store, feed, rng)
            else:
                payload = writer.brief(key_event=posted % 5 == 0)
                if posted % 3 == 0 and writer.scenes:
                    payload["media"] = [demo_media.item(writer.scenes, posted)]
                await _post(store, feed, payload)
        except RedisError as exc:
            log.warning("demo brief not posted (%s)", exc)


async def queue_draft(store: Store, feed: Feed) -> None:
    """The demo contributor's draft, submitted: what an editor finds in the review queue."""
    reporter = Actor(DEMO_CONTRIBUTOR, Role.CONTRIBUTOR)
    fields = parse_fields(DEMO_DRAFT)
    fields.body = sanitize_body(fields.body)
    draft = await drafts.create(store, feed, fields, reporter, None)
    await drafts.submit(store, feed, draft.id, reporter, None)


async def seed(
    store: Store, feed: Feed, writer: Writer, days: int = 2, embeds: tuple[Embed, ...] = ()
) -> None:
    """Earlier days to read and replay (25-40 briefs a day, 06:00-23:30), and today's last two
    hours with a pinned brief, key events, a correction, a retraction and, from ``embeds``, a
    brief quoting each (livefeed.ops.demo_embeds); the lead story with its photo, the summary
    box (which ``run_demo`` updates now and then) and the feed's description."""
    rng = writer.rng
    now = now_ms()
    today = day_containing(now, feed.timezone).date
    planned: list[tuple[int, dict[str, object]]] = []
    for back in range(days, 0, -1):
        day = day_of(today - timedelta(days=back), feed.timezone)
        first, last = day.start_ms + 6 * 3_600_000, day.start_ms + 23 * 3_600_000 + 1_800_000
        times = sorted(rng.randrange(first, last) for _ in range(rng.randint(25, 40)))
        planned += [(at_ms, writer.brief(key_event=n == 9)) for n, at_ms in enumerate(times)]
    # Today: a lead, then a brief every few minutes up to half a minute ago, over the last two
    # hours or since midnight if that is sooner, so today always has its briefs (in a demo
    # started in the first minute of a day they fall on yesterday's last two hours instead).
    start = max(now - 2 * 3_600_000, day_of(today, feed.timezone).start_ms)
    if now - start < 60_000:
        start = now - 2 * 3_600_000
    times = sorted(rng.sample(range(start, now - 30_000), 9))
    payloads = [dict(_LEAD)] + [writer.brief(key_event=n == 4) for n in range(len(times) - 1)]
    if writer.scenes:  # a picture between the two quoting briefs, a gallery further down
        payloads[3]["media"] = [demo_media.item(writer.scenes, n) for n in (1, 2, 3)]
        payloads[3]["gallery"] = True
        payloads[-2]["media"] = [demo_media.item(writer.scenes, 2)]
    recent = list(zip(times, payloads, strict=True))
    quoted_at = [-1 - 2 * n for n in range(len(embeds))]  # the latest brief and the third
    for n, at in enumerate(quoted_at):
        recent[at] = (recent[at][0], dict(QUOTING[n]))
    ordered = sorted(planned + recent, key=lambda item: item[0])
    # Posted a few minutes before the brief quoting it (the article that morning).
    quoting = {
        times[at]: (replace(embed, published_at=iso_ms(times[at] - (4 + 180 * n) * 60_000)),)
        for n, (at, embed) in enumerate(zip(quoted_at, embeds, strict=True))
    }
    briefs = [
        ImportedBrief(n, at_ms, await _draft(store, p), embeds=quoting.get(at_ms, ()))
        for n, (at_ms, p) in enumerate(ordered, 1)
    ]
    ids = await import_briefs(store, feed, briefs)
    by_time = {at_ms: brief_id for (at_ms, _), brief_id in zip(ordered, ids, strict=True)}
    lead, *rest = [by_time[at_ms] for at_ms in times]
    await actions.pin(store, feed, lead, editor=DEMO_EDITOR)
    await actions.retract(store, feed, rest[1], None, editor=DEMO_EDITOR)
    await _correct(store, feed, rest[-2])
    await actions.update_feed(store, feed, None, None, DEMO_EDITOR, description=_DESCRIPTION)
    photo = [demo_media.item(writer.scenes, 0)] if writer.scenes else []
    lead_draft = parse_lead({**_STORY, "media": photo}, DEMO_EDITOR)
    lead_draft.body = sanitize_body(lead_draft.body)
    lead_draft.media = await store.media.resolve(lead_draft.media)
    await story.set_lead(store, feed, lead_draft, None, DEMO_EDITOR)
    await _update_summary(store, feed, rng)


async def _draft(store: Store, payload: dict[str, object]) -> BriefDraft:
    draft = parse_new_brief(payload, default_author=DEMO_EDITOR)
    draft.media = await store.media.resolve(draft.media)
    return draft


async def _scenes(store: Store, settings: Settings) -> list[MediaInfo]:
    """The demo's pictures, drawn and uploaded; none (and a warning) if the media directory
    cannot be written."""
    try:
        return await demo_media.upload_scenes(store, settings)
    except OSError as exc:
        log.warning("demo pictures not made (%s); the demo posts text only", exc)
        return []


async def _post(store: Store, feed: Feed, payload: dict[str, object]) -> None:
    await actions.publish(store, feed, await _draft(store, payload), editor=DEMO_EDITOR)


async def _correct(store: Store, feed: Feed, brief_id: StreamId) -> None:
    """A public correction: the brief gains a line, a version and a note readers see."""
    brief = await actions.require_brief(store, feed, brief_id)
    body = f"{brief.body}<p>Officials have since confirmed the time.</p>"
    changes = {"body": body, "correction_note": "An earlier version gave the wrong time."}
    await actions.correct(store, feed, brief_id, changes, None, editor=DEMO_EDITOR)


async def _update_summary(store: Store, feed: Feed, rng: random.Random) -> None:
    """The summary box with new figures: readers see it change now and then."""
    summary = parse_summary(summary_points(rng))
    summary.items = tuple(sanitize_body(item) for item in summary.items)
    await story.set_summary(store, feed, summary, None, DEMO_EDITOR)


async def _correct_latest(store: Store, feed: Feed, rng: random.Random) -> None:
    """Correct one of the latest briefs but the newest three: most often one a reader who
    left a few minutes ago had read ("since you were last here" reports it)."""
    briefs, _ = await store.latest_briefs(feed.slug, 10)
    fresh = [b for b in briefs[3:] if b.version == 1]
    if fresh:
        await _correct(store, feed, StreamId.parse(rng.choice(fresh).id))
