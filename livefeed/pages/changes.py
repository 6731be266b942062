"""A brief's public corrections as readable diffs: "What changed" under a corrected brief. Pure.

Built from the history livefeed keeps (``newsroom.actions.history``): each version that brought
a new ``correction`` is compared with the version just before it, headline and body as plain
text, word by word (difflib). Silent fixes (no note) are not listed. The parts are plain text;
the template escapes them, so a diff never carries markup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any, Literal

from livefeed.model.text import plain_text

Part = tuple[Literal["same", "del", "ins"], str]
BUDGET = 20_000
"""Pairs of paragraphs or of words the comparisons for one page may weigh, all told: difflib
is worse than quadratic on repetitive text (about 60 ms for 141 by 141 repeated lines)."""
SHOWN = 10
"""Public corrections the page shows, newest first; older ones stay in the brief's history."""
_WORDS = re.compile(r"\s+|[^\s]+")


@dataclass(frozen=True, slots=True)
class Change:
    """One public correction: its note, when, the version it made, and what it changed."""

    version: int
    at: str
    note: str
    headline: list[Part]
    body: list[Part]


class Budget:
    """What is left of ``BUDGET`` for one page's comparisons."""

    def __init__(self, pairs: int = BUDGET) -> None:
        self.pairs = pairs

    def take(self, old: int, new: int) -> bool:
        """Whether ``old`` by ``new`` items may still be compared (and if so, spend them)."""
        if old * new > self.pairs:
            return False
        self.pairs -= old * new
        return True


def word_diff(before: str, after: str, budget: Budget | None = None) -> list[Part]:
    """``before`` to ``after`` as runs of kept, deleted and inserted text, word by word.

    Paragraphs are matched first, then words within the paragraphs that differ, each span
    trimmed of what it shares at either end; a span too big for what is left of ``budget``
    is shown deleted and inserted whole, so no text takes long to diff.
    """
    budget = budget or Budget()
    old, new = _trimmed(before.splitlines(keepends=True), after.splitlines(keepends=True))
    parts: list[Part] = [("same", "".join(old.head))]
    if not budget.take(len(old.middle), len(new.middle)):
        parts += _words("".join(old.middle), "".join(new.middle), budget)
    else:
        matcher = SequenceMatcher(None, old.middle, new.middle, autojunk=False)
        for op, i1, i2, j1, j2 in matcher.get_opcodes():
            if op == "equal":
                parts.append(("same", "".join(old.middle[i1:i2])))
            else:
                parts += _words("".join(old.middle[i1:i2]), "".join(new.middle[j1:j2]), budget)
    parts.append(("same", "".join(old.tail)))
    return _merged(parts)


@dataclass(frozen=True, slots=True)
class _Span:
    head: list[str]
    middle: list[str]
    tail: list[str]


def _trimmed(old: list[str], new: list[str]) -> tuple[_Span, _Span]:
    """``old`` and ``new`` split into what they share at the start, the rest, and the end."""
    start = 0
    while start < min(len(old), len(new)) and old[start] == new[start]:
        start += 1
    end = 0
    while end < min(len(old), len(new)) - start and old[-1 - end] == new[-1 - end]:
        end += 1
    return (
        _Span(old[:start], old[start : len(old) - end], old[len(old) - end :]),
        _Span(new[:start], new[start : len(new) - end], new[len(new) - end :]),
    )


def _words(before: str, after: str, budget: Budget) -> list[Part]:
    old_span, new_span = _trimmed(_WORDS.findall(before), _WORDS.findall(after))
    old_mid, new_mid = old_span.middle, new_span.middle
    parts: list[Part] = [("same", "".join(old_span.head))]
    if not budget.take(len(old_mid), len(new_mid)):
        parts += [("del", "".join(old_mid)), ("ins", "".join(new_mid))]
    else:
        matcher = SequenceMatcher(None, old_mid, new_mid, autojunk=False)
        for op, i1, i2, j1, j2 in matcher.get_opcodes():
            if op == "equal":
                parts.append(("same", "".join(old_mid[i1:i2])))
                continue
            parts += [("del", "".join(old_mid[i1:i2])), ("ins", "".join(new_mid[j1:j2]))]
    parts.append(("same", "".join(old_span.tail)))
    return parts


def _merged(parts: list[Part]) -> list[Part]:
    """``parts`` without empty runs, neighbours of one kind joined."""
    out: list[Part] = []
    for kind, text in parts:
        if not text:
            continue
        if out and out[-1][0] == kind:
            out[-1] = (kind, out[-1][1] + text)
        else:
            out.append((kind, text))
    return out


def public_changes(versions: list[dict[str, Any]], shown: int = SHOWN) -> tuple[list[Change], int]:
    """The newest ``shown`` public corrections in a brief's history (``actions.history``),
    newest first, and how many older ones there are besides."""
    pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []
    before: dict[str, Any] | None = None
    for version in versions:
        brief = version.get("brief")
        if brief is None:
            continue
        correction = brief.get("correction")
        if before is not None and correction and correction != before.get("correction"):
            pairs.append((before, brief))
        before = brief
    newest = pairs[::-1][:shown]
    budget = Budget()
    return [_change(old, new, budget) for old, new in newest], len(pairs) - len(newest)


def _change(before: dict[str, Any], brief: dict[str, Any], budget: Budget) -> Change:
    return Change(
        version=brief["version"],
        at=brief["correction"]["at"],
        note=brief["correction"]["note"],
        headline=word_diff(before["headline"], brief["headline"], budget),
        body=word_diff(plain_text(before["body"]), plain_text(brief["body"]), budget),
    )
