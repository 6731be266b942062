"""Uploads' metadata in Redis: ``Keys.media(id)`` -> the MediaInfo as JSON.

The files themselves are on disk (``livefeed.media.files``); this is what says an upload
exists. Written only after its files are in place, so a media id found here can be served.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

import msgspec
from redis.asyncio import Redis

from livefeed.errors import ValidationFailed
from livefeed.model.media import Media, MediaInfo, MediaRef, resolve
from livefeed.storage.keys import Keys

_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(MediaInfo)


class MediaIndex:
    """The uploads of one deployment (one key prefix)."""

    def __init__(self, redis: Redis, keys: Keys, write: Callable[..., Awaitable[object]]) -> None:
        self.redis = redis
        self.keys = keys
        self.write = write
        """Runs a write command and returns once the replicas have it (``Store.command``)."""

    async def put(self, info: MediaInfo) -> None:
        """Record an upload; the same bytes uploaded again write the same record. Returns once
        the replicas have it, so an upload's 201 survives a failover as a brief's does."""
        key = self.keys.media(info.id)
        await self.write(key, "SET", key, _ENCODER.encode(info))

    async def get_many(self, ids: Iterable[str]) -> dict[str, MediaInfo]:
        """The uploads among ``ids`` that exist, by id."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:  # one GET each: on a
            for i in wanted:  # cluster the ids' keys are in different slots, as MGET may not be
                pipe.get(self.keys.media(i))
            raws = await pipe.execute()
        return {i: _DECODER.decode(raw) for i, raw in zip(wanted, raws, strict=True) if raw}

    async def resolve(self, items: tuple[MediaRef, ...]) -> tuple[Media, ...]:
        """``items`` joined to their uploads; 422 ``unknown_media`` naming one never uploaded
        (or ``missing_alt``: ``model.media.resolve``)."""
        found = await self.get_many(item.id for item in items if not isinstance(item, Media))
        out: list[Media] = []
        for item in items:
            if isinstance(item, Media):
                out.append(item)
                continue
            info = found.get(item.id)
            if info is None:
                raise ValidationFailed(
                    f"media {item.id} was never uploaded (POST /api/media first)",
                    code="unknown_media",
                    field="media",
                )
            out.append(resolve(item, info))
        return tuple(out)
