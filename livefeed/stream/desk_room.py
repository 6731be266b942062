"""This process's desk: the hub of its desk streams, presence, and the desk sockets of each
feed, which presence changes (one pub/sub subscription per process) are handed to."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from redis.asyncio import Redis

from livefeed.model import desk
from livefeed.model.frames import Event
from livefeed.model.roles import Actor
from livefeed.newsroom import drafts
from livefeed.storage.cluster import REDIS_FAILURES
from livefeed.storage.presence import Presence
from livefeed.stream.hub import Hub, Subscriber

log = logging.getLogger("livefeed.stream.desk_room")


class DeskClient:
    """One desk socket as the room sees it: who it is, its hub queue, its own drafts' ids."""

    __slots__ = ("actor", "own", "sub")

    def __init__(self, actor: Actor, sub: Subscriber) -> None:
        self.actor = actor
        self.sub = sub
        self.own: set[str] = set()

    def sees_presence(self, item: str, editor: str) -> bool:
        if drafts.may_review(self.actor) or editor == self.actor.name:
            return True
        kind, _, ident = item.partition(":")
        return kind == "brief" or ident in self.own


class DeskRoom:
    """This process's desk: its hub, presence, and the sockets of each feed.

    ``run`` (a lifespan task) listens to the presence channel, handing each change to the
    feed's sockets here, and sweeps those feeds' lapsed presence every ``SWEEP_SECONDS``.
    """

    def __init__(self, hub: Hub, presence: Presence, redis: Redis, channel: str) -> None:
        self.hub = hub
        self.presence = presence
        self._redis = redis
        self._channel = channel
        self._clients: dict[str, set[DeskClient]] = {}

    def join(self, slug: str, client: DeskClient) -> None:
        self._clients.setdefault(slug, set()).add(client)

    def leave(self, slug: str, client: DeskClient) -> None:
        clients = self._clients.get(slug)
        if clients is not None:
            clients.discard(client)
            if not clients:
                del self._clients[slug]

    def deliver(self, message: dict[str, Any]) -> None:
        """A presence change from the channel, to each socket of its feed allowed to see it."""
        slug, item, editor = message.get("feed"), message.get("item"), message.get("editor")
        if not isinstance(slug, str) or not isinstance(item, str) or not isinstance(editor, str):
            return
        message = {k: v for k, v in message.items() if k != "feed"}
        event = Event.of(None, str(message.get("type")), orjson.dumps(message).decode())
        for client in list(self._clients.get(slug, ())):
            if client.sees_presence(item, editor):
                client.sub.push([event])

    async def run(self) -> None:
        """Listen and sweep until cancelled, through every Redis error (retried, backoff)."""
        delay = 0.1
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                delay = 0.1
                loop = asyncio.get_running_loop()
                swept = loop.time()
                while True:
                    message = await pubsub.get_message(timeout=desk.SWEEP_SECONDS)
                    if message is not None and message.get("type") == "message":
                        with contextlib.suppress(orjson.JSONDecodeError, AttributeError):
                            self.deliver(orjson.loads(message["data"]))
                    if loop.time() - swept >= desk.SWEEP_SECONDS:
                        swept = loop.time()
                        for slug in list(self._clients):
                            await self.presence.sweep(slug)
            except REDIS_FAILURES as exc:
                log.warning("desk presence: %s: %s; retrying", type(exc).__name__, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
