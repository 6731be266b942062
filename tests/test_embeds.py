"""Embeds and link cards: the real resolver against providers served on loopback by the test
(an oEmbed endpoint for YouTube and X, a Telegram-like embed page, article pages), the outbound
fetch's refusals (private addresses, redirects to them, http, providers not allowed), snapshots
that outlive their post, and the cards readers see."""

from __future__ import annotations

import io
import ipaddress
import json
import re
import struct
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import feedparser
import httpx
import pytest
from PIL import ExifTags, Image
from playwright.sync_api import Browser, Dialog, FilePayload, expect

from helpers import (
    TOKEN,
    UNSAFE_MARKUP,
    LivefeedServer,
    RedisProcess,
    Site,
    auth,
    image_bytes,
    livefeed,
    make_feed,
    publish,
    upload,
)
from livefeed.model.embed import instant, time_label
from livefeed.outbound.embeds import provider_of
from livefeed.outbound.fetch import Policy, allowed_address, ascii_host
from livefeed.storage.redis_server import free_port

TELEGRAM_POST = "https://t.me/halvard_news/42"
YOUTUBE_VIDEO = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
X_POST = "https://x.com/coastguard_hq/status/1900000000000000001"


def png(width: int = 4, height: int = 3, claimed: tuple[int, int] | None = None) -> bytes:
    """A small valid PNG, grey; with ``claimed``, its header says that size (a bomb's)."""
    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", *(claimed or (width, height)), 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def telegram_page(text: str, author: str = "Halvard News", photo: str = "") -> str:
    wrap = (
        f'<a class="tgme_widget_message_photo_wrap" style="width:100px;background-image:url(\'{photo}\')"></a>'
        if photo
        else ""
    )
    return f"""<!DOCTYPE html><html><body><div class="tgme_widget_message js-widget_message" data-post="halvard_news/42">
<div class="tgme_widget_message_author"><a class="tgme_widget_message_owner_name" href="https://t.me/halvard_news"><span dir="auto">{author}</span></a></div>
{wrap}<div class="tgme_widget_message_text js-message_text" dir="auto">{text}</div>
<div class="tgme_widget_message_footer"><a class="tgme_widget_message_date" href="https://t.me/halvard_news/42"><time datetime="2026-03-01T10:15:00+00:00" class="time">10:15</time></a></div>
</div></body></html>"""


TELEGRAM_GONE = (
    '<html><body><div class="tgme_widget_message_error">Post not found</div></body></html>'
)


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    site = Site()
    site.start()
    image = site.put("/img/photo.png", png(), "image/png")
    site.put(
        "/tg/halvard_news/42", telegram_page("Sirens in Northmere.<br>Stay indoors.", photo=image)
    )
    site.put("/yt/oembed", json.dumps({
        "type": "video", "title": "Storm surge at the harbour wall", "author_name": "Coast Cam",
        "author_url": "https://www.youtube.com/@coastcam", "provider_name": "YouTube",
        "thumbnail_url": image, "html": "<iframe></iframe>",
    }), "application/json")  # fmt: skip
    site.put("/x/oembed", json.dumps({
        "type": "rich", "author_name": "Coastguard", "author_url": "https://twitter.com/coastguard_hq",
        "html": '<blockquote class="twitter-tweet"><p lang="en" dir="ltr">Two people rescued near '
        'Oxley Marsh.<br>Stay away from the water.</p>&mdash; Coastguard (@coastguard_hq) '
        '<a href="https://twitter.com/coastguard_hq/status/1900000000000000001">March 1, 2026</a>'
        "</blockquote>",
    }), "application/json")  # fmt: skip
    yield site
    site.stop()


def embeds_env(site: Site, tmp: Path, **more: str) -> dict[str, str]:
    env = {
        "LIVEFEED_EMBED_PROVIDERS": "youtube,x,telegram,link",
        "LIVEFEED_EMBED_YOUTUBE_OEMBED": site.base + "/yt/oembed",
        "LIVEFEED_EMBED_X_OEMBED": site.base + "/x/oembed",
        "LIVEFEED_EMBED_TELEGRAM_URL": site.base + "/tg",
        "LIVEFEED_EMBED_ALLOW_HTTP": "1",
        "LIVEFEED_EMBED_TEST_LOOPBACK": "1",
        "LIVEFEED_EMBED_TIMEOUT": "3",
        "LIVEFEED_EMBED_MAX_BYTES": "100000",
        "LIVEFEED_DATA_DIR": str(tmp),
    }
    return {**env, **more}


@pytest.fixture(scope="module")
def embeds_server(
    redis_server: RedisProcess, site: Site, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LivefeedServer]:
    env = embeds_env(site, tmp_path_factory.mktemp("embeds-data"))
    srv = LivefeedServer(redis_server.url, "te-" + uuid.uuid4().hex[:8], **env)
    srv.start(log_dir=tmp_path_factory.mktemp("embeds-logs"))
    yield srv
    srv.stop()


@pytest.fixture
def client(embeds_server: LivefeedServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=embeds_server.base, timeout=20) as http:
        yield http


def preview(client: httpx.Client, url: Any) -> httpx.Response:
    return client.post("/api/embeds/preview", json={"url": url}, headers=auth())


def refused(response: httpx.Response, code: str) -> None:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == (code, "embeds"), error


# --- resolving -------------------------------------------------------------------------------


def test_a_telegram_post_is_kept_in_the_brief_as_a_snapshot(
    client: httpx.Client, site: Site
) -> None:
    """A Telegram URL is read from its embed page once, at publish: author, channel, time,
    text, a copy of its photo served by us, and the frame to load on request."""
    slug = make_feed(client)
    brief = publish(client, slug, "Sirens", embeds=[{"url": TELEGRAM_POST}])
    (embed,) = brief["embeds"]
    assert {k: embed[k] for k in ("provider", "canonical_url", "author", "handle", "text",
                                  "published_at", "deleted")} == {
        "provider": "telegram", "canonical_url": TELEGRAM_POST, "author": "Halvard News",
        "handle": "@halvard_news", "text": "Sirens in Northmere.\nStay indoors.",
        "published_at": "2026-03-01T10:15:00.000Z", "deleted": False,
    }  # fmt: skip
    assert embed["frame_url"] == site.base + "/tg/halvard_news/42?embed=1"
    assert re.fullmatch(r"/media/[0-9a-f]{32}/4\.jpg", embed["thumbnail"]), embed["thumbnail"]
    thumb = client.get(embed["thumbnail"])
    assert thumb.status_code == 200 and thumb.content.startswith(b"\xff\xd8\xff")
    assert thumb.headers["content-type"] == "image/jpeg"
    assert "immutable" in thumb.headers["cache-control"]
    stored = client.get(f"/api/feeds/{slug}/briefs/{brief['id']}").json()
    assert stored["embeds"] == brief["embeds"]


def test_youtube_and_x_are_resolved_by_oembed(client: httpx.Client, site: Site) -> None:
    """YouTube and X answer their oEmbed endpoint for the post's canonical URL; the frames are
    the privacy-enhanced ones."""
    slug = make_feed(client)
    brief = publish(client, slug, "Video", embeds=[{"url": YOUTUBE_VIDEO}, {"url": X_POST}])
    video, post = brief["embeds"]
    assert (video["provider"], video["title"], video["author"], video["handle"]) == (
        "youtube",
        "Storm surge at the harbour wall",
        "Coast Cam",
        "@coastcam",
    )
    assert video["frame_url"] == "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ"
    assert video["thumbnail"].startswith("/media/")
    assert (post["provider"], post["author"], post["handle"], post["published_at"]) == (
        "x",
        "Coastguard",
        "@coastguard_hq",
        "2026-03-01",
    )
    assert post["text"] == "Two people rescued near Oxley Marsh.\nStay away from the water."
    assert (
        "/yt/oembed?format=json&url=https%3A%2F%2Fwww.youtube.com%2Fwatch%3Fv%3DdQw4w9WgXcQ"
        in site.hits
    )


def test_any_other_url_is_a_related_article_card_from_open_graph_and_json_ld(
    client: httpx.Client, site: Site
) -> None:
    """An article page gives title, outlet and image from Open Graph, author and time from
    JSON-LD; its canonical URL is the card's link."""
    ld = {"@context": "https://schema.org", "@graph": [{"@type": "NewsArticle",
          "author": [{"@type": "Person", "name": "Ines Varga"}],
          "datePublished": "2026-03-01T08:00:00+01:00"}]}  # fmt: skip
    url = site.put(
        "/news/storm",
        f"""<html><head><title>fallback</title>
        <meta property="og:title" content="Storm Halvard: the night the sea came in">
        <meta property="og:site_name" content="The Castell Courier">
        <meta property="og:description" content="How the harbour wall held.">
        <meta property="og:image" content="/img/photo.png">
        <link rel="canonical" href="https://courier.example/storm">
        <script type="application/ld+json">{json.dumps(ld)}</script></head><body>x</body></html>""",
    )
    embed = preview(client, url).json()
    assert {k: embed[k] for k in ("provider", "title", "outlet", "author", "text", "published_at",
                                  "canonical_url", "frame_url")} == {
        "provider": "link", "title": "Storm Halvard: the night the sea came in",
        "outlet": "The Castell Courier", "author": "Ines Varga", "text": "How the harbour wall held.",
        "published_at": "2026-03-01T07:00:00.000Z", "canonical_url": "https://courier.example/storm",
        "frame_url": None,
    }  # fmt: skip
    assert client.get(embed["thumbnail"]).headers["content-type"] == "image/jpeg"


def test_a_page_in_another_charset_is_read_in_it(client: httpx.Client, site: Site) -> None:
    """The charset of the answer's Content-Type is honoured (Ukrainian sites still send
    windows-1251)."""
    title = "Шторм Гальвард: що відомо"
    page = f'<meta property="og:title" content="{title}">'.encode("cp1251")
    url = site.put("/uk/storm", page, "text/html; charset=windows-1251")
    assert preview(client, url).json()["title"] == title


def test_the_preview_needs_a_token_and_stores_no_brief(client: httpx.Client) -> None:
    """POST /api/embeds/preview answers the card to an editor only, and publishes nothing."""
    slug = make_feed(client)
    assert client.post("/api/embeds/preview", json={"url": TELEGRAM_POST}).status_code == 401
    card = preview(client, TELEGRAM_POST)
    assert card.status_code == 200 and card.json()["author"] == "Halvard News"
    assert client.get(f"/api/feeds/{slug}/briefs").json()["briefs"] == []


# --- bad input and the security boundary -----------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        pytest.param([{"url": TELEGRAM_POST}] * 5, "too_many_embeds", id="five"),
        pytest.param([{"url": "ftp://example.org/file"}], "invalid_url", id="ftp"),
        pytest.param([{"url": 12}], "invalid_type", id="number"),
        pytest.param([{"url": TELEGRAM_POST, "html": "<b>"}], "unknown_field", id="unknown"),
        pytest.param({"url": TELEGRAM_POST}, "invalid_type", id="not a list"),
    ],
)
def test_bad_embeds_are_refused_and_nothing_is_published(
    client: httpx.Client, payload: Any, code: str
) -> None:
    """Too many embeds, a URL that is not http(s), a wrong type or an unknown field: 422."""
    slug = make_feed(client)
    answer = client.post(f"/api/feeds/{slug}/briefs", json={"headline": "h", "embeds": payload},
                         headers=auth())  # fmt: skip
    refused(answer, code)
    assert client.get(f"/api/feeds/{slug}/briefs").json()["briefs"] == []


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.7/article", "http://192.168.1.1/", "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:172.16.0.1]/", "http://[fd00:ec2::254]/", "http://0.0.0.0/",
        "http://224.0.0.1/", "http://100.64.0.1/",
    ],
)  # fmt: skip
def test_a_url_on_a_private_address_is_refused(client: httpx.Client, url: str) -> None:
    """Private, link-local (cloud metadata), multicast, shared and unspecified addresses are not
    fetched, even with the test-only loopback allowance on."""
    refused(preview(client, url), "embed_not_allowed")


@pytest.mark.parametrize(
    ("address", "allowed", "with_loopback"),
    [
        ("93.184.215.14", True, True), ("2606:4700::1111", True, True),
        ("127.0.0.1", False, True), ("::1", False, True), ("::ffff:127.0.0.1", False, True),
        ("10.1.2.3", False, False), ("172.31.0.1", False, False), ("192.168.0.1", False, False),
        ("169.254.169.254", False, False), ("fe80::1", False, False), ("fd00:ec2::254", False, False),
        ("100.64.0.1", False, False), ("224.0.0.251", False, False), ("ff02::1", False, False),
        ("0.0.0.0", False, False), ("::", False, False), ("240.0.0.1", False, False),
        ("::ffff:10.0.0.1", False, False), ("192.0.2.1", False, False),
    ],
)  # fmt: skip
def test_only_public_addresses_are_fetched(
    address: str, allowed: bool, with_loopback: bool
) -> None:
    """The address rule on its own: public ones only; the test-only allowance adds loopback
    (IPv4-mapped too) and nothing else."""
    ip = ipaddress.ip_address(address)
    assert allowed_address(ip, Policy()) is allowed
    assert allowed_address(ip, Policy(allow_loopback=True)) is (allowed or with_loopback)


def test_an_internationalised_host_is_asked_for_in_its_idna_form() -> None:
    """DNS and the Host header get the xn-- form of a non-ASCII host name."""
    assert ascii_host("пример.испытание") == "xn--e1afmkfd.xn--80akhbyknj4f"
    assert ascii_host("example.org") == "example.org"


def test_a_snapshot_time_is_normalised_or_dropped() -> None:
    """A provider's time becomes livefeed's UTC stamp (a bare date stays a date); anything
    else is no time, so an odd value in an import never breaks a page."""
    assert instant("2026-03-01T10:15:00+02:00") == "2026-03-01T08:15:00.000Z"
    assert instant("2026-03-01T10:15:00") == "2026-03-01T10:15:00.000Z"
    assert instant("2026-03-01") == "2026-03-01"
    assert [instant(v) for v in ("yesterday", "2026-02-30", "", None, 5)] == [None] * 5
    assert time_label("2026-03-01", "Europe/Kyiv", 0) == "1 Mar 2026"
    assert time_label("not a time", "Europe/Kyiv", 0) == ""


def test_a_redirect_to_a_private_address_is_refused(client: httpx.Client, site: Site) -> None:
    """Each redirect hop is checked again: a public page redirecting to the metadata address
    is refused, and a brief quoting it is not published."""
    hop = site.put("/hop", "", status=302, headers={"Location": "http://169.254.169.254/latest/"})
    refused(preview(client, hop), "embed_not_allowed")
    slug = make_feed(client)
    answer = client.post(f"/api/feeds/{slug}/briefs",
                         json={"headline": "h", "embeds": [{"url": hop}]}, headers=auth())  # fmt: skip
    refused(answer, "embed_not_allowed")
    assert client.get(f"/api/feeds/{slug}/briefs").json()["briefs"] == []


def test_a_provider_down_or_answering_garbage_is_422(client: httpx.Client, site: Site) -> None:
    """oEmbed answering HTML, a provider answering 503, a site refusing connections, a page
    over the size cap: 422 ``embed_unavailable`` naming the URL."""
    site.put("/yt/oembed", "<html>not json</html>")
    site.put("/x/oembed", "busy", "text/plain", status=503)
    try:
        for url in (YOUTUBE_VIDEO, X_POST):
            answer = preview(client, url)
            refused(answer, "embed_unavailable")
            assert url in answer.json()["error"]["message"]
    finally:
        del site.pages["/yt/oembed"], site.pages["/x/oembed"]
        site.put("/yt/oembed", json.dumps({"type": "video", "title": "t", "author_name": "a"}),
                 "application/json")  # fmt: skip
    refused(preview(client, f"http://127.0.0.1:{free_port()}/article"), "embed_unavailable")
    refused(preview(client, site.put("/big", "<p>" + "x" * 200_000)), "embed_unavailable")


def test_a_post_that_is_not_there_is_422_not_found(client: httpx.Client, site: Site) -> None:
    """A Telegram page saying the post is not found, or a 404: ``embed_not_found``."""
    site.put("/tg/halvard_news/404", TELEGRAM_GONE)
    refused(preview(client, "https://t.me/halvard_news/404"), "embed_not_found")
    refused(preview(client, site.base + "/nothing-here"), "embed_not_found")


@pytest.fixture(scope="module")
def strict_server(
    redis_server: RedisProcess, site: Site, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LivefeedServer]:
    """Defaults but the allow-list: https only, public addresses only, no X."""
    env = embeds_env(site, tmp_path_factory.mktemp("strict-data"),
                     LIVEFEED_EMBED_PROVIDERS="youtube,telegram,link",
                     LIVEFEED_EMBED_ALLOW_HTTP="0", LIVEFEED_EMBED_TEST_LOOPBACK="0")  # fmt: skip
    srv = LivefeedServer(redis_server.url, "ts-" + uuid.uuid4().hex[:8], **env)
    srv.start(log_dir=tmp_path_factory.mktemp("strict-logs"))
    yield srv
    srv.stop()


@pytest.mark.parametrize(
    ("url", "why"),
    [
        pytest.param("http://example.org/article", "only https", id="http"),
        pytest.param("https://127.0.0.1:9/article", "not a public address", id="loopback"),
        pytest.param("https://localhost:9/article", "not a public address", id="localhost"),
        pytest.param(TELEGRAM_POST, "only https", id="provider on loopback over http"),
        pytest.param(X_POST, "not allowed here", id="provider not allowed"),
    ],
)
def test_by_default_only_https_public_allowed_providers_are_fetched(
    strict_server: LivefeedServer, url: str, why: str
) -> None:
    """Without the test settings, http and loopback are refused before any request, and so is
    a provider not on LIVEFEED_EMBED_PROVIDERS."""
    with httpx.Client(base_url=strict_server.base, timeout=20) as http:
        answer = preview(http, url)
    refused(answer, "embed_not_allowed")
    assert why in answer.json()["error"]["message"]


@pytest.mark.parametrize(
    ("url", "provider"),
    [
        (YOUTUBE_VIDEO, "youtube"), ("https://youtu.be/dQw4w9WgXcQ", "youtube"),
        ("https://www.youtube.com/shorts/dQw4w9WgXcQ", "youtube"),
        ("https://www.youtube.com/@coastcam", "link"), (X_POST, "x"),
        ("https://twitter.com/coastguard_hq/status/19", "x"), ("https://x.com/coastguard_hq", "link"),
        (TELEGRAM_POST, "telegram"), ("https://t.me/s/halvard_news/42", "telegram"),
        ("https://t.me/halvard_news", "link"), ("https://t.me.example.org/halvard_news/42", "link"),
    ],
)  # fmt: skip
def test_only_a_posts_own_address_is_its_providers(url: str, provider: str) -> None:
    """A video, post or message address belongs to its provider; a channel or profile page, or
    a look-alike host, is any other page (a link card, under the link allow-list entry)."""
    assert provider_of(url) == provider


def test_frames_are_allowed_only_from_the_configured_providers(
    client: httpx.Client, strict_server: LivefeedServer, site: Site
) -> None:
    """The reader page's CSP gains a frame-src of the allowed providers' frame origins; the
    rest of the policy (img-src, connect-src) is unchanged."""
    slug = make_feed(client)
    csp = client.get(f"/feeds/{slug}").headers["content-security-policy"]
    assert (f"frame-src 'self' https://www.youtube-nocookie.com https://platform.twitter.com "
            f"{site.base};") in csp  # fmt: skip
    assert "img-src 'self' data: https:;" in csp and "connect-src 'self';" in csp
    with httpx.Client(base_url=strict_server.base, timeout=20) as http:
        strict = http.get("/").headers["content-security-policy"]
    assert f"frame-src 'self' https://www.youtube-nocookie.com {site.base};" in strict


def test_a_thumbnail_is_stored_as_media_stripped_and_a_bomb_gets_none(
    client: httpx.Client, site: Site
) -> None:
    """A card's image goes through the media pipeline: a small JPEG rendition served from
    /media/ without its GPS or device data; a picture claiming too many pixels, or a GIF,
    leaves the card without one; /embed-thumbs/ is gone."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneMaker"
    exif[ExifTags.Base.GPSInfo] = {ExifTags.GPS.GPSLatitudeRef: "N",
                                   ExifTags.GPS.GPSLatitude: (50.0, 27.0, 1.0)}  # fmt: skip
    images = {
        "gps": site.put("/img/gps.jpg", image_bytes(900, 500, exif=exif), "image/jpeg"),
        "bomb": site.put("/img/bomb.png", png(claimed=(20_000, 20_000)), "image/png"),
        "gif": site.put("/img/anim.gif", b"GIF89a" + bytes(40), "image/gif"),
    }
    cards = {}
    for name, image in images.items():
        page = f'<meta property="og:title" content="Card {name}"><meta property="og:image" ' \
            f'content="{image}">'  # fmt: skip
        cards[name] = preview(client, site.put(f"/news/thumb-{name}", page)).json()
    assert cards["bomb"]["thumbnail"] is None and cards["gif"]["thumbnail"] is None
    path = cards["gps"]["thumbnail"]
    assert re.fullmatch(r"/media/[0-9a-f]{32}/640\.jpg", path), path
    got = client.get(path)
    assert got.status_code == 200 and "immutable" in got.headers["cache-control"]
    assert not Image.open(io.BytesIO(got.content)).getexif()
    for needle in (b"PhoneMaker", b"GPS", b"Exif\x00"):
        assert needle not in got.content, needle
    assert client.get(f"/embed-thumbs/{'0' * 32}.png").status_code == 404


# --- snapshots outlive their post -----------------------------------------------------------


def test_a_correction_that_finds_the_post_deleted_keeps_it_as_a_quotation(
    client: httpx.Client, site: Site
) -> None:
    """Re-resolved on correction, a post now gone keeps its snapshot (who, when, what) marked
    deleted; a provider that is down keeps it as it was; the page says it is a quotation."""
    slug = make_feed(client)
    site.put("/tg/halvard_news/77", telegram_page("Bridge closed at Elsbridge."))
    url = "https://t.me/halvard_news/77"
    brief = publish(client, slug, "Bridge", embeds=[{"url": url}])
    path = f"/api/feeds/{slug}/briefs/{brief['id']}"
    site.put("/tg/halvard_news/77", "down", "text/plain", status=503)
    kept = client.patch(path, json={"embeds": [{"url": url}]}, headers=auth())
    assert kept.status_code == 200, kept.text
    assert kept.json()["embeds"] == brief["embeds"]
    site.put("/tg/halvard_news/77", TELEGRAM_GONE)
    gone = client.patch(path, json={"embeds": [{"url": url}]}, headers=auth()).json()
    (embed,) = gone["embeds"]
    assert embed["deleted"] is True
    assert (embed["text"], embed["author"]) == ("Bridge closed at Elsbridge.", "Halvard News")
    page = client.get(f"/feeds/{slug}").text
    assert "A quotation of a deleted post" in page and "Bridge closed at Elsbridge." in page
    dropped = client.patch(path, json={"embeds": []}, headers=auth()).json()
    assert dropped["embeds"] == []


def test_a_snapshot_with_hostile_html_is_plain_text_on_every_page(
    client: httpx.Client, site: Site
) -> None:
    """Markup in a provider's answer is dropped (its text kept), forbidden characters removed;
    the page, the day page and the feeds carry it escaped."""
    site.put("/tg/evil_chan/1", telegram_page(
        'Hi<script>alert(1)</script><img src=x onerror="alert(2)"> &lt;b&gt;bold&lt;/b&gt;\x07',
        author='<img src=x onerror="alert(3)">Mallory<style>*{}</style>'))  # fmt: skip
    article = site.put("/evil", '<meta property="og:title" content="&lt;script&gt;alert(4)&lt;/script&gt;">'
                       '<meta property="og:site_name" content="Evil\u202e Times">'
                       '<meta property="og:image" content="javascript:alert(5)">')  # fmt: skip
    slug = make_feed(client)
    brief = publish(
        client, slug, "Hostile", embeds=[{"url": "https://t.me/evil_chan/1"}, {"url": article}]
    )
    post, card = brief["embeds"]
    assert (post["text"], post["author"]) == ("Hi <b>bold</b>", "Mallory")
    assert card["title"] == "<script>alert(4)</script>" and card["thumbnail"] is None
    day = client.get(f"/api/feeds/{slug}/days").json()["days"][0]["date"]
    for path in (f"/feeds/{slug}", f"/feeds/{slug}/days/{day}", f"/embed/{slug}"):
        page = client.get(path).text
        assert "&lt;b&gt;bold&lt;/b&gt;" in page and "&lt;script&gt;alert(4)" in page, path
        assert "alert(1)" not in page and "onerror" not in page and "<script>alert" not in page


def test_snapshots_survive_export_and_import_byte_for_byte(
    redis_server: RedisProcess, embeds_server: LivefeedServer, client: httpx.Client, tmp_path: Path
) -> None:
    """``livefeed export`` carries each snapshot whole; ``import`` keeps it without fetching
    anything, so the export of the import is the same bytes; a line with a snapshot whose link
    is not http(s) is refused."""
    slug = make_feed(client)
    publish(client, slug, "Quoting", embeds=[{"url": TELEGRAM_POST}, {"url": YOUTUBE_VIDEO}])
    opts = ["--redis-url", redis_server.url, "--key-prefix", embeds_server.prefix]
    first = tmp_path / "first.jsonl"
    assert livefeed("export", slug, "-o", str(first), *opts).returncode == 0
    copy = make_feed(client)
    imported = livefeed("import", copy, str(first), *opts)
    assert imported.returncode == 0, imported.stderr
    assert livefeed("export", copy, *opts).stdout.encode() == first.read_bytes()
    line = json.loads(first.read_bytes())
    line["embeds"][0]["canonical_url"] = "javascript:alert(1)"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(line) + "\n")
    refused_import = livefeed("import", make_feed(client), str(bad), *opts)
    assert refused_import.returncode != 0 and "embed" in refused_import.stderr


# --- what readers see ---------------------------------------------------------------------------


@pytest.mark.browser
def test_a_card_is_static_until_the_reader_asks_for_the_post(
    browser: Browser, embeds_server: LivefeedServer, client: httpx.Client, site: Site
) -> None:
    """Server-rendered and live cards are the same markup and fetch nothing from the provider;
    "Show the post from Telegram" loads its frame, and "Always" does so on the next visit."""
    slug = make_feed(client)
    publish(client, slug, "Server-rendered", embeds=[{"url": TELEGRAM_POST}])
    context = browser.new_context()
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        asked = len(site.hits)
        page.goto(f"{embeds_server.base}/feeds/{slug}")
        expect(page.locator("#conn-status")).to_have_attribute("data-state", "live", timeout=5000)
        publish(client, slug, "Live", embeds=[{"url": TELEGRAM_POST}])
        cards = page.locator("#briefs figure.embed")
        expect(cards).to_have_count(2, timeout=5000)
        live, served = (
            re.sub(r">\s+<", "><", cards.nth(i).evaluate("e => e.outerHTML")) for i in (0, 1)
        )
        assert live == served
        expect(cards.nth(1).locator(".embed-text")).to_contain_text("Stay indoors.")
        expect(cards.nth(1).locator(".embed-author")).to_have_text("Halvard News")
        assert page.locator("iframe").count() == 0
        assert len(site.hits) == asked + 2, site.hits[asked:]  # the live publish: page and photo
        cards.nth(1).locator(".embed-remember input").check()
        cards.nth(1).get_by_role("button", name="Show the post from Telegram").click()
        frame = cards.nth(1).frame_locator("iframe")
        expect(frame.locator(".tgme_widget_message_text")).to_contain_text("Sirens", timeout=5000)
        expect(cards.first.locator("iframe")).to_have_count(0)
        page.reload()
        expect(page.locator("#briefs figure.embed iframe")).to_have_count(2, timeout=5000)
    finally:
        context.close()
    assert not errors, errors


@pytest.mark.browser
def test_an_editor_previews_a_card_attaches_it_and_readers_see_it(
    browser: Browser, embeds_server: LivefeedServer, client: httpx.Client, site: Site
) -> None:
    """On the editor page: paste a URL, see the card, attach it, publish; "Re-check quoted
    posts" finds one deleted and every reader's card says so; a hostile snapshot runs no script
    there or on the reader page."""
    slug = make_feed(client)
    post = "https://t.me/halvard_news/43"
    site.put("/tg/halvard_news/43", telegram_page("Ferry cancelled."))
    hostile = site.put("/hostile", '<meta property="og:title" content="&lt;img src=x onerror=alert(1)&gt;">'
                       '<meta property="og:site_name" content="&lt;script&gt;alert(2)&lt;/script&gt;">'
                       '<meta property="og:url" content="javascript:alert(3)">'
                       '<meta property="og:image" content="javascript:alert(4)">')  # fmt: skip
    context = browser.new_context()
    dialogs: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    try:
        reader = context.new_page()
        reader.on("dialog", dismiss)
        reader.goto(f"{embeds_server.base}/feeds/{slug}")
        expect(reader.locator("#conn-status")).to_have_attribute("data-state", "live", timeout=5000)
        editor = context.new_page()
        editor.on("dialog", dismiss)
        editor.goto(f"{embeds_server.base}/editor?feed={slug}")
        editor.fill("#token", TOKEN)
        editor.click("#sign-in")
        expect(editor.locator("#editor-name")).to_have_text("Newsroom")
        editor.fill("#headline", "Quoting the coastguard")
        for url in (post, hostile):
            editor.fill("#embed-url", url)
            editor.click("#embed-preview")
            expect(editor.locator("#embed-card figure.embed")).to_be_visible(timeout=5000)
            editor.click("#embed-attach")
        expect(editor.locator("#embed-list figure.embed")).to_have_count(2)
        editor.click("#publish")
        card = reader.locator("#briefs figure.embed")
        expect(card).to_have_count(2, timeout=5000)
        expect(card.first.locator(".embed-author")).to_have_text("Halvard News")
        expect(card.nth(1).locator(".embed-title")).to_have_text("<img src=x onerror=alert(1)>")
        site.put("/tg/halvard_news/43", TELEGRAM_GONE)
        editor.get_by_role("button", name="Re-check quoted posts").click()
        expect(card.first.locator(".embed-deleted")).to_have_text(
            "A quotation of a deleted post", timeout=5000
        )
        expect(card.first.locator(".embed-text")).to_have_text("Ferry cancelled.")
        for page in (reader, editor):
            assert page.evaluate(UNSAFE_MARKUP, "main *") == [], page.url
    finally:
        context.close()
    assert dialogs == []


def test_atom_and_json_feed_carry_each_embed_as_a_related_link(
    client: httpx.Client, site: Site
) -> None:
    """Each quoted post or article is a related link of its entry: Atom's rel="related" (the
    alternate stays the permalink) and JSON Feed's _livefeed.related extension."""
    slug = make_feed(client)
    article = site.put("/news/related", '<meta property="og:title" content="Wall holds">')
    brief = publish(client, slug, "Quoting", embeds=[{"url": TELEGRAM_POST}, {"url": article}])
    post, card = brief["embeds"]
    (entry,) = feedparser.parse(client.get(f"/feeds/{slug}/atom.xml").content).entries
    links = [(link["rel"], link["href"], link.get("title")) for link in entry.links]
    assert links[0][0] == "alternate" and links[0][1].endswith(f"#{brief['id']}")
    assert links[1:] == [
        ("related", post["canonical_url"], "Telegram: Halvard News"),
        ("related", card["canonical_url"], "Related article: Wall holds"),
    ]
    (item,) = client.get(f"/feeds/{slug}/feed.json").json()["items"]
    assert item["_livefeed"] == {"related": [
        {"url": post["canonical_url"], "title": "Telegram: Halvard News"},
        {"url": card["canonical_url"], "title": "Related article: Wall holds"},
    ]}  # fmt: skip


# --- the whole of issue 15, as an editor and a reader see it ----------------------------------


@pytest.mark.browser
def test_an_editor_publishes_a_photo_a_post_and_a_card_then_the_story_and_readers_see_it(
    browser: Browser, embeds_server: LivefeedServer, client: httpx.Client, site: Site
) -> None:
    """From the editor page: upload a photo (alt, caption, credit), quote a Telegram post and a
    related article, publish, write the lead and the summary; a reader page open in another
    browser context shows the brief (image and cards) and the lead and summary, live."""
    slug = make_feed(client)
    article = site.put(
        "/news/done-when",
        '<meta property="og:title" content="Harbour wall holds">'
        '<meta property="og:site_name" content="The Castell Courier">'
        f'<meta property="og:image" content="{site.base}/img/photo.png">',
    )
    readers, editors = browser.new_context(), browser.new_context()
    try:
        reader = readers.new_page()
        reader.goto(f"{embeds_server.base}/feeds/{slug}")
        expect(reader.locator("#conn-status")).to_have_attribute(
            "data-state", "live", timeout=10000
        )
        editor = editors.new_page()
        editor.goto(f"{embeds_server.base}/editor?feed={slug}")
        editor.fill("#token", TOKEN)
        editor.click("#sign-in")
        expect(editor.locator("#editor-name")).to_have_text("Newsroom")
        photo: FilePayload = {"name": "scene.jpg", "mimeType": "image/jpeg",
                              "buffer": image_bytes(800, 450)}  # fmt: skip
        editor.set_input_files("#media-file", files=[photo])
        item = editor.locator("#media-list > li")
        expect(item).to_have_count(1, timeout=20000)
        item.locator("input[id$='-alt']").fill("Waves over the harbour wall")
        item.locator("input[id$='-caption']").fill("Castell Bay at noon")
        item.locator("input[id$='-credit']").fill("Photo: Ana Lind")
        editor.fill("#headline", "The sea comes in")
        for url in (TELEGRAM_POST, article):
            editor.fill("#embed-url", url)
            editor.click("#embed-preview")
            expect(editor.locator("#embed-card figure.embed")).to_be_visible(timeout=10000)
            editor.click("#embed-attach")
        expect(editor.locator("#embed-list figure.embed")).to_have_count(2)
        editor.click("#publish")
        expect(editor.locator("#compose-message")).to_contain_text("Published", timeout=10000)
        editor.locator("#lead-editor summary").click()
        editor.fill("#lead-headline", "Storm Halvard reaches Castell Bay")
        editor.fill("#lead-standfirst", "The harbour wall held through the night.")
        editor.click("#lead-save")
        expect(editor.locator("#lead-message")).to_contain_text("version 1", timeout=10000)
        editor.locator("#summary-editor summary").click()
        editor.locator("#summary-items-list .summary-point").first.fill("The wall held")
        editor.click("#summary-save")
        expect(editor.locator("#summary-message")).to_contain_text("version 1", timeout=10000)

        brief = reader.locator("#briefs > li").first
        image = brief.locator("figure.media img")
        expect(image).to_have_attribute("alt", "Waves over the harbour wall", timeout=10000)
        expect(image).to_have_attribute("srcset", re.compile(r"/media/[0-9a-f]{32}/640\.jpg"))
        expect(brief.locator("figure.media .media-credit")).to_have_text("Photo: Ana Lind")
        expect(brief.locator("figure.media .media-caption")).to_have_text("Castell Bay at noon")
        expect(brief.locator(".embed-post .embed-author")).to_have_text("Halvard News")
        expect(brief.locator(".embed-card .embed-title")).to_have_text("Harbour wall holds")
        expect(brief.locator(".embed-card img.embed-thumb")).to_have_attribute(
            "src", re.compile(r"^/media/[0-9a-f]{32}/4\.jpg$")
        )
        expect(reader.locator("#lead .lead-headline")).to_have_text(
            "Storm Halvard reaches Castell Bay", timeout=10000
        )
        expect(reader.locator("#summary .summary-items li")).to_have_text(["The wall held"])
    finally:
        editors.close()
        readers.close()


@pytest.mark.browser
def test_a_drafts_photo_and_quoted_post_load_into_the_composer_to_be_changed(
    browser: Browser, embeds_server: LivefeedServer, client: httpx.Client, site: Site
) -> None:
    """A draft opened in the composer shows its photo (with its alt text) and its quoted posts,
    one deleted since shown by its address; the photo replaced and the deleted post removed,
    the save keeps the other post and only the new photo, and readers see them once published."""
    slug = make_feed(client)
    old = upload(client, image_bytes(64, 48))["id"]
    gone = "https://t.me/halvard_news/44"
    site.put("/tg/halvard_news/44", TELEGRAM_GONE)
    drafts = f"/api/feeds/{slug}/drafts"
    made = client.post(drafts, headers=auth(), json={"headline": "Harbour draft",
        "media": [{"id": old, "alt": "The old photo"}],
        "embeds": [{"url": TELEGRAM_POST}, {"url": gone}]})  # fmt: skip
    assert made.status_code == 201, made.text
    context = browser.new_context()
    errors: list[str] = []
    try:
        editor = context.new_page()
        editor.on("pageerror", lambda exc: errors.append(str(exc)))
        editor.goto(f"{embeds_server.base}/editor?feed={slug}")
        editor.fill("#token", TOKEN)
        editor.click("#sign-in")
        editor.locator("#my-drafts li .edit").click(timeout=10000)
        item = editor.locator("#media-list > li")
        expect(item).to_have_attribute("data-id", old, timeout=10000)
        expect(item.locator("input[id$='-alt']")).to_have_value("The old photo")
        expect(editor.locator("#embed-list .embed-author")).to_have_text("Halvard News")
        deleted = editor.locator("#embed-list li", has=editor.locator(".embed-unresolved"))
        expect(deleted).to_contain_text(gone)
        deleted.locator(".embed-remove").click()
        expect(editor.locator("#embed-list li")).to_have_count(1)
        item.locator(".media-remove").click()
        photo: FilePayload = {"name": "new.jpg", "mimeType": "image/jpeg",
                              "buffer": image_bytes(96, 64)}  # fmt: skip
        editor.set_input_files("#media-file", files=[photo])
        expect(item).to_have_count(1, timeout=20000)
        expect(item).not_to_have_attribute("data-id", old)
        item.locator("input[id$='-alt']").fill("The new photo")
        editor.click("#save-draft")
        expect(editor.locator("#compose-message")).to_contain_text("Draft saved", timeout=10000)
        saved = client.get(f"{drafts}/{made.json()['id']}", headers=auth()).json()
        new = item.get_attribute("data-id")
        assert [(m["id"], m["alt"]) for m in saved["media"]] == [(new, "The new photo")]
        assert [e["url"] for e in saved["embeds"]] == [TELEGRAM_POST]
        answer = client.post(f"{drafts}/{saved['id']}/publish", headers=auth(), json={})
        assert answer.status_code == 201, answer.text
        reader = context.new_page()
        reader.goto(f"{embeds_server.base}/feeds/{slug}")
        image = reader.locator("#briefs figure.media img")
        expect(image).to_have_attribute("alt", "The new photo")
        expect(image).to_have_attribute("srcset", re.compile(f"/media/{new}/"))
        expect(reader.locator("#briefs .embed-post .embed-author")).to_have_text("Halvard News")
        assert old not in reader.content()
    finally:
        context.close()
    assert not errors, errors
