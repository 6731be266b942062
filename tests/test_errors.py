"""The error tree: one root for every livefeed exception, one mapping for every error body."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import socket
import uuid
from collections.abc import Iterator

import httpx
import orjson
import pytest
from starlette.requests import Request

import livefeed
from helpers import LivefeedServer, RedisProcess, read_until_closed
from livefeed import app, errors
from livefeed.errors import (
    HeadersTooLarge,
    HttpError,
    LivefeedError,
    LivefeedException,
    MethodNotAllowed,
    NotFound,
    RequestTimeout,
    TooManyRequests,
)


def _livefeed_exceptions() -> list[type[BaseException]]:
    """Every exception class defined in a livefeed module."""
    found: list[type[BaseException]] = []
    for info in pkgutil.walk_packages(livefeed.__path__, "livefeed."):
        if info.name == "livefeed.__main__":
            continue
        module = importlib.import_module(info.name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == info.name:
                found.append(value)
    return found


# tree


def test_every_exception_livefeed_defines_derives_from_the_one_root() -> None:
    """No livefeed module defines an exception outside LivefeedException."""
    classes = _livefeed_exceptions()
    assert len(classes) > 20, classes  # the walk found the modules
    outside = [
        f"{c.__module__}.{c.__name__}" for c in classes if not issubclass(c, LivefeedException)
    ]
    assert outside == []


def test_the_error_tree_drawing_names_every_exception() -> None:
    """errors.py's docstring draws every exception class livefeed defines."""
    drawing = errors.__doc__ or ""
    missing = [c.__name__ for c in _livefeed_exceptions() if c.__name__ not in drawing]
    assert missing == []


def test_a_status_the_tree_does_not_name_keeps_its_status_and_says_http_error() -> None:
    """An HTTPException Starlette raises maps to the tree: 404 and 405 by name, others as is."""
    assert isinstance(errors.from_http(404, "Not Found"), NotFound)
    assert isinstance(errors.from_http(405, "Method Not Allowed"), MethodNotAllowed)
    other = errors.from_http(400, "Bad Request")
    assert isinstance(other, HttpError) and other.status == 400
    assert other.to_dict() == {"error": {"code": "http_error", "message": "Bad Request"}}


# bodies on the wire


@pytest.fixture(scope="module")
def strict_edge(
    redis_server: RedisProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LivefeedServer]:
    """Small header limit, short head timer, three HTTP connections per address (loopback is
    not a trusted proxy here, so the test client is counted)."""
    server = LivefeedServer(
        redis_server.url,
        "errors-" + uuid.uuid4().hex[:6],
        LIVEFEED_MAX_HEADER_BYTES="2048",
        LIVEFEED_HEADER_TIMEOUT="2",
        LIVEFEED_KEEPALIVE_TIMEOUT="60",
        LIVEFEED_HTTP_CONNECTIONS_PER_ADDRESS="3",
        LIVEFEED_FORWARDED_ALLOW_IPS="192.0.2.1",  # loopback, a trusted proxy by default, counts
    )
    server.start(log_dir=tmp_path_factory.mktemp("errors"))
    yield server
    server.stop()


def _status_and_body(answer: bytes) -> tuple[int, object]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), orjson.loads(body)


def test_headers_over_the_limit_get_431_with_the_body_of_the_tree(
    strict_edge: LivefeedServer,
) -> None:
    """Headers over LIVEFEED_MAX_HEADER_BYTES get 431 headers_too_large, as ever."""
    with httpx.Client(base_url=strict_edge.base, timeout=10) as client:
        response = client.get("/healthz", headers={"x-big": "a" * 3000})
    body = {"error": {"code": "headers_too_large",
                      "message": "request headers must stay under 2048 bytes"}}  # fmt: skip
    assert (response.status_code, response.json()) == (431, body)
    error = HeadersTooLarge("request headers must stay under 2048 bytes")
    assert (error.status, error.to_dict()) == (431, body)


def test_a_slow_request_head_gets_408_with_the_body_of_the_tree(
    strict_edge: LivefeedServer,
) -> None:
    """A head not finished within LIVEFEED_HEADER_TIMEOUT gets 408 request_timeout, as ever."""
    with socket.create_connection(("127.0.0.1", strict_edge.port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        answer = read_until_closed(sock, 30) or b""
    body = {"error": {"code": "request_timeout", "message": "the request head took too long"}}
    assert _status_and_body(answer) == (408, body)
    assert RequestTimeout("the request head took too long").to_dict() == body


def test_one_connection_over_the_cap_gets_429_with_the_body_of_the_tree(
    strict_edge: LivefeedServer,
) -> None:
    """The connection over LIVEFEED_HTTP_CONNECTIONS_PER_ADDRESS gets 429, as ever."""
    held: list[socket.socket] = []
    try:
        for _ in range(3):
            sock = socket.create_connection(("127.0.0.1", strict_edge.port), timeout=10)
            held.append(sock)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")  # then idles in keep-alive
        with socket.create_connection(("127.0.0.1", strict_edge.port), timeout=10) as extra:
            answer = read_until_closed(extra, 20) or b""
    finally:
        for sock in held:
            sock.close()
    message = "too many connections from this address"
    body = {"error": {"code": "too_many_connections", "message": message}}
    assert _status_and_body(answer) == (429, body)
    assert TooManyRequests(message, code="too_many_connections").to_dict() == body


def test_unknown_paths_and_methods_get_the_bodies_of_the_tree(http: httpx.Client) -> None:
    """Starlette's own 404 and 405 keep their codes, messages and Allow header."""
    missing = http.get("/api/nothing")
    assert (missing.status_code, missing.json()) == (
        404, {"error": {"code": "not_found", "message": "Not Found"}}
    )  # fmt: skip
    wrong = http.delete("/api/feeds")
    assert (wrong.status_code, wrong.json()) == (
        405, {"error": {"code": "method_not_allowed", "message": "Method Not Allowed"}}
    )  # fmt: skip
    assert "GET" in wrong.headers["allow"]


def test_a_token_in_the_url_gets_400_with_the_body_of_the_tree(http: httpx.Client) -> None:
    """?token= gets 400 token_in_url with the message that says where a token goes."""
    response = http.get("/api/me?token=x")
    message = "send the editor token as 'Authorization: Bearer <token>', not in the URL"
    assert (response.status_code, response.json()) == (
        400, {"error": {"code": "token_in_url", "message": message}}
    )  # fmt: skip


async def test_an_unexpected_failure_gets_500_internal_error_from_the_tree() -> None:
    """An exception no handler knows answers 500 internal_error (nosniff), naming nothing."""
    request = Request({"type": "http", "method": "GET", "path": "/x", "headers": []})
    response = await app._unexpected_error(request, RuntimeError("secret detail"))
    body = {"error": {"code": "internal_error", "message": "internal error"}}
    assert (response.status_code, orjson.loads(response.body)) == (500, body)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert (LivefeedError.status, LivefeedError("internal error").to_dict()) == (500, body)
