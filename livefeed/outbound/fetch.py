"""Fetching from other sites, as a security boundary: the only way livefeed makes a request out.

``fetch`` takes a URL an editor typed (or a provider named) and refuses, with ValidationFailed
``embed_not_allowed`` and before any connection:

- a scheme but https (http only with ``Policy.allow_http``);
- a host that resolves to any address that is not public: loopback, private, shared
  (100.64/10), link-local (169.254/16, the cloud metadata address among them), multicast,
  reserved, unspecified, and their IPv4-mapped IPv6 forms (``Policy.allow_loopback``, for the
  test suite's own servers only, lets loopback through and nothing else).

It then connects to the address it checked (the URL's host goes in ``Host`` and TLS's SNI and
certificate check), so a name that resolves again to somewhere else (DNS rebinding) is never
reached; each redirect is checked the same way, at most ``MAX_REDIRECTS`` of them. No cookies
are kept or sent, no proxy or netrc from the environment is used, the whole fetch has
``Policy.timeout`` seconds and a body over ``Policy.max_bytes`` is refused. A failure to get an
answer is ``FetchFailed`` (the caller says which embed it was).

``post`` sends a body the same way (web push, livefeed.outbound.webpush) and follows no
redirect: a 3xx is the answer.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from email.message import Message
from urllib.parse import SplitResult, urljoin, urlsplit, urlunsplit

import httpx

from livefeed.errors import LivefeedException, ValidationFailed

MAX_REDIRECTS = 4
USER_AGENT = "livefeed-embeds/1 (+link preview)"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Policy:
    """What ``fetch`` may do; built from Settings once."""

    allow_http: bool = False
    allow_loopback: bool = False
    timeout: float = 5.0
    max_bytes: int = 2 * 1024 * 1024


@dataclass(frozen=True)
class Fetched:
    """An answer: its final URL (after redirects), status, media type and body."""

    url: str
    status: int
    media_type: str
    body: bytes
    charset: str = "utf-8"

    def text(self) -> str:
        """The body as text, in the charset the answer named (UTF-8 if none or unknown)."""
        try:
            return self.body.decode(self.charset, errors="replace")
        except LookupError:
            return self.body.decode("utf-8", errors="replace")


class FetchFailed(LivefeedException):
    """No usable answer: the site is down, too slow, too big or not speaking HTTP."""


def refused(message: str) -> ValidationFailed:
    return ValidationFailed(message, code="embed_not_allowed", field="embeds")


async def fetch(url: str, policy: Policy, accept: str = "*/*") -> Fetched:
    """GET ``url`` under ``policy``, following checked redirects; see the module docstring."""
    try:
        async with asyncio.timeout(policy.timeout):
            return await _fetch(url, policy, accept)
    except TimeoutError:
        raise FetchFailed(f"no answer from {_host(url)} within {policy.timeout:g} s") from None


async def post(url: str, policy: Policy, body: bytes, headers: dict[str, str]) -> Fetched:
    """POST ``body`` with ``headers`` to ``url`` under ``policy``; no redirect is followed."""
    try:
        async with asyncio.timeout(policy.timeout):
            return await _fetch(url, policy, "*/*", ("POST", body, headers))
    except TimeoutError:
        raise FetchFailed(f"no answer from {_host(url)} within {policy.timeout:g} s") from None


async def _fetch(
    url: str, policy: Policy, accept: str, send: tuple[str, bytes, dict[str, str]] | None = None
) -> Fetched:
    timeout = httpx.Timeout(policy.timeout)
    async with httpx.AsyncClient(
        verify=_tls(), timeout=timeout, follow_redirects=False, trust_env=False
    ) as client:
        for _ in range(MAX_REDIRECTS + 1):
            parts = _check_url(url, policy)
            host = ascii_host(parts.hostname or "")
            port = parts.port or (443 if parts.scheme == "https" else 80)
            address = await _public_address(host, port, policy)
            netloc = f"[{address}]" if address.version == 6 else str(address)
            target = urlunsplit(
                (parts.scheme, f"{netloc}:{port}", parts.path or "/", parts.query, "")
            )
            named = f"[{host}]" if ":" in host else host
            host_header = named if parts.port is None else f"{named}:{parts.port}"
            headers = {"Host": host_header, "User-Agent": USER_AGENT, "Accept": accept}
            method, content = "GET", b""
            if send is not None:
                method, content, extra = send
                headers.update(extra)
            extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
            client.cookies.clear()
            request = client.build_request(
                method, target, headers=headers, content=content or None, extensions=extensions
            )
            try:
                response = await client.send(request, stream=True)
                try:
                    redirect = response.status_code in _REDIRECTS and send is None
                    if redirect and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    body = await _read(response, policy.max_bytes, host)
                finally:
                    await response.aclose()
            except httpx.HTTPError as exc:
                raise FetchFailed(f"{host} could not be fetched: {type(exc).__name__}") from None
            kind = Message()
            kind["content-type"] = response.headers.get("content-type", "")
            charset = kind.get_content_charset() or "utf-8"
            return Fetched(url, response.status_code, kind.get_content_type(), body, charset)
    raise FetchFailed(f"more than {MAX_REDIRECTS} redirects from {_host(url)}")


async def _read(response: httpx.Response, limit: int, host: str) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise FetchFailed(f"{host} answered with more than {limit} bytes")
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > limit:
            raise FetchFailed(f"{host} answered with more than {limit} bytes")
    return bytes(body)


def _check_url(url: str, policy: Policy) -> SplitResult:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a bad port raises here
    except ValueError:
        raise refused(f"{url!r} is not a URL that can be fetched") from None
    schemes = {"https", "http"} if policy.allow_http else {"https"}
    if parts.scheme not in schemes or not parts.hostname:
        raise refused(f"only {' and '.join(sorted(schemes))} URLs are fetched: {url!r} is not")
    if parts.username is not None or parts.password is not None:
        raise refused("a URL with a user name or password is not fetched")
    return parts


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every fetch: building one (loading the CA bundle) took ~70 ms,
    most of the time of a fetch from a nearby site."""
    return httpx.create_ssl_context()


def ascii_host(host: str) -> str:
    """``host`` as DNS and the ``Host`` header take it: an internationalised name in its IDNA
    (``xn--``) form; refused if it has none."""
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        raise refused(f"{host!r} is not a host name that can be fetched") from None


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or url
    except ValueError:
        return url


async def _public_address(host: str, port: int, policy: Policy) -> _Address:
    """The first address of ``host``, once every one of them is allowed; refused otherwise."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (socket.gaierror, UnicodeError):
        raise FetchFailed(f"{host} does not resolve") from None
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not addresses:
        raise FetchFailed(f"{host} does not resolve")
    for address in addresses:
        if not allowed_address(address, policy):
            raise refused(f"{host} is not a public address ({address}): not fetched")
    return addresses[0]


def allowed_address(address: _Address, policy: Policy) -> bool:
    """Whether ``fetch`` may connect to ``address``: a public one (or loopback, if allowed)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if policy.allow_loopback and address.is_loopback:
        return True
    return address.is_global and not address.is_multicast
