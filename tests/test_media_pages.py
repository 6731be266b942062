"""Images and audio as readers see them: server-rendered and JS-rendered alike, galleries, and
a reader's place kept while briefs with pictures arrive above it."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import feedparser
import httpx
from playwright.sync_api import FilePayload, Page, expect

from helpers import TOKEN, LivefeedServer, auth, image_bytes, make_feed, publish, upload

MP3 = b"\xff\xfb\x90\x64" + bytes(413)


def _media(http: httpx.Client) -> list[dict[str, Any]]:
    """A photo (caption, credit), a second photo and an audio clip with a transcript."""
    first = upload(http, image_bytes(1200, 800))
    second = upload(http, image_bytes(900, 900, "PNG"))
    sound = upload(http, MP3 * 2)
    return [
        {"id": first["id"], "alt": "Smoke over the port", "caption": "The port at dawn",
         "credit": "Photo: Reader"},
        {"id": second["id"], "alt": "A red square"},
        {"id": sound["id"], "caption": "The mayor speaking", "transcript": "We will rebuild."},
    ]  # fmt: skip


def _file(name: str, data: bytes) -> FilePayload:
    return {"name": name, "mimeType": "image/jpeg", "buffer": data}


def _normalised(html: str) -> str:
    return re.sub(r">\s+<", "><", html).strip()


def test_page_shows_figures_with_srcset_sizes_and_credit(http: httpx.Client) -> None:
    """The server-rendered page has <figure>, <img srcset sizes width height lazy alt>, a
    figcaption with the credit, a link to the full size, and <audio controls> with its transcript."""
    slug = make_feed(http)
    media = _media(http)
    publish(http, slug, "Pictures", media=media)
    html = http.get(f"/feeds/{slug}").text
    first = media[0]["id"]
    assert f'srcset="/media/{first}/320.webp 320w, /media/{first}/640.webp 640w' in html
    img = re.search(r"<img [^>]*alt=\"Smoke over the port\"[^>]*>", html)
    assert img is not None
    for attribute in ('width="1200"', 'height="800"', 'loading="lazy"', 'decoding="async"',
                      "sizes=", f"/media/{first}/1024.jpg 1024w"):  # fmt: skip
        assert attribute in img.group(), attribute
    assert f'<a class="media-full" href="/media/{first}/1200.jpg"' in html
    assert '<span class="media-credit" dir="auto">Photo: Reader</span>' in html
    assert f'<audio controls preload="none" src="/media/{media[2]["id"]}/audio.mp3">' in html
    assert "We will rebuild." in html and "brief-gallery" not in html


def test_js_renders_media_as_the_server_does_and_gallery_slides(
    page: Page, server: LivefeedServer, http: httpx.Client
) -> None:
    """A gallery brief arriving live has the same markup as the server's, and its buttons move
    from one picture to the next."""
    slug = make_feed(http)
    media = _media(http)
    publish(http, slug, "Gallery, rendered", media=media, gallery=True)
    page.goto(f"{server.base}/feeds/{slug}")
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "live", timeout=5000)
    publish(http, slug, "Gallery, live", media=media, gallery=True)
    expect(page.locator("#briefs > li.brief")).to_have_count(2, timeout=5000)
    blocks = page.locator("#briefs > li.brief article")
    live, served = (
        _normalised(blocks.nth(i).evaluate(
            "a => [...a.querySelectorAll('.brief-media, .gallery-controls')]"
            ".map(e => e.outerHTML).join('')"
        ))
        for i in (0, 1)
    )  # fmt: skip
    assert "brief-gallery" in live
    assert live == served
    gallery = page.locator("#briefs > li.brief").first
    count = gallery.locator(".gallery-count")
    expect(count).to_have_text("1 / 3")
    gallery.locator(".gallery-next").click()
    expect(count).to_have_text("2 / 3")
    gallery.locator(".gallery-prev").click()
    expect(count).to_have_text("1 / 3")


def test_pictures_arriving_above_do_not_move_the_reader(
    page: Page, server: LivefeedServer, http: httpx.Client
) -> None:
    """A reader scrolled down keeps what they read in place while an image brief is published
    and a brief above gains a picture by correction (sizes are reserved before images load)."""
    slug = make_feed(http)
    photo = upload(http, image_bytes(1600, 1200))
    long_body = "\n\n".join(["A paragraph of reporting that takes up some room."] * 4)
    briefs = [publish(http, slug, f"Brief {n}", body=long_body) for n in range(8)]
    page.goto(f"{server.base}/feeds/{slug}")
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "live", timeout=5000)
    reading = page.locator(f'[id="{briefs[2]["id"]}"]')
    reading.scroll_into_view_if_needed()
    page.mouse.wheel(0, 200)
    page.wait_for_function("() => window.scrollY > 800")
    top = reading.evaluate("e => e.getBoundingClientRect().top")
    item = {"id": photo["id"], "alt": "A big picture"}
    publish(http, slug, "A picture on top", media=[item])
    expect(page.locator("#new-updates")).to_be_visible(timeout=3000)
    response = http.patch(
        f"/api/feeds/{slug}/briefs/{briefs[6]['id']}", json={"media": [item]}, headers=auth()
    )
    assert response.status_code == 200
    above = page.locator(f'[id="{briefs[6]["id"]}"] img')
    expect(above).to_have_count(1, timeout=3000)
    # Its box is sized from width and height before a byte of it loads.
    assert above.evaluate("i => getComputedStyle(i).aspectRatio") == "auto 1600 / 1200"
    page.wait_for_function("() => [...document.images].every(i => i.complete)", timeout=10000)
    moved = reading.evaluate("e => e.getBoundingClientRect().top") - top
    assert abs(moved) <= 1, f"the brief being read moved {moved} px"


def _json_ld(html: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
    assert found is not None
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def test_json_ld_and_link_previews_carry_the_lead_image(http: httpx.Client) -> None:
    """Live and day pages: each update has ImageObjects, the LiveBlogPosting the lead image's
    16:9, 4:3 and 1:1 crops, and og:image with twitter:card summary_large_image."""
    slug = make_feed(http)
    media = _media(http)
    plain = http.get(f"/feeds/{slug}").text
    assert 'content="summary"' in plain and "og:image" not in plain
    publish(http, slug, "Pictures", media=[{**media[1], "role": "lead"}, media[0], media[2]])
    day = http.get(f"/api/feeds/{slug}/days").json()["days"][0]["date"]
    assert http.get(f"/api/feeds/{slug}/days/{day}").json()["briefs"][0]["media"][0]["id"]
    for path in (f"/feeds/{slug}", f"/feeds/{slug}/days/{day}"):
        html = http.get(path).text
        lead = media[1]["id"]
        posting = _json_ld(html)
        assert posting["image"] == [
            f"{server_base(http)}/media/{lead}/{crop}.jpg" for crop in ("16x9", "4x3", "1x1")
        ]
        (update,) = posting["liveBlogUpdate"]
        assert [i["@type"] for i in update["image"]] == ["ImageObject", "ImageObject"]
        second = update["image"][1]
        assert second["url"].endswith(f"/media/{media[0]['id']}/1200.jpg")
        assert (second["width"], second["height"], second["creditText"]) == (
            1200, 800, "Photo: Reader",
        )  # fmt: skip
        assert (
            f'<meta property="og:image" content="{server_base(http)}/media/{lead}/16x9.jpg">'
            in html
        )
        assert '<meta property="og:image:width" content="900">' in html  # 900x506, 16:9
        assert '<meta name="twitter:card" content="summary_large_image">' in html
        assert '<img src="' in html and "<figure" in html, "the day page shows them too"


def test_atom_and_json_feed_carry_enclosures_and_attachments(http: httpx.Client) -> None:
    """Atom entries get an enclosure link per item; JSON Feed items an image and attachments."""
    slug = make_feed(http)
    media = _media(http)
    publish(http, slug, "Pictures", media=media)
    atom = feedparser.parse(http.get(f"/feeds/{slug}/atom.xml").content)
    (entry,) = atom.entries
    enclosures = [(e["href"].rsplit("/", 1)[1], e["type"]) for e in entry.enclosures]
    assert enclosures == [("1200.jpg", "image/jpeg"), ("900.jpg", "image/jpeg"),
                          ("audio.mp3", "audio/mpeg")]  # fmt: skip
    assert [link["rel"] for link in entry.links].count("alternate") == 1
    (item,) = http.get(f"/feeds/{slug}/feed.json").json()["items"]
    assert item["image"] == f"{server_base(http)}/media/{media[0]['id']}/1200.jpg"
    assert [a["mime_type"] for a in item["attachments"]] == ["image/jpeg", "image/jpeg",
                                                             "audio/mpeg"]  # fmt: skip
    assert item["attachments"][0]["title"] == "The port at dawn"


def server_base(http: httpx.Client) -> str:
    return str(http.base_url).rstrip("/")


def test_editor_uploads_describes_orders_and_publishes_pictures(
    page: Page, server: LivefeedServer, http: httpx.Client
) -> None:
    """On the editor page an editor chooses a file and drops another, is asked for alt text,
    sees the renditions in the preview, reorders and removes items, publishes them, and then
    corrects a caption and a credit from the brief's edit form."""
    slug = make_feed(http)
    page.set_viewport_size({"width": 1200, "height": 1000})
    page.goto(f"{server.base}/editor?feed={slug}")
    page.fill("#token", TOKEN)
    page.click("#sign-in")
    expect(page.locator("#editor-name")).to_have_text("Newsroom")
    first, second = image_bytes(700, 500), image_bytes(640, 640, "PNG")
    page.set_input_files("#media-file", files=[_file("one.jpg", first)])
    items = page.locator("#media-list > li")
    expect(items).to_have_count(1, timeout=10000)
    expect(items.first.locator("img.media-thumb")).to_be_visible()
    expect(items.first.locator("input[id$='-alt']")).to_be_focused()
    dropped = page.evaluate_handle(
        """(b64) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], "two.png", { type: "image/png" }));
            return transfer;
        }""",
        base64.b64encode(second).decode(),
    )
    page.dispatch_event("#compose-form", "drop", {"dataTransfer": dropped})
    expect(items).to_have_count(2, timeout=10000)
    page.fill("#headline", "Two pictures")
    page.click("#publish")
    expect(page.locator("#compose-message")).to_have_text("An image needs its alt text.")
    expect(items.first.locator("input[id$='-alt']")).to_be_focused()
    items.nth(0).locator("input[id$='-alt']").fill("A grey gradient")
    items.nth(0).locator("input[id$='-caption']").fill("First caption")
    items.nth(1).locator("input[id$='-alt']").fill("A red box")
    items.nth(1).locator("input[id$='-credit']").fill("Photo: Desk")
    items.nth(1).locator(".media-up").click()
    page.click("#preview")
    preview = page.locator("#preview-output figure img")
    expect(preview).to_have_count(2)
    expect(preview.first).to_have_attribute("alt", "A red box")
    expect(page.locator("#preview-output .media-credit")).to_have_text("Photo: Desk")
    page.set_input_files("#media-file", files=[_file("three.jpg", image_bytes(300, 200))])
    expect(items).to_have_count(3, timeout=10000)
    items.nth(2).locator(".media-remove").click()
    expect(items).to_have_count(2)
    page.click("#publish")
    expect(page.locator("#compose-message")).to_contain_text("Published", timeout=5000)
    expect(items).to_have_count(0)
    (brief,) = http.get(f"/api/feeds/{slug}/briefs").json()["briefs"]
    assert [(m["alt"], m["caption"], m["credit"]) for m in brief["media"]] == [
        ("A red box", "", "Photo: Desk"),
        ("A grey gradient", "First caption", ""),
    ]
    # A correction of a caption and a credit from the recent briefs' edit form.
    recent = page.locator(f'#recent li[data-id="{brief["id"]}"]')
    recent.locator("button.edit").click()
    form = recent.locator("form.edit-form")
    form.locator("input[id$='-caption']").first.fill("A box, corrected")
    form.locator("input[id$='-credit']").nth(1).fill("Photo: Archive")
    form.locator("button.save").click()
    expect(page.locator("#recent-message")).to_contain_text("now version 2", timeout=5000)
    (corrected,) = http.get(f"/api/feeds/{slug}/briefs").json()["briefs"]
    assert [(m["caption"], m["credit"]) for m in corrected["media"]] == [
        ("A box, corrected", "Photo: Desk"),
        ("First caption", "Photo: Archive"),
    ]
