"""The demo feed's pictures: storm scenes drawn with Pillow, uploaded as an editor's would be.

Drawn, not shipped: the demo works offline and carries no one's photograph. Each scene is a
sky, a sea and a lighthouse in the rain, varied by its number; ``upload_scenes`` puts them
through the same checks and renditions as POST /api/media and records them.
"""

from __future__ import annotations

import asyncio
import io
import random

from PIL import Image, ImageDraw

from livefeed.config import Settings
from livefeed.media.files import MediaFiles
from livefeed.media.images import process
from livefeed.model.media import MediaInfo
from livefeed.storage.store import Store

SCENES = (
    ("The lighthouse at Porto Sal as the storm front arrives", "Waves against the harbour wall"),
    ("A dark sky over the bay at dawn", "The bay before the first gusts"),
    ("Rain sweeping across the coast road", "The coast road, closed since 06:00"),
    ("Grey sea and a lit lighthouse at dusk", "The light stayed on all night"),
)
"""(alt text, caption) of each scene, in order."""
CREDIT = "Illustration: livefeed demo"


def draw_scene(number: int, width: int = 960, height: int = 640) -> bytes:
    """Scene ``number`` as a JPEG."""
    rng = random.Random(number)
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    top = (40 + 20 * number, 50 + 10 * number, 70 + 15 * number)
    horizon = int(height * rng.uniform(0.55, 0.65))
    for y in range(horizon):  # the sky, darker at the top
        t = y / horizon
        draw.line([(0, y), (width, y)], fill=tuple(int(c + (170 - c) * t) for c in top))
    for y in range(horizon, height):  # the sea
        t = (y - horizon) / (height - horizon)
        draw.line([(0, y), (width, y)], fill=(int(30 + 30 * t), int(60 + 40 * t), int(80 + 50 * t)))
    for _ in range(60):  # whitecaps
        x, y = rng.randrange(width), rng.randrange(horizon, height)
        draw.arc(
            [x, y, x + rng.randrange(30, 120), y + 16], 200, 340, fill=(220, 230, 235), width=3
        )
    base = int(width * rng.uniform(0.6, 0.8))  # the lighthouse on its rock
    draw.polygon([(base - 90, horizon + 30), (base + 110, horizon + 30), (base + 60, horizon - 10),
                  (base - 50, horizon - 15)], fill=(35, 35, 40))  # fmt: skip
    draw.polygon([(base - 25, horizon - 10), (base + 25, horizon - 10), (base + 15, horizon - 260),
                  (base - 15, horizon - 260)], fill=(235, 235, 230))  # fmt: skip
    for band in range(3):
        y = horizon - 60 - 70 * band
        draw.rectangle([base - 22 + 3 * band, y - 20, base + 22 - 3 * band, y], fill=(190, 30, 30))
    draw.polygon([(base + 10, horizon - 280), (width, horizon - 380), (width, horizon - 200)],
                 fill=(255, 240, 170))  # fmt: skip
    for _ in range(400):  # rain
        x, y = rng.randrange(width), rng.randrange(height)
        draw.line([(x, y), (x - 8, y + 24)], fill=(200, 205, 215), width=1)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=88)
    return out.getvalue()


async def upload_scenes(store: Store, settings: Settings) -> list[MediaInfo]:
    """Every scene, drawn, resized and recorded, in threads (about a second of CPU each)."""
    files = MediaFiles(settings.media_root())

    def make(number: int) -> MediaInfo:
        info, made = process(draw_scene(number), settings.max_media_pixels)
        files.write(info.id, made)
        return info

    uploaded = await asyncio.gather(*(asyncio.to_thread(make, n) for n in range(len(SCENES))))
    for info in uploaded:
        await store.media.put(info)
    return list(uploaded)


def item(scenes: list[MediaInfo], number: int, role: str = "inline") -> dict[str, object]:
    """Scene ``number`` as a brief's media item."""
    alt, caption = SCENES[number % len(SCENES)]
    return {"id": scenes[number % len(scenes)].id, "alt": alt, "caption": caption,
            "credit": CREDIT, "role": role}  # fmt: skip
