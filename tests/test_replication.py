"""Writes that wait for replicas: with ``LIVEFEED_MIN_REPLICAS`` a 2xx means the replica has it.

A primary and a replica on free loopback ports; the replica is paused with SIGSTOP to stand for a
lagging or cut-off replica (or an old primary that came back with none), then resumed.
"""

from __future__ import annotations

import re
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from helpers import (
    LivefeedServer,
    RedisProcess,
    auth,
    image_bytes,
    livefeed,
    make_feed,
    stored_ids,
    wait_until,
)
from livefeed.storage.keys import Keys


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[RedisProcess, RedisProcess]]:
    primary = RedisProcess(tmp_path / "primary")
    replica = RedisProcess(tmp_path / "replica")
    primary.start()
    try:
        replica.start("--replicaof", "127.0.0.1", str(primary.port))
        try:
            wait_until(replica.in_sync, 20, "the replica did not sync")
            yield primary, replica
        finally:
            if replica.proc is not None:
                replica.proc.send_signal(signal.SIGCONT)
            replica.stop()
    finally:
        primary.stop()


@pytest.fixture
def waiting(pair: tuple[RedisProcess, RedisProcess], tmp_path: Path) -> Iterator[LivefeedServer]:
    server = LivefeedServer(
        pair[0].url, "lf-repl", LIVEFEED_MIN_REPLICAS="1", LIVEFEED_REPLICA_TIMEOUT="0.5"
    )
    server.start(log_dir=tmp_path)
    try:
        yield server
    finally:
        server.stop()


def on_replica(replica: RedisProcess, server: LivefeedServer, slug: str) -> list[str]:
    """The ids of the feed's stream as the replica holds them."""
    client = redis.Redis(port=replica.port, socket_timeout=5)
    try:
        entries = client.xrange(Keys(server.prefix).stream(slug)) or []
        return [raw.decode() for raw, _ in entries if isinstance(raw, bytes)]
    finally:
        client.close()


def test_a_publish_is_201_only_once_the_replica_has_it_and_503_while_it_cannot(
    pair: tuple[RedisProcess, RedisProcess], waiting: LivefeedServer
) -> None:
    """With one replica required: a publish the paused replica cannot confirm is 503
    ``not_replicated`` with Retry-After; its retry with the same Idempotency-Key once the
    replica is back is 201 with the one brief, which the replica holds."""
    _, replica = pair
    assert replica.proc is not None
    with httpx.Client(base_url=waiting.base, timeout=30) as client:
        slug = make_feed(client)
        wait_until(lambda: bool(on_replica(replica, waiting, slug) == []), 10, "no sync")
        replica.proc.send_signal(signal.SIGSTOP)
        key = {"Idempotency-Key": uuid.uuid4().hex, **auth()}
        refused = client.post(f"/api/feeds/{slug}/briefs", json={"headline": "Held"}, headers=key)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "not_replicated"
        assert int(refused.headers["retry-after"]) > 0
        replica.proc.send_signal(signal.SIGCONT)
        retried = client.post(f"/api/feeds/{slug}/briefs", json={"headline": "Held"}, headers=key)
        assert retried.status_code == 201, retried.text
        brief_id = retried.json()["id"]
        assert brief_id in on_replica(replica, waiting, slug), "201 before the replica had it"
        assert stored_ids(waiting.base, slug) == [brief_id], "the retry made a second brief"
        again = client.post(f"/api/feeds/{slug}/briefs", json={"headline": "Next"}, headers=auth())
        assert again.status_code == 201, again.text
        assert again.json()["id"] in on_replica(replica, waiting, slug)


def test_every_editor_write_waits_for_the_replica(
    pair: tuple[RedisProcess, RedisProcess], waiting: LivefeedServer
) -> None:
    """Feed creation, correction, retraction, the lead, the summary and an upload's record are
    503 while the replica cannot confirm them."""
    _, replica = pair
    assert replica.proc is not None
    with httpx.Client(base_url=waiting.base, timeout=30) as client:
        slug = make_feed(client)
        made = client.post(f"/api/feeds/{slug}/briefs", json={"headline": "One"}, headers=auth())
        assert made.status_code == 201, made.text
        brief = made.json()["id"]
        replica.proc.send_signal(signal.SIGSTOP)
        try:
            answers = [
                client.post(
                    "/api/feeds",
                    json={"slug": f"r-{uuid.uuid4().hex[:8]}", "title": "T", "timezone": "UTC"},
                    headers=auth(),
                ),
                client.patch(
                    f"/api/feeds/{slug}/briefs/{brief}", json={"headline": "Two"}, headers=auth()
                ),
                client.delete(f"/api/feeds/{slug}/briefs/{brief}", headers=auth()),
                client.put(f"/api/feeds/{slug}/lead", json={"headline": "L"}, headers=auth()),
                client.put(f"/api/feeds/{slug}/summary", json={"items": ["S"]}, headers=auth()),
                client.post("/api/media", content=image_bytes(64, 48), headers=auth()),
            ]
        finally:
            replica.proc.send_signal(signal.SIGCONT)
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"]["code"] == "not_replicated"


def test_without_min_replicas_a_standalone_redis_answers_at_once(
    pair: tuple[RedisProcess, RedisProcess], tmp_path: Path
) -> None:
    """The default on a redis:// URL waits for no replica: a paused replica delays nothing."""
    primary, replica = pair
    assert replica.proc is not None
    server = LivefeedServer(primary.url, "lf-repl0")
    server.start(log_dir=tmp_path)
    try:
        with httpx.Client(base_url=server.base, timeout=30) as client:
            slug = make_feed(client)
            replica.proc.send_signal(signal.SIGSTOP)
            made = client.post(f"/api/feeds/{slug}/briefs", json={"headline": "A"}, headers=auth())
            assert made.status_code == 201, made.text
    finally:
        replica.proc.send_signal(signal.SIGCONT)
        server.stop()


def test_check_says_what_a_failover_can_lose_with_and_without_waiting(
    pair: tuple[RedisProcess, RedisProcess],
) -> None:
    """``livefeed check`` on a primary with a replica: a warning while writes do not wait for
    it, an ok line saying no acknowledged brief is lost once LIVEFEED_MIN_REPLICAS=1."""
    primary, _ = pair
    env = {"LIVEFEED_EDITOR_TOKEN": "check-token-0123456789abcdef"}
    plain = livefeed("check", "--redis-url", primary.url, **env)
    assert re.search(
        r"^warn +replication +1 replica\(s\), but writes do not wait", plain.stdout, re.M
    )
    waiting = livefeed("check", "--redis-url", primary.url, LIVEFEED_MIN_REPLICAS="1", **env)
    assert re.search(
        r"^ok +replication +1 replica\(s\); every 2xx waits until 1 of them", waiting.stdout, re.M
    ), waiting.stdout
    too_many = livefeed("check", "--redis-url", primary.url, LIVEFEED_MIN_REPLICAS="2", **env)
    assert too_many.returncode == 1
    assert re.search(r"^error +replication +writes wait for 2 replica", too_many.stdout, re.M)


def test_an_import_waits_for_the_replica_and_says_so_when_it_cannot(
    pair: tuple[RedisProcess, RedisProcess], waiting: LivefeedServer, tmp_path: Path
) -> None:
    """``livefeed import`` with LIVEFEED_MIN_REPLICAS=1: exit 0 once the replica has every
    brief; with the replica paused, the import is written but exits 75 saying that a failover
    could lose it."""
    primary, replica = pair
    assert replica.proc is not None
    where = ("--redis-url", primary.url, "--key-prefix", waiting.prefix)
    env = {"LIVEFEED_MIN_REPLICAS": "1", "LIVEFEED_REPLICA_TIMEOUT": "0.5"}
    with httpx.Client(base_url=waiting.base, timeout=30) as client:
        source = make_feed(client)
        for n in range(3):
            made = client.post(
                f"/api/feeds/{source}/briefs", json={"headline": f"n{n}"}, headers=auth()
            )
            assert made.status_code == 201, made.text
    exported = livefeed("export", source, *where, **env)
    assert exported.returncode == 0, exported.stderr
    archive = tmp_path / "briefs.jsonl"
    archive.write_text(exported.stdout)
    for slug in ("copy", "held"):
        created = livefeed("feed", "create", slug, "--title", slug, "--timezone", "UTC", *where)
        assert created.returncode == 0, created.stderr
    copied = livefeed("import", "copy", str(archive), *where, **env)
    assert copied.returncode == 0, copied.stderr
    assert len(on_replica(replica, waiting, "copy")) == 3
    replica.proc.send_signal(signal.SIGSTOP)
    try:
        held = livefeed("import", "held", str(archive), *where, **env)
    finally:
        replica.proc.send_signal(signal.SIGCONT)
    assert held.returncode == 75, held.stderr
    assert "imported 3 briefs into held, but 0 of 1 replicas confirmed them" in held.stderr
