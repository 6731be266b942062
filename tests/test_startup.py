"""A newcomer's first commands: start-up failures are one clear line, the demo's token and data
are found by every command wherever it runs, and empty answers say what there is instead."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import httpx
import pytest
import redis

from helpers import LivefeedServer, RedisProcess, wait_for_demo, wait_until
from livefeed.ops.demo import DEMO_CONTRIBUTOR
from livefeed.storage.keys import Keys
from livefeed.storage.redis_server import free_port


def livefeed(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a newcomer would: from ``cwd``, with the environment given."""
    return subprocess.run(
        [sys.executable, "-m", "livefeed", *args],
        capture_output=True, text=True, timeout=90, cwd=cwd, env={**os.environ, **env},
    )  # fmt: skip


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[LivefeedServer, Path]]:
    """``serve --demo`` with no --data-dir and no editor token, as the README runs it, once it
    has seeded the demo feed; the user's data directory is ``tmp_path/xdg``."""
    xdg = tmp_path / "xdg"
    server = LivefeedServer(
        "",
        "livefeed",
        LIVEFEED_EDITOR_TOKEN="",
        LIVEFEED_DEMO_INTERVAL="3600",
        XDG_DATA_HOME=str(xdg),
    )
    server.start("--demo", log_dir=tmp_path)
    try:
        wait_for_demo(server.base)
        yield server, xdg
    finally:
        server.stop()


def test_serve_on_a_port_in_use_says_so_in_one_line_before_announcing_or_seeding(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    """A taken port is one line naming --port, exit status 69, and no demo feed written."""
    prefix = "busy-" + uuid.uuid4().hex[:8]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = livefeed(
            "serve", "--demo", "--port", str(port), "--redis-url", redis_server.url,
            "--key-prefix", prefix, cwd=tmp_path,
        )  # fmt: skip
    assert done.returncode == 69, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--port" in lines[0] and str(port) in lines[0], done.stderr
    client = redis.Redis.from_url(redis_server.url)
    try:
        assert client.zcard(f"{prefix}:feeds") == 0, "nothing seeded before the port was checked"
    finally:
        client.close()


@pytest.mark.parametrize("where", ["file", "under-a-file"])
def test_serve_with_an_unusable_data_dir_says_so_in_one_line(tmp_path: Path, where: str) -> None:
    """A data directory that is a file, or under one, is one line and exit status 73."""
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    data_dir = blocker if where == "file" else blocker / "var"
    done = livefeed("serve", "--port", str(free_port()), "--data-dir", str(data_dir), cwd=tmp_path)
    assert done.returncode == 73, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(blocker) in lines[0] and "--data-dir" in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_the_demo_token_works_on_check_and_survives_a_restart(
    demo: tuple[LivefeedServer, Path], tmp_path: Path
) -> None:
    """The printed token publishes, `livefeed check` agrees the setup is fine, and a restarted
    demo keeps the same token."""
    server, xdg = demo
    token = _printed_token(server)
    response = httpx.post(
        f"{server.base}/api/feeds/demo/briefs",
        json={"headline": "From a newcomer"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    checked = livefeed("check", cwd=tmp_path, XDG_DATA_HOME=str(xdg), LIVEFEED_EDITOR_TOKEN="")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "error" not in checked.stdout.split("livefeed check:")[0]

    server.stop()
    server.start("--demo", log_dir=tmp_path)
    assert _printed_token(server) == token


def test_commands_find_the_running_demo_from_any_directory(
    demo: tuple[LivefeedServer, Path], tmp_path: Path
) -> None:
    """With no --data-dir, export from another directory reads the running demo's feed, and a
    missing feed names the Redis that was asked."""
    _, xdg = demo
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"XDG_DATA_HOME": str(xdg)}
    exported = livefeed("export", "demo", "--day", "today", cwd=elsewhere, **env)
    assert exported.returncode == 0, exported.stderr
    assert len(exported.stdout.splitlines()) > 0
    missing = livefeed("export", "no-such-feed", cwd=elsewhere, **env)
    assert missing.returncode == 1
    assert "no feed named 'no-such-feed'" in missing.stderr
    assert str(xdg / "livefeed") in missing.stderr, "says which Redis it looked in"


def test_an_empty_export_or_replay_names_the_days_that_have_briefs(
    demo: tuple[LivefeedServer, Path], tmp_path: Path
) -> None:
    """Asking for a day without briefs says so on standard error and lists days that have some."""
    _, xdg = demo
    env = {"XDG_DATA_HOME": str(xdg)}
    days = httpx.get(f"{demo[0].base}/api/feeds/demo/days", timeout=10).json()["days"]
    newest = days[0]["date"]
    exported = livefeed("export", "demo", "--day", "2001-02-03", cwd=tmp_path, **env)
    assert exported.returncode == 0 and exported.stdout == ""
    assert "no briefs on 2001-02-03 in feed demo" in exported.stderr
    assert newest in exported.stderr
    replayed = livefeed("replay", "demo", "2001-02-03", cwd=tmp_path, **env)
    assert replayed.returncode == 1
    assert "no briefs on 2001-02-03" in replayed.stderr and newest in replayed.stderr


def _printed_token(server: LivefeedServer) -> str:
    for line in server.log().splitlines():
        if line.strip().startswith("export TOKEN="):
            return line.strip().removeprefix("export TOKEN=")
    raise AssertionError(f"no token printed:\n{server.log()}")


def test_the_demo_shows_everything_a_reader_can_see(demo: tuple[LivefeedServer, Path]) -> None:
    """The demo starts with a pinned lead, key events, a correction and a retraction, at
    spread-out times, with no headline twice; a lead story, a summary and a description;
    pictures: the lead story's photo and a gallery; and a return from before the newest brief
    has a correction and a retraction of briefs read, the lead and the summary to report."""
    server, _ = demo
    feed = httpx.get(f"{server.base}/api/feeds/demo", timeout=10).json()
    assert feed["pinned"] is not None and feed["description"]
    lead = httpx.get(f"{server.base}/api/feeds/demo/lead", timeout=10).json()["lead"]
    summary = httpx.get(f"{server.base}/api/feeds/demo/summary", timeout=10).json()["summary"]
    assert lead["headline"] and lead["standfirst"] and len(summary["items"]) >= 4
    briefs = httpx.get(f"{server.base}/api/feeds/demo/briefs?limit=100", timeout=10).json()
    recent = briefs["briefs"][:8]
    assert any(b["key_event"] for b in recent)
    assert any(b["version"] > 1 and b["correction"] for b in recent), "a correction with a note"
    assert len({b["published_at"][:16] for b in recent}) >= 5, "times are spread out"
    since = httpx.get(f"{server.base}/api/feeds/demo/since/{recent[1]['id']}", timeout=10).json()
    assert since["new_briefs"] >= 1 and since["corrections"] and since["retractions"], since
    assert since["lead_updated"] and since["summary_updated"], since
    headlines = [b["headline"] for b in briefs["briefs"]]
    assert len(headlines) == len(set(headlines))
    pictured = [b for b in recent if b["media"]]  # drawn by livefeed.ops.demo_media
    assert any(b["gallery"] and len(b["media"]) == 3 for b in pictured), "a gallery"
    (photo,) = lead["media"]
    assert photo["alt"] and photo["caption"] and photo["credit"] and photo["widths"]
    assert httpx.get(f"{server.base}/media/{photo['id']}/320.webp", timeout=10).status_code == 200
    page = httpx.get(f"{server.base}/feeds/demo", timeout=10).text
    assert f"/media/{photo['id']}/16x9.jpg" in page, "og:image and JSON-LD come from the lead"
    url = next(
        line.split("embedded Redis at ")[1].split(",")[0]
        for line in server.log().splitlines()
        if "embedded Redis at " in line
    )
    client = redis.Redis.from_url(url)
    try:
        # redis-py types replies as bytes | str; a client without decode_responses gets bytes.
        rows = cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrange(Keys().stream("demo")))
        types = {fields[b"t"] for _, fields in rows}
    finally:
        client.close()
    assert {b"brief_deleted", b"brief_updated", b"pinned", b"lead_updated"} <= types


def test_the_demo_quotes_a_telegram_like_post_and_an_article_it_serves_itself(
    demo: tuple[LivefeedServer, Path],
) -> None:
    """Offline: the demo's latest briefs carry a Telegram-like post and a related-article card
    read from its own pages, with a drawn thumbnail, all served by the demo."""
    server, _ = demo
    briefs = httpx.get(f"{server.base}/api/feeds/demo/briefs", timeout=10).json()["briefs"]
    embeds = {e["provider"]: e for b in briefs for e in b["embeds"]}
    post, card = embeds["telegram"], embeds["link"]
    assert post["author"] == "Halvard Coastguard (demo)" and "Oxley Marsh" in post["text"]
    assert card["outlet"] == "The Castell Courier (demo)" and card["author"] == "Tobias Lenn"
    for url in (post["frame_url"], card["canonical_url"], server.base + card["thumbnail"]):
        assert url.startswith(server.base) and httpx.get(url, timeout=10).status_code == 200


def test_the_demo_has_a_contributors_draft_waiting_for_review(
    demo: tuple[LivefeedServer, Path],
) -> None:
    """``serve --demo`` prints a contributor's token beside the editor's, and the review queue
    holds that contributor's submitted draft."""
    server, _ = demo
    found = re.search(r"demo contributor token: (\S+)", server.log())
    assert found, server.log()
    me = httpx.get(f"{server.base}/api/me", headers={"Authorization": f"Bearer {found[1]}"})
    assert me.json() == {"editor": DEMO_CONTRIBUTOR, "role": "contributor"}
    editor = {"Authorization": f"Bearer {_printed_token(server)}"}
    url = f"{server.base}/api/feeds/demo/drafts?status=submitted"
    wait_until(lambda: httpx.get(url, headers=editor).json()["drafts"], 30, "no draft queued")
    queue = httpx.get(url, headers=editor).json()["drafts"]
    assert [d["owner"] for d in queue] == [DEMO_CONTRIBUTOR]
