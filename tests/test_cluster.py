"""livefeed on a Redis Cluster (three primaries, a replica each, on loopback): the URL, a feed's
primary SIGKILLed mid-run with writes waiting for a replica, and a feed's slot resharded while
editors publish. The stream, newsroom, import and archive tests marked ON_BOTH (or CLUSTER_TOO)
run on the session's cluster too."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from redis.crc import key_slot

from helpers import (
    ClusterSet,
    Follower,
    LivefeedServer,
    auth,
    differences,
    image_bytes,
    livefeed,
    make_feed,
    publish,
    stored_ids,
    upload,
    wait_for,
)
from livefeed.storage.keys import Keys

PUBLISHERS = 6
EACH = 30


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[ClusterSet]:
    """A cluster of this test's own, free to lose a node."""
    cluster = ClusterSet(tmp_path / "cluster")
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def own_node(own_cluster: ClusterSet, tmp_path: Path) -> Iterator[LivefeedServer]:
    node = LivefeedServer(own_cluster.url, "fo-" + uuid.uuid4().hex[:8])
    node.start(log_dir=tmp_path)
    try:
        yield node
    finally:
        node.stop()


def test_a_cluster_url_that_cannot_be_parsed_stops_serve_with_a_clear_line() -> None:
    """``serve`` with a cluster URL whose address has no port exits 64 with one line."""
    result = livefeed("serve", "--port", "0", "--redis-url", "redis+cluster://127.0.0.1/")
    assert result.returncode == 64, result.stderr
    assert "is not host:port" in result.stderr and "redis+cluster://host1:7000" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_reports_the_layout_and_the_cluster_state(
    redis_cluster: ClusterSet, cluster_server: LivefeedServer
) -> None:
    """``livefeed check`` on a cluster names its state, its shards and their replicas, and the
    key layout (of more feeds than it has connections per node); writes wait for one replica
    there by default."""
    with httpx.Client(base_url=cluster_server.base, timeout=10) as client:
        for _ in range(24):
            make_feed(client)
    done = livefeed(
        "check", "--redis-url", redis_cluster.url, "--key-prefix", cluster_server.prefix,
        LIVEFEED_EDITOR_TOKEN="t" * 24,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "cluster_state ok, 3 primaries, each with 1 replica" in done.stdout, done.stdout
    assert "every 2xx waits until 1 of them" in done.stdout, done.stdout
    assert "each feed's keys in one slot" in done.stdout, done.stdout


def test_a_key_prefix_with_a_brace_stops_serve_with_a_clear_line() -> None:
    """A brace in the prefix would make it every key's hash tag (one shard for all): exit 64."""
    result = livefeed("serve", "--port", "0", "--key-prefix", "news{1}")
    assert result.returncode == 64, result.stderr
    assert "may not hold { or }" in result.stderr and "Traceback" not in result.stderr


async def publish_all(
    base: str, slug: str, name: str, acknowledged: list[str], refused: list[httpx.Response]
) -> None:
    """EACH briefs, each retried with its Idempotency-Key until it is 201 (90 s at most)."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        for n in range(EACH):
            key = f"{name}-{n}"
            deadline = time.monotonic() + 90
            while True:
                response = await client.post(
                    f"/api/feeds/{slug}/briefs",
                    json={"headline": key},
                    headers={**auth(), "Idempotency-Key": key},
                )
                if response.status_code == 201:
                    acknowledged.append(response.json()["id"])
                    break
                refused.append(response)
                assert time.monotonic() < deadline, f"{key} never got its 201"
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.01)


def check_refusals(refused: list[httpx.Response]) -> None:
    for response in refused:
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] in {"unavailable", "not_replicated"}
        assert int(response.headers["retry-after"]) > 0


async def test_a_feed_primary_sigkilled_mid_run_loses_no_acknowledged_brief(
    own_cluster: ClusterSet, own_node: LivefeedServer
) -> None:
    """SIGKILL the primary of a feed's slot under six publishers and three readers, then start
    it again (it rejoins as its replica's replica): every answer is 201 or 503 with Retry-After,
    every 201 is in the stream once (retries with the Idempotency-Key), and each reader ends
    with exactly the stream's briefs, in order."""
    with httpx.Client(base_url=own_node.base, timeout=10) as client:
        slug = make_feed(client)
        first = publish(client, slug, "start")["id"]
    stream_key = Keys(own_node.prefix).stream(slug)
    readers = [Follower(own_node.ws_base, slug, first, lambda: None) for _ in range(3)]
    acknowledged: list[str] = []
    refused: list[httpx.Response] = []
    try:
        await wait_for(lambda: all(r.live.is_set() for r in readers), 30, "readers not live")
        publishing = [
            asyncio.create_task(publish_all(own_node.base, slug, f"p{p}", acknowledged, refused))
            for p in range(PUBLISHERS)
        ]
        try:
            await wait_for(lambda: len(acknowledged) >= 40, 60, "no publishes")
            victim = own_cluster.primary_of(stream_key)
            victim.stop(signal.SIGKILL)
            await wait_for(
                lambda: own_cluster.primary_of(stream_key).port != victim.port,
                60,
                "the replica was not promoted",
            )
            # The promoted replica has no replica of its own: writes to the slot wait (503)
            # until the old primary, started again, has become its replica.
            await asyncio.to_thread(own_cluster.start_node, victim)
        finally:
            results = await asyncio.gather(*publishing, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        check_refusals(refused)
        stored = await asyncio.to_thread(stored_ids, own_node.base, slug)
        lost = set(acknowledged) - set(stored)
        assert not lost, f"{len(lost)} acknowledged briefs lost in the failover"
        assert len(stored) == 1 + PUBLISHERS * EACH, "one brief per Idempotency-Key"
        for reader in readers:
            await wait_for(lambda r=reader: r.since == stored[-1], 60, "a reader fell behind")  # type: ignore[misc]
            assert reader.ids == stored[1:], differences(reader.ids, stored[1:])
    finally:
        for reader in readers:
            await reader.stop()
    assert "Traceback" not in own_node.log()


async def test_a_cluster_that_is_down_answers_503_with_retry_after_never_500(
    own_cluster: ClusterSet, own_node: LivefeedServer
) -> None:
    """With one shard's primary and replica both stopped the cluster is down (CLUSTERDOWN from
    every node, the feed's too): a publish and a read answer 503 with Retry-After, no 500;
    once the shard is back, publishing works again."""
    with httpx.Client(base_url=own_node.base, timeout=30) as client:
        slug = make_feed(client)
        publish(client, slug, "before")
        home = own_cluster.primary_of(Keys(own_node.prefix).stream(slug))
        other, replicas = next((p, r) for p, r in own_cluster.shards().items() if p != home.port)
        stopped = [n for n in own_cluster.nodes if n.port in (other, *replicas)]
        try:
            for node in stopped:
                assert node.proc is not None
                node.proc.send_signal(signal.SIGSTOP)
            await wait_for(lambda: cluster_state(home.port) == "fail", 30, "the cluster stayed up")
            for response in (
                client.post(f"/api/feeds/{slug}/briefs", json={"headline": "down"}, headers=auth()),
                client.get(f"/api/feeds/{slug}/briefs"),
            ):
                assert response.status_code == 503, response.text
                assert response.json()["error"]["code"] == "unavailable"
                assert int(response.headers["retry-after"]) > 0
        finally:
            for node in stopped:
                assert node.proc is not None
                node.proc.send_signal(signal.SIGCONT)
        await wait_for(lambda: cluster_state(home.port) == "ok", 30, "the cluster did not recover")
        await wait_for(
            lambda: (
                client.post(
                    f"/api/feeds/{slug}/briefs", json={"headline": "back"}, headers=auth()
                ).status_code
                == 201
            ),
            30,
            "publishing did not come back",
        )
    assert "Traceback" not in own_node.log()


def cluster_state(port: int) -> str:
    with redis.Redis(port=port, socket_timeout=2) as node:
        return str(node.cluster("info").get("cluster_state"))


async def test_readers_of_many_feeds_on_one_node_each_get_their_own_briefs(
    cluster_server: LivefeedServer,
) -> None:
    """Twelve feeds (in as many slots, on every shard) followed by one node: briefs published
    to them in turn reach each feed's reader, exactly its own, in order; a reader that leaves
    and one that joins meanwhile change nothing for the others."""
    with httpx.Client(base_url=cluster_server.base, timeout=10) as client:
        slugs = [make_feed(client) for _ in range(12)]
        firsts = [publish(client, slug, "start")["id"] for slug in slugs]
        readers = [
            Follower(cluster_server.ws_base, slug, first, lambda: None)
            for slug, first in zip(slugs, firsts, strict=True)
        ]
        try:
            await wait_for(lambda: all(r.live.is_set() for r in readers), 30, "readers not live")
            expected: dict[str, list[str]] = {slug: [] for slug in slugs}
            for round_ in range(3):
                for slug in slugs:
                    brief = await asyncio.to_thread(publish, client, slug, f"{slug} {round_}")
                    expected[slug].append(brief["id"])
                if round_ == 1:  # one leaves, another joins its feed from the start
                    await readers[0].stop()
                    readers[0] = Follower(cluster_server.ws_base, slugs[0], firsts[0], lambda: None)
            for reader, slug in zip(readers, slugs, strict=True):
                await wait_for(lambda r=reader, s=slug: r.ids[-1:] == expected[s][-1:], 30,  # type: ignore[misc]
                               f"the reader of {slug} fell behind")  # fmt: skip
                assert reader.ids == expected[slug], differences(reader.ids, expected[slug])
        finally:
            for reader in readers:
                await reader.stop()


def move_slot(slot: int, source: int, target: int) -> None:
    """Move ``slot`` from the primary on port ``source`` to the one on ``target`` as
    ``redis-cli --cluster reshard`` does (importing/migrating, MIGRATE ten keys at a time, then
    assign), pausing between batches so that writes meet the slot half moved."""
    with (
        redis.Redis(port=source, socket_timeout=10) as src,
        redis.Redis(port=target, socket_timeout=10) as dst,
    ):
        src_id = src.execute_command("CLUSTER", "MYID")
        dst_id = dst.execute_command("CLUSTER", "MYID")
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
        while keys := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 10):
            src.execute_command("MIGRATE", "127.0.0.1", target, "", 0, 5000, "KEYS", *keys)
            time.sleep(0.25)  # let publishes meet the slot half moved (ASK, TRYAGAIN)
        for port in (target, source):
            with redis.Redis(port=port, socket_timeout=10) as node:
                node.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)


async def test_a_feed_slot_resharded_while_publishing_has_no_5xx_and_no_loss(
    redis_cluster: ClusterSet, cluster_server: LivefeedServer
) -> None:
    """Move a feed's slot to another primary, ten keys at a time, under three publishers and a
    reader: no answer is a 5xx (writes wait out the half-moved slot), every 201 is in the
    stream once, and the reader ends with exactly the stream's briefs."""
    with httpx.Client(base_url=cluster_server.base, timeout=10) as client:
        slug = make_feed(client)
        first = publish(client, slug, "start")["id"]
        for n in range(20):  # keys with something in them to move
            publish(client, slug, f"before {n}", key_event=n % 3 == 0)
    stream_key = Keys(cluster_server.prefix).stream(slug)
    slot = redis.crc.key_slot(stream_key.encode())
    source = redis_cluster.primary_of(stream_key).port
    target = next(port for port in redis_cluster.shards() if port != source)
    reader = Follower(cluster_server.ws_base, slug, first, lambda: None)
    acknowledged: list[str] = []
    refused: list[httpx.Response] = []
    try:
        await wait_for(lambda: reader.live.is_set(), 30, "the reader did not join")
        publishing = [
            asyncio.create_task(
                publish_all(cluster_server.base, slug, f"r{p}", acknowledged, refused)
            )
            for p in range(3)
        ]
        try:
            await wait_for(lambda: len(acknowledged) >= 10, 60, "no publishes")
            await asyncio.to_thread(move_slot, slot, source, target)
        finally:
            results = await asyncio.gather(*publishing, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        assert not refused, [response.text for response in refused[:3]]
        assert redis_cluster.primary_of(stream_key).port == target
        stored = await asyncio.to_thread(stored_ids, cluster_server.base, slug)
        assert not set(acknowledged) - set(stored), "acknowledged briefs lost in the move"
        assert len(stored) == 21 + 3 * EACH, "one brief per Idempotency-Key"
        await wait_for(lambda: reader.since == stored[-1], 60, "the reader fell behind")
        assert reader.ids == stored[1:], differences(reader.ids, stored[1:])
    finally:
        await reader.stop()
    assert "Traceback" not in cluster_server.log()


def test_media_and_the_story_so_far_work_on_a_cluster(cluster_server: LivefeedServer) -> None:
    """A brief naming uploads whose records sit in different slots publishes (their records are
    read one key each, never by a cross-slot MGET), and the lead and summary, kept in the
    feed's slot, are set through the feed's primary."""
    with httpx.Client(base_url=cluster_server.base, timeout=30) as http:
        slug = make_feed(http)
        photos = [upload(http, image_bytes(400 + 40 * n, 300)) for n in range(4)]
        slots = {key_slot(Keys(cluster_server.prefix).media(p["id"]).encode())
                 for p in photos}  # fmt: skip
        assert len(slots) > 1, "the uploads' records all hash to one slot: pick other sizes"
        media = [{"id": p["id"], "alt": f"Picture {n}"} for n, p in enumerate(photos)]
        brief = publish(http, slug, "Pictures", media=media, gallery=True)
        assert [m["id"] for m in brief["media"]] == [p["id"] for p in photos]
        lead = http.put(f"/api/feeds/{slug}/lead", json={"headline": "The lead"}, headers=auth())
        assert lead.status_code == 200, lead.text
        summary = http.put(
            f"/api/feeds/{slug}/summary", json={"items": ["One point"]}, headers=auth()
        )
        assert summary.status_code == 200, summary.text
        assert http.get(f"/api/feeds/{slug}/lead").json()["lead"]["headline"] == "The lead"


def test_token_roles_are_managed_on_a_cluster(cluster_server: LivefeedServer) -> None:
    """A token made, promoted and revoked through /api/tokens works on a cluster: the role is
    changed by one script on the tokens hash's own slot."""
    name = "Cluster reporter " + uuid.uuid4().hex[:6]
    with httpx.Client(base_url=cluster_server.base, timeout=30) as http:
        slug = make_feed(http)
        made = http.post("/api/tokens", json={"name": name, "role": "contributor"}, headers=auth())
        assert made.status_code == 201, made.text
        own = {"Authorization": f"Bearer {made.json()['token']}"}
        brief = {"headline": "From the field", "body": "Text"}
        refused = http.post(f"/api/feeds/{slug}/briefs", json=brief, headers=own)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "forbidden_role"
        promoted = http.patch(f"/api/tokens/{name}", json={"role": "editor"}, headers=auth())
        assert promoted.status_code == 200, promoted.text
        assert http.post(f"/api/feeds/{slug}/briefs", json=brief, headers=own).status_code == 201
        assert http.delete(f"/api/tokens/{name}", headers=auth()).status_code == 204
        assert http.get("/api/me", headers=own).status_code == 401
