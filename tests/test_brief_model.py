"""One definition of a brief: the model's fields are what every view of a brief carries."""

from __future__ import annotations

import httpx
import msgspec
import orjson

from helpers import publish
from livefeed.http.openapi import openapi_document
from livefeed.model.brief import BRIEF_FIELDS, PUBLISH_ONLY, Brief, BriefPatch
from livefeed.newsroom.transfer import export_line

FIELDS = list(Brief.__struct_fields__)
PLACED = [name for name in FIELDS if name not in BRIEF_FIELDS]
"""What a stored brief has beyond what an editor sends: its id, times and version."""


def test_the_json_api_answers_exactly_the_models_fields(http: httpx.Client, feed: str) -> None:
    """Publishing, reading one and listing answer a brief with Brief's fields, in its order."""
    answer = publish(http, feed, "Fields", tags=["roads"], url="https://example.org/a")
    assert list(answer) == FIELDS
    one = http.get(f"/api/feeds/{feed}/briefs/{answer['id']}").json()
    listed = http.get(f"/api/feeds/{feed}/briefs").json()["briefs"][0]
    assert list(one) == list(listed) == FIELDS


def test_an_export_line_is_the_models_fields_but_the_id(http: httpx.Client, feed: str) -> None:
    """An export line carries every field of Brief but the id, which an import derives."""
    answer = publish(http, feed, "Exported", tags=["roads"])
    line = orjson.loads(export_line(msgspec.convert(answer, Brief)))
    assert list(line) == [name for name in FIELDS if name != "id"]
    assert line == {k: v for k, v in answer.items() if k != "id"}


def test_the_openapi_schemas_are_the_models_fields() -> None:
    """The OpenAPI Brief, NewBrief and BriefPatch schemas list exactly the models' fields."""
    schemas = openapi_document()["components"]["schemas"]
    assert list(schemas["Brief"]["properties"]) == FIELDS
    assert sorted(schemas["Brief"]["required"]) == sorted(FIELDS)
    published = [n for n in FIELDS if n not in PLACED]
    assert list(schemas["NewBrief"]["properties"]) == [*published, *sorted(PUBLISH_ONLY)]
    assert set(schemas["BriefPatch"]["properties"]) == {
        *BRIEF_FIELDS,
        "version",
        "correction_note",
    }
    assert set(BriefPatch.__struct_fields__) == set(schemas["BriefPatch"]["properties"])
    assert schemas["NewBrief"]["additionalProperties"] is False
