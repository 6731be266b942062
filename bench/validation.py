"""Microseconds to validate one publish body: livefeed's hand validation, msgspec, pydantic v2.

Each candidate applies livefeed's own rules the library does not know (the text rule
``check_text``, whitespace collapse, tag de-duplication, the url check) but not body
sanitising, which costs the same whichever validates. Every candidate takes the parsed JSON
object (what ``read_json`` hands a handler) and gives the normalised brief; each is first
checked to agree with the others on the sample. Prints the median of ``--runs`` runs of
``--count`` validations each.

    .venv/bin/python bench/validation.py            # N=20,000, 7 runs
    PYTHONPATH=/work/main .venv/bin/python bench/validation.py   # against another checkout
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlsplit

import msgspec
import pydantic  # not a livefeed dependency: `.venv/bin/pip install pydantic` to run this

from livefeed.errors import ValidationFailed
from livefeed.model.schema import AUTHOR_MAX, BODY_MAX, HEADLINE_MAX, TAG_MAX, TAGS_MAX, URL_MAX
from livefeed.model.text import check_text

try:
    from livefeed.model.brief import parse_new_brief
except ImportError:  # a checkout from before the models (PYTHONPATH=), to compare with it
    from livefeed.model.schema import parse_new_brief  # type: ignore[attr-defined,no-redef]

_TEXT = (
    "the council said on monday that the bridge over the river would stay closed until "
    "engineers had inspected it the mayor thanked volunteers who handed out water"
)
_WORDS = _TEXT.split(" ")


def sample() -> dict[str, Any]:
    """A realistic publish body: ~90-character headline, ~1 KiB of plain-text paragraphs."""
    words = (_WORDS * 40)[:190]
    paragraphs = [" ".join(words[i : i + 38]).capitalize() + "." for i in range(0, 190, 38)]
    return {
        "headline": "Bridge over the river stays closed until engineers finish inspecting "
        "its supports",
        "body": "\n\n".join(paragraphs),
        "author": "Olena Kovalenko",
        "url": "https://example.org/news/2026/12/01/bridge-closed-until-inspection",
        "tags": ["roads", "city council", "weather"],
        "key_event": True,
    }


def _line(value: str, name: str, limit: int, *, required: bool) -> str:
    value = " ".join(check_text(value, name).split())
    if required and not value:
        raise ValidationFailed(f"{name} must not be empty", code="empty_field", field=name)
    if len(value) > limit:
        raise ValidationFailed(f"{name} is too long", code="too_long", field=name)
    return value


def _url(value: str | None) -> str | None:
    if not value:
        return None
    url = check_text(value, "url").strip()
    parts = urlsplit(url)
    if len(url) > URL_MAX or parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValidationFailed("url must be an http(s) URL", code="invalid_url", field="url")
    return url


def _tags(value: list[str] | None) -> list[str]:
    tags: dict[str, None] = {}
    for raw in value or ():
        tag = " ".join(check_text(raw, "tags").split())
        if not tag or len(tag) > TAG_MAX:
            raise ValidationFailed("bad tag", code="invalid_tag", field="tags")
        tags[tag] = None
    return list(tags)


# --- (b) msgspec: types, unknown fields and raw lengths by the library, the rest after ---------


class MsgspecBrief(msgspec.Struct, forbid_unknown_fields=True):
    headline: str
    body: Annotated[str, msgspec.Meta(max_length=BODY_MAX)] = ""
    author: str | None = None
    url: str | None = None
    tags: Annotated[list[str], msgspec.Meta(max_length=TAGS_MAX)] | None = None
    key_event: bool = False

    def __post_init__(self) -> None:
        self.headline = _line(self.headline, "headline", HEADLINE_MAX, required=True)
        check_text(self.body, "body")
        self.author = _line(self.author or "", "author", AUTHOR_MAX, required=False) or "Desk"
        self.url = _url(self.url)
        self.tags = _tags(self.tags)


def with_msgspec(payload: Any) -> MsgspecBrief:
    return msgspec.convert(payload, MsgspecBrief)


# --- (c) pydantic v2: strict types, extra="forbid", the rules as after-validators -------------


class PydanticBrief(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(strict=True, extra="forbid")

    headline: str
    body: Annotated[str, pydantic.Field(max_length=BODY_MAX)] = ""
    author: str | None = None
    url: str | None = None
    tags: Annotated[list[str], pydantic.Field(max_length=TAGS_MAX)] | None = None
    key_event: bool = False

    @pydantic.field_validator("headline")
    @classmethod
    def _headline(cls, value: str) -> str:
        return _line(value, "headline", HEADLINE_MAX, required=True)

    @pydantic.field_validator("body")
    @classmethod
    def _body(cls, value: str) -> str:
        return check_text(value, "body")

    @pydantic.field_validator("author")
    @classmethod
    def _author(cls, value: str | None) -> str:
        return _line(value or "", "author", AUTHOR_MAX, required=False) or "Desk"

    @pydantic.field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _url(value)

    @pydantic.field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str] | None) -> list[str]:
        return _tags(value)


def with_pydantic(payload: Any) -> PydanticBrief:
    return PydanticBrief.model_validate(payload)


def with_livefeed(payload: Any) -> Any:
    return parse_new_brief(payload, "Desk", sanitize=False)


def _normal(brief: Any) -> tuple[Any, ...]:
    fields = ("headline", "body", "author", "url", "tags", "key_event")
    return tuple(list(v) if isinstance(v := getattr(brief, name), tuple) else v for name in fields)


def measure(validate: Callable[[Any], Any], payload: Any, count: int, runs: int) -> float:
    """Median microseconds per validation over ``runs`` runs of ``count``."""
    per_run = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(count):
            validate(payload)
        per_run.append((time.perf_counter() - start) / count * 1e6)
    return statistics.median(per_run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    payload = sample()
    candidates = {
        "livefeed parse_new_brief": with_livefeed,
        f"msgspec {msgspec.__version__}": with_msgspec,
        f"pydantic {pydantic.VERSION}": with_pydantic,
    }
    expected = _normal(with_livefeed(payload))
    for name, validate in candidates.items():
        assert _normal(validate(payload)) == expected, name
    print(f"body {len(payload['body'])} chars; median of {args.runs} runs of {args.count:,}")
    for name, validate in candidates.items():
        print(f"{name:28} {measure(validate, payload, args.count, args.runs):6.2f} µs/brief")


if __name__ == "__main__":
    main()
