"""One error root for livefeed, mapped to an HTTP status and a WebSocket close code here only.

LivefeedException                          root of every exception livefeed defines
├── LivefeedError             500 / 1011   what a client can cause or observe; its JSON body
│   │                                      (``to_dict``) is the only error body livefeed sends
│   ├── BadRequest            400 / 4400   malformed JSON, parameter, cursor or Idempotency-Key;
│   │                                      a token in the URL
│   ├── Unauthorized          401          missing, wrong or revoked editor token
│   ├── Forbidden             403          a valid token whose role may not do this
│   ├── NotFound              404 / 4404   unknown feed, brief, path or push subscription
│   ├── MethodNotAllowed      405          a method the path does not take
│   ├── RequestTimeout        408          request head or body too slow (livefeed.http.edge)
│   ├── Conflict              409          feed already exists, coverage ended, busy (retry)
│   ├── PreconditionFailed    412          the brief is no longer at the If-Match version
│   ├── PayloadTooLarge       413          request body over the limit
│   ├── UnsupportedMediaType  415          request body that is not JSON
│   ├── ValidationFailed      422          a field of the wrong type, too long, not allowed;
│   │                                      an Idempotency-Key used for another request
│   ├── transfer.ImportRejected  422       a line of an import is not acceptable
│   ├── TooManyRequests       429          over a rate limit, or too many connections
│   ├── HeadersTooLarge       431          request headers over the limit
│   ├── HttpError             any          another status Starlette itself answered with
│   └── Unavailable           503 / 1013   Redis unreachable, or a write not on enough replicas
│                                          in time; the client should retry
└── internal signals, never sent as such:
    ├── append.Retry, append.Replayed   what the append script decided
    ├── bulk.BulkRefused      Redis refused an import batch
    ├── fetch.FetchFailed     an outbound fetch got no usable answer (422 embed_unavailable)
    ├── transfer.ImportStopped   an import was asked to stop
    ├── transfer.NotReplicated   an import written whole, not yet on enough replicas
    ├── hub.TooSlow, hub.Closing   a subscriber dropped (close code 4408, or the one it carries)
    ├── hub.StreamGap         a follower found entries missing; the feed's readers resume
    ├── reader._Reload        a reader's ``since`` is not resumable
    ├── embedded.EmbeddedRedisError (also a RuntimeError)   the embedded Redis did not start
    ├── cluster._ReplyLost    commands sent to a shard whose replies never came (may have run)
    ├── search._Moved         another process moved a search index file on; read it again
    ├── connect.BadRedisUrl (also a ValueError)   a Redis URL livefeed cannot use
    └── archive.BadArchive (also a ValueError)   a file import cannot read as a media archive
"""

from __future__ import annotations

from typing import Any, ClassVar

# WebSocket close codes sent by the server (also documented in the README). The desk socket
# (stream/desk.py) sends 401 and 403 as CLOSE_POLICY, its reason starting with the error code
# (unauthorized, invalid_token, forbidden_role), and asks a socket whose role changed to
# reconnect with CLOSE_TRY_AGAIN_LATER.
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_INTERNAL = 1011
CLOSE_TRY_AGAIN_LATER = 1013
CLOSE_BAD_REQUEST = 4400
CLOSE_POLICY = 1008
CLOSE_NOT_FOUND = 4404
CLOSE_TOO_SLOW = 4408


class LivefeedException(Exception):
    """Root of every exception livefeed defines; catch this to catch all of livefeed's own."""


class LivefeedError(LivefeedException):
    """Base of every error a client can cause or observe; carries a machine-readable code."""

    status: int = 500
    """The HTTP status; a class constant but for ``HttpError``, which carries any."""
    close_code: ClassVar[int] = CLOSE_INTERNAL
    default_code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.field = field

    def to_dict(self) -> dict[str, Any]:
        """The JSON error body: ``{"error": {"code", "message"[, "field"]}}``."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            error["field"] = self.field
        return {"error": error}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class BadRequest(LivefeedError):
    status = 400
    close_code = CLOSE_BAD_REQUEST
    default_code = "bad_request"


class Unauthorized(LivefeedError):
    status = 401
    default_code = "unauthorized"


class Forbidden(LivefeedError):
    """The token is valid, but its role may not take the action (``livefeed.model.roles``)."""

    status = 403
    default_code = "forbidden_role"


class NotFound(LivefeedError):
    status = 404
    close_code = CLOSE_NOT_FOUND
    default_code = "not_found"


class MethodNotAllowed(LivefeedError):
    status = 405
    default_code = "method_not_allowed"


class RequestTimeout(LivefeedError):
    status = 408
    default_code = "request_timeout"


class Conflict(LivefeedError):
    status = 409
    default_code = "conflict"


class PreconditionFailed(LivefeedError):
    """The brief is no longer at the version the client based its change on."""

    status = 412
    default_code = "stale_version"

    def __init__(self, message: str, *, current_version: int) -> None:
        super().__init__(message)
        self.current_version = current_version

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        body["error"]["current_version"] = self.current_version
        return body


class PayloadTooLarge(LivefeedError):
    status = 413
    default_code = "payload_too_large"


class UnsupportedMediaType(LivefeedError):
    status = 415
    default_code = "unsupported_media_type"


class ValidationFailed(LivefeedError):
    status = 422
    default_code = "invalid_field"


class TooManyRequests(LivefeedError):
    """Over a rate limit; ``retry_after`` says how many seconds to wait."""

    status = 429
    default_code = "rate_limited"

    def __init__(self, message: str, *, code: str | None = None, retry_after: int = 1) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class HeadersTooLarge(LivefeedError):
    status = 431
    default_code = "headers_too_large"


class HttpError(LivefeedError):
    """A status Starlette answered with itself that no class above names (``from_http``)."""

    default_code = "http_error"

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def from_http(status: int, message: str) -> LivefeedError:
    """The livefeed error for an ``HTTPException`` Starlette raised (no such route or method)."""
    if status == NotFound.status:
        return NotFound(message)
    if status == MethodNotAllowed.status:
        return MethodNotAllowed(message)
    return HttpError(status, message)


class Unavailable(LivefeedError):
    """Redis cannot be reached right now; ``retry_after`` is a hint in seconds."""

    status = 503
    close_code = CLOSE_TRY_AGAIN_LATER
    default_code = "unavailable"

    def __init__(self, message: str, *, code: str | None = None, retry_after: int = 2) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after
