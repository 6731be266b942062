"""Topics: how tags are matched, and the filter a page or API call asks for (``?tag=``,
``?key_event=true``).

A tag is matched by its key (``tag_key``): NFKC, then case-folded, so ``Kharkiv``, ``kharkiv``
and ``KHARKIV`` (and ``Харків``, ``харків``) are one topic, while each brief shows its tags as
they were written. The topic index (``storage.topics``) holds keys; a page heading shows the tag
as the reader asked for it. Pure: no I/O.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from livefeed.errors import BadRequest
from livefeed.model.schema import TAG_MAX
from livefeed.model.text import obeys_text_rule


def tag_key(tag: str) -> str:
    """The form a tag is matched in: NFKC and case-folded."""
    return unicodedata.normalize("NFKC", tag).casefold()


def tag_keys(tags: Sequence[str]) -> list[str]:
    """The distinct keys of ``tags``, in order (two spellings of one topic are indexed once)."""
    return list(dict.fromkeys(tag_key(tag) for tag in tags))


@dataclass(frozen=True, slots=True)
class Topic:
    """What a reader filters by: a tag (as asked for, and its key) and/or key events only."""

    tag: str | None = None
    key_event: bool = False

    @property
    def key(self) -> str | None:
        return None if self.tag is None else tag_key(self.tag)

    @property
    def filtered(self) -> bool:
        return self.tag is not None or self.key_event

    def query(self) -> dict[str, str]:
        """The query parameters that ask for this topic again (a link, "Load older")."""
        params = {} if self.tag is None else {"tag": self.tag}
        return {**params, "key_event": "true"} if self.key_event else params


def parse_topic(params: Mapping[str, str]) -> Topic:
    """The topic of ``?tag=`` and ``?key_event=true`` (both: AND); BadRequest ``bad_tag``
    for a tag that could not be one, ``bad_key_event`` for anything but ``true``."""
    raw_tag = params.get("tag")
    tag = None
    if raw_tag is not None:
        tag = " ".join(raw_tag.split())  # spaced as tags are stored
        if not 1 <= len(tag) <= TAG_MAX or not obeys_text_rule(tag):
            raise BadRequest(f"tag must be 1-{TAG_MAX} characters of text", code="bad_tag")
    raw_key = params.get("key_event")
    if raw_key not in (None, "true"):
        raise BadRequest("key_event must be true, or left out", code="bad_key_event")
    return Topic(tag, raw_key == "true")
