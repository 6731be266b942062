"""Uploading images and audio (POST /api/media), an upload's record (GET /api/media/{id}, for
the composer reopening a draft, which names its media by id) and serving their files
(GET /media/{id}/{name}).

An upload is checked and resized off the event loop (``livefeed.media.images.process`` in a
pool of processes the app's lifespan owns, ``media_workers`` of them per worker), so readers'
sockets are not kept waiting while Pillow works. Its files go to the media directory before
its record goes to Redis, so a media id a brief can name is always one this node can serve
(several nodes: one shared directory). Files are named by their content: answered as
immutable, with an ETag, and 304 to a revalidation.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from email import policy
from email.parser import BytesParser

from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from livefeed.errors import BadRequest, NotFound, PayloadTooLarge, Unavailable
from livefeed.http._helpers import authorize, json_response, state
from livefeed.media.files import MediaFiles
from livefeed.media.images import Refusal, media_id, process_or_refusal, worker_pool
from livefeed.model.media import MEDIA_ID_RE, MediaInfo, parse_rendition
from livefeed.model.roles import Action

IMMUTABLE = "public, max-age=31536000, immutable"
MULTIPART_OVERHEAD = 64 * 1024
"""Bytes a multipart body may have beyond the file itself: boundaries and part headers."""


async def upload_media(request: Request) -> Response:
    """201 and the upload's renditions; 200 with the same when these bytes were sent before."""
    store, settings = state(request)
    await authorize(request, Action.WRITE_DRAFT)
    data = await _file_bytes(request, settings.max_media_bytes)
    files: MediaFiles = request.app.state.media_files
    identity = media_id(data)
    known = (await store.media.get_many([identity])).get(identity)
    if known is not None and files.exists(identity):
        return json_response(known, 200)
    async with request.app.state.media_slots:
        outcome = await in_pool(request.app.state, data, settings.max_media_pixels)
        if isinstance(outcome, Refusal):
            raise outcome.error()
        info, made = outcome
        await asyncio.to_thread(files.write, info.id, made)
    await store.media.put(info)
    return json_response(info, 201, {"Location": info.renditions[0].url})


async def media_record(request: Request) -> Response:
    """An upload's record, as its upload answered it (kind, size, renditions): what the editor
    page needs to show a draft's media again; 404 ``media_not_found`` for an id never uploaded."""
    store, _ = state(request)
    await authorize(request, Action.WRITE_DRAFT)
    identity: str = request.path_params["media"]
    info = None
    if MEDIA_ID_RE.fullmatch(identity) is not None:
        info = (await store.media.get_many([identity])).get(identity)
    if info is None:
        raise NotFound(f"no upload {identity}", code="media_not_found")
    return json_response(info)


async def media_file(request: Request) -> Response:
    """One stored file of an upload; cacheable for ever (its name names its content)."""
    identity: str = request.path_params["media"]
    name: str = request.path_params["name"]
    content_type = parse_rendition(name)
    if content_type is None or MEDIA_ID_RE.fullmatch(identity) is None:
        raise NotFound(f"no media file {identity}/{name}", code="media_not_found")
    etag = f'"{identity}-{name}"'
    headers = {"Cache-Control": IMMUTABLE, "ETag": etag}
    path = request.app.state.media_files.path(identity, name)
    if not path.is_file():
        raise NotFound(f"no media file {identity}/{name}", code="media_not_found")
    if etag in {t.strip() for t in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers=headers)
    return FileResponse(path, media_type=content_type, headers=headers)


async def in_pool(
    app_state: State, data: bytes, max_pixels: int
) -> tuple[MediaInfo, dict[str, bytes]] | Refusal:
    """``process_or_refusal`` in the app's worker processes; a pool whose process died (out of
    memory, say) is replaced, and the upload answered 503 to be sent again."""
    pool: ProcessPoolExecutor = app_state.media_pool
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(pool, process_or_refusal, data, max_pixels)
    except BrokenProcessPool:
        if app_state.media_pool is pool:
            app_state.media_pool = worker_pool(app_state.settings.media_workers)
            pool.shutdown(wait=False)
        raise Unavailable("the media worker stopped; send the file again") from None


async def _file_bytes(request: Request, limit: int) -> bytes:
    """The uploaded file: the raw body, or the ``file`` part of a multipart/form-data body.
    413 past ``limit`` bytes of file; 400 ``no_file`` for an empty body or no file part."""
    content_type = request.headers.get("content-type", "")
    multipart = content_type.split(";")[0].strip().lower() == "multipart/form-data"
    cap = limit + MULTIPART_OVERHEAD if multipart else limit
    declared = request.headers.get("content-length")
    too_large = PayloadTooLarge(f"a media file must be at most {limit} bytes")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > cap:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > cap:
            raise too_large
    data = await asyncio.to_thread(_file_part, content_type, bytes(body)) if multipart else body
    if not data:
        raise BadRequest(
            "send the file as the body, or as the 'file' part of a form", code="no_file"
        )
    if len(data) > limit:
        raise too_large
    return bytes(data)


def _file_part(content_type: str, body: bytes) -> bytes:
    """The first part named ``file`` (or the first with a file name) of a form; empty if none."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", "replace")
    message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        return b""
    parts = list(message.iter_parts())
    named = [p for p in parts if p.get_param("name", header="content-disposition") == "file"]
    for part in named or [p for p in parts if p.get_filename()]:
        payload = part.get_payload(decode=True)
        return payload if isinstance(payload, bytes) else b""
    return b""
