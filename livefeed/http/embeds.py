"""Embeds over HTTP: the editor's preview of a card and resolving a brief's embeds when it is
published or corrected. Their thumbnails are media (``/media/{id}/{name}``), made in the
app's media worker pool as uploads are."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import Response

from livefeed.config import Settings
from livefeed.errors import Unavailable
from livefeed.http._helpers import authorize, json_response, read_json, state
from livefeed.http.media import in_pool
from livefeed.media.images import Refusal
from livefeed.model.brief import Brief
from livefeed.model.embed import Embed, EmbedRef
from livefeed.model.ids import iso_ms
from livefeed.model.media import MediaInfo
from livefeed.model.roles import Action
from livefeed.model.schema import decode
from livefeed.newsroom.drafts import Resolve
from livefeed.outbound.embeds import Providers, Resolver
from livefeed.outbound.fetch import Policy
from livefeed.outbound.thumbs import MediaThumbnails, ThumbnailStore
from livefeed.storage.store import Store


def providers(settings: Settings) -> Providers:
    return Providers.parse(
        settings.embed_providers,
        youtube_oembed=settings.embed_youtube_oembed,
        x_oembed=settings.embed_x_oembed,
        telegram=settings.embed_telegram_url,
    )


def make_resolver(settings: Settings, thumbs: ThumbnailStore) -> Resolver:
    """The resolver the lifespan keeps in ``app.state``, its thumbnails going to ``thumbs``."""
    policy = Policy(
        allow_http=settings.embed_allow_http,
        allow_loopback=settings.embed_test_loopback,
        timeout=settings.embed_timeout,
        max_bytes=settings.embed_max_bytes,
    )
    return Resolver(providers(settings), policy, thumbs)


def app_thumbnails(app_state: State) -> MediaThumbnails:
    """Thumbnails made as uploads are: in the app's worker pool, one of its media slots held
    (a dead worker leaves the card without a thumbnail rather than failing the publish)."""

    async def process(data: bytes) -> tuple[MediaInfo, dict[str, bytes]] | Refusal:
        async with app_state.media_slots:
            try:
                return await in_pool(app_state, data, app_state.settings.max_media_pixels)
            except Unavailable as exc:
                return Refusal(Unavailable, exc.message, exc.code)

    return MediaThumbnails(process, app_state.media_files, app_state.store.media)


async def resolve(
    request: Request, refs: tuple[EmbedRef, ...] | None, before: tuple[Embed, ...] = ()
) -> tuple[Embed, ...]:
    """A brief's embeds as snapshots, stamped with Redis's clock."""
    if not refs:
        return ()
    store, _ = state(request)
    resolver: Resolver = request.app.state.resolver
    return await resolver.resolve_all(refs, iso_ms(await store.now_ms()), before)


def app_resolver(app_state: State, store: Store) -> Resolve:
    """``resolve`` outside a request: for the scheduler, which publishes drafts on its own."""

    async def resolve_refs(refs: tuple[EmbedRef, ...] | None) -> tuple[Embed, ...]:
        if not refs:
            return ()
        resolver: Resolver = app_state.resolver
        return await resolver.resolve_all(refs, iso_ms(await store.now_ms()))

    return resolve_refs


async def resolve_changes(request: Request, changes: dict[str, Any], current: Brief) -> None:
    """A correction's ``embeds`` resolved in place; those the brief had are re-resolved, and a
    post found deleted is kept, marked ``deleted``."""
    if "embeds" in changes:
        changes["embeds"] = await resolve(request, changes["embeds"], current.embeds)


async def preview_embed(request: Request) -> Response:
    """``POST /api/embeds/preview {"url"}``: the card a brief quoting ``url`` would show."""
    _, settings = state(request)
    await authorize(request, Action.WRITE_DRAFT)
    ref = decode(await read_json(request, settings.max_body_bytes), EmbedRef)
    (embed,) = await resolve(request, (ref,))
    return json_response(embed)
