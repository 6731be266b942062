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

from redis.exceptions import RedisError

from livefeed import newsroom
from livefeed.config import Settings
from livefeed.days import day_containing, day_of
from livefeed.errors import Conflict
from livefeed.models import Feed, iso_ms, now_ms, parse_new_brief
from livefeed.store import Store
from livefeed.transfer import ImportedBrief, import_briefs

log = logging.getLogger("livefeed.demo")

DEMO_SLUG = "demo"
DEMO_EDITOR = "Demo desk"
"""The named editor whose token ``serve --demo`` prints."""
DEMO_FEED = {"title": "Storm Halvard: live updates (demo)", "timezone": "Europe/Lisbon"}

_PLACES = [
    "Northmere",
    "Castell Bay",
    "the Arden valley",
    "Port Wyle",
    "Elsbridge",
    "the ring road",
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
]
_SENTENCES = [
    "{agency} says crews are working in shifts and asks people to stay off the roads.",
    "Residents describe roof tiles and branches scattered across {place}.",
    "The next update from {agency} is expected within the hour.",
    "Forecasters expect the strongest gusts to pass {place} before midnight.",
    "A spokesperson for {agency} said no injuries had been reported so far.",
    "Our reporter in {place} says the rain has eased but the wind is still strong.",
    "Local radio is carrying a list of open shelters every fifteen minutes.",
]


def generate_brief(rng: random.Random) -> dict[str, object]:
    """A plausible, invented brief as a publish payload."""
    place, place2 = rng.sample(_PLACES, 2)
    words = {
        "place": place,
        "place2": place2,
        "agency": rng.choice(_AGENCIES),
        "speed": rng.randrange(80, 150, 5),
        "count": f"{rng.randrange(200, 9000, 50):,}",
    }
    headline = rng.choice(_HEADLINES).format(**words)
    picked = rng.sample(_SENTENCES, 2 * rng.randint(1, 3))
    sentences = [_capital(s.format(**words)) for s in picked]
    paragraphs = [" ".join(sentences[i : i + 2]) for i in range(0, len(sentences), 2)]
    return {
        "headline": _capital(headline),
        "body": "\n\n".join(paragraphs),
        "author": rng.choice(_AUTHORS),
        "tags": rng.sample(["weather", "transport", "power", "flooding"], rng.randint(0, 2)),
    }


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


async def ensure_demo_feed(store: Store) -> Feed:
    feed = Feed(DEMO_SLUG, DEMO_FEED["title"], DEMO_FEED["timezone"], iso_ms(now_ms()))
    try:
        return await store.create_feed(feed)
    except Conflict:
        return await store.require_feed(DEMO_SLUG)


async def run_demo(store: Store, settings: Settings, seed_count: int = 6) -> None:
    """Create the demo feed if needed, seed a few briefs, then post one every interval."""
    rng = random.Random()
    # With several workers, only the holder of the lease seeds and posts.
    holder = f"{os.getpid()}-{rng.random()}"
    lease_ms = int(max(settings.demo_interval, 10) * 3000)
    while True:
        try:
            feed = await ensure_demo_feed(store)
            leader = await store.hold_lease("demo", holder, lease_ms)
            if leader and (await store.bounds(DEMO_SLUG)).first is None:
                await seed_history(store, feed, rng)
                for _ in range(seed_count):
                    await _post(store, feed, rng)
            break
        except RedisError as exc:
            log.warning("demo feed setup failed (%s); retrying", exc)
            await asyncio.sleep(2)
    while True:
        await asyncio.sleep(settings.demo_interval * rng.uniform(0.7, 1.3))
        try:
            if await store.hold_lease("demo", holder, lease_ms):  # one poster among workers
                await _post(store, feed, rng)
        except RedisError as exc:
            log.warning("demo brief not posted (%s)", exc)


async def seed_history(store: Store, feed: Feed, rng: random.Random, days: int = 2) -> None:
    """Give the demo feed earlier days to read and replay: 25-40 briefs a day, 06:00-23:30."""
    today = day_containing(now_ms(), feed.timezone).date
    history: list[ImportedBrief] = []
    for back in range(days, 0, -1):
        day = day_of(today - timedelta(days=back), feed.timezone)
        first, last = day.start_ms + 6 * 3_600_000, day.start_ms + 23 * 3_600_000 + 1_800_000
        times = sorted(rng.randrange(first, last) for _ in range(rng.randint(25, 40)))
        for at_ms in times:
            draft = parse_new_brief(generate_brief(rng), default_author="Demo desk")
            history.append(ImportedBrief(len(history) + 1, at_ms, draft))
    await import_briefs(store, feed, history)


async def _post(store: Store, feed: Feed, rng: random.Random) -> None:
    draft = parse_new_brief(generate_brief(rng), default_author="Demo desk")
    await newsroom.publish(store, feed, draft, editor="Demo desk")
