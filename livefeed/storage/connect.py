"""Redis clients from a URL: a standalone Redis, a primary found through Sentinel, or a Cluster.

``redis://`` / ``rediss://`` / ``unix://`` are redis-py's own URLs. ``redis+sentinel://`` names
the Sentinels and the monitored primary::

    redis+sentinel://[user:password@]host1:26379,host2:26379,host3:26379/<master-name>[/<db>]

(``rediss+sentinel://`` for TLS to the primary; ``?sentinel_password=...`` when the Sentinels
ask for a password of their own). Every connection asks the Sentinels where the primary is when
it connects, so after a failover the next command on a dropped connection reaches the new
primary without a restart; a connection to a primary that was demoted answers its next command
with a connection error (redis-py turns ``READONLY`` into one), which the web edge maps to 503.

``redis+cluster://`` names some of a Redis Cluster's nodes (the client learns the rest)::

    redis+cluster://[user:password@]host1:7000,host2:7001/

(``rediss+cluster://`` for TLS). The client is redis-py's ``RedisCluster``, typed as ``Redis``
like the others (the commands livefeed sends exist on both); what must stay on one node's
connection goes through ``storage.cluster``.

Pools block callers (up to the timeout) rather than fail when all their connections are busy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.exceptions import RedisError

from livefeed.errors import LivefeedException

SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
_PLAIN_SCHEMES = ("redis", "rediss", "unix")


class BadRedisUrl(LivefeedException, ValueError):
    """A Redis URL livefeed cannot use; the message says what is wrong and what is expected."""


@dataclass(frozen=True, slots=True)
class SentinelTarget:
    """Where a Sentinel-managed primary is found: the Sentinels, its name, the database."""

    sentinels: tuple[tuple[str, int], ...]
    master: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None
    ssl: bool = False


def parse_sentinel(url: str) -> SentinelTarget:
    """Parse a ``redis+sentinel://`` URL; BadRedisUrl names the part at fault."""
    parts = urlsplit(url)
    if parts.scheme not in SENTINEL_SCHEMES:
        raise BadRedisUrl(f"not a Sentinel URL: {hide_password(url)}")
    netloc = parts.netloc
    userinfo, _, hosts = netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    sentinels = []
    for host in hosts.split(","):
        name, _, port = host.strip().rpartition(":")
        if not name or not port.isdigit() or not 0 < int(port) < 65536:
            raise BadRedisUrl(
                f"Sentinel address {host!r} is not host:port in {hide_password(url)}; expected "
                "redis+sentinel://host1:26379,host2:26379/<master-name>/<db>"
            )
        sentinels.append((name.strip("[]"), int(port)))
    path = [p for p in parts.path.split("/") if p]
    if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise BadRedisUrl(
            f"{hide_password(url)} must name the primary as Sentinel knows it, and optionally a "
            "database: redis+sentinel://host1:26379,host2:26379/<master-name>/<db>"
        )
    query = parse_qs(parts.query)
    return SentinelTarget(
        sentinels=tuple(sentinels),
        master=unquote(path[0]),
        db=int(path[1]) if len(path) == 2 else 0,
        username=unquote(username) or None,
        password=unquote(password) or None,
        sentinel_password=query.get("sentinel_password", [None])[0],
        ssl=parts.scheme == "rediss+sentinel",
    )


@dataclass(frozen=True, slots=True)
class ClusterTarget:
    """Where a Redis Cluster is found: some of its nodes (it tells the client the others)."""

    nodes: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = None
    ssl: bool = False


def _hosts(hosts: str, url: str, example: str) -> list[tuple[str, int]]:
    found = []
    for host in hosts.split(","):
        name, _, port = host.strip().rpartition(":")
        if not name or not port.isdigit() or not 0 < int(port) < 65536:
            raise BadRedisUrl(
                f"address {host!r} is not host:port in {hide_password(url)}; expected {example}"
            )
        found.append((name.strip("[]"), int(port)))
    return found


def parse_cluster(url: str) -> ClusterTarget:
    """Parse a ``redis+cluster://`` URL; BadRedisUrl names the part at fault."""
    parts = urlsplit(url)
    example = "redis+cluster://host1:7000,host2:7001/"
    if parts.scheme not in CLUSTER_SCHEMES:
        raise BadRedisUrl(f"not a Redis Cluster URL: {hide_password(url)}")
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    if parts.path.strip("/") or parts.query:
        raise BadRedisUrl(
            f"{hide_password(url)}: a cluster has one database and takes no options; "
            f"expected {example}"
        )
    return ClusterTarget(
        nodes=tuple(_hosts(hosts, url, example)),
        username=unquote(username) or None,
        password=unquote(password) or None,
        ssl=parts.scheme == "rediss+cluster",
    )


def is_cluster_url(url: str) -> bool:
    return urlsplit(url).scheme in CLUSTER_SCHEMES


def check_url(url: str) -> None:
    """Raise BadRedisUrl unless ``url`` is one livefeed can connect with."""
    scheme = urlsplit(url).scheme
    if scheme in SENTINEL_SCHEMES:
        parse_sentinel(url)
    elif scheme in CLUSTER_SCHEMES:
        parse_cluster(url)
    elif scheme not in _PLAIN_SCHEMES:
        raise BadRedisUrl(
            f"unsupported Redis URL scheme {scheme!r} in {hide_password(url)}: use redis://, "
            "rediss://, unix://, redis+sentinel://host1:26379,host2:26379/<master-name>/<db> "
            "or redis+cluster://host1:7000,host2:7001/"
        )


class _SentinelBlockingPool(SentinelConnectionPool, BlockingConnectionPool):
    """A Sentinel pool that makes callers wait for a free connection, like the standalone one."""


class _SentinelRedis(Redis):
    """A client of the primary that also closes its connections to the Sentinels."""

    sentinel_manager: Sentinel | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        if self.sentinel_manager is not None:
            for client in self.sentinel_manager.sentinels:
                await client.aclose()


def connect(
    url: str,
    *,
    timeout: float,
    pool_size: int = 64,
    connect_timeout: float | None = None,
    decode_responses: bool = False,
) -> Redis:
    """A client for the Redis ``url`` names, its pool capped at ``pool_size`` connections.

    ``timeout`` bounds each reply and the wait for a free connection.
    """
    check_url(url)
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": connect_timeout or min(timeout, 3.0),
        "health_check_interval": 30,
        "decode_responses": decode_responses,
    }
    if is_cluster_url(url):
        return _cluster(parse_cluster(url), pool_size, options)
    if urlsplit(url).scheme not in SENTINEL_SCHEMES:
        pool = BlockingConnectionPool.from_url(
            url, max_connections=pool_size, timeout=timeout, **options
        )
        return Redis.from_pool(pool)
    target = parse_sentinel(url)
    sentinel_options: dict[str, Any] = {
        "socket_timeout": min(timeout, 3.0),
        "socket_connect_timeout": options["socket_connect_timeout"],
    }
    if target.sentinel_password:
        sentinel_options["password"] = target.sentinel_password
    sentinel = Sentinel(list(target.sentinels), sentinel_kwargs=sentinel_options)  # type: ignore[no-untyped-call]
    pool = _SentinelBlockingPool(  # type: ignore[no-untyped-call]
        target.master,
        sentinel,
        max_connections=pool_size,
        timeout=timeout,
        db=target.db,
        username=target.username,
        password=target.password,
        ssl=target.ssl,
        check_connection=True,
        **options,
    )
    client = cast(_SentinelRedis, _SentinelRedis.from_pool(pool))
    client.sentinel_manager = sentinel
    return client


def _cluster(target: ClusterTarget, pool_size: int, options: dict[str, Any]) -> Redis:
    """A cluster client; each node's connections are capped at ``pool_size`` (one more is
    MaxConnectionsError, a connection error: 503)."""
    client = RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
        max_connections=pool_size,
        username=target.username,
        password=target.password,
        ssl=target.ssl,
        **options,
    )
    return cast(Redis, client)


async def replicas_to_wait_for(redis: Redis, url: str, configured: int) -> int:
    """How many replicas a write must reach: ``configured`` if it is 0 or more; else 0 for a
    standalone Redis; behind Sentinel 1 when the primary has a replica now (also when it
    cannot be asked: a failover set-up is there to have one); on a cluster 1 when every
    primary has a replica at start (0 if one has none: writes to its slots would all fail)."""
    if configured >= 0:
        return configured
    if is_cluster_url(url):
        return await _cluster_replicas(redis)
    if urlsplit(url).scheme not in SENTINEL_SCHEMES:
        return 0
    try:
        info = await redis.info("replication")
    except (RedisError, OSError):
        return 1
    return 1 if int(info.get("connected_slaves", 0)) > 0 else 0


async def _cluster_replicas(redis: Redis) -> int:
    cluster = cast(RedisCluster, redis)
    try:
        await cluster.initialize()
        infos = await cluster.info("replication", target_nodes=RedisCluster.PRIMARIES)
    except (RedisError, OSError):
        return 1
    counts = [int(info.get("connected_slaves", 0)) for info in infos.values()]
    return 1 if counts and min(counts) > 0 else 0


def hide_password(url: str) -> str:
    """``url`` with its password, if any, shown as ``***``: for logs and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()
