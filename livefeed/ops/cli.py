"""The ``livefeed`` command: serve the app, manage feeds and editor tokens.

Every flag falls back to a ``LIVEFEED_*`` environment variable (see ``config.Settings``). Without
``--redis-url`` the commands use an embedded redis-server under ``--data-dir``: ``serve`` starts and
owns it; the other commands use the one a running ``serve`` owns, or start one for their duration.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from livefeed.model.feed import parse_new_feed
from livefeed.model.ids import now_ms
from livefeed.model.roles import ROLES, Role
from livefeed.ops.history import cmd_export, cmd_import, cmd_replay
from livefeed.ops.runner import redis_url, settings_from, with_store
from livefeed.storage.store import Store


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
    redis_opts.add_argument(
        "--media-dir",
        help="uploaded images and audio (env LIVEFEED_MEDIA_DIR; default <data-dir>/media)",
    )

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
    tcreate.add_argument(
        "--role",
        choices=ROLES,
        default=Role.EDITOR.value,
        help="contributor (drafts only), editor (publishes; the default) or admin (also tokens "
        "and the audit)",
    )
    tcreate.set_defaults(func=cmd_token_create)
    trole = token_sub.add_parser(
        "role", parents=[redis_opts], help="change a token's role, at once on every node"
    )
    trole.add_argument("name", help="the editor whose role changes")
    trole.add_argument("role", choices=ROLES, help="the new role")
    trole.set_defaults(func=cmd_token_role)
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
    export.add_argument(
        "--with-media",
        action="store_true",
        help="write a tar archive: the JSON Lines and the files of the media they name, "
        "for import on another installation",
    )
    export.add_argument(
        "--audit",
        action="store_true",
        help="end with the desk's audit (who wrote, submitted, scheduled and published each "
        'draft), one {"audit": ...} line per action, oldest first; import skips them',
    )
    export.set_defaults(func=cmd_export)

    imp = sub.add_parser(
        "import",
        parents=[redis_opts],
        help="append briefs from JSON Lines at their original times (all or nothing)",
    )
    imp.add_argument("feed", help="the feed's slug; it must exist")
    imp.add_argument(
        "file", help="a .jsonl file or an export --with-media archive, or - for standard input"
    )
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
    migrate = sub.add_parser(
        "migrate",
        parents=[redis_opts],
        help="move feeds' keys to the layout with hash tags (needed once; stop every node first)",
        description="Move every feed's Redis keys from the layout before hash tags "
        "(prefix:feed:SLUG...) to the current one (prefix:feed:{SLUG}...), which Redis Cluster "
        "needs and serve expects. Safe to run again, or after a crash midway. Refused (exit "
        "status 1) while a livefeed node serves this Redis and key prefix. Then builds the topic "
        "index (tag pages, key-event filters) of feeds written before it.",
    )
    migrate.set_defaults(func=cmd_migrate)
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


def cmd_serve(args: argparse.Namespace) -> int:
    from livefeed.ops.serve import serve

    return serve(settings_from(args))


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

    return with_store(args, action)


def cmd_feed_list(args: argparse.Namespace) -> int:
    async def action(store: Store) -> int:
        for feed in await store.list_feeds():
            print(f"{feed.slug}\t{feed.timezone}\t{feed.title}")
        return 0

    return with_store(args, action)


def cmd_token_create(args: argparse.Namespace) -> int:
    async def action(store: Store) -> int:
        token = await store.tokens.create(args.name, args.role)
        print(token)
        print(f"({args.role} token for {args.name!r}; it is shown only this once)", file=sys.stderr)
        return 0

    return with_store(args, action)


def cmd_token_list(args: argparse.Namespace) -> int:
    async def action(store: Store) -> int:
        for item in await store.tokens.editors():
            print(f"{item['name']}\t{item['role']}\tcreated {item['created_at']}")
        return 0

    return with_store(args, action)


def cmd_token_role(args: argparse.Namespace) -> int:
    async def action(store: Store) -> int:
        if not await store.tokens.set_role(args.name, args.role):
            print(f"livefeed: no token for editor {args.name!r}", file=sys.stderr)
            return 1
        print(f"{args.name} is now {'an' if args.role[0] in 'aeiou' else 'a'} {args.role}")
        return 0

    return with_store(args, action)


def cmd_token_revoke(args: argparse.Namespace) -> int:
    async def action(store: Store) -> int:
        if not await store.tokens.revoke(args.name):
            print(f"livefeed: no token for editor {args.name!r}", file=sys.stderr)
            return 1
        print(f"revoked the token of {args.name}")
        return 0

    return with_store(args, action)


def cmd_check(args: argparse.Namespace) -> int:
    from livefeed.ops import check

    return check.run(settings_from(args), redis_url, sys.stdout)


def cmd_migrate(args: argparse.Namespace) -> int:
    from livefeed.storage import layout

    async def action(store: Store) -> int:
        serving = await layout.serving_nodes(store)
        if serving:
            print(
                f"livefeed: refused: {len(serving)} livefeed process(es) serve this Redis now "
                f"({', '.join(serving[:3])}); stop them all, then run migrate again",
                file=sys.stderr,
            )
            return 1
        old = await layout.legacy_feeds(store)
        moved = 0
        for slug in old:
            moved += await layout.migrate_feed(store, slug)
            print(f"moved feed {slug}")
        print(f"migrate: {len(old)} feed(s), {moved} key(s) moved; the layout is current")
        indexed = await layout.index_topics(store)
        print(f"migrate: topic index built for {len(indexed)} feed(s)")
        return 0

    return with_store(args, action)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
