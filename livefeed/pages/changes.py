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

from livefeed.pages.structured import plain_text

Part = tuple[Literal["same", "del", "ins"], str]
_WORDS = re.compile(r"\s+|[^\s]+")


@dataclass(frozen=True, slots=True)
class Change:
    """One public correction: its note, when, the version it made, and what it changed."""

    version: int
    at: str
    note: str
    headline: list[Part]
    body: list[Part]


def word_diff(before: str, after: str) -> list[Part]:
    """``before`` to ``after`` as runs of kept, deleted and inserted text, word by word."""
    old, new = _WORDS.findall(before), _WORDS.findall(after)
    parts: list[Part] = []
    matcher = SequenceMatcher(None, old, new, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            parts.append(("same", "".join(old[i1:i2])))
            continue
        if i2 > i1:
            parts.append(("del", "".join(old[i1:i2])))
        if j2 > j1:
            parts.append(("ins", "".join(new[j1:j2])))
    return parts


def public_changes(versions: list[dict[str, Any]]) -> list[Change]:
    """The public corrections among a brief's history (``actions.history``), newest first."""
    out: list[Change] = []
    before: dict[str, Any] | None = None
    for version in versions:
        brief = version.get("brief")
        if brief is None:
            continue
        correction = brief.get("correction")
        if before is not None and correction and correction != before.get("correction"):
            out.append(
                Change(
                    version=brief["version"],
                    at=correction["at"],
                    note=correction["note"],
                    headline=word_diff(before["headline"], brief["headline"]),
                    body=word_diff(plain_text(before["body"]), plain_text(brief["body"])),
                )
            )
        before = brief
    return out[::-1]
