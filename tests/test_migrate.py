"""``livefeed migrate``: a deployment's feeds move from the key layout before hash tags to the
current one, idempotently; it is refused while a node serves, and ``serve`` refuses to start
on the old layout rather than show empty feeds."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from helpers import (
    ClusterSet,
    LivefeedServer,
    RedisProcess,
    auth,
    livefeed,
    make_feed,
    publish,
    stored_ids,
)
from livefeed.storage.keys import Keys, legacy_of_feed

EXIT_OLD_LAYOUT = os.EX_CONFIG


@pytest.fixture
def old_deployment(redis_server: RedisProcess, tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """A prefix holding two feeds with briefs, a key event and a pin, their keys renamed to the
    layout before hash tags, as a deployment of an earlier livefeed has them; and the feeds."""
    prefix = "mig-" + uuid.uuid4().hex[:8]
    server = LivefeedServer(redis_server.url, prefix)
    server.start(log_dir=tmp_path)
    try:
        with httpx.Client(base_url=server.base, timeout=10) as http:
            slugs = [make_feed(http) for _ in range(2)]
            for slug in slugs:
                first = publish(http, slug, "first", key_event=True)
                publish(http, slug, "second")
                pin = http.put(f"/api/feeds/{slug}/pin", json={"brief_id": first["id"]},
                               headers=auth())  # fmt: skip
                assert pin.status_code == 200, pin.text
    finally:
        server.stop()
    client = redis.Redis(port=redis_server.port)
    try:
        for slug in slugs:
            topics = (Keys(prefix).tag_index(slug), Keys(prefix).tags_of(slug))
            client.delete(*topics)  # an earlier livefeed kept no topic index
            pairs = zip(Keys(prefix).of_feed(slug), legacy_of_feed(prefix, slug), strict=True)
            for new, old in pairs:
                if new not in topics:
                    assert client.rename(new, old)
        client.delete(Keys(prefix).nodes)
    finally:
        client.close()
    yield prefix, slugs


def env(redis_server: RedisProcess, prefix: str) -> dict[str, str]:
    return {"LIVEFEED_REDIS_URL": redis_server.url, "LIVEFEED_KEY_PREFIX": prefix}


def test_serve_refuses_the_old_layout_naming_migrate(
    redis_server: RedisProcess, old_deployment: tuple[str, list[str]]
) -> None:
    """serve on a Redis with old-layout feeds exits 78 with a line naming livefeed migrate, and
    check reports the layout as the error to fix."""
    prefix, _ = old_deployment
    done = livefeed("serve", "--port", "1", **env(redis_server, prefix))
    assert done.returncode == EXIT_OLD_LAYOUT, done.stderr
    assert "livefeed migrate" in done.stderr and "2 feed(s)" in done.stderr
    check = livefeed("check", **env(redis_server, prefix), LIVEFEED_EDITOR_TOKEN="t" * 24)
    assert check.returncode == 1
    assert "layout" in check.stdout and "'livefeed migrate'" in check.stdout, check.stdout


def test_migrate_moves_every_key_and_the_feeds_read_as_before(
    redis_server: RedisProcess, old_deployment: tuple[str, list[str]], tmp_path: Path
) -> None:
    """After migrate no old name is left, serve starts, and each feed has its briefs, its key
    event and its pin; a second run moves nothing and changes nothing."""
    prefix, slugs = old_deployment
    done = livefeed("migrate", **env(redis_server, prefix))
    assert done.returncode == 0, done.stderr
    assert "2 feed(s), 18 key(s) moved" in done.stdout
    client = redis.Redis(port=redis_server.port)
    try:
        for slug in slugs:
            assert not client.exists(*legacy_of_feed(prefix, slug))
            # the nine keys moved, and the topic index migrate then built
            assert client.exists(*Keys(prefix).of_feed(slug)) == 10
        again = livefeed("migrate", **env(redis_server, prefix))
        assert again.returncode == 0 and "0 feed(s), 0 key(s) moved" in again.stdout
    finally:
        client.close()
    server = LivefeedServer(redis_server.url, prefix)
    server.start(log_dir=tmp_path)
    try:
        with httpx.Client(base_url=server.base, timeout=10) as http:
            for slug in slugs:
                briefs = http.get(f"/api/feeds/{slug}/briefs").json()["briefs"]
                assert [b["headline"] for b in briefs] == ["second", "first"]
                feed = http.get(f"/api/feeds/{slug}").json()
                assert feed["pinned"] == briefs[1]["id"]
                keys = http.get(f"/api/feeds/{slug}/key-events").json()
                assert [b["headline"] for b in keys["briefs"]] == ["first"]
    finally:
        server.stop()


def test_migrate_after_a_crash_midway_finishes_the_job(
    redis_server: RedisProcess, old_deployment: tuple[str, list[str]]
) -> None:
    """A feed half moved (some keys renamed, the record not yet) is still old, and migrate
    moves the rest of it."""
    prefix, slugs = old_deployment
    client = redis.Redis(port=redis_server.port)
    try:
        old, new = legacy_of_feed(prefix, slugs[0]), Keys(prefix).of_feed(slugs[0])
        for index in (1, 2, 3):  # events, briefs, days moved; then the "crash"
            client.rename(old[index], new[index])
        done = livefeed("migrate", **env(redis_server, prefix))
        assert done.returncode == 0, done.stderr
        assert "2 feed(s), 15 key(s) moved" in done.stdout
        assert client.exists(*new) == 10 and not client.exists(*old)  # with the topic index
    finally:
        client.close()


def test_migrate_is_refused_while_a_node_serves(redis_server: RedisProcess, tmp_path: Path) -> None:
    """A serving node's heartbeat makes migrate refuse (exit 1, nothing moved); once the node
    has stopped, migrate runs."""
    prefix = "mig-" + uuid.uuid4().hex[:8]
    server = LivefeedServer(redis_server.url, prefix)
    server.start(log_dir=tmp_path)
    try:
        done = livefeed("migrate", **env(redis_server, prefix))
        assert done.returncode == 1
        assert "refused" in done.stderr and "serve this Redis" in done.stderr
    finally:
        server.stop()
    done = livefeed("migrate", **env(redis_server, prefix))
    assert done.returncode == 0, done.stderr


def test_migrate_on_a_cluster_moves_keys_across_slots(
    redis_cluster: ClusterSet, tmp_path: Path
) -> None:
    """On a Redis Cluster, where old and new names are in different slots, migrate copies each
    key (DUMP/RESTORE) and deletes the old one; the feed then serves its briefs."""
    prefix = "migc-" + uuid.uuid4().hex[:8]
    server = LivefeedServer(redis_cluster.url, prefix)
    server.start(log_dir=tmp_path)
    try:
        with httpx.Client(base_url=server.base, timeout=10) as http:
            slug = make_feed(http)
            ids = [publish(http, slug, f"b{n}")["id"] for n in range(3)]
    finally:
        server.stop()
    client = redis_cluster.client()
    try:
        pairs = zip(Keys(prefix).of_feed(slug), legacy_of_feed(prefix, slug), strict=True)
        held = 0
        for new, old in pairs:  # as a deployment of an earlier livefeed would have them
            dumped = client.dump(new)
            if isinstance(dumped, bytes):
                client.restore(old, 0, dumped)
                client.delete(new)
                held += 1
        client.delete(Keys(prefix).nodes)
        cluster_env = {"LIVEFEED_REDIS_URL": redis_cluster.url, "LIVEFEED_KEY_PREFIX": prefix}
        done = livefeed("migrate", **cluster_env)
        assert done.returncode == 0, done.stderr
        assert f"1 feed(s), {held} key(s) moved" in done.stdout and held >= 7
        assert not any(client.exists(key) for key in legacy_of_feed(prefix, slug))
    finally:
        client.close()
    server.start(log_dir=tmp_path)
    try:
        assert stored_ids(server.base, slug) == ids
    finally:
        server.stop()
