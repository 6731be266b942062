"""Copies of embeds' images (thumbnails), kept so a card never makes a reader's browser ask a
third party: each goes through the media pipeline as an upload does (``livefeed.media``: type
sniffed from the bytes, pixel cap, orientation applied, every bit of metadata stripped,
renditions made) into the one media store, and the snapshot keeps the path of a small
rendition, which ``GET /media/{id}/{name}`` serves immutable.

An image the pipeline refuses (not JPEG, PNG, WebP or HEIC, too many pixels, corrupt) leaves
the card without a thumbnail, as a fetch that failed does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

from livefeed.media.files import MediaFiles
from livefeed.media.images import Refusal, media_id, sniff
from livefeed.model.embed import thumbnail_path
from livefeed.model.media import IMAGE_FORMATS, MediaInfo
from livefeed.storage.media import MediaIndex

Process = Callable[[bytes], Awaitable[tuple[MediaInfo, dict[str, bytes]] | Refusal]]
"""``media.images.process_or_refusal`` as the caller runs it (the app: in its worker pool)."""


class ThumbnailStore(Protocol):
    """Where a snapshot's image goes: ``put`` answers the path readers load it from."""

    async def put(self, data: bytes) -> str | None: ...


class MediaThumbnails:
    """Thumbnails as media uploads: recorded in ``index``, files in ``files``."""

    def __init__(self, process: Process, files: MediaFiles, index: MediaIndex) -> None:
        self.process = process
        self.files = files
        self.index = index

    async def put(self, data: bytes) -> str | None:
        """Store ``data`` as media if the pipeline takes it as an image; its path, or None."""
        if sniff(data) not in IMAGE_FORMATS:
            return None
        identity = media_id(data)
        info = (await self.index.get_many([identity])).get(identity)
        if info is None or not self.files.exists(identity):
            outcome = await self.process(data)
            if isinstance(outcome, Refusal):
                return None
            info, made = outcome
            await asyncio.to_thread(self.files.write, info.id, made)
            await self.index.put(info)
        return thumbnail_path(info)
