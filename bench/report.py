"""The benchmark's report: a markdown table with the targets of issue 5, the JSON, the summary."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import peers_report
from peers_report import measured
from stats import dig, num

Row = tuple[str, str, str, str, str, str]


def ratio(lf: Any, ref: Any) -> float | None:
    if lf is None or ref is None or not ref:
        return None
    return float(lf) / float(ref)


def rows(results: dict[str, Any]) -> list[Row]:
    """figure | livefeed | reference | ratio | target | met?"""
    out: list[Row] = []
    readers = results["options"]["readers"]
    lf, ref = results.get("livefeed", {}), results.get("reference", {})

    def pair(
        figure: str,
        path: str,
        target: str = "",
        met: Callable[[Any, Any, float | None], bool] | None = None,
        digits: int = 1,
    ) -> None:
        a, b = dig(lf, path), dig(ref, path)
        r = ratio(a, b)
        verdict = "" if met is None or a is None else ("yes" if met(a, b, r) else "**NO**")
        out.append((figure, num(a, digits), num(b, digits), num(r, 2), target, verdict))

    def single(figure: str, value: Any, target: str, ok: bool | None, digits: int = 1) -> None:
        verdict = "" if ok is None else ("yes" if ok else "**NO**")
        out.append((figure, num(value, digits), "", "", target, verdict))

    held, lost = dig(lf, "connect.ready"), dig(lf, "lost")
    if readers < 10_000:
        held_verdict = f"n/a ({readers:,} requested)"
    elif held is None:
        held_verdict = ""
    else:
        held_verdict = "yes" if held >= 10_000 and lost == 0 else "**NO**"
    out.append(
        (
            "readers held (with backlog)",
            num(held),
            num(dig(ref, "connect.ready")),
            "",
            "10,000, zero loss",
            held_verdict,
        )
    )
    out.append(
        (
            "deliveries received / expected",
            f"{num(dig(lf, 'deliveries'))} / {num(dig(lf, 'expected'))}",
            f"{num(dig(ref, 'deliveries'))} / {num(dig(ref, 'expected'))}",
            "",
            "all",
            "",
        )
    )
    pair("**loss** (deliveries missing)", "lost", "0", lambda a, b, r: a == 0)
    pair("connect rate, readers/s (with backlog)", "connect.rate")
    pair("broadcast completion p50, paced (ms)", "phases.paced.completion_ms.p50", digits=1)
    pair(
        "broadcast completion p99, paced (ms)",
        "phases.paced.completion_ms.p99",
        "≤ 1.5 x reference",
        lambda a, b, r: r is not None and r <= 1.5,
    )
    pair("broadcast completion max, paced (ms)", "phases.paced.completion_ms.max")
    pair("broadcast completion p50, burst (ms)", "phases.burst.completion_ms.p50")
    pair("broadcast completion p99, burst (ms)", "phases.burst.completion_ms.p99")
    pair("burst: first publish call to last delivery (ms)", "phases.burst.drain_ms")
    pair("burst: time to make the 20 publish calls (ms)", "phases.burst.publish_span_ms")
    pair("delivery latency p50, paced (ms)", "phases.paced.latency_ms.p50")
    pair("delivery latency p99, paced (ms)", "phases.paced.latency_ms.p99")
    pair("delivery latency p50, burst (ms)", "phases.burst.latency_ms.p50")
    pair("delivery latency p99, burst (ms)", "phases.burst.latency_ms.p99")
    pair("publish call p50, paced (ms)", "phases.paced.publish_call_ms.p50", digits=2)
    pair("publish call p50, burst (ms)", "phases.burst.publish_call_ms.p50", digits=2)
    pair(
        "server CPU s per 1,000 deliveries",
        "server_cpu_s_per_1000",
        "≤ 1.5 x reference",
        lambda a, b, r: r is not None and r <= 1.5,
        digits=4,
    )
    pair(
        "server memory per reader (KiB)",
        "memory_per_reader_kib",
        "≤ 20 KiB",
        lambda a, b, r: a <= 20,
    )
    pair("server RSS with readers (MiB)", "rss_after_mib")
    pair("server RSS after the readers left (MiB)", "rss_after_close_mib")
    pair("client CPU s, publish phases (all client processes)", "client_cpu_s", digits=2)
    pair("server CPU s, publish phases", "server_cpu_s", digits=2)
    pair("redis-server CPU s, burst", "phases.burst.redis_cpu_s", digits=2)
    pair(
        "join storm, readers/s (with backlog)",
        "storm.rate",
        "≥ 0.7 x reference",
        lambda a, b, r: r is not None and r >= 0.7,
    )
    pair("join storm, readers with backlog", "storm.ready")
    rounds = [dig(run, "storm.rounds") or [] for run in (lf, ref)]
    if any(rounds):
        mine, theirs = (", ".join(f"{r:,}" for r in rs) for rs in rounds)
        out.append(("join storm, readers/s of each round (median above)", mine, theirs, "", "", ""))
    pair("join storm, time to first frame p50 (ms)", "storm.first_frame_ms.p50")
    pair("join storm, time to first frame p99 (ms)", "storm.first_frame_ms.p99")
    pair("join storm, time to whole backlog p99 (ms)", "storm.backlog_ms.p99")
    pair("join storm, server CPU ms per join", "storm.server_cpu_ms_per_join", digits=2)
    pub = dig(lf, "publish.rate")
    single(
        f"publish, briefs/s accepted ({dig(lf, 'publish.editors')} editors)",
        pub,
        "≥ 1,000",
        None if pub is None else pub >= 1000,
    )
    single("publish latency p99 (ms)", dig(lf, "publish.latency_ms.p99"), "", None)
    imp = dig(lf, "import.rate")
    single(
        f"import, briefs/s ({num(dig(lf, 'import.briefs'))} briefs, wall incl. CLI start)",
        imp,
        "≥ 20,000",
        None if imp is None else imp >= 20_000,
    )
    single(
        "import, briefs/s without CLI start-up", dig(lf, "import.rate_without_startup"), "", None
    )
    day = dig(lf, "day_archive.median_ms")
    single(
        "5,000-brief day from the day API, median (ms)",
        day,
        "≤ 100 ms",
        None if day is None else day <= 100,
    )
    workers = results.get("workers")
    if workers:
        if "skipped" in workers:
            out.append(
                ("several workers", "skipped", "", "", "every brief everywhere", workers["skipped"])
            )
        else:
            lost_w = dig(workers, "delivery.lost")
            held_w = dig(workers, "connect.ready")
            per_process = (workers.get("readers_per_process") or {}).values()
            spread = sorted((n for n in per_process if n > 10), reverse=True)
            out.append(
                (
                    f"{workers['workers']} workers: readers held (sockets per worker) / loss",
                    f"{num(held_w)} ({', '.join(f'{n:,}' for n in spread)}) / {num(lost_w)}",
                    "",
                    "",
                    "every brief reaches every reader; readers scale with workers",
                    "yes" if lost_w == 0 and held_w == workers["requested"] else "**NO**",
                )
            )
            single(
                f"{workers['workers']} workers: memory per reader (KiB)",
                dig(workers, "memory_per_reader_kib"),
                "",
                None,
            )
            single(
                f"{workers['workers']} workers: broadcast completion p99 (ms)",
                dig(workers, "delivery.completion_ms.p99"),
                "",
                None,
            )
    return out


def table(results: dict[str, Any]) -> str:
    lines = [
        "| figure | livefeed | reference | ratio | target | met? |",
        "|---|--:|--:|--:|---|---|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows(results)]
    return "\n".join(lines)


def machine_line(results: dict[str, Any]) -> str:
    m = results["machine"]
    p = m["packages"]
    versions = ", ".join(f"{k} {v}" for k, v in p.items() if v)
    return (
        f"{results['date']} · {m['cpu_model']}, {m['cores']} cores, {m['ram_gib']} GiB · "
        f"Python {m['python']} · {versions} · {m['redis_server'].split(' sha=')[0]} · "
        f"`{results['command']}`"
    )


def profiles(results: dict[str, Any]) -> str:
    """The busiest functions of each py-spy profile (``--profile``)."""
    parts = []
    for label, prof in (results.get("profiles") or {}).items():
        if "error" in prof:
            parts.append(f"**{label}**: no profile ({prof['error']})")
            continue
        own = ", ".join(f"{k} {v}%" for k, v in list(prof["self_pct"].items())[:8])
        total = ", ".join(f"{k} {v}%" for k, v in list(prof["total_pct"].items())[:10])
        ours = ", ".join(f"{k} {v}%" for k, v in prof.get("livefeed_pct", {}).items())
        parts.append(
            f"**{label}** ({prof['samples']:,} samples, `{prof['file']}`)\n"
            f"- self: {own}\n- on the stack: {total}"
            + (f"\n- livefeed's own code on the stack: {ours}" if ours else "")
        )
    return "\n\n### Profiles (py-spy)\n\n" + "\n\n".join(parts) + "\n" if parts else ""


def markdown(results: dict[str, Any]) -> str:
    o = results["options"]
    head = (
        f"**Benchmark** ({o['readers']:,} readers, {o['paced']} paced + {o['burst']} burst briefs, "
        f"join storm of {o['storm']:,}, {o['clients']} client processes)\n\n"
        f"{machine_line(results)}\n\n"
    )
    listed = "\n".join(f"- {n}" for n in notes(results))
    side = peers_report.markdown(results)
    return (
        head
        + (side + "\n### livefeed and the reference\n\n" if side else "")
        + table(results)
        + "\n\n"
        + listed
        + "\n"
        + profiles(results)
    )


def notes(results: dict[str, Any]) -> list[str]:
    """What a reader of the table should know: loss, errors, where the generator was the limit."""
    out: list[str] = []
    for name in measured(results):
        run = results[name]
        for phase, figures in run["phases"].items():
            if figures["lost"] or figures["duplicates"] or figures["out_of_order"]:
                out.append(
                    f"**{name} {phase}: lost {figures['lost']}, duplicates "
                    f"{figures['duplicates']}, out of order {figures['out_of_order']}, readers "
                    f"closed {figures['closed_readers']} {figures['close_reasons']}**"
                )
            if figures["publish_failed"]:
                out.append(f"**{name} {phase}: {figures['publish_failed']} publishes failed**")
        if run["connect"]["failed"] or run["storm"]["failed"]:
            out.append(
                f"**{name}: readers that never got their backlog: {run['connect']['failed']} "
                f"(main) {run['connect']['errors']}, {run['storm']['failed']} (storm) "
                f"{run['storm']['errors']}**"
            )
        paced = run["phases"]["paced"]
        out.append(
            f"{name}: mean frame {paced['mean_frame_bytes']:.0f} B; client CPU "
            f"{run['client_cpu_s']:.1f} s vs server CPU {run['server_cpu_s']:.1f} s over the "
            f"publish phases; burst: server CPU {run['phases']['burst']['server_cpu_s']:.1f} s, "
            f"clients {run['phases']['burst']['client_cpu_s']:.1f} s"
        )
    lf = results.get("livefeed")
    if lf:
        health = lf.get("health", {})
        if any(health.values()):
            seen = ", ".join(
                f"{k}: {v.get('readers')} readers, {v.get('tasks')} tasks"
                for k, v in health.items()
                if v
            )
            out.append(f"livefeed /healthz ({seen})")
        pauses = lf.get("gc_publish_phases")
        if pauses:
            parts = ", ".join(
                f"generation {g}: {p['collections']:.0f} ({p['total_ms']:.1f} ms, the longest "
                f"under {p['longest_under_ms']:g} ms)"
                for g, p in pauses.items()
                if p["collections"]
            )
            out.append(f"livefeed's garbage collections over the publish phases: {parts or 'none'}")
        call = dig(lf, "phases.paced.publish_call_ms.p50")
        done = dig(lf, "phases.paced.completion_ms.p50")
        if call and done and call > 0.5 * done:
            out.append(
                f"livefeed's publish call (p50 {call:.0f} ms) lasts about as long as the "
                f"broadcast (p50 {done:.0f} ms): the 201 waits behind the fan-out in the same "
                "event loop, so editors feel the readership"
            )
        pub = lf.get("publish", {})
        if pub:
            out.append(
                f"publish: statuses {pub['statuses']}, server CPU "
                f"{pub['server_cpu_ms_per_brief']:.2f} ms per brief, "
                f"client CPU {pub['client_cpu_s']:.1f} s in {pub['seconds']:.1f} s"
            )
        imp = lf.get("import", {})
        if imp and imp.get("returncode"):
            out.append(f"**import failed (rc {imp['returncode']}): {imp['stderr']}**")
        day = lf.get("day_archive", {})
        if day and day.get("briefs") != [5000]:
            out.append(f"**day archive returned {day.get('briefs')} briefs, not 5,000**")
    disturbed = []
    sections = {
        "connect": "connect",
        "phases.paced": "paced",
        "phases.burst": "burst",
        "storm": "storm",
        "publish": "publish",
        "import": "import",
        "day_archive": "day archive",
    }
    for name in measured(results):
        for path, label in sections.items():
            cores = dig(results.get(name), f"{path}.foreign_cores")
            if cores is not None and cores >= 0.1:
                disturbed.append(f"{name} {label} {cores:.2f}")
    if disturbed:
        out.append(
            "**The machine was shared**: other processes used this many cores meanwhile: "
            + ", ".join(disturbed)
            + " (of "
            + str(results["machine"]["cores"])
            + "); those figures are pessimistic"
        )
    for name, log in results.get("logs", {}).items():
        if log["problems"]:
            out.append(
                f"**{name} log: {log['problems']} WARNING/ERROR lines**, first: {log['first'][:3]}"
            )
    out.append(
        "The reference is published to by XADD straight to Redis; livefeed through its HTTP API, "
        "so livefeed's completion includes the request. p99 of the paced phase is over "
        f"{results['options']['paced']} briefs (close to the max)."
    )
    return out


def loss_banner(results: dict[str, Any]) -> str:
    parts = []
    for name in measured(results):
        run = results[name]
        if run:
            parts.append(f"{name} lost {run['lost']:,} of {run['expected']:,} deliveries")
    workers = results.get("workers", {})
    if "delivery" in workers:
        parts.append(f"workers lost {workers['delivery']['lost']:,}")
    lost = any(dig(results, f"{n}.lost") for n in measured(results)) or dig(
        results, "workers.delivery.lost"
    )
    line = "; ".join(parts)
    if lost:
        bar = "!" * 78
        return f"{bar}\n!!! LOSS: {line}\n{bar}"
    return f"loss: none ({line})"


def summary(results: dict[str, Any]) -> str:
    return "\n" + markdown(results) + "\n" + loss_banner(results)


def write(results: dict[str, Any], folder: Path, started: datetime) -> list[Path]:
    for name in measured(results):
        run = results[name]
        if "rss_after_kib" in run:
            run["rss_after_mib"] = run["rss_after_kib"] / 1024
            run["rss_after_close_mib"] = run["rss_after_close_kib"] / 1024
    folder.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    json_path = folder / f"{stamp}.json"
    md_path = folder / f"{stamp}.md"
    json_path.write_bytes(
        orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
    )
    md_path.write_text(markdown(results))
    latest = folder / "latest.md"
    shutil.copyfile(md_path, latest)
    return [json_path, md_path, latest]


def main(argv: list[str] | None = None) -> int:
    """``bench/report.py RESULTS.json``: its ``.md`` and ``latest.md`` written again from it."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: bench/report.py bench/results/<stamp>.json", file=sys.stderr)
        return 2
    path = Path(args[0])
    results = orjson.loads(path.read_bytes())
    md = path.with_suffix(".md")
    md.write_text(markdown(results))
    shutil.copyfile(md, path.parent / "latest.md")
    print(f"written: {md}, {path.parent / 'latest.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
