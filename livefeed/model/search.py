"""Search within a feed, the pure half: folding text, reading a query, marking matches.

``fold`` is the one normalisation applied to every indexed text and every query, so both sides
compare the same letters: compatibility decomposition (NFKD, so NFC and NFD input agree and
ligatures or full-width forms become plain letters), nonspacing marks dropped (Latin diacritics,
café = cafe; Arabic harakat; the hamza on alef) and every other mark, Arabic tatweel dropped,
alef maksura read as yeh, then case folding (Київ = КИЇВ = київ, Straße = STRASSE). A word is a
run of letters and digits, the same rule as the index's tokenizer (unicode61 with
``categories 'L* N*'``). Every word of a query must match; the last one as a prefix, as a
search box is typed. Pure: no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Annotated

from msgspec import Meta, Struct

from livefeed.errors import BadRequest
from livefeed.limits import SEARCH_QUERY_MAX, SEARCH_SNIPPET, SEARCH_WORDS_MAX
from livefeed.model.brief import Brief
from livefeed.model.ids import FULL_ID_PATTERN
from livefeed.model.text import plain_text


def _ranges(codepoints: list[int]) -> str:
    """A regex class body naming ``codepoints`` (sorted) as ranges."""
    out, start = [], 0
    for i, point in enumerate(codepoints):
        if i + 1 == len(codepoints) or codepoints[i + 1] != point + 1:
            out.append(f"{re.escape(chr(codepoints[start]))}-{re.escape(chr(point))}")
            start = i + 1
    return "".join(out)


@cache
def _marks() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Runs of what ``fold`` drops: every mark (Unicode category M) and Arabic tatweel, in the
    BMP and beyond it (a class of BMP characters only is a bitmap, ten times quicker). Regexes
    rather than ``str.translate``, which looks each character up in a dict (most of a rebuild's
    time); built on first use. Marks are all in planes 0, 1 and 14, so others are not read."""
    planes = (*range(0x300, 0x20000), *range(0xE0000, 0xE1000))
    marks = [c for c in planes if unicodedata.category(chr(c))[0] == "M"]
    bmp = _ranges(sorted([0x640, *(c for c in marks if c < 0x10000)]))
    return re.compile(f"[{bmp}]+"), re.compile(f"[{_ranges([c for c in marks if c >= 0x10000])}]+")


_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_WORD = re.compile(r"[^\W_]+")
"""A word: letters and digits (Unicode categories L and N), as the index's tokenizer reads."""


def fold(text: str) -> str:
    """``text`` as the index and queries compare it (see the module docstring)."""
    if text.isascii():
        return text.lower()
    bmp, astral = _marks()
    bare = bmp.sub("", unicodedata.normalize("NFKD", text))
    if _ASTRAL.search(bare) is not None:
        bare = astral.sub("", bare)
    return bare.replace("\u0649", "\u064a").casefold()  # ALEF MAKSURA read as YEH


@lru_cache(maxsize=8192)
def _fold_char(char: str) -> str:
    return fold(char)


@lru_cache(maxsize=65536)
def _fold_run(run: str) -> str:
    return fold(run)


_RUN = re.compile(r"\S+")


def words(folded: str) -> list[str]:
    """The words of folded text, as the index's tokenizer splits it."""
    return _WORD.findall(folded)


@dataclass(frozen=True, slots=True)
class Query:
    """A query read: the text as given and its folded words (the last matched as a prefix)."""

    text: str
    words: tuple[str, ...]

    def match_expression(self) -> str:
        """The FTS5 MATCH expression: every word quoted (words hold no quote), the last a prefix."""
        quoted = [f'"{word}"' for word in self.words]
        quoted[-1] += "*"
        return " AND ".join(quoted)


def parse_query(raw: str | None) -> Query:
    """``?q=`` read, or BadRequest ``bad_query`` when empty, too long or of too many words."""
    text = " ".join((raw or "").split())
    if not text:
        raise BadRequest("q must have a word to search for", code="bad_query", field="q")
    if len(text) > SEARCH_QUERY_MAX:
        raise BadRequest(
            f"q must be at most {SEARCH_QUERY_MAX} characters", code="bad_query", field="q"
        )
    found = list(dict.fromkeys(words(fold(text))))
    if not found:
        raise BadRequest("q must have a letter or digit", code="bad_query", field="q")
    if len(found) > SEARCH_WORDS_MAX:
        raise BadRequest(
            f"q may have at most {SEARCH_WORDS_MAX} words", code="bad_query", field="q"
        )
    return Query(text, tuple(found))


class Fragment(Struct, frozen=True):
    """A piece of a hit's text: shown as it is, inside a <mark> when ``mark`` (built as text,
    never as HTML)."""

    text: str
    mark: bool = False


Fragments = tuple[Fragment, ...]


class SearchHit(Struct, frozen=True, kw_only=True):
    """A brief that matches, as it stands now, with its headline and a stretch of its body cut
    into fragments at each match."""

    brief: Brief
    headline: Fragments
    snippet: Annotated[Fragments, Meta(
        description=f"about {SEARCH_SNIPPET} characters of the body's text around its first "
        "match (or its start), with \u2026 where it was cut"
    )]  # fmt: skip


class SearchResults(Struct, frozen=True, kw_only=True):
    """A page of hits, newest first; ``next`` is the cursor of the page after it."""

    query: str
    hits: tuple[SearchHit, ...]
    next: Annotated[str, Meta(
        pattern=FULL_ID_PATTERN, description="pass as ?cursor= for older hits"
    )] | None  # fmt: skip


def _spans(text: str, query: Query, *, first: bool = False) -> list[tuple[int, int]]:
    """Where ``text`` has a word of ``query``, as ranges of ``text`` itself (only the first
    with ``first``). Folded a run of non-blank characters at a time, and mapped back character
    by character only in a run that matched, so a long body costs little."""
    whole, prefix = set(query.words[:-1]), query.words[-1]
    ascii_text = text.isascii()
    spans: list[tuple[int, int]] = []
    for run in _RUN.finditer(text):
        chunk = run.group()
        folded = chunk.lower() if ascii_text else _fold_run(chunk)
        origin: list[int] | None = None
        for found in _WORD.finditer(folded):
            word = found.group()
            if not (word in whole or word.startswith(prefix)):
                continue
            start, end = found.span()
            if not ascii_text:
                if origin is None:  # for each folded character, the one it came from
                    origin = [i for i, char in enumerate(chunk) for _ in _fold_char(char)]
                start, end = origin[start], origin[end - 1] + 1
                while end < len(chunk) and not _fold_char(chunk[end]):  # its marks go with it
                    end += 1
            spans.append((run.start() + start, run.start() + end))
            if first:
                return spans
    return spans


def fragments(text: str, query: Query) -> Fragments:
    """``text`` cut at each match of ``query``."""
    out: list[Fragment] = []
    at = 0
    for start, end in _spans(text, query):
        if start > at:
            out.append(Fragment(text[at:start]))
        out.append(Fragment(text[max(start, at) : end], mark=True))
        at = max(at, end)
    if at < len(text):
        out.append(Fragment(text[at:]))
    return tuple(out)


def snippet(body_html: str, query: Query) -> Fragments:
    """About ``SEARCH_SNIPPET`` characters of the body around its first match, as fragments."""
    text = " ".join(plain_text(body_html).split())
    first = next((start for start, _ in _spans(text, query, first=True)), 0)
    start = max(0, first - SEARCH_SNIPPET // 3)
    if start:
        space = text.find(" ", start, first)
        start = space + 1 if space >= 0 else start
    end = min(len(text), start + SEARCH_SNIPPET)
    if end < len(text):
        space = text.rfind(" ", max(first, start), end)
        end = space if space > start else end
    out = list(fragments(text[start:end], query))
    if start:
        out.insert(0, Fragment("\u2026"))
    if end < len(text):
        out.append(Fragment("\u2026"))
    return tuple(out)


def hit(brief: Brief, query: Query) -> SearchHit:
    return SearchHit(
        brief=brief, headline=fragments(brief.headline, query), snippet=snippet(brief.body, query)
    )
