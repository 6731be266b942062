"""Briefs of realistic size for the benchmark, with the publish time embedded in the body.

Every brief body carries a marker ``bench:<seq>:<sent_ns>``: ``seq`` numbers the brief within a run
(0 for the seed briefs that make up the backlog) and ``sent_ns`` is ``time.time_ns()`` taken just
before the publish call, so a reader computes its latency from the frame alone. ``time.time_ns``
is one clock for every process on the machine.
"""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

MARK = re.compile(r"bench:(\d+):(\d+)")
SEED_SEQ = 0  # the briefs that make up the backlog
AUTHOR = "Newsroom"

_WORDS = [
    "the",
    "city",
    "council",
    "said",
    "on",
    "monday",
    "that",
    "the",
    "bridge",
    "over",
    "the",
    "river",
    "would",
    "stay",
    "closed",
    "until",
    "engineers",
    "had",
    "inspected",
    "every",
    "cable",
    "police",
    "asked",
    "drivers",
    "to",
    "avoid",
    "the",
    "centre",
    "and",
    "use",
    "the",
    "ring",
    "road",
    "instead",
    "residents",
    "reported",
    "long",
    "queues",
    "at",
    "the",
    "northern",
    "checkpoint",
    "while",
    "trams",
    "ran",
    "every",
    "ten",
    "minutes",
    "officials",
    "promised",
    "an",
    "update",
    "by",
    "evening",
    "emergency",
    "services",
    "were",
    "on",
    "standby",
    "near",
    "the",
    "station",
    "firefighters",
    "contained",
    "the",
    "blaze",
    "at",
    "the",
    "warehouse",
    "no",
    "injuries",
    "were",
    "reported",
    "the",
    "mayor",
    "thanked",
    "volunteers",
    "who",
    "handed",
    "out",
    "water",
    "the",
    "forecast",
    "warns",
    "of",
    "strong",
    "winds",
    "overnight",
    "schools",
    "will",
    "open",
    "an",
    "hour",
    "later",
    "tomorrow",
    "power",
    "was",
    "restored",
    "to",
    "most",
    "homes",
    "in",
    "the",
    "eastern",
    "district",
    "after",
    "a",
    "three",
    "hour",
    "outage",
]


def body_text(seq: int, sent_ns: int, size: int) -> str:
    """Plain text of about ``size`` characters in a few paragraphs, with the marker in the first."""
    rng = random.Random(seq)
    words: list[str] = ["update", f"bench:{seq}:{sent_ns}"]
    length = sum(len(w) + 1 for w in words)
    while length < size:
        word = rng.choice(_WORDS)
        words.append(word)
        length += len(word) + 1
    paragraphs, step = [], max(len(words) // 3, 1)
    for start in range(0, len(words), step):
        text = " ".join(words[start : start + step])
        paragraphs.append(text[0].upper() + text[1:] + ".")
    return "\n\n".join(paragraphs)


def body_size(seq: int) -> int:
    """0.5 to 1.5 KiB, fixed per ``seq`` so both servers carry the same bytes."""
    return random.Random(seq * 7919 + 1).randint(512, 1536)


def headline(seq: int) -> str:
    return f"Update {seq}: bridge stays closed, trams run every ten minutes"


def publish_payload(seq: int, sent_ns: int) -> dict[str, object]:
    """The JSON body of ``POST /api/feeds/{feed}/briefs``."""
    return {"headline": headline(seq), "body": body_text(seq, sent_ns, body_size(seq))}


def reference_frame(seq: int, sent_ns: int) -> bytes:
    """The frame the reference broadcasts: livefeed's ``brief`` frame for the same brief.

    Same fields and the same body HTML as livefeed stores (plain paragraphs become ``<p>``), so
    every server moves frames of the same size (Nchan, Node and the reference send this text).
    """
    ms = sent_ns // 1_000_000
    brief_id = f"{ms}-0"
    at = datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"
    paragraphs = body_text(seq, sent_ns, body_size(seq)).split("\n\n")
    brief: dict[str, object] = {
        "id": brief_id,
        "published_at": at,
        "updated_at": None,
        "version": 1,
        "headline": headline(seq),
        "body": "".join(f"<p>{p}</p>" for p in paragraphs),
        "author": AUTHOR,
        "url": None,
        "tags": [],
        "key_event": False,
        "embeds": [],
        "media": [],
        "gallery": False,
        "correction": None,
    }
    return orjson.dumps({"type": "brief", "event_id": brief_id, "brief": brief, "editor": AUTHOR})


def write_archive(path: Path, count: int, per_day: int) -> list[str]:
    """Write ``count`` briefs as import JSONL, oldest first, ``per_day`` to each UTC day.

    The days end the day before yesterday; returns the dates (YYYY-MM-DD) that were filled.
    Bodies are HTML, as an export writes them.
    """
    days = -(-count // per_day)
    first = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    first -= timedelta(days=days + 1)
    spacing_ms = 86_400_000 // per_day
    dates: list[str] = []
    with open(path, "wb") as out:
        for i in range(count):
            day, slot = divmod(i, per_day)
            at = first + timedelta(days=day, milliseconds=slot * spacing_ms + 500)
            if slot == 0:
                dates.append(at.date().isoformat())
            paragraphs = body_text(i + 1, 0, body_size(i + 1)).split("\n\n")
            line = {
                "published_at": at.isoformat(timespec="milliseconds")[:-6] + "Z",
                "headline": f"Archive {i}: {headline(i)}",
                "body": "".join(f"<p>{p}</p>" for p in paragraphs),
                "author": AUTHOR,
                "url": None,
                "tags": ["archive"],
            }
            out.write(orjson.dumps(line) + b"\n")
    return dates
