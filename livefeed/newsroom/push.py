"""The push sender: web push notifications for new briefs, one sender per event across every
worker and node.

Every serving process runs ``Sender.run``. For each feed with subscriptions it reads new
entries of the feed's events stream through the consumer group ``push`` (storage/push.py), so
each entry is handled by one process; handled, it is acknowledged. An entry whose handler died
(a crash, a SIGKILL) stays pending and is claimed by any process after ``push_claim_idle``
seconds; so is one with a failed send, retried until it is older than ``push_ttl``.

Who is notified of an entry:

- a brief published with ``notify: true`` (a breaking alert): every follower, urgency high;
- a key event (published as one, or a correction that makes a brief one): every follower;
- any other new brief: followers of ``all``, while the feed's cap allows
  (``push_update_rate``/``push_update_burst``, a token bucket shared by every node); over
  it, nobody. Corrections otherwise, retractions, pins and imports notify nobody.

Each delivery the push service took (201) is recorded per event before the entry is
acknowledged, and skipped when the entry is handled again: a subscription gets an event at
least once and, but for a crash between the push service's 201 and that record, once. The
notification's ``tag`` is the event id, so even that resend replaces the first on the device.
An endpoint answering 404 or 410 is gone and its subscription is removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from livefeed.config import Settings
from livefeed.errors import LivefeedException, TooManyRequests, ValidationFailed
from livefeed.metrics import PUSH_FAILED, PUSH_REMOVED, PUSH_SENT
from livefeed.model.ids import StreamId
from livefeed.model.push import Subscription, notification
from livefeed.outbound.fetch import FetchFailed, Policy
from livefeed.outbound.webpush import Message, Signer, new_private_key, send
from livefeed.storage.cluster import UNAVAILABLE
from livefeed.storage.entries import Entry
from livefeed.storage.push import PushStore
from livefeed.storage.ratelimit import SharedRateLimiter
from livefeed.storage.store import Store

log = logging.getLogger("livefeed.push")
_UNAVAILABLE: tuple[type[Exception], ...] = (*UNAVAILABLE, OSError)

BATCH = 50
"""Entries read (or claimed) per feed per round."""
CONCURRENT_SENDS = 16
"""Requests to push services in flight at once, per process."""
IMPORT_EDITOR = "import"
"""The editor an import's events carry: imported history notifies nobody."""
DEFAULT_SUBJECT = "mailto:webpush@localhost"


@dataclass(frozen=True)
class Audience:
    """Who an entry notifies: ``everyone`` (key events, alerts) or ``all`` followers only."""

    everyone: bool
    breaking: bool = False


async def load_signer(settings: Settings, push: PushStore) -> Signer:
    """The deployment's VAPID key: ``vapid_private_key`` (PEM), else the file
    ``vapid_private_key_file``, else the one in Redis, made by the first node to need it."""
    pem = settings.vapid_private_key.replace("\\n", "\n").strip()
    if not pem and settings.vapid_private_key_file:
        pem = (await asyncio.to_thread(Path(settings.vapid_private_key_file).read_text)).strip()
    if not pem:
        pem = await push.vapid_key(new_private_key())
    subject = settings.vapid_subject or _subject_of(settings.public_url)
    return Signer(pem, subject)


class Signers:
    """The deployment's Signer, loaded on first use (``load_signer``) and kept."""

    def __init__(self, settings: Settings, push: PushStore) -> None:
        self._settings = settings
        self._push = push
        self._signer: Signer | None = None
        self._lock = asyncio.Lock()

    async def __call__(self) -> Signer:
        async with self._lock:
            if self._signer is None:
                self._signer = await load_signer(self._settings, self._push)
            return self._signer


def _subject_of(public_url: str) -> str:
    return public_url if public_url.startswith("https://") else DEFAULT_SUBJECT


def check_subject(subject: str) -> None:
    """``LIVEFEED_VAPID_SUBJECT`` is empty or a mailto: or https: URL (RFC 8292 2.1)."""
    if subject and not subject.startswith(("mailto:", "https://")):
        raise ValueError(f"LIVEFEED_VAPID_SUBJECT must be mailto:… or https://…, not {subject!r}")


class Sender:
    """This process's consumer of the ``push`` groups (see the module docstring)."""

    def __init__(
        self, store: Store, push: PushStore, signers: Signers, settings: Settings, consumer: str
    ) -> None:
        self.store = store
        self.push = push
        self.signers = signers
        self.consumer = consumer
        self.ttl = settings.push_ttl
        self.idle_ms = int(settings.push_claim_idle * 1000)
        self.poll = settings.push_poll_interval
        self.policy = Policy(
            allow_http=settings.push_test_loopback,
            allow_loopback=settings.push_test_loopback,
            timeout=settings.push_timeout,
            max_bytes=64 * 1024,
        )
        self.cap = SharedRateLimiter(
            store.redis, store.keys, "push-updates",
            settings.push_update_rate, settings.push_update_burst,
        )  # fmt: skip
        self._slots = asyncio.Semaphore(CONCURRENT_SENDS)
        self._grouped: set[str] = set()

    async def run(self) -> None:
        """Handle new and abandoned entries of every followed feed until cancelled."""
        while True:
            try:
                for feed in await self.push.feeds():
                    await self.round(feed)
            except _UNAVAILABLE as exc:
                log.warning("push sender: Redis unavailable (%s); retrying", type(exc).__name__)
                self._grouped.clear()
            except Exception:
                log.exception("push sender failed a round; retrying")
                self._grouped.clear()
            await asyncio.sleep(self.poll)

    async def round(self, feed: str) -> None:
        """Claim the feed's abandoned entries, read its new ones, handle each."""
        if feed not in self._grouped:
            await self.push.ensure_group(feed)
            self._grouped.add(feed)
        entries = await self.push.claim(feed, self.consumer, self.idle_ms, BATCH)
        entries += await self.push.read(feed, self.consumer, BATCH)
        for entry in entries:
            keeper = asyncio.create_task(self._keep(feed, str(entry.id)))
            try:
                done = await self.handle(feed, entry)
            finally:
                keeper.cancel()
            expired = time.time() * 1000 - entry.id.ms > self.ttl * 1000
            if done or expired:
                await self.push.ack(feed, str(entry.id))

    async def _keep(self, feed: str, entry_id: str) -> None:
        """Hold on to an entry being handled (its idle time reset) so no other process claims
        it while a large batch of sends is still going."""
        while True:
            await asyncio.sleep(self.idle_ms / 3000)
            with contextlib.suppress(*_UNAVAILABLE):
                await self.push.hold(feed, self.consumer, entry_id)

    async def handle(self, feed: str, entry: Entry) -> bool:
        """Send ``entry``'s notifications; whether every one was taken (or needs no retry)."""
        audience = await self.audience(feed, entry)
        if audience is None:
            return True
        subscriptions = await self.push.subscriptions(feed)
        delivered = await self.push.delivered(feed, str(entry.id))
        brief = entry.payload()["brief"]
        message = Message(
            notification(feed, brief, str(entry.id), audience.breaking),
            topic=str(entry.id).replace("-", "_")[:32],
            ttl=self.ttl,
            urgency="high" if audience.breaking else "normal",
        )
        targets = [
            (sid, sub) for sid, sub in subscriptions.items()
            if sid not in delivered and (audience.everyone or sub.mode == "all")
        ]  # fmt: skip
        results = await asyncio.gather(
            *(self._deliver(feed, str(entry.id), sid, sub, message) for sid, sub in targets)
        )
        return all(results)

    async def audience(self, feed: str, entry: Entry) -> Audience | None:
        payload = entry.payload()
        if payload.get("editor") == IMPORT_EDITOR:
            return None
        if entry.type == "brief":
            if payload.get("notify"):
                return Audience(everyone=True, breaking=True)
            if payload["brief"].get("key_event"):
                return Audience(everyone=True)
            if await self.push.delivered(feed, str(entry.id)):
                return Audience(everyone=False)  # a resumed entry: the cap let it through
            try:
                await self.cap.check(feed, "notifications of updates")
            except TooManyRequests:
                return None
            return Audience(everyone=False)
        marks = entry.type == "brief_updated" and payload["brief"].get("key_event")
        if marks and await self._newly_key_event(feed, entry):
            return Audience(everyone=True)
        return None

    async def _newly_key_event(self, feed: str, entry: Entry) -> bool:
        """Whether the correction ``entry`` made its brief a key event (it was none before)."""
        history = await self.store.history(feed, StreamId.parse(payload_id(entry)))
        before = [e for e in history if e.id < entry.id and e.type != "brief_deleted"]
        return not before or not before[-1].payload()["brief"].get("key_event")

    async def _deliver(
        self, feed: str, event_id: str, sid: str, sub: Subscription, message: Message
    ) -> bool:
        """One message; False when it should be retried."""
        async with self._slots:  # the record too: a full set of slots means all are written
            try:
                status = await send(sub, message, await self.signers(), self.policy)
            except (FetchFailed, ValidationFailed) as exc:
                PUSH_FAILED.inc()
                log.info("push to a %s subscription failed: %s", feed, type(exc).__name__)
                return isinstance(exc, ValidationFailed)  # a refused address never improves
            except (LivefeedException, ValueError) as exc:
                PUSH_FAILED.inc()
                log.info("push to a %s subscription failed: %s", feed, type(exc).__name__)
                return True
            if status == 201:
                await self.push.mark_delivered(feed, event_id, sid)
                PUSH_SENT.inc()
                return True
        if status in (404, 410):
            with contextlib.suppress(*UNAVAILABLE):
                await self.push.unsubscribe(feed, sid)
            PUSH_REMOVED.inc()
            return True
        PUSH_FAILED.inc()
        log.info("push to a %s subscription answered %d", feed, status)
        return status < 500 and status != 429  # 4xx but these: the request itself is wrong


def payload_id(entry: Entry) -> str:
    """The id of the brief a brief event is about."""
    return str(entry.payload()["brief"]["id"])
