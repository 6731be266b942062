"""The ``livefeed`` command: serve the app, manage feeds and editor tokens.

Every flag falls back to a ``LIVEFEED_*`` environment variable (see ``config.Settings``). Without
``--redis-url`` the commands use an embedded redis-server under ``--data-dir``: ``serve`` starts and
owns it; the other commands use the one a running ``serve`` owns, or start one for their duration.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from redis.exceptions import RedisError

from livefeed.config import Settings
from livefeed.errors import LivefeedError, NotFound
from livefeed.model.days import Day, day_containing, day_of, local_clock, parse_clock, parse_day
from livefeed.model.feed import Feed, parse_new_feed
from livefeed.model.ids import StreamId, now_ms
from livefeed.newsroom.transfer import (
    ImportStopped,
    export_briefs,
    import_briefs,
    parse_import,
)
from livefeed.storage.connect import connect
from livefeed.storage.redis_server import EmbeddedRedis, EmbeddedRedisError, owner_url
from livefeed.storage.store import Store
from livefeed.stream.replay import Player, parse_speed


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="livefeed",
        description="Live-blog event stream service: editors publish briefs, readers watch live.",
        epilog="Every option falls back to a LIVEFEED_* environment variable; the flag wins. "
        "'livefeed COMMAND --help' describes a command.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    redis_opts = argparse.ArgumentParser(add_help=False)
    redis_opts.add_argument(
        "--redis-url", help="use this Redis (env LIVEFEED_REDIS_URL); default: embedded"
    )
    redis_opts.add_argument(
        "--data-dir",
        type=Path,
        help="embedded Redis data (env LIVEFEED_DATA_DIR; default ~/.local/share/livefeed)",
    )
    redis_opts.add_argument("--key-prefix", help="Redis key prefix (env LIVEFEED_KEY_PREFIX)")

    serve = sub.add_parser("serve", parents=[redis_opts], help="run the web service")
    serve.add_argument("--host", help="bind address (env LIVEFEED_HOST; default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (env LIVEFEED_PORT; default 8000)")
    serve.add_argument(
        "--demo", action="store_true", default=None, help="create a demo feed and keep posting"
    )
    serve.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help="least severe records logged (env LIVEFEED_LOG_LEVEL; default info)",
    )
    serve.add_argument(
        "--log-format",
        choices=["text", "json"],
        help="json: one JSON object per line, with request ids (env LIVEFEED_LOG_FORMAT; "
        "default text)",
    )
    serve.add_argument(
        "--forwarded-allow-ips",
        metavar="IPS",
        help="comma-separated proxy addresses (or *) trusted for X-Forwarded-For/-Proto "
        "(env LIVEFEED_FORWARDED_ALLOW_IPS; default uvicorn's: 127.0.0.1,::1)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        help="worker processes sharing the port (env LIVEFEED_WORKERS; default 1); "
        "each follows the stream itself, so every reader on every worker gets every event",
    )
    serve.set_defaults(func=cmd_serve)

    feed = sub.add_parser("feed", help="create and list feeds")
    feed_sub = feed.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = feed_sub.add_parser("create", parents=[redis_opts], help="create a feed")
    create.add_argument("slug", help="a-z, 0-9 and '-', at most 64 characters")
    create.add_argument("--title", required=True, help="the feed's title, shown to readers")
    create.add_argument("--timezone", required=True, help="IANA zone, e.g. Europe/Kyiv")
    create.add_argument(
        "--language", default="en", help="BCP 47 tag of what it publishes, e.g. uk, ar, en-GB"
    )
    create.set_defaults(func=cmd_feed_create)
    flist = feed_sub.add_parser("list", parents=[redis_opts], help="list feeds")
    flist.set_defaults(func=cmd_feed_list)

    token = sub.add_parser("token", help="manage editor tokens")
    token_sub = token.add_subparsers(dest="action", required=True, metavar="ACTION")
    tcreate = token_sub.add_parser(
        "create", parents=[redis_opts], help="create a token for an editor; printed once"
    )
    tcreate.add_argument("name", help="the editor's name, the default byline of their briefs")
    tcreate.set_defaults(func=cmd_token_create)
    tlist = token_sub.add_parser("list", parents=[redis_opts], help="list editors with tokens")
    tlist.set_defaults(func=cmd_token_list)
    trevoke = token_sub.add_parser("revoke", parents=[redis_opts], help="revoke an editor's token")
    trevoke.add_argument("name", help="the editor whose token stops working at once")
    trevoke.set_defaults(func=cmd_token_revoke)
    export = sub.add_parser(
        "export", parents=[redis_opts], help="write briefs as JSON Lines, oldest first"
    )
    export.add_argument("feed", help="the feed's slug")
    when = export.add_mutually_exclusive_group()
    when.add_argument("--day", help="one local day, YYYY-MM-DD, today or yesterday")
    when.add_argument(
        "--from", dest="from_day", help="first local day, YYYY-MM-DD (or today, yesterday)"
    )
    export.add_argument(
        "--to", dest="to_day", help="last local day, YYYY-MM-DD (or today, yesterday; with --from)"
    )
    export.add_argument("-o", "--output", help="file to write (default: standard output)")
    export.set_defaults(func=cmd_export)

    imp = sub.add_parser(
        "import",
        parents=[redis_opts],
        help="append briefs from JSON Lines at their original times (all or nothing)",
    )
    imp.add_argument("feed", help="the feed's slug; it must exist")
    imp.add_argument("file", help="a .jsonl file, or - for standard input")
    imp.set_defaults(func=cmd_import)

    replay = sub.add_parser("replay", parents=[redis_opts], help="play a day in the terminal")
    replay.add_argument("feed", help="the feed's slug")
    replay.add_argument("day", help="YYYY-MM-DD in the feed's time zone, today or yesterday")
    replay.add_argument("--speed", default="60", help="how many times faster (default 60)")
    replay.add_argument("--from", dest="from_clock", help="start at this local time, HH:MM")
    replay.set_defaults(func=cmd_replay)

    check = sub.add_parser(
        "check",
        parents=[redis_opts],
        help="check configuration and Redis (version, persistence, memory policy, tokens)",
        description="Check that this configuration and its Redis are fit for livefeed: Redis "
        "reachable and >= 6.2, append-only persistence, a memory policy that never evicts feeds, "
        "editor tokens, and (embedded mode) a writable data directory. Exit status 0 when all "
        "is well, 1 when something must be fixed; warnings do not fail.",
    )
    check.set_defaults(func=cmd_check)
    _describe(parser)
    return parser


def _describe(parser: argparse.ArgumentParser) -> None:
    """Give every subcommand without a description its help line as one, for its --help."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, child in action.choices.items():
                if child.description is None and helps.get(name):
                    child.description = str(helps[name])[:1].upper() + str(helps[name])[1:] + "."
                _describe(child)


def settings_from(args: argparse.Namespace) -> Settings:
    keys = ["host", "port", "redis_url", "data_dir", "key_prefix", "demo", "log_level", "workers"]
    keys += ["log_format", "forwarded_allow_ips"]
    return Settings.from_env(**{k: getattr(args, k, None) for k in keys})


def cmd_serve(args: argparse.Namespace) -> int:
    from livefeed.ops.serve import serve

    return serve(settings_from(args))


@contextlib.contextmanager
def _redis_url(settings: Settings) -> Iterator[str]:
    """The configured Redis, the running embedded one, or a temporary embedded one."""
    if settings.redis_url:
        yield settings.redis_url
        return
    running = owner_url(settings.data_dir.resolve())
    if running:
        yield running
        return
    embedded = EmbeddedRedis(settings.data_dir)
    try:
        yield embedded.start()
    finally:
        embedded.stop()


def which_redis(settings: Settings) -> str:
    """Which Redis a command used, in words, for when it did not find what was asked for."""
    if settings.redis_url:
        return f"the Redis at {settings.redis_url}"
    data_dir = settings.data_dir.resolve()
    if owner_url(data_dir):
        return f"the embedded Redis of the livefeed serving {data_dir}"
    return f"the embedded Redis in {data_dir} (no livefeed is serving it now)"


def _with_store(args: argparse.Namespace, action: Callable[[Store], Awaitable[int]]) -> int:
    settings = settings_from(args)

    async def run(url: str) -> int:
        redis = connect(url, timeout=settings.redis_timeout, pool_size=8)
        try:
            return await action(Store(redis, settings.key_prefix))
        finally:
            await redis.aclose()

    where = which_redis(settings)  # before a temporary embedded Redis takes the data directory
    try:
        with _redis_url(settings) as url:
            return asyncio.run(run(url))
    except NotFound as exc:
        print(f"livefeed: {exc.message} in {where}", file=sys.stderr)
        return 1
    except LivefeedError as exc:
        print(f"livefeed: {exc.message}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        raise
    except (EmbeddedRedisError, RedisError, OSError) as exc:
        print(f"livefeed: cannot reach Redis: {exc}", file=sys.stderr)
        return 1


def cmd_feed_create(args: argparse.Namespace) -> int:
    async def action(store: Store) -> int:
        payload = {
            "slug": args.slug,
            "title": args.title,
            "timezone": args.timezone,
            "language": args.language,
        }
        feed = await store.create_feed(parse_new_feed(payload, now_ms()))
        print(f"created feed {feed.slug} ({feed.timezone}, {feed.language}): /feeds/{feed.slug}")
        return 0

    return _with_store(args, action)


def cmd_feed_list(args: argparse.Namespace) -> int:
    async def action(store: Store) -> int:
        for feed in await store.list_feeds():
            print(f"{feed.slug}\t{feed.timezone}\t{feed.title}")
        return 0

    return _with_store(args, action)


def cmd_token_create(args: argparse.Namespace) -> int:
    async def action(store: Store) -> int:
        token = await store.tokens.create(args.name)
        print(token)
        print(f"(token for editor {args.name!r}; it is shown only this once)", file=sys.stderr)
        return 0

    return _with_store(args, action)


def cmd_token_list(args: argparse.Namespace) -> int:
    async def action(store: Store) -> int:
        for item in await store.tokens.editors():
            print(f"{item['name']}\tcreated {item['created_at']}")
        return 0

    return _with_store(args, action)


def cmd_token_revoke(args: argparse.Namespace) -> int:
    async def action(store: Store) -> int:
        if not await store.tokens.revoke(args.name):
            print(f"livefeed: no token for editor {args.name!r}", file=sys.stderr)
            return 1
        print(f"revoked the token of {args.name}")
        return 0

    return _with_store(args, action)


def cmd_check(args: argparse.Namespace) -> int:
    from livefeed.ops import check

    return check.run(settings_from(args), _redis_url, sys.stdout)


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
        async for lines in export_briefs(store, feed, start_ms, end_ms):
            out.writelines(lines)
            done += len(lines)
            if progress is not None:
                progress(done, max(total, done))
        if done == 0:
            await say_empty(store, feed, what)
        else:
            print(f"exported {done} briefs", file=sys.stderr)
        return 0

    try:
        return _with_store(args, action)
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
                # Line by line: the file itself is never held whole, only what was parsed.
                briefs = parse_import(lines, bounds.last_generated, stop)
                ids = await import_briefs(store, feed, briefs, progress, stop)
            except ImportStopped:
                name = signal.Signals(stop.signum).name
                print("\n" if progress else "", end="", file=sys.stderr)  # end the bar's line
                print(f"livefeed: import stopped by {name}; nothing was imported, the feed is as "
                      "it was", file=sys.stderr)  # fmt: skip
                return 128 + stop.signum
        print(f"imported {len(ids)} briefs into {feed.slug}", file=sys.stderr)
        return 0

    with source as lines:
        return _with_store(args, action)


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

    return _with_store(args, action)


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
    return f"-- {kind} --"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
