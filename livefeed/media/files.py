"""Content-addressed media files: ``<root>/<id[:2]>/<id>/<name>``, written once, never changed.

An upload's id is a hash of its bytes, and its renditions are made from those bytes alone, so
a file's name names its content: it can be cached for ever, and two nodes writing the same
upload write the same files. Every upload's files appear at once (written under a temporary
name, then renamed into place), so a reader never finds half of them. Blocking I/O: callers
on the event loop run ``write`` in a thread.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Mapping
from pathlib import Path

from livefeed.model.media import MEDIA_ID_RE


class MediaFiles:
    """The files under one media directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, media_id: str, name: str) -> Path:
        if MEDIA_ID_RE.fullmatch(media_id) is None or "/" in name or name.startswith("."):
            raise ValueError(f"not a media file: {media_id}/{name}")
        return self.root / media_id[:2] / media_id / name

    def exists(self, media_id: str) -> bool:
        return self.path(media_id, "x").parent.is_dir()

    def names(self, media_id: str) -> list[str]:
        """The file names an upload has; none if it is not here."""
        folder = self.path(media_id, "x").parent
        return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []

    def write(self, media_id: str, files: Mapping[str, bytes]) -> None:
        """Put an upload's files in place, all at once; an upload already here is kept."""
        final = self.path(media_id, "x").parent
        if final.is_dir():
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        temporary = final.parent / f".{media_id}.{secrets.token_hex(4)}"
        temporary.mkdir()
        try:
            for name, data in files.items():
                self.path(media_id, name)  # the name is one an upload may have
                (temporary / name).write_bytes(data)
            try:
                os.rename(temporary, final)
            except OSError:
                if not final.is_dir():  # not a twin upload that got there first
                    raise
        finally:
            shutil.rmtree(temporary, ignore_errors=True)
