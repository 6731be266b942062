"""The search index's files: kept across restarts, shared by processes, rebuilt when stale."""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from helpers import LivefeedServer, RedisProcess, admin_client, auth, make_feed, publish
from livefeed.model.ids import StreamId
from livefeed.model.search import fold
from livefeed.newsroom.search import _FeedIndex
from livefeed.storage.keys import Keys


def search(base: str, slug: str, q: str) -> httpx.Response:
    return httpx.get(f"{base}/api/feeds/{slug}/search", params={"q": q}, timeout=15)


def headlines(base: str, slug: str, q: str) -> list[str]:
    response = search(base, slug, q)
    assert response.status_code == 200, response.text
    return [hit["brief"]["headline"] for hit in response.json()["hits"]]


def rebuilds(node: LivefeedServer) -> float:
    """This process's livefeed_search_rebuilds_total."""
    text = httpx.get(node.base + "/metrics", timeout=10).text
    found = re.search(r"^livefeed_search_rebuilds_total (\S+)$", text, re.MULTILINE)
    assert found is not None, "no livefeed_search_rebuilds_total in /metrics"
    return float(found.group(1))


def index_file(directory: Path, slug: str) -> Path:
    (path,) = directory.glob(f"{slug}-*.sqlite")
    return path


def file_position(directory: Path, slug: str) -> str:
    db = sqlite3.connect(index_file(directory, slug))
    try:
        (value,) = db.execute("SELECT value FROM meta WHERE key = 'position'").fetchone()
        return str(value)
    finally:
        db.close()


@pytest.fixture(scope="module")
def search_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("search-files")


@pytest.fixture(scope="module")
def nodes(
    redis_server: RedisProcess, search_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LivefeedServer, LivefeedServer]]:
    """Two livefeed processes of one machine: one Redis prefix, one search directory."""
    prefix = "si-" + uuid.uuid4().hex[:8]
    logs = tmp_path_factory.mktemp("search-index-logs")
    pair = tuple(
        LivefeedServer(redis_server.url, prefix, LIVEFEED_SEARCH_DIR=str(search_dir))
        for _ in range(2)
    )
    try:
        for node in pair:
            node.start(log_dir=logs)
        yield pair[0], pair[1]
    finally:
        for node in pair:
            node.stop()


def test_search_index_file_survives_a_restart(
    nodes: tuple[LivefeedServer, LivefeedServer], search_dir: Path, tmp_path: Path
) -> None:
    """A restarted process catches up from the file's position: its first query rebuilds nothing."""
    first, _ = nodes
    with httpx.Client(base_url=first.base, timeout=10) as http:
        slug = make_feed(http)
        publish(http, slug, "Ferry crossing opens")
        assert headlines(first.base, slug, "ferry") == ["Ferry crossing opens"]
        first.stop()
        later = publish_elsewhere(nodes[1], slug, "Ferry crossing closed again")
        first.start(log_dir=tmp_path)
        assert headlines(first.base, slug, "ferry") == [
            "Ferry crossing closed again",
            "Ferry crossing opens",
        ]
        assert rebuilds(first) == 0
        assert file_position(search_dir, slug) == later["id"]


def publish_elsewhere(node: LivefeedServer, slug: str, headline: str) -> dict[str, Any]:
    with httpx.Client(base_url=node.base, timeout=10) as http:
        return publish(http, slug, headline)


def test_search_index_file_is_shared_by_two_processes(
    nodes: tuple[LivefeedServer, LivefeedServer],
) -> None:
    """Two processes on one directory agree, and only the first query of all builds the file."""
    first, second = nodes
    before = rebuilds(first) + rebuilds(second)
    with httpx.Client(base_url=first.base, timeout=10) as http:
        slug = make_feed(http)
        brief = publish(http, slug, "Tram line 5 suspended")
        assert headlines(first.base, slug, "tram") == ["Tram line 5 suspended"]
        assert headlines(second.base, slug, "tram") == ["Tram line 5 suspended"]
        patched = http.patch(
            f"/api/feeds/{slug}/briefs/{brief['id']}",
            json={"headline": "Tram line 5 running"},
            headers=auth(),
        )
        assert patched.status_code == 200, patched.text
        publish(http, slug, "Tram depot flooded")
        for node in (second, first, second):
            assert headlines(node.base, slug, "tram") == [
                "Tram depot flooded",
                "Tram line 5 running",
            ]
            assert headlines(node.base, slug, "suspended") == []
    assert rebuilds(first) + rebuilds(second) == before + 1


def test_search_index_file_behind_a_trimmed_stream_is_rebuilt(
    nodes: tuple[LivefeedServer, LivefeedServer], redis_server: RedisProcess
) -> None:
    """A file whose position the stream no longer holds is rebuilt from the briefs."""
    first, _ = nodes
    with httpx.Client(base_url=first.base, timeout=10) as http:
        slug = make_feed(http)
        old = publish(http, slug, "Curfew from ten")
        assert headlines(first.base, slug, "curfew") == ["Curfew from ten"]
        before = rebuilds(first)
        assert http.delete(f"/api/feeds/{slug}/briefs/{old['id']}", headers=auth()).is_success
        publish(http, slug, "Curfew lifted")
        publish(http, slug, "Markets open")
        client = admin_client(redis_server.url)
        try:
            client.xtrim(Keys(first.prefix).stream(slug), maxlen=1, approximate=False)
        finally:
            client.close()
        assert headlines(first.base, slug, "curfew") == ["Curfew lifted"]
        assert rebuilds(first) == before + 1


def test_search_answers_503_while_the_index_file_is_locked(
    nodes: tuple[LivefeedServer, LivefeedServer], search_dir: Path
) -> None:
    """While another process holds the file's write lock a query is 503 with Retry-After."""
    first, _ = nodes
    with httpx.Client(base_url=first.base, timeout=10) as http:
        slug = make_feed(http)
        publish(http, slug, "Bridge repairs start")
        assert headlines(first.base, slug, "bridge") == ["Bridge repairs start"]
        publish(http, slug, "Bridge repairs finish")
        holder = sqlite3.connect(index_file(search_dir, slug), isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            refused = search(first.base, slug, "bridge")
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["code"] == "unavailable"
            assert int(refused.headers["Retry-After"]) > 0
        finally:
            holder.close()
        assert headlines(first.base, slug, "bridge") == [
            "Bridge repairs finish",
            "Bridge repairs start",
        ]


def test_search_index_keeps_ids_that_do_not_pack_into_a_rowid(tmp_path: Path) -> None:
    """Briefs whose seq or ms is past the packed rowid are indexed and ordered as ids are."""
    index = _FeedIndex.open(tmp_path / "wide.sqlite")
    ids = ["5-1", "5-2097152", "5-3000000", "6-0", f"{2**50}-7", f"{2**50}-{2**64 - 1}"]
    try:
        index.start_rebuild(None)
        raws = [msgspec.json.encode({"id": i, "headline": f"Wide {n}"}) for n, i in enumerate(ids)]
        index.load(raws)
        index.finish_rebuild([], StreamId.parse(ids[-1]))
        newest_first = [StreamId.parse(i) for i in reversed(ids)]
        expression = f'"{fold("wide")}"'
        assert index.match(expression, None, 10) == newest_first
        assert index.match(expression, None, 3) == newest_first[:3]
        assert index.match(expression, newest_first[2], 2) == newest_first[3:5]
        assert index.match(expression, newest_first[4], 10) == newest_first[5:]
        assert index.position() == StreamId.parse(ids[-1])
    finally:
        index.db.close()
