"""Search within a feed: GET /api/feeds/{feed}/search and the /feeds/{feed}/search page."""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers import LivefeedServer, RedisProcess, admin_client, auth, make_feed, publish
from livefeed.limits import SEARCH_QUERY_MAX, SEARCH_WORDS_MAX
from livefeed.storage.keys import Keys


def search(client: httpx.Client, slug: str, q: str, **params: Any) -> dict[str, Any]:
    response = client.get(f"/api/feeds/{slug}/search", params={"q": q, **params})
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def headlines(found: dict[str, Any]) -> list[str]:
    return [hit["brief"]["headline"] for hit in found["hits"]]


def marked(fragments: list[dict[str, Any]]) -> list[str]:
    return [f["text"] for f in fragments if f["mark"]]


def correct(client: httpx.Client, slug: str, brief_id: str, **fields: Any) -> None:
    response = client.patch(f"/api/feeds/{slug}/briefs/{brief_id}", json=fields, headers=auth())
    assert response.status_code == 200, response.text


# --- what matches -----------------------------------------------------------------------------


def test_search_finds_words_newest_first_with_marks(http: httpx.Client, feed: str) -> None:
    """Every word must match, in headline, body, tags or author; newest first; matches marked."""
    publish(http, feed, "Bridge closed in Kharkiv", body="<p>Traffic is diverted.</p>")
    publish(http, feed, "Trains resume", body="<p>The bridge near Kharkiv reopened.</p>")
    publish(http, feed, "Weather", body="<p>Rain.</p>", tags=["kharkiv"])
    publish(http, feed, "Nothing here", body="<p>Quiet day.</p>", author="Olena Shevchenko")
    found = search(http, feed, "kharkiv")
    assert headlines(found) == ["Weather", "Trains resume", "Bridge closed in Kharkiv"]
    assert found["query"] == "kharkiv" and found["next"] is None
    both = search(http, feed, "bridge KHARKIV")
    assert headlines(both) == ["Trains resume", "Bridge closed in Kharkiv"]
    assert marked(both["hits"][1]["headline"]) == ["Bridge", "Kharkiv"]
    assert marked(both["hits"][0]["snippet"]) == ["bridge", "Kharkiv"]
    assert "".join(f["text"] for f in both["hits"][0]["snippet"]) == (
        "The bridge near Kharkiv reopened."
    )
    assert headlines(search(http, feed, "shevchenko")) == ["Nothing here"]
    assert headlines(search(http, feed, "kharkiv rain")) == ["Weather"]


def test_search_matches_the_last_word_as_a_prefix(http: httpx.Client, feed: str) -> None:
    """The last word typed matches the start of a word; the others match whole words."""
    publish(http, feed, "Evacuation of Zaporizhzhia")
    assert headlines(search(http, feed, "zapor")) == ["Evacuation of Zaporizhzhia"]
    assert marked(search(http, feed, "evac")["hits"][0]["headline"]) == ["Evacuation"]
    assert headlines(search(http, feed, "evac zaporizhzhia")) == []


def test_search_follows_corrections_and_retractions(http: httpx.Client, feed: str) -> None:
    """A correction changes what matches; a retracted brief is found no more."""
    first = publish(http, feed, "Explosion reported in Odesa")
    second = publish(http, feed, "Odesa port open")
    assert headlines(search(http, feed, "odesa")) == [
        "Odesa port open",
        "Explosion reported in Odesa",
    ]
    correct(http, feed, first["id"], headline="Explosion reported in Mykolaiv")
    assert headlines(search(http, feed, "odesa")) == ["Odesa port open"]
    assert headlines(search(http, feed, "mykolaiv")) == ["Explosion reported in Mykolaiv"]
    assert http.delete(f"/api/feeds/{feed}/briefs/{second['id']}", headers=auth()).is_success
    assert headlines(search(http, feed, "odesa")) == []
    assert headlines(search(http, feed, "port")) == []


def test_search_pages_with_a_cursor(http: httpx.Client, feed: str) -> None:
    """``next`` is the cursor of the following page; pages never repeat or skip a hit."""
    for n in range(5):
        publish(http, feed, f"Update {n} on the dam")
    first = search(http, feed, "dam", limit=2)
    second = search(http, feed, "dam", limit=2, cursor=first["next"])
    third = search(http, feed, "dam", limit=2, cursor=second["next"])
    assert headlines(first) + headlines(second) + headlines(third) == [
        f"Update {n} on the dam" for n in (4, 3, 2, 1, 0)
    ]
    assert third["next"] is None


LANGUAGE_CASES = [
    ("Новини: обстріл Київа", ["київа", "КИЇВА", "Київа", "киї"]),
    ("Москва закрыла аэропорт", ["Москва".upper(), "аэропорт", "москв"]),
    ("Protest outside the café in Zürich", ["cafe", "CAFÉ", "zurich", "Zürich", "züri"]),
    ("مُحَمَّد يصل إلى القاهرة", ["محمد", "مُحَمَّد", "مـحـمـد", "الى", "القاهر"]),
    ("Ставка «Південь» — ТЦК", ["південь", "ПІВДЕНЬ"]),
]


def test_search_folds_case_diacritics_and_scripts(http: httpx.Client, feed: str) -> None:
    """Ukrainian and Russian case, Latin diacritics, Arabic harakat and tatweel, and NFC or
    NFD input all match as readers expect, and marks cover the word as written."""
    for headline, _ in LANGUAGE_CASES:
        publish(
            http, feed, unicodedata.normalize("NFD", headline) if "Zürich" in headline else headline
        )
    for headline, queries in LANGUAGE_CASES:
        for q in queries:
            for form in ("NFC", "NFD"):
                found = search(http, feed, unicodedata.normalize(form, q))
                got = [unicodedata.normalize("NFC", h) for h in headlines(found)]
                assert got == [headline], (q, form, got)
    cafe = search(http, feed, "cafe")["hits"][0]["headline"]
    assert [unicodedata.normalize("NFC", m) for m in marked(cafe)] == ["café"]
    arabic = search(http, feed, "محمد")["hits"][0]["headline"]
    assert marked(arabic) == ["مُحَمَّد"]


# --- bad requests -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, "bad_query"),
        ({"q": "   "}, "bad_query"),
        ({"q": "!!! ?"}, "bad_query"),
        ({"q": "x" * (SEARCH_QUERY_MAX + 1)}, "bad_query"),
        ({"q": " ".join(f"w{n}" for n in range(SEARCH_WORDS_MAX + 1))}, "bad_query"),
        ({"q": "dam", "cursor": "nope"}, "bad_cursor"),
        ({"q": "dam", "limit": "0"}, "bad_limit"),
    ],
)
def test_search_refuses_bad_queries(
    http: httpx.Client, feed: str, params: dict[str, str], code: str
) -> None:
    """An empty, too long or too wordy query, a bad cursor or limit: 400 with its code."""
    response = http.get(f"/api/feeds/{feed}/search", params=params)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == code


def test_search_of_an_unknown_feed_is_404(http: httpx.Client) -> None:
    """A feed that does not exist answers 404 feed_not_found."""
    response = http.get("/api/feeds/no-such-feed-here/search", params={"q": "x"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "feed_not_found"


# --- every node, every restart, a trimmed stream ---------------------------------------------


@pytest.fixture(scope="module")
def second_node(
    redis_server: RedisProcess, server: LivefeedServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LivefeedServer]:
    """Another livefeed process on the same Redis and prefix as ``server``."""
    node = LivefeedServer(redis_server.url, server.prefix)
    node.start(log_dir=tmp_path_factory.mktemp("search-node"))
    yield node
    node.stop()


def test_search_answers_the_same_on_two_nodes_and_after_a_restart(
    http: httpx.Client, feed: str, second_node: LivefeedServer, tmp_path: Path
) -> None:
    """Two processes on one Redis give the same hits, kept current, and so does one restarted."""
    with httpx.Client(base_url=second_node.base, timeout=10) as other:
        publish(http, feed, "Power cut in Dnipro")
        assert headlines(search(other, feed, "dnipro")) == ["Power cut in Dnipro"]
        brief = publish(http, feed, "Dnipro water supply back")
        correct(http, feed, brief["id"], headline="Dnipro water supply restored")
        expected = ["Dnipro water supply restored", "Power cut in Dnipro"]
        assert headlines(search(other, feed, "dnipro")) == expected
        assert search(other, feed, "dnipro") == search(http, feed, "dnipro")
        second_node.stop()
        second_node.start(log_dir=tmp_path)
        assert headlines(search(other, feed, "dnipro")) == expected
        assert headlines(search(other, feed, "restored")) == expected[:1]


def test_search_rebuilds_when_the_stream_was_trimmed(
    http: httpx.Client, server: LivefeedServer, redis_server: RedisProcess
) -> None:
    """Events the stream no longer holds are read from the briefs as they stand instead."""
    slug = make_feed(http)
    first = publish(http, slug, "Alpha headline")
    assert headlines(search(http, slug, "alpha")) == ["Alpha headline"]
    correct(http, slug, first["id"], headline="Omega headline")
    publish(http, slug, "Omega again")
    gone = publish(http, slug, "Omega retracted")
    assert http.delete(f"/api/feeds/{slug}/briefs/{gone['id']}", headers=auth()).is_success
    publish(http, slug, "Last one")
    client = admin_client(redis_server.url)
    try:
        client.xtrim(Keys(server.prefix).stream(slug), maxlen=1, approximate=False)
    finally:
        client.close()
    assert headlines(search(http, slug, "omega")) == ["Omega again", "Omega headline"]
    assert headlines(search(http, slug, "alpha")) == []
    assert headlines(search(http, slug, "last")) == ["Last one"]


# --- the page without JavaScript --------------------------------------------------------------


def test_search_page_marks_matches_and_keeps_markup_as_text(http: httpx.Client, feed: str) -> None:
    """/feeds/{feed}/search renders hits with <mark>; markup in a brief stays text."""
    publish(http, feed, "<script>alert(1)</script> Siren <b>test</b>",
            body="<p>Air raid siren &lt;i&gt;heard&lt;/i&gt; downtown.</p>")  # fmt: skip
    publish(http, feed, "Unrelated")
    page = http.get(f"/feeds/{feed}/search", params={"q": "siren"})
    assert page.status_code == 200
    html = page.text
    assert "<mark>Siren</mark>" in html and "<mark>siren</mark>" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    assert "&lt;i&gt;heard&lt;/i&gt;" in html and "Unrelated" not in html
    assert 'role="search"' in http.get(f"/feeds/{feed}").text
    bad = http.get(f"/feeds/{feed}/search", params={"q": "  "})
    assert bad.status_code == 400 and "search-problem" in bad.text
    assert http.get(f"/feeds/nope-{uuid.uuid4().hex[:6]}/search?q=x").status_code == 404
