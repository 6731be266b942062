"""The reader page's "Follow this live blog" in headless Chromium: the service worker
registers at /sw.js, and following, unfollowing and their failures are reported.

Headless Chromium cannot reach a browser vendor's push service (Chrome's FCM), so a real
``pushManager.subscribe`` fails here: one test checks that the page says so. Another stands in
for that one call with a subscription whose endpoint is the suite's loopback push service
(keys the test holds), and checks everything around it: the POST, the stored subscription, a
message the sender encrypts for it, and unfollowing.
"""

from __future__ import annotations

import json

import httpx
import pytest
import redis
from playwright.sync_api import Browser, Page, expect

from helpers import (
    LivefeedServer,
    PushBrowser,
    PushService,
    RedisProcess,
    make_feed,
    publish,
    wait_until,
)
from livefeed.storage.keys import Keys

pytestmark = pytest.mark.browser

# Replaces only the vendor's part: getSubscription/subscribe answer a subscription with the
# test's endpoint and keys (window.__subscription), as a browser's PushSubscription would.
STAND_IN = """
PushManager.prototype.getSubscription = async function () { return null; };
PushManager.prototype.subscribe = async function () {
  const json = window.__subscription;
  return { endpoint: json.endpoint, toJSON: () => json };
};
"""


@pytest.fixture
def slug(push_server: LivefeedServer) -> str:
    with httpx.Client(base_url=push_server.base, timeout=10) as client:
        return make_feed(client)


def open_page(
    browser: Browser, server: LivefeedServer, slug: str, *, granted: bool, script: str = ""
) -> tuple[Page, list[str]]:
    context = browser.new_context(base_url=server.base)
    if granted:
        context.grant_permissions(["notifications"], origin=server.base)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    if script:
        page.add_init_script(script)
    page.goto(f"/feeds/{slug}")
    return page, errors


def stored(redis_server: RedisProcess, server: LivefeedServer, slug: str) -> int:
    rdb = redis.Redis.from_url(redis_server.url)
    try:
        return int(rdb.hlen(Keys(server.prefix).push(slug)))
    finally:
        rdb.close()


def test_the_worker_registers_and_a_failed_subscribe_is_reported(
    browser: Browser, push_server: LivefeedServer, redis_server: RedisProcess, slug: str
) -> None:
    """The control appears, /sw.js registers with scope /, and a subscribe the browser's push
    service refuses (unreachable from headless Chromium) says so and stores nothing."""
    page, errors = open_page(browser, push_server, slug, granted=True)
    try:
        expect(page.locator("#follow")).to_be_visible()
        scope = page.evaluate("navigator.serviceWorker.ready.then((r) => r.active && r.scope)")
        assert scope == push_server.base + "/"
        page.get_by_role("button", name="Key events only").click()
        expect(page.locator("#follow-status")).to_have_text(
            "Couldn't subscribe: the browser's push service did not answer. Try again later.",
            timeout=20_000,
        )
        expect(page.get_by_role("button", name="Unfollow")).to_be_hidden()
        assert stored(redis_server, push_server, slug) == 0
        assert errors == []
    finally:
        page.context.close()


def test_a_denied_permission_is_reported(
    browser: Browser, push_server: LivefeedServer, redis_server: RedisProcess, slug: str
) -> None:
    """Without permission to notify, following says what is missing and stores nothing."""
    page, errors = open_page(browser, push_server, slug, granted=False)
    try:
        page.get_by_role("button", name="Every update").click()
        status = page.locator("#follow-status")
        expect(status).to_have_text(
            "Notifications are blocked for this site. Allow them in your browser's site "
            "settings to follow.",
            timeout=20_000,
        )
        assert stored(redis_server, push_server, slug) == 0
        assert errors == []
    finally:
        page.context.close()


def test_following_and_unfollowing_work_around_the_push_service(
    browser: Browser,
    push_server: LivefeedServer,
    redis_server: RedisProcess,
    push_service: PushService,
    slug: str,
) -> None:
    """With the vendor's subscribe stood in for, "Every update" stores the subscription, an
    update reaches it encrypted for its keys, and "Unfollow" removes it."""
    holder = PushBrowser(push_service.url(f"/ui/{slug}"))
    subscription = {k: v for k, v in holder.json("all").items() if k != "mode"}
    script = f"window.__subscription = {json.dumps(subscription)};{STAND_IN}"
    page, errors = open_page(browser, push_server, slug, granted=True, script=script)
    try:
        page.get_by_role("button", name="Every update").click()
        status = page.locator("#follow-status")
        expect(status).to_have_text(
            "Following: every update. You'll get a notification for new updates.", timeout=20_000
        )
        expect(page.get_by_role("button", name="Every update")).to_have_attribute(
            "aria-pressed", "true"
        )
        assert stored(redis_server, push_server, slug) == 1
        with httpx.Client(base_url=push_server.base, timeout=10) as client:
            brief = publish(client, slug, "Update for followers")
        wait_until(lambda: push_service.got(f"/ui/{slug}"), 30, "the follower got nothing")
        ((_, body),) = push_service.got(f"/ui/{slug}")
        assert holder.decrypt(body)["url"] == f"/feeds/{slug}#{brief['id']}"
        page.get_by_role("button", name="Unfollow").click()
        expect(status).to_have_text("Not following: no more notifications from this live blog.")
        assert stored(redis_server, push_server, slug) == 0
        assert errors == []
    finally:
        page.context.close()
