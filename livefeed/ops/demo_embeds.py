"""The demo feed's embeds: a Telegram-like post and a related-article card from pages the demo
serves itself (web/demo/), read by livefeed's own parsers, so the demo works offline.

The thumbnail is drawn here (a storm-grey sky over a darker sea, as a PNG written with zlib)
and goes into media storage like any fetched image (``outbound.thumbs``).
"""

from __future__ import annotations

import asyncio
import struct
import zlib

from livefeed.config import Settings
from livefeed.media.files import MediaFiles
from livefeed.media.images import Refusal, process_or_refusal
from livefeed.model.embed import Embed, Provider
from livefeed.model.ids import iso_ms, now_ms
from livefeed.model.media import MediaInfo
from livefeed.outbound.parse import Card, article_card, telegram_card
from livefeed.outbound.thumbs import MediaThumbnails
from livefeed.storage.store import Store

QUOTING = (
    {"headline": "Coastguard: two people lifted from a car in floodwater near Oxley Marsh",
     "body": "The coastguard posted this a few minutes ago.", "author": "Ayo Feld"},
    {"headline": "Analysis: why the harbour wall at Castell Bay held",
     "body": "The Courier looked at last spring's works.", "author": "Mara Quint"},
)  # fmt: skip
"""The briefs that quote the embeds, in the same order."""
TELEGRAM_PAGE = "demo/telegram-post.html"
ARTICLE_PAGE = "demo/article.html"


def demo_base(settings: Settings) -> str:
    """Where readers reach this server: the public URL, else the address it listens on."""
    return settings.public_url.rstrip("/") or f"http://{settings.host}:{settings.port}"


async def demo_embeds(store: Store, settings: Settings) -> tuple[Embed, Embed]:
    """The Telegram-like post (its "Show the post" frame is the demo's own page) and the
    article card (its thumbnail in media storage, unless that cannot be written), as snapshots
    taken now."""
    base, web = demo_base(settings), settings.web_dir

    async def process(data: bytes) -> tuple[MediaInfo, dict[str, bytes]] | Refusal:
        return await asyncio.to_thread(process_or_refusal, data, settings.max_media_pixels)

    thumbs = MediaThumbnails(process, MediaFiles(settings.media_root()), store.media)
    try:
        thumbnail = await thumbs.put(seascape())
    except OSError:
        thumbnail = None
    now = iso_ms(now_ms())
    page = f"{base}/static/{TELEGRAM_PAGE}"
    post = telegram_card(page, (web / TELEGRAM_PAGE).read_text(), "halvard_coastguard")
    article_url = f"{base}/static/{ARTICLE_PAGE}"
    article = article_card(article_url, (web / ARTICLE_PAGE).read_text())
    return (
        _embed("telegram", page, post, now, frame=page),
        _embed("link", article_url, article, now, thumbnail=thumbnail),
    )


def _embed(provider: Provider, url: str, card: Card, now: str, *, frame: str | None = None,
           thumbnail: str | None = None) -> Embed:  # fmt: skip
    return Embed(
        url=url, provider=provider, canonical_url=url, title=card.title,
        text=card.text, author=card.author, handle=card.handle, outlet=card.outlet,
        published_at=card.published_at, thumbnail=thumbnail, frame_url=frame, resolved_at=now,
    )  # fmt: skip


def seascape(width: int = 480, height: int = 270) -> bytes:
    """A 16:9 PNG: a pale storm sky fading into a dark sea, with a white line of surf."""
    rows = []
    horizon = height * 3 // 5
    for y in range(height):
        if y < horizon:
            shade = 200 - 70 * y // horizon
            pixel = bytes((shade - 10, shade, shade + 12))
        elif y < horizon + 6:
            pixel = b"\xf0\xf4\xf6"
        else:
            depth = (y - horizon) * 60 // (height - horizon)
            pixel = bytes((20, 60 - depth // 2, 90 - depth))
        rows.append(b"\x00" + pixel * width)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(b"".join(rows), 9)) + _chunk(b"IEND", b""))  # fmt: skip


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
