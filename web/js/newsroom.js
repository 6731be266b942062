// The newsroom's marks on the live page outside the rolling list: the pinned box, the key events
// list with its "key events only" filter, and the feed's title and live/ended status.
// Knows nothing of the socket or of pending briefs: feed.js calls in with what frames carry.

import { apiUrl, getJson } from "./api.js";
import { compareIds } from "./connection.js";
import { formatBriefTime, renderBrief, renderKeyEvent } from "./render.js";

const HIGHLIGHT_MS = 5000;
const FILTER_LABELS = { off: "Show key events only", on: "Show all updates" };

/** Put `fresh` where `old` is, marked "just corrected" for a few seconds; focus stays with it. */
export function replaceBrief(old, fresh) {
  const hadFocus = old.contains(document.activeElement);
  fresh.classList.add("brief--updated");
  setTimeout(() => fresh.classList.remove("brief--updated"), HIGHLIGHT_MS);
  old.replaceWith(fresh);
  if (hadFocus) {
    fresh.tabIndex = -1;
    fresh.focus({ preventScroll: true });
  }
}

/** A copy of a rolling-list <li> for the pinned box: no id (ids stay unique), no transient marks. */
function copyOf(item) {
  const copy = item.cloneNode(true);
  copy.removeAttribute("id");
  copy.removeAttribute("tabindex");
  copy.classList.remove("brief--new", "brief--updated");
  return copy;
}

/** `onFeedChange({titleChanged, statusChanged})` runs after a feed_updated changed either. */
export function createNewsroom({ feed, slug, timeZone, onFeedChange }) {
  const page = {
    pinned: document.getElementById("pinned"),
    title: document.getElementById("feed-title"),
    banner: document.getElementById("coverage-ended"),
    badge: document.querySelector(".live-badge"),
    keySection: document.getElementById("key-events"),
    keyOnly: document.getElementById("key-events-only"),
  };
  page.pinnedList = page.pinned.querySelector(".pinned-briefs");
  page.keyList = page.keySection.querySelector(".key-event-list");
  const options = { slug, timeZone };
  const baseTitle = feed.dataset.title ?? "";
  const state = {
    pinned: page.pinned.hidden ? null : page.pinnedList.firstElementChild?.dataset.id ?? null,
    status: feed.dataset.status === "ended" ? "ended" : "live",
    titleSuffix: document.title.startsWith(baseTitle) ? document.title.slice(baseTitle.length) : " — live",
  };

  // --- pinned --------------------------------------------------------------------------------

  function pinnedCopy(id) {
    const item = page.pinnedList.firstElementChild;
    return item && item.dataset.id === id ? item : null;
  }

  function showPinned(item) {
    page.pinnedList.replaceChildren(item);
    page.pinned.hidden = false;
  }

  /** Pin `id`. `local` is its rolling-list <li> or its brief object if the page has it; else fetched. */
  async function pin(id, local) {
    if (!id) return;
    state.pinned = id;
    if (pinnedCopy(id)) return;
    if (local instanceof Element) return showPinned(copyOf(local));
    if (local) return showPinned(renderBrief(local, { ...options, withId: false }));
    let brief = null;
    try {
      brief = await getJson(apiUrl(slug, "briefs", id), "the pinned update");
    } catch (error) {
      console.warn("livefeed: could not load the pinned brief", id, error.message);
    }
    if (state.pinned !== id) return; // unpinned, replaced or retracted meanwhile
    if (brief?.id === id) showPinned(renderBrief(brief, { ...options, withId: false }));
    else unpin(id);
  }

  /** Empty the pinned box, if it holds `id` (any brief when `id` is undefined). */
  function unpin(id) {
    if (id !== undefined && id !== state.pinned) return;
    state.pinned = null;
    page.pinnedList.replaceChildren();
    page.pinned.hidden = true;
  }

  // --- key events ------------------------------------------------------------------------------

  function keyEntry(id) {
    return [...page.keyList.children].find((item) => item.dataset.id === id) ?? null;
  }

  /** Add, rename or drop the brief's key events entry to match its `key_event`. */
  function syncKeyEvent(brief) {
    const old = keyEntry(brief.id);
    if (!brief.key_event) {
      if (old) removeKeyEvent(brief.id);
      return;
    }
    const entry = renderKeyEvent(brief, options);
    if (old) {
      old.replaceWith(entry);
      return;
    }
    // newest first: before the first entry that is older than this one
    const older = [...page.keyList.children].find((item) => compareIds(item.dataset.id, brief.id) < 0);
    page.keyList.insertBefore(entry, older ?? null);
    showKeyEvents();
  }

  function removeKeyEvent(id) {
    keyEntry(id)?.remove();
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
    pin, unpin, pinnedCopy, syncKeyEvent, removeKeyEvent, applyFeed,
    /** Forget a retracted brief everywhere outside the rolling list. */
    remove(id) {
      unpin(id);
      removeKeyEvent(id);
    },
    pinnedId: () => state.pinned,
    status: () => state.status,
    keyEventCount: () => page.keyList.children.length,
    /** document.title without the "(N) " prefix of pending updates. */
    title: () => `${feed.dataset.title ?? ""}${state.titleSuffix}`,
  };
}
