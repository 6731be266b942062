"""A draft on the desk: a brief being written, reviewed or scheduled, and what its desk events
carry. Pure: no I/O.

A draft has every field a new brief has (``DraftFields`` is ``NewBrief`` with the headline
allowed empty while drafting; every limit still holds), plus where it stands in review.
Publishing validates it as a brief (``as_new_brief``), so it is refused with the same 422 codes.
Drafts live only on the editor-only desk (``Keys.drafts``, ``Keys.desk``): nothing public reads
them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Struct

from livefeed.errors import ValidationFailed
from livefeed.model.brief import BRIEF_FIELDS, NewBrief, _tags, _url, parse_new_brief
from livefeed.model.media import check_items
from livefeed.model.schema import (
    AUTHOR_MAX,
    HEADLINE_MAX,
    Instant,
    Version,
    _line,
    _meta,
    collapsed_line,
    decode,
)
from livefeed.model.text import check_text

NOTE_MAX = 500
"""An editor's note when sending a draft back to its writer, one line."""

DraftStatus = Literal["draft", "submitted", "scheduled", "published", "discarded"]
DRAFT_STATUSES: tuple[str, ...] = ("draft", "submitted", "scheduled", "published", "discarded")
LISTED = ("draft", "submitted", "scheduled", "published")
"""The statuses a draft list can ask for; discarded drafts stay only for the audit."""

DESK_EVENTS = (
    "draft_saved",
    "draft_submitted",
    "draft_sent_back",
    "draft_scheduled",
    "draft_unscheduled",
    "draft_published",
    "draft_discarded",
    "draft_schedule_failed",
)
"""Every desk event type, each appended to ``Keys.desk`` atomically with its change."""


class DeskBy(Struct, frozen=True):
    """Who made a desk change: their token name and role."""

    name: str
    role: str


class DraftFields(NewBrief, kw_only=True, forbid_unknown_fields=True):
    """What a writer sends to create or edit a draft: a new brief's fields, all optional
    (an empty headline is kept while drafting), each with the brief's own limit."""

    headline: Annotated[str, _line(HEADLINE_MAX, "plain text; may be empty in a draft",
                                   blank=True)] = ""  # fmt: skip

    def __post_init__(self) -> None:
        self.headline = collapsed_line(self.headline, "headline", HEADLINE_MAX, required=False)
        check_text(self.body, "body")
        self.author = collapsed_line(self.author or "", "author", AUTHOR_MAX, required=False)
        self.url = _url(self.url)
        self.tags = _tags(self.tags)
        self.media = check_items(self.media)


class Draft(DraftFields, kw_only=True):
    """A draft as stored, sent on the desk and answered by the API."""

    id: Annotated[str, _meta("the draft's id")]
    feed: str
    status: DraftStatus = "draft"
    owner: Annotated[str, _meta("the token name that created it")]
    version: Version = 1
    created_at: Instant
    updated_at: Instant
    submitted_at: Instant | None = None
    scheduled_for: Annotated[Instant | None, _meta("when it is to be published")] = None
    note: Annotated[str | None, _meta("an editor's note when sending it back")] = None
    brief: Annotated[str | None, _meta("the id of the brief it became")] = None
    scheduled_by: Annotated[DeskBy | None, _meta("the editor who scheduled it")] = None
    published_by: Annotated[str | None, _meta("the editor who published it")] = None


class PublishAt(Struct, forbid_unknown_fields=True):
    """A publish request's body: no ``at`` (or null) publishes now, a future ``at`` schedules."""

    at: Annotated[Instant | None, _meta("an ISO 8601 time with a zone; future: schedule")] = None


class SendBack(Struct, forbid_unknown_fields=True):
    """An editor sends a submitted draft back to its writer with a note."""

    note: Annotated[str, _line(NOTE_MAX, "what the writer should change")]

    def __post_init__(self) -> None:
        self.note = collapsed_line(self.note, "note", NOTE_MAX, required=True)


CONTENT_FIELDS = tuple(f for f in DraftFields.__struct_fields__ if f in BRIEF_FIELDS)


def content(draft: DraftFields) -> dict[str, Any]:
    """The brief fields of a draft, as JSON types."""
    data: dict[str, Any] = msgspec.to_builtins(draft)
    return {name: data[name] for name in CONTENT_FIELDS if name in data}


def parse_fields(payload: Any, base: dict[str, Any] | None = None) -> DraftFields:
    """A create (``base`` None) or an edit (``base``: the draft's fields now) validated;
    an edit sends only the fields it changes."""
    if base is not None and isinstance(payload, dict):
        unknown = payload.keys() - set(CONTENT_FIELDS) - {"version"}
        if not unknown:
            payload = {**base, **{k: v for k, v in payload.items() if k != "version"}}
    return decode(payload, DraftFields)


def as_new_brief(draft: Draft) -> NewBrief:
    """The draft validated as a brief to publish (422 with a brief's codes if it is not one);
    its body was sanitised when it was saved."""
    return parse_new_brief(content(draft), default_author=draft.owner, sanitize=False)


def parse_at(raw: str) -> int:
    """An ISO 8601 time with a zone as ms since the epoch; 422 ``invalid_time`` otherwise."""
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00", 1) if raw.endswith("Z") else raw)
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise ValidationFailed(
            "at must be an ISO 8601 time with a zone, e.g. 2026-12-01T09:00:00Z",
            code="invalid_time",
            field="at",
        )
    return int(when.astimezone(UTC).timestamp() * 1000)


_DRAFT = msgspec.json.Decoder(Draft)


def decode_draft(raw: bytes) -> Draft:
    return _DRAFT.decode(raw)


def encode_draft(draft: Draft) -> bytes:
    return msgspec.json.encode(draft)


def desk_payload(draft: Draft, by: DeskBy, at: str, **extra: Any) -> dict[str, Any]:
    """A desk event's ``d``: the draft as it now stands, who changed it, when, and any more
    (the brief it became, why a schedule failed)."""
    payload: dict[str, Any] = {"draft": msgspec.to_builtins(draft)}
    payload.update(by=msgspec.to_builtins(by), at=at, **extra)
    return payload
