"""The Nchan peer: nginx with Debian's ``libnginx-mod-nchan``, a Redis store, one worker process.

Everything nginx needs is generated in a temp dir (config, pid, logs, temp paths); no system
config is read or touched: ``nginx -p DIR -c DIR/nginx.conf -e DIR/error.log``. The bench posts
each brief's frame text to ``/pub`` (Nchan's HTTP publisher) and readers subscribe with a
WebSocket on ``/``; Nchan sends the published body as-is, so readers get the same text frame as
the reference's and Node's. The backlog is ``nchan_subscriber_first_message oldest`` with
``nchan_message_buffer_length 20``: the same 20 briefs, and safe on an empty channel (Nchan
1.3.6's worker crashes when the first message is negative and the channel is empty).
``nchan_deflate_message_for_websocket`` keeps one deflated copy per message for readers that
negotiate permessage-deflate (compressed once, like livefeed's prepared frames).

Installed by ``bench/peers/install nchan``; ``available()`` says why it cannot run otherwise.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

MODULE = Path("/usr/lib/nginx/modules/ngx_nchan_module.so")
PING_SECONDS = 20
"""Keepalive pings to each reader, as livefeed's default ``LIVEFEED_WS_PING_INTERVAL`` sends
(Nchan's default is none): every server in the comparison does the same keepalive work."""
CHANNEL = "bench"
PUBLISH_PATH = "/pub"
SUBSCRIBE_PATH = "/"


def available() -> str | None:
    """None when nginx and the Nchan module are installed, else why not (to print)."""
    if shutil.which("nginx") is None:
        return "nginx is not installed (bench/peers/install nchan)"
    if not MODULE.exists():
        return f"{MODULE} is missing (bench/peers/install nchan)"
    return None


def config(
    prefix: Path,
    host: str,
    port: int,
    redis_url: str,
    backlog: int = 20,
    connections: int = 32_768,
    deflate: bool = True,
    nofile: int = 65_536,
) -> str:
    """nginx.conf for one worker process serving the channel from Redis; all paths in ``prefix``."""
    temp = {name: prefix / name for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
    temp_lines = "\n".join(f"    {name}_temp_path {path};" for name, path in temp.items())
    shared = (
        "            nchan_redis_pass bench_redis;\n"
        f"            nchan_channel_id {CHANNEL};\n"
        f"            nchan_message_buffer_length {backlog};\n"
        "            nchan_message_timeout 1h;\n"
    )
    return f"""load_module {MODULE};
worker_processes 1;
daemon off;
master_process on;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} warn;
worker_rlimit_nofile {nofile};
events {{
    worker_connections {connections};
    multi_accept on;
}}
http {{
    access_log off;
{temp_lines}
    upstream bench_redis {{
        nchan_redis_server "{redis_url}";
    }}
    server {{
        listen {host}:{port} backlog=2048;
        location = {PUBLISH_PATH} {{
            nchan_publisher http;
{shared}            nchan_deflate_message_for_websocket {"on" if deflate else "off"};
        }}
        location = {SUBSCRIBE_PATH} {{
            nchan_subscriber websocket;
            nchan_websocket_ping_interval {PING_SECONDS};
{shared}            nchan_subscriber_first_message oldest;
        }}
    }}
}}
"""


def command(prefix: Path) -> list[str]:
    """nginx in the foreground with ``prefix`` as its prefix, config and error log."""
    return ["nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e",
            str(prefix / "error.log")]  # fmt: skip


def write(
    prefix: Path, host: str, port: int, redis_url: str, backlog: int = 20, nofile: int = 65_536
) -> list[str]:
    """Write the config (and its temp dirs) under ``prefix``; the command that starts nginx.

    ``nofile`` is the open-file limit nginx may set (the hard limit): connections stay below it.
    """
    prefix.mkdir(parents=True, exist_ok=True)
    for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / name).mkdir(exist_ok=True)
    connections = max(1024, min(32_768, nofile - 64))
    text = config(prefix, host, port, redis_url, backlog, connections, nofile=nofile)
    (prefix / "nginx.conf").write_text(text)
    return command(prefix)


def module_version() -> str | None:
    """The installed Debian package's upstream version (``1.3.6``), or None."""
    try:
        done = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", "libnginx-mod-nchan"],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
    except OSError:
        return None
    version = done.stdout.strip()
    return version.split(":")[-1].split("+")[0] or None if done.returncode == 0 else None
