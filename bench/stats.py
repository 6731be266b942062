"""Numbers for the benchmark: percentiles, a server's CPU and memory from /proc, the machine."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Linear interpolation between closest ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(values: Sequence[float]) -> dict[str, float | int | None]:
    """n, p50, p99, max and mean of ``values`` (None when empty)."""
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p99": percentile(values, 99),
        "max": max(values) if values else None,
        "mean": sum(values) / len(values) if values else None,
    }


def raise_nofile(ceiling: int = 1 << 20) -> int:
    """Raise this process's open-file limits, soft and hard, to the kernel's ``fs.nr_open`` (at
    most ``ceiling``) where permitted (root, CAP_SYS_RESOURCE), else the soft one to the hard
    one, saying so on stderr; the processes it starts after inherit both. Returns the soft one.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        most = min(int(Path("/proc/sys/fs/nr_open").read_text()), ceiling)
    except (OSError, ValueError):
        most = hard
    if hard < most:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (most, most))
        except (ValueError, OSError) as exc:
            print(
                f"open-file hard limit stays {hard:,} (raising it to {most:,} needs root or "
                f"CAP_SYS_RESOURCE: {exc}); each process holds at most ~{hard:,} sockets",
                file=sys.stderr,
                flush=True,
            )
        else:
            return most
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def nofile_of(pid: int) -> tuple[int, int]:
    """A process's soft and hard open-file limits, from /proc/<pid>/limits."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise ValueError(f"no open-file limit for {pid}")


def own_cpu() -> float:
    """User plus system CPU seconds of the calling process."""
    times = os.times()
    return times.user + times.system


# --- a server process and its children, from /proc -----------------------------------------------


def others_cpu() -> dict[int, float]:
    """CPU seconds of every process that is not this one or its descendants (kernel threads
    left out): what else is running on a shared machine."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS)
    ours = {os.getpid()}
    for _ in range(8):  # our processes are at most a few levels deep
        ours |= {pid for pid, (parent, _) in stats.items() if parent in ours}
    return {
        pid: cpu
        for pid, (parent, cpu) in stats.items()
        if pid not in ours and parent != 2 and pid != 2
    }


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (uvicorn workers, say), found through /proc/*/stat."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    tree, frontier = [pid], [pid]
    for _ in range(8):  # depth is bounded; uvicorn goes two levels at most
        frontier = [child for child, parent in parents.items() if parent in frontier]
        if not frontier:
            break
        tree.extend(frontier)
    return tree


def cpu_seconds(pid: int, tree: bool = True) -> float:
    """utime + stime of a process (and its descendants), in seconds; 0 for a gone process."""
    total = 0
    for each in process_tree(pid) if tree else [pid]:
        try:
            stat = Path(f"/proc/{each}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)
    return total / CLOCK_TICKS


def rss_kib(pid: int, tree: bool = True) -> int:
    """VmRSS of a process (and its descendants), in KiB."""
    total = 0
    for each in process_tree(pid) if tree else [pid]:
        try:
            status = Path(f"/proc/{each}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def open_sockets(pid: int) -> dict[int, int]:
    """Open sockets of each process in the tree: how readers spread over worker processes."""
    counts: dict[int, int] = {}
    for each in process_tree(pid):
        try:
            links = [os.readlink(f"/proc/{each}/fd/{fd}") for fd in os.listdir(f"/proc/{each}/fd")]
        except OSError:
            continue
        counts[each] = sum(1 for link in links if link.startswith("socket:"))
    return counts


def settle(pid: int, quiet: float = 0.03, period: float = 0.25, limit: float = 15.0) -> float:
    """Wait (at most ``limit`` s) until the server uses < ``quiet`` of a core; return the wait."""
    start = time.monotonic()
    last = cpu_seconds(pid)
    calm = 0
    while time.monotonic() - start < limit:
        time.sleep(period)
        now = cpu_seconds(pid)
        calm = calm + 1 if (now - last) / period < quiet else 0
        last = now
        if calm >= 2:
            break
    return time.monotonic() - start


# --- the machine ---------------------------------------------------------------------------------


def machine_info(redis_server: str) -> dict[str, Any]:
    cpu_model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    versions: dict[str, str | None] = {}
    for package in ("starlette", "uvicorn", "websockets", "redis", "orjson", "httpx", "livefeed"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    redis_version = subprocess.run(
        [redis_server, "--version"], capture_output=True, text=True, timeout=10, check=False
    ).stdout.strip()
    return {
        "cpu_model": cpu_model,
        "cores": os.cpu_count(),
        "ram_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": versions,
        "redis_server": redis_version,
        "nofile_limit": resource.getrlimit(resource.RLIMIT_NOFILE),
        "ephemeral_ports": Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split(),
        "somaxconn": Path("/proc/sys/net/core/somaxconn").read_text().strip(),
    }


def cpu_split(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process and its descendants (0, 0 for a gone one)."""
    user = system = 0
    for each in process_tree(pid):
        try:
            stat = Path(f"/proc/{each}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        user, system = user + int(fields[11]), system + int(fields[12])
    return user / CLOCK_TICKS, system / CLOCK_TICKS


# --- reading and printing the results --------------------------------------------------------


def dig(data: Any, path: str) -> Any:
    """``dig(results, "livefeed.phases.paced.completion_ms.p99")``; None if anything is missing."""
    for part in path.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def num(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, int) or (isinstance(value, float) and abs(value) >= 1000):
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"
