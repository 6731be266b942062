"""A feed's language and the pages around its briefs: ``lang`` and ``dir="auto"`` on what people
wrote, the favicon, the 404 for a day that is not there and the day links."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import httpx
import pytest

from helpers import LivefeedServer, RedisProcess, auth, livefeed, make_feed, publish


def create(http: httpx.Client, **fields: str) -> httpx.Response:
    slug = "lang-" + uuid.uuid4().hex[:10]
    body = {"slug": slug, "title": f"Feed {slug}", "timezone": "Europe/Kyiv", **fields}
    return http.post("/api/feeds", json=body, headers=auth())


# --- the language setting ---------------------------------------------------------------------


def test_a_feed_is_english_unless_created_with_a_language(http: httpx.Client) -> None:
    """A feed without ``language`` is ``en``; one created with ``uk`` keeps it."""
    plain = create(http)
    ukrainian = create(http, language="uk")
    assert plain.status_code == ukrainian.status_code == 201
    assert plain.json()["language"] == "en"
    assert ukrainian.json()["language"] == "uk"
    stored = http.get(f"/api/feeds/{ukrainian.json()['slug']}").json()
    assert stored["language"] == "uk"


def test_a_language_tag_is_stored_in_its_usual_case(http: httpx.Client) -> None:
    """``EN-gb`` and ``sr-latn`` are written ``en-GB`` and ``sr-Latn``."""
    assert create(http, language="EN-gb").json()["language"] == "en-GB"
    assert create(http, language="sr-latn").json()["language"] == "sr-Latn"
    assert create(http, language="es-419").json()["language"] == "es-419"


@pytest.mark.parametrize(
    "language",
    ["", "english", "e", "en_GB", "en-", "-en", "x-klingon", "ar-12", "\u212aa", "en GB"],
)
def test_a_malformed_language_is_refused_and_no_feed_is_made(
    http: httpx.Client, language: str
) -> None:
    """A value that is not a BCP 47 tag answers 422 ``invalid_language`` and creates nothing."""
    response = create(http, language=language)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_language"
    assert response.json()["error"]["field"] == "language"
    slug = json.loads(response.request.content)["slug"]
    assert http.get(f"/api/feeds/{slug}").status_code == 404


def test_patch_changes_the_language_and_the_pages_say_it(http: httpx.Client) -> None:
    """PATCH ``{"language": "ar"}`` is kept, and the reader page's ``<html lang>`` follows."""
    slug = make_feed(http)
    assert '<html lang="en">' in http.get(f"/feeds/{slug}").text
    response = http.patch(f"/api/feeds/{slug}", json={"language": "ar"}, headers=auth())
    assert response.status_code == 200, response.text
    assert response.json()["language"] == "ar"
    assert http.get(f"/api/feeds/{slug}").json()["language"] == "ar"
    assert '<html lang="ar">' in http.get(f"/feeds/{slug}").text


def test_patch_with_a_malformed_language_changes_nothing(http: httpx.Client) -> None:
    """A bad ``language`` in a PATCH answers 422 and leaves the feed as it was."""
    slug = make_feed(http)
    response = http.patch(
        f"/api/feeds/{slug}", json={"language": "arabic!", "title": "New"}, headers=auth()
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_language"
    feed = http.get(f"/api/feeds/{slug}").json()
    assert feed["language"] == "en" and feed["title"] == f"Feed {slug}"


def test_cli_feed_create_takes_a_language(
    redis_server: RedisProcess, server: LivefeedServer
) -> None:
    """``livefeed feed create --language he`` makes a Hebrew feed; a bad tag exits 1."""
    slug = "cli-" + uuid.uuid4().hex[:10]
    common = ["--title", "חדשות", "--timezone", "Asia/Jerusalem", "--redis-url", redis_server.url]
    common += ["--key-prefix", server.prefix]
    made = livefeed("feed", "create", slug, *common, "--language", "he")
    assert made.returncode == 0, made.stderr
    assert "he" in made.stdout
    assert httpx.get(f"{server.base}/api/feeds/{slug}").json()["language"] == "he"
    bad = livefeed("feed", "create", slug + "-x", *common, "--language", "hebrew")
    assert bad.returncode == 1 and "language" in bad.stderr


# --- lang and dir on the server-rendered pages ------------------------------------------------


def test_reader_day_and_embed_pages_carry_the_feed_language(http: httpx.Client) -> None:
    """``<html lang>`` is the feed's language on the reader, day and embed pages."""
    slug = create(http, language="uk").json()["slug"]
    publish(http, slug, "Повітряна тривога")
    day = http.get(f"/api/feeds/{slug}/days").json()["days"][0]["date"]
    for path in (f"/feeds/{slug}", f"/feeds/{slug}/days/{day}", f"/embed/{slug}"):
        assert '<html lang="uk">' in http.get(path).text, path


def test_every_text_a_user_wrote_has_dir_auto_on_server_pages(http: httpx.Client) -> None:
    """Headline, body, author, tags, feed title and key-event lines each get ``dir="auto"``."""
    slug = create(http, language="ar").json()["slug"]
    publish(http, slug, "عاجل: انقطاع الكهرباء", author="مراسلنا", tags=["كهرباء"], key_event=True)
    day = http.get(f"/api/feeds/{slug}/days").json()["days"][0]["date"]
    for path in (f"/feeds/{slug}", f"/feeds/{slug}/days/{day}", f"/embed/{slug}"):
        html = http.get(path).text
        for pattern in (
            r'<h2 class="brief-headline" dir="auto">عاجل',
            r'<div class="brief-body" dir="auto">',
            r'<span class="brief-author" dir="auto">مراسلنا',
            r'<li dir="auto"><a class="brief-tag" [^>]*>كهرباء',
            r'<h1[^>]* dir="auto"[^>]*>(<a [^>]*>)?Feed ',
        ):
            assert re.search(pattern, html), (path, pattern)
    live = http.get(f"/feeds/{slug}").text
    assert '<span class="key-event-headline" dir="auto">عاجل' in live


# --- the favicon, the 404 for a missing day, the day links ------------------------------------


@pytest.mark.parametrize(
    ("path", "media_type"), [("/favicon.ico", "image/x-icon"), ("/favicon.svg", "image/svg+xml")]
)
def test_the_favicon_is_served_with_a_long_cache(
    http: httpx.Client, path: str, media_type: str
) -> None:
    """``/favicon.ico`` and ``/favicon.svg`` answer 200 with the icon, cached for a week."""
    response = http.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media_type)
    assert "max-age=604800" in response.headers["cache-control"]
    assert response.content


def test_every_page_links_the_favicon(http: httpx.Client) -> None:
    """The pages name their icon, so no browser has to guess."""
    for path in ("/", "/editor", "/api"):
        assert '<link rel="icon" href="/favicon.svg"' in http.get(path).text, path


def test_a_day_that_is_not_there_links_to_the_feeds_days(http: httpx.Client) -> None:
    """The 404 for a bad day leads to the feed's days, not only to every feed."""
    slug = make_feed(http)
    response = http.get(f"/feeds/{slug}/days/2026-13-45")
    assert response.status_code == 404
    assert (
        f'<a href="/feeds/{slug}/days"><bdi>See the days of Feed {slug}</bdi></a>' in response.text
    )


def test_day_links_read_as_weekday_day_and_month(
    redis_server: RedisProcess, server: LivefeedServer, http: httpx.Client, tmp_path: Path
) -> None:
    """The previous and next day links say ``← Sun 29 Nov`` and ``Tue 1 Dec →``; the day
    picker lists ``Mon 30 Nov 2026``."""
    slug = make_feed(http, timezone="UTC")
    lines = [
        {"published_at": f"2026-{day}T12:00:00.000Z", "headline": f"On {day}"}
        for day in ("11-29", "11-30", "12-01")
    ]
    path = tmp_path / "days.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    imported = livefeed(
        "import", slug, str(path), "--redis-url", redis_server.url, "--key-prefix", server.prefix
    )
    assert imported.returncode == 0, imported.stderr
    html = http.get(f"/feeds/{slug}/days/2026-11-30").text
    assert '← <time datetime="2026-11-29">Sun 29 Nov</time></a>' in html
    assert '<time datetime="2026-12-01">Tue 1 Dec</time> →</a>' in html
    assert '<option value="2026-11-30" selected>Mon 30 Nov 2026</option>' in html


def test_an_older_page_says_it_holds_earlier_updates_not_that_javascript_is_off(
    http: httpx.Client,
) -> None:
    """A ``?before=`` page (which loads no live script) names itself in the state indicator."""
    slug = make_feed(http)
    first = publish(http, slug, "Older")
    publish(http, slug, "Newer")
    html = http.get(f"/feeds/{slug}", params={"before": first["id"]}).text
    assert 'data-state="static" role="status">Earlier updates</span>' in html
    assert "JavaScript is off" not in html
