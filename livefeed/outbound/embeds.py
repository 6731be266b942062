"""Resolving an embed's URL into a snapshot (livefeed.model.embed.Embed), once, at publish.

Which provider a URL belongs to is decided by its host: YouTube and X are asked by oEmbed,
Telegram posts are read from their public ``t.me/<channel>/<id>?embed=1`` page, and any other
URL is fetched and read for its Open Graph / JSON-LD tags as a related-article card. Each
provider's endpoint is a setting, so tests and the demo point them at servers of their own.
Every request goes through ``livefeed.outbound.fetch`` (the security boundary).

Failures, all ValidationFailed with ``field: "embeds"`` and the URL in the message:
``embed_not_allowed`` (the provider is not on the allow-list, or the address is not public),
``embed_not_found`` (the post or page is gone: 404/410, or Telegram says so),
``embed_unavailable`` (the provider is down, too slow, or answered something that is not what
it should). A thumbnail that cannot be had leaves the card without one. On a correction an
embed the brief already had keeps its snapshot when its provider fails, and is marked
``deleted`` when the post is found gone: the card becomes a quotation of a deleted post.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, urlsplit

import msgspec

from livefeed.errors import ValidationFailed
from livefeed.model.embed import PROVIDERS, Embed, EmbedRef, Provider, plain_line
from livefeed.outbound.fetch import Fetched, FetchFailed, Policy, fetch
from livefeed.outbound.parse import Card, OEmbed, article_card, oembed, telegram_card, x_post
from livefeed.outbound.thumbs import ThumbnailStore

log = logging.getLogger("livefeed.outbound")
_HOSTS: dict[str, Provider] = {
    **dict.fromkeys(
        ("youtube.com", "www.youtube.com", "m.youtube.com", "youtu.be", "music.youtube.com"),
        "youtube",
    ),
    **dict.fromkeys(
        ("x.com", "www.x.com", "twitter.com", "www.twitter.com", "mobile.twitter.com"), "x"
    ),
    **dict.fromkeys(("t.me", "telegram.me", "www.t.me"), "telegram"),
}
_YOUTUBE_ID = re.compile(r"[A-Za-z0-9_-]{6,20}")
_X_PATH = re.compile(r"/([A-Za-z0-9_]{1,50})/status(?:es)?/([0-9]{1,25})(?:/.*)?")
_TELEGRAM_PATH = re.compile(r"(?:/s)?/([A-Za-z][A-Za-z0-9_]{3,40})/([0-9]{1,12})/?")
_GONE = frozenset({404, 410})
"""Answers that mean the post or page is gone (a private or protected one is unavailable)."""
YOUTUBE_FRAME = "https://www.youtube-nocookie.com"
X_FRAME = "https://platform.twitter.com"


@dataclass(frozen=True)
class Providers:
    """The providers allowed (``enabled``) and where each is asked."""

    enabled: frozenset[str]
    youtube_oembed: str = "https://www.youtube.com/oembed"
    x_oembed: str = "https://publish.twitter.com/oembed"
    telegram: str = "https://t.me"

    @classmethod
    def parse(cls, names: str, **endpoints: str) -> Providers:
        """From the comma-separated allow-list setting; an unknown name is a SystemExit."""
        enabled = frozenset(n.strip().lower() for n in names.split(",") if n.strip())
        unknown = enabled - set(PROVIDERS)
        if unknown:
            raise SystemExit(
                f"LIVEFEED_EMBED_PROVIDERS: unknown {', '.join(sorted(unknown))}; "
                f"choose from {', '.join(PROVIDERS)}"
            )
        return cls(enabled, **endpoints)

    def frame_origins(self) -> list[str]:
        """The origins a "Show the post" button may load a frame from (CSP ``frame-src``)."""
        origins = {"youtube": YOUTUBE_FRAME, "x": X_FRAME, "telegram": _origin(self.telegram)}
        return [origins[name] for name in PROVIDERS if name in self.enabled and name in origins]


def provider_of(url: str) -> Provider:
    """Whose post ``url`` is: by its host, and only for a post's own address (a YouTube
    channel or a Telegram channel's front page is any other page: a link card)."""
    parts = urlsplit(url)
    provider = _HOSTS.get((parts.hostname or "").lower().rstrip("."), "link")
    if provider == "youtube" and _youtube_id(url) is None:
        return "link"
    if provider == "x" and _X_PATH.fullmatch(parts.path) is None:
        return "link"
    if provider == "telegram" and _TELEGRAM_PATH.fullmatch(parts.path) is None:
        return "link"
    return provider


class Resolver:
    """Builds snapshots: ``resolve`` one URL, ``resolve_all`` a brief's list."""

    def __init__(self, providers: Providers, policy: Policy, thumbs: ThumbnailStore) -> None:
        self.providers = providers
        self.policy = policy
        self.thumbs = thumbs

    async def resolve_all(
        self, refs: Iterable[EmbedRef] | None, now: str, before: tuple[Embed, ...] = ()
    ) -> tuple[Embed, ...]:
        """Snapshots for ``refs``, in order, fetched side by side; ``before`` are the brief's
        current ones (a correction): their URLs keep their snapshot if the provider fails."""
        refs = list(refs or ())
        kept = {embed.url: embed for embed in before}
        results = await asyncio.gather(
            *(self.resolve(ref.url, now) for ref in refs), return_exceptions=True
        )
        out = []
        for ref, result in zip(refs, results, strict=True):
            if isinstance(result, Embed):
                out.append(result)
                continue
            old = kept.get(ref.url)
            if old is None or not isinstance(result, ValidationFailed):
                raise result
            if result.code == "embed_not_found":
                out.append(msgspec.structs.replace(old, deleted=True))
            elif result.code == "embed_unavailable":
                out.append(old)
            else:
                raise result
        return tuple(out)

    async def resolve(self, url: str, now: str) -> Embed:
        """The snapshot of ``url``, taken now; ValidationFailed as the module docstring says."""
        provider = provider_of(url)
        if provider not in self.providers.enabled:
            raise _fail("embed_not_allowed", url, "embeds from this site are not allowed here")
        try:
            if provider == "youtube":
                return await self._youtube(url, now)
            if provider == "x":
                return await self._x(url, now)
            if provider == "telegram":
                return await self._telegram(url, now)
            return await self._link(url, now)
        except FetchFailed as exc:
            raise _fail("embed_unavailable", url, str(exc)) from None
        except ValidationFailed as exc:
            if exc.code == "embed_not_allowed":  # the boundary held: worth an operator's look
                log.info("embed refused: %s", exc.message)
                if url not in exc.message:
                    raise _fail(exc.code, url, exc.message) from None
            raise

    async def _youtube(self, url: str, now: str) -> Embed:
        video = _youtube_id(url) or ""
        canonical = f"https://www.youtube.com/watch?v={video}"
        data = await self._oembed(self.providers.youtube_oembed, canonical, url)
        return Embed(
            url=url,
            provider="youtube",
            canonical_url=canonical,
            title=data.title,
            author=data.author,
            handle=_last_segment(data.author_url),
            outlet="YouTube",
            thumbnail=await self._thumbnail(data.thumbnail),
            frame_url=f"{YOUTUBE_FRAME}/embed/{video}",
            resolved_at=now,
        )

    async def _x(self, url: str, now: str) -> Embed:
        user, post = _matched(_X_PATH, url)
        canonical = f"https://x.com/{user}/status/{post}"
        data = await self._oembed(
            self.providers.x_oembed, canonical, url, "&omit_script=1&dnt=true"
        )
        text, day = x_post(data.html)
        handle = _last_segment(data.author_url) or f"@{user}"
        return Embed(
            url=url,
            provider="x",
            canonical_url=canonical,
            text=text,
            author=data.author,
            handle=handle,
            outlet="X",
            published_at=day,
            frame_url=f"{X_FRAME}/embed/Tweet.html?id={post}&dnt=true",
            resolved_at=now,
        )

    async def _telegram(self, url: str, now: str) -> Embed:
        channel, post = _matched(_TELEGRAM_PATH, url)
        page_url = f"{self.providers.telegram.rstrip('/')}/{channel}/{post}?embed=1"
        page = await fetch(page_url, self.policy, "text/html")
        _check_status(page, url)
        card = await asyncio.to_thread(telegram_card, page.url, page.text(), channel)
        if card.gone:
            raise _fail("embed_not_found", url, "Telegram says the post is not there")
        return self._snapshot(
            url,
            "telegram",
            f"https://t.me/{channel}/{post}",
            card,
            now,
            await self._thumbnail(card.image),
            page_url,
        )

    async def _link(self, url: str, now: str) -> Embed:
        page = await fetch(url, self.policy, "text/html,application/xhtml+xml")
        _check_status(page, url)
        if page.media_type not in ("text/html", "application/xhtml+xml"):
            raise _fail("embed_unavailable", url, f"not a web page but {page.media_type!r}")
        card = await asyncio.to_thread(article_card, page.url, page.text())
        outlet = card.outlet or (urlsplit(page.url).hostname or "")
        card.outlet = plain_line(outlet.removeprefix("www."))
        card.title = card.title or card.outlet
        canonical = card.canonical or page.url
        return self._snapshot(url, "link", canonical, card, now, await self._thumbnail(card.image))

    @staticmethod
    def _snapshot(
        url: str,
        provider: Provider,
        canonical: str,
        card: Card,
        now: str,
        thumbnail: str | None,
        frame: str | None = None,
    ) -> Embed:
        return Embed(
            url=url,
            provider=provider,
            canonical_url=canonical,
            title=card.title,
            text=card.text,
            author=card.author,
            handle=card.handle,
            outlet=card.outlet,
            published_at=card.published_at,
            thumbnail=thumbnail,
            frame_url=frame,
            resolved_at=now,
        )

    async def _oembed(self, endpoint: str, canonical: str, url: str, extra: str = "") -> OEmbed:
        answer = await fetch(
            f"{endpoint}?format=json&url={quote(canonical, safe='')}{extra}",
            self.policy,
            "application/json",
        )
        _check_status(answer, url)
        try:
            data = oembed(answer.url, json.loads(answer.body))
        except ValueError:
            data = None
        if data is None or not (data.author or data.title):
            raise _fail("embed_unavailable", url, "the provider's answer is not oEmbed")
        return data

    async def _thumbnail(self, image: str | None) -> str | None:
        """A copy of ``image`` in our thumbnail store; None if it cannot be had."""
        if image is None:
            return None
        try:
            got = await fetch(image, self.policy, "image/*")
        except (FetchFailed, ValidationFailed):
            return None
        if got.status != 200:
            return None
        return await self.thumbs.put(got.body)


def _check_status(answer: Fetched, url: str) -> None:
    if answer.status in _GONE:
        raise _fail("embed_not_found", url, f"the provider answered {answer.status}: gone")
    if answer.status != 200:
        raise _fail("embed_unavailable", url, f"the provider answered {answer.status}")


def _fail(code: str, url: str, why: str) -> ValidationFailed:
    return ValidationFailed(f"embed {url}: {why}", code=code, field="embeds")


def _matched(pattern: re.Pattern[str], url: str) -> tuple[str, ...]:
    """The groups of a post's path, which ``provider_of`` has already matched."""
    match = pattern.fullmatch(urlsplit(url).path)
    return match.groups() if match else ("", "")


def _youtube_id(url: str) -> str | None:
    parts = urlsplit(url)
    if (parts.hostname or "").lower() == "youtu.be":
        candidate = parts.path.strip("/")
    elif parts.path.rstrip("/") == "/watch":
        candidate = (parse_qs(parts.query).get("v") or [""])[0]
    else:
        match = re.fullmatch(r"/(?:shorts|embed|live)/([^/]+)/?", parts.path)
        candidate = match.group(1) if match else ""
    return candidate if _YOUTUBE_ID.fullmatch(candidate) else None


def _last_segment(url: str | None) -> str:
    if not url:
        return ""
    segment = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
    return plain_line(segment if segment.startswith("@") else f"@{segment}" if segment else "")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
