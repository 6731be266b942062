"""Real parts for every test: a redis-server on a free loopback port, livefeed under uvicorn.

The session shares one Redis and one livefeed server; each test makes its own feeds (unique
slugs), so tests stay independent. Tests that kill or restart a server start their own.
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, settings
from playwright.sync_api import Browser, Page, expect, sync_playwright

from livefeed.embedded import find_redis_server, free_port

TOKEN = "test-editor-token-0123456789"

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

ROOT = Path(__file__).resolve().parent.parent

# Commands without --data-dir use the user's data directory; tests never touch the real one.
os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="livefeed-tests-xdg-")


class RedisProcess:
    """A redis-server child with AOF and ``appendfsync always``, like the embedded mode."""

    def __init__(self, data_dir: Path, binary: str | None = None) -> None:
        self.data_dir = data_dir
        self.binary = binary  # None: the redis-server livefeed itself would run
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                self.binary or find_redis_server(), "--bind", "127.0.0.1", "--port", str(self.port),
                "--dir", str(self.data_dir), "--appendonly", "yes", "--appendfsync", "always",
                "--save", "", "--daemonize", "no", "--logfile", str(self.data_dir / "redis.log"),
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(self._ready, 20, "redis-server did not start")

    def _ready(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_timeout=0.5).ping())
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
            return False

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)
        self.proc = None


class LivefeedServer:
    """``python -m livefeed serve`` on a free port, started and stopped by PID."""

    def __init__(self, redis_url: str, prefix: str, **env: str) -> None:
        self.redis_url = redis_url
        self.prefix = prefix
        self.port = free_port()
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_base(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self, *extra: str, log_dir: Path | None = None) -> None:
        env = {**os.environ, "LIVEFEED_EDITOR_TOKEN": TOKEN, "LIVEFEED_KEY_PREFIX": self.prefix}
        # Tests publish far faster than an editor would: rate limits are off unless a test
        # turns them on (tests/test_limits.py).
        env.update(LIVEFEED_EDITOR_RATE="0", LIVEFEED_ADDRESS_WRITE_RATE="0")
        env.update(self.env)
        args = [sys.executable, "-m", "livefeed", "serve", "--port", str(self.port)]
        if self.redis_url:
            args += ["--redis-url", self.redis_url]
        log_dir = log_dir or Path(os.environ.get("TMPDIR", "/tmp"))
        self.log_path = log_dir / f"livefeed-{self.port}-{uuid.uuid4().hex[:6]}.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [*args, *extra], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )
        wait_until(self._healthy, 30, f"livefeed did not start; see {self.log_path}")

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"livefeed exited; log:\n{self.log()}")
        try:
            return httpx.get(self.base + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


def wait_until(predicate: Any, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise TimeoutError(message)


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
def server(
    redis_server: RedisProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LivefeedServer]:
    srv = LivefeedServer(redis_server.url, "t-" + uuid.uuid4().hex[:8])
    srv.start(log_dir=tmp_path_factory.mktemp("logs"))
    yield srv
    srv.stop()


@pytest.fixture
def http(server: LivefeedServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, timeout=10) as client:
        yield client


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_feed(client: httpx.Client, timezone: str = "Europe/Kyiv") -> str:
    slug = "f-" + uuid.uuid4().hex[:12]
    response = client.post(
        "/api/feeds",
        json={"slug": slug, "title": f"Feed {slug}", "timezone": timezone},
        headers=auth(),
    )
    assert response.status_code == 201, response.text
    return slug


def publish(client: httpx.Client, slug: str, headline: str, **fields: Any) -> dict[str, Any]:
    response = client.post(
        f"/api/feeds/{slug}/briefs",
        json={"headline": headline, "body": "Body.", **fields},
        headers=auth(),
    )
    assert response.status_code == 201, response.text
    brief: dict[str, Any] = response.json()
    return brief


@pytest.fixture
def feed(http: httpx.Client) -> str:
    return make_feed(http)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


def launch_chromium() -> Iterator[Browser]:
    """Debian's headless Chromium through Playwright; skipped where it is missing, except in CI."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing; .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True
        )
        yield browser
        browser.close()


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
