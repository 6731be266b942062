"""Uploading images and audio: type from the bytes, limits, metadata stripped, renditions served."""

from __future__ import annotations

import io
import json
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import ExifTags, Image

from helpers import (
    LivefeedServer,
    RedisProcess,
    auth,
    image_bytes,
    livefeed,
    publish,
    upload,
)
from livefeed.newsroom.archive import media_ids

# A minimal MPEG-1 Layer III frame (128 kbit/s, 44.1 kHz): header, then silence.
MP3_FRAME = b"\xff\xfb\x90\x64" + bytes(413)
ID3_TAG = b"ID3\x03\x00\x00\x00\x00\x00\x0a" + b"TIT2secret"  # a 10-byte ID3v2 body


@pytest.fixture(scope="module")
def tight(
    redis_server: RedisProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    """A server taking uploads of at most 200 kB and 4 million pixels."""
    srv = LivefeedServer(
        redis_server.url,
        "tm-" + uuid.uuid4().hex[:8],
        LIVEFEED_MAX_MEDIA_BYTES="200000",
        LIVEFEED_MAX_MEDIA_PIXELS="4000000",
    )
    srv.start(log_dir=tmp_path_factory.mktemp("media-logs"))
    try:
        with httpx.Client(base_url=srv.base, timeout=30) as client:
            yield client
    finally:
        srv.stop()


def test_upload_makes_renditions_at_standard_widths(http: httpx.Client) -> None:
    """A JPEG becomes WebP and JPEG renditions at each standard width below its own, and crops."""
    info = upload(http, image_bytes(1800, 1200))
    assert info["kind"] == "image" and (info["width"], info["height"]) == (1800, 1200)
    assert info["widths"] == [320, 640, 1024, 1600]
    names = {r["url"].rsplit("/", 1)[1] for r in info["renditions"]}
    assert {"320.webp", "1600.jpg", "16x9.jpg", "4x3.jpg", "1x1.jpg"} <= names
    for rendition in info["renditions"]:
        response = http.get(rendition["url"])
        assert response.status_code == 200
        assert response.headers["content-type"] == rendition["type"]
        got = Image.open(io.BytesIO(response.content))
        assert got.size == (rendition["width"], rendition["height"])
    crop = next(r for r in info["renditions"] if r["url"].endswith("/16x9.jpg"))
    assert (crop["width"], crop["height"]) == (1200, 675)


def test_rendition_is_immutable_with_etag_and_304(http: httpx.Client) -> None:
    """A rendition is cacheable for a year, immutable, with an ETag that revalidates to 304."""
    info = upload(http, image_bytes(500, 300, "PNG"))
    assert info["widths"] == [320, 500]
    url = info["renditions"][0]["url"]
    first = http.get(url)
    assert first.headers["cache-control"] == "public, max-age=31536000, immutable"
    again = http.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == first.headers["etag"]


def test_same_bytes_uploaded_again_are_the_same_upload(http: httpx.Client) -> None:
    """The id is the content's: the same file again answers 200 with the same record."""
    data = image_bytes(400, 400, "WEBP")
    first = upload(http, data)
    assert upload(http, data, status=200) == first


def test_an_uploads_record_is_read_back_by_its_id(http: httpx.Client) -> None:
    """GET /api/media/{id} answers the record the upload did (a draft names media by id only);
    an id never uploaded, or not an id, is 404 media_not_found."""
    info = upload(http, image_bytes(330, 200))
    answer = http.get(f"/api/media/{info['id']}", headers=auth())
    assert answer.status_code == 200 and answer.json() == info, answer.text
    for unknown in ("0" * 32, "not-an-id"):
        missing = http.get(f"/api/media/{unknown}", headers=auth())
        assert missing.status_code == 404, missing.text
        assert missing.json()["error"]["code"] == "media_not_found"


def test_multipart_upload_takes_the_file_part(http: httpx.Client) -> None:
    """A form upload (as a browser's FormData sends it) is read from its ``file`` part."""
    data = image_bytes(656, 492)  # a size no other test uploads: 201, not 200
    response = http.post(
        "/api/media",
        files={"file": ("photo.bin", data, "application/octet-stream")},
        data={"note": "ignored"},
        headers=auth(),
    )
    assert response.status_code == 201, response.text
    assert response.json()["widths"] == [320, 640, 656]


def test_gps_and_device_metadata_never_reach_a_rendition(http: httpx.Client) -> None:
    """A phone photo's GPS, device and XMP data are in no rendition; its orientation is applied."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneMaker"
    exif[ExifTags.Base.Orientation] = 6  # rotate 90° clockwise to show
    exif[ExifTags.Base.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (50.0, 27.0, 1.0),
        ExifTags.GPS.GPSLongitudeRef: "E",
        ExifTags.GPS.GPSLongitude: (30.0, 31.0, 2.0),
    }
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">secret-place</x:xmpmeta>'
    data = image_bytes(800, 400, exif=exif, xmp=xmp)
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(ExifTags.IFD.GPSInfo)  # it has them
    info = upload(http, data)
    assert (info["width"], info["height"]) == (400, 800)
    for rendition in info["renditions"]:
        content = http.get(rendition["url"]).content
        got = Image.open(io.BytesIO(content))
        assert not got.getexif(), rendition["url"]
        assert "exif" not in got.info and "xmp" not in got.info and "icc_profile" not in got.info
        for needle in (b"PhoneMaker", b"secret-place", b"Exif\x00", b"GPS"):
            assert needle not in content, (rendition["url"], needle)


def test_type_comes_from_the_bytes_not_the_name(http: httpx.Client) -> None:
    """Text or a GIF sent as image/jpeg is 415; a PNG sent as text/plain is taken."""
    for data in (b"not an image at all", image_bytes(50, 50, "GIF")):
        response = http.post(
            "/api/media", content=data, headers={**auth(), "Content-Type": "image/jpeg"}
        )
        assert response.status_code == 415, response.text
        assert response.json()["error"]["code"] == "unsupported_media_type"
    response = http.post(
        "/api/media",
        content=image_bytes(60, 60, "PNG"),
        headers={**auth(), "Content-Type": "text/plain"},
    )
    assert response.status_code == 201


def test_corrupt_or_truncated_image_is_422(http: httpx.Client) -> None:
    """A JPEG cut short or a PNG with garbage after its header is 422 ``corrupt_media``."""
    whole = image_bytes(900, 700)
    png = image_bytes(300, 300, "PNG")
    for data in (whole[: len(whole) // 2], png[:40] + bytes(range(256)) * 4, whole[:3] + b"x"):
        response = http.post("/api/media", content=data, headers=auth())
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "corrupt_media"


def test_upload_needs_an_editor_token(http: httpx.Client) -> None:
    """Without a valid editor token an upload is 401 and nothing is stored."""
    response = http.post("/api/media", content=image_bytes(100, 100))
    assert response.status_code == 401
    response = http.post("/api/media", content=b"", headers=auth())
    assert response.status_code == 400 and response.json()["error"]["code"] == "no_file"


def test_upload_over_the_byte_limit_is_413(tight: httpx.Client) -> None:
    """A file over LIVEFEED_MAX_MEDIA_BYTES is 413, raw or in a form."""
    big = image_bytes(1200, 1200, "PNG", compress_level=0)
    assert len(big) > 200_000
    response = tight.post("/api/media", content=big, headers=auth())
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"
    response = tight.post("/api/media", files={"file": ("a.png", big)}, headers=auth())
    assert response.status_code == 413


def test_pixel_bomb_is_refused_before_decoding(tight: httpx.Client) -> None:
    """A small file that decodes to more than LIVEFEED_MAX_MEDIA_PIXELS is 422 too_many_pixels."""
    out = io.BytesIO()
    Image.new("1", (3000, 3000)).save(out, "PNG")  # 9 million pixels in a few kB
    assert len(out.getvalue()) < 20_000
    response = tight.post("/api/media", content=out.getvalue(), headers=auth())
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "too_many_pixels"


def test_audio_is_sniffed_and_its_id3_tags_dropped(http: httpx.Client) -> None:
    """MP3 (with an ID3 tag) and OGG uploads become audio items; the MP3's tag is cut off."""
    info = upload(http, ID3_TAG + MP3_FRAME * 3)
    assert info["kind"] == "audio" and info["format"] == "mp3"
    (rendition,) = info["renditions"]
    response = http.get(rendition["url"])
    assert response.headers["content-type"] == "audio/mpeg"
    assert response.content == MP3_FRAME * 3
    ogg = upload(http, b"OggS\x00\x02" + bytes(100))
    assert ogg["renditions"][0]["url"].endswith("/audio.ogg")


def test_heic_photo_is_taken_when_pillow_heif_is_installed(http: httpx.Client) -> None:
    """A HEIC photo (as phones take them) becomes WebP and JPEG renditions."""
    pytest.importorskip("pillow_heif").register_heif_opener()
    info = upload(http, image_bytes(400, 300, "HEIF"))
    assert info["format"] == "heic" and info["widths"] == [320, 400]


def test_unknown_media_file_is_404(http: httpx.Client) -> None:
    """A name no upload has, or an id never uploaded, is a JSON 404."""
    for path in ("/media/" + "0" * 32 + "/320.webp", "/media/abc/320.webp", "/media/x/../y"):
        response = http.get(path)
        assert response.status_code == 404, path
    info = upload(http, image_bytes(100, 100))
    assert http.get(f"/media/{info['id']}/9999.webp").status_code == 404
    assert http.get(f"/media/{info['id']}/320.gif").status_code == 404


def test_files_live_under_the_media_dir(server: LivefeedServer, http: httpx.Client) -> None:
    """Uploads are files under LIVEFEED_MEDIA_DIR, named by their content."""
    info = upload(http, image_bytes(200, 100))
    root = Path(server.log_path.with_suffix(".media") if server.log_path else "")
    assert (root / info["id"][:2] / info["id"] / "200.webp").is_file()


# --- media in briefs --------------------------------------------------------------------------


def _error(response: httpx.Response, status: int = 422) -> str:
    assert response.status_code == status, response.text
    code: str = response.json()["error"]["code"]
    return code


def test_brief_carries_its_media_with_their_sizes(http: httpx.Client, feed: str) -> None:
    """A published brief stores each item with the upload's kind, size and widths, in order."""
    photo = upload(http, image_bytes(1000, 500))
    sound = upload(http, MP3_FRAME * 2)
    media = [
        {"id": photo["id"], "alt": "A red box", "caption": "The box", "credit": "Photo: Us",
         "role": "lead"},
        {"id": sound["id"], "transcript": "  Hello.\nBye.  "},
    ]  # fmt: skip
    brief = publish(http, feed, "With media", media=media, gallery=True)
    first, second = brief["media"]
    assert first == {
        "id": photo["id"], "alt": "A red box", "decorative": False, "caption": "The box",
        "credit": "Photo: Us", "role": "lead", "transcript": "", "kind": "image",
        "format": "jpeg", "width": 1000, "height": 500, "widths": [320, 640, 1000],
    }  # fmt: skip
    assert second["kind"] == "audio" and second["transcript"] == "Hello.\nBye."
    assert brief["gallery"] is True
    stored = http.get(f"/api/feeds/{feed}/briefs/{brief['id']}").json()
    assert stored["media"] == brief["media"]


def test_image_without_alt_is_422_unless_decorative(http: httpx.Client, feed: str) -> None:
    """An image needs alt text (a caption is none); ``decorative: true`` says none is wanted."""
    photo = upload(http, image_bytes(300, 200))
    bare = {"id": photo["id"], "caption": "Only a caption"}
    response = http.post(
        f"/api/feeds/{feed}/briefs", json={"headline": "H", "media": [bare]}, headers=auth()
    )
    assert _error(response) == "missing_alt" and response.json()["error"]["field"] == "media"
    blank = {"id": photo["id"], "alt": "   "}
    response = http.post(
        f"/api/feeds/{feed}/briefs", json={"headline": "H", "media": [blank]}, headers=auth()
    )
    assert _error(response) == "missing_alt"
    brief = publish(http, feed, "Decorative", media=[{"id": photo["id"], "decorative": True}])
    assert brief["media"][0]["alt"] == ""


def test_bad_media_items_are_refused(http: httpx.Client, feed: str) -> None:
    """Unknown or malformed ids, too many items, repeats, unknown fields and bad types are 422."""
    photo = upload(http, image_bytes(200, 200))
    ok = {"id": photo["id"], "alt": "x"}
    cases = [
        ([{"id": "0" * 32, "alt": "x"}], "unknown_media"),
        ([{"id": "../../etc/passwd", "alt": "x"}], "unknown_media"),
        ([ok] * 11, "too_many_media"),
        ([ok, ok], "duplicate_media"),
        ([{**ok, "kind": "audio"}], "unknown_field"),
        ([{**ok, "role": "hero"}], "invalid_type"),
        ([{**ok, "alt": 5}], "invalid_type"),
        ([{**ok, "alt": "a\x00b"}], "invalid_text"),
        ([{**ok, "alt": "a" * 1001}], "too_long"),
        ("not a list", "invalid_type"),
    ]
    before = http.get(f"/api/feeds/{feed}/briefs").json()["briefs"]
    for media, code in cases:
        response = http.post(
            f"/api/feeds/{feed}/briefs", json={"headline": "H", "media": media}, headers=auth()
        )
        assert _error(response) == code, (media, response.text)
    assert http.get(f"/api/feeds/{feed}/briefs").json()["briefs"] == before


def test_correction_changes_alt_caption_and_credit(http: httpx.Client, feed: str) -> None:
    """A correction replaces the media list: new alt, caption and credit, a new version."""
    photo = upload(http, image_bytes(400, 300))
    brief = publish(http, feed, "Photo", media=[{"id": photo["id"], "alt": "Old alt"}])
    change = {"media": [{"id": photo["id"], "alt": "New alt", "caption": "C", "credit": "Cr"}]}
    response = http.patch(
        f"/api/feeds/{feed}/briefs/{brief['id']}",
        json=change,
        headers={**auth(), "If-Match": '"1"'},
    )
    assert response.status_code == 200, response.text
    corrected = response.json()
    assert corrected["version"] == 2
    assert (corrected["media"][0]["alt"], corrected["media"][0]["credit"]) == ("New alt", "Cr")
    assert corrected["media"][0]["width"] == 400
    response = http.patch(
        f"/api/feeds/{feed}/briefs/{brief['id']}",
        json={"media": [{"id": photo["id"]}]},
        headers=auth(),
    )
    assert _error(response) == "missing_alt"
    cleared = http.patch(
        f"/api/feeds/{feed}/briefs/{brief['id']}", json={"media": []}, headers=auth()
    ).json()
    assert cleared["media"] == [] and cleared["version"] == 3


# --- export and import ------------------------------------------------------------------------


def test_export_with_media_restores_on_another_installation(
    redis_server: RedisProcess, server: LivefeedServer, http: httpx.Client, feed: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    """``export --with-media`` writes the JSON Lines (media metadata in each line) and the files,
    the lead's picture too; another installation (prefix and media dir of its own) refuses the
    lines alone, imports the archive, and exports the very same bytes again."""
    photo = upload(http, image_bytes(900, 600))
    sound = upload(http, MP3_FRAME * 4)
    cover = upload(http, image_bytes(700, 400))  # named by the lead alone
    publish(http, feed, "Archived", media=[
        {"id": photo["id"], "alt": "A box", "credit": "Photo: Us"}, {"id": sound["id"]},
    ])  # fmt: skip
    lead = {"headline": "The story", "media": [{"id": cover["id"], "alt": "A cover"}]}
    assert http.put(f"/api/feeds/{feed}/lead", json=lead, headers=auth()).is_success
    assert server.log_path is not None
    here = ["--redis-url", redis_server.url, "--key-prefix", server.prefix,
            "--media-dir", str(server.log_path.with_suffix(".media"))]  # fmt: skip
    plain, archive = tmp_path / "feed.jsonl", tmp_path / "feed.tar"
    assert livefeed("export", feed, "-o", str(plain), *here).returncode == 0
    line, lead_line = plain.read_bytes().splitlines()
    assert json.loads(line)["media"][0]["width"] == 900
    assert json.loads(lead_line)["lead"]["media"][0]["width"] == 700
    done = livefeed("export", feed, "--with-media", "-o", str(archive), *here)
    assert done.returncode == 0 and "and 3 media" in done.stderr, done.stderr
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        extracted = tar.extractfile("briefs.jsonl")
        assert extracted is not None and extracted.read() == plain.read_bytes()
    assert f"media/{photo['id']}/640.webp" in names and f"media/{sound['id']}/audio.mp3" in names
    assert f"media/{cover['id']}/16x9.jpg" in names

    elsewhere_dir = tmp_path / "elsewhere-media"
    there = ["--redis-url", redis_server.url, "--key-prefix", "tx-" + uuid.uuid4().hex[:8],
             "--media-dir", str(elsewhere_dir)]  # fmt: skip
    made = livefeed("feed", "create", "copy", "--title", "Copy", "--timezone", "UTC", *there)
    assert made.returncode == 0, made.stderr
    refused = livefeed("import", "copy", str(plain), *there)
    assert refused.returncode == 1 and "is not uploaded here" in refused.stderr
    imported = livefeed("import", "copy", str(archive), *there)
    assert imported.returncode == 0, imported.stderr
    assert (elsewhere_dir / photo["id"][:2] / photo["id"] / "1x1.jpg").is_file()
    assert (elsewhere_dir / cover["id"][:2] / cover["id"] / "1x1.jpg").is_file()
    again = livefeed("export", "copy", *there)
    assert again.returncode == 0 and again.stdout.encode() == plain.read_bytes()


def test_an_archive_takes_the_media_of_briefs_embeds_and_the_lead() -> None:
    """The uploads an archive carries: a brief's media, its embeds' thumbnails (media too) and
    the lead's pictures, each once, in first-named order."""
    a, b, c = "a" * 32, "b" * 32, "c" * 32
    lines = [
        json.dumps({"media": [{"id": a}], "embeds": [{"thumbnail": f"/media/{b}/640.jpg"},
                                                      {"thumbnail": None}]}).encode(),
        json.dumps({"media": [{"id": b}]}).encode(),
        json.dumps({"lead": {"media": [{"id": c}, {"id": a}]}}).encode(),
    ]  # fmt: skip
    assert media_ids(lines) == [a, b, c]


def test_import_refuses_a_tampered_archive(redis_server: RedisProcess, tmp_path: Path) -> None:
    """An archive with a file outside media/<id>/ is refused whole, with a message, exit 1."""
    archive = tmp_path / "bad.tar"
    with tarfile.open(archive, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in (("briefs.jsonl", b""), ("../../escape.txt", b"x")):
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    there = ["--redis-url", redis_server.url, "--key-prefix", "tb-" + uuid.uuid4().hex[:8],
             "--media-dir", str(tmp_path / "m")]  # fmt: skip
    assert (
        livefeed("feed", "create", "x", "--title", "X", "--timezone", "UTC", *there).returncode == 0
    )
    result = livefeed("import", "x", str(archive), *there)
    assert result.returncode == 1 and "not a readable archive" in result.stderr
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "m").exists()
