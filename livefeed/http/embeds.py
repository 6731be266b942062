"""Embeds over HTTP: the editor's preview of a card, resolving a brief's embeds when it is
published or corrected, and the thumbnails the cards show."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from livefeed.config import Settings
from livefeed.errors import NotFound
from livefeed.http._helpers import authenticate, json_response, read_json, state
from livefeed.model.brief import Brief
from livefeed.model.embed import Embed, EmbedRef
from livefeed.model.ids import iso_ms
from livefeed.model.schema import decode
from livefeed.outbound.embeds import Providers, Resolver
from livefeed.outbound.fetch import Policy
from livefeed.outbound.thumbs import MEDIA_TYPES, FileThumbnails

THUMBNAILS_DIR = "embed-thumbs"
"""Under ``--data-dir``: the thumbnails' files."""


def providers(settings: Settings) -> Providers:
    return Providers.parse(
        settings.embed_providers,
        youtube_oembed=settings.embed_youtube_oembed,
        x_oembed=settings.embed_x_oembed,
        telegram=settings.embed_telegram_url,
    )


def make_resolver(settings: Settings) -> tuple[Resolver, FileThumbnails]:
    """The resolver and thumbnail store ``create_app`` keeps in ``app.state``."""
    policy = Policy(
        allow_http=settings.embed_allow_http,
        allow_loopback=settings.embed_test_loopback,
        timeout=settings.embed_timeout,
        max_bytes=settings.embed_max_bytes,
    )
    thumbs = FileThumbnails(settings.data_dir / THUMBNAILS_DIR)
    return Resolver(providers(settings), policy, thumbs), thumbs


async def resolve(
    request: Request, refs: tuple[EmbedRef, ...] | None, before: tuple[Embed, ...] = ()
) -> tuple[Embed, ...]:
    """A brief's embeds as snapshots, stamped with Redis's clock."""
    if not refs:
        return ()
    store, _ = state(request)
    resolver: Resolver = request.app.state.resolver
    return await resolver.resolve_all(refs, iso_ms(await store.now_ms()), before)


async def resolve_changes(request: Request, changes: dict[str, Any], current: Brief) -> None:
    """A correction's ``embeds`` resolved in place; those the brief had are re-resolved, and a
    post found deleted is kept, marked ``deleted``."""
    if "embeds" in changes:
        changes["embeds"] = await resolve(request, changes["embeds"], current.embeds)


async def preview_embed(request: Request) -> Response:
    """``POST /api/embeds/preview {"url"}``: the card a brief quoting ``url`` would show."""
    _, settings = state(request)
    await authenticate(request)
    ref = decode(await read_json(request, settings.max_body_bytes), EmbedRef)
    (embed,) = await resolve(request, (ref,))
    return json_response(embed)


async def thumbnail(request: Request) -> Response:
    """``GET /embed-thumbs/{name}``: a snapshot's image, immutable (its name is its hash)."""
    thumbs: FileThumbnails = request.app.state.thumbs
    name = request.path_params["name"]
    path = thumbs.path(name)
    if path is None:
        raise NotFound(f"no thumbnail {name!r}", code="not_found")
    headers = {"Cache-Control": "public, max-age=31536000, immutable", "ETag": f'"{name}"'}
    media_type = MEDIA_TYPES[name.rsplit(".", 1)[1]]
    return FileResponse(path, media_type=media_type, headers=headers)
