"""The atomic append: one event and everything it changes, done by ``append.lua`` in Redis.

An ``Append`` describes the event and its effects as plain data; the script applies it in one
step (so the stream, the briefs' current state, day counts, histories, pin and key-event index
never disagree) and refuses it when a condition fails. ``refusal`` turns those refusals into
livefeed's errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson

from livefeed.errors import Conflict, LivefeedException, NotFound, PreconditionFailed
from livefeed.model.days import Day
from livefeed.storage.idempotency import TTL_SECONDS, Intent, reused

_HERE = Path(__file__).parent
LAST_ID_LUA = (_HERE / "last_id.lua").read_text()
"""``stream_last_id()``, which ``append.lua`` and ``bulk.lua`` both call: put before each."""
APPEND_LUA = LAST_ID_LUA + (_HERE / "append.lua").read_text()

ID = "\ue000livefeed:id\ue000"
"""Placeholder for the entry id in a payload given to ``Store.append``."""
AT = "\ue000livefeed:at\ue000"
"""Placeholder for the entry's time (UTC ISO 8601 with ms) in a payload."""
_MARKS = {ID.encode(): "I", AT.encode(): "A"}
_MARK_RE = re.compile(b"|".join(re.escape(m) for m in _MARKS))


@dataclass(frozen=True, slots=True)
class Append:
    """One event to append, and the state it changes, all in one atomic step (append.lua).

    The event is ``{key: body, **extra}``; ``ID`` and ``AT`` anywhere in ``body`` become the
    entry's id and time inside Redis, so the stored JSON carries its own position and is the wire
    form. ``field`` names the brief concerned (None: the new entry itself). With ``state="set"``
    the filled body becomes that brief's current state, ``"del"`` removes it. ``expect`` (and
    ``version``) must match the brief's current state, ``open`` refuses an ended feed; a ``day``
    count changes by ``day_delta`` (checked against the day's end when ``day_check``).

    ``at_ms`` None takes the time from Redis (live actions: every node then agrees on it); the
    count of ``days`` then changes on the one that time falls on (``Retry.at_ms`` when none).
    With ``intent`` the append happens once per intent, and ``result`` (placeholders filled) is
    kept for a retry of it (livefeed.storage.idempotency).
    """

    type: str
    body: Any
    at_ms: int | None
    key: str = "brief"
    extra: dict[str, Any] | None = None
    strict: bool = False
    day: Day | None = None
    day_delta: int = 0
    day_check: bool = True
    state: Literal["set", "del"] | None = None
    field: str | None = None
    expect: str | None = None
    version: int | None = None
    open: bool = False
    history: bool = False
    key_event: bool | None = None
    meta_set: dict[str, str] | None = None
    meta_del: list[str] | None = None
    unpin: str | None = None
    days: tuple[Day, ...] | None = None
    intent: Intent | None = None
    result: Any = None

    def script_args(self) -> list[bytes | str]:
        header: dict[str, Any] = {
            "type": self.type,
            "at": self.at_ms,
            "strict": self.strict,
            "day": None if self.day is None else self.day.iso,
            "day_end": self.day.end_ms if self.day is not None and self.day_check else 2**53,
            "day_delta": self.day_delta,
            "state": self.state,
            "field": self.field,
            "expect": self.expect,
            "version": self.version,
            "open": self.open,
            "history": self.history,
            "key": self.key_event,
            "meta_set": self.meta_set,
            "meta_del": self.meta_del,
            "unpin": self.unpin,
        }
        if self.days is not None:
            header["days"] = [[d.iso, d.start_ms, d.end_ms] for d in self.days]
        if self.intent is not None:
            result, result_markers = template(self.result)
            header["idem"] = {
                "fp": self.intent.fingerprint,
                "ttl": TTL_SECONDS,
                "markers": result_markers,
                "chunks": [chunk.decode() for chunk in result],
            }
        chunks, markers = template(self.body)
        head = b'{"' + self.key.encode() + b'":'
        tail = b"," + orjson.dumps(self.extra)[1:] if self.extra else b"}"
        return [orjson.dumps(header), markers, head, tail, str(len(chunks)), *chunks]


class Refused(LivefeedException):
    """The script refused an append for a reason callers handle themselves (LIVEFEED_OLDER)."""


class Retry(LivefeedException):
    """The append should be tried again with a fresh clock, or with days around ``at_ms``."""

    def __init__(self, message: str, at_ms: int | None = None) -> None:
        super().__init__(message)
        self.at_ms = at_ms


class Replayed(LivefeedException):
    """The intent was carried out before: ``result`` is what it answered then."""

    def __init__(self, result: Any) -> None:
        super().__init__("replayed")
        self.result = result


def refusal(message: str) -> LivefeedException:
    """The livefeed error for a refusal the script returned (``LIVEFEED_<WHY> ...``)."""
    if message.startswith("LIVEFEED_NOTFOUND"):
        return NotFound("no such brief (it may have been retracted)", code="brief_not_found")
    if message.startswith("LIVEFEED_STALE"):
        current = int(message.split()[1])
        return PreconditionFailed(
            f"the brief has changed: it is at version {current} now", current_version=current
        )
    if message.startswith("LIVEFEED_ENDED"):
        return Conflict("coverage of this feed has ended; reopen it first", code="feed_ended")
    if message.startswith("LIVEFEED_RETRY"):
        return Retry(message)
    if message.startswith("LIVEFEED_CLOCK"):
        return Retry(message, at_ms=int(message.split()[1]))
    if message.startswith("LIVEFEED_REPLAY "):
        return Replayed(orjson.loads(message.removeprefix("LIVEFEED_REPLAY ")))
    if message == "LIVEFEED_REUSED":
        return reused()
    return Refused(message)


def template(payload: Any) -> tuple[list[bytes], str]:
    """Split the payload's JSON at the ID/AT placeholders: chunks, and one marker per gap."""
    data = orjson.dumps(payload)
    markers = "".join(_MARKS[m.group()] for m in _MARK_RE.finditer(data))
    return _MARK_RE.split(data), markers
