"""``LIVEFEED_WAIT_AOF=1``: a 2xx only once the write is fsynced on the primary and the replicas.

WAITAOF needs Redis >= 7.2; Debian bookworm's redis-server is 7.0, so these tests run a Valkey 8
(``valkey-server`` from bookworm-backports, which ``.ci/run`` installs) or the server named by
``LIVEFEED_TEST_WAITAOF_SERVER``: a primary and a replica on free loopback ports, both with the
append-only file on. Skipped locally when neither is there; in CI its absence is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
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
    livefeed,
    make_feed,
    stored_ids,
    wait_until,
)
from livefeed.storage.keys import Keys
from livefeed.storage.redis_server import free_port

FAST_SYNC = ("--repl-diskless-sync-delay", "0")


def waitaof_server() -> str:
    """The binary of a Redis with WAITAOF, or a skip (a failure in CI) naming how to get one."""
    binary = os.environ.get("LIVEFEED_TEST_WAITAOF_SERVER") or shutil.which("valkey-server")
    if binary:
        return binary
    message = (
        "no Redis >= 7.2 for the WAITAOF tests: apt-get install -t bookworm-backports "
        "valkey-server, or set LIVEFEED_TEST_WAITAOF_SERVER"
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RedisProcess, RedisProcess]]:
    binary = waitaof_server()
    base = tmp_path_factory.mktemp("waitaof")
    primary = RedisProcess(base / "primary", binary)
    replica = RedisProcess(base / "replica", binary)
    primary.start(*FAST_SYNC)
    try:
        replica.start("--replicaof", "127.0.0.1", str(primary.port))
        try:
            wait_until(replica.in_sync, 30, "the replica did not sync")
            # After its first sync a replica rewrites its AOF; it confirms fsyncs once done.
            wait_until(lambda: fsynced_by_replicas(primary) == 1, 30, "the replica's AOF")
            yield primary, replica
        finally:
            if replica.proc is not None:
                replica.proc.send_signal(signal.SIGCONT)
            replica.stop()
    finally:
        primary.stop()


@pytest.fixture(scope="module")
def node(
    pair: tuple[RedisProcess, RedisProcess], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LivefeedServer]:
    server = LivefeedServer(
        pair[0].url,
        "lf-aof",
        LIVEFEED_MIN_REPLICAS="1",
        LIVEFEED_WAIT_AOF="1",
        LIVEFEED_REPLICA_TIMEOUT="3",
    )
    server.start(log_dir=tmp_path_factory.mktemp("waitaof-logs"))
    try:
        yield server
    finally:
        server.stop()


def fsynced_by_replicas(primary: RedisProcess) -> int:
    """How many replicas fsync a write to the primary within 2.5 s (WAITAOF; replicas
    report their fsyncs with the acknowledgement they send once a second)."""
    client = redis.Redis(port=primary.port, socket_timeout=5)
    try:
        with client.pipeline(transaction=False) as pipe:
            pipe.set("probe", "1")
            pipe.execute_command("WAITAOF", 0, 1, 2500)  # type: ignore[no-untyped-call]
            _, (_, replicas) = pipe.execute()
        return int(replicas)
    finally:
        client.close()


def on_replica(replica: RedisProcess, slug: str) -> list[str]:
    client = redis.Redis(port=replica.port, socket_timeout=5)
    try:
        entries = client.xrange(Keys("lf-aof").stream(slug)) or []
        return [raw.decode() for raw, _ in entries if isinstance(raw, bytes)]
    finally:
        client.close()


def set_replica_aof(replica: RedisProcess, on: bool) -> None:
    client = redis.Redis(port=replica.port, socket_timeout=5)
    try:
        client.config_set("appendonly", "yes" if on else "no")
    finally:
        client.close()


def test_a_publish_is_201_once_the_replica_fsynced_it_and_503_while_it_cannot(
    pair: tuple[RedisProcess, RedisProcess], node: LivefeedServer
) -> None:
    """With WAITAOF: a publish is 201 and on the replica; with the replica paused it is 503
    ``not_replicated`` saying it was not fsynced there, and its retry with the same
    Idempotency-Key once the replica is back is 201 with the one brief."""
    _, replica = pair
    assert replica.proc is not None
    with httpx.Client(base_url=node.base, timeout=30) as client:
        slug = make_feed(client)
        made = client.post(f"/api/feeds/{slug}/briefs", json={"headline": "One"}, headers=auth())
        assert made.status_code == 201, made.text
        assert made.json()["id"] in on_replica(replica, slug)
        key = {"Idempotency-Key": uuid.uuid4().hex, **auth()}
        replica.proc.send_signal(signal.SIGSTOP)
        try:
            held = client.post(f"/api/feeds/{slug}/briefs", json={"headline": "Two"}, headers=key)
        finally:
            replica.proc.send_signal(signal.SIGCONT)
        assert held.status_code == 503, held.text
        assert held.json()["error"]["code"] == "not_replicated"
        assert "fsynced on 0 of 1 replicas" in held.json()["error"]["message"]
        assert int(held.headers["retry-after"]) > 0
        retried = client.post(f"/api/feeds/{slug}/briefs", json={"headline": "Two"}, headers=key)
        assert retried.status_code == 201, retried.text
    assert stored_ids(node.base, slug) == [made.json()["id"], retried.json()["id"]]


def test_a_replica_without_an_append_only_file_never_confirms(
    pair: tuple[RedisProcess, RedisProcess], node: LivefeedServer
) -> None:
    """A replica in sync but with appendonly no counts for WAIT, not for WAITAOF: publishes
    are 503 and ``livefeed check`` says so as an error; with its AOF back, 201 and ok (and ok
    with no replica to wait for: the primary's own fsync)."""
    primary, replica = pair
    where = ("--redis-url", primary.url, "--key-prefix", "lf-aof")
    env = {
        "LIVEFEED_EDITOR_TOKEN": "check-token-0123456789abcdef",
        "LIVEFEED_MIN_REPLICAS": "1",
        "LIVEFEED_WAIT_AOF": "1",
        "LIVEFEED_REPLICA_TIMEOUT": "3",
    }
    with httpx.Client(base_url=node.base, timeout=30) as client:
        slug = make_feed(client)
        set_replica_aof(replica, False)
        try:
            assert replica.in_sync()
            refused = client.post(
                f"/api/feeds/{slug}/briefs", json={"headline": "No AOF"}, headers=auth()
            )
            check = livefeed("check", *where, **env)
        finally:
            set_replica_aof(replica, True)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "not_replicated"
        assert check.returncode == 1, check.stdout
        assert re.search(
            r"^error +waitaof .* but 0 do: a replica with appendonly no", check.stdout, re.M
        )
        wait_until(lambda: fsynced_by_replicas(primary) == 1, 30, "the replica's AOF")
        check = livefeed("check", *where, **env)
        assert re.search(r"^ok +waitaof +every 2xx waits until the write is in", check.stdout, re.M)
        made = client.post(f"/api/feeds/{slug}/briefs", json={"headline": "AOF"}, headers=auth())
        assert made.status_code == 201, made.text
    alone = livefeed("check", *where, **{**env, "LIVEFEED_MIN_REPLICAS": "0"})
    assert re.search(r"^ok +waitaof +.*primary's disk \(WAITAOF\), whatever", alone.stdout, re.M)


def _no_aof_valkey(base: Path) -> RedisProcess:
    server = RedisProcess(base, waitaof_server())
    server.start("--appendonly", "no")
    return server


def _old_redis(redis_server: RedisProcess) -> RedisProcess:
    client = redis.Redis(port=redis_server.port)
    try:
        version = str(client.info("server")["redis_version"])
    finally:
        client.close()
    if tuple(int(n) for n in version.split(".")[:2]) >= (7, 2):
        pytest.skip(f"the redis-server on PATH is {version}, which has WAITAOF")
    return redis_server


@pytest.mark.parametrize("which", ["redis 7.0", "no append-only file"])
def test_serve_refuses_wait_aof_where_redis_cannot_do_it(
    which: str, redis_server: RedisProcess, tmp_path: Path
) -> None:
    """``serve`` with LIVEFEED_WAIT_AOF=1 on a Redis without WAITAOF (before 7.2), or with its
    append-only file off, exits 64 with one line saying what it needs; ``check`` says so too."""
    server = _old_redis(redis_server) if which == "redis 7.0" else _no_aof_valkey(tmp_path)
    try:
        env = {"LIVEFEED_WAIT_AOF": "1", "LIVEFEED_EDITOR_TOKEN": "t" * 24}
        result = livefeed("serve", "--port", str(free_port()), "--redis-url", server.url, **env)
        assert result.returncode == 64, result.stderr
        assert "LIVEFEED_WAIT_AOF=1 needs WAITAOF (Redis >= 7.2, or Valkey)" in result.stderr
        assert "Traceback" not in result.stderr
        check = livefeed("check", "--redis-url", server.url, **env)
        assert re.search(r"^error +waitaof +LIVEFEED_WAIT_AOF=1, but", check.stdout, re.M)
    finally:
        if server is not redis_server:
            server.stop()
