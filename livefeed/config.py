"""Settings, built once from command-line flags and ``LIVEFEED_*`` environment variables; no I/O."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


def _default_web_dir() -> Path:
    """The ``web/`` folder: inside the installed package, else beside it in a source checkout."""
    here = Path(__file__).resolve().parent
    packaged = here / "web"
    return packaged if packaged.is_dir() else here.parent / "web"


def default_data_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the embedded Redis keeps its data unless told otherwise: one place per user
    (``$XDG_DATA_HOME/livefeed``, else ``~/.local/share/livefeed``), so every command finds the
    running service's data whatever the current directory."""
    env = os.environ if env is None else env
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "livefeed"


@dataclass(frozen=True)
class Settings:
    """Everything the service needs to know, passed to ``create_app(settings)``.

    ``redis_url`` empty means "start an embedded redis-server under ``data_dir``" (the CLI does
    that before building the app; the app itself always gets a URL).
    """

    host: str = "127.0.0.1"
    port: int = 8000
    redis_url: str = ""
    data_dir: Path = field(default_factory=default_data_dir)
    key_prefix: str = "livefeed"
    editor_token: str = ""
    editor_name: str = "Newsroom"
    demo: bool = False
    demo_interval: float = 10.0
    web_dir: Path = field(default_factory=_default_web_dir)
    log_level: str = "info"
    log_format: str = "text"  # or "json": one object per line (livefeed.logs)
    # Proxies trusted for X-Forwarded-For/-Proto (livefeed.http.edge.ProxyHeaders); empty means
    # uvicorn's default: $FORWARDED_ALLOW_IPS, else 127.0.0.1,::1.
    forwarded_allow_ips: str = ""
    workers: int = 1
    # The public address (``https://live.example.org``) for canonical, Atom and JSON Feed URLs;
    # empty: the address the request came in on (its Host header).
    public_url: str = ""
    # Who publishes the feeds, for the pages' JSON-LD ``publisher`` (an Organization): its name
    # and the address of its logo (absolute, or a path on this service). Empty: none is said.
    publisher_name: str = ""
    publisher_logo: str = ""
    # Limits.
    max_body_bytes: int = 256 * 1024
    max_header_bytes: int = 16 * 1024
    page_size: int = 20
    max_page_size: int = 100
    backlog_size: int = 20
    catchup_page: int = 500
    reader_queue: int = 1024
    reader_buffer_bytes: int = 1024 * 1024
    heartbeat_interval: float = 20.0
    replay_max_gap: float = 3.0
    redis_timeout: float = 5.0
    # Abuse limits (per worker process). Rates are actions a second; 0 turns a limit off.
    editor_rate: float = 10.0
    editor_burst: int = 30
    address_write_rate: float = 20.0
    address_write_burst: int = 60
    connections_per_address: int = 0
    allowed_origins: str = ""
    frame_ancestors: str = "'self'"
    # Who may frame /embed/{feed} (CSP frame-ancestors): any site unless the operator narrows it.
    embed_ancestors: str = "*"
    reader_messages_per_minute: int = 60
    reader_max_message_bytes: int = 4096
    # Keepalive pings to every WebSocket; one unanswered this long closes it as too slow (4408).
    ws_ping_interval: float = 20.0
    ws_ping_timeout: float = 20.0
    # livefeed's own WebSocket protocol (livefeed.stream.uvicorn_ws): direct writes and parked
    # readers. Off: uvicorn's stock websockets-sansio, every reader served through ASGI.
    ws_direct: bool = True
    # permessage-deflate (RFC 7692) on WebSockets, server_no_context_takeover: each broadcast
    # frame is compressed once for every reader that negotiated it (livefeed.stream.uvicorn_ws).
    ws_compression: bool = True
    redis_pool_size: int = 64
    # A write answers 2xx only once this many replicas have it (Redis WAIT, up to
    # replica_timeout seconds; else 503 and the client retries with its Idempotency-Key).
    # -1: 0 on a standalone Redis; behind Sentinel, 1 if the primary has a replica at start.
    min_replicas: int = -1
    replica_timeout: float = 1.0
    # Wait with WAITAOF (Redis >= 7.2) instead of WAIT: a 2xx once the write is fsynced to the
    # append-only file on the primary and on min_replicas replicas; serve refuses to start
    # on a Redis without it.
    wait_aof: bool = False
    # The HTTP edge (livefeed.http.edge): seconds for a request's head, for its body, and of idle
    # keep-alive; open HTTP connections per client address (0: no cap); HSTS max-age over https.
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keepalive_timeout: int = 5
    http_connections_per_address: int = 0
    hsts_max_age: int = 31_536_000
    # Wrong editor tokens a second across all addresses (and burst), on top of the per-address
    # limit; over it every token check gets 429 until the budget refills. 0 turns it off.
    failed_token_rate: float = 20.0
    failed_token_burst: int = 60
    # Embeds (livefeed.outbound): the providers briefs may quote (youtube, x, telegram and link,
    # any other page as a related-article card; empty: none), where each is asked, and the
    # limits of every outbound fetch: http only if allowed, seconds, bytes.
    embed_providers: str = "youtube,x,telegram,link"
    embed_youtube_oembed: str = "https://www.youtube.com/oembed"
    embed_x_oembed: str = "https://publish.twitter.com/oembed"
    embed_telegram_url: str = "https://t.me"
    embed_allow_http: bool = False
    embed_timeout: float = 5.0
    embed_max_bytes: int = 2 * 1024 * 1024
    # Test-only: outbound fetches may reach loopback addresses (the test suite's own servers).
    embed_test_loopback: bool = False
    # Uploaded images and audio (livefeed.media): where their files go (empty: <data_dir>/media;
    # several nodes share one volume here), the largest upload in bytes, the most pixels an
    # image may have (decompression bombs), and the processes resizing uploads, per worker.
    media_dir: str = ""
    # Search (livefeed.newsroom.search): the directory of the per-feed index files, shared by
    # the workers of one machine (empty: <data_dir>/search).
    search_dir: str = ""
    max_media_bytes: int = 20 * 1024 * 1024
    max_media_pixels: int = 50_000_000
    media_workers: int = 2
    # Web push (livefeed.newsroom.push): the VAPID private key as PEM text, or a file holding
    # it (neither: one made once and kept in Redis for every node); the contact push services
    # see (mailto: or https:; empty: public_url if https, else mailto:webpush@localhost); how
    # long a message waits for an offline browser (s); the cap on "every update"
    # notifications per feed (a second, and burst); seconds before another process claims
    # entries a sender left unhandled; how often feeds are polled (s); each send's time limit.
    vapid_private_key: str = ""
    vapid_private_key_file: str = ""
    vapid_subject: str = ""
    # The push services endpoints may be on (host names, each with its subdomains, comma
    # separated); empty: any public host (the outbound guard still refuses private addresses).
    push_hosts: str = ""
    push_ttl: int = 3600
    push_update_rate: float = 0.2
    push_update_burst: int = 5
    push_claim_idle: float = 60.0
    push_poll_interval: float = 1.0
    push_timeout: float = 10.0
    # Test-only: push endpoints may be http on loopback (the test suite's own push service).
    push_test_loopback: bool = False

    def media_root(self) -> Path:
        """The directory of uploaded media: ``media_dir``, else ``media`` under ``data_dir``."""
        return Path(self.media_dir) if self.media_dir else self.data_dir / "media"

    def search_root(self) -> Path:
        """The directory of the search index files: ``search_dir``, else ``<data_dir>/search``."""
        return Path(self.search_dir) if self.search_dir else self.data_dir / "search"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``LIVEFEED_<NAME>`` variables, then apply non-None overrides."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"LIVEFEED_{f.name.upper()}")
            if raw is None:
                continue
            values[f.name] = _coerce(f.type, raw, f.name)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """These settings as ``LIVEFEED_*`` variables, for worker processes."""
        return {f"LIVEFEED_{f.name.upper()}": str(getattr(self, f.name)) for f in fields(self)}


def _coerce(type_name: Any, raw: str, name: str) -> Any:
    kind = str(type_name)
    try:
        if kind == "bool":
            return raw.strip().lower() in {"1", "true", "yes", "on"}
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError:
        raise SystemExit(f"LIVEFEED_{name.upper()}: expected a {kind}, got {raw!r}") from None
    if kind == "Path":
        return Path(raw)
    return raw
