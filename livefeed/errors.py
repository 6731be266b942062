"""One error root for livefeed, mapped to an HTTP status and a WebSocket close code here only.

LivefeedError                 500 / 1011
├── BadRequest                400 / 4400   malformed JSON, parameter, cursor or Idempotency-Key
├── Unauthorized              401          missing, wrong or revoked editor token
├── NotFound                  404 / 4404   unknown feed or brief
├── Conflict                  409          feed already exists, coverage ended, busy (retry)
├── PayloadTooLarge           413          request body over the limit
├── UnsupportedMediaType      415          request body that is not JSON
├── ValidationFailed          422          a field of the wrong type, too long, not allowed;
│                                          an Idempotency-Key used for another request
└── Unavailable               503 / 1013   Redis unreachable; the client should retry
"""

from __future__ import annotations

from typing import Any, ClassVar

# WebSocket close codes sent by the server (also documented in the README).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_INTERNAL = 1011
CLOSE_TRY_AGAIN_LATER = 1013
CLOSE_BAD_REQUEST = 4400
CLOSE_POLICY = 1008
CLOSE_NOT_FOUND = 4404
CLOSE_TOO_SLOW = 4408


class LivefeedError(Exception):
    """Base of every error a client can cause or observe; carries a machine-readable code."""

    status: ClassVar[int] = 500
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


class NotFound(LivefeedError):
    status = 404
    close_code = CLOSE_NOT_FOUND
    default_code = "not_found"


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

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(LivefeedError):
    """Redis cannot be reached right now; ``retry_after`` is a hint in seconds."""

    status = 503
    close_code = CLOSE_TRY_AGAIN_LATER
    default_code = "unavailable"

    def __init__(self, message: str, *, retry_after: int = 2) -> None:
        super().__init__(message)
        self.retry_after = retry_after
