"""Days, import and export against a real server and Redis, in a zone whose clocks change."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from helpers import (
    ON_BOTH,
    ROOT,
    LivefeedServer,
    RedisProcess,
    auth,
    livefeed,
    make_feed,
    pick_server,
    publish,
    stream_length,
)

KYIV = ZoneInfo("Europe/Kyiv")


@pytest.fixture
def server(server: LivefeedServer, request: pytest.FixtureRequest) -> LivefeedServer:
    """The session's node; on a Redis Cluster for the tests marked ON_BOTH."""
    return pick_server(server, request)


def kyiv(text: str, fold: int = 0) -> str:
    """A Kyiv wall-clock time as a UTC ISO timestamp with milliseconds."""
    local = datetime.fromisoformat(text).replace(tzinfo=KYIV, fold=fold)
    return (
        local.astimezone(ZoneInfo("UTC")).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


# (local time, fold) of every brief, in time order; the local date is what the day API must use.
HISTORY = [
    ("2024-03-30T12:00:00", 0),
    ("2024-03-30T23:59:59.999", 0),  # last ms of the 30th
    ("2024-03-31T00:00:00", 0),  # first ms of the 31st (23-hour day)
    ("2024-03-31T02:59:59", 0),  # just before the clocks jump to 04:00
    ("2024-03-31T04:00:00", 0),
    ("2024-03-31T23:59:59.999", 0),
    ("2024-04-01T00:00:00", 0),
    ("2024-10-26T23:59:59.999", 0),
    ("2024-10-27T00:00:00", 0),  # first ms of the 27th (25-hour day)
    ("2024-10-27T03:30:00", 0),  # 03:30 summer time...
    ("2024-10-27T03:30:00", 1),  # ...and 03:30 again, winter time, an hour later
    ("2024-10-27T23:59:59.999", 0),
    ("2024-10-28T00:00:00", 0),
]


def history_lines() -> list[str]:
    lines = []
    for n, (local, fold) in enumerate(HISTORY):
        brief = {"published_at": kyiv(local, fold), "headline": f"Brief {n} at {local} fold {fold}",
                 "body": f"<p>Report {n} &amp; more.</p>", "author": "Archivist", "url": None, "tags": ["history"]}  # fmt: skip
        lines.append(json.dumps(brief))
    return lines


def common(redis_server: RedisProcess, server: LivefeedServer) -> list[str]:
    """The CLI's options for the Redis and prefix ``server`` uses (one Redis or a cluster)."""
    return ["--redis-url", server.redis_url or redis_server.url, "--key-prefix", server.prefix]


@pytest.fixture
def kyiv_feed(
    redis_server: RedisProcess, server: LivefeedServer, http: httpx.Client, tmp_path: Path
) -> str:
    slug = make_feed(http, timezone="Europe/Kyiv")
    path = tmp_path / "history.jsonl"
    path.write_text("\n".join(history_lines()) + "\n")
    done = livefeed("import", slug, str(path), *common(redis_server, server))
    assert done.returncode == 0, done.stderr
    return slug


def headlines(day: dict[str, Any]) -> list[str]:
    return [b["headline"] for b in day["briefs"]]


@ON_BOTH
def test_days_list_has_counts_newest_first(http: httpx.Client, kyiv_feed: str) -> None:
    days = http.get(f"/api/feeds/{kyiv_feed}/days").json()["days"]
    assert days == [
        {"date": "2024-10-28", "count": 1},
        {"date": "2024-10-27", "count": 4},
        {"date": "2024-10-26", "count": 1},
        {"date": "2024-04-01", "count": 1},
        {"date": "2024-03-31", "count": 4},
        {"date": "2024-03-30", "count": 2},
    ]


def test_a_23_hour_day_holds_exactly_its_local_briefs(http: httpx.Client, kyiv_feed: str) -> None:
    day = http.get(f"/api/feeds/{kyiv_feed}/days/2024-03-31").json()
    assert day["date"] == "2024-03-31" and day["timezone"] == "Europe/Kyiv"
    assert headlines(day) == [f"Brief {n} at {HISTORY[n][0]} fold 0" for n in (2, 3, 4, 5)]
    assert day["next"] is None


def test_a_25_hour_day_holds_both_passes_of_the_repeated_hour(
    http: httpx.Client, kyiv_feed: str
) -> None:
    day = http.get(f"/api/feeds/{kyiv_feed}/days/2024-10-27").json()
    assert [h.split(" at ")[0] for h in headlines(day)] == [
        "Brief 8",
        "Brief 9",
        "Brief 10",
        "Brief 11",
    ]
    assert [b["published_at"] for b in day["briefs"]] == [
        kyiv(local, fold) for local, fold in HISTORY[8:12]
    ]


@ON_BOTH
def test_a_day_pages_with_a_cursor(http: httpx.Client, kyiv_feed: str) -> None:
    first = http.get(f"/api/feeds/{kyiv_feed}/days/2024-10-27", params={"limit": 3}).json()
    assert len(first["briefs"]) == 3 and first["next"]
    rest = http.get(
        f"/api/feeds/{kyiv_feed}/days/2024-10-27", params={"limit": 3, "cursor": first["next"]}
    ).json()
    assert headlines(first) + headlines(rest) == headlines(
        http.get(f"/api/feeds/{kyiv_feed}/days/2024-10-27").json()
    )
    assert rest["next"] is None


def test_a_day_without_briefs_is_an_empty_list(http: httpx.Client, kyiv_feed: str) -> None:
    response = http.get(f"/api/feeds/{kyiv_feed}/days/2024-07-01")
    assert response.status_code == 200
    assert response.json() == {
        "date": "2024-07-01",
        "timezone": "Europe/Kyiv",
        "briefs": [],
        "next": None,
    }


def test_past_days_carry_an_etag_and_answer_304(http: httpx.Client, kyiv_feed: str) -> None:
    response = http.get(f"/api/feeds/{kyiv_feed}/days/2024-03-31")
    etag = response.headers["etag"]
    assert "max-age" in response.headers["cache-control"]
    again = http.get(f"/api/feeds/{kyiv_feed}/days/2024-03-31", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    other = http.get(f"/api/feeds/{kyiv_feed}/days/2024-03-30", headers={"If-None-Match": etag})
    assert other.status_code == 200


def test_a_day_changed_by_a_correction_or_retraction_is_not_answered_304(
    http: httpx.Client, feed: str
) -> None:
    brief = publish(http, feed, "Frist")
    today = http.get(f"/api/feeds/{feed}/days").json()["days"][0]["date"]
    url = f"/api/feeds/{feed}/days/{today}"
    etag = http.get(url).headers["etag"]
    assert http.get(url, headers={"If-None-Match": etag}).status_code == 304
    brief_url = f"/api/feeds/{feed}/briefs/{brief['id']}"
    assert http.patch(brief_url, json={"headline": "First"}, headers=auth()).status_code == 200
    corrected = http.get(url, headers={"If-None-Match": etag})
    assert corrected.status_code == 200
    assert [b["headline"] for b in corrected.json()["briefs"]] == ["First"]
    etag = corrected.headers["etag"]
    assert http.delete(brief_url, headers=auth()).status_code == 204
    retracted = http.get(url, headers={"If-None-Match": etag})
    assert retracted.status_code == 200 and retracted.json()["briefs"] == []


def test_today_must_be_revalidated(http: httpx.Client, feed: str) -> None:
    brief = publish(http, feed, "Now")
    today = http.get(f"/api/feeds/{feed}/days").json()["days"][0]["date"]
    response = http.get(f"/api/feeds/{feed}/days/{today}")
    assert response.headers["cache-control"] == "no-cache"
    assert [b["id"] for b in response.json()["briefs"]] == [brief["id"]]


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/days/2024-02-30", 400, "bad_date"),
        ("/days/2024-3-31", 400, "bad_date"),
        ("/days/yesterday", 400, "bad_date"),
        ("/days/2024-03-31?cursor=page2", 400, "bad_cursor"),
        ("/days/2024-03-31?limit=0", 400, "bad_limit"),
        ("/days/2024-03-31?limit=5001", 400, "bad_limit"),
    ],
)
def test_bad_day_requests_get_clear_errors(
    http: httpx.Client, kyiv_feed: str, path: str, status: int, code: str
) -> None:
    response = http.get(f"/api/feeds/{kyiv_feed}{path}")
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_days_of_an_unknown_feed_are_404(http: httpx.Client) -> None:
    assert http.get("/api/feeds/nope-nope/days").status_code == 404
    assert http.get("/api/feeds/nope-nope/days/2024-01-01").status_code == 404


@ON_BOTH
def test_export_of_an_import_of_an_export_is_byte_identical(
    redis_server: RedisProcess,
    server: LivefeedServer,
    http: httpx.Client,
    kyiv_feed: str,
    tmp_path: Path,
) -> None:
    opts = common(redis_server, server)
    first = tmp_path / "first.jsonl"
    assert livefeed("export", kyiv_feed, "-o", str(first), *opts).returncode == 0
    assert len(first.read_bytes().splitlines()) == len(HISTORY)
    copy = make_feed(http, timezone="Europe/Kyiv")
    assert livefeed("import", copy, str(first), *opts).returncode == 0
    second = livefeed("export", copy, *opts)
    assert second.returncode == 0
    assert second.stdout.encode() == first.read_bytes()
    one_day = livefeed("export", copy, "--day", "2024-10-27", *opts).stdout.splitlines()
    assert len(one_day) == 4
    span = livefeed(
        "export", copy, "--from", "2024-03-31", "--to", "2024-04-01", *opts
    ).stdout.splitlines()
    assert len(span) == 5


def test_an_import_can_come_from_standard_input(
    redis_server: RedisProcess, server: LivefeedServer, http: httpx.Client, kyiv_feed: str
) -> None:
    opts = common(redis_server, server)
    exported = livefeed("export", kyiv_feed, *opts).stdout
    copy = make_feed(http, timezone="Europe/Kyiv")
    done = subprocess.run(
        [sys.executable, "-m", "livefeed", "import", copy, "-", *opts],
        input=exported, capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert livefeed("export", copy, *opts).stdout == exported


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("{not json", "line 3: not valid JSON"),
        ('{"headline": "no time"}', "line 3: published_at is required"),
        ('{"published_at": "2024-05-01T10:00:00Z"}', "line 3: headline is required"),
        (
            '{"published_at": "2024-05-01T10:00:00", "headline": "h"}',
            "line 3: published_at needs a time zone",
        ),
        (
            '{"published_at": "2024-04-01T10:00:00Z", "headline": "back in time"}',
            "line 3: published_at is earlier than the line before",
        ),
        ('["a list"]', "line 3: each line must be a JSON object"),
        (
            '{"published_at": "2024-05-01T10:00:00Z", "headline": "h", "color": "red"}',
            "line 3: unknown field",
        ),
    ],
)
def test_a_bad_import_line_is_named_and_nothing_is_imported(
    redis_server: RedisProcess, server: LivefeedServer, http: httpx.Client, tmp_path: Path,
    bad_line: str, message: str,
) -> None:  # fmt: skip
    slug = make_feed(http)
    good = [
        '{"published_at": "2024-05-01T09:00:00.000Z", "headline": "one"}',
        '{"published_at": "2024-05-01T09:30:00.000Z", "headline": "two"}',
    ]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join([*good, bad_line, good[1]]) + "\n")
    done = livefeed("import", slug, str(path), *common(redis_server, server))
    assert done.returncode == 1
    assert message in done.stderr
    assert stream_length(redis_server, server, slug) == 0
    assert http.get(f"/api/feeds/{slug}/days").json()["days"] == []


@ON_BOTH
def test_import_must_come_after_what_the_feed_holds(
    redis_server: RedisProcess, server: LivefeedServer, http: httpx.Client, tmp_path: Path
) -> None:
    slug = make_feed(http)
    publish(http, slug, "Live today")
    path = tmp_path / "old.jsonl"
    path.write_text('{"published_at": "2024-05-01T09:00:00Z", "headline": "old"}\n')
    done = livefeed("import", slug, str(path), *common(redis_server, server))
    assert done.returncode == 1 and "line 1" in done.stderr and "already holds" in done.stderr
    assert stream_length(redis_server, server, slug) == 1


def test_imported_briefs_keep_their_times_and_ids_follow_them(
    http: httpx.Client, kyiv_feed: str
) -> None:
    day = http.get(f"/api/feeds/{kyiv_feed}/days/2024-03-30").json()
    first = day["briefs"][0]
    ms = int(datetime.fromisoformat(first["published_at"]).timestamp() * 1000)
    assert first["id"] == f"{ms}-0"


def test_day_page_is_readable_without_javascript(http: httpx.Client, kyiv_feed: str) -> None:
    page = http.get(f"/feeds/{kyiv_feed}/days/2024-10-27")
    assert page.status_code == 200
    html = page.text
    assert html.index("Brief 8") < html.index("Brief 9") < html.index("Brief 11"), "oldest first"
    assert "25-hour day" in html
    assert "03:30 EEST" in html and "03:30 EET" in html, "the repeated hour is told apart"
    assert f'href="/feeds/{kyiv_feed}/days/2024-10-26"' in html, "previous day with briefs"
    assert f'href="/feeds/{kyiv_feed}/days/2024-10-28"' in html, "next day with briefs"
    assert '<option value="2024-03-31">' in html, "the picker offers days that have briefs"
    assert '<option value="2024-07-01"' not in html
    assert f'href="/feeds/{kyiv_feed}"' in html, "back to the live page"
    assert f'href="/feeds/{kyiv_feed}/days"' in http.get(f"/feeds/{kyiv_feed}").text, (
        "live page links the archive"
    )


def test_the_day_picker_and_archive_link_redirect_to_a_day(
    http: httpx.Client, kyiv_feed: str
) -> None:
    picked = http.get(f"/feeds/{kyiv_feed}/days", params={"date": "2024-03-31"})
    assert picked.status_code == 303 and picked.headers["location"].endswith("/days/2024-03-31")
    latest = http.get(f"/feeds/{kyiv_feed}/days")
    assert latest.headers["location"].endswith("/days/2024-10-28")
    assert http.get(f"/feeds/{kyiv_feed}/days/2024-02-30").status_code == 404
