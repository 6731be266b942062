"""The side-by-side table of every server the benchmark ran, and livefeed's ratios to each peer.

Each figure is from the quieter of the runs (``--runs``), the other run's in brackets. Targets are
issue 18's: at or better than the best peer on what costs money, with every guarantee kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stats import dig, num

SERVERS = {
    "nchan": "Nchan on nginx (Redis store)",
    "node": "Node + ws (one XREAD loop)",
    "node-deflate": "Node + ws, perMessageDeflate on",
    "reference": "websockets broadcast (reference)",
    "livefeed": "livefeed",
}

# (heading, path in a run, scale, digits)
FIGURES: list[tuple[str, str, float, int]] = [
    ("CPU per 1,000 deliveries, ms (user + sys)", "server_cpu_s_per_1000", 1000, 1),
    ("of which user, ms", "server_user_s_per_1000", 1000, 1),
    ("of which sys, ms", "server_sys_s_per_1000", 1000, 1),
    ("storm conn/s", "storm.rate", 1, 0),
    ("memory per reader, KiB", "memory_per_reader_kib", 1, 1),
    ("completion p50 / p99 / max, ms", "phases.paced.completion_ms", 1, 0),
    ("bytes per delivery, plain / offering deflate", "wire", 1, 0),
    ("loss", "lost", 1, 0),
]


def _value(run: dict[str, Any], path: str, scale: float, digits: int) -> str:
    if path == "phases.paced.completion_ms":
        c = dig(run, path) or {}
        return " / ".join(num(c.get(k), 0) for k in ("p50", "p99", "max"))
    if path == "wire":
        plain = dig(run, "wire.plain.wire_bytes_per_delivery")
        deflate = dig(run, "wire.deflate.wire_bytes_per_delivery")
        return f"{num(plain, 0)} / {num(deflate, 0)}"
    value = dig(run, path)
    return num(None if value is None else value * scale, digits)


def _join_cost(run: dict[str, Any]) -> str:
    rounds = dig(run, "storm.cpu_ms_per_join_rounds") or []
    if not rounds:
        return num(dig(run, "storm.server_cpu_ms_per_join"), 2)
    low, high = min(rounds), max(rounds)
    return f"{low:.2f}-{high:.2f}" if high - low >= 0.005 else f"{low:.2f}"


def cell(run: dict[str, Any], path: str, scale: float, digits: int) -> str:
    """The figure of the shown run, and the other run's in brackets when it differs."""
    shown = _value(run, path, scale, digits)
    other = run.get("other")
    if isinstance(other, dict):
        theirs = _value(other, path, scale, digits)
        if theirs != shown:
            return f"{shown} ({theirs})"
    return shown


def measured(results: dict[str, Any]) -> list[str]:
    """The servers this run measured (not skipped), in the order of the table."""
    return [n for n in SERVERS if isinstance(results.get(n), dict) and "phases" in results[n]]


def table(results: dict[str, Any]) -> str:
    names = measured(results)
    if not names:
        return ""
    labels = [label for label, *_ in FIGURES]
    lines = [
        "| server | " + " | ".join([*labels[:3], "CPU per join, ms", *labels[3:]]) + " |",
        "|---|" + "--:|" * (len(labels) + 1),
    ]
    versions = (results.get("machine") or {}).get("peers") or {}
    for name in names:
        run = results[name]
        cells = [cell(run, path, scale, digits) for _, path, scale, digits in FIGURES]
        cells.insert(3, _join_cost(run))
        label = SERVERS[name] + (f" ({versions[name]})" if versions.get(name) else "")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


Check = Callable[[float, float], bool]

# (figure, path, the peer it is held against, livefeed's figure is fine when check(lf, peer))
TARGETS: list[tuple[str, str, str, Check]] = [
    ("user CPU per delivery ≤ Nchan's", "server_user_s_per_1000", "nchan", lambda a, b: a <= b),
    ("total CPU per delivery ≤ Nchan's", "server_cpu_s_per_1000", "nchan", lambda a, b: a <= b),
    ("join storm conn/s ≥ Nchan's", "storm.rate", "nchan", lambda a, b: a >= b),
    ("memory per reader ≤ Node+ws's", "memory_per_reader_kib", "node", lambda a, b: a <= b),
    ("completion p99 ≤ Nchan's", "phases.paced.completion_ms.p99", "nchan", lambda a, b: a <= b),
]


UNITS = {
    "server_user_s_per_1000": "ms per 1,000 deliveries",
    "server_cpu_s_per_1000": "ms per 1,000 deliveries",
    "storm.rate": "conn/s",
    "memory_per_reader_kib": "KiB",
    "phases.paced.completion_ms.p99": "ms",
}


def verdicts(results: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    """(target, livefeed, the peer, met?) for each of issue 18's targets this run can judge."""
    lf = results.get("livefeed")
    out: list[tuple[str, str, str, bool | None]] = []
    if not isinstance(lf, dict) or "phases" not in lf:
        return out
    names = measured(results)
    for figure, path, peer, check in TARGETS:
        a, b = dig(lf, path), dig(results.get(peer), path) if peer in names else None
        met = None if a is None or b is None else check(float(a), float(b))
        ratio = f"{a / b:.2f}x {peer}" if a is not None and b else "peer not run"
        shown = num(None if a is None else a * 1000 if "_s_per_1000" in path else a)
        out.append((figure, f"{shown} {UNITS[path]}", ratio, met))
    join = dig(lf, "storm.server_cpu_ms_per_join")
    if join is not None:
        out.append(("CPU per join ≤ 0.3 ms", f"{join:.2f} ms", "", join <= 0.3))
    plain = dig(lf, "wire.plain.wire_bytes_per_delivery")
    deflated = dig(lf, "wire.deflate.wire_bytes_per_delivery")
    if plain and deflated is not None:
        out.append(
            (
                "bytes per brief for a browser ≤ 0.6 x the plain frame",
                f"{deflated:.0f} B",
                f"{deflated / plain:.2f}x plain ({plain:.0f} B)",
                deflated <= 0.6 * plain,
            )
        )
    return out


def ratios(results: dict[str, Any]) -> str:
    rows = verdicts(results)
    if not rows:
        return ""
    lines = ["| target | livefeed | ratio | met? |", "|---|--:|--:|---|"]
    for figure, value, ratio, met in rows:
        verdict = "" if met is None else ("yes" if met else "**NO**")
        lines.append(f"| {figure} | {value} | {ratio} | {verdict} |")
    behind = [figure for figure, _, _, met in rows if met is False]
    if behind:
        lines.append("")
        lines.append("Still behind: " + "; ".join(behind) + ".")
    return "\n".join(lines)


def markdown(results: dict[str, Any]) -> str:
    """The servers' table and the targets, or "" when only livefeed and the reference ran."""
    parts = [table(results), ratios(results)]
    skipped = [
        f"{n}: skipped ({results[n]['skipped']})"
        for n in SERVERS
        if isinstance(results.get(n), dict) and "skipped" in results[n]
    ]
    body = "\n\n".join(p for p in parts if p)
    if skipped:
        body += "\n\n" + "\n".join(f"- {s}" for s in skipped)
    runs = (results.get("options") or {}).get("runs", 1)
    note = (
        f"Each figure is from the quieter of {runs} runs, the other run's in brackets.\n\n"
        if runs and runs > 1
        else ""
    )
    return f"### Servers side by side\n\n{note}{body}\n" if body else ""
