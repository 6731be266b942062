"""An upload checked and turned into the files readers get. Pure CPU work on bytes (no I/O):
callers on the event loop run ``process`` in worker processes (``worker_pool``).

The type comes from the bytes, never from a name or a header: JPEG, PNG, WebP (and HEIC when
pillow-heif is installed); audio MP3, M4A and OGG. An image is decoded whole (a truncated or
corrupt one is refused, 422 ``corrupt_media``) after its size is read from the header alone,
so a decompression bomb is refused before it takes any memory (422 ``too_many_pixels``).

Every rendition is made from pixels with its orientation applied and no metadata at all: no
EXIF (GPS, device, time), XMP, IPTC or colour profile reaches a reader. Widths come from
``model.media.image_widths``; each is stored as WebP and as a JPEG fallback, and three crops
(16:9, 4:3, 1:1) as JPEG for search engines. AVIF is not made: at Pillow 13's speed 8 it took
2-5 times WebP's time (434 against 229 ms at 1600 pixels) for files a quarter smaller. An MP3's
ID3 tags are cut off; M4A and OGG files are kept as sent.
"""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from PIL import Image, ImageOps

from livefeed.errors import LivefeedError, UnsupportedMediaType, ValidationFailed
from livefeed.model.media import (
    AUDIO_TYPES,
    CROP_WIDTH,
    CROPS,
    MEDIA_ID_LENGTH,
    RENDITION_TYPES,
    WIDTHS,
    MediaInfo,
    Rendition,
    crop_size,
    image_widths,
    rendition_path,
)

try:  # HEIC, as phones take photos, if the optional pillow-heif is installed
    from pillow_heif import register_heif_opener

    register_heif_opener()
    HEIC = True
except ImportError:  # pragma: no cover - depends on the installation
    HEIC = False

_PILLOW_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "heic": "HEIF"}
_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
_M4A_BRANDS = {b"M4A ", b"M4B ", b"mp42", b"isom", b"iso2", b"dash"}
_ACCEPTED = "JPEG, PNG, WebP" + (", HEIC" if HEIC else "") + ", MP3, M4A or OGG"


def media_id(data: bytes) -> str:
    """An upload's id: the start of the SHA-256 of its bytes, so the same file has one id."""
    return hashlib.sha256(data).hexdigest()[:MEDIA_ID_LENGTH]


def sniff(data: bytes) -> str | None:
    """The format the bytes are in (``model.media`` IMAGE_FORMATS or AUDIO_FORMATS), or None."""
    head = data[:16]
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[4:8] == b"ftyp":
        if head[8:12] in _HEIC_BRANDS:
            return "heic" if HEIC else None
        if head[8:12] in _M4A_BRANDS:
            return "m4a"
    if head.startswith(b"OggS"):
        return "ogg"
    body = _without_id3(data)
    if len(body) >= 4 and body[0] == 0xFF and body[1] & 0xE0 == 0xE0 and body[1] & 0x06:
        return "mp3"  # an MPEG audio frame header: sync bits, then a layer that is not 0
    return None


def process(data: bytes, max_pixels: int) -> tuple[MediaInfo, dict[str, bytes]]:
    """Check an upload and make its files; UnsupportedMediaType or ValidationFailed if it
    cannot be one. Returns what to record and the files to store, by name."""
    kind = sniff(data)
    if kind is None:
        raise UnsupportedMediaType(
            f"send a {_ACCEPTED} file (the type is read from the bytes)",
            code="unsupported_media_type",
        )
    identity = media_id(data)
    if kind in _PILLOW_FORMATS:
        return _image(identity, kind, data, max_pixels)
    stored = _without_id3(data) if kind == "mp3" else data
    name = f"audio.{kind}"
    rendition = Rendition(rendition_path(identity, name), AUDIO_TYPES[kind], 0, 0, len(stored))
    info = MediaInfo(
        id=identity, kind="audio", format=kind, bytes=len(data), renditions=(rendition,)
    )
    return info, {name: stored}


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """Processes for ``process``: resizing holds the GIL often enough that, in a thread, it
    held readers' sockets up (healthz p99 160 ms during uploads, 34 ms with this pool). Spawned,
    not forked: a fork of a process with an event loop, threads and sockets is not safe."""
    return ProcessPoolExecutor(max(1, workers), mp_context=multiprocessing.get_context("spawn"))


@dataclass(frozen=True, slots=True)
class Refusal:
    """An upload ``process`` refused, as a worker process sends it back (an exception would
    lose its code crossing the process boundary: it is pickled with its message only)."""

    kind: type[LivefeedError]
    message: str
    code: str

    def error(self) -> LivefeedError:
        return self.kind(self.message, code=self.code)


def process_or_refusal(
    data: bytes, max_pixels: int
) -> tuple[MediaInfo, dict[str, bytes]] | Refusal:
    """``process`` for a worker process: a refusal is returned, not raised."""
    try:
        return process(data, max_pixels)
    except (UnsupportedMediaType, ValidationFailed) as exc:
        return Refusal(type(exc), exc.message, exc.code)


def _image(
    identity: str, kind: str, data: bytes, max_pixels: int
) -> tuple[MediaInfo, dict[str, bytes]]:
    too_many = ValidationFailed(
        f"the image has more than the {max_pixels:,} pixels accepted", code="too_many_pixels"
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(io.BytesIO(data), formats=[_PILLOW_FORMATS[kind]])
            if image.width * image.height > max_pixels:
                raise too_many
            width, height = image.size
            if image.getexif().get(_ORIENTATION, 1) in _TURNED:
                width, height = height, width
            # A JPEG decodes at 1/2, 1/4 or 1/8 scale directly when that is still large enough
            # for every rendition: four to sixty-four times less memory and time.
            scale = min(1.0, _LARGEST / min(width, height))
            image.draft("RGB", (round(image.width * scale), round(image.height * scale)))
            image.load()
            ImageOps.exif_transpose(image, in_place=True)  # no second copy of the pixels
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise too_many from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise ValidationFailed(
            "the file is corrupt or truncated: it could not be read as an image",
            code="corrupt_media",
        ) from None
    pixels = _working_copy(_pixels_only(image))
    files: dict[str, bytes] = {}
    renditions: list[Rendition] = []
    widths = image_widths(width)
    for w in widths:
        size = (w, max(1, round(height * w / width)))
        resized = pixels if size == pixels.size else pixels.resize(size, Image.Resampling.LANCZOS)
        for ext, encoded in (("webp", _webp(resized)), ("jpg", _jpeg(resized))):
            name = f"{w}.{ext}"
            files[name] = encoded
            renditions.append(
                Rendition(rendition_path(identity, name), RENDITION_TYPES[ext], *size, len(encoded))
            )
    for label in CROPS:
        crop = ImageOps.fit(pixels, crop_size(width, height, label), Image.Resampling.LANCZOS)
        name = f"{label}.jpg"
        files[name] = _jpeg(crop)
        renditions.append(
            Rendition(rendition_path(identity, name), "image/jpeg", *crop.size, len(files[name]))
        )
    info = MediaInfo(
        id=identity, kind="image", format=kind, width=width, height=height, bytes=len(data),
        renditions=tuple(renditions), widths=widths,
    )  # fmt: skip
    return info, files


_ORIENTATION = 0x0112
_TURNED = {5, 6, 7, 8}
"""EXIF orientations that swap width and height."""
_LARGEST = max(WIDTHS[-1], CROP_WIDTH)
"""Pixels a working copy needs on its shorter side for every rendition and crop."""


def _working_copy(pixels: Image.Image) -> Image.Image:
    """The image scaled down once (if it is larger) to what the renditions and crops need: at
    least the widest rendition across and the widest crop down, so each rendition is resized
    from it rather than from, say, 12 megapixels (a third of the time)."""
    scale = max(WIDTHS[-1] / pixels.width, CROP_WIDTH / pixels.height)
    if scale >= 1:
        return pixels
    size = (round(pixels.width * scale), round(pixels.height * scale))
    return pixels.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)


def _pixels_only(image: Image.Image) -> Image.Image:
    """The image's pixels in RGB (RGBA if it has transparency), with nothing else of the file:
    its ``info`` (EXIF, XMP, IPTC, ICC profile, comments) emptied, so none of it can follow the
    pixels into a rendition (each is saved with no metadata passed, and resized copies inherit
    the empty ``info``). Converted only when it must be: a 50-megapixel photo is 150 MB a copy."""
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    target = "RGBA" if has_alpha else "RGB"
    clean = image if image.mode == target else image.convert(target)
    clean.info = {}
    if hasattr(clean, "_exif"):
        clean._exif = None  # the parsed EXIF Pillow keeps beside info
    return clean


def _webp(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "WEBP", quality=80, method=4)
    return out.getvalue()


def _jpeg(image: Image.Image) -> bytes:
    """A JPEG fallback; transparency is laid on white (JPEG has none)."""
    if image.mode == "RGBA":
        flat = Image.new("RGB", image.size, (255, 255, 255))
        flat.paste(image, mask=image.getchannel("A"))
        image = flat
    out = io.BytesIO()
    image.save(out, "JPEG", quality=82, optimize=True, progressive=True)
    return out.getvalue()


def _without_id3(data: bytes) -> bytes:
    """An MP3 without its ID3v2 tag at the start and ID3v1 tag at the end (they can carry
    names, places and pictures); other bytes unchanged."""
    if data[:3] == b"ID3" and len(data) >= 10:
        size = (
            (data[6] & 0x7F) << 21
            | (data[7] & 0x7F) << 14
            | (data[8] & 0x7F) << 7
            | (data[9] & 0x7F)
        )
        footer = 10 if data[5] & 0x10 else 0
        data = data[10 + size + footer :]
    if len(data) >= 128 and data[-128:-125] == b"TAG":
        data = data[:-128]
    return data
