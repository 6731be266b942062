"""A brief: its stored and wire form (Brief), and what editors send to publish or correct one.

Pure: no I/O. Fields, limits and error codes come from ``livefeed.model.schema``. A brief has
one JSON form, ``encode_brief``'s: stored in Redis, sent to readers and exported.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from livefeed.errors import BadRequest, ValidationFailed
from livefeed.model.embed import Embed, EmbedRef
from livefeed.model.media import Media, MediaRef, check_items
from livefeed.model.schema import (
    AUTHOR_MAX,
    CORRECTION_NOTE_MAX,
    EMBEDS_MAX,
    HEADLINE_MAX,
    TAG_MAX,
    URL_MAX,
    Author,
    Body,
    CorrectionNote,
    FullId,
    Headline,
    Instant,
    MediaItems,
    Tags,
    Url,
    Version,
    _meta,
    collapsed_line,
    decode,
    refusal,
)
from livefeed.model.text import _clean_line, check_text, clean_text, obeys_text_rule, sanitize_body

EmbedRefs = Annotated[tuple[EmbedRef, ...], Meta(
    max_length=EMBEDS_MAX,
    description=f"at most {EMBEDS_MAX} posts or articles to quote, each resolved once into a "
    "snapshot (provider, author, time, text, thumbnail) when the brief is published or corrected",
)]  # fmt: skip


class NewBrief(Struct, forbid_unknown_fields=True):
    """A brief to publish. Validated, it is a draft: the body still wants sanitising."""

    headline: Headline
    body: Body = ""
    author: Author | None = None
    url: Url | None = None
    tags: Tags | None = None
    key_event: bool = False
    embeds: EmbedRefs | None = None
    media: MediaItems[MediaRef] = ()
    gallery: Annotated[bool, _meta("show its images as a slideshow")] = False
    notify: Annotated[bool, _meta("a breaking alert: push it to every follower (web push)")] = False

    def __post_init__(self) -> None:
        self.headline = collapsed_line(self.headline, "headline", HEADLINE_MAX, required=True)
        check_text(self.body, "body")
        self.author = collapsed_line(self.author or "", "author", AUTHOR_MAX, required=False)
        self.url = _url(self.url)
        self.tags = _tags(self.tags)
        self.media = check_items(self.media)


BriefDraft = NewBrief
PUBLISH_ONLY = frozenset({"notify"})
"""What a publish says about sending it, not part of the brief (nor of a correction)."""
BRIEF_FIELDS = frozenset(NewBrief.__struct_fields__) - PUBLISH_ONLY


class BriefPatch(Struct, forbid_unknown_fields=True):
    """A correction: any of a brief's fields (at least one), and the ``version`` it edits."""

    json_schema_extra: ClassVar[dict[str, Any]] = {"minProperties": 1}

    headline: Headline | UnsetType = UNSET
    body: Body | UnsetType = UNSET
    author: Author | UnsetType | None = UNSET
    url: Url | UnsetType | None = UNSET
    tags: Tags | UnsetType | None = UNSET
    key_event: bool | UnsetType = UNSET
    embeds: EmbedRefs | UnsetType | None = UNSET
    media: MediaItems[MediaRef] | UnsetType = UNSET
    gallery: bool | UnsetType = UNSET
    correction_note: CorrectionNote | UnsetType | None = UNSET
    version: Annotated[Version | None, _meta("the version edited; the same as If-Match")] = None

    def __post_init__(self) -> None:
        if not isinstance(self.headline, UnsetType):
            self.headline = collapsed_line(self.headline, "headline", HEADLINE_MAX, required=True)
        if not isinstance(self.body, UnsetType):
            check_text(self.body, "body")
        if not isinstance(self.author, UnsetType):
            self.author = collapsed_line(self.author or "", "author", AUTHOR_MAX, required=False)
        if not isinstance(self.url, UnsetType):
            self.url = _url(self.url)
        if not isinstance(self.tags, UnsetType):
            self.tags = _tags(self.tags)
        if not isinstance(self.media, UnsetType):
            self.media = check_items(self.media)
        if not isinstance(self.correction_note, UnsetType):
            note = self.correction_note or ""
            self.correction_note = collapsed_line(
                note, "correction_note", CORRECTION_NOTE_MAX, required=False
            )

    def changes(self) -> dict[str, Any]:
        """The fields it sets, normalised: what ``msgspec.structs.replace`` takes for a Brief
        (but ``correction_note``, which ``newsroom.actions.correct`` makes a Correction of)."""
        out = {k: v for k, v in msgspec.structs.asdict(self).items() if v is not UNSET}
        out.pop("version")
        return out


class Correction(Struct, frozen=True):
    """A public correction: its note to readers and when it was made (its event's time)."""

    note: Annotated[str, Meta(min_length=1, max_length=CORRECTION_NOTE_MAX)]
    at: Instant


class Brief(Struct, frozen=True, kw_only=True):
    """A brief as stored and sent: a validated draft at a stream position, in its n-th version.

    Defaults are for briefs stored before a field existed; every brief sent has them all.
    """

    id: FullId
    published_at: Instant
    updated_at: Instant | None = None
    version: Version = 1
    headline: Annotated[str, Meta(min_length=1, max_length=HEADLINE_MAX)]
    body: Annotated[str, Meta(description="sanitised HTML")] = ""
    author: str = ""
    url: str | None = None
    tags: tuple[str, ...] = ()
    key_event: bool = False
    embeds: tuple[Embed, ...] = ()
    media: tuple[Media, ...] = ()
    gallery: bool = False
    correction: Annotated[Correction | None, _meta(
        "the latest public correction (one made with a correction_note); null if none. "
        "Every earlier one stays in the brief's history"
    )] = None  # fmt: skip


def parse_new_brief(payload: Any, default_author: str, *, sanitize: bool = True) -> NewBrief:
    """Validate a publish payload; raise ValidationFailed naming the field at fault.

    ``sanitize=False`` checks the body (a string, not too long) but leaves it as given; the
    caller then owes it a ``sanitize_body`` before the draft goes anywhere (imports sanitise as
    they write, while Redis works, once every line has been validated).
    """
    draft = _decode(payload, NewBrief)
    if not draft.author:
        draft.author = default_author
    if sanitize:
        draft.body = sanitize_body(draft.body)
    return draft


def parse_patch(payload: Any, *, sanitize: bool = True) -> tuple[dict[str, Any], int | None]:
    """Validate a correction: the changed fields (normalised) and the ``version`` it expects.

    BadRequest ``empty_patch`` when it changes nothing. ``sanitize=False``: as for
    ``parse_new_brief``, a ``body`` among the changes is checked but left to sanitise.
    """
    known = isinstance(payload, dict) and _PATCH_FIELDS.issuperset(payload)
    if known and "version" in payload:  # a bad version says so first, after unknown fields
        try:
            msgspec.convert(payload["version"], Version | None)
        except msgspec.ValidationError:
            raise refusal("type", "version", "version must be a positive whole number") from None
    patch = _decode(payload, BriefPatch)
    changes = patch.changes()
    if not changes.keys() - {"correction_note"}:  # a note describes a change; alone it is none
        raise BadRequest(
            "a correction must change at least one of: " + ", ".join(sorted(BRIEF_FIELDS)),
            code="empty_patch",
        )
    if sanitize and "body" in changes:
        changes["body"] = sanitize_body(changes["body"])
    return changes, patch.version


def new_brief(
    draft: NewBrief,
    brief_id: str,
    published_at: str,
    *,
    version: int = 1,
    updated_at: str | None = None,
    embeds: tuple[Embed, ...] = (),
) -> Brief:
    """``draft`` as a brief at ``brief_id``, quoting ``embeds`` (its ``embeds`` resolved)."""
    return Brief(
        id=brief_id,
        published_at=published_at,
        updated_at=updated_at,
        version=version,
        headline=draft.headline,
        body=draft.body,
        author=draft.author or "",
        url=draft.url,
        tags=tuple(draft.tags or ()),
        key_event=draft.key_event,
        embeds=embeds,
        media=resolved(draft.media),
        gallery=draft.gallery,
    )


def brief_dict(
    draft: NewBrief,
    brief_id: str,
    published_at: str,
    *,
    version: int = 1,
    updated_at: str | None = None,
    embeds: tuple[Embed, ...] = (),
) -> dict[str, Any]:
    """The stored and wire form of a brief, as a dict: ``new_brief``'s encoding."""
    brief = new_brief(
        draft, brief_id, published_at, version=version, updated_at=updated_at, embeds=embeds
    )
    value: dict[str, Any] = msgspec.to_builtins(brief)
    return value


_M = TypeVar("_M", bound=Struct)
_PATCH_FIELDS = frozenset(BriefPatch.__struct_fields__)
_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(Brief)


def encode_brief(brief: Brief) -> bytes:
    """A brief's one JSON form: stored in Redis, sent to readers, exported."""
    return _ENCODER.encode(brief)


def decode_brief(raw: bytes) -> Brief:
    """A stored brief, its text cleaned of what the text rule forbids (stored before it)."""
    return clean_brief(_DECODER.decode(raw))


def clean_brief(brief: Brief) -> Brief:
    """``brief`` with its text made to obey the text rule; briefs written under it unchanged."""
    texts = (brief.headline, brief.author, brief.url or "", brief.body, *brief.tags)
    if all(obeys_text_rule(t) for t in texts):
        return brief
    return msgspec.structs.replace(
        brief,
        headline=_clean_line(brief.headline, "\ufffd"),  # a headline still needs a title
        author=_clean_line(brief.author, ""),
        url=_clean_line(brief.url, "") or None if brief.url is not None else None,
        body=clean_text(brief.body),
        tags=tuple(c for t in brief.tags if (c := _clean_line(t, ""))),
    )


def resolved(items: tuple[MediaRef, ...]) -> tuple[Media, ...]:
    """A draft's media once the caller has joined each to its upload (``model.media.resolve``)."""
    if not all(isinstance(item, Media) for item in items):
        raise TypeError("a draft's media must be resolved against their uploads first")
    return tuple(item for item in items if isinstance(item, Media))


def _decode(payload: Any, model: type[_M]) -> _M:
    """``decode``, but tags are judged in order: a bad tag before a non-string one is named
    (msgspec checks every item's type before ``_tags`` sees the first)."""
    try:
        return decode(payload, model)
    except ValidationFailed as exc:
        tags = payload.get("tags") if exc.field == "tags" else None
        if exc.code == "invalid_type" and isinstance(tags, list):
            first = next((i for i, tag in enumerate(tags) if not isinstance(tag, str)), 0)
            _tags(tuple(tags[:first]))
        raise


def _url(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    url = check_text(value, "url").strip()
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        parts = urlsplit("")
    if len(url) > URL_MAX or parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValidationFailed(
            f"url must be an http(s) URL of at most {URL_MAX} characters",
            code="invalid_url",
            field="url",
        )
    return url


def _tags(value: tuple[str, ...] | None) -> tuple[str, ...]:
    """Tags in the order given, repeats dropped; linear in the list, which is capped first."""
    tags: dict[str, None] = {}  # insertion-ordered, so repeats are dropped in constant time
    for raw in value or ():
        tag = " ".join(check_text(raw, "tags").split())
        if not tag or len(tag) > TAG_MAX:
            raise ValidationFailed(
                f"each tag must be 1-{TAG_MAX} characters", code="invalid_tag", field="tags"
            )
        tags[tag] = None
    return tuple(tags)
