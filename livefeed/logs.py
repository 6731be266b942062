"""Logging: the text or JSON format for livefeed's and uvicorn's loggers, and request ids.

``config(level, fmt)`` is a ``logging.config.dictConfig`` dictionary; ``serve`` applies it and
hands it to uvicorn, which applies it again in every worker process. In the JSON format each
record is one object on one line::

    {"time": "2026-11-24T20:52:54.838000+00:00", "level": "INFO", "logger": "uvicorn.access",
     "message": "127.0.0.1:50312 - \\"POST /api/feeds/demo/briefs HTTP/1.1\\" 201",
     "request_id": "9f1c...", "client": "127.0.0.1:50312", "method": "POST",
     "path": "/api/feeds/demo/briefs", "http_version": "1.1", "status": 201}

``RequestId`` gives every HTTP request and WebSocket connection an id: the client's (or the
proxy's) ``X-Request-ID`` when it is a sane token, else a new one. It is echoed in the response's
``X-Request-ID`` header and added to every record logged while the request is handled.

Nothing here logs headers or bodies: editor tokens and brief texts never reach the log.
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from pythonjsonlogger.orjson import OrjsonFormatter

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

FORMATS = ("text", "json")

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "livefeed_request_id", default=None
)

_SANE_ID = re.compile(r"[A-Za-z0-9._:/+=@-]{1,128}")
_HEADER = b"x-request-id"


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to records logged while a request is being handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = REQUEST_ID.get()
        if request_id is not None:
            record.request_id = request_id
        return True


class JsonFormatter(OrjsonFormatter):
    """One JSON object per record: time, level, logger, message, request id and any extras.

    uvicorn's access records also get their parts as fields (client, method, path, status).
    """

    def __init__(self) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        log_data.pop("color_message", None)  # uvicorn's ANSI-coloured copy of the message
        args = record.args
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
            client, method, path, http_version, status = args
            log_data.update(
                client=client, method=method, path=path, http_version=http_version, status=status
            )

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        return {"time": log_data.pop("time", None), **log_data}


def config(level: str = "info", fmt: str = "text") -> dict[str, Any]:
    """A dictConfig for livefeed's loggers (through the root logger) and uvicorn's.

    ``text`` keeps uvicorn's own format and ``LEVEL: message`` for livefeed; ``json`` writes one
    JSON object per line. Application records go to standard error, access records to standard
    output, as uvicorn does.
    """
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    level = level.upper()
    if fmt == "json":
        formatters: dict[str, Any] = {
            "default": {"()": JsonFormatter},
            "access": {"()": JsonFormatter},
            "app": {"()": JsonFormatter},
        }
    else:
        formatters = {
            "default": {
                "()": "uvicorn.logging.DefaultFormatter",
                "fmt": "%(levelprefix)s %(message)s",
            },
            "access": {
                "()": "uvicorn.logging.AccessFormatter",
                "fmt": '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s',
            },
            "app": {"format": "%(levelname)s: %(message)s"},
        }
    handler = {"class": "logging.StreamHandler", "filters": ["request_id"]}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": formatters,
        "handlers": {
            "default": {**handler, "formatter": "default", "stream": "ext://sys.stderr"},
            "access": {**handler, "formatter": "access", "stream": "ext://sys.stdout"},
            "app": {**handler, "formatter": "app", "stream": "ext://sys.stderr"},
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": ["access"], "level": level, "propagate": False},
            # A record per WebSocket opened and closed: at ten thousand readers they cost more
            # than the sockets, so only when debugging.
            "livefeed.connections": {
                "level": "DEBUG" if level in ("DEBUG", "TRACE") else "WARNING",
            },
        },
        "root": {"handlers": ["app"], "level": level},
    }


def incoming_id(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The request's ``X-Request-ID`` if it is 1-128 characters of ``[A-Za-z0-9._:/+=@-]``."""
    for name, value in headers:
        if name.lower() == _HEADER:
            text = value.decode("latin-1")
            return text if _SANE_ID.fullmatch(text) else None
    return None


class RequestId:
    """Pure ASGI middleware: a request id per HTTP request and WebSocket, in context and reply."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = incoming_id(scope["headers"]) or os.urandom(16).hex()
        header = (_HEADER, request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        token = REQUEST_ID.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)
