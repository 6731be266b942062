// The newsroom's marks on the live page outside the rolling list: the pinned box, the key events
// list with its "key events only" filter, and the feed's title and live/ended status.
// Knows nothing of the socket or of pending briefs: feed.js calls in with what frames carry.

import { createPinnedBox, insertInOrder, itemIn } from "./list.js";
import { formatBriefTime, renderKeyEvent } from "./render.js";

const FILTER_LABELS = { off: "Show key events only", on: "Show all updates" };

/** `onFeedChange({titleChanged, statusChanged})` runs after a feed_updated changed either. */
export function createNewsroom({ feed, slug, timeZone, onFeedChange }) {
  const page = {
    title: document.getElementById("feed-title"),
    banner: document.getElementById("coverage-ended"),
    badge: document.querySelector(".live-badge"),
    keySection: document.getElementById("key-events"),
    keyOnly: document.getElementById("key-events-only"),
  };
  page.keyList = page.keySection.querySelector(".key-event-list");
  const options = { slug, timeZone };
  const baseTitle = feed.dataset.title ?? "";
  const pinned = createPinnedBox({ box: document.getElementById("pinned"), slug, timeZone });
  const state = {
    status: feed.dataset.status === "ended" ? "ended" : "live",
    titleSuffix: document.title.startsWith(baseTitle) ? document.title.slice(baseTitle.length) : " — live",
  };

  // --- key events ------------------------------------------------------------------------------

  /** Add, rename or drop the brief's key events entry to match its `key_event`. */
  function syncKeyEvent(brief) {
    const old = itemIn(page.keyList, brief.id);
    if (!brief.key_event) {
      if (old) removeKeyEvent(brief.id);
      return;
    }
    const entry = renderKeyEvent(brief, options);
    if (old) {
      old.replaceWith(entry);
      return;
    }
    insertInOrder(page.keyList, entry);
    showKeyEvents();
  }

  function removeKeyEvent(id) {
    itemIn(page.keyList, id)?.remove();
    showKeyEvents();
  }

  function showKeyEvents() {
    const any = page.keyList.children.length > 0;
    page.keySection.hidden = !any;
    page.keyOnly.hidden = !any;
    if (!any) filterKeyEvents(false);
  }

  function filterKeyEvents(on) {
    feed.classList.toggle("key-only", on);
    page.keyOnly.setAttribute("aria-pressed", String(on));
    page.keyOnly.textContent = on ? FILTER_LABELS.on : FILTER_LABELS.off;
  }

  page.keyOnly.addEventListener("click", () => {
    filterKeyEvents(page.keyOnly.getAttribute("aria-pressed") !== "true");
  });

  // --- the feed itself -------------------------------------------------------------------------

  function showStatus() {
    const ended = state.status === "ended";
    feed.dataset.status = state.status;
    document.body.classList.toggle("feed-ended", ended);
    page.banner.hidden = !ended;
    if (page.badge) page.badge.textContent = ended ? "Ended" : "Live";
  }

  /** A feed object from feed_updated or a snapshot: title, language and live/ended status. */
  function applyFeed(data) {
    if (!data || typeof data !== "object") return;
    if (typeof data.language === "string" && data.language) document.documentElement.lang = data.language;
    const titleChanged = typeof data.title === "string" && data.title !== feed.dataset.title;
    if (titleChanged) {
      feed.dataset.title = data.title;
      page.title.textContent = data.title;
    }
    const status = data.status === "ended" || data.status === "live" ? data.status : state.status;
    const statusChanged = status !== state.status;
    if (statusChanged) {
      state.status = status;
      if (status === "ended") {
        const at = data.ended_at ? formatBriefTime(data.ended_at, timeZone) : "";
        page.banner.textContent = `Coverage has ended${at ? ` (${at})` : ""}. Thank you for following.`;
      }
      showStatus();
    }
    if (titleChanged || statusChanged) onFeedChange({ titleChanged, statusChanged });
  }

  showKeyEvents();
  showStatus();

  return {
    pinned, syncKeyEvent, removeKeyEvent, applyFeed,
    /** Forget a retracted brief everywhere outside the rolling list. */
    remove(id) {
      pinned.unpin(id);
      removeKeyEvent(id);
    },
    status: () => state.status,
    keyEventCount: () => page.keyList.children.length,
    /** document.title without the "(N) " prefix of pending updates. */
    title: () => `${feed.dataset.title ?? ""}${state.titleSuffix}`,
  };
}
