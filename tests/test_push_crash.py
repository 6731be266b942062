"""Web push exactly once per subscription with the sender SIGKILLed mid-batch: two
``livefeed serve`` processes on one Redis share the feed's consumer group; the one sending is
killed while its requests are held at the push service, and the other claims the entry and
serves every subscription the first had not."""

from __future__ import annotations

import os

import httpx
import redis

from helpers import (
    PUSH_ENV,
    LivefeedServer,
    PushBrowser,
    PushService,
    RedisProcess,
    follow,
    make_feed,
    publish,
    wait_until,
)
from livefeed.newsroom.push import CONCURRENT_SENDS
from livefeed.storage.keys import Keys
from livefeed.storage.push import GROUP

SUBSCRIPTIONS = 40
TAKEN_BEFORE_KILL = 10


def test_every_subscription_gets_the_event_once_though_the_sender_is_killed(
    redis_server: RedisProcess, push_service: PushService
) -> None:
    """Each of 40 subscriptions receives a key event exactly once when the process sending it
    is SIGKILLed after 10 deliveries, with a full batch of sends in flight."""
    prefix = "push-crash-" + os.urandom(4).hex()
    env = {**PUSH_ENV, "LIVEFEED_PUSH_CLAIM_IDLE": "3"}
    servers = [LivefeedServer(redis_server.url, prefix, **env) for _ in range(2)]
    rdb = redis.Redis.from_url(redis_server.url)
    try:
        for server in servers:
            server.start()
        with httpx.Client(base_url=servers[0].base, timeout=10) as client:
            slug = make_feed(client)
            for n in range(SUBSCRIPTIONS):
                follow(client, slug, PushBrowser(push_service.url(f"/s/{n}")), "key_events")
            push_service.hold_after = TAKEN_BEFORE_KILL
            event = publish(client, slug, "Key", key_event=True)
        wait_until(lambda: push_service.held >= CONCURRENT_SENDS, 60, "the batch never filled")
        stream = Keys(prefix).stream(slug)
        consumers = [c for c in rdb.xinfo_consumers(stream, GROUP) if c["pending"]]
        assert len(consumers) == 1
        pid = int(consumers[0]["name"].decode().rsplit(":", 1)[1])
        sender = next(s for s in servers if s.proc is not None and s.proc.pid == pid)
        sender.kill()
        push_service.hold_after = None
        push_service.release.set()  # answered to a dead process: not delivered
        wait_until(
            lambda: len(push_service.messages) == SUBSCRIPTIONS,
            60,
            "not every subscription was served after the kill",
        )
        wait_until(lambda: rdb.xpending(stream, GROUP)["pending"] == 0, 30, "never acknowledged")
        counts = {path: len(got) for path, got in push_service.messages.items()}
        assert counts == {f"/s/{n}": 1 for n in range(SUBSCRIPTIONS)}
        delivered = rdb.scard(Keys(prefix).pushed(slug, event["id"]))
        assert delivered == SUBSCRIPTIONS
    finally:
        for server in servers:
            server.stop()
        rdb.close()
