"""``livefeed serve``: uvicorn with livefeed's WebSocket protocol, and the embedded Redis it
owns."""

from __future__ import annotations

import dataclasses
import logging.config
import os
import secrets
import signal
import sys
from typing import Any

import uvicorn

from livefeed import logs
from livefeed.app import create_app
from livefeed.config import Settings
from livefeed.embedded import EmbeddedRedis, EmbeddedRedisError
from livefeed.metrics import share_between_workers
from livefeed.transport import DirectSendProtocol


def serve(settings: Settings) -> int:
    """Run the server until stopped: embedded Redis (unless ``redis_url``), demo, workers."""
    try:
        log_config = logs.config(settings.log_level, settings.log_format)
    except ValueError as exc:
        print(f"livefeed: {exc}", file=sys.stderr)
        return 1
    logging.config.dictConfig(log_config)
    embedded: EmbeddedRedis | None = None
    if not settings.redis_url:
        embedded = EmbeddedRedis(settings.data_dir)
        try:
            url = embedded.start()
        except EmbeddedRedisError as exc:
            print(f"livefeed: {exc}", file=sys.stderr)
            return 1
        settings = dataclasses.replace(settings, redis_url=url)
        print(f"livefeed: embedded Redis at {url}, data in {embedded.data_dir}", file=sys.stderr)
    if settings.demo and not settings.editor_token:
        settings = dataclasses.replace(settings, editor_token="demo-" + secrets.token_urlsafe(16))
        print(f"livefeed: demo editor token for this run: {settings.editor_token}", file=sys.stderr)
    if settings.demo:
        print(
            f"livefeed: demo feed at http://{settings.host}:{settings.port}/feeds/demo",
            file=sys.stderr,
        )
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "log_config": log_config,
        "ws": DirectSendProtocol,
        "ws_per_message_deflate": False,
        "ws_max_size": settings.reader_max_message_bytes,
        "ws_ping_interval": settings.ws_ping_interval,
        "ws_ping_timeout": settings.ws_ping_timeout,
        "h11_max_incomplete_event_size": 16 * 1024,
        "timeout_graceful_shutdown": 5,
    }
    if settings.forwarded_allow_ips:
        options["forwarded_allow_ips"] = settings.forwarded_allow_ips
    # uvicorn re-raises SIGTERM once it has shut down; make that an exit that runs `finally`.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        if settings.workers > 1:
            # Workers are new processes: they build their app from the same settings, passed on
            # through the environment.
            os.environ.update(settings.to_env())
            share_between_workers()  # one /metrics for all workers (livefeed.metrics)
            uvicorn.run(
                "livefeed.app:app_from_env", factory=True, workers=settings.workers, **options
            )
        else:
            uvicorn.run(create_app(settings), **options)
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)
