"""Several nodes on one Redis: what was per process is shared (the demo's token and poster).

Each test starts its own nodes on free loopback ports and stops them by PID.
"""

from __future__ import annotations

import re
import signal
import uuid
from pathlib import Path

import httpx
import redis

from helpers import LivefeedServer, RedisProcess, auth, wait_until


def demo_token_of(node: LivefeedServer) -> str:
    found = re.search(r"demo editor token: (\S+)", node.log())
    assert found, node.log()
    return found.group(1)


def demo_last_event(node: LivefeedServer) -> str | None:
    """The demo feed's last event id, None before it exists."""
    response = httpx.get(f"{node.base}/api/feeds/demo", timeout=10)
    return str(response.json()["last_event_id"]) if response.status_code == 200 else None


def test_demo_nodes_share_one_token_and_one_poster_that_another_replaces_when_it_dies(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    """Two ``--demo`` nodes on one Redis print the same token, which both accept; when the
    node holding the poster's lease is SIGKILLed, the other posts within seconds."""
    prefix = "demo-" + uuid.uuid4().hex[:6]
    options = {"LIVEFEED_EDITOR_TOKEN": "", "LIVEFEED_DEMO_INTERVAL": "1"}
    nodes = [LivefeedServer(redis_server.url, prefix, **options) for _ in range(2)]
    admin = redis.Redis.from_url(redis_server.url, socket_timeout=5)
    try:
        for node in nodes:
            node.start("--demo", log_dir=tmp_path)
        tokens = {demo_token_of(node) for node in nodes}
        assert len(tokens) == 1, tokens
        token = tokens.pop()
        for node in nodes:
            me = httpx.get(f"{node.base}/api/me", headers=auth(token), timeout=10)
            assert me.status_code == 200, me.text

        def holder() -> LivefeedServer | None:
            raw = admin.get(f"{prefix}:lease:demo")
            pid = int(raw.split(b"-")[0]) if isinstance(raw, bytes) else None
            return next((n for n in nodes if n.proc is not None and n.proc.pid == pid), None)

        wait_until(lambda: holder() is not None, 30, "no node holds the demo lease")
        poster = holder()
        assert poster is not None
        other = nodes[1 - nodes.index(poster)]
        wait_until(lambda: demo_last_event(other) not in (None, "0-0"), 30, "no demo feed")
        poster.stop(signal.SIGKILL)
        before = demo_last_event(other)
        wait_until(
            lambda: demo_last_event(other) != before, 20, "no node took over the demo poster"
        )
    finally:
        for node in nodes:
            node.stop()
        admin.close()
