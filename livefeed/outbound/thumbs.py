"""Copies of embeds' images (thumbnails), kept so a card never makes a reader's browser ask a
third party: content-addressed files under a directory, served at ``/embed-thumbs/<name>``.

A minimal stand-in for the media storage of issue 15 (uploads, renditions, stripped metadata):
``ThumbnailStore`` is the seam where that storage takes over. The type is sniffed from the
bytes (JPEG, PNG, WebP or GIF only), never taken from the sender; the bytes are kept as they are.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Protocol

THUMBNAIL_PATH = "/embed-thumbs/"
NAME_RE = re.compile(r"[0-9a-f]{32}\.(jpg|png|webp|gif)")
MEDIA_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif"}


def sniff(data: bytes) -> str | None:
    """The file extension for an image's bytes, or None if they are none of the kinds kept."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    return None


class ThumbnailStore(Protocol):
    """Where a snapshot's image goes: ``put`` answers the path readers load it from."""

    def put(self, data: bytes) -> str | None: ...


class FileThumbnails:
    """Thumbnails as files named by their SHA-256, so the same image is stored once."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def put(self, data: bytes) -> str | None:
        """Store ``data`` if it is an image of a kind kept; its public path, or None."""
        ext = sniff(data)
        if ext is None:
            return None
        name = f"{hashlib.sha256(data).hexdigest()[:32]}.{ext}"
        path = self.directory / name
        if not path.exists():
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=self.directory, prefix=".part-")
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(temp, path)  # readers never see half a file
        return THUMBNAIL_PATH + name

    def path(self, name: str) -> Path | None:
        """The file for a public name, or None if the name is not one ``put`` gives."""
        if NAME_RE.fullmatch(name) is None:
            return None
        path = self.directory / name
        return path if path.is_file() else None
