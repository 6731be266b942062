"""The commands over a feed's history: ``export`` and ``import`` (JSON Lines) and ``replay``."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import signal
import sys
import tarfile
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any, BinaryIO

import orjson

from livefeed.media.files import MediaFiles
from livefeed.model.days import Day, day_containing, day_of, local_clock, parse_clock, parse_day
from livefeed.model.feed import Feed
from livefeed.model.ids import StreamId, now_ms
from livefeed.model.story import Lead, Summary
from livefeed.newsroom import audit, story
from livefeed.newsroom.archive import BadArchive, is_archive, read_archive, write_archive
from livefeed.newsroom.transfer import (
    ImportStopped,
    NotReplicated,
    check_media,
    export_briefs,
    import_briefs,
    parse_import,
)
from livefeed.ops.runner import settings_from, with_store
from livefeed.storage.store import Store
from livefeed.stream.replay import Player, parse_speed

EXIT_NOT_REPLICATED = os.EX_TEMPFAIL
"""``import`` exit status when the import was written but too few replicas confirmed it."""


def _progress(label: str) -> Callable[[int, int], None] | None:
    """A one-line progress bar on standard error, when that is a terminal."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        percent = 100 * done // max(total, 1)
        bar = "#" * filled + "-" * (width - filled)
        end = "\n" if done >= total else ""
        print(f"\r{label} [{bar}] {done}/{total} {percent}%", end=end, file=sys.stderr, flush=True)

    return show


def cli_day(raw: str, timezone: str) -> Day:
    """A day as the CLI takes it: ``YYYY-MM-DD``, or ``today`` / ``yesterday`` in the feed's
    zone, so the README's examples work on the day they are typed."""
    word = raw.strip().lower()
    if word in ("today", "yesterday"):
        today = day_containing(now_ms(), timezone).date
        return day_of(today - timedelta(days=1) if word == "yesterday" else today, timezone)
    return parse_day(raw, timezone)


async def say_empty(store: Store, feed: Feed, what: str) -> None:
    """An empty export or replay says so on standard error, with the days that have briefs."""
    days = [day for day, _ in await store.days(feed.slug)]
    shown = ", ".join(days[:5]) + (", ..." if len(days) > 5 else "")
    has = f"it has briefs on {shown}" if days else "it has no briefs yet"
    print(f"livefeed: no briefs {what} in feed {feed.slug}; {has}", file=sys.stderr)


def cmd_export(args: argparse.Namespace) -> int:
    out = open(args.output, "wb") if args.output else sys.stdout.buffer  # noqa: SIM115

    async def action(store: Store) -> int:
        feed = await store.require_feed(args.feed)
        start_ms, end_ms = 0, 2**63 - 1
        what = ""
        if args.day:
            day = cli_day(args.day, feed.timezone)
            start_ms, end_ms = day.start_ms, day.end_ms
            what = f"on {day.date}"
        elif args.from_day or args.to_day:
            if args.from_day:
                first = cli_day(args.from_day, feed.timezone)
                start_ms, what = first.start_ms, f"from {first.date}"
            if args.to_day:
                last = cli_day(args.to_day, feed.timezone)
                end_ms, what = last.end_ms, f"{what} to {last.date}".strip()
        total = sum(
            count
            for day_iso, count in await store.days(feed.slug)
            if start_ms <= parse_day(day_iso, feed.timezone).start_ms <= end_ms
        )
        progress = _progress(f"exporting {feed.slug}")
        done = 0
        kept: list[bytes] = []  # --with-media: the archive is written once they are all read
        async for lines in export_briefs(store, feed, start_ms, end_ms):
            if args.with_media:
                kept += lines
            else:
                out.writelines(lines)
            done += len(lines)
            if progress is not None:
                progress(done, max(total, done))
        story_lines = [] if what else await story.export_lines(store, feed)
        audit_lines: list[bytes] = []
        if args.audit:  # who wrote, submitted, scheduled and published, after all else
            async for lines in audit.export_lines(store, feed):
                audit_lines += lines
        uploads = ""
        if args.with_media:
            files = MediaFiles(settings_from(args).media_root())
            archived = await write_archive(out, kept + story_lines + audit_lines, store, files)
            uploads = f" and {archived} media"
        else:
            out.writelines(story_lines)  # a whole-feed export ends with the lead and the summary
            out.writelines(audit_lines)
        if done == 0 and not story_lines:
            await say_empty(store, feed, what)
        else:
            said = _story_said(len(story_lines))
            told = f" and {len(audit_lines)} audit lines" if args.audit else ""
            print(f"exported {done} briefs{said}{uploads}{told}", file=sys.stderr)
        return 0

    try:
        return with_store(args, action)
    except BrokenPipeError:  # the reader (head, say) has had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        if args.output:
            out.close()


def cmd_import(args: argparse.Namespace) -> int:
    source: contextlib.AbstractContextManager[BinaryIO]
    if args.file == "-":
        source = contextlib.nullcontext(sys.stdin.buffer)
    else:
        try:
            source = open(args.file, "rb")  # noqa: SIM115 - closed by the with below
        except OSError as exc:
            print(f"livefeed: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
            return 1

    async def action(store: Store) -> int:
        progress = None
        with _stop_on_signals() as stop:
            try:
                feed = await store.require_feed(args.feed)
                bounds = await store.bounds(feed.slug)
                progress = _progress(f"importing into {feed.slug}")
                source: Iterable[bytes] = lines
                head = lines.peek(512)[:512] if isinstance(lines, io.BufferedReader) else b""
                if is_archive(head):
                    files = MediaFiles(settings_from(args).media_root())
                    briefs_jsonl, count = await read_archive(lines, store, files)
                    print(f"restored {count} media into {files.root}", file=sys.stderr)
                    source = briefs_jsonl.splitlines(keepends=True)
                # Line by line: the file itself is never held whole, only what was parsed.
                told: list[Lead | Summary] = []
                briefs = parse_import(source, bounds.last_generated, stop, told)
                await check_media(store, briefs, told)
                ids = await import_briefs(store, feed, briefs, progress, stop)
                for value in told:  # the briefs are in: the lead and summary go on top
                    await story.restore(store, feed, value, IMPORT_EDITOR)
            except NotReplicated as short:
                print("\n" if progress else "", end="", file=sys.stderr)
                print(f"livefeed: imported {short.written} briefs into {args.feed}, but "
                      f"{short.confirmed} of {short.wanted} replicas confirmed them in time: a "
                      "failover now could lose them; see `livefeed check`",
                      file=sys.stderr)  # fmt: skip
                return EXIT_NOT_REPLICATED
            except (BadArchive, tarfile.TarError) as exc:
                print(f"livefeed: {args.file} is not a readable archive: {exc}", file=sys.stderr)
                return 1
            except ImportStopped:
                name = signal.Signals(stop.signum).name
                print("\n" if progress else "", end="", file=sys.stderr)  # end the bar's line
                print(f"livefeed: import stopped by {name}; nothing was imported, the feed is as "
                      "it was", file=sys.stderr)  # fmt: skip
                return 128 + stop.signum
        print(f"imported {len(ids)} briefs{_story_said(len(told))} into {feed.slug}",
              file=sys.stderr)  # fmt: skip
        return 0

    with source as lines:
        return with_store(args, action)


IMPORT_EDITOR = "import"
"""Who the events restoring an imported lead or summary name as their editor."""


def _story_said(count: int) -> str:
    """What an export or import adds when it carried the lead and summary (``count`` lines)."""
    return "" if not count else f" and the story so far ({count} line{'s' * (count > 1)})"


class _Stop(threading.Event):
    """Set by the first SIGINT or SIGTERM; ``signum`` says which."""

    signum = 0


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[_Stop]:
    """While the block runs, SIGINT and SIGTERM set a flag instead of raising, so an import
    stops between batches and undoes what it wrote: an exception raised wherever the signal
    lands (KeyboardInterrupt) could cut the undo short. A signal the shell had ignored (a
    background job's SIGINT) stays ignored."""
    stop = _Stop()

    def handler(signum: int, frame: object) -> None:
        if not stop.is_set():
            stop.signum = signum
            stop.set()

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(sig) is not signal.SIG_IGN:
            previous[sig] = signal.signal(sig, handler)
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def cmd_replay(args: argparse.Namespace) -> int:
    async def action(store: Store) -> int:
        feed = await store.require_feed(args.feed)
        day = cli_day(args.day, feed.timezone)
        speed = parse_speed(args.speed)
        start = day.at_clock(*parse_clock(args.from_clock)) if args.from_clock else day.start_ms
        if not any(d == day.date.isoformat() for d, _ in await store.days(feed.slug)):
            await say_empty(store, feed, f"on {day.date}")
            return 1
        player = Player(store, feed, day, speed, max_gap=3.0)
        async for frame in player.play(start):
            print(_replay_line(orjson.loads(frame), feed.timezone), flush=True)
        return 0

    return with_store(args, action)


def _replay_line(frame: dict[str, Any], timezone: str) -> str:
    kind = frame["type"]
    if kind == "brief":
        brief = frame["brief"]
        clock = local_clock(StreamId.parse(brief["id"]).ms, timezone)[:5]
        return f"{clock}  {brief['headline']}"
    if kind == "replay_start":
        return f"-- {frame['date']} ({timezone}) at {frame['speed']:g}x --"
    if kind == "replay_skip":
        to = datetime.fromisoformat(frame["to"]).timestamp() * 1000
        return f"   … quiet until {local_clock(int(to), timezone)[:5]} …"
    if kind == "replay_end":
        return "-- end of the day --"
    if kind == "brief_updated":
        brief = frame["brief"]
        clock = local_clock(StreamId.parse(frame["event_id"]).ms, timezone)[:5]
        correction = brief.get("correction")
        # The note readers see is this update's only when it was made with it (its time).
        if correction and correction["at"] == brief.get("updated_at"):
            return f"{clock}  [corrected] {brief['headline']} — {correction['note']}"
        return f"{clock}  [updated] {brief['headline']}"
    if kind in ("summary_updated", "lead_updated"):
        clock = local_clock(StreamId.parse(frame["event_id"]).ms, timezone)[:5]
        if kind == "lead_updated":
            return f"{clock}  [lead] {frame['lead']['headline']}"
        summary = frame["summary"]
        return f"{clock}  [summary] {summary['title']}: {len(summary['items'])} points"
    return f"-- {kind} --"
