"""The livefeed command: feeds and editor tokens, against a real Redis and the embedded one."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx

from helpers import LivefeedServer, RedisProcess, auth, livefeed, wait_for_demo


def test_token_create_prints_a_working_token_once_and_revoke_disables_it(
    redis_server: RedisProcess, server: LivefeedServer, http: httpx.Client, feed: str
) -> None:
    name = "Editor " + uuid.uuid4().hex[:6]
    common = ["--redis-url", redis_server.url, "--key-prefix", server.prefix]
    created = livefeed("token", "create", name, *common)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token and token not in created.stderr

    response = http.post(f"/api/feeds/{feed}/briefs", json={"headline": "h"}, headers=auth(token))
    assert response.status_code == 201
    assert response.json()["author"] == name, "the named editor is the default byline"

    listed = livefeed("token", "list", *common)
    assert name in listed.stdout and token not in listed.stdout
    assert livefeed("token", "create", name, *common).returncode == 1, "one token per name"

    assert livefeed("token", "revoke", name, *common).returncode == 0
    response = http.post(f"/api/feeds/{feed}/briefs", json={"headline": "h"}, headers=auth(token))
    assert response.status_code == 401
    assert livefeed("token", "revoke", name, *common).returncode == 1


def test_token_roles_are_given_changed_and_listed_from_the_cli(
    redis_server: RedisProcess, server: LivefeedServer, http: httpx.Client, feed: str
) -> None:
    """``token create --role contributor`` makes a token that may not publish; ``token role``
    makes it an editor's at its next request; ``token list`` prints each role; a name without
    a token is refused."""
    name = "Reporter " + uuid.uuid4().hex[:6]
    common = ["--redis-url", redis_server.url, "--key-prefix", server.prefix]
    created = livefeed("token", "create", name, "--role", "contributor", *common)
    assert created.returncode == 0, created.stderr
    assert "contributor token" in created.stderr
    token = created.stdout.strip()
    post = f"/api/feeds/{feed}/briefs"
    refused = http.post(post, json={"headline": "h"}, headers=auth(token))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden_role"
    assert f"{name}\tcontributor\tcreated " in livefeed("token", "list", *common).stdout

    changed = livefeed("token", "role", name, "editor", *common)
    assert changed.returncode == 0 and f"{name} is now an editor" in changed.stdout
    assert http.post(post, json={"headline": "h"}, headers=auth(token)).status_code == 201
    assert f"{name}\teditor\tcreated " in livefeed("token", "list", *common).stdout

    assert livefeed("token", "role", "Nobody " + name, "admin", *common).returncode == 1


def test_feed_create_and_list(
    redis_server: RedisProcess, server: LivefeedServer, http: httpx.Client
) -> None:
    slug = "cli-" + uuid.uuid4().hex[:8]
    common = ["--redis-url", redis_server.url, "--key-prefix", server.prefix]
    done = livefeed(
        "feed", "create", slug, "--title", "From the CLI", "--timezone", "Europe/Kyiv", *common
    )
    assert done.returncode == 0, done.stderr
    assert slug in livefeed("feed", "list", *common).stdout
    assert http.get(f"/api/feeds/{slug}").json()["timezone"] == "Europe/Kyiv"


def test_feed_create_rejects_a_bad_timezone_and_slug(redis_server: RedisProcess) -> None:
    common = ["--redis-url", redis_server.url, "--key-prefix", "cli-bad"]
    bad_tz = livefeed("feed", "create", "ok", "--title", "t", "--timezone", "Nowhere/Land", *common)
    assert bad_tz.returncode == 1 and "IANA" in bad_tz.stderr
    bad_slug = livefeed("feed", "create", "Not OK", "--title", "t", "--timezone", "UTC", *common)
    assert bad_slug.returncode == 1 and "slug" in bad_slug.stderr


def test_commands_without_redis_url_use_an_embedded_redis_on_the_data_dir(tmp_path: Path) -> None:
    data = str(tmp_path / "var")
    assert (
        livefeed(
            "feed",
            "create",
            "kyiv",
            "--title",
            "Kyiv",
            "--timezone",
            "Europe/Kyiv",
            "--data-dir",
            data,
        ).returncode
        == 0
    )
    listed = livefeed("feed", "list", "--data-dir", data)
    assert listed.returncode == 0 and "kyiv" in listed.stdout
    assert (tmp_path / "var" / "appendonly.aof").exists() or (
        tmp_path / "var" / "appendonlydir"
    ).exists()


def test_help_lists_every_command() -> None:
    out = livefeed("--help").stdout
    for command in ("serve", "feed", "token"):
        assert command in out
    assert "--demo" in livefeed("serve", "--help").stdout


def test_serve_demo_has_today_and_two_earlier_days_to_read_and_replay(tmp_path: Path) -> None:
    server = LivefeedServer("", "livefeed", LIVEFEED_DEMO_INTERVAL="3600")
    server.start("--demo", "--data-dir", str(tmp_path / "var"), log_dir=tmp_path)
    try:
        wait_for_demo(server.base)
        days = httpx.get(f"{server.base}/api/feeds/demo/days", timeout=10).json()["days"]
        assert len(days) >= 3 and all(d["count"] > 0 for d in days)
        earlier = days[1]["date"]
        page = httpx.get(f"{server.base}/feeds/demo/days/{earlier}", timeout=10)
        assert page.status_code == 200 and "brief-headline" in page.text
    finally:
        server.stop()
