"""``livefeed check``: is this configuration, and the Redis it points at, fit to run livefeed?

Each check yields a ``Finding``: ``ok``, ``warn`` (works, but weaker than livefeed promises) or
``error`` (must be fixed). The rule for persistence: an error when a crash of Redis alone would
lose briefs that already got their 201; a warning when only a crash of the whole machine would.
The command exits 1 when any finding is an error, else 0.

Servers that disable ``CONFIG`` (managed Redis services often do) are read through ``INFO``
instead, which shows whether the append-only file is on and the memory policy, not the fsync
policy; what cannot be seen is reported as a warning, never as a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisClusterException, RedisError, ResponseError

from livefeed.config import Settings
from livefeed.model.roles import Action, Role, allowed
from livefeed.storage.cluster import cluster_of
from livefeed.storage.connect import (
    SENTINEL_SCHEMES,
    connect,
    hide_password,
    is_cluster_url,
    replicas_to_wait_for,
)
from livefeed.storage.keys import Keys
from livefeed.storage.layout import legacy_feeds
from livefeed.storage.redis_server import EmbeddedRedisError, find_redis_server, owner_url
from livefeed.storage.store import Store

MIN_VERSION = (6, 2)
MIN_TOKEN_CHARS = 16

Level = Literal["ok", "warn", "error"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One line of the report: how it stands (``level``), about what, and what it means."""

    level: Level
    subject: str
    message: str

    def line(self) -> str:
        return f"{self.level:<6} {self.subject:<12} {self.message}"


def run(
    settings: Settings,
    redis_url: Callable[[Settings], contextlib.AbstractContextManager[str]],
    out: TextIO,
) -> int:
    """Run every check, print one line per finding and a verdict; return the exit status.

    ``redis_url`` yields the URL of the Redis to check: the configured one, the embedded one a
    running ``serve`` owns, or a temporary embedded one (``ops.runner.redis_url``).
    """
    findings: list[Finding] = []
    fresh = not settings.redis_url and not settings.data_dir.exists()
    if not settings.redis_url:
        findings.append(check_data_dir(settings.data_dir))
    if fresh:
        # Nothing stored yet: check what serve would need rather than create the directory.
        findings += [_embedded_binary(), tokens(settings, {})]
    elif all(f.level != "error" for f in findings):
        try:
            with redis_url(settings) as url:
                findings.extend(asyncio.run(check_redis(url, settings)))
        except EmbeddedRedisError as exc:
            findings.append(Finding("error", "redis", f"cannot start the embedded Redis: {exc}"))
        except (RedisError, OSError) as exc:
            findings.append(Finding("error", "redis", f"Redis failed during the checks: {exc}"))
    for finding in findings:
        print(finding.line(), file=out)
    errors = sum(f.level == "error" for f in findings)
    warnings = sum(f.level == "warn" for f in findings)
    if errors:
        print(f"livefeed check: {errors} error(s) to fix, {warnings} warning(s)", file=out)
        return 1
    print(f"livefeed check: fine ({warnings} warning(s))", file=out)
    return 0


def check_data_dir(data_dir: Path) -> Finding:
    """Embedded mode keeps Redis's append-only file in ``data_dir``: it must be writable."""
    path = data_dir.resolve()
    if path.exists() and not path.is_dir():
        return Finding(
            "error", "data-dir", f"{path} exists but is not a directory; pass --data-dir"
        )
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        return Finding(
            "error", "data-dir", f"{existing} is a file, so {path} cannot be made; pass --data-dir"
        )
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        return Finding(
            "error",
            "data-dir",
            f"{existing} is not writable ({exc.strerror}): the embedded Redis cannot keep its "
            "data there; fix it or pass --data-dir",
        )
    if existing != path:
        return Finding("ok", "data-dir", f"{path} will be created (embedded Redis data)")
    running = owner_url(path)
    suffix = f"; a running livefeed serves its Redis at {running}" if running else ""
    return Finding("ok", "data-dir", f"{path} is writable (embedded Redis data){suffix}")


async def check_redis(url: str, settings: Settings) -> list[Finding]:
    """Reachability, version, role, persistence, memory policy, key layout and editor tokens;
    on a cluster its state first, and the server checks on one of its primaries."""
    redis = connect(url, timeout=5.0, pool_size=4, connect_timeout=3.0, decode_responses=True)
    try:
        cluster = cluster_of(redis)
        if cluster is None:
            return await _check_redis(redis, redis, url, settings)
        findings, primary = await cluster_state(cluster)
        if primary is None:
            return findings
        server = Redis(host=primary.host, port=int(primary.port), socket_timeout=5.0,
                       decode_responses=True)  # fmt: skip
        try:
            return findings + await _check_redis(server, redis, url, settings)
        finally:
            await server.aclose()
    finally:
        await redis.aclose()


async def cluster_state(cluster: RedisCluster) -> tuple[list[Finding], ClusterNode | None]:
    """How the cluster stands (CLUSTER INFO, each primary's replicas), and a primary to check
    the server settings on (None when the cluster cannot be read)."""
    try:
        await cluster.initialize()
        state = await cluster.cluster_info(target_nodes=RedisCluster.RANDOM)
        primaries = cluster.get_primaries()
        infos = await cluster.info("replication", target_nodes=RedisCluster.PRIMARIES)
    except (RedisError, RedisClusterException, OSError) as exc:
        return [Finding("error", "cluster", f"cannot read the Redis Cluster: {exc}")], None
    counts = sorted(int(info.get("connected_slaves", 0)) for info in infos.values())
    first = primaries[0]
    if counts and counts[0] == counts[-1]:
        replicas = f"each with {counts[0]} replica" + ("" if counts[0] == 1 else "s")
    else:
        replicas = f"with {counts[0] if counts else 0} to {counts[-1] if counts else 0} replicas"
    where = f"; the server checks below are of the primary {first.host}:{first.port}"
    message = f"cluster_state {state.get('cluster_state')}, {len(primaries)} primaries, {replicas}"
    if state.get("cluster_state") != "ok":
        level: Level = "error"
        message += ": some slots are not served, so writes to their feeds fail (503)"
    elif not counts or counts[0] == 0:
        level = "warn"
        message += (
            ": a primary without a replica loses its feeds' acknowledged briefs if its disk does"
        )
    else:
        level = "ok"
    return [Finding(level, "cluster", message + where)], first


async def _check_redis(redis: Redis, data: Redis, url: str, settings: Settings) -> list[Finding]:
    """The checks of one server (``redis``), and of livefeed's data through ``data`` (the
    same client, or on a cluster the cluster client)."""
    shown = hide_password(url)
    try:
        await redis.ping()
    except (RedisError, OSError) as exc:
        return [Finding("error", "redis", f"cannot reach Redis at {shown}: {exc}")]
    findings: list[Finding] = []
    info = await _info(redis)
    version = str(info.get("redis_version", ""))
    if not version:
        findings.append(
            Finding(
                "warn",
                "redis",
                f"{shown} answers, but INFO does not say its version; livefeed needs Redis >= 6.2",
            )
        )
    elif _version(version) < MIN_VERSION:
        findings.append(
            Finding(
                "error",
                "redis",
                f"{shown} runs Redis {version}; livefeed needs >= 6.2 (stream commands it uses)",
            )
        )
    else:
        findings.append(Finding("ok", "redis", f"reachable at {shown}, Redis {version}"))
    if info.get("role") == "slave":
        primary = f"{info.get('master_host')}:{info.get('master_port')}"
        findings.append(
            Finding(
                "error",
                "redis",
                f"this is a read-only replica of {primary}: publishing would fail; point "
                "livefeed at the primary",
            )
        )

    config, hidden = await _config(redis)
    if hidden:
        findings.append(
            Finding(
                "warn",
                "config",
                f"CONFIG is disabled on this server ({hidden}); persistence and memory "
                "policy below are read from INFO, which does not show appendfsync",
            )
        )
    waits_for = await replicas_to_wait_for(data, url, settings.min_replicas)
    findings.append(
        replication(
            int(info.get("connected_slaves", 0) or 0),
            waits_for,
            config.get("min-replicas-to-write"),
            behind_sentinel=urlsplit(url).scheme in SENTINEL_SCHEMES or is_cluster_url(url),
        )
    )
    if settings.wait_aof:
        keys = Keys(settings.key_prefix)
        findings.append(await wait_aof(redis, keys, waits_for, settings.replica_timeout))
    aof = config.get("appendonly")
    if aof is None and "aof_enabled" in info:
        aof = "yes" if str(info["aof_enabled"]) == "1" else "no"
    policy = config.get("maxmemory-policy") or info.get("maxmemory_policy")
    findings.append(persistence(aof, config.get("appendfsync"), config.get("save")))
    findings.append(memory_policy(None if policy is None else str(policy), config.get("maxmemory")))
    keys = Keys(settings.key_prefix)
    findings.append(layout(await legacy_feeds(Store(data, settings.key_prefix))))
    roles = Counter(
        record.role for record in await Store(data, settings.key_prefix).tokens.records()
    )
    feeds = int(await data.zcard(keys.feeds))
    findings.append(tokens(settings, roles, feeds))
    return findings


def layout(old: list[str]) -> Finding:
    """Whether feeds are stored under the names this livefeed reads (``storage.layout``)."""
    if old:
        return Finding(
            "error",
            "layout",
            f"{len(old)} feed(s) are in the key layout before hash tags ({', '.join(old[:3])}); "
            "serve refuses to start: stop every livefeed node and run 'livefeed migrate'",
        )
    return Finding("ok", "layout", "each feed's keys in one slot (hash-tagged key layout)")


def replication(
    replicas: int, waits_for: int, min_replicas_to_write: str | None, *, behind_sentinel: bool
) -> Finding:
    """What a failover can lose: how many replicas there are and whether writes wait for them."""
    if replicas == 0 and waits_for == 0:
        if behind_sentinel:
            return Finding(
                "warn",
                "replication",
                "no replica is connected to the primary: a failover has nothing to promote",
            )
        return Finding(
            "ok",
            "replication",
            "no replicas: what survives a crash is what this Redis persists (below)",
        )
    if replicas < waits_for:
        return Finding(
            "error",
            "replication",
            f"writes wait for {waits_for} replica(s) (LIVEFEED_MIN_REPLICAS) but {replicas} "
            "are connected: every write answers 503 until enough replicas are back",
        )
    if waits_for == 0:
        return Finding(
            "warn",
            "replication",
            f"{replicas} replica(s), but writes do not wait for them (LIVEFEED_MIN_REPLICAS=0): "
            "a failover can lose briefs that already got their 201 (what the replica had not "
            "received yet); set LIVEFEED_MIN_REPLICAS=1",
        )
    fence = (
        ""
        if min_replicas_to_write not in (None, "0")
        else "; set min-replicas-to-write 1 on the primary too, so an old primary cut off "
        "from its replicas refuses other clients' writes as livefeed does"
    )
    return Finding(
        "ok",
        "replication",
        f"{replicas} replica(s); every 2xx waits until {waits_for} of them have the write "
        f"(WAIT), so a failover to a replica loses no acknowledged brief{fence}",
    )


async def wait_aof(redis: Redis, keys: Keys, replicas: int, replica_timeout: float) -> Finding:
    """Whether ``LIVEFEED_WAIT_AOF`` works here: the primary has WAITAOF (Redis >= 7.2) and
    its append-only file on, and enough replicas fsync theirs (one with AOF off never counts).

    WAITAOF counts what replicas fsynced of this connection's writes, so the check writes one
    key first (a lease named ``check``, gone after a few seconds). Replicas report their fsyncs
    with the acknowledgement they send once a second, so a ``replica_timeout`` under 2 s is a
    warning.
    """
    try:
        async with redis.pipeline(transaction=False) as pipe:
            pipe.set(keys.lease("check"), "1", px=5000)
            pipe.execute_command("WAITAOF", 1, replicas, 2500)
            _, reply = await pipe.execute()
        fsyncing = int(reply[1])
    except ResponseError as exc:
        return Finding(
            "error",
            "waitaof",
            f"LIVEFEED_WAIT_AOF=1, but Redis refuses WAITAOF ({exc}); it needs Redis >= 7.2 "
            "(or Valkey) with appendonly yes, or unset LIVEFEED_WAIT_AOF",
        )
    if fsyncing < replicas:
        return Finding(
            "error",
            "waitaof",
            f"writes wait for {replicas} replica(s) to fsync them (LIVEFEED_WAIT_AOF=1) but "
            f"{fsyncing} do: a replica with appendonly no never confirms, so every write "
            "answers 503; turn appendonly on on the replicas",
        )
    if replicas and replica_timeout < 2:
        return Finding(
            "warn",
            "waitaof",
            "replicas report their fsyncs about once a second, so with LIVEFEED_REPLICA_TIMEOUT="
            f"{replica_timeout:g} many writes will answer 503; set it to 2 or more",
        )
    if not replicas:
        return Finding(
            "ok",
            "waitaof",
            "every 2xx waits until the write is in the append-only file on the primary's disk "
            "(WAITAOF), whatever appendfsync says",
        )
    return Finding(
        "ok",
        "waitaof",
        f"every 2xx waits until the write is in the append-only file on the primary's disk and "
        f"on {replicas} replica(s)' (WAITAOF): it survives even the replicas' machines losing "
        "power after a failover",
    )


def persistence(appendonly: str | None, appendfsync: str | None, save: str | None) -> Finding:
    """What Redis's persistence settings mean for briefs that got their 201."""
    fix = "set appendonly yes and appendfsync always"
    if appendonly is None:
        return Finding(
            "warn", "persistence", f"cannot tell whether the append-only file is on; {fix}"
        )
    if appendonly != "yes":
        if save is None:
            lost = "every brief acknowledged since the last RDB snapshot, if snapshots are on"
        elif save:
            lost = f"every brief acknowledged since the last RDB snapshot (save '{save}')"
        else:
            lost = "every feed (no save points either: nothing is persisted)"
        return Finding(
            "error", "persistence", f"appendonly no: a crash of Redis loses {lost}; {fix}"
        )
    if appendfsync == "always":
        return Finding(
            "ok",
            "persistence",
            "appendonly yes, appendfsync always: every brief is on disk before its 201 goes out",
        )
    if appendfsync == "everysec":
        return Finding(
            "warn",
            "persistence",
            "appendonly yes, appendfsync everysec: a crash of the machine can lose up to about "
            "1 s of briefs that already got their 201 (a crash of Redis alone loses none); "
            "appendfsync always closes that gap",
        )
    if appendfsync == "no":
        return Finding(
            "warn",
            "persistence",
            "appendonly yes, appendfsync no: the kernel flushes when it likes (often every 30 s), "
            "so a crash of the machine can lose that much of acknowledged briefs; use "
            "appendfsync always",
        )
    return Finding(
        "warn",
        "persistence",
        "appendonly yes, appendfsync unknown: with always every brief is on disk before its "
        "201; with everysec a crash of the machine can lose about 1 s of them",
    )


def memory_policy(policy: str | None, maxmemory: str | None) -> Finding:
    """Eviction must never pick a feed's keys: livefeed sets no TTL on them."""
    unlimited = " (no maxmemory set: Redis grows until the machine runs out)"
    limit = unlimited if maxmemory == "0" else ""
    if policy is None:
        return Finding(
            "warn",
            "memory",
            "cannot tell the maxmemory-policy; it must be noeviction (or volatile-*)",
        )
    if policy == "noeviction":
        return Finding(
            "ok",
            "memory",
            f"maxmemory-policy noeviction: when memory is full, writes fail (503) and nothing "
            f"is lost{limit}",
        )
    if policy.startswith("volatile-"):
        return Finding(
            "ok",
            "memory",
            f"maxmemory-policy {policy}: only keys with a TTL are evicted and livefeed sets none "
            "on feeds, streams or tokens, so none of its data can go; when nothing evictable "
            f"is left, writes fail as with noeviction{limit}",
        )
    return Finding(
        "error",
        "memory",
        f"maxmemory-policy {policy}: Redis may evict any key when memory runs out, and an "
        "evicted stream is a lost feed; set maxmemory-policy noeviction",
    )


def _embedded_binary() -> Finding:
    try:
        binary = find_redis_server()
    except EmbeddedRedisError as exc:
        return Finding("error", "redis", str(exc))
    return Finding(
        "ok", "redis", f"serve will start {binary} (appendonly yes, appendfsync always, noeviction)"
    )


def tokens(settings: Settings, roles: Mapping[Role, int], feeds: int | None = None) -> Finding:
    """Can anyone publish: the shared token of this environment, or a stored named token whose
    role may (``roles``: how many stored tokens have each role)."""
    where = "" if feeds is None else f"; key prefix '{settings.key_prefix}' holds {feeds} feed(s)"
    stored = sum(roles.values())
    by_role = ", ".join(f"{roles[role]} {role}" for role in Role if roles.get(role))
    named = f"{stored} named editor token(s) stored{f' ({by_role})' if by_role else ''}{where}"
    if settings.editor_token:
        if len(settings.editor_token) < MIN_TOKEN_CHARS:
            return Finding(
                "warn",
                "tokens",
                f"LIVEFEED_EDITOR_TOKEN is shorter than {MIN_TOKEN_CHARS} characters: easy to "
                f"guess; use a long random one; {named}",
            )
        return Finding("ok", "tokens", f"LIVEFEED_EDITOR_TOKEN set; {named}")
    if any(allowed(role, Action.PUBLISH) for role, count in roles.items() if count):
        return Finding("ok", "tokens", named)
    return Finding(
        "error",
        "tokens",
        "no editor can publish: set LIVEFEED_EDITOR_TOKEN or run "
        f"'livefeed token create NAME'; {named}",
    )


async def _info(redis: Redis) -> dict[str, Any]:
    """INFO server, replication, persistence and memory, merged; {} where INFO is refused."""
    merged: dict[str, Any] = {}
    for section in ("server", "replication", "persistence", "memory"):
        with contextlib.suppress(ResponseError):
            merged.update(await redis.info(section))
    return merged


async def _config(redis: Redis) -> tuple[dict[str, str], str | None]:
    """The settings that matter, by CONFIG GET (one name a call: Redis 6.2 takes only one);
    and, when CONFIG is refused, why."""
    values: dict[str, str] = {}
    for name in (
        "appendonly", "appendfsync", "save", "maxmemory-policy", "maxmemory",
        "min-replicas-to-write",
    ):  # fmt: skip
        try:
            found = await redis.config_get(name)
            values.update({str(k): str(v) for k, v in found.items()})
        except ResponseError as exc:
            return {}, str(exc).split(",")[0]
    return values, None


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for part in text.split(".")[:3]:
        digits = "".join(ch for ch in part if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)
