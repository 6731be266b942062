"""Corrections readers can see: a note stored and shown, "What changed" diffs, feeds and exports.

HTTP tests run against the session's livefeed server; the browser test drives Chromium.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import feedparser
import httpx
import pytest
from markupsafe import escape
from playwright.sync_api import Page, expect

from helpers import TOKEN, LivefeedServer, RedisProcess, auth, livefeed, make_feed, publish
from livefeed.model.schema import BODY_MAX, CORRECTION_NOTE_MAX
from livefeed.pages.changes import BUDGET, public_changes, word_diff

NOTE = "Casualty figure updated from 3 to 5"


def correct(http: httpx.Client, slug: str, brief_id: str, **fields: Any) -> httpx.Response:
    return http.patch(f"/api/feeds/{slug}/briefs/{brief_id}", json=fields, headers=auth())


def corrected(http: httpx.Client, slug: str, note: str = NOTE) -> dict[str, Any]:
    """A brief published and then corrected in public with ``note``; the corrected brief."""
    brief = publish(http, slug, "Three hurt in crash", body="Three people were hurt.")
    response = correct(
        http, slug, brief["id"], headline="Five hurt in crash",
        body="Five people were hurt.", correction_note=note,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    updated: dict[str, Any] = response.json()
    return updated


# --- the API ---------------------------------------------------------------------------------


def test_a_correction_note_is_stored_with_its_time_and_kept_in_history(
    http: httpx.Client, feed: str
) -> None:
    """The brief carries its latest note and when; every note stays in its history."""
    brief = corrected(http, feed)
    assert brief["correction"] == {"note": NOTE, "at": brief["updated_at"]}
    stored = http.get(f"/api/feeds/{feed}/briefs/{brief['id']}").json()
    assert stored["correction"] == brief["correction"]
    second = correct(http, feed, brief["id"], body="Six people were hurt.",
                     correction_note="  Now six,\n  police say ")  # fmt: skip
    assert second.json()["correction"]["note"] == "Now six, police say"
    versions = http.get(f"/api/feeds/{feed}/briefs/{brief['id']}/history").json()["versions"]
    notes = [(v["brief"]["correction"] or {}).get("note") for v in versions]
    assert notes == [None, NOTE, "Now six, police say"]


def test_a_silent_fix_shows_nothing_new_and_keeps_the_last_note(
    http: httpx.Client, feed: str
) -> None:
    """Without a note (absent, empty or null) a correction adds no public correction."""
    plain = publish(http, feed, "Typo hedline")
    for note in ({}, {"correction_note": ""}, {"correction_note": None}):
        response = correct(http, feed, plain["id"], headline="Typo headline", **note)
        assert response.status_code == 200 and response.json()["correction"] is None
    noted = corrected(http, feed)
    fixed = correct(http, feed, noted["id"], body="Five people were hurt, two badly.").json()
    assert fixed["correction"] == noted["correction"]
    page = http.get(f"/feeds/{feed}").text
    assert page.count('class="brief-correction"') == 1


@pytest.mark.parametrize(
    ("fields", "status", "code"),
    [
        ({"correction_note": "x" * (CORRECTION_NOTE_MAX + 1)}, 422, "too_long"),
        ({"correction_note": 5}, 422, "invalid_type"),
        ({"correction_note": ["a"]}, 422, "invalid_type"),
        ({"correction_note": "bad \x00 byte"}, 422, "invalid_text"),
        ({}, 400, "empty_patch"),
    ],
)
def test_a_bad_correction_note_is_refused_and_changes_nothing(
    http: httpx.Client, feed: str, fields: dict[str, Any], status: int, code: str
) -> None:
    """Too long, not a string, forbidden characters, or a note without a change: 4xx, no change."""
    brief = publish(http, feed, "Unchanged")
    body = {"headline": "Changed"} if fields else {"correction_note": NOTE}
    response = correct(http, feed, brief["id"], **{**body, **fields})
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert http.get(f"/api/feeds/{feed}/briefs/{brief['id']}").json()["version"] == 1


def test_a_note_at_the_limit_is_taken(http: httpx.Client, feed: str) -> None:
    """A note of exactly the limit is a correction like any other."""
    brief = corrected(http, feed, note="n" * CORRECTION_NOTE_MAX)
    assert len(brief["correction"]["note"]) == CORRECTION_NOTE_MAX


def test_the_openapi_document_describes_the_note(http: httpx.Client) -> None:
    """BriefPatch takes correction_note (with its limit); Brief has a correction."""
    schemas = http.get("/openapi.json").json()["components"]["schemas"]
    assert schemas["BriefPatch"]["properties"]["correction_note"]
    assert str(CORRECTION_NOTE_MAX) in json.dumps(schemas["BriefPatch"]["properties"])
    assert "correction" in schemas["Brief"]["properties"]


# --- pages -----------------------------------------------------------------------------------


def test_the_page_shows_the_note_and_what_changed_as_a_word_diff(
    http: httpx.Client, feed: str
) -> None:
    """'Corrected HH:MM — note' under the brief links to a diff of headline and body."""
    brief = corrected(http, feed)
    page = http.get(f"/feeds/{feed}").text
    line = re.search(r'<p class="brief-correction">.*?</p>', page)
    assert line is not None
    assert f'<span class="brief-correction-note" dir="auto">{NOTE}</span>' in line.group(0)
    assert re.search(r"Corrected <time datetime=\"[^\"]+\">\d\d:\d\d</time> — ", line.group(0))
    href = f"/feeds/{feed}/briefs/{brief['id']}/changes"
    assert f'href="{href}"' in line.group(0)
    changes = http.get(href)
    assert changes.status_code == 200
    assert "<del>Three</del><ins>Five</ins> hurt in crash" in changes.text
    assert "<del>Three</del><ins>Five</ins> people were hurt." in changes.text
    assert NOTE in changes.text


def test_what_changed_of_an_unknown_brief_is_a_404_page(http: httpx.Client, feed: str) -> None:
    """An unknown or malformed brief id, or an unknown feed: a 404 page, not a 500."""
    for path in (f"/feeds/{feed}/briefs/1-0/changes", f"/feeds/{feed}/briefs/nope/changes",
                 "/feeds/no-such-feed/briefs/1-0/changes"):  # fmt: skip
        assert http.get(path).status_code == 404, path


def test_what_changed_never_shows_markup_from_the_note_or_the_text(
    http: httpx.Client, feed: str
) -> None:
    """Hostile headline, body and note come out escaped on the live page and the diff page."""
    hostile = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    brief = publish(http, feed, "Calm", body="<p>Calm &amp; quiet</p>")
    response = correct(http, feed, brief["id"], headline=f"Calm {hostile}",
                       body=f"<p>Calm {hostile}</p>", correction_note=hostile)  # fmt: skip
    assert response.status_code == 200
    for path in (f"/feeds/{feed}", f"/feeds/{feed}/briefs/{brief['id']}/changes"):
        text = http.get(path).text
        assert "<script>alert" not in text and "<img src=x" not in text, path
    diff = http.get(f"/feeds/{feed}/briefs/{brief['id']}/changes").text
    assert str(escape(hostile)) in diff


def test_a_word_diff_gives_back_both_texts_and_shows_a_huge_rewrite_whole() -> None:
    """Kept+deleted runs are the old text and kept+inserted the new; a span of words too big to
    compare within the budget is one deletion and one insertion, paragraphs matched first."""
    rewrite = (" ".join(f"a{n % 50}" for n in range(BODY_MAX // 4)),
               " ".join(f"b{n % 50}" for n in range(BODY_MAX // 4)))  # fmt: skip
    paragraphs = "\n".join(f"Paragraph {n} says {n}." for n in range(120))
    edited = (
        paragraphs,
        paragraphs.replace("says 7.", "says seven.").replace("Paragraph 100", "P 100"),
    )
    assert (BODY_MAX // 4) ** 2 > BUDGET
    for before, after in (rewrite, edited, ("", "New text"), ("Old text", "")):
        parts = word_diff(before, after)
        assert "".join(t for kind, t in parts if kind != "ins") == before
        assert "".join(t for kind, t in parts if kind != "del") == after
    assert [kind for kind, _ in word_diff(*rewrite)] == ["del", "ins"]
    changed = [t for kind, t in word_diff(*edited) if kind != "same"]
    assert changed == ["7.", "seven.", "Paragraph", "P"]


def test_the_changes_page_lists_only_the_newest_corrections() -> None:
    """Past ``shown`` public corrections, the older ones are counted, not diffed."""

    def version(n: int) -> dict[str, Any]:
        correction = {"note": f"note {n}", "at": f"2024-05-01T10:0{n}:00.000Z"} if n else None
        brief = {"version": n + 1, "headline": f"h{n}", "body": "", "correction": correction}
        return {"brief": brief}

    listed, older = public_changes([version(n) for n in range(4)], shown=2)
    assert [c.note for c in listed] == ["note 3", "note 2"] and older == 1
    assert listed[0].headline == [("del", "h2"), ("ins", "h3")]


# --- structured data and syndication ---------------------------------------------------------


def test_json_ld_atom_and_json_feed_carry_the_note(http: httpx.Client, feed: str) -> None:
    """schema.org CorrectionComment on the posting; the note in Atom and JSON Feed content."""
    brief = corrected(http, feed)
    page = http.get(f"/feeds/{feed}").text
    (block,) = re.findall(r'<script type="application/ld\+json">(.*?)</script>', page, re.S)
    postings = json.loads(block)["liveBlogUpdate"]
    (posting,) = [p for p in postings if p.get("correction")]
    assert posting["correction"] == {
        "@type": "CorrectionComment", "text": NOTE, "datePublished": brief["correction"]["at"]
    }  # fmt: skip
    atom = feedparser.parse(http.get(f"/feeds/{feed}/atom.xml").content)
    (entry,) = [e for e in atom.entries if "Five hurt" in e.title]
    assert f"Corrected: {NOTE}" in entry.content[0].value
    items = http.get(f"/feeds/{feed}/feed.json").json()["items"]
    (item,) = [i for i in items if i["title"] == "Five hurt in crash"]
    assert f"<em>Corrected: {NOTE}</em>" in item["content_html"]
    assert item["_livefeed"]["correction"] == brief["correction"]


# --- export and import -----------------------------------------------------------------------


def test_export_and_import_keep_the_note_byte_for_byte(
    redis_server: RedisProcess, server: LivefeedServer, http: httpx.Client, tmp_path: Path
) -> None:
    """A corrected brief's note survives export, import and export again, byte-identical."""
    slug = make_feed(http)
    corrected(http, slug)
    publish(http, slug, "Never corrected")
    opts = ["--redis-url", server.redis_url or redis_server.url, "--key-prefix", server.prefix]
    first = livefeed("export", slug, *opts)
    assert first.returncode == 0, first.stderr
    assert f'"correction":{{"note":"{NOTE}"' in first.stdout
    copy = make_feed(http)
    path = tmp_path / "export.jsonl"
    path.write_text(first.stdout)
    imported = livefeed("import", copy, str(path), *opts)
    assert imported.returncode == 0, imported.stderr
    assert livefeed("export", copy, *opts).stdout == first.stdout


def test_an_import_with_a_bad_correction_is_refused(
    redis_server: RedisProcess, server: LivefeedServer, http: httpx.Client, tmp_path: Path
) -> None:
    """A correction that is not {note, at}, or is dated before its brief, names the line."""
    slug = make_feed(http)
    opts = ["--redis-url", server.redis_url or redis_server.url, "--key-prefix", server.prefix]
    at = "2024-05-01T10:00:00.000Z"
    for correction, message in (
        ({"note": 5, "at": at}, "correction note must be a string"),
        ({"note": "x"}, "correction must be null or"),
        (
            {"note": "x", "at": "2024-05-01T09:00:00.000Z"},
            "the correction is dated before the brief",
        ),
    ):
        line = {"published_at": at, "headline": "h", "correction": correction}
        path = tmp_path / "bad.jsonl"
        path.write_text(json.dumps(line) + "\n")
        done = livefeed("import", slug, str(path), *opts)
        assert done.returncode != 0 and f"line 1: {message}" in done.stderr, done.stderr


# --- the browser -----------------------------------------------------------------------------


def test_a_correction_appears_live_as_the_server_renders_it_and_what_changed_opens(
    page: Page, server: LivefeedServer, http: httpx.Client
) -> None:
    """A noted correction arriving on an open page shows the server's markup; its link opens
    the diff page."""
    slug = make_feed(http)
    served = corrected(http, slug)
    page.goto(f"{server.base}/feeds/{slug}")
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "live", timeout=5000)
    live = publish(http, slug, "Three hurt in crash", body="Three people were hurt.")
    assert correct(http, slug, live["id"], headline="Five hurt in crash",
                   body="Five people were hurt.", correction_note=NOTE).is_success  # fmt: skip
    item = page.locator(f'#briefs > li[data-id="{live["id"]}"]')
    expect(item.locator(".brief-correction-note")).to_have_text(NOTE, timeout=5000)

    def markup(brief_id: str) -> str:
        line = page.locator(f'#briefs > li[data-id="{brief_id}"] .brief-correction')
        outer = str(line.evaluate("e => e.outerHTML")).replace(brief_id, "ID")
        return re.sub(r'<time datetime="[^"]+">[^<]+</time>', "<time>", outer)

    assert markup(live["id"]) == markup(served["id"])
    item.locator(".brief-changes").click()
    expect(page).to_have_url(re.compile(f"/briefs/{live['id']}/changes$"))
    expect(page.locator(".change-headline del")).to_have_text("Three")
    expect(page.locator(".change-headline ins")).to_have_text("Five")


def test_the_editors_edit_form_sends_a_correction_note(
    page: Page, server: LivefeedServer, http: httpx.Client
) -> None:
    """The Edit form's "Correction note (shown to readers)" field, capped at the model's limit,
    makes the save a public correction; the History panel shows the note, as text, on that
    version alone (not on a silent fix after it)."""
    slug = make_feed(http)
    brief = publish(http, slug, "Bridge closed")
    page.goto(f"{server.base}/editor?feed={slug}")
    page.fill("#token", TOKEN)
    page.click("#sign-in")
    item = page.locator("#recent li[data-id]").first
    expect(item).to_contain_text("Bridge closed", timeout=5000)
    item.locator(".edit").click()
    note = item.locator(".edit-correction_note")
    expect(page.get_by_label("Correction note (shown to readers)")).to_be_visible()
    expect(note).to_have_attribute("maxlength", str(CORRECTION_NOTE_MAX))
    item.locator(".edit-headline").fill("Bridge reopened")
    marked = f"{NOTE} <b>again</b>"
    note.fill(marked)
    item.locator(".save").click()
    expect(page.locator("#recent li[data-id] .edit-form")).to_have_count(0, timeout=5000)
    stored = http.get(f"/api/feeds/{slug}/briefs/{brief['id']}").json()
    assert stored["headline"] == "Bridge reopened"
    assert stored["correction"]["note"] == marked
    assert correct(http, slug, brief["id"], body="Open both ways.").is_success  # silent
    item.locator(".history").click()
    notes = item.locator(".history-table .history-note")
    expect(notes).to_have_text(["", marked, ""], timeout=5000)
    expect(notes.nth(1)).to_have_attribute("dir", "auto")
    expect(item.locator(".history-table b")).to_have_count(0)
