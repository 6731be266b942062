"""What every command shares: settings from flags and environment, and a store on the right
Redis (the configured one, the one a running ``serve`` owns, or a temporary embedded one)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable, Iterator

from redis.exceptions import RedisError

from livefeed.config import Settings
from livefeed.errors import LivefeedError, NotFound
from livefeed.storage.connect import connect, replicas_to_wait_for
from livefeed.storage.redis_server import EmbeddedRedis, EmbeddedRedisError, owner_url
from livefeed.storage.store import Store


def settings_from(args: argparse.Namespace) -> Settings:
    keys = ["host", "port", "redis_url", "data_dir", "key_prefix", "demo", "log_level", "workers"]
    keys += ["log_format", "forwarded_allow_ips", "media_dir"]
    return Settings.from_env(**{k: getattr(args, k, None) for k in keys})


@contextlib.contextmanager
def redis_url(settings: Settings) -> Iterator[str]:
    """The configured Redis, the running embedded one, or a temporary embedded one."""
    if settings.redis_url:
        yield settings.redis_url
        return
    running = owner_url(settings.data_dir.resolve())
    if running:
        yield running
        return
    embedded = EmbeddedRedis(settings.data_dir)
    try:
        yield embedded.start()
    finally:
        embedded.stop()


def which_redis(settings: Settings) -> str:
    """Which Redis a command used, in words, for when it did not find what was asked for."""
    if settings.redis_url:
        return f"the Redis at {settings.redis_url}"
    data_dir = settings.data_dir.resolve()
    if owner_url(data_dir):
        return f"the embedded Redis of the livefeed serving {data_dir}"
    return f"the embedded Redis in {data_dir} (no livefeed is serving it now)"


def with_store(args: argparse.Namespace, action: Callable[[Store], Awaitable[int]]) -> int:
    settings = settings_from(args)

    async def run(url: str) -> int:
        redis = connect(url, timeout=settings.redis_timeout, pool_size=8)
        try:
            store = Store(redis, settings.key_prefix)
            store.replicas = await replicas_to_wait_for(redis, url, settings.min_replicas)
            store.replica_timeout_ms = int(settings.replica_timeout * 1000)
            store.wait_aof = settings.wait_aof
            return await action(store)
        finally:
            await redis.aclose()

    where = which_redis(settings)  # before a temporary embedded Redis takes the data directory
    try:
        with redis_url(settings) as url:
            return asyncio.run(run(url))
    except NotFound as exc:
        print(f"livefeed: {exc.message} in {where}", file=sys.stderr)
        return 1
    except LivefeedError as exc:
        print(f"livefeed: {exc.message}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        raise
    except (EmbeddedRedisError, RedisError, OSError) as exc:
        print(f"livefeed: cannot reach Redis: {exc}", file=sys.stderr)
        return 1
