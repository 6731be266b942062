"""For operators: JSON logs with request ids, `livefeed check`, and complete --help texts."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import websockets
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from helpers import ROOT, TOKEN, LivefeedServer, RedisProcess, auth, make_feed, wait_until
from livefeed.config import Settings
from livefeed.logs import JsonFormatter, RequestId, RequestIdFilter
from livefeed.ops import check
from livefeed.ops.cli import build_parser, main
from livefeed.ops.runner import redis_url
from livefeed.storage.redis_server import find_redis_server, free_port

GENERATED_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture(scope="module")
def json_server(
    redis_server: RedisProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LivefeedServer]:
    """JSON logs; the only trusted proxy is an address that is not ours."""
    srv = LivefeedServer(redis_server.url, "ops-" + uuid.uuid4().hex[:6])
    srv.start(
        "--log-format", "json", "--forwarded-allow-ips", "192.0.2.1",
        log_dir=tmp_path_factory.mktemp("ops-logs"),
    )  # fmt: skip
    yield srv
    srv.stop()


def records(server: LivefeedServer) -> list[dict[str, Any]]:
    """Every line of the server's output, each parsed as one JSON object."""
    return [json.loads(line) for line in server.log().splitlines() if line.strip()]


def access_record(server: LivefeedServer, request_id: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = []

    def logged() -> bool:
        found[:] = [
            r
            for r in records(server)
            if r["logger"] == "uvicorn.access" and r.get("request_id") == request_id
        ]
        return bool(found)

    wait_until(logged, 5, f"no access record with request id {request_id}")
    return found[0]


def test_json_logs_are_one_object_per_line_with_request_ids(json_server: LivefeedServer) -> None:
    """A sane X-Request-ID is kept and echoed; a missing or odd one is replaced by a new id."""
    with httpx.Client(base_url=json_server.base, timeout=10) as http:
        kept = http.get("/api/feeds", headers={"X-Request-ID": "edge-7f3a.1"})
        odd = http.get("/api/feeds", headers={"X-Request-ID": 'x" onload="y'})
        missing = http.get("/healthz")
    assert kept.headers["x-request-id"] == "edge-7f3a.1"
    assert GENERATED_ID.fullmatch(odd.headers["x-request-id"])
    assert GENERATED_ID.fullmatch(missing.headers["x-request-id"])
    assert odd.headers["x-request-id"] != missing.headers["x-request-id"]

    record = access_record(json_server, "edge-7f3a.1")
    assert record["level"] == "INFO"
    assert (record["method"], record["path"], record["status"]) == ("GET", "/api/feeds", 200)
    assert record["time"].endswith("+00:00")
    assert access_record(json_server, odd.headers["x-request-id"])["path"] == "/api/feeds"
    assert access_record(json_server, missing.headers["x-request-id"])["path"] == "/healthz"
    starts = [r for r in records(json_server) if r["logger"] == "uvicorn.error"]
    assert any("Application startup complete" in r["message"] for r in starts)


async def test_a_websocket_gets_a_request_id_too(json_server: LivefeedServer) -> None:
    """The handshake answer echoes the id; per-connection records stay out of an info log."""
    with httpx.Client(base_url=json_server.base, timeout=10) as http:
        slug = make_feed(http)
    url = f"{json_server.ws_base}/ws/feeds/{slug}"
    async with websockets.connect(url, additional_headers={"X-Request-ID": "ws-42"}) as ws:
        assert ws.response is not None
        assert ws.response.headers["x-request-id"] == "ws-42"
    with httpx.Client(base_url=json_server.base, timeout=10) as http:
        http.get("/healthz", headers={"X-Request-ID": "after-ws-42"})
    access_record(json_server, "after-ws-42")  # the log has caught up with the WebSocket
    assert not [r for r in records(json_server) if r.get("request_id") == "ws-42"]


async def test_with_log_level_debug_each_websocket_is_logged_with_its_request_id(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    server = LivefeedServer(redis_server.url, "dbg-" + uuid.uuid4().hex[:6])
    server.start("--log-format", "json", "--log-level", "debug", log_dir=tmp_path)
    try:
        with httpx.Client(base_url=server.base, timeout=10) as http:
            slug = make_feed(http)
        url = f"{server.ws_base}/ws/feeds/{slug}"
        async with websockets.connect(url, additional_headers={"X-Request-ID": "ws-43"}):
            pass
        wait_until(
            lambda: any(r.get("request_id") == "ws-43" for r in records(server)),
            5,
            "no record of the WebSocket with its request id",
        )
    finally:
        server.stop()


def test_forwarded_allow_ips_reaches_uvicorn(json_server: LivefeedServer) -> None:
    """X-Forwarded-For from an address that is not a trusted proxy is not believed."""
    response = httpx.get(
        json_server.base + "/healthz",
        headers={"X-Forwarded-For": "203.0.113.9", "X-Request-ID": "xff-1"},
    )
    assert response.status_code == 200
    assert access_record(json_server, "xff-1")["client"].startswith("127.0.0.1:")


def test_tokens_and_brief_texts_never_reach_the_log(json_server: LivefeedServer) -> None:
    """Neither the editor token (good or bad), the Authorization header nor a brief's text."""
    wrong = "wrong-token-" + uuid.uuid4().hex
    with httpx.Client(base_url=json_server.base, timeout=10) as http:
        slug = make_feed(http)
        published = http.post(
            f"/api/feeds/{slug}/briefs",
            json={"headline": "Headline-c0ffee", "body": "Body-text-decaf"},
            headers={**auth(), "X-Request-ID": "publish-1"},
        )
        refused = http.post(
            f"/api/feeds/{slug}/briefs", json={"headline": "Nope"}, headers=auth(wrong)
        )
    assert (published.status_code, refused.status_code) == (201, 401)
    access_record(json_server, "publish-1")
    log = json_server.log()
    for secret in (TOKEN, wrong, "Bearer", "Headline-c0ffee", "Body-text-decaf"):
        assert secret not in log
    assert "authorization" not in log.lower()


async def test_records_logged_while_handling_a_request_carry_its_id() -> None:
    """Application records inside a request get the request id, in JSON too."""
    captured: list[logging.LogRecord] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            captured.append(record)

    handler = Capture()
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("livefeed.test-operations")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    async def endpoint(request: Request) -> PlainTextResponse:
        logger.info("handling %s", request.url.path)
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/", endpoint)], middleware=[Middleware(RequestId)])
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/", headers={"X-Request-ID": "inner-1"})
        logger.info("outside any request")
    finally:
        logger.removeHandler(handler)
    assert response.headers["x-request-id"] == "inner-1"
    inside, outside = captured
    line = json.loads(JsonFormatter().format(inside))
    assert line["request_id"] == "inner-1"
    assert line["message"] == "handling /"
    assert line["logger"] == "livefeed.test-operations"
    assert "request_id" not in json.loads(JsonFormatter().format(outside))


# livefeed check


def run_check(*args: str, token: str | None = TOKEN) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEFEED_")}
    if token is not None:
        env["LIVEFEED_EDITOR_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "livefeed", "check", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@contextlib.contextmanager
def redis_configured(data_dir: Path, *options: str) -> Iterator[str]:
    """A redis-server of its own, started with ``options``, on a free port."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = subprocess.Popen(
        [find_redis_server(), "--bind", "127.0.0.1", "--port", str(port), "--dir", str(data_dir),
         "--daemonize", "no", "--logfile", str(data_dir / "redis.log"), *options],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def ready() -> bool:
        try:
            return bool(redis.Redis(port=port, socket_timeout=0.5).ping())
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
            return False

    try:
        wait_until(ready, 20, "redis-server did not start")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def test_check_passes_against_a_redis_set_up_as_livefeed_wants(
    redis_server: RedisProcess,
) -> None:
    """The test Redis (AOF, appendfsync always, noeviction) and an editor token: exit 0."""
    result = run_check("--redis-url", redis_server.url, "--key-prefix", "check-ok")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert re.search(r"^ok +redis +reachable at redis://127\.0\.0\.1:\d+/0, Redis \d", out, re.M)
    assert re.search(r"^ok +persistence +appendonly yes, appendfsync always", out, re.M)
    assert re.search(r"^ok +memory +maxmemory-policy noeviction", out, re.M)
    assert re.search(r"^ok +tokens +LIVEFEED_EDITOR_TOKEN set", out, re.M)
    assert not re.search(r"^error", out, re.M)
    assert out.rstrip().endswith("livefeed check: fine (0 warning(s))")


def test_check_fails_on_evicting_redis_without_persistence(tmp_path: Path) -> None:
    """allkeys-lru and no append-only file are errors that say what to set: exit 1."""
    options = ("--maxmemory-policy", "allkeys-lru", "--appendonly", "no", "--save", "")
    with redis_configured(tmp_path / "bad", *options) as url:
        result = run_check("--redis-url", url)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert re.search(r"^error +persistence +appendonly no: a crash of Redis loses", out, re.M)
    assert re.search(r"^error +memory +maxmemory-policy allkeys-lru: .*lost feed", out, re.M)
    assert "set maxmemory-policy noeviction" in out
    assert "set appendonly yes and appendfsync always" in out
    assert "livefeed check: 2 error(s) to fix" in out


def test_check_explains_everysec_and_copes_with_config_disabled(tmp_path: Path) -> None:
    """everysec is a warning; a server without CONFIG is read through INFO, not a crash."""
    with redis_configured(
        tmp_path / "r1", "--appendonly", "yes", "--appendfsync", "everysec"
    ) as url:
        everysec = run_check("--redis-url", url)
    assert everysec.returncode == 0, everysec.stdout + everysec.stderr
    assert re.search(
        r"^warn +persistence +.*everysec: a crash of the machine", everysec.stdout, re.M
    )

    options = (
        "--appendonly",
        "yes",
        "--maxmemory-policy",
        "volatile-lru",
        "--rename-command",
        "CONFIG",
        "",
    )
    with redis_configured(tmp_path / "r2", *options) as url:
        hidden = run_check("--redis-url", url)
    assert hidden.returncode == 0, hidden.stdout + hidden.stderr
    out = hidden.stdout
    assert re.search(r"^warn +config +CONFIG is disabled on this server", out, re.M)
    assert re.search(r"^warn +persistence +appendonly yes, appendfsync unknown", out, re.M)
    assert re.search(r"^ok +memory +maxmemory-policy volatile-lru: only keys with a TTL", out, re.M)


def test_check_needs_an_editor_token_env_or_stored(redis_server: RedisProcess) -> None:
    """No token anywhere, or only contributors', is an error; a stored editor's token is
    enough; the stored tokens are counted by role."""
    prefix = "check-tokens-" + uuid.uuid4().hex[:6]
    args = ("--redis-url", redis_server.url, "--key-prefix", prefix)
    none = run_check(*args, token=None)
    assert none.returncode == 1
    assert re.search(r"^error +tokens +no editor can publish", none.stdout, re.M)
    for name, role in (("Reporter", "contributor"), ("Olena K", "editor")):
        created = subprocess.run(
            [sys.executable, "-m", "livefeed", "token", "create", name, "--role", role, *args],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
        stored = run_check(*args, token=None)
        if role == "contributor":
            assert stored.returncode == 1
            assert re.search(r"^error +tokens +no editor can publish.*\(1 contributor\)",
                             stored.stdout, re.M), stored.stdout  # fmt: skip
    assert stored.returncode == 0, stored.stdout
    assert re.search(r"^ok +tokens +2 named editor token\(s\) stored \(1 contributor, 1 editor\)",
                     stored.stdout, re.M), stored.stdout  # fmt: skip


def test_check_wants_a_writable_data_dir_in_embedded_mode(tmp_path: Path) -> None:
    """A data directory that cannot be created is an error, before any Redis is started."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    out = io.StringIO()
    settings = Settings(data_dir=blocker / "var", editor_token=TOKEN)
    assert check.run(settings, redis_url, out) == 1
    assert re.search(
        r"^error +data-dir +.*a-file is a file, so .* cannot be made", out.getvalue(), re.M
    )
    assert not (blocker.parent / "var").exists()


def test_check_reports_an_unreachable_redis() -> None:
    """Nothing listening: one clear error, exit 1."""
    result = run_check("--redis-url", f"redis://127.0.0.1:{free_port()}/0")
    assert result.returncode == 1
    assert re.search(r"^error +redis +cannot reach Redis at", result.stdout, re.M)


@pytest.mark.parametrize(
    ("appendonly", "appendfsync", "save", "level"),
    [
        ("yes", "always", "", "ok"),
        ("yes", "everysec", "", "warn"),
        ("yes", "no", "", "warn"),
        ("no", None, "3600 1", "error"),
        ("no", None, "", "error"),
        (None, None, None, "warn"),
    ],
)
def test_persistence_levels(
    appendonly: str | None, appendfsync: str | None, save: str | None, level: str
) -> None:
    """A crash of Redis losing acknowledged briefs is an error; of the machine, a warning."""
    assert check.persistence(appendonly, appendfsync, save).level == level


@pytest.mark.parametrize(
    ("policy", "level"),
    [
        ("noeviction", "ok"),
        ("volatile-lru", "ok"),
        ("volatile-ttl", "ok"),
        ("allkeys-lru", "error"),
        ("allkeys-random", "error"),
        (None, "warn"),
    ],
)
def test_memory_policy_levels(policy: str | None, level: str) -> None:
    """Only policies that can evict keys without a TTL are errors."""
    assert check.memory_policy(policy, "0").level == level


# --help


def parsers(
    parser: argparse.ArgumentParser, path: str = "livefeed"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from parsers(child, f"{path} {name}")


def test_every_command_has_a_description_and_every_option_help() -> None:
    """`livefeed --help` and each subcommand's --help are complete."""
    seen = []
    for path, parser in parsers(build_parser()):
        seen.append(path)
        assert parser.description, f"{path} has no description"
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            assert action.help, f"{path}: {action.option_strings or action.dest} has no help"
    assert {"livefeed serve", "livefeed check", "livefeed feed create"} <= set(seen)


def test_check_help_describes_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    """The subcommand's own --help says what it checks and what the exit status means."""
    with pytest.raises(SystemExit) as exit_info:
        main(["check", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    flat = " ".join(text.split())
    assert "a memory policy that never evicts feeds" in flat
    assert "Exit status 0 when all is well, 1 when something must be fixed" in flat
    assert "--redis-url" in text and "--key-prefix" in text and "--data-dir" in text
