"""Search within a feed, the pure half: folding text, reading a query, marking matches.

``fold`` is the one normalisation applied to every indexed text and every query, so both sides
compare the same letters: compatibility decomposition (NFKD, so NFC and NFD input agree and
ligatures or full-width forms become plain letters), nonspacing marks dropped (Latin diacritics,
café = cafe; Arabic harakat; the hamza on alef), Arabic tatweel dropped, alef maksura read as
yeh, then case folding (Київ = КИЇВ = київ, Straße = STRASSE). A word is a run of letters,
digits, marks or private-use characters, the same rule as the index's tokenizer (unicode61 with
``categories 'L* N* Co M*'``). Every word of a query must match; the last one as a prefix, as a
search box is typed. Pure: no I/O.
"""

from __future__ import annotations

import html
import re
import sys
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Annotated

from msgspec import Meta, Struct

from livefeed.errors import BadRequest
from livefeed.limits import SEARCH_QUERY_MAX, SEARCH_SNIPPET, SEARCH_WORDS_MAX
from livefeed.model.brief import Brief
from livefeed.model.ids import FULL_ID_PATTERN

_TAG = re.compile(r"<[^>]*>")


@cache
def _fold_table() -> dict[int, str | None]:
    """Nonspacing marks and tatweel to nothing, alef maksura to yeh (built once, ~0.3 s)."""
    table: dict[int, str | None] = {
        cp: None for cp in range(sys.maxunicode + 1) if unicodedata.category(chr(cp)) == "Mn"
    }
    table[0x0640] = None  # ARABIC TATWEEL: stretches a word, is no letter
    table[0x0649] = "\u064a"  # ALEF MAKSURA, written for final yeh (على / علي)
    return table


def fold(text: str) -> str:
    """``text`` as the index and queries compare it (see the module docstring)."""
    return unicodedata.normalize("NFKD", text).translate(_fold_table()).casefold()


@lru_cache(maxsize=8192)
def _fold_char(char: str) -> str:
    return char.lower() if char.isascii() else fold(char)


def _is_word_char(char: str) -> bool:
    category = unicodedata.category(char)
    return category[0] in "LNM" or category == "Co"


def words(folded: str) -> list[str]:
    """The words of folded text, as the index's tokenizer splits it."""
    out: list[str] = []
    start = None
    for index, char in enumerate(folded):
        if _is_word_char(char):
            if start is None:
                start = index
        elif start is not None:
            out.append(folded[start:index])
            start = None
    if start is not None:
        out.append(folded[start:])
    return out


def body_text(body_html: str) -> str:
    """A sanitised body (nh3's output) as one line of plain text."""
    return " ".join(html.unescape(_TAG.sub(" ", body_html)).split())


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


def _spans(text: str, query: Query) -> list[tuple[int, int]]:
    """Where ``text`` has a word of ``query``, as ranges of ``text`` itself."""
    folded: list[str] = []
    origin: list[int] = []  # for each folded character, the index of the one it came from
    for index, char in enumerate(text):
        piece = _fold_char(char)
        folded.extend(piece)
        origin.extend([index] * len(piece))
    whole, prefix, spans = set(query.words[:-1]), query.words[-1], []
    start = None
    for index in range(len(folded) + 1):
        if index < len(folded) and _is_word_char(folded[index]):
            start = index if start is None else start
            continue
        if start is not None:
            word = "".join(folded[start:index])
            if word in whole or word.startswith(prefix):
                end = origin[index - 1] + 1
                while end < len(text) and not _fold_char(text[end]):  # its marks go with it
                    end += 1
                spans.append((origin[start], end))
            start = None
    return spans


def fragments(text: str, query: Query, spans: list[tuple[int, int]] | None = None) -> Fragments:
    """``text`` cut at each match of ``query``."""
    out: list[Fragment] = []
    at = 0
    for start, end in _spans(text, query) if spans is None else spans:
        if start > at:
            out.append(Fragment(text[at:start]))
        out.append(Fragment(text[max(start, at) : end], mark=True))
        at = max(at, end)
    if at < len(text):
        out.append(Fragment(text[at:]))
    return tuple(out)


def snippet(body_html: str, query: Query) -> Fragments:
    """About ``SEARCH_SNIPPET`` characters of the body around its first match, as fragments."""
    text = body_text(body_html)
    spans = _spans(text, query)
    first = spans[0][0] if spans else 0
    start = max(0, first - SEARCH_SNIPPET // 3)
    if start:
        space = text.find(" ", start, first)
        start = space + 1 if space >= 0 else start
    end = min(len(text), start + SEARCH_SNIPPET)
    if end < len(text):
        space = text.rfind(" ", max(first, start), end)
        end = space if space > start else end
    inside = [(max(s, start) - start, min(e, end) - start) for s, e in spans if s < end]
    out = list(fragments(text[start:end], query, inside))
    if start:
        out.insert(0, Fragment("\u2026"))
    if end < len(text):
        out.append(Fragment("\u2026"))
    return tuple(out)


def hit(brief: Brief, query: Query) -> SearchHit:
    return SearchHit(
        brief=brief, headline=fragments(brief.headline, query), snippet=snippet(brief.body, query)
    )
