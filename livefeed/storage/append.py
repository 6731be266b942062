"""The atomic append: one event and everything it changes, done by ``append.lua`` in Redis.

An ``Append`` is one editor action (publish, correct, retract, pin, unpin, update the feed,
set or clear its lead or summary), built by the constructor named for it; the script applies
it in one step (so the stream, the briefs' current state, day counts, histories, pin, key-event
index, lead and summary never disagree) and refuses it when a condition fails. ``refusal``
turns those refusals into livefeed's errors.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from livefeed.errors import Conflict, LivefeedException, NotFound, PreconditionFailed
from livefeed.model.days import Day
from livefeed.model.ids import StreamId
from livefeed.model.topics import tag_keys
from livefeed.storage.idempotency import TTL_SECONDS, Intent, reused

_HERE = Path(__file__).parent
LAST_ID_LUA = (_HERE / "last_id.lua").read_text()
"""``stream_last_id()``, which ``append.lua`` and ``bulk.lua`` both call: put before each."""
DESK_LUA = (_HERE / "desk.lua").read_text()
"""``check_draft()`` and ``write_draft()``, which ``drafts.lua`` and ``append.lua`` both call."""
TAGS_LUA = (_HERE / "tags.lua").read_text()
"""``tag_brief()`` and ``untag_brief()``, the topic index's writes: append.lua, bulk.lua and
remove.lua call them."""
APPEND_LUA = LAST_ID_LUA + DESK_LUA + TAGS_LUA + (_HERE / "append.lua").read_text()

ID = "\ue000livefeed:id\ue000"
"""Placeholder for the entry id in a payload given to ``Store.append``."""
AT = "\ue000livefeed:at\ue000"
"""Placeholder for the entry's time (UTC ISO 8601 with ms) in a payload."""
_MARKS = {ID.encode(): "I", AT.encode(): "A"}
_MARK_RE = re.compile(b"|".join(re.escape(m) for m in _MARKS))


@dataclass(frozen=True, slots=True)
class Append:
    """One editor action: its event, and the state it changes in the same atomic step.

    Build one with the constructor named for the action (``Append.publish`` ...); append.lua
    has one function per action, chosen by the event ``type``. The event is ``{body_name: body,
    "editor": editor}``; ``ID`` and ``AT`` anywhere in ``body`` (and in ``result``) become the
    entry's id and time inside Redis, so the stored JSON carries its own position and is the
    wire form. Every action is stamped by Redis's clock (every node then agrees on it). With
    ``intent`` the append happens once per intent, and ``result`` (placeholders filled) is kept
    for a retry of it (livefeed.storage.idempotency).
    """

    type: str
    """The event type, which also names the action to append.lua."""
    body_name: str
    """The name the body goes under in the event's JSON: ``brief``, ``brief_id``, ``feed``,
    ``lead``, ``summary`` or ``version``."""
    body: Any
    editor: str
    params: dict[str, Any]
    """The action's own parameters, as its function in append.lua reads them."""
    intent: Intent | None = None
    result: Any = None
    keys: tuple[str, ...] = ()
    """More keys the script is given after its own (a published draft's: ``Keys.desk_keys``)."""
    notify: bool = False
    """A publish sent as a breaking alert: the event gets ``"notify": true`` (newsroom.push)."""

    @classmethod
    def publish(
        cls,
        brief: dict[str, Any],
        editor: str,
        days: Sequence[Day],
        *,
        key_event: bool,
        intent: Intent | None = None,
        at_ms: int | None = None,
        notify: bool = False,
    ) -> Append:
        """A new brief, counted on whichever of ``days`` its time falls on (``Retry`` naming
        that time when none); refused once coverage has ended. ``at_ms`` replaces Redis's
        clock: no live caller passes it, tests pin time with it."""
        params: dict[str, Any] = {"days": [[d.iso, d.start_ms, d.end_ms] for d in days],
                                  "key_event": key_event,
                                  "tags": tag_keys(brief.get("tags") or ())}  # fmt: skip
        if at_ms is not None:
            params["at"] = at_ms
        return cls("brief", "brief", brief, editor, params, intent, brief, notify=notify)

    @classmethod
    def correct(
        cls,
        brief_id: StreamId,
        updated: dict[str, Any],
        version: int,
        editor: str,
        *,
        key_event: bool,
        intent: Intent | None = None,
    ) -> Append:
        """The brief's new state, if it is still at ``version``; it joins or leaves the key
        events as ``key_event`` says."""
        params = {"brief": str(brief_id), "version": version, "key_event": key_event,
                  "tags": tag_keys(updated.get("tags") or ())}  # fmt: skip
        return cls("brief_updated", "brief", updated, editor, params, intent, updated)

    @classmethod
    def retract(
        cls,
        brief_id: StreamId,
        day: Day,
        editor: str,
        *,
        version: int | None,
        intent: Intent | None = None,
    ) -> Append:
        """Remove the brief (at ``version``, if given) from its ``day``, the key events and the
        pin; its history stays."""
        params = {"brief": str(brief_id), "version": version, "day": day.iso}
        return cls("brief_deleted", "brief_id", str(brief_id), editor, params, intent)

    @classmethod
    def pin(
        cls, brief_id: StreamId, brief: dict[str, Any], editor: str, intent: Intent | None = None
    ) -> Append:
        """Pin the brief, if it still exists; ``brief`` (its state) is the result kept."""
        return cls("pinned", "brief_id", str(brief_id), editor, {"brief": str(brief_id)},
                   intent, brief)  # fmt: skip

    @classmethod
    def unpin(cls, pinned: str, editor: str, intent: Intent | None = None) -> Append:
        """Drop the pin, which names the brief ``pinned``."""
        return cls("unpinned", "brief_id", pinned, editor, {}, intent)

    @classmethod
    def update_feed(
        cls,
        feed: dict[str, Any],
        editor: str,
        *,
        meta_set: dict[str, str],
        meta_del: list[str],
        intent: Intent | None = None,
    ) -> Append:
        """The feed as it will be; its meta hash gets ``meta_set`` (``"$AT"``: the entry's time)
        and loses ``meta_del``."""
        params = {"meta_set": meta_set, "meta_del": meta_del}
        return cls("feed_updated", "feed", feed, editor, params, intent, feed)

    @classmethod
    def set_story(
        cls,
        kind: str,
        body: dict[str, Any],
        version: int,
        editor: str,
        intent: Intent | None = None,
        *,
        next_version: int | None = None,
    ) -> Append:
        """The feed's ``kind`` (``lead`` or ``summary``) becomes ``body``, if it is still at
        ``version`` (0: never set); ``body`` carries ``version + 1``, or ``next_version`` (an
        import restoring one as it was exported: it must be greater than ``version``)."""
        params: dict[str, Any] = {"field": kind, "version": version}
        if next_version is not None:
            params["next"] = next_version
        return cls(f"{kind}_updated", kind, body, editor, params, intent, body)

    @classmethod
    def clear_story(
        cls, kind: str, version: int, editor: str, intent: Intent | None = None
    ) -> Append:
        """The feed has no ``kind`` any more, if it is still at ``version``; the event carries
        the version the clear makes (``version + 1``), so versions count on across clears."""
        params = {"field": kind, "version": version}
        return cls(f"{kind}_cleared", "version", version + 1, editor, params, intent)

    def script_args(self) -> list[bytes | str]:
        """The append as append.lua reads it: header, markers, event head and tail, chunks."""
        header: dict[str, Any] = {"type": self.type, **self.params}
        if self.intent is not None:
            result, result_markers = template(self.result)
            header["idem"] = {
                "fp": self.intent.fingerprint,
                "ttl": TTL_SECONDS,
                "markers": result_markers,
                "chunks": [chunk.decode() for chunk in result],
            }
        chunks, markers = template(self.body)
        head = b'{"' + self.body_name.encode() + b'":'
        tail = b',"editor":' + orjson.dumps(self.editor) + (b',"notify":true' * self.notify) + b"}"
        return [orjson.dumps(header), markers, head, tail, str(len(chunks)), *chunks]


class Retry(LivefeedException):
    """A publish whose time fell on none of its days: try again with days around ``at_ms``."""

    def __init__(self, at_ms: int) -> None:
        super().__init__(f"the entry's time {at_ms} is on none of the days given")
        self.at_ms = at_ms


class Replayed(LivefeedException):
    """The intent was carried out before: ``result`` is what it answered then."""

    def __init__(self, result: Any) -> None:
        super().__init__("replayed")
        self.result = result


def refusal(message: str) -> Exception:
    """The livefeed error for a refusal the script returned (``LIVEFEED_<WHY> ...``); any other
    answer is a bug, a RuntimeError."""
    if message.startswith("LIVEFEED_NOTFOUND"):
        return NotFound("no such brief (it may have been retracted)", code="brief_not_found")
    if message.startswith("LIVEFEED_STALE"):
        current = int(message.split()[1])
        return PreconditionFailed(
            f"the brief has changed: it is at version {current} now", current_version=current
        )
    if message.startswith("LIVEFEED_ENDED"):
        return Conflict("coverage of this feed has ended; reopen it first", code="feed_ended")
    if message.startswith("LIVEFEED_CLOCK"):
        return Retry(int(message.split()[1]))
    if message.startswith("LIVEFEED_DRAFT_NOTFOUND"):
        return NotFound("no such draft", code="draft_not_found")
    if message.startswith("LIVEFEED_DRAFT_STATUS"):
        status = message.split()[1]
        return Conflict(f"the draft is {status}: this cannot be done to it now",
                        code="draft_not_editable")  # fmt: skip
    if message.startswith("LIVEFEED_DRAFT_EXISTS"):
        return Conflict("a draft with this id exists", code="draft_exists")
    if message.startswith("LIVEFEED_REPLAY "):
        return Replayed(orjson.loads(message.removeprefix("LIVEFEED_REPLAY ")))
    if message == "LIVEFEED_REUSED":
        return reused()
    return RuntimeError(f"the append script answered {message!r}, which no caller expects")


def template(payload: Any) -> tuple[list[bytes], str]:
    """Split the payload's JSON at the ID/AT placeholders: chunks, and one marker per gap."""
    data = orjson.dumps(payload)
    markers = "".join(_MARKS[m.group()] for m in _MARK_RE.finditer(data))
    return _MARK_RE.split(data), markers
