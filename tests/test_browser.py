"""The reader page in a real headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Dialog, Page, expect

from helpers import (
    TOKEN,
    LivefeedServer,
    RedisProcess,
    auth,
    image_bytes,
    livefeed,
    make_feed,
    publish,
    upload,
)

pytestmark = pytest.mark.browser


def test_a_published_brief_appears_at_the_top_within_a_second(
    page: Page, server: LivefeedServer, http: httpx.Client
) -> None:
    slug = make_feed(http)
    publish(http, slug, "Already there")
    page.goto(f"{server.base}/feeds/{slug}")
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "live", timeout=5000)
    publish(http, slug, "Fresh from the newsroom")
    first = page.locator("#briefs > li.brief").first
    expect(first.locator(".brief-headline")).to_have_text("Fresh from the newsroom", timeout=1000)
    expect(page.locator("#briefs > li.brief")).to_have_count(2)


def test_a_scrolled_reader_gets_a_new_updates_button_instead_of_a_jump(
    page: Page, server: LivefeedServer, http: httpx.Client
) -> None:
    slug = make_feed(http)
    long_body = "\n\n".join(["A long paragraph of reporting that takes up room."] * 6)
    for n in range(12):
        publish(http, slug, f"Earlier brief {n}", body=long_body)
    page.goto(f"{server.base}/feeds/{slug}")
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "live", timeout=5000)
    page.mouse.wheel(0, 2500)
    page.wait_for_function("() => window.scrollY > 1000")
    scrolled_to = page.evaluate("window.scrollY")

    publish(http, slug, "Update while scrolled")
    button = page.locator("#new-updates")
    expect(button).to_be_visible(timeout=2000)
    expect(button).to_have_text("1 new update")
    expect(page).to_have_title(f"(1) Feed {slug} — live")
    assert page.evaluate("window.scrollY") == scrolled_to, "the reader was not moved"
    expect(page.locator("#briefs > li.brief").first.locator(".brief-headline")).to_have_text(
        "Earlier brief 11"
    )

    publish(http, slug, "Second while scrolled")
    expect(button).to_have_text("2 new updates", timeout=2000)
    expect(page.locator("#announcer")).to_contain_text("new update", timeout=3000)

    button.click()
    expect(button).to_be_hidden()
    headlines = page.locator("#briefs > li.brief .brief-headline")
    expect(headlines.nth(0)).to_have_text("Second while scrolled")
    expect(headlines.nth(1)).to_have_text("Update while scrolled")
    expect(page).to_have_title(f"Feed {slug} — live")


def test_load_older_appends_earlier_briefs(
    page: Page, server: LivefeedServer, http: httpx.Client
) -> None:
    slug = make_feed(http)
    for n in range(25):
        publish(http, slug, f"Brief {n:02d}")
    page.goto(f"{server.base}/feeds/{slug}")
    expect(page.locator("#briefs > li.brief")).to_have_count(20)
    page.locator("#load-older").click()
    expect(page.locator("#briefs > li.brief")).to_have_count(25)
    expect(page.locator("#briefs > li.brief").last.locator(".brief-headline")).to_have_text(
        "Brief 00"
    )
    expect(page.locator("#load-older")).to_have_count(0)


def test_the_page_reconnects_after_a_server_restart_and_shows_what_it_missed(
    page: Page, redis_server: RedisProcess, tmp_path: Path
) -> None:
    prefix = "restart-" + uuid.uuid4().hex[:6]
    server = LivefeedServer(redis_server.url, prefix)
    other = LivefeedServer(redis_server.url, prefix)  # a second process on the same Redis
    server.start(log_dir=tmp_path)
    other.start(log_dir=tmp_path)
    try:
        with httpx.Client(base_url=server.base) as client:
            slug = make_feed(client)
            publish(client, slug, "Before the restart")
        page.goto(f"{server.base}/feeds/{slug}")
        status = page.locator("#conn-status")
        expect(status).to_have_attribute("data-state", "live", timeout=5000)

        server.stop()
        expect(status).not_to_have_attribute("data-state", "live", timeout=5000)
        with httpx.Client(base_url=other.base) as client:
            publish(client, slug, "Published while the server was down")
        server.start(log_dir=tmp_path)

        expect(status).to_have_attribute("data-state", "live", timeout=20000)
        headlines = page.locator("#briefs > li.brief .brief-headline")
        expect(headlines.first).to_have_text("Published while the server was down")
        expect(headlines).to_have_count(2)
    finally:
        server.stop()
        other.stop()


def test_the_page_is_usable_on_a_phone(
    browser: Browser, server: LivefeedServer, http: httpx.Client
) -> None:
    slug = make_feed(http)
    publish(http, slug, "A headline that is long enough to wrap on a narrow phone screen")
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True)
    try:
        page = context.new_page()
        page.goto(f"{server.base}/feeds/{slug}")
        expect(page.locator("#briefs > li.brief")).to_have_count(1)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, "no horizontal scrolling on a 360px screen"
    finally:
        context.close()


def test_a_day_replay_plays_pauses_and_scrubs(
    page: Page,
    server: LivefeedServer,
    redis_server: RedisProcess,
    http: httpx.Client,
    tmp_path: Path,
) -> None:
    import json

    slug = make_feed(http, timezone="UTC")
    times = ["09:00:00", "09:00:20", "09:00:40", "12:00:00", "12:00:20"]
    path = tmp_path / "day.jsonl"
    path.write_text(
        "".join(
            json.dumps({"published_at": f"2024-05-01T{t}.000Z", "headline": f"At {t}"}) + "\n"
            for t in times
        )
    )
    assert (
        livefeed(
            "import",
            slug,
            str(path),
            "--redis-url",
            redis_server.url,
            "--key-prefix",
            server.prefix,
        ).returncode
        == 0
    )

    page.goto(f"{server.base}/feeds/{slug}/days/2024-05-01")
    expect(page.locator("#replay")).to_be_visible()
    expect(page.locator("#briefs > li.brief")).to_have_count(5)  # the archive, before any replay
    page.select_option("#replay-speed", "10")
    page.locator("#replay-play").click()
    replayed = page.locator("#replay-briefs > li.brief .brief-headline")
    # Midnight to 09:00 is a quiet spell, skipped to 3 s; then 20 s of the day take 2 s at 10x.
    expect(replayed.first).to_be_visible(timeout=10000)
    expect(page.locator("#replay-status")).to_contain_text("Skipped a quiet spell")
    page.locator("#replay-pause").click()
    expect(page.locator("#replay-pause")).to_have_text("Resume")
    page.wait_for_timeout(500)  # the server's replay_state settles the clock
    clock = page.evaluate("window.livefeedReplay.state().clock")
    shown = page.evaluate("window.livefeedReplay.state().shown")
    page.wait_for_timeout(2500)
    state = page.evaluate("window.livefeedReplay.state()")
    assert state["paused"] and state["shown"] == shown, "nothing plays while paused"
    assert state["clock"] == clock, "the clock stands still"
    page.locator("#replay-pause").click()
    expect(page.locator("#replay-pause")).to_have_text("Pause")

    page.select_option("#replay-speed", "600")
    received = page.evaluate("window.livefeedReplay.state().received")
    # Scrub to 11:00 while playing: the page is rebuilt as it stood then, and plays on.
    page.evaluate(
        """() => { const s = document.querySelector('#replay-scrubber');
                   s.value = String(11 * 60);
                   s.dispatchEvent(new Event('input')); s.dispatchEvent(new Event('change')); }"""
    )
    expect(page.locator("#replay-status")).to_contain_text("End of the day", timeout=10000)
    assert replayed.all_text_contents() == [f"At {t}" for t in reversed(times)], (
        "newest on top, none twice"
    )
    state = page.evaluate("window.livefeedReplay.state()")
    # Counted from the seek's replay_start: briefs already on the way when it was sent come
    # before it on the socket, so a loaded machine cannot add to this count.
    assert state["sinceStart"] == 5, (
        "the seek resent the three morning briefs, then the two at noon"
    )
    assert state["received"] >= received + 5


def test_the_editor_page_runs_a_live_blog_and_a_reader_sees_each_change(
    browser: Browser, server: LivefeedServer, http: httpx.Client
) -> None:
    slug = make_feed(http)
    publish(http, slug, "Opening brief")
    editor_ctx = browser.new_context(viewport={"width": 1200, "height": 900})
    reader_ctx = browser.new_context(viewport={"width": 800, "height": 900})
    errors: list[str] = []
    try:
        editor, reader = editor_ctx.new_page(), reader_ctx.new_page()
        for p in (editor, reader):
            p.on("pageerror", lambda exc: errors.append(str(exc)))
        reader.goto(f"{server.base}/feeds/{slug}")
        expect(reader.locator("#conn-status")).to_have_attribute("data-state", "live", timeout=5000)

        editor.goto(f"{server.base}/editor?feed={slug}")
        editor.fill("#token", TOKEN)
        editor.click("#sign-in")
        expect(editor.locator("#editor-name")).to_have_text("Newsroom")
        expect(editor.locator("#author")).to_have_value("Newsroom")
        expect(editor.locator("#recent li[data-id]")).to_have_count(1)

        # Publish, with a preview first.
        editor.fill("#headline", "Bridge closed after crash")
        editor.fill("#body", "Police closed the bridge.\n\nDiversions are in place.")
        editor.click("#preview")
        expect(editor.locator("#preview-output .brief-body p")).to_have_count(2)
        editor.locator("#body").press("Control+Enter")
        top = reader.locator("#briefs > li.brief").first
        expect(top.locator(".brief-headline")).to_have_text(
            "Bridge closed after crash", timeout=1000
        )
        item = editor.locator("#recent li[data-id]").first
        expect(item).to_contain_text("Bridge closed after crash")

        # Correct it: the reader's copy changes in place and says so.
        item.locator(".edit").click()
        editor.fill("#recent li[data-id] .edit-headline", "Bridge reopened after crash")
        item.locator(".save").click()
        expect(top.locator(".brief-headline")).to_have_text(
            "Bridge reopened after crash", timeout=1000
        )
        expect(top.locator(".brief-updated")).to_contain_text("Updated")
        expect(reader.locator("#briefs > li.brief")).to_have_count(2)

        # Pin it, then mark it a key event.
        item.locator(".pin").click()
        expect(reader.locator("#pinned")).to_be_visible(timeout=1000)
        expect(reader.locator("#pinned .brief-headline")).to_have_text(
            "Bridge reopened after crash"
        )
        item.locator(".key-toggle").click()
        expect(reader.locator("#key-events")).to_be_visible(timeout=1000)
        expect(reader.locator("#key-events")).to_contain_text("Bridge reopened after crash")

        # Retract it: gone from the list, the pin and the key events.
        editor.once("dialog", lambda dialog: dialog.accept())
        item.locator(".delete").click()
        expect(reader.locator("#briefs > li.brief")).to_have_count(1, timeout=1000)
        expect(reader.locator("#pinned")).to_be_hidden()
        expect(reader.locator("#key-events")).to_be_hidden()
        expect(reader.locator("#briefs .brief-headline")).to_have_text(["Opening brief"])

        # End coverage from the editor page.
        editor.click("#coverage-toggle")
        expect(reader.locator("#coverage-ended")).to_be_visible(timeout=1000)
    finally:
        editor_ctx.close()
        reader_ctx.close()
    assert not errors, errors


XSS_BODIES = [
    '<img src=x onerror="alert(1)">',
    '<a href="javascript:alert(2)">click</a> <a href="JaVaScRiPt:alert(3)">again</a>',
    '<a href="data:text/html,&lt;script&gt;alert(4)&lt;/script&gt;">data link</a>',
    "<svg onload=alert(5)><script>alert(6)</script></svg>",
    '<p onclick="alert(7)">broken <b>markup <i>never closed',
    '<iframe src="javascript:alert(8)"></iframe><object data="javascript:alert(9)"></object>',
    '<math><mi xlink:href="javascript:alert(10)">m</mi></math><style>body{display:none}</style>',
    "<scr<script>ipt>alert(11)</script>",
]


def test_hostile_briefs_run_no_script_on_reader_archive_and_editor_pages(
    browser: Browser, server: LivefeedServer, http: httpx.Client
) -> None:
    slug = make_feed(http)
    photo = upload(http, image_bytes(64, 48))["id"]
    media = [{"id": photo, "alt": '"><img src=x onerror=alert(17)>', "credit": "<script>alert(18)</script>",
              "caption": "</figcaption><svg onload=alert(19)>"}]  # fmt: skip

    corrected: list[str] = []

    def publish_hostile(round_: int) -> None:
        for n, body in enumerate(XSS_BODIES):
            publish(http, slug, f'<script>alert("h{round_}{n}")</script>"><img src=x onerror=alert(0)>',
                    body=body, author='<img src=x onerror="alert(12)">', tags=["<script>alert(13)</script>"],
                    media=media)  # fmt: skip
        hostile = '<img src=x onerror="alert(14)"><script>alert(15)</script>'
        first = http.get(f"/api/feeds/{slug}/briefs", params={"limit": 1}).json()["briefs"][0]
        note = {"headline": f"{hostile} {round_}", "body": "".join(XSS_BODIES[::-1]),
                "correction_note": hostile}  # fmt: skip
        fixed = http.patch(f"/api/feeds/{slug}/briefs/{first['id']}", json=note, headers=auth())
        assert fixed.is_success and fixed.json()["correction"]["note"] == hostile
        corrected.append(first["id"])
        lead = {"headline": hostile, "standfirst": hostile, "body": "".join(XSS_BODIES),
                "author": hostile, "media": [{"id": photo, "alt": hostile, "caption": hostile,
                                              "credit": hostile}]}  # fmt: skip
        assert http.put(f"/api/feeds/{slug}/lead", json=lead, headers=auth()).is_success
        summary = {"title": hostile, "items": XSS_BODIES}
        assert http.put(f"/api/feeds/{slug}/summary", json=summary, headers=auth()).is_success

    publish_hostile(1)  # rendered by the server
    context = browser.new_context()
    dialogs: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    try:
        page = context.new_page()
        page.on("dialog", dismiss)
        page.goto(f"{server.base}/feeds/{slug}")
        expect(page.locator("#conn-status")).to_have_attribute("data-state", "live", timeout=5000)
        publish_hostile(2)  # rendered by feed.js as they arrive
        expect(page.locator("#briefs > li.brief")).to_have_count(2 * len(XSS_BODIES), timeout=5000)
        expect(page.locator("#lead")).to_have_attribute("data-version", "2", timeout=5000)
        expect(page.locator("#summary")).to_have_attribute("data-version", "2", timeout=5000)
        expect(page.locator("#summary .summary-items li")).to_have_count(len(XSS_BODIES))
        pages = [page]
        day = http.get(f"/api/feeds/{slug}/days").json()["days"][0]["date"]
        archive = context.new_page()
        archive.on("dialog", dismiss)
        archive.goto(f"{server.base}/feeds/{slug}/days/{day}")
        archive.locator("#replay-speed").select_option("600")
        archive.locator("#replay-play").click()
        expect(archive.locator("#replay-status")).to_contain_text("End of the day", timeout=15000)
        editor = context.new_page()
        editor.on("dialog", dismiss)
        editor.goto(f"{server.base}/editor?feed={slug}")
        editor.fill("#token", TOKEN)
        editor.click("#sign-in")
        expect(editor.locator("#recent li[data-id]").first).to_be_visible(timeout=5000)
        editor.locator("#recent li[data-id] .history").first.click()
        changes = context.new_page()
        changes.on("dialog", dismiss)
        changes.goto(f"{server.base}/feeds/{slug}/briefs/{corrected[-1]}/changes")
        expect(changes.locator(".change")).to_have_count(1)
        expect(page.locator(".brief-correction")).to_have_count(2, timeout=5000)
        pages += [archive, editor, changes]
        editor.wait_for_timeout(500)
        for p in pages:
            unsafe = p.evaluate(
                """() => {
                    const bad = [];
                    for (const el of document.querySelectorAll('main *, #recent *, #pinned *')) {
                        for (const attr of el.attributes) {
                            if (attr.name.startsWith('on')) bad.push(el.tagName + ' ' + attr.name);
                        }
                        if (['SCRIPT', 'IFRAME', 'OBJECT', 'EMBED', 'SVG', 'MATH', 'STYLE'].includes(el.tagName.toUpperCase()))
                            bad.push(el.tagName);
                        const href = el.getAttribute('href');
                        if (href !== null && !/^(https?:|mailto:|\\/|#)/i.test(href)) bad.push('href ' + href);
                    }
                    return bad;
                }"""
            )
            assert unsafe == [], f"{p.url}: {unsafe}"
    finally:
        context.close()
    assert dialogs == [], "no script ran"
