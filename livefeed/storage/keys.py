"""Every Redis key livefeed uses, named here once, so storage, scripts and checks agree.

Keys (``P`` is the configured prefix, so several deployments or test runs can share one Redis)::

    P:feeds                       sorted set of feed slugs, scored by creation time
    P:feed:<slug>                 string: the feed as JSON
    P:feed:<slug>:events          stream: one entry per event, fields t (type), d (JSON object)
                                  and p (the id generated before it, "0-0" for the first: a
                                  chain that shows any entry since removed; entries from before
                                  p have none)
    P:feed:<slug>:briefs          hash: brief id -> the brief as it stands (JSON)
    P:feed:<slug>:days            hash: local date -> how many briefs it has
    P:feed:<slug>:history         hash: brief id -> comma-separated ids of its events
    P:feed:<slug>:meta            hash: what editors changed since creation (status, pin...),
                                  and the lead and summary: lead, summary (JSON) and
                                  lead_version, summary_version (counting clears too)
    P:feed:<slug>:key-events      set: ids of the briefs marked as key events
    P:feed:<slug>:by-time         sorted set: live brief ids scored by their ms
    P:feed:<slug>:last-id         string: the stream's last id (cheaper than XINFO per append)
    P:tokens                      hash: editor name -> JSON {"sha256", "created_at"}
    P:token-hashes                hash: sha256 of a token -> editor name
    P:idempotency:<scope>:<key>   hash: fp, result of an Idempotency-Key; expires (TTL)
    P:lease:<name>                string: the holder of a lease (the demo poster); expires
    P:rate:<limit>:<hash of key>  hash: tokens, at of a write rate limit's bucket; expires
    P:demo-token                  string: the demo editor's token, shared by every --demo node
    P:media:<id>                  string: an upload's MediaInfo as JSON (livefeed.storage.media)

The feed's keys from ``events`` to ``last-id`` are the scripts' KEYS, in ``script`` order
(append.lua, bulk.lua, remove.lua). The names are stored data: changing one strands a
deployment's feeds, so they only ever gain new ones. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keys:
    """The key names of one deployment (one prefix): ``Keys(prefix).stream(slug)``."""

    prefix: str = "livefeed"

    @property
    def feeds(self) -> str:
        return f"{self.prefix}:feeds"

    @property
    def tokens(self) -> str:
        return f"{self.prefix}:tokens"

    @property
    def token_hashes(self) -> str:
        return f"{self.prefix}:token-hashes"

    def media(self, media_id: str) -> str:
        return f"{self.prefix}:media:{media_id}"

    def feed(self, slug: str) -> str:
        return f"{self.prefix}:feed:{slug}"

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

    def idempotency(self, scope: str, key: str) -> str:
        return f"{self.prefix}:idempotency:{scope}:{key}"

    def lease(self, name: str) -> str:
        return f"{self.prefix}:lease:{name}"

    def rate(self, limit: str, key: str) -> str:
        """A rate limit's bucket; the key (an address, an editor's name) is hashed to a fixed
        length and so it never needs escaping."""
        return f"{self.prefix}:rate:{limit}:{hashlib.sha256(key.encode()).hexdigest()[:32]}"

    @property
    def demo_token(self) -> str:
        return f"{self.prefix}:demo-token"

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
        ]

    def of_feed(self, slug: str) -> list[str]:
        """Every key that belongs to one feed: its record and the scripts' keys."""
        return [self.feed(slug), *self.script(slug)]
