"""Fixtures for every test: a redis-server on a free loopback port, livefeed under uvicorn.

The session shares one Redis and one livefeed server; each test makes its own feeds (unique
slugs), so tests stay independent. Tests that kill or restart a server start their own. The
classes and helpers behind these fixtures are in helpers.py, which test modules import.
"""

from __future__ import annotations

import gc
import os
import sys
import tempfile
import uuid
import warnings
from collections.abc import Generator, Iterator

import httpx
import pytest
import redis
from hypothesis import HealthCheck, settings
from playwright.sync_api import Browser, Page, expect

from helpers import (
    PUSH_ENV,
    TRANSPORTS,
    ClusterSet,
    LivefeedServer,
    PushService,
    RedisProcess,
    launch_chromium,
    make_feed,
)

# Property tests (test_properties.py, test_openapi.py) talk to real servers: a bounded number of
# examples and no per-example deadline, since a round trip through uvicorn and Redis varies.
settings.register_profile(
    "livefeed",
    max_examples=60,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "livefeed"))

# Page assertions wait for a condition; on a loaded machine Playwright's 5 s default is short.
expect.set_options(timeout=20_000)

# Commands without --data-dir use the user's data directory; tests never touch the real one.
os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="livefeed-tests-xdg-")

_previous_failed = False


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    global _previous_failed
    report = yield
    if report.failed:
        _previous_failed = True
    return report


@pytest.fixture(autouse=True)
def _leaks_stay_with_the_failed_test() -> None:
    """After a failed test, collect what it left unclosed before the next one starts: its
    sockets' ResourceWarnings (errors here) would otherwise fail whichever test came next."""
    global _previous_failed
    if _previous_failed:
        _previous_failed = False
        # pytest keeps the failure for post-mortem debugging, and with it the test's frames.
        for name in ("last_type", "last_value", "last_traceback", "last_exc"):
            if hasattr(sys, name):
                delattr(sys, name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterSet]:
    """Three primaries and three replicas as one Redis Cluster, for the whole session."""
    cluster = ClusterSet(tmp_path_factory.mktemp("cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def cluster_server(
    redis_cluster: ClusterSet, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LivefeedServer]:
    """A livefeed node on ``redis_cluster`` (writes wait for one replica, its default there)."""
    srv = LivefeedServer(redis_cluster.url, "tc-" + uuid.uuid4().hex[:8])
    srv.start(log_dir=tmp_path_factory.mktemp("cluster-logs"))
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def server(
    redis_server: RedisProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LivefeedServer]:
    srv = LivefeedServer(redis_server.url, "t-" + uuid.uuid4().hex[:8])
    srv.start(log_dir=tmp_path_factory.mktemp("logs"))
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def asgi_server(
    redis_server: RedisProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LivefeedServer]:
    """Like ``server``, on uvicorn's stock WebSocket protocol: readers served through ASGI."""
    srv = LivefeedServer(redis_server.url, "ta-" + uuid.uuid4().hex[:8], **TRANSPORTS["asgi"])
    srv.start(log_dir=tmp_path_factory.mktemp("asgi-logs"))
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def redis_kind(request: pytest.FixtureRequest) -> str:
    """The Redis the test's node is on: "redis", or "cluster" where ``helpers.ON_BOTH`` says so.
    Autouse, so that any test can be parametrized on it."""
    kind: str = getattr(request, "param", "redis")
    return kind


@pytest.fixture(params=sorted(TRANSPORTS))
def transport(request: pytest.FixtureRequest) -> str:
    """Each way of writing to readers in turn (``helpers.TRANSPORTS``), for tests that must
    hold on both (tests/test_stream.py runs every test on each)."""
    name: str = request.param
    return name


@pytest.fixture
def http(server: LivefeedServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, timeout=10) as client:
        yield client


@pytest.fixture
def feed(http: httpx.Client) -> str:
    return make_feed(http)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium for a module of browser tests (none of them async)."""
    yield from launch_chromium()


def _watched_page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 800, "height": 700})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page; the test fails if the page raised a JavaScript error."""
    yield from _watched_page(browser)


@pytest.fixture
def lone_page() -> Iterator[Page]:
    """Like ``page`` with a Chromium of its own, gone after the test: for modules that also
    hold async tests, which cannot run while Playwright's sync API keeps its loop."""
    for browser in launch_chromium():
        yield from _watched_page(browser)


@pytest.fixture
def rdb(redis_server: RedisProcess) -> Iterator[redis.Redis]:
    """A plain client on the session's Redis, closed after the test."""
    client = redis.Redis(port=redis_server.port)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="module")
def push_service() -> Iterator[PushService]:
    """The loopback push service a module's subscriptions point at."""
    service = PushService()
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="module")
def push_server(redis_server: RedisProcess) -> Iterator[LivefeedServer]:
    """A server of the module's own with web push on (``PUSH_ENV``)."""
    server = LivefeedServer(redis_server.url, "push-" + os.urandom(4).hex(), **PUSH_ENV)
    server.start()
    try:
        yield server
    finally:
        server.stop()
