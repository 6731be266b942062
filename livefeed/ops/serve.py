"""``livefeed serve``: uvicorn with livefeed's WebSocket protocol, and the embedded Redis it
owns."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import logging.config
import os
import secrets
import signal
import socket
import sys
from typing import Any

import uvicorn
from redis.exceptions import RedisClusterException, RedisError
from starlette.applications import Starlette

from livefeed import logs
from livefeed.app import create_app
from livefeed.config import Settings
from livefeed.http import edge
from livefeed.metrics import share_between_workers
from livefeed.model.roles import Role
from livefeed.ops.check import check_data_dir
from livefeed.ops.demo import DEMO_CONTRIBUTOR, DEMO_EDITOR, run_demo
from livefeed.storage.connect import BadRedisUrl, check_url, connect, hide_password
from livefeed.storage.keys import Keys
from livefeed.storage.layout import legacy_feeds
from livefeed.storage.redis_server import EmbeddedRedis, EmbeddedRedisError
from livefeed.storage.store import Store
from livefeed.storage.tokens import Tokens
from livefeed.stream.uvicorn_ws import DirectSendProtocol

EXIT_PORT_UNUSABLE = os.EX_UNAVAILABLE
"""``serve`` exit status when the port cannot be listened on (in use, or not allowed)."""
EXIT_DATA_DIR = os.EX_CANTCREAT
"""``serve`` exit status when the embedded Redis's data directory cannot be used."""
EXIT_REDIS = os.EX_SOFTWARE
"""``serve`` exit status when the embedded Redis does not start."""
EXIT_USAGE = os.EX_USAGE
"""``serve`` exit status when a setting cannot be used as given (a Redis URL it cannot parse)."""
EXIT_OLD_LAYOUT = os.EX_CONFIG
"""``serve`` exit status when Redis holds feeds in the key layout before hash tags: run
``livefeed migrate`` first."""


def serve(settings: Settings) -> int:
    """Run the server until stopped: embedded Redis (unless ``redis_url``), demo, workers.

    What would fail later (the port, the data directory) is checked first, so a failure is one
    line with its fix and an exit status of its own, before anything is announced or seeded.
    """
    try:
        log_config = logs.config(settings.log_level, settings.log_format)
    except ValueError as exc:
        print(f"livefeed: {exc}", file=sys.stderr)
        return 1
    problem = port_problem(settings.host, settings.port)
    if problem is not None:
        print(f"livefeed: {problem}", file=sys.stderr)
        return EXIT_PORT_UNUSABLE
    try:
        Keys(settings.key_prefix)  # a brace would be every key's Redis Cluster hash tag
    except ValueError as exc:
        print(f"livefeed: {exc}; pass another --key-prefix", file=sys.stderr)
        return EXIT_USAGE
    if settings.redis_url:
        try:
            check_url(settings.redis_url)
        except BadRedisUrl as exc:
            print(f"livefeed: {exc}", file=sys.stderr)
            return EXIT_USAGE
    else:
        finding = check_data_dir(settings.data_dir)
        if finding.level == "error":
            print(f"livefeed: data directory: {finding.message}", file=sys.stderr)
            return EXIT_DATA_DIR
    logging.config.dictConfig(log_config)
    embedded: EmbeddedRedis | None = None
    if not settings.redis_url:
        try:
            embedded = EmbeddedRedis(settings.data_dir)
            url = embedded.start()
        except EmbeddedRedisError as exc:
            print(f"livefeed: {exc}", file=sys.stderr)
            return EXIT_REDIS
        settings = dataclasses.replace(settings, redis_url=url)
        print(f"livefeed: embedded Redis at {url}, data in {embedded.data_dir}", file=sys.stderr)
    try:
        old = asyncio.run(old_layout(settings))
    except (RedisError, RedisClusterException, OSError) as exc:
        old = []
        print(f"livefeed: cannot reach Redis at {settings.redis_url} yet: {exc}", file=sys.stderr)
    if old:
        if embedded is not None:
            embedded.stop()
        print(
            f"livefeed: Redis holds {len(old)} feed(s) ({', '.join(old[:3])}...) in the key "
            "layout before hash tags; stop every livefeed node and run `livefeed migrate` "
            "with the same --redis-url/--data-dir and --key-prefix",
            file=sys.stderr,
        )
        return EXIT_OLD_LAYOUT
    if settings.wait_aof:
        problem = asyncio.run(wait_aof_problem(settings))
        if problem is not None:
            print(f"livefeed: {problem}", file=sys.stderr)
            if embedded is not None:
                embedded.stop()
            return EXIT_USAGE
    if settings.demo and not settings.editor_token:
        try:
            token = asyncio.run(demo_token(settings))
            reporter = asyncio.run(demo_token(settings, DEMO_CONTRIBUTOR, Role.CONTRIBUTOR))
        except (RedisError, OSError) as exc:
            print(f"livefeed: cannot reach Redis at {settings.redis_url}: {exc}", file=sys.stderr)
            return EXIT_REDIS
        print(f"livefeed: demo editor token: {token}", file=sys.stderr)
        print(f"  export TOKEN={token}", file=sys.stderr)
        print(f"livefeed: demo contributor token: {reporter}", file=sys.stderr)
        print(f"  export CONTRIBUTOR_TOKEN={reporter}", file=sys.stderr)
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
        "ws": DirectSendProtocol if settings.ws_direct else "websockets-sansio",
        "ws_per_message_deflate": settings.ws_compression,
        "ws_max_size": settings.reader_max_message_bytes,
        "ws_ping_interval": settings.ws_ping_interval,
        "ws_ping_timeout": settings.ws_ping_timeout,
        "h11_max_incomplete_event_size": 16 * 1024,
        "timeout_graceful_shutdown": 5,
        # livefeed.http.edge: header and body timers, and the client address from trusted proxies.
        "http": edge.EdgeProtocol,
        "timeout_keep_alive": settings.keepalive_timeout,
        "proxy_headers": False,
    }
    edge.configure(edge.EdgeLimits.from_settings(settings, os.environ))
    # uvicorn re-raises SIGTERM once it has shut down; make that an exit that runs `finally`.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        if settings.workers > 1:
            # Workers are new processes: they build their app from the same settings, passed on
            # through the environment.
            os.environ.update(settings.to_env())
            share_between_workers()  # one /metrics for all workers (livefeed.metrics)
            uvicorn.run(
                "livefeed.ops.serve:app_from_env", factory=True, workers=settings.workers, **options
            )
        else:
            uvicorn.run(build_app(settings), **options)
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


def build_app(settings: Settings) -> Starlette:
    """The application ``serve`` runs: ``create_app`` with the demo poster when ``--demo``."""
    return create_app(settings, jobs=(run_demo,) if settings.demo else ())


def app_from_env() -> Starlette:
    """The application for a worker process: settings from ``LIVEFEED_*`` (see ``serve``)."""
    settings = Settings.from_env()
    edge.configure(edge.EdgeLimits.from_settings(settings, os.environ))
    return build_app(settings)


async def wait_aof_problem(settings: Settings) -> str | None:
    """Why ``LIVEFEED_WAIT_AOF=1`` cannot work on the Redis at ``settings.redis_url`` (no
    WAITAOF before Redis 7.2, or the append-only file off), or None; None too when Redis does
    not answer yet: writes answer 503 until it does, as for any Redis outage."""
    redis = connect(settings.redis_url, timeout=settings.redis_timeout, pool_size=1)
    try:
        problem = await Store(redis, settings.key_prefix).wait_aof_problem()
    except (RedisError, OSError):
        return None
    finally:
        await redis.aclose()
    if problem is None:
        return None
    return (
        f"LIVEFEED_WAIT_AOF=1 needs WAITAOF (Redis >= 7.2, or Valkey) and appendonly yes on "
        f"the primary; {hide_password(settings.redis_url)} answered: {problem}"
    )


async def old_layout(settings: Settings) -> list[str]:
    """The feeds still under their names from before hash tags (``storage.layout``)."""
    redis = connect(settings.redis_url, timeout=settings.redis_timeout, pool_size=2)
    try:
        return await legacy_feeds(Store(redis, settings.key_prefix))
    finally:
        await redis.aclose()


async def demo_token(settings: Settings, name: str = DEMO_EDITOR, role: Role = Role.EDITOR) -> str:
    """The token of the demo's ``name`` (its editor, or its contributor), one for every
    ``--demo`` node on the same Redis: the first node keeps it in Redis (``Keys.demo_token``),
    the others take it from there. It is also kept in the data directory (so a restart with a
    fresh embedded Redis keeps it working) and registered like any named editor's, with
    ``role``, so ``livefeed check`` knows it."""
    contributor = role is Role.CONTRIBUTOR
    path = settings.data_dir / ("demo-contributor-token" if contributor else "demo-token")
    try:
        mine = path.read_text().strip()
    except OSError:
        mine = ""
    keys = Keys(settings.key_prefix)
    key = keys.demo_contributor_token if contributor else keys.demo_token
    redis = connect(settings.redis_url, timeout=settings.redis_timeout, pool_size=2)
    try:
        await redis.set(key, mine or "lf_demo_" + secrets.token_urlsafe(24), nx=True)
        shared = await redis.get(key)
        token = shared.decode() if isinstance(shared, bytes) else str(shared)
        await Tokens(redis, keys).register(name, token, role)
    finally:
        await redis.aclose()
    if token != mine:
        with contextlib.suppress(OSError):  # e.g. --redis-url with no data directory: one run
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(token + "\n")
    return token


def port_problem(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on, as one sentence with the fix; None if it can.

    Bound and released at once, with the options uvicorn binds with; something that takes the
    port in between still makes uvicorn fail, but that race is rare and uvicorn says so too.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"cannot listen on {host!r}: {exc.strerror}; pass --host with a local address"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return (
                    f"port {port} on {host} is already in use (another livefeed?): stop what "
                    f"uses it, or pass --port {port + 1 if port < 65535 else 8000}"
                )
            if exc.errno == errno.EACCES:
                return f"not allowed to listen on port {port}: pass --port 1024 or above"
            return f"cannot listen on {host}:{port} ({exc.strerror}): pass --host or --port"
    return None


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)
