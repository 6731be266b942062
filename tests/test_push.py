"""Web push: following a feed, the sender against a push service the suite serves on loopback
(each message decrypted with the subscription's keys the test holds, RFC 8291, and its VAPID
token checked against the deployment's key, RFC 8292), who is notified of what, and refusals."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from helpers import (
    PUSH_ENV,
    ClusterSet,
    LivefeedServer,
    PushBrowser,
    PushService,
    RedisProcess,
    auth,
    follow,
    make_feed,
    publish,
    unb64,
    wait_until,
)
from livefeed.storage.keys import Keys


@pytest.fixture
def client(push_server: LivefeedServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=push_server.base, timeout=10) as c:
        yield c


def check_vapid(headers: dict[str, str], public_key: str, audience: str) -> None:
    """The Authorization header is ``vapid t=<ES256 JWT>,k=<key>`` signed by ``public_key``."""
    scheme, _, params = headers["Authorization"].partition(" ")
    assert scheme == "vapid"
    values = dict(p.split("=", 1) for p in params.split(","))
    assert values["k"] == public_key
    head, claims, signature = values["t"].split(".")
    raw = unb64(signature)
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64(public_key))
    der = encode_dss_signature(int.from_bytes(raw[:32]), int.from_bytes(raw[32:]))
    try:
        key.verify(der, f"{head}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        pytest.fail("the VAPID token's signature is not the deployment key's")
    assert json.loads(unb64(head))["alg"] == "ES256"
    body = json.loads(unb64(claims))
    assert body["aud"] == audience
    assert time.time() < body["exp"] <= time.time() + 24 * 3600
    assert body["sub"] == "mailto:desk@example.org"


def test_followers_get_what_their_mode_says_decrypted_and_signed(
    client: httpx.Client, push_service: PushService
) -> None:
    """An update reaches "all" followers only; a key event and a breaking alert (notify) every
    follower; each message decrypts with the subscription's keys and carries a valid VAPID
    token, the event id as tag and Topic, the permalink, TTL and Urgency."""
    slug = make_feed(client)
    keyed, every = (
        PushBrowser(push_service.url(f"/k/{slug}")),
        PushBrowser(push_service.url(f"/a/{slug}")),
    )
    follow(client, slug, keyed, "key_events")
    follow(client, slug, every, "all")
    update = publish(client, slug, "Traffic update", body="<p>Roads <b>are</b> clear.</p>")
    key = publish(client, slug, "Key moment", key_event=True)
    alert = publish(client, slug, "Breaking", notify=True)
    wait_until(lambda: len(push_service.got(f"/a/{slug}")) == 3, 30, "all-follower not served")
    wait_until(lambda: len(push_service.got(f"/k/{slug}")) == 2, 30, "key follower not served")
    public_key = client.get("/api/push/key").json()["key"]
    audience = push_service.url("")
    got = [every.decrypt(body) for _, body in push_service.got(f"/a/{slug}")]
    assert [m["tag"] for m in got] == [update["id"], key["id"], alert["id"]]
    assert got[0] == {
        "title": "Traffic update",
        "body": "Roads are clear.",
        "tag": update["id"],
        "url": f"/feeds/{slug}#{update['id']}",
        "feed": slug,
        "breaking": False,
    }
    assert got[2]["breaking"] is True
    keyed_got = push_service.got(f"/k/{slug}")
    assert [keyed.decrypt(b)["tag"] for _, b in keyed_got] == [key["id"], alert["id"]]
    for headers, _ in push_service.got(f"/a/{slug}") + keyed_got:
        check_vapid(headers, public_key, audience)
        assert headers["Content-Encoding"] == "aes128gcm"
        assert headers["TTL"] == "3600"
    tokens = {h["Authorization"] for h, _ in push_service.got(f"/a/{slug}") + keyed_got}
    assert len(tokens) == 1, "a VAPID token is signed once per push service and reused"
    urgencies = [h["Urgency"] for h, _ in keyed_got]
    assert urgencies == ["normal", "high"]
    assert keyed_got[0][0]["Topic"] == key["id"].replace("-", "_")


def test_a_correction_that_makes_a_key_event_notifies_key_followers(
    client: httpx.Client, push_service: PushService
) -> None:
    """A correction marking a brief as a key event notifies key-event followers, once: a
    further correction of it does not."""
    slug = make_feed(client)
    keyed = PushBrowser(push_service.url(f"/c/{slug}"))
    follow(client, slug, keyed, "key_events")
    brief = publish(client, slug, "Quiet start")
    patched = client.patch(
        f"/api/feeds/{slug}/briefs/{brief['id']}", json={"key_event": True}, headers=auth()
    )
    assert patched.status_code == 200, patched.text
    wait_until(lambda: len(push_service.got(f"/c/{slug}")) == 1, 30, "correction not pushed")
    again = client.patch(
        f"/api/feeds/{slug}/briefs/{brief['id']}",
        json={"headline": "Quiet start, then not"},
        headers=auth(),
    )
    assert again.status_code == 200, again.text
    marker = publish(client, slug, "Marker", key_event=True)
    wait_until(lambda: len(push_service.got(f"/c/{slug}")) == 2, 30, "marker not pushed")
    tags = [keyed.decrypt(b)["tag"] for _, b in push_service.got(f"/c/{slug}")]
    assert tags[1] == marker["id"]


def test_an_endpoint_answering_410_is_removed(
    client: httpx.Client,
    push_service: PushService,
    push_server: LivefeedServer,
    redis_server: RedisProcess,
) -> None:
    """A subscription whose push service answers 410 is deleted and counted as removed."""
    slug = make_feed(client)
    gone = PushBrowser(push_service.url(f"/gone/{slug}"))
    follow(client, slug, gone, "key_events")
    rdb = redis.Redis.from_url(redis_server.url)
    try:
        key = Keys(push_server.prefix).push(slug)
        assert rdb.hlen(key) == 1
        publish(client, slug, "Key", key_event=True)
        wait_until(lambda: rdb.hlen(key) == 0, 30, "the gone subscription was not removed")
    finally:
        rdb.close()
    metrics = dict(
        line.rsplit(" ", 1)
        for line in client.get("/metrics").text.splitlines()
        if line.startswith("livefeed_push_")
    )
    assert float(metrics["livefeed_push_removed_total"]) >= 1


def test_unfollowing_by_id_stops_messages(client: httpx.Client, push_service: PushService) -> None:
    """DELETE with the id the POST gave removes the subscription (204, then 404)."""
    slug = make_feed(client)
    browser = PushBrowser(push_service.url(f"/u/{slug}"))
    sid = follow(client, slug, browser, "all")
    assert client.delete(f"/api/feeds/{slug}/push-subscriptions/{sid}").status_code == 204
    again = client.delete(f"/api/feeds/{slug}/push-subscriptions/{sid}")
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "subscription_not_found"
    publish(client, slug, "Nobody hears", key_event=True)
    witness = PushBrowser(push_service.url(f"/w/{slug}"))
    follow(client, slug, witness, "all")
    publish(client, slug, "Witness", key_event=True)
    wait_until(lambda: push_service.got(f"/w/{slug}"), 30, "witness not served")
    assert push_service.got(f"/u/{slug}") == []


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        (lambda b: b, 422, "invalid_field"),  # a host LIVEFEED_PUSH_HOSTS does not name
        (lambda b: {**b, "endpoint": "http://push.example.org/x"}, 422, "invalid_field"),
        (lambda b: {**b, "endpoint": "https://user:pw@push.example.org/x"}, 422, "invalid_field"),
        (lambda b: {**b, "endpoint": "https://p.example.org/" + "x" * 1100}, 422, "too_long"),
        (lambda b: {**b, "keys": {**b["keys"], "auth": "AAAA"}}, 422, "too_long"),
        (lambda b: {**b, "keys": {**b["keys"], "p256dh": "B" * 87}}, 422, "invalid_field"),
        (lambda b: {**b, "mode": "sometimes"}, 422, "invalid_type"),
        (lambda b: {"endpoint": b["endpoint"]}, 422, "missing_field"),
        (lambda b: [b], 400, "invalid_json"),
    ],
    ids=[
        "other-host",
        "http",
        "userinfo",
        "long-endpoint",
        "short-auth",
        "not-a-point",
        "mode",
        "no-keys",
        "array",
    ],
)
def test_bad_subscriptions_are_refused_and_change_nothing(
    client: httpx.Client,
    push_server: LivefeedServer,
    redis_server: RedisProcess,
    change: Any,
    status: int,
    code: str,
) -> None:
    """A subscription body that is not valid answers a 4xx JSON error and stores nothing."""
    slug = make_feed(client)
    body = change(PushBrowser("https://push.example.org/send/abc").json("all"))
    answer = client.post(f"/api/feeds/{slug}/push-subscriptions", json=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code
    rdb = redis.Redis.from_url(redis_server.url)
    try:
        assert rdb.exists(Keys(push_server.prefix).push(slug)) == 0
    finally:
        rdb.close()


def test_a_subscription_to_an_unknown_feed_is_404(client: httpx.Client) -> None:
    """Following a feed that does not exist answers 404 feed_not_found."""
    answer = client.post(
        "/api/feeds/no-such-feed/push-subscriptions",
        json=PushBrowser("http://127.0.0.1:9/s").json("all"),
    )
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "feed_not_found"


def test_the_vapid_key_is_one_for_every_node(
    push_server: LivefeedServer, redis_server: RedisProcess
) -> None:
    """A second node on the same Redis and prefix gives the same applicationServerKey."""
    other = LivefeedServer(redis_server.url, push_server.prefix, **PUSH_ENV)
    other.start()
    try:
        mine = httpx.get(push_server.base + "/api/push/key").json()["key"]
        theirs = httpx.get(other.base + "/api/push/key").json()["key"]
    finally:
        other.stop()
    assert mine == theirs
    assert len(unb64(mine)) == 65 and unb64(mine)[0] == 4


def test_the_service_worker_is_served_at_the_root(client: httpx.Client) -> None:
    """/sw.js is JavaScript from the site's root with the pages' CSP, revalidated each time."""
    answer = client.get("/sw.js")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/javascript")
    assert answer.headers["cache-control"] == "no-cache"
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    assert "notificationclick" in answer.text


def test_a_key_event_reaches_its_follower_on_a_redis_cluster(
    redis_cluster: ClusterSet, push_service: PushService
) -> None:
    """On a Redis Cluster the group on the feed's stream (its hash slot) serves a follower."""
    server = LivefeedServer(redis_cluster.url, "push-c-" + os.urandom(4).hex(), **PUSH_ENV)
    server.start()
    try:
        with httpx.Client(base_url=server.base, timeout=10) as client:
            slug = make_feed(client)
            browser = PushBrowser(push_service.url(f"/cluster/{slug}"))
            follow(client, slug, browser, "key_events")
            brief = publish(client, slug, "Key on a cluster", key_event=True)
            wait_until(lambda: push_service.got(f"/cluster/{slug}"), 30, "nothing on a cluster")
        ((_, body),) = push_service.got(f"/cluster/{slug}")
        assert browser.decrypt(body)["tag"] == brief["id"]
    finally:
        server.stop()
