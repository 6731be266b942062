"""The HTTP edge against hostile and careless clients: timeouts, proxies, headers, URLs, tokens."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from helpers import (
    TOKEN,
    LivefeedServer,
    RedisProcess,
    auth,
    make_feed,
    publish,
    read_until_closed,
    wait_until,
)

PUBLIC = "https://live.example.org"


@pytest.fixture(scope="module")
def edge_server(
    redis_server: RedisProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LivefeedServer]:
    """Short head and body timers, a long keep-alive, a connection cap, a public URL; the
    test client (loopback) is not a trusted proxy here."""
    server = LivefeedServer(
        redis_server.url,
        "edge-" + uuid.uuid4().hex[:6],
        LIVEFEED_HEADER_TIMEOUT="2",
        LIVEFEED_BODY_TIMEOUT="2",
        LIVEFEED_KEEPALIVE_TIMEOUT="10",
        LIVEFEED_HTTP_CONNECTIONS_PER_ADDRESS="25",
        LIVEFEED_PUBLIC_URL=PUBLIC + "/",
        LIVEFEED_FORWARDED_ALLOW_IPS="192.0.2.1",
    )
    server.start(log_dir=tmp_path_factory.mktemp("edge"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def proxy_server(
    redis_server: RedisProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LivefeedServer]:
    """Every peer trusted as a proxy (``*``), with the per-address write limit on."""
    server = LivefeedServer(
        redis_server.url,
        "proxy-" + uuid.uuid4().hex[:6],
        LIVEFEED_FORWARDED_ALLOW_IPS="*",
        LIVEFEED_ADDRESS_WRITE_RATE="1",
        LIVEFEED_ADDRESS_WRITE_BURST="10",
    )
    server.start(log_dir=tmp_path_factory.mktemp("proxy"))
    yield server
    server.stop()


def read_response(sock: socket.socket) -> bytes:
    """One whole response (head and Content-Length body) from a keep-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    declared = re.search(rb"(?i)content-length: *(\d+)", head)
    length = int(declared.group(1)) if declared else 0
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def metric(server: LivefeedServer, pattern: str) -> float:
    """The sum of the /metrics samples whose line matches ``pattern``."""
    text = httpx.get(server.base + "/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if not line.startswith("#") and re.search(pattern, line)
    )


# Slow and idle connections


async def _slow_head(port: int, stop: asyncio.Event) -> bytes | None:
    """A slowloris client: a request head a header line at a time, until the server hangs up."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: slow\r\n")
        for n in range(60):  # at most 60 lines, one every half second
            await writer.drain()
            try:
                data = await asyncio.wait_for(reader.read(65536), 0.5)
            except TimeoutError:
                if stop.is_set():
                    return None
                writer.write(f"X-Slow-{n}: still coming\r\n".encode())
                continue
            except ConnectionResetError:
                return b""
            return data + await reader.read() if data else b""
        return None
    finally:
        writer.close()
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            await writer.wait_closed()


async def test_a_slowloris_is_cut_off_after_the_header_timeout_while_others_are_served(
    edge_server: LivefeedServer,
) -> None:
    """20 clients trickling a request head get 408 and are closed; a normal request succeeds."""
    stop = asyncio.Event()
    slow = [asyncio.create_task(_slow_head(edge_server.port, stop)) for _ in range(20)]
    try:
        await asyncio.sleep(0.5)
        async with httpx.AsyncClient(base_url=edge_server.base, timeout=10) as client:
            assert (await client.get("/healthz")).status_code == 200
        answers = await asyncio.wait_for(asyncio.gather(*slow), 40)
    finally:
        stop.set()
        await asyncio.gather(*slow, return_exceptions=True)
    assert all(answer is not None for answer in answers), "some were never cut off"
    assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers if a), answers
    assert metric(edge_server, r'closed_by_edge_total\{reason="head_timeout"\}') >= 20


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(
    edge_server: LivefeedServer,
) -> None:
    """An opened connection that never sends a request does not stay open."""
    with socket.create_connection(("127.0.0.1", edge_server.port), timeout=5) as sock:
        assert read_until_closed(sock, 20) == b""


def test_a_slow_body_is_cut_off_with_408_and_stores_nothing(edge_server: LivefeedServer) -> None:
    """A body trickled in slower than the body timeout allows gets 408; nothing is published."""
    with httpx.Client(base_url=edge_server.base, timeout=10) as client:
        slug = make_feed(client)
    head = (
        f"POST /api/feeds/{slug}/briefs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    )
    answer = None
    with socket.create_connection(("127.0.0.1", edge_server.port), timeout=5) as sock:
        sock.sendall(head.encode() + b'{"headline": "')
        for _ in range(80):  # a byte every quarter second: 20 s at most
            answer = read_until_closed(sock, 0.25)
            if answer is not None:
                answer += read_until_closed(sock, 5) or b""  # the rest, up to the close
                break
            try:
                sock.sendall(b"a")
            except (BrokenPipeError, ConnectionResetError):
                answer = read_until_closed(sock, 5)
                break
    assert answer is not None and answer.startswith(b"HTTP/1.1 408 "), answer
    assert b'"request_timeout"' in answer
    with httpx.Client(base_url=edge_server.base, timeout=10) as client:
        assert client.get(f"/api/feeds/{slug}/briefs").json()["briefs"] == []


def test_an_idle_keep_alive_connection_stays_for_the_configured_time_then_closes(
    edge_server: LivefeedServer,
) -> None:
    """After a response the connection may idle LIVEFEED_KEEPALIVE_TIMEOUT (10 s), then closes."""
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", edge_server.port), timeout=5) as sock:
        sock.sendall(request)
        assert read_response(sock).startswith(b"HTTP/1.1 200 ")
        time.sleep(6)  # longer than uvicorn's default of 5 s, well under the 10 configured
        sock.sendall(request)
        assert read_response(sock).startswith(b"HTTP/1.1 200 "), "closed before its time"
        assert read_until_closed(sock, 30) == b""


def test_http_connections_per_address_are_capped(edge_server: LivefeedServer) -> None:
    """With LIVEFEED_HTTP_CONNECTIONS_PER_ADDRESS=25 the 26th open connection gets 429."""
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    held: list[socket.socket] = []
    try:
        for _ in range(25):
            sock = socket.create_connection(("127.0.0.1", edge_server.port), timeout=5)
            held.append(sock)
            sock.sendall(request)
            assert read_response(sock).startswith(b"HTTP/1.1 200 ")  # then idles in keep-alive
        with socket.create_connection(("127.0.0.1", edge_server.port), timeout=5) as extra:
            answer = read_until_closed(extra, 10)
        assert answer is not None and answer.startswith(b"HTTP/1.1 429 "), answer
        held.pop().close()
        wait_until(
            lambda: httpx.get(edge_server.base + "/healthz").status_code == 200,
            10,
            "a place did not come free",
        )
    finally:
        for sock in held:
            sock.close()


def test_a_client_dropping_mid_upload_is_no_error_and_no_5xx(
    edge_server: LivefeedServer,
) -> None:
    """An upload cut short is the client's doing: counted as 499, no ERROR or traceback logged."""
    with httpx.Client(base_url=edge_server.base, timeout=10) as client:
        slug = make_feed(client)
    route = r'route="/api/feeds/\{feed\}/briefs"'
    gone_before = metric(edge_server, route + r',status="499"')
    head = (
        f"POST /api/feeds/{slug}/briefs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
        "Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", edge_server.port), timeout=5) as sock:
        sock.sendall(head.encode() + b'{"headline": "' + b"x" * 100)
    wait_until(
        lambda: metric(edge_server, route + r',status="499"') > gone_before,
        20,
        "the dropped upload was not counted as 499",
    )
    assert metric(edge_server, route + r',status="5\d\d"') == 0
    log = edge_server.log()
    assert "ERROR" not in log and "Traceback" not in log, log[-2000:]


# Absolute URLs


def test_public_url_is_used_for_absolute_urls_whatever_the_host_header(
    edge_server: LivefeedServer,
) -> None:
    """Canonical, Open Graph, JSON-LD, Atom and JSON Feed URLs come from LIVEFEED_PUBLIC_URL."""
    with httpx.Client(base_url=edge_server.base, timeout=10) as client:
        slug = make_feed(client)
        publish(client, slug, "Hello")
        evil = {"Host": "evil.example"}
        page = client.get(f"/feeds/{slug}", headers=evil).text
        atom = client.get(f"/feeds/{slug}/atom.xml", headers=evil).text
        feed = client.get(f"/feeds/{slug}/feed.json", headers=evil).json()
    assert f'<link rel="canonical" href="{PUBLIC}/feeds/{slug}"' in page
    assert f'content="{PUBLIC}/feeds/{slug}"' in page  # og:url
    assert f'"url":"{PUBLIC}/feeds/{slug}' in page.replace('": "', '":"')  # JSON-LD
    assert f'href="{PUBLIC}/feeds/{slug}/atom.xml"' in atom
    assert (feed["home_page_url"], feed["feed_url"]) == (
        f"{PUBLIC}/feeds/{slug}",
        f"{PUBLIC}/feeds/{slug}/feed.json",
    )
    assert feed["items"][0]["url"].startswith(f"{PUBLIC}/feeds/{slug}#")
    for text in (page, atom, str(feed)):
        assert "evil.example" not in text


# Proxies and addresses


def test_rotating_forwarded_for_cannot_escape_the_per_address_limit(
    proxy_server: LivefeedServer,
) -> None:
    """Only the right-most X-Forwarded-For entry is believed, so inventing the rest is no use."""
    real = f"203.0.113.{uuid.uuid4().int % 250 + 1}"
    with httpx.Client(base_url=proxy_server.base, timeout=10) as client:
        codes = [
            client.get(
                "/api/me", headers={**auth(), "X-Forwarded-For": f"198.51.100.{n}, {real}"}
            ).status_code
            for n in range(16)
        ]
        other = client.get("/api/me", headers={**auth(), "X-Forwarded-For": "192.0.2.200"})
    assert codes[0] == 200 and codes[-1] == 429, codes
    assert other.status_code == 200, "another address has its own budget"


def test_failed_token_checks_are_capped_across_all_addresses(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    """Wrong tokens from 40 addresses (one each) run into the global cap: 429 with Retry-After;
    a token that passed lately still works."""
    server = LivefeedServer(
        redis_server.url,
        "guess-" + uuid.uuid4().hex[:6],
        LIVEFEED_FORWARDED_ALLOW_IPS="*",
        LIVEFEED_FAILED_TOKEN_RATE="1",
        LIVEFEED_FAILED_TOKEN_BURST="10",
    )
    server.start(log_dir=tmp_path)
    try:
        with httpx.Client(base_url=server.base, timeout=10) as client:
            assert client.get("/api/me", headers=auth()).status_code == 200  # an editor at work
            answers = [
                client.get(
                    "/api/me",
                    headers={**auth(f"guess-{n}"), "X-Forwarded-For": f"10.1.{n}.7"},
                )
                for n in range(40)
            ]
            at_work = client.get("/api/me", headers=auth())
    finally:
        server.stop()
    assert at_work.status_code == 200, "a flood of guesses does not lock out an editor at work"
    codes = [a.status_code for a in answers]
    assert codes[:5] == [401] * 5 and codes[-1] == 429, codes
    assert codes.count(401) <= 20, codes
    assert int(answers[-1].headers["retry-after"]) >= 1
    assert answers[-1].json()["error"]["code"] == "rate_limited"


def test_hsts_only_when_the_request_came_over_https(
    proxy_server: LivefeedServer, edge_server: LivefeedServer
) -> None:
    """HSTS when a trusted proxy says https, not over http nor when an untrusted peer says so."""
    https = {"X-Forwarded-Proto": "https"}
    trusted = httpx.get(proxy_server.base + "/healthz", headers=https)
    assert trusted.headers["strict-transport-security"] == "max-age=31536000"
    assert "strict-transport-security" not in httpx.get(proxy_server.base + "/healthz").headers
    untrusted = httpx.get(edge_server.base + "/healthz", headers=https)
    assert "strict-transport-security" not in untrusted.headers


# Headers, static files, preconditions, tokens in URLs


def test_every_kind_of_response_says_nosniff(server: LivefeedServer, feed: str) -> None:
    """JSON, JSON errors, XML, HTML and static files all carry X-Content-Type-Options."""
    with httpx.Client(base_url=server.base, timeout=10) as client:
        for path in (
            "/api/feeds",
            "/api/feeds/no-such-feed",
            f"/feeds/{feed}/atom.xml",
            f"/feeds/{feed}/feed.json",
            f"/feeds/{feed}",
            "/static/feed.css",
            "/metrics",
        ):
            response = client.get(path)
            assert response.status_code < 500, path
            assert response.headers.get("x-content-type-options") == "nosniff", path


def test_templates_are_not_served_as_static_files(server: LivefeedServer) -> None:
    """/static/ serves the site's files, not the server's Jinja templates."""
    with httpx.Client(base_url=server.base, timeout=10) as client:
        assert client.get("/static/feed.css").status_code == 200
        for path in ("/static/templates/base.html", "/static/./templates/feed.html"):
            response = client.get(path)
            assert response.status_code == 404, path
            assert "{%" not in response.text


def test_if_match_with_a_weak_tag_is_412_and_an_unquoted_one_is_400(
    http: httpx.Client, feed: str
) -> None:
    """W/"1" never matches (RFC 9110 strong comparison); a bare 1 is malformed; nothing changes."""
    brief = publish(http, feed, "Original")
    url = f"/api/feeds/{feed}/briefs/{brief['id']}"
    weak = http.patch(url, json={"headline": "Weak"}, headers={**auth(), "If-Match": 'W/"1"'})
    assert weak.status_code == 412
    assert weak.json()["error"]["current_version"] == 1
    bare = http.patch(url, json={"headline": "Bare"}, headers={**auth(), "If-Match": "1"})
    assert (bare.status_code, bare.json()["error"]["code"]) == (400, "bad_if_match")
    assert http.delete(url, headers={**auth(), "If-Match": 'W/"1"'}).status_code == 412
    current = http.get(url).json()
    assert (current["headline"], current["version"]) == ("Original", 1)
    strong = http.patch(url, json={"headline": "Strong"}, headers={**auth(), "If-Match": '"1"'})
    assert strong.status_code == 200


def test_a_token_in_the_query_string_is_refused_and_never_logged(
    server: LivefeedServer, feed: str
) -> None:
    """?token= and ?access_token= get 400 token_in_url; the access log shows neither value."""
    secret = "lf_secret" + uuid.uuid4().hex
    with httpx.Client(base_url=server.base, timeout=10) as client:
        me = client.get(f"/api/me?token={secret}")
        post = client.post(
            f"/api/feeds/{feed}/briefs?x=1&access_token={secret}", json={"headline": "h"}
        )
    for response in (me, post):
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "token_in_url"
    wait_until(lambda: "access_token=REDACTED" in server.log(), 10, "no access log line")
    assert secret not in server.log()
    with httpx.Client(base_url=server.base, timeout=10) as client:
        assert client.get(f"/api/feeds/{feed}/briefs").json()["briefs"] == []
