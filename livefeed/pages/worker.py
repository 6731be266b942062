"""``/sw.js``: the service worker that shows web push notifications (web/sw.js), served from
the site's root so its scope is every page, as a script the pages' CSP allows (same origin)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from livefeed.pages.views import SECURITY_HEADERS


async def service_worker(request: Request) -> Response:
    """The worker script; revalidated on every registration check, so an update is seen."""
    path = request.app.state.settings.web_dir / "sw.js"
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-cache", "Service-Worker-Allowed": "/"}
    return FileResponse(path, media_type="text/javascript; charset=utf-8", headers=headers)
