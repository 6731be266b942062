"""What the desk does with drafts: write, submit, send back, schedule, publish, discard.

Every change is checked against the draft as it stands (its status, its version, whose it is)
and written with its desk event in one step (``storage.drafts``); a change based on a version
that has moved on is refused (If-Match) or re-applied on the newer one. Publishing a draft is a
normal publish whose append also marks the draft published (append.lua), so however often it
is retried, by a client or by the scheduler, the draft becomes at most one brief. Who may do
what is ``model.roles``': this module only asks it whether an actor may review.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec

from livefeed.errors import Conflict, Forbidden, NotFound, PreconditionFailed
from livefeed.model.brief import Brief
from livefeed.model.draft import (
    CONTENT_FIELDS,
    DeskBy,
    Draft,
    DraftFields,
    as_new_brief,
    content,
    desk_payload,
    parse_at,
    parse_fields,
)
from livefeed.model.embed import Embed, EmbedRef
from livefeed.model.feed import Feed
from livefeed.model.ids import iso_ms
from livefeed.model.roles import ROLES, Action, Actor, Role, allowed
from livefeed.newsroom import actions
from livefeed.storage.append import AT, ID, Append, template
from livefeed.storage.idempotency import Intent
from livefeed.storage.keys import SCRIPT_KEYS
from livefeed.storage.store import Store

Resolve = Callable[[tuple[EmbedRef, ...] | None], Awaitable[tuple[Embed, ...]]]
"""Turns a draft's embeds into snapshots as it is published (``http.embeds.resolve``)."""

_ATTEMPTS = 5
OPEN = ("draft", "submitted")
"""Where a writer may still edit or discard their own draft."""
UNPUBLISHED = ("draft", "submitted", "scheduled")


def may_review(actor: Actor) -> bool:
    return allowed(actor.role, Action.REVIEW)


def by(actor: Actor) -> DeskBy:
    return DeskBy(actor.name, str(actor.role))


async def require(store: Store, feed: Feed, draft_id: str, actor: Actor) -> Draft:
    """The draft, if the actor may see it: its owner, or anyone who may review."""
    draft = await store.drafts.get(feed.slug, draft_id)
    if draft is None:
        raise NotFound(f"no draft {draft_id!r} in {feed.slug}", code="draft_not_found")
    if draft.owner != actor.name and not may_review(actor):
        raise Forbidden("this draft is someone else's", code="not_your_draft")
    return draft


async def listed(store: Store, feed: Feed, actor: Actor, status: str | None) -> list[Draft]:
    """The feed's drafts the actor may see (their own; a reviewer's, all), newest change first;
    discarded ones only for the audit."""
    drafts = [
        d for d in await store.drafts.all(feed.slug)
        if d.status != "discarded" and (status is None or d.status == status)
        and (d.owner == actor.name or may_review(actor))
    ]  # fmt: skip
    return sorted(drafts, key=lambda d: d.updated_at, reverse=True)


async def create(
    store: Store, feed: Feed, fields: DraftFields, actor: Actor, intent: Intent | None
) -> Draft:
    """A new draft of the actor's, its byline theirs unless it names another."""
    at = iso_ms(await store.now_ms())
    values = content(fields)
    values["author"] = values.get("author") or actor.name
    draft = msgspec.convert(
        {**values, "id": secrets.token_hex(6), "feed": feed.slug, "owner": actor.name,
         "created_at": at, "updated_at": at},
        Draft,
    )  # fmt: skip
    event = desk_payload(draft, by(actor), at)
    await store.drafts.change(draft, "draft_saved", event, version=None, create=True,
                              intent=intent)  # fmt: skip
    return draft


Build = Callable[[Draft, str], dict[str, Any]]
"""A change: the fields it sets, given the draft as it stands and the time."""


async def change(
    store: Store,
    feed: Feed,
    draft_id: str,
    actor: Actor,
    event_type: str,
    build: Build,
    *,
    statuses: Sequence[str],
    owner_statuses: Sequence[str] = (),
    expected: int | None = None,
    intent: Intent | None = None,
    extra: dict[str, Any] | None = None,
    owner_only: bool = False,
) -> Draft:
    """Apply one change to a draft in ``statuses`` (``owner_statuses``: those where its owner
    who may not review may make it; ``owner_only``: no one else may), Conflict
    ``draft_not_editable`` in any other. A change that leaves it scheduled enters the due
    index first (a hint the scheduler checks), and leaves it again if the change is refused."""
    for _ in range(_ATTEMPTS):
        current = await require(store, feed, draft_id, actor)
        if owner_only and current.owner != actor.name:
            raise Forbidden("only the draft's writer may do this", code="not_your_draft")
        allowed_here = statuses if may_review(actor) else owner_statuses
        if current.status not in allowed_here:
            raise Conflict(f"the draft is {current.status}: this cannot be done to it now",
                           code="draft_not_editable")  # fmt: skip
        if expected is not None and current.version != expected:
            raise _stale(current.version)
        at = iso_ms(await store.now_ms())
        new = msgspec.structs.replace(
            current, **build(current, at), version=current.version + 1, updated_at=at
        )
        member = None
        if new.status == "scheduled" and new.scheduled_for is not None:
            member = await store.drafts.add_due(feed.slug, new.id, new.version,
                                                _ms(new.scheduled_for))  # fmt: skip
        event = desk_payload(new, by(actor), at, **(extra or {}))
        try:
            await store.drafts.change(new, event_type, event, version=current.version,
                                      statuses=allowed_here, intent=intent)  # fmt: skip
        except PreconditionFailed as exc:
            if member is not None:
                await store.drafts.drop_due(member)
            if expected is not None:
                raise _stale(exc.current_version) from None
            continue
        except BaseException:
            if member is not None:
                await store.drafts.drop_due(member)
            raise
        return new
    raise Conflict("the draft keeps changing; try again", code="busy")


async def publish(
    store: Store,
    feed: Feed,
    draft_id: str,
    actor: Actor,
    resolve: Resolve,
    intent: Intent | None = None,
    *,
    scheduled_version: int | None = None,
) -> tuple[Brief, Draft]:
    """Publish the draft now as a brief (validated as one: 422 with a brief's codes), and mark
    it published in the same append. ``scheduled_version``: the scheduler's publish, only of a
    draft still scheduled at that version, in the name of who scheduled it."""
    current = await require(store, feed, draft_id, actor)
    statuses = UNPUBLISHED if scheduled_version is None else ("scheduled",)
    if current.status not in statuses:
        raise Conflict(f"the draft is {current.status}: it cannot be published now",
                       code="draft_not_editable")  # fmt: skip
    brief_draft = as_new_brief(current)
    brief_draft.media = await store.media.resolve(brief_draft.media)
    embeds = await resolve(brief_draft.embeds)
    scheduled = scheduled_version is not None and current.scheduled_by is not None
    publisher = current.scheduled_by if scheduled and current.scheduled_by else by(actor)
    new = msgspec.structs.replace(
        current, status="published", brief=ID, version=current.version + 1, updated_at=AT,
        published_by=publisher.name,
    )  # fmt: skip
    extra = {"scheduled": True} if scheduled_version is not None else {}
    event = desk_payload(new, publisher, AT, brief=ID, owner=current.owner, **extra)
    state_chunks, state_markers = template(msgspec.to_builtins(new))
    event_chunks, event_markers = template(event)

    def extend(change: Append) -> Append:
        guard = {
            "k": SCRIPT_KEYS + 1 + (change.intent is not None), "id": current.id,
            "version": scheduled_version or current.version, "statuses": list(statuses),
            "markers": state_markers, "chunks": [c.decode() for c in state_chunks],
            "emarkers": event_markers, "echunks": [c.decode() for c in event_chunks],
        }  # fmt: skip
        result = {"brief": change.result, "draft": msgspec.to_builtins(new)}
        params = {**change.params, "draft": guard}
        keys = tuple(store.keys.desk_keys(feed.slug))
        return dataclasses.replace(change, params=params, result=result, keys=keys)

    try:
        brief = await actions.publish(
            store, feed, brief_draft, publisher.name, intent, embeds=embeds, extend=extend
        )
    except PreconditionFailed as exc:
        raise _stale(exc.current_version) from None
    return brief, msgspec.structs.replace(new, brief=brief.id, updated_at=brief.published_at)


def _stale(version: int) -> PreconditionFailed:
    return PreconditionFailed(
        f"the draft has changed: it is at version {version} now", current_version=version
    )


def _ms(instant: str) -> int:
    return parse_at(instant)


async def edit(
    store: Store,
    feed: Feed,
    draft_id: str,
    payload: Any,
    expected: int | None,
    actor: Actor,
    intent: Intent | None,
    *,
    sanitize: Callable[[str], Awaitable[str]],
) -> Draft:
    """Change a draft's fields (only those sent, each applied to the draft as it stands when
    the change is made); its owner while it is a draft or submitted, a reviewer until it is
    published. ``sanitize`` cleans a body sent, once."""
    current = await require(store, feed, draft_id, actor)
    parse_fields(payload, content(current))  # refused before anything is written
    body = await sanitize(payload["body"]) if "body" in payload else None

    def fields(draft: Draft, at: str) -> dict[str, Any]:
        # The fields as structs (media and embeds too), not as JSON: the draft is rebuilt
        # from them and its checks take structs.
        edited = parse_fields(payload, content(draft))
        values = {name: getattr(edited, name) for name in CONTENT_FIELDS}
        values["author"] = values.get("author") or draft.owner
        if body is not None:
            values["body"] = body
        return values

    return await change(store, feed, draft_id, actor, "draft_saved", fields,
                        statuses=UNPUBLISHED, owner_statuses=OPEN, expected=expected,
                        intent=intent)  # fmt: skip


async def submit(
    store: Store, feed: Feed, draft_id: str, actor: Actor, intent: Intent | None
) -> Draft:
    """The writer submits their draft for review."""
    return await change(store, feed, draft_id, actor, "draft_submitted",
                        lambda d, at: {"status": "submitted", "submitted_at": at},
                        statuses=("draft",), owner_statuses=("draft",), owner_only=True,
                        intent=intent)  # fmt: skip


async def send_back(
    store: Store, feed: Feed, draft_id: str, note: str, actor: Actor, intent: Intent | None
) -> Draft:
    """A reviewer returns a submitted (or scheduled) draft to its writer with a note."""
    return await change(store, feed, draft_id, actor, "draft_sent_back",
                        lambda d, at: {"status": "draft", "note": note, "scheduled_for": None,
                                       "scheduled_by": None},
                        statuses=("submitted", "scheduled"), intent=intent)  # fmt: skip


async def schedule(
    store: Store, feed: Feed, draft_id: str, at_ms: int, actor: Actor, intent: Intent | None
) -> Draft:
    """A reviewer schedules the draft (again, if it was) for ``at_ms``; the lease holder's
    scheduler publishes it then (``newsroom.schedule``)."""
    if feed.status == "ended":
        raise Conflict("coverage of this feed has ended; reopen it first", code="feed_ended")
    return await change(store, feed, draft_id, actor, "draft_scheduled",
                        lambda d, at: {"status": "scheduled", "scheduled_for": iso_ms(at_ms),
                                       "scheduled_by": by(actor)},
                        statuses=UNPUBLISHED, intent=intent)  # fmt: skip


async def unschedule(
    store: Store, feed: Feed, draft_id: str, actor: Actor, intent: Intent | None
) -> Draft:
    """A scheduled draft goes back to the review queue (submitted)."""
    return await change(store, feed, draft_id, actor, "draft_unscheduled",
                        lambda d, at: {"status": "submitted", "scheduled_for": None,
                                       "scheduled_by": None},
                        statuses=("scheduled",), intent=intent)  # fmt: skip


async def discard(
    store: Store, feed: Feed, draft_id: str, actor: Actor, intent: Intent | None
) -> Draft:
    """The draft leaves the lists; it stays stored for the audit."""
    return await change(store, feed, draft_id, actor, "draft_discarded",
                        lambda d, at: {"status": "discarded", "scheduled_for": None},
                        statuses=UNPUBLISHED, owner_statuses=OPEN, intent=intent)  # fmt: skip


async def schedule_failed(store: Store, feed: Feed, draft: Draft, reason: str) -> Draft:
    """A scheduled draft that could not go out goes back to submitted; the desk is told why,
    in the name of who scheduled it."""
    actor = _scheduler_actor(draft)
    return await change(store, feed, draft.id, actor, "draft_schedule_failed",
                        lambda d, at: {"status": "submitted", "scheduled_for": None,
                                       "scheduled_by": None},
                        statuses=("scheduled",), expected=draft.version,
                        extra={"reason": reason})  # fmt: skip


def _scheduler_actor(draft: Draft) -> Actor:
    """Who the scheduler acts for: the editor who scheduled the draft."""
    scheduled = draft.scheduled_by or DeskBy(draft.owner, "editor")
    return Actor(scheduled.name, Role(scheduled.role) if scheduled.role in ROLES else Role.EDITOR)
