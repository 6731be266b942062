"""Reading what providers answer: Open Graph and JSON-LD tags of an article page, a Telegram
post's embed page, X's oEmbed blockquote. Pure (no I/O); every value comes back as plain text
(``livefeed.model.embed.plain_line``/``plain_text``) or an absolute http(s) URL, or not at all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

from livefeed.model.embed import instant, plain_line, plain_text


@dataclass
class Card:
    """What a page says about itself; empty strings for what it does not say."""

    title: str = ""
    text: str = ""
    author: str = ""
    handle: str = ""
    outlet: str = ""
    published_at: str | None = None
    image: str | None = None
    canonical: str | None = None
    gone: bool = False


def absolute(base: str, value: object) -> str | None:
    """``value`` as an absolute http(s) URL against ``base``; None if it is not one."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        url = urljoin(base, value.strip())
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme in ("http", "https") and parts.hostname else None


PARSE_MAX = 512 * 1024
"""Characters of a page read at most: what a card needs is near its top (html.parser takes
about 1.5 ms a kilobyte of dense markup, and runs in a worker thread)."""
_CHUNK = 16 * 1024


def _feed(parser: HTMLParser, html: str, enough: Callable[[], bool]) -> None:
    """Give ``parser`` ``html`` a chunk at a time, up to PARSE_MAX, until ``enough()``."""
    for start in range(0, min(len(html), PARSE_MAX), _CHUNK):
        parser.feed(html[start : start + _CHUNK])
        if enough():
            return
    parser.close()


# --- article pages ----------------------------------------------------------------------------


class _Tags(HTMLParser):
    """Collects <meta>, <link rel=canonical>, <title> and JSON-LD scripts of a page's head."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.meta: dict[str, str] = {}
        self.canonical: str | None = None
        self.title = ""
        self.json_ld: list[str] = []
        self.head_done = False
        self._in: str | None = None
        self._buffer: list[str] = []

    def enough(self) -> bool:
        """The head is read and it named the page: the rest of a long page is not needed."""
        return self.head_done and bool(self.meta.get("og:title") or self.json_ld or self.title)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k.lower(): v or "" for k, v in attrs}
        if tag == "body":
            self.head_done = True
        if tag == "meta":
            name = (values.get("property") or values.get("name") or "").strip().lower()
            if name and name not in self.meta and "content" in values:
                self.meta[name] = values["content"]
        elif tag == "link" and "canonical" in values.get("rel", "").lower().split():
            self.canonical = self.canonical or values.get("href")
        elif tag == "title" and not self.title:
            self._start("title")
        elif tag == "script" and values.get("type", "").lower() == "application/ld+json":
            self._start("json-ld")

    def _start(self, what: str) -> None:
        self._in = what
        self._buffer = []

    def handle_data(self, data: str) -> None:
        if self._in:
            self._buffer.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "head":
            self.head_done = True
        if self._in == "title" and tag == "title":
            self.title = "".join(self._buffer)
            self._in = None
        elif self._in == "json-ld" and tag == "script":
            self.json_ld.append("".join(self._buffer))
            self._in = None


_ARTICLE_TYPES = {
    "Article",
    "NewsArticle",
    "ReportageNewsArticle",
    "BlogPosting",
    "LiveBlogPosting",
    "AnalysisNewsArticle",
    "WebPage",
}


def _article_ld(scripts: list[str]) -> dict[str, Any]:
    """The first JSON-LD object of an article type, looking inside lists and ``@graph``."""
    queue: list[Any] = []
    for script in scripts:
        try:
            queue.append(json.loads(script))
        except ValueError:
            continue
    for _ in range(200):  # bounded: a page's JSON-LD is small, a hostile one is not walked far
        if not queue:
            break
        item = queue.pop(0)
        if isinstance(item, list):
            queue.extend(item)
        elif isinstance(item, dict):
            kinds = item.get("@type")
            kinds = kinds if isinstance(kinds, list) else [kinds]
            if any(k in _ARTICLE_TYPES for k in kinds if isinstance(k, str)):
                return item
            if isinstance(item.get("@graph"), list):
                queue.extend(item["@graph"])
    return {}


def _name(value: Any) -> str:
    """A JSON-LD person or organisation (or a list of them) as a name."""
    if isinstance(value, list):
        names = [_name(v) for v in value[:5]]
        return ", ".join(n for n in names if n)
    if isinstance(value, dict):
        return plain_line(value.get("name"))
    return plain_line(value)


def _image(value: Any) -> Any:
    if isinstance(value, list):
        return _image(value[0]) if value else None
    if isinstance(value, dict):
        return value.get("url")
    return value


def article_card(base: str, html: str) -> Card:
    """An article page as a related-article card: Open Graph first, then JSON-LD, then <title>."""
    tags = _Tags()
    _feed(tags, html, tags.enough)
    meta, ld = tags.meta, _article_ld(tags.json_ld)
    author = meta.get("article:author") or meta.get("author") or ""
    if absolute(base, author) == author.strip():
        author = ""  # article:author is often a profile URL, not a name
    publisher = ld.get("publisher")
    return Card(
        title=plain_line(meta.get("og:title") or ld.get("headline") or tags.title),
        text=plain_text(
            meta.get("og:description") or meta.get("description") or ld.get("description")
        ),
        author=plain_line(author) or _name(ld.get("author")),
        outlet=plain_line(meta.get("og:site_name")) or _name(publisher),
        published_at=instant(meta.get("article:published_time") or ld.get("datePublished")),
        image=absolute(
            base, meta.get("og:image") or meta.get("og:image:url") or _image(ld.get("image"))
        ),
        canonical=absolute(base, meta.get("og:url") or tags.canonical),
    )


# --- Telegram ---------------------------------------------------------------------------------


class _Telegram(HTMLParser):
    """The parts of a ``t.me/<channel>/<id>?embed=1`` page a card needs, by their classes."""

    _FIELDS = {"tgme_widget_message_text": "text", "tgme_widget_message_owner_name": "author"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: dict[str, list[str]] = {"text": [], "author": []}
        self.time: str | None = None
        self.photo: str | None = None
        self.error = False
        self._open: list[tuple[str, str | None]] = []  # (tag, field collected inside it)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k.lower(): v or "" for k, v in attrs}
        classes = values.get("class", "").split()
        if "tgme_widget_message_error" in classes:
            self.error = True
        if "tgme_widget_message_photo_wrap" in classes and self.photo is None:
            match = re.search(r"background-image:\s*url\(['\"]?([^'\")]+)", values.get("style", ""))
            self.photo = match.group(1) if match else None
        if tag == "time" and self.time is None:
            self.time = values.get("datetime")
        inside = self._open[-1][1] if self._open else None
        if tag in ("script", "style", "template", "noscript"):
            inside = "skip"
        named = next((self._FIELDS[c] for c in classes if c in self._FIELDS), None)
        named = "skip" if inside == "skip" else named
        if tag == "br" and inside in self.found:
            self.found[inside].append("\n")
        if tag not in _VOID:
            self._open.append((tag, named or inside))

    def handle_endtag(self, tag: str) -> None:
        # Close up to the nearest open ``tag`` (among the last few: a stray end tag in hostile
        # markup must not cost a walk down a deep stack); an end tag never opened closes nothing.
        for depth, (name, _) in enumerate(reversed(self._open[-64:])):
            if name == tag:
                del self._open[len(self._open) - depth - 1 :]
                break

    def handle_data(self, data: str) -> None:
        inside = self._open[-1][1] if self._open else None
        if inside in self.found:
            self.found[inside].append(data)


_VOID = frozenset({"br", "img", "meta", "link", "input", "hr", "source", "wbr", "area", "base"})


def telegram_card(base: str, html: str, channel: str) -> Card:
    """A Telegram post's embed page as a card; ``gone`` when the page says it is not there."""
    page = _Telegram()
    _feed(page, html, lambda: False)
    text = plain_text("".join(page.found["text"]))
    author = plain_line("".join(page.found["author"]))
    if page.error or not (text or author or page.photo):
        return Card(gone=True)
    return Card(
        text=text,
        author=author,
        handle=f"@{channel}",
        outlet="Telegram",
        published_at=instant(page.time),
        image=absolute(base, page.photo),
    )


# --- X ----------------------------------------------------------------------------------------


class _Blockquote(HTMLParser):
    """X's oEmbed ``html``: the post's text (its <p>) and the date (the last link's text)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.last_link = ""
        self._in_p = False
        self._in_a: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "p":
            self._in_p = True
        elif tag == "br" and self._in_p:
            self.text.append("\n")
        elif tag == "a" and not self._in_p:
            self._in_a = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "p":
            self._in_p = False
        elif tag == "a" and self._in_a is not None:
            self.last_link = "".join(self._in_a)
            self._in_a = None

    def handle_data(self, data: str) -> None:
        if self._in_p:
            self.text.append(data)
        elif self._in_a is not None:
            self._in_a.append(data)


def x_post(html: object) -> tuple[str, str | None]:
    """The text and the date (``YYYY-MM-DD``) of X's oEmbed blockquote."""
    if not isinstance(html, str):
        return "", None
    quote = _Blockquote()
    quote.feed(html)
    quote.close()
    try:
        day: str | None = datetime.strptime(quote.last_link.strip(), "%B %d, %Y").date().isoformat()
    except ValueError:
        day = None
    return plain_text("".join(quote.text)), day


@dataclass
class OEmbed:
    """The oEmbed fields a card uses, each checked for its type."""

    title: str = ""
    author: str = ""
    author_url: str | None = None
    provider: str = ""
    thumbnail: str | None = None
    html: str = ""
    url: str | None = None


def oembed(base: str, data: Any) -> OEmbed | None:
    """An oEmbed answer (a JSON object of type video, rich, photo or link); None if it is not."""
    if not isinstance(data, dict) or data.get("type") not in ("video", "rich", "photo", "link"):
        return None
    html = data.get("html")
    return OEmbed(
        title=plain_line(data.get("title")),
        author=plain_line(data.get("author_name")),
        author_url=absolute(base, data.get("author_url")),
        provider=plain_line(data.get("provider_name")),
        thumbnail=absolute(base, data.get("thumbnail_url")),
        html=html if isinstance(html, str) else "",
        url=absolute(base, data.get("url")),
    )
