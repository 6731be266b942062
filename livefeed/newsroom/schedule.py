"""The scheduler: publishes scheduled drafts when they are due, in exactly one process.

Every serving process runs it (a lifespan job), but only the holder of the ``scheduler`` lease
(under a second, renewed on every turn) publishes; when that process dies another takes over
once the lease runs out, within ``LEASE_MS``. It reads the due index (``Keys.due``) four times
a second, so a draft goes out within a second of its time, even when its holder has just died.
Each publish is checked against the draft in the same step as the brief's append
(``drafts.publish``), so two
holders at once (a paused process waking), a retry after a crash, or an editor publishing by
hand at the same moment all make one brief. A draft whose feed has ended, or that is no longer a
brief-to-be (its media gone, its headline empty), goes back to submitted with
``draft_schedule_failed`` and the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets

from livefeed.errors import Conflict, NotFound, PreconditionFailed, ValidationFailed
from livefeed.model.embed import Embed, EmbedRef
from livefeed.newsroom import drafts
from livefeed.newsroom.drafts import Resolve
from livefeed.storage.drafts import parse_due
from livefeed.storage.store import Store

log = logging.getLogger("livefeed.schedule")

LEASE = "scheduler"
LEASE_MS = 750
"""How long the lease lasts unrenewed: about the longest a due draft waits when its holder
dies. Short is safe: two holders at once still publish each draft once."""
POLL_S = 0.25
RENEW_S = POLL_S
QUIET_S = 10.0
"""While Redis keeps failing, the scheduler says so once per this many seconds."""
BATCH = 50
"""Due drafts taken per look; more wait for the next one, a quarter second later."""


async def run(store: Store, resolve: Resolve, holder: str | None = None) -> None:
    """Hold the lease when free and publish due drafts while holding it, until cancelled;
    a Redis error costs a turn, never the loop."""
    holder = holder or f"{os.getpid()}-{secrets.token_hex(4)}"
    loop = asyncio.get_running_loop()
    held, next_renew, quiet_until = False, 0.0, 0.0
    while True:
        try:
            if loop.time() >= next_renew:
                next_renew = loop.time() + RENEW_S
                held = await store.hold_lease(LEASE, holder, LEASE_MS)
            if held:
                await publish_due(store, resolve)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # Redis down or failing over: try again on the next turn
            if loop.time() >= quiet_until:  # one line per QUIET_S, not four a second
                log.warning("scheduler turn failed (%s); retrying", exc)
                quiet_until = loop.time() + QUIET_S
        await asyncio.sleep(POLL_S)


async def publish_due(store: Store, resolve: Resolve) -> int:
    """Publish (or fail, saying why) every draft due now; returns how many were published."""
    published = 0
    for member in await store.drafts.due(await store.now_ms(), BATCH):
        if await _publish_one(store, resolve, member):
            published += 1
        await store.drafts.drop_due(member)
    return published


async def _publish_one(store: Store, resolve: Resolve, member: str) -> bool:
    slug, draft_id, version = parse_due(member)
    draft = await store.drafts.get(slug, draft_id)
    feed = await store.get_feed(slug)
    if draft is None or feed is None or draft.status != "scheduled" or draft.version != version:
        return False  # unscheduled, rescheduled (another member) or published: a stale hint
    actor = drafts._scheduler_actor(draft)
    try:
        await drafts.publish(store, feed, draft_id, actor, resolve, scheduled_version=version)
        return True
    except (NotFound, PreconditionFailed):
        return False  # changed since it was read: its new state has its own member, if any
    except Conflict as exc:
        if exc.code != "feed_ended":
            return False  # published by hand at the same moment
        reason = "feed_ended"
    except ValidationFailed as exc:
        reason = exc.code  # no longer a valid brief: its headline empty, an upload gone
    with contextlib.suppress(NotFound, PreconditionFailed, Conflict):
        await drafts.schedule_failed(store, feed, draft, reason)
    log.info("scheduled draft %s of %s not published: %s", draft_id, slug, reason)
    return False


def no_embeds() -> Resolve:
    """A resolver for drafts without embeds, or where none can be fetched (tests, CLI)."""

    async def resolve(refs: tuple[EmbedRef, ...] | None) -> tuple[Embed, ...]:
        return ()

    return resolve
