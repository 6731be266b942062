"""deploy/: the nginx config of the Sentinel compose topology, run for real in front of two nodes.

There is no Docker daemon in CI, so what can run does: Debian's nginx (``.ci/run`` installs it)
with ``deploy/nginx.conf.template`` filled in as the nginx image would (free loopback ports for
the nodes and for nginx), in front of two livefeed nodes on one Redis. The compose file itself is
parsed only where a YAML parser is installed.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from helpers import (
    ROOT,
    Follower,
    LivefeedServer,
    RedisProcess,
    auth,
    make_feed,
    wait_for,
    wait_until,
)
from livefeed.config import Settings
from livefeed.storage.redis_server import free_port

DEPLOY = ROOT / "deploy"
TEMPLATE = DEPLOY / "nginx.conf.template"


def nginx_binary() -> str:
    binary = shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None
    )
    if binary:
        return binary
    if os.environ.get("CI"):
        pytest.fail("nginx is missing; .ci/run installs Debian's nginx")
    pytest.skip("nginx is not installed (apt-get install nginx)")


def render(template: str, values: dict[str, str]) -> str:
    """The template with ``${NAME}`` filled in for each of ``values``, as the nginx image's
    envsubst does (nginx's own ``$variables`` are left alone)."""
    for name, value in values.items():
        template = template.replace("${" + name + "}", value)
    leftover = re.findall(r"\$\{\w+\}", template)
    assert not leftover, f"placeholders left unfilled: {leftover}"
    return template


class Nginx:
    """Debian's nginx in the foreground with the deploy template, on a free loopback port."""

    def __init__(self, base: Path, nodes: list[LivefeedServer]) -> None:
        self.base = base
        self.port = free_port()
        self.nodes = nodes
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        site = render(
            TEMPLATE.read_text(),
            {
                "LIVEFEED_NODE_A": f"127.0.0.1:{self.nodes[0].port}",
                "LIVEFEED_NODE_B": f"127.0.0.1:{self.nodes[1].port}",
                "NGINX_PORT": f"127.0.0.1:{self.port}",
            },
        )
        (self.base / "livefeed.conf").write_text(site)
        temp = "".join(
            f"    {kind}_temp_path {self.base / kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        user = "user root;\n" if os.geteuid() == 0 else ""  # its workers reach the temp dirs
        (self.base / "nginx.conf").write_text(
            f"{user}worker_processes 1;\npid {self.base / 'nginx.pid'};\n"
            f"error_log {self.base / 'error.log'} warn;\n"
            "events { worker_connections 256; }\n"
            f"http {{\n    access_log {self.base / 'access.log'};\n{temp}"
            f"    include {self.base / 'livefeed.conf'};\n}}\n"
        )
        self.proc = subprocess.Popen(
            [
                nginx_binary(), "-p", str(self.base), "-c", str(self.base / "nginx.conf"),
                "-e", str(self.base / "error.log"), "-g", "daemon off;",
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(self._ready, 20, f"nginx did not start: {self.error_log()}")

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"nginx exited: {self.error_log()}")
        try:
            return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def error_log(self) -> str:
        path = self.base / "error.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)
        self.proc = None


@pytest.fixture
def behind_nginx(
    redis_server: RedisProcess, tmp_path: Path
) -> Iterator[tuple[Nginx, list[LivefeedServer]]]:
    nodes = [LivefeedServer(redis_server.url, "lf-nginx") for _ in range(2)]
    try:
        for node in nodes:
            node.start(log_dir=tmp_path)
        proxy = Nginx(tmp_path / "nginx", nodes)
        proxy.start()
        try:
            yield proxy, nodes
        finally:
            proxy.stop()
    finally:
        for node in nodes:
            node.stop()


def publish_through(base: str, slug: str, headlines: list[str]) -> list[str]:
    ids = []
    with httpx.Client(base_url=base, timeout=30) as client:
        for headline in headlines:
            made = client.post(
                f"/api/feeds/{slug}/briefs", json={"headline": headline}, headers=auth()
            )
            assert made.status_code == 201, made.text
            ids.append(made.json()["id"])
    return ids


def readers_on(node: LivefeedServer) -> int:
    return int(httpx.get(node.base + "/healthz", timeout=5).json()["readers"])


async def test_a_reader_through_nginx_resumes_on_the_other_node_when_its_node_is_killed(
    behind_nginx: tuple[Nginx, list[LivefeedServer]],
) -> None:
    """Through deploy's nginx config: publishes spread over both nodes with no stickiness, a
    reader's WebSocket gets them, and when its node is SIGKILLed it resumes through nginx on
    the other node; publishing through nginx goes on with 201s; nothing is lost or doubled."""
    proxy, nodes = behind_nginx
    with httpx.Client(base_url=proxy.url, timeout=10) as client:
        slug = make_feed(client)
    first = publish_through(proxy.url, slug, ["n0"])
    reader = Follower(f"ws://127.0.0.1:{proxy.port}", slug, first[0], lambda: None)
    try:
        await wait_for(lambda: reader.live.is_set(), 30, "the reader did not join via nginx")
        before = publish_through(proxy.url, slug, [f"a{n}" for n in range(8)])
        await wait_for(lambda: reader.ids == before, 30, "the reader missed briefs")
        served = [node.log().count(f"POST /api/feeds/{slug}/briefs") for node in nodes]
        assert all(served), f"publishes per node: {served}: nginx sent them all to one"
        holding = [node for node in nodes if readers_on(node) == 1]
        assert len(holding) == 1, "the reader is not on exactly one node"
        holding[0].kill()
        after = publish_through(proxy.url, slug, [f"b{n}" for n in range(8)])
        await wait_for(lambda: reader.ids == before + after, 30, "the reader did not resume")
        assert reader.connects >= 2
    finally:
        await reader.stop()
    assert "[emerg]" not in proxy.error_log()


def test_nginx_waits_longer_than_the_heartbeat_on_websockets() -> None:
    """The WebSocket location's read timeout is longer than livefeed's heartbeat interval, so
    a quiet feed's readers are not cut by nginx."""
    template = TEMPLATE.read_text()
    ws = template[template.index("location /ws/") :]
    seconds = int(re.search(r"proxy_read_timeout (\d+)s;", ws).group(1))  # type: ignore[union-attr]
    assert seconds > Settings().heartbeat_interval


def test_the_compose_topology_runs_two_nodes_behind_nginx_on_sentinel() -> None:
    """deploy/docker-compose.sentinel.yml (parsed where PyYAML is installed): a primary, a
    replica, three Sentinels, two livefeed nodes on the Sentinel URL and nginx with the
    template the test above runs."""
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((DEPLOY / "docker-compose.sentinel.yml").read_text())
    services = compose["services"]
    assert {
        "redis-primary", "redis-replica", "sentinel-1", "sentinel-2", "sentinel-3",
        "livefeed-a", "livefeed-b", "nginx",
    } <= set(services)  # fmt: skip
    assert "--replicaof" in services["redis-replica"]["command"]
    for name in ("livefeed-a", "livefeed-b"):
        url = services[name]["environment"]["LIVEFEED_REDIS_URL"]
        assert url.startswith("redis+sentinel://sentinel-1:26379,sentinel-2:26379,sentinel-3")
    nginx = services["nginx"]
    assert "./nginx.conf.template:/etc/nginx/templates/default.conf.template:ro" in nginx["volumes"]
    for name in ("LIVEFEED_NODE_A", "LIVEFEED_NODE_B", "NGINX_PORT"):
        assert "${" + name + "}" in TEMPLATE.read_text()
        assert name in nginx["environment"]
    assert (
        "sentinel monitor livefeed redis-primary 6379 2" in (DEPLOY / "sentinel.conf").read_text()
    )
