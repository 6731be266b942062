"""The HTTP edge: what every connection and request passes before it reaches a route.

Per connection (``EdgeProtocol``, uvicorn's h11 protocol with timers; ``serve`` installs it):

- the request head (request line and headers) must arrive within ``header_timeout`` seconds of
  the connection opening, or of its first byte after a keep-alive pause; a partial head then
  gets 408 and the connection is closed, and a connection that sent nothing is just closed;
- a request body must arrive whole within ``body_timeout`` seconds of its head: 408 if no
  response has started yet (the route then sees the client as gone), else the connection closes;
- between requests a keep-alive connection may stay idle ``keepalive_timeout`` seconds
  (uvicorn's own ``timeout_keep_alive`` timer);
- with ``http_connections_per_address`` set, a peer address (trusted proxies excepted) may hold
  that many open HTTP connections; one more gets 429 and is closed. A connection that becomes a
  WebSocket leaves this count for the WebSocket one (``connections_per_address``).

Per request (pure ASGI middleware, outermost first): ``ProxyHeaders`` (client address and scheme
from a trusted proxy), ``SecurityHeaders`` (nosniff everywhere, HSTS over https) and
``TokenInUrl`` (a token in the query string is refused and redacted from the access log).

The protocol reads a few attributes of uvicorn's ``RequestResponseCycle`` (``response_started``,
``disconnected``, ``message_event``) and h11's ``Connection.their_state``/``trailing_data``;
tests/test_edge.py covers each timer against a real server. Counts and limits are per worker.
"""

from __future__ import annotations

import asyncio
import http
import ipaddress
import logging
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import unquote_plus

import h11
import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from livefeed.config import Settings
from livefeed.errors import (
    CLOSE_POLICY,
    BadRequest,
    LivefeedError,
    RequestTimeout,
    TooManyRequests,
)
from livefeed.metrics import closed_by_edge

_CONNECTIONS = logging.getLogger("livefeed.connections")
DEFAULT_TRUSTED = "127.0.0.1,::1"  # uvicorn's default for --forwarded-allow-ips
_SEEN_LIMIT = 4096
"""Peer addresses ``Trusted`` remembers its answer for (parsing one costs a few microseconds)."""


class Trusted:
    """The proxies trusted for ``X-Forwarded-*``: addresses and networks, or ``*`` for any peer."""

    def __init__(self, spec: str) -> None:
        items = [item.strip() for item in spec.split(",") if item.strip()]
        self.any = "*" in items
        self._networks = []
        self._names = set()
        self._seen: dict[str, bool] = {}  # answers by peer address: every request asks
        for item in items:
            try:
                self._networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                self._names.add(item)  # e.g. a unix socket path, as uvicorn allows

    def __contains__(self, host: str) -> bool:
        if self.any:
            return True
        known = self._seen.get(host)
        if known is not None:
            return known
        address = _ip(host)
        if address is None:
            known = host in self._names
        else:
            known = any(address in network for network in self._networks)
        if len(self._seen) >= _SEEN_LIMIT:
            self._seen.clear()
        self._seen[host] = known
        return known

    def client(self, forwarded_for: str) -> str | None:
        """The client's address in an ``X-Forwarded-For`` chain, or None if there is none usable.

        Each proxy appends the address it got the request from, so only entries to the right
        can be believed: the right-most one that is not a trusted proxy is the client. Entries
        to its left are the client's to invent. With ``*`` only the right-most is believed.
        """
        for entry in reversed([e.strip() for e in forwarded_for.split(",")]):
            host = _strip_port(entry)
            if _ip(host) is None:
                return None  # not what a proxy appends: the chain cannot be read past it
            if self.any or host not in self:
                return host
        return None  # every hop is a trusted proxy: keep the connecting one


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _strip_port(entry: str) -> str:
    if entry.startswith("["):  # [2001:db8::1]:443
        return entry[1:].partition("]")[0]
    if entry.count(":") == 1:  # 203.0.113.7:5123
        return entry.partition(":")[0]
    return entry


def trusted_proxies(settings: Settings, environ: MutableMapping[str, str]) -> Trusted:
    """``--forwarded-allow-ips``, else ``$FORWARDED_ALLOW_IPS``, else loopback (as uvicorn)."""
    return Trusted(
        settings.forwarded_allow_ips or environ.get("FORWARDED_ALLOW_IPS") or DEFAULT_TRUSTED
    )


class ProxyHeaders:
    """Client address and scheme from ``X-Forwarded-For``/``-Proto`` when a trusted proxy sent them.

    Replaces uvicorn's middleware, which believes the left-most address when every peer is
    trusted (``*``): a client behind the proxy could then pick its address per request.
    """

    def __init__(self, app: ASGIApp, trusted: Trusted) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        peer = scope.get("client")
        if scope["type"] in ("http", "websocket") and peer and peer[0] in self.trusted:
            forwarded: list[bytes] = []
            proto = None
            for name, value in scope["headers"]:
                if name == b"x-forwarded-for":
                    forwarded.append(value)
                elif name == b"x-forwarded-proto":
                    proto = value.decode("latin-1").split(",")[-1].strip().lower()
            if forwarded:
                host = self.trusted.client(b",".join(forwarded).decode("latin-1"))
                if host is not None:
                    scope["client"] = (host, 0)
            if proto in ("http", "https"):
                websocket = scope["type"] == "websocket"
                scope["scheme"] = proto.replace("http", "ws") if websocket else proto
        await self.app(scope, receive, send)


class SecurityHeaders:
    """``X-Content-Type-Options: nosniff`` on every response, and HSTS on those sent over https.

    The scheme is the one ``ProxyHeaders`` settled on, so HSTS goes out only when the client
    really used https (directly or through a trusted proxy); ``hsts_max_age`` 0 turns it off.
    """

    def __init__(self, app: ASGIApp, hsts_max_age: int) -> None:
        self.app = app
        self.hsts = f"max-age={hsts_max_age}".encode() if hsts_max_age > 0 else b""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = [(b"x-content-type-options", b"nosniff")]
        if self.hsts and scope.get("scheme") == "https":
            extra.append((b"strict-transport-security", self.hsts))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers += [header for header in extra if header[0] not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


URL_TOKEN_NAMES = frozenset({"token", "access_token"})


def redact_tokens(query: bytes) -> tuple[bytes, bool]:
    """The query string with the value of every token parameter replaced; and whether any was."""
    parts = query.split(b"&")
    found = False
    for n, part in enumerate(parts):
        name = unquote_plus(part.partition(b"=")[0].decode("latin-1")).strip().lower()
        if name in URL_TOKEN_NAMES:
            parts[n] = part.partition(b"=")[0] + b"=REDACTED"
            found = True
    return b"&".join(parts), found


class TokenInUrl:
    """Refuse ``?token=`` and ``?access_token=``: URLs end up in logs, histories and Referers.

    The request gets 400 ``token_in_url`` (a WebSocket is refused before it opens), and the
    value is redacted from the scope first, so the access log line never shows it either.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and scope.get("query_string"):
            redacted, found = redact_tokens(scope["query_string"])
            if found:
                scope["query_string"] = redacted
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": CLOSE_POLICY})
                    return
                error = BadRequest(
                    "send the editor token as 'Authorization: Bearer <token>', not in the URL",
                    code="token_in_url",
                )
                body = orjson.dumps(error.to_dict())
                headers = [(b"content-type", b"application/json")]
                await send(
                    {"type": "http.response.start", "status": error.status, "headers": headers}
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    """What ``EdgeProtocol`` enforces; see the module docstring."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    connections_per_address: int = 0
    trusted: Trusted | None = None

    @classmethod
    def from_settings(cls, settings: Settings, environ: MutableMapping[str, str]) -> EdgeLimits:
        return cls(
            header_timeout=settings.header_timeout,
            body_timeout=settings.body_timeout,
            connections_per_address=settings.http_connections_per_address,
            trusted=trusted_proxies(settings, environ),
        )


def configure(limits: EdgeLimits) -> None:
    """Set the limits of every ``EdgeProtocol`` connection this process makes from now on.

    uvicorn builds protocols from a class, and worker processes get that class by name, so the
    limits are class state, set by ``serve`` and by each worker's ``ops.serve.app_from_env``.
    """
    EdgeProtocol.limits = limits


_LINGER = 2.0
"""Seconds a refused connection still reads (and drops) the client's bytes before it closes."""


class EdgeProtocol(H11Protocol):
    """uvicorn's h11 protocol with a head timer, a body timer and a per-address connection cap."""

    limits: ClassVar[EdgeLimits] = EdgeLimits()
    _open: ClassVar[dict[str, int]] = {}  # open connections per counted peer address

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timer: asyncio.TimerHandle | None = None
        self._phase: str | None = None  # "head" or "body": what the timer waits for
        self._counted: str | None = None
        self._lingering = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        limit = self.limits.connections_per_address
        host = self.client[0] if self.client else None
        trusted = self.limits.trusted
        if limit and host is not None and not (trusted is not None and host in trusted):
            count = self._open.get(host, 0)
            if count >= limit:
                closed_by_edge("too_many_connections")
                message = "too many connections from this address"
                self._refuse(TooManyRequests(message, code="too_many_connections"))
                return
            self._open[host] = count + 1
            self._counted = host
        self._arm("head", self.limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        self._release()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering:  # refused: what the client still sends is dropped unread
            return
        super().data_received(data)
        if self.transport.get_protocol() is not self:  # upgraded to a WebSocket
            self._cancel()
            self._release()
            return
        self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._watch()

    def _watch(self) -> None:
        """Keep the timer on what the connection now waits for: a head, a body, or nothing."""
        state = self.conn.their_state
        if state is h11.SEND_BODY:
            if self._phase != "body":
                self._arm("body", self.limits.body_timeout)
        elif state is h11.IDLE and (self._phase == "head" or self.conn.trailing_data[0]):
            if self._phase != "head":
                self._arm("head", self.limits.header_timeout)
        else:  # waiting on the app, or idle between requests (uvicorn's keep-alive timer)
            self._cancel()

    def _arm(self, phase: str, delay: float) -> None:
        self._cancel()
        self._phase = phase
        self._timer = self.loop.call_later(delay, self._expired)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._phase = None, None

    def _release(self) -> None:
        host, self._counted = self._counted, None
        if host is None:
            return
        count = self._open.get(host, 0) - 1
        if count > 0:
            self._open[host] = count
        else:
            self._open.pop(host, None)

    def _expired(self) -> None:
        phase = self._phase
        self._timer, self._phase = None, None
        if self.transport.is_closing():
            return
        state = self.conn.their_state
        if phase == "head" and state is h11.IDLE:
            if not self.conn.trailing_data[0]:
                closed_by_edge("idle")
                _CONNECTIONS.debug("closed a connection that sent no request")
                self.transport.close()
                return
            closed_by_edge("head_timeout")
            self._refuse(RequestTimeout("the request head took too long"))
        elif phase == "body" and state is h11.SEND_BODY:
            closed_by_edge("body_timeout")
            cycle = self.cycle
            if cycle is not None and cycle.response_started:
                self.transport.close()
                return
            if cycle is not None:  # the route, if still reading, sees the client as gone
                cycle.disconnected = True
                cycle.message_event.set()
            self._refuse(RequestTimeout("the request body took too long"))

    def _refuse(self, error: LivefeedError) -> None:
        """Answer with a JSON error outside h11's bookkeeping, then close the connection."""
        body = orjson.dumps(error.to_dict())
        status = error.status
        head = (
            f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n"
            "content-type: application/json\r\n"
            f"content-length: {len(body)}\r\n"
            "x-content-type-options: nosniff\r\n"
            "connection: close\r\n\r\n"
        )
        _CONNECTIONS.debug("refused a connection with %d %s", status, error.code)
        self.transport.write(head.encode("ascii") + body)
        # A lingering close (as nginx does): closing with the client's bytes still unread would
        # send a reset, and the client's kernel may drop the answer before it is read. So stop
        # writing, read and drop what still comes for a moment, then close.
        self._cancel()
        self._lingering = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(_LINGER, self.transport.close)
