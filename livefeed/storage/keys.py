"""Every Redis key livefeed uses, named here once, so storage, scripts and checks agree.

Keys (``P`` is the configured prefix, so several deployments or test runs can share one Redis)::

    P:feeds                       sorted set of feed slugs, scored by creation time
    P:feed:{<slug>}               string: the feed as JSON
    P:feed:{<slug>}:events        stream: one entry per event, fields t (type), d (JSON object)
                                  and p (the id generated before it, "0-0" for the first: a
                                  chain that shows any entry since removed; entries from before
                                  p have none)
    P:feed:{<slug>}:briefs        hash: brief id -> the brief as it stands (JSON)
    P:feed:{<slug>}:days          hash: local date -> how many briefs it has
    P:feed:{<slug>}:history       hash: brief id -> comma-separated ids of its events
    P:feed:{<slug>}:meta          hash: what editors changed since creation (status, pin...),
                                  and the lead and summary: lead, summary (JSON) and
                                  lead_version, summary_version (counting clears too)
    P:feed:{<slug>}:key-events    set: ids of the briefs marked as key events
    P:feed:{<slug>}:by-time       sorted set: live brief ids scored by their ms
    P:feed:{<slug>}:last-id       string: the stream's last id (cheaper than XINFO per append)
    P:feed:{<slug>}:by-tag        sorted set, every score 0, read by lex range: the topic index.
                                  Members ``t<tag>\0<id>`` for each tag of each live brief,
                                  ``k\0<id>`` for each key event and ``k<tag>\0<id>`` for each
                                  tag of one; ``<tag>`` is ``model.brief.tag_key`` of the tag,
                                  ``<id>`` the brief's id with ms and seq each zero-padded to 20
                                  digits (lex order is time order). The member ``""`` says the
                                  index covers every brief (``storage.topics``); without it the
                                  index is built before it is read (briefs from before it)
    P:feed:{<slug>}:tags          hash: brief id -> JSON list of its tag keys, as indexed (so a
                                  correction or retraction takes out what went in)
    P:feed:{<slug>}:desk          stream: the editor-only desk events (drafts, review, schedule),
                                  fields t (type) and d (JSON object) as in ``events``; never
                                  read by anything public; never trimmed (desk readers resume)
    P:feed:{<slug>}:drafts        hash: draft id -> the draft as it stands (JSON), discarded too
    P:feed:{<slug>}:draft-history hash: draft id -> comma-separated ids of its desk events
    P:due                         sorted set: "<slug> <draft id> <version>" of each scheduled
                                  draft, scored by its time (ms); a hint the scheduler checks
                                  against the draft, used alone
    P:feed:{<slug>}:editing       sorted set: who is editing what on the desk (presence),
                                  members JSON [item, editor, role, connection], scored by
                                  when each lapses (ms); expires itself when left alone
    P:presence                    pub/sub channel: presence changes of every feed, for every
                                  node's desk sockets
    P:idempotency:{<slug>}:<scope>:<key>
                                  hash: fp, result of an Idempotency-Key; expires (TTL)
    P:idempotency:tokens:<scope>:<key>
                                  string: JSON {"fingerprint", "result"} of a token's creation
                                  through the API with an Idempotency-Key; expires (TTL)
    P:tokens                      hash: editor name -> JSON {"sha256", "created_at", "role"
                                  [, "intent"]}
    P:token-hashes                hash: sha256 of a token -> editor name
    P:lease:<name>                string: the holder of a lease (the demo poster); expires
    P:rate:<limit>:<hash of key>  hash: tokens, at of a write rate limit's bucket; expires
    P:demo-token                  string: the demo editor's token, shared by every --demo node
    P:demo-contributor-token      string: the demo contributor's token, likewise
    P:media:<id>                  string: an upload's MediaInfo as JSON (livefeed.storage.media)
    P:vapid                       string: the deployment's VAPID private key (PEM), made once
                                  (SET NX) unless a setting names one (livefeed.newsroom.push)
    P:push-feeds                  set: slugs of the feeds with push subscriptions
    P:feed:{<slug>}:push          hash: sha256 of an endpoint -> the subscription (JSON)
    P:feed:{<slug>}:pushed:<id>   set: sha256es of the subscriptions event <id> was delivered
                                  to; expires (the sender's record, skipped on resume)
    P:feed:{<slug>}:events        (also) consumer group ``push``: the push sender's reads
    P:nodes                       sorted set: serving processes, scored by when their
                                  heartbeat runs out (ms); ``livefeed migrate`` refuses while
                                  one is current

``{<slug>}`` is a Redis Cluster hash tag: every key of one feed, its idempotency records
included, hashes to the feed's slot, so each feed's scripts (append.lua, bulk.lua, remove.lua,
the feed's creation) run on one shard. The other keys are each used alone, never with another
key in one command or script. The prefix may not hold ``{`` or ``}`` (it would be the tag).

The feed's keys from ``events`` to ``tags`` are the scripts' KEYS, in ``script`` order
(append.lua, bulk.lua, remove.lua). The names are stored data: changing one strands a
deployment's feeds. The layout before hash tags (``P:feed:<slug>...``, ``legacy_of_feed``) is
moved to this one by ``livefeed migrate``. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

SCRIPT_KEYS = 10
"""How many keys ``Keys.script`` gives: the scripts' own; more (an idempotency record, a
draft's keys) follow them."""


@dataclass(frozen=True, slots=True)
class Keys:
    """The key names of one deployment (one prefix): ``Keys(prefix).stream(slug)``."""

    prefix: str = "livefeed"

    def __post_init__(self) -> None:
        if "{" in self.prefix or "}" in self.prefix:
            raise ValueError(f"the key prefix may not hold {{ or }}: {self.prefix!r}")

    @property
    def feeds(self) -> str:
        return f"{self.prefix}:feeds"

    @property
    def tokens(self) -> str:
        return f"{self.prefix}:tokens"

    @property
    def token_hashes(self) -> str:
        return f"{self.prefix}:token-hashes"

    def token_intent(self, scope: str, key: str) -> str:
        """An Idempotency-Key's record for ``POST /api/tokens`` (no hash tag: used alone)."""
        return f"{self.prefix}:idempotency:tokens:{scope}:{key}"

    def media(self, media_id: str) -> str:
        return f"{self.prefix}:media:{media_id}"

    def feed(self, slug: str) -> str:
        return f"{self.prefix}:feed:{{{slug}}}"

    def stream(self, slug: str) -> str:
        return f"{self.feed(slug)}:events"

    def states(self, slug: str) -> str:
        return f"{self.feed(slug)}:briefs"

    def days(self, slug: str) -> str:
        return f"{self.feed(slug)}:days"

    def histories(self, slug: str) -> str:
        return f"{self.feed(slug)}:history"

    def meta(self, slug: str) -> str:
        return f"{self.feed(slug)}:meta"

    def key_events(self, slug: str) -> str:
        return f"{self.feed(slug)}:key-events"

    def time_index(self, slug: str) -> str:
        return f"{self.feed(slug)}:by-time"

    def last_id(self, slug: str) -> str:
        return f"{self.feed(slug)}:last-id"

    def tag_index(self, slug: str) -> str:
        return f"{self.feed(slug)}:by-tag"

    def tags_of(self, slug: str) -> str:
        return f"{self.feed(slug)}:tags"

    def desk(self, slug: str) -> str:
        return f"{self.feed(slug)}:desk"

    def presence(self, slug: str) -> str:
        return f"{self.feed(slug)}:editing"

    @property
    def presence_channel(self) -> str:
        return f"{self.prefix}:presence"

    def drafts(self, slug: str) -> str:
        return f"{self.feed(slug)}:drafts"

    def draft_history(self, slug: str) -> str:
        return f"{self.feed(slug)}:draft-history"

    def desk_keys(self, slug: str) -> list[str]:
        """The keys drafts.lua is given, and append.lua after its own when it publishes a draft."""
        return [self.drafts(slug), self.desk(slug), self.draft_history(slug)]

    @property
    def due(self) -> str:
        return f"{self.prefix}:due"

    def idempotency(self, slug: str, scope: str, key: str) -> str:
        """The record of an Idempotency-Key used on ``slug``: in the feed's slot, so the
        feed's scripts take it as a key."""
        return f"{self.prefix}:idempotency:{{{slug}}}:{scope}:{key}"

    def lease(self, name: str) -> str:
        return f"{self.prefix}:lease:{name}"

    def rate(self, limit: str, key: str) -> str:
        """A rate limit's bucket; the key (an address, an editor's name) is hashed to a fixed
        length and so it never needs escaping."""
        return f"{self.prefix}:rate:{limit}:{hashlib.sha256(key.encode()).hexdigest()[:32]}"

    @property
    def demo_token(self) -> str:
        return f"{self.prefix}:demo-token"

    @property
    def demo_contributor_token(self) -> str:
        return f"{self.prefix}:demo-contributor-token"

    @property
    def vapid(self) -> str:
        return f"{self.prefix}:vapid"

    @property
    def push_feeds(self) -> str:
        return f"{self.prefix}:push-feeds"

    def push(self, slug: str) -> str:
        return f"{self.feed(slug)}:push"

    def pushed(self, slug: str, event_id: str) -> str:
        return f"{self.feed(slug)}:pushed:{event_id}"

    @property
    def nodes(self) -> str:
        return f"{self.prefix}:nodes"

    def script(self, slug: str) -> list[str]:
        """The keys append.lua, bulk.lua and remove.lua are given, in their order."""
        return [
            self.stream(slug),
            self.states(slug),
            self.days(slug),
            self.histories(slug),
            self.meta(slug),
            self.key_events(slug),
            self.time_index(slug),
            self.last_id(slug),
            self.tag_index(slug),
            self.tags_of(slug),
        ]

    def of_feed(self, slug: str) -> list[str]:
        """Every key that belongs to one feed: its record and the scripts' keys."""
        return [self.feed(slug), *self.script(slug)]


def legacy_of_feed(prefix: str, slug: str) -> list[str]:
    """The names ``Keys(prefix).of_feed(slug)`` had before hash tags, in the same order:
    ``P:feed:<slug>``, ``P:feed:<slug>:events``... (what ``livefeed migrate`` moves)."""
    record = f"{prefix}:feed:{slug}"
    suffixes = ("events", "briefs", "days", "history", "meta", "key-events", "by-time", "last-id",
                "by-tag", "tags")  # fmt: skip
    return [record, *(f"{record}:{suffix}" for suffix in suffixes)]
