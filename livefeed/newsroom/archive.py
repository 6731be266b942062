"""A feed's history with its media, as one tar archive another installation can import.

``export --with-media`` writes ``briefs.jsonl`` (the same bytes a plain export writes) and, for
every upload those briefs name, ``media/<id>/info.json`` (its record) and ``media/<id>/<name>``
(its files). ``import`` of such an archive puts the files and records in place first (they are
named by their content, so one already there is left as it is), then imports the lines as a
plain import does: all or nothing for the briefs; restored media nobody names are harmless.
"""

from __future__ import annotations

import asyncio
import io
import tarfile
from collections.abc import Iterable
from typing import BinaryIO

import msgspec
import orjson

from livefeed.errors import LivefeedException
from livefeed.media.files import MediaFiles
from livefeed.model.media import MEDIA_ID_RE, MediaInfo, parse_rendition
from livefeed.storage.store import Store

BRIEFS = "briefs.jsonl"
_INFO = "info.json"
_ENCODER = msgspec.json.Encoder()


class BadArchive(LivefeedException, ValueError):
    """An archive that is not one ``export --with-media`` wrote."""


def is_archive(head: bytes) -> bool:
    """Whether a file starting with ``head`` (at least 262 bytes of it) is a tar archive."""
    return head[257:262] == b"ustar"


def media_ids(lines: Iterable[bytes]) -> list[str]:
    """The uploads export lines name (a brief's media and embeds' thumbnails, the lead's
    pictures), in first-named order."""
    ids: dict[str, None] = {}
    for line in lines:
        data = orjson.loads(line)
        holder = data["lead"] if isinstance(data.get("lead"), dict) else data
        for item in holder.get("media") or ():
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                ids[item["id"]] = None
        for embed in holder.get("embeds") or ():  # a snapshot's thumbnail is media too
            thumbnail = embed.get("thumbnail") if isinstance(embed, dict) else None
            if isinstance(thumbnail, str) and thumbnail.startswith("/media/"):
                ids[thumbnail.split("/")[2]] = None
    return list(ids)


async def write_archive(out: BinaryIO, lines: list[bytes], store: Store, files: MediaFiles) -> int:
    """Write the archive of ``lines`` and their media to ``out``; how many uploads it holds.
    Ids that name no upload here are left out; an upload whose files are not in ``files``
    (another node's volume?) is an OSError."""
    infos = await store.media.get_many(i for i in media_ids(lines) if MEDIA_ID_RE.fullmatch(i))
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.USTAR_FORMAT) as tar:
        _add(tar, BRIEFS, b"".join(lines))
        for media_id, info in infos.items():
            names = files.names(media_id)
            if not names:
                raise OSError(f"media {media_id} is not in {files.root}")
            _add(tar, f"media/{media_id}/{_INFO}", _ENCODER.encode(info))
            for name in names:
                data = await asyncio.to_thread(files.path(media_id, name).read_bytes)
                _add(tar, f"media/{media_id}/{name}", data)
    return len(infos)


async def read_archive(source: BinaryIO, store: Store, files: MediaFiles) -> tuple[bytes, int]:
    """Restore an archive's media; its ``briefs.jsonl`` and how many uploads it held."""
    briefs: bytes | None = None
    found: dict[str, dict[str, bytes]] = {}
    with tarfile.open(fileobj=source, mode="r|") as tar:
        for member in tar:
            if not member.isfile():
                continue
            data = _read(tar, member)
            if member.name == BRIEFS:
                briefs = data
                continue
            parts = member.name.split("/")
            if len(parts) != 3 or parts[0] != "media" or not MEDIA_ID_RE.fullmatch(parts[1]):
                raise BadArchive(f"unexpected {member.name!r} in the archive")
            if parts[2] != _INFO and parse_rendition(parts[2]) is None:
                raise BadArchive(f"unexpected {member.name!r} in the archive")
            found.setdefault(parts[1], {})[parts[2]] = data
    if briefs is None:
        raise BadArchive(f"the archive has no {BRIEFS}")
    for media_id, named in found.items():
        try:
            info = msgspec.json.decode(named.pop(_INFO), type=MediaInfo)
        except (KeyError, msgspec.ValidationError, msgspec.DecodeError):
            raise BadArchive(f"media {media_id} has no valid {_INFO}") from None
        if info.id != media_id:
            raise BadArchive(f"media/{media_id}/{_INFO} names {info.id}")
        await asyncio.to_thread(files.write, media_id, named)
        await store.media.put(info)
    return briefs, len(found)


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    member = tarfile.TarInfo(name)
    member.size = len(data)
    member.mode = 0o644
    tar.addfile(member, io.BytesIO(data))


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    extracted = tar.extractfile(member)
    if extracted is None:
        raise BadArchive(f"cannot read {member.name!r}")
    return extracted.read()
