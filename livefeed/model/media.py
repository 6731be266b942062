"""Images and audio in briefs: what an upload became (MediaInfo) and what a brief carries of it.

Pure: no I/O. An editor names an upload in a brief with a ``MediaRef`` (id, alt, caption,
credit, role, transcript); ``resolve`` joins it to the upload's ``MediaInfo`` (looked up by the
caller) into a ``Media``, which is what the brief stores and sends: the reference plus the kind,
size and rendition widths, so a page, a frame, an export line or a feed entry can show the item
without asking Redis again. Every text is plain (the text rule, whitespace collapsed; pages
escape it). Rendition names are built here once: ``rendition_path``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from livefeed.errors import ValidationFailed
from livefeed.model.schema import (
    ALT_MAX,
    CAPTION_MAX,
    CREDIT_MAX,
    MEDIA_MAX,
    TRANSCRIPT_MAX,
    _line,
    _meta,
    collapsed_line,
)
from livefeed.model.text import TEXT_PATTERN, check_text

MEDIA_ID_LENGTH = 32
"""Hex digits of a media id: the first 128 bits of the SHA-256 of the uploaded bytes."""
MEDIA_ID_PATTERN = rf"^[0-9a-f]{{{MEDIA_ID_LENGTH}}}$"
MEDIA_ID_RE = re.compile(rf"[0-9a-f]{{{MEDIA_ID_LENGTH}}}")
WIDTHS = (320, 640, 1024, 1600)
"""Rendition widths of an image; one narrower than 320 gets only its own width."""
CROPS = {"16x9": (16, 9), "4x3": (4, 3), "1x1": (1, 1)}
"""Crops of every image for search engines' rich results (Google asks for all three)."""
CROP_WIDTH = 1200
MEDIA_SIZES = "(min-width: 45rem) 43rem, 100vw"
"""``sizes`` of a brief's images: the reading column (feed.css --column) less its padding."""
IMAGE_FORMATS = ("jpeg", "png", "webp", "heic")
AUDIO_FORMATS = ("mp3", "m4a", "ogg")
AUDIO_TYPES = {"mp3": "audio/mpeg", "m4a": "audio/mp4", "ogg": "audio/ogg"}
RENDITION_TYPES = {"webp": "image/webp", "jpg": "image/jpeg", **AUDIO_TYPES}
_RENDITION_RE = re.compile(r"(?:(\d{1,5})\.(webp|jpg)|(16x9|4x3|1x1)\.jpg|audio\.(mp3|m4a|ogg))")

MediaId = Annotated[str, _meta("an uploaded file's id (POST /api/media)", pattern=MEDIA_ID_PATTERN)]
Kind = Literal["image", "audio"]


class Rendition(Struct, frozen=True):
    """One stored file of an upload, at ``url``."""

    url: str
    type: str
    width: int
    height: int
    bytes: int


class MediaInfo(Struct, frozen=True, kw_only=True):
    """An upload as stored (in Redis) and answered by POST /api/media: its renditions."""

    id: MediaId
    kind: Kind
    format: str
    width: int = 0
    height: int = 0
    bytes: int
    renditions: tuple[Rendition, ...] = ()
    widths: tuple[int, ...] = ()


class MediaRef(Struct, forbid_unknown_fields=True, kw_only=True):
    """An upload as an editor places it in a brief."""

    id: MediaId
    alt: Annotated[
        str, _line(ALT_MAX, "what the image shows, for who cannot see it", blank=True)
    ] = ""
    decorative: Annotated[bool, Meta(description="true: no alt text wanted")] = False
    caption: Annotated[str, _line(CAPTION_MAX, "shown under the item", blank=True)] = ""
    credit: Annotated[str, _line(CREDIT_MAX, "who made it, e.g. Photo: AP", blank=True)] = ""
    role: Literal["inline", "lead"] = "inline"
    transcript: Annotated[str, Meta(
        extra_json_schema={"pattern": TEXT_PATTERN, "maxLength": TRANSCRIPT_MAX},
        description="audio only: what is said, plain text",
    )] = ""  # fmt: skip

    def __post_init__(self) -> None:
        if MEDIA_ID_RE.fullmatch(self.id) is None:
            raise ValidationFailed(
                f"media id must be {MEDIA_ID_LENGTH} hex digits from POST /api/media",
                code="unknown_media", field="media",
            )  # fmt: skip
        if len(self.transcript) > TRANSCRIPT_MAX:
            raise ValidationFailed(
                f"transcript must be at most {TRANSCRIPT_MAX} characters",
                code="too_long", field="transcript",
            )  # fmt: skip
        self.alt = collapsed_line(self.alt, "alt", ALT_MAX, required=False)
        self.caption = collapsed_line(self.caption, "caption", CAPTION_MAX, required=False)
        self.credit = collapsed_line(self.credit, "credit", CREDIT_MAX, required=False)
        self.transcript = check_text(self.transcript, "transcript").strip()


class Media(MediaRef, kw_only=True):
    """An item as a brief stores and sends it: the editor's reference and the upload's size."""

    kind: Kind = "image"
    format: str = "jpeg"
    width: int = 0
    height: int = 0
    widths: tuple[int, ...] = ()


def resolve(ref: MediaRef, info: MediaInfo) -> Media:
    """``ref`` with what the brief needs of its upload; ValidationFailed ``missing_alt`` for an
    image with no alt text that is not marked decorative (a caption is no alt text)."""
    if isinstance(ref, Media):
        return ref
    if info.kind == "image" and not ref.alt and not ref.decorative:
        raise ValidationFailed(
            f'media {ref.id}: an image needs alt text, or "decorative": true',
            code="missing_alt",
            field="media",
        )
    return Media(
        id=ref.id, alt=ref.alt, decorative=ref.decorative, caption=ref.caption,
        credit=ref.credit, role=ref.role, transcript=ref.transcript if info.kind == "audio" else "",
        kind=info.kind, format=info.format, width=info.width, height=info.height,
        widths=info.widths,
    )  # fmt: skip


def rendition_path(media_id: str, name: str) -> str:
    """The URL path of one of an upload's files: ``/media/<id>/<name>``."""
    return f"/media/{media_id}/{name}"


def parse_rendition(name: str) -> str | None:
    """The content type of a rendition file name (``640.webp``, ``16x9.jpg``, ``audio.mp3``);
    None for a name no upload has."""
    if _RENDITION_RE.fullmatch(name) is None:
        return None
    return RENDITION_TYPES[name.rsplit(".", 1)[1]]


def crop_size(width: int, height: int, label: str) -> tuple[int, int]:
    """The size of an image's ``label`` crop (CROPS): the largest box of that shape inside it,
    at most CROP_WIDTH wide."""
    rw, rh = CROPS[label]
    w = max(1, min(width, height * rw // rh, CROP_WIDTH))
    return w, max(1, w * rh // rw)


def largest(item: Media, ext: str = "jpg") -> str:
    """The path of an image's largest rendition: what "open full size" and feeds link to."""
    return rendition_path(item.id, f"{item.widths[-1]}.{ext}")


def image_widths(width: int) -> tuple[int, ...]:
    """The widths an image of ``width`` pixels is stored at: the standard ones below it, and
    its own when it is narrower than the largest."""
    below = tuple(w for w in WIDTHS[:-1] if w < width)
    return (*below, min(width, WIDTHS[-1]))


def srcset(item: Media, ext: str) -> str:
    """``srcset`` of an image's ``ext`` ("webp" or "jpg") renditions."""
    return ", ".join(f"{rendition_path(item.id, f'{w}.{ext}')} {w}w" for w in item.widths)


def lead_image(items: tuple[Media, ...]) -> Media | None:
    """The image a brief is shown by (the first with role lead, else the first image)."""
    images = [m for m in items if m.kind == "image"]
    return next((m for m in images if m.role == "lead"), images[0] if images else None)


def exported_media(value: Any) -> tuple[Media, ...]:
    """A brief's ``media`` as an export line has it (each item with its upload's size),
    checked as a new brief's would be; ValidationFailed otherwise."""
    if value is None or value == ():
        return ()
    try:
        items = msgspec.convert(value, tuple[Media, ...])
    except msgspec.ValidationError as exc:
        raise ValidationFailed(f"media: {exc}", code="invalid_field", field="media") from None
    if len(items) > MEDIA_MAX:
        raise ValidationFailed(f"at most {MEDIA_MAX} media", code="too_many_media", field="media")
    for item in items:
        if item.kind == "image" and not item.alt and not item.decorative:
            raise ValidationFailed(
                f"media {item.id}: an image needs alt text", code="missing_alt", field="media"
            )
    check_items(items)
    return items


def check_items(items: tuple[MediaRef, ...]) -> tuple[MediaRef, ...]:
    """Items in order, each upload once (a repeat is refused: it is surely a mistake)."""
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise ValidationFailed(
                f"media {item.id} appears twice", code="duplicate_media", field="media"
            )
        seen.add(item.id)
    if sum(1 for m in items if m.role == "lead") > 1:
        raise ValidationFailed(
            "at most one item may be the lead", code="invalid_field", field="media"
        )
    return items
