"""The OpenAPI document and the API reference page, and schemathesis against a running server."""

from __future__ import annotations

import html
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from helpers import HTTP_METHODS, TOKEN, WS, LivefeedServer, app_routes, auth, make_feed, publish
from livefeed.http.openapi import openapi_document


def app_operations() -> set[tuple[str, str]]:
    """(method, path) of every HTTP route the app declares."""
    return {route for route in app_routes() if route[0] != WS}


def documented_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method.upper() in HTTP_METHODS
    }


def test_openapi_document_is_valid_openapi_3_1() -> None:
    """The document validates against the OpenAPI 3.1 meta-schema and every operation loads."""
    schema = schemathesis.openapi.from_dict(openapi_document())
    schema.validate()
    operations = list(schema.get_all_operations())
    assert operations and all(isinstance(op, Ok) for op in operations)


def test_openapi_document_lists_exactly_the_routes_of_the_app() -> None:
    """Every HTTP route is documented, nothing else is, and the WebSocket is an extension."""
    document = openapi_document()
    assert documented_operations(document) == app_operations()
    sockets = {path for method, path in app_routes() if method == WS}
    assert set(document["x-websockets"]) == sockets


def test_editor_operations_and_only_they_need_the_token() -> None:
    """Operations that call authenticate() declare the bearer scheme and its 401 and 429."""
    document = openapi_document()
    for path, item in document["paths"].items():
        for method, op in item.items():
            desk = "/drafts" in path or path.endswith("/audit")  # nothing on the desk is public
            editor = method != "get" or path in ("/api/me", "/api/tokens", "/api/media/{media}")
            editor = (editor or desk) and "/push-subscriptions" not in path  # readers follow
            assert ("security" in op) is editor, (method, path)
            assert ({"401", "429"} <= set(op["responses"])) is editor, (method, path)


def test_openapi_json_is_served(http: httpx.Client) -> None:
    """``GET /openapi.json`` answers the document as JSON."""
    response = http.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == openapi_document()


def test_api_reference_page_shows_every_operation(http: httpx.Client) -> None:
    """``GET /api`` is a script-free page naming each method and path, body field and status."""
    response = http.get("/api")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    page = html.unescape(response.text)
    assert "<script" not in page
    for method, path in documented_operations(openapi_document()):
        assert f"{method} {path}" in page
    for field in ("headline", "key_event", "brief_id", "If-Match", "limit", "cursor"):
        assert f"<code>{field}</code>" in page
    for code in ("stale_version", "feed_ended", "bad_cursor", "too_many_tags", "4408"):
        assert code in page
    assert "WS /ws/feeds/{feed}" in page


# --- schemathesis ---------------------------------------------------------------------------


class Fuzzed:
    """A fresh feed for schemathesis to work on, with a few briefs and a draft to find."""

    def __init__(self, slug: str, brief_ids: list[str], draft_id: str = "") -> None:
        self.slug = slug
        self.brief_ids = brief_ids
        self.draft_id = draft_id


@pytest.fixture
def fuzzed(http: httpx.Client) -> Fuzzed:
    """A new one for each operation, so one that retracts or ends leaves the others something."""
    slug = make_feed(http)
    ids = [publish(http, slug, f"Brief {n}", key_event=n == 0)["id"] for n in range(3)]
    pinned = http.put(f"/api/feeds/{slug}/pin", json={"brief_id": ids[1]}, headers=auth())
    assert pinned.status_code == 200
    draft = http.post(f"/api/feeds/{slug}/drafts", json={"headline": "Draft"}, headers=auth())
    assert draft.status_code == 201
    return Fuzzed(slug, ids, draft.json()["id"])


@pytest.fixture(scope="module")
def api_schema(server: LivefeedServer) -> Any:
    return schemathesis.openapi.from_url(server.base + "/openapi.json")


def cases(operation: Any, fuzzed: Fuzzed) -> st.SearchStrategy[Any]:
    """Valid and invalid requests; most go to the fresh feed and its briefs, not to 404s."""
    strategies = [operation.as_strategy(mode) for mode in GenerationMode]
    if "{feed}" in operation.path:
        real: dict[str, str] = {"feed": fuzzed.slug}
        strategies.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=real))
        if "{brief}" in operation.path:
            real = {**real, "brief": fuzzed.brief_ids[0]}
            strategies.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=real))
        if "{draft}" in operation.path:
            real = {**real, "draft": fuzzed.draft_id}
            strategies.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=real))
        strategies.append(operation.as_strategy(GenerationMode.NEGATIVE, path_parameters=real))
    return st.one_of(strategies)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param(m, p, id=f"{m} {p}")
        for m, p in sorted(documented_operations(openapi_document()))
    ],
)
def test_api_conforms_to_its_openapi_document(
    method: str, path: str, api_schema: Any, server: LivefeedServer, fuzzed: Fuzzed
) -> None:
    """Generated requests, valid and not: never a 5xx, every answer documented and as described.

    Most carry the editor token, some a wrong one or none.
    """
    operation = api_schema[path][method]

    @settings(max_examples=25)
    @given(case=cases(operation, fuzzed), token=st.sampled_from([TOKEN, TOKEN, "wrong", None]))
    def check(case: Any, token: str | None) -> None:
        case.call_and_validate(
            base_url=server.base,
            headers=auth(token) if token else None,
            checks=[
                not_a_server_error,
                response_schema_conformance,
                status_code_conformance,
                content_type_conformance,
            ],
            timeout=10,
        )

    check()
