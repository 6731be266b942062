"""Topics through HTTP: ``?tag=`` and ``?key_event=true`` on the briefs API, day JSON and the
server-rendered live, day and embed pages; bad values; the upgrade step for older feeds."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from helpers import LivefeedServer, RedisProcess, livefeed, make_feed, publish
from livefeed.storage.keys import Keys


def pages(http: httpx.Client, path: str, **params: Any) -> list[str]:
    """Every brief id of a listing, following ``next_before`` two at a time."""
    ids: list[str] = []
    before = None
    while True:
        query = {**params, "limit": 2, **({"before": before} if before else {})}
        response = http.get(path, params=query)
        assert response.status_code == 200, response.text
        ids += [b["id"] for b in response.json()["briefs"]]
        before = response.json()["next_before"]
        if before is None:
            return ids


def test_briefs_filter_by_tag_case_folded_and_by_key_event_through_the_pages(
    http: httpx.Client, feed: str
) -> None:
    """``?tag=KHARKIV`` finds Kharkiv and kharkiv (Cyrillic and ß case-folded too), newest
    first, page by page; ``key_event`` alone and together with a tag (AND); a day's JSON."""
    a = publish(http, feed, "A", tags=["Kharkiv"])
    b = publish(http, feed, "B", tags=["kharkiv", "Lviv"], key_event=True)
    c = publish(http, feed, "C", key_event=True)
    d = publish(http, feed, "D", tags=["Odesa"])
    e = publish(http, feed, "E", tags=["KHARKIV"])
    path = f"/api/feeds/{feed}/briefs"
    assert pages(http, path, tag="KHARKIV") == [e["id"], b["id"], a["id"]]
    assert pages(http, path, tag="  kharkiv ") == [e["id"], b["id"], a["id"]]
    assert pages(http, path, key_event="true") == [c["id"], b["id"]]
    assert pages(http, path, tag="Kharkiv", key_event="true") == [b["id"]]
    assert pages(http, path, tag="odesa") == [d["id"]]
    assert pages(http, path, tag="nowhere") == []
    kyiv = publish(http, feed, "F", tags=["Харків", "Straße"])
    assert pages(http, path, tag="Харків".upper()) == [kyiv["id"]]
    assert pages(http, path, tag="STRASSE") == [kyiv["id"]], "case-folded, not lower-cased"
    day = http.get(f"/api/feeds/{feed}/days").json()["days"][0]["date"]
    listed = http.get(f"/api/feeds/{feed}/days/{day}", params={"tag": "kharkiv", "limit": 2})
    rest = http.get(f"/api/feeds/{feed}/days/{day}",
                    params={"tag": "kharkiv", "limit": 2, "cursor": listed.json()["next"]})  # fmt: skip
    got = [x["id"] for x in listed.json()["briefs"] + rest.json()["briefs"]]
    assert got == [a["id"], b["id"], e["id"]] and rest.json()["next"] is None


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"tag": ""}, "bad_tag"),
        ({"tag": "   "}, "bad_tag"),
        ({"tag": "t" * 41}, "bad_tag"),
        ({"tag": "a\u0007b"}, "bad_tag"),
        ({"key_event": "yes"}, "bad_key_event"),
        ({"key_event": "false"}, "bad_key_event"),
    ],
)
def test_bad_topic_values_get_a_400_everywhere(
    http: httpx.Client, feed: str, params: dict[str, str], code: str
) -> None:
    """The briefs API, the day JSON and the live, day and embed pages answer a JSON 400."""
    publish(http, feed, "Only", tags=["x"])
    day = http.get(f"/api/feeds/{feed}/days").json()["days"][0]["date"]
    paths = [f"/api/feeds/{feed}/briefs", f"/api/feeds/{feed}/days/{day}", f"/feeds/{feed}",
             f"/feeds/{feed}/days/{day}", f"/embed/{feed}"]  # fmt: skip
    for path in paths:
        response = http.get(path, params=params)
        assert response.status_code == 400, (path, response.text)
        assert response.json()["error"]["code"] == code, path


def headlines(html: str) -> list[str]:
    return re.findall(r'<h2 class="brief-headline" dir="auto">([^<]*)</h2>', html)


def test_tag_pages_are_server_rendered_with_tag_links_and_a_way_back(
    http: httpx.Client, feed: str
) -> None:
    """``/feeds/{feed}?tag=kharkiv`` shows "Tagged Kharkiv" (as the briefs spell it), only its
    briefs, tags as links and a link to everything; so do the day and embed pages; markup in
    a tag stays text."""
    publish(http, feed, "First", tags=["Kharkiv", "<b>bold</b>"])
    publish(http, feed, "Untagged")
    publish(http, feed, "Second", tags=["kharkiv"], key_event=True)
    live = http.get(f"/feeds/{feed}", params={"tag": "kharkiv"}).text
    assert headlines(live) == ["Second", "First"]
    assert re.search(r'<h2 id="topic-title" class="topic-title">Tagged <bdi class="topic-tag">'
                     r"kharkiv</bdi></h2>", live), "the newest brief's spelling"  # fmt: skip
    assert f'<a class="topic-all" href="/feeds/{feed}">All updates</a>' in live
    assert f'<a class="brief-tag" href="/feeds/{feed}?tag=Kharkiv">Kharkiv</a>' in live
    assert "&lt;b&gt;bold&lt;/b&gt;" in live and "<b>bold</b>" not in live
    assert f'href="/feeds/{feed}?tag=%3Cb%3Ebold%3C/b%3E"' in live
    assert 'data-tag="kharkiv"' in live
    keyed = http.get(f"/feeds/{feed}", params={"tag": "KHARKIV", "key_event": "true"}).text
    assert headlines(keyed) == ["Second"] and "Key events tagged" in keyed
    everything = http.get(f"/feeds/{feed}").text
    assert headlines(everything) == ["Second", "Untagged", "First"]
    assert 'id="topic"' not in everything and "data-tag=" not in everything

    day = http.get(f"/api/feeds/{feed}/days").json()["days"][0]["date"]
    day_page = http.get(f"/feeds/{feed}/days/{day}", params={"tag": "Kharkiv"}).text
    assert headlines(day_page) == ["First", "Second"]
    day_path = f"/feeds/{feed}/days/{day}"
    assert f'<a class="topic-all" href="{day_path}">All updates</a>' in day_page
    assert f'<a class="brief-tag" href="{day_path}?tag=Kharkiv">' in day_page
    embed = http.get(f"/embed/{feed}", params={"tag": "kharkiv"}).text
    assert headlines(embed) == ["Second", "First"] and 'data-tag="kharkiv"' in embed


def test_migrate_builds_the_topic_index_of_a_feed_written_before_it(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    """A feed whose briefs predate the topic index (its keys absent, as an earlier livefeed
    left them) gets it from ``livefeed migrate``, and its tag pages list every brief."""
    prefix = "topics-" + uuid.uuid4().hex[:8]
    server = LivefeedServer(redis_server.url, prefix)
    server.start(log_dir=tmp_path)
    try:
        with httpx.Client(base_url=server.base, timeout=10) as http:
            slug = make_feed(http)
            old = [publish(http, slug, f"Old {n}", tags=["Kharkiv"] if n % 2 else [])
                   for n in range(5)]  # fmt: skip
    finally:
        server.stop()
    keys = Keys(prefix)
    client = redis.Redis(port=redis_server.port)
    try:
        client.delete(keys.tag_index(slug), keys.tags_of(slug), keys.nodes)
        done = livefeed("migrate", LIVEFEED_REDIS_URL=redis_server.url,
                        LIVEFEED_KEY_PREFIX=prefix)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "topic index built for 1 feed(s)" in done.stdout
        assert client.zscore(keys.tag_index(slug), "") == 0
    finally:
        client.close()
    server.start(log_dir=tmp_path)
    try:
        with httpx.Client(base_url=server.base, timeout=10) as http:
            listed = http.get(f"/api/feeds/{slug}/briefs", params={"tag": "kharkiv"}).json()
            assert [b["id"] for b in listed["briefs"]] == [old[3]["id"], old[1]["id"]]
            assert headlines(http.get(f"/feeds/{slug}", params={"tag": "kharkiv"}).text) == [
                "Old 3", "Old 1"
            ]  # fmt: skip
    finally:
        server.stop()
