// The live feed page: new briefs from the WebSocket, pending updates while the reader is scrolled
// down, "Load older" without a page load, and the connection status line. Corrections, retractions,
// the pinned box, key events and the end of coverage are in js/newsroom.js.

import { apiUrl, getJson } from "./js/api.js";
import { createConnection } from "./js/connection.js";
import { highlight, insertInOrder, isNewer, itemIn, replaceBrief, showEmptyIfNothing } from "./js/list.js";
import { createNewsroom } from "./js/newsroom.js";
import { inTopic, moveFor, topicOf, topicQuery } from "./js/filter.js";
import { showLinkedBrief } from "./js/permalink.js";
import { initFollow } from "./js/follow.js";
import { initEmbeds } from "./js/embeds.js";
import { dayKey, el, refreshTimes, renderBrief } from "./js/render.js";
import { enableGalleries } from "./js/media.js";
import { createStory } from "./js/story.js";
import { createSince } from "./js/since.js";

const NEAR_TOP_PX = 80;
const ANNOUNCE_DELAY_MS = 1000;
const OLDER_PAGE_SIZE = 20;

const page = {}; // elements and feed settings, filled in by start()
const view = { status: "connecting", pending: [], unannounced: 0, announceTimer: 0, day: "" };
let connection = null;
let newsroom = null;
let story = null;

function plural(n) {
  return n === 1 ? "1 new update" : `${n} new updates`;
}

function prefersReducedMotion() {
  return window.matchMedia("(prefers-reduced-motion: reduce)").matches;
}

// --- status ------------------------------------------------------------------------------------

/** Show the connection state; `spoken` lets a ticking countdown be announced only once. */
function setStatus(state, text, spoken = text) {
  if (state === "live" && newsroom?.status() === "ended") text = spoken = "Coverage ended";
  const status = page.status;
  view.status = state;
  status.dataset.state = state;
  if (spoken === text) {
    if (status.textContent !== text) status.textContent = text;
    return;
  }
  const [said, shown] = status.children;
  if (shown && said.textContent === spoken) {
    if (shown.textContent !== text) shown.textContent = text;
    return;
  }
  const visible = el("span", null, text);
  visible.setAttribute("aria-hidden", "true");
  status.replaceChildren(el("span", "visually-hidden", spoken), visible);
}

function showReloadNotice(reason) {
  setStatus("error", "Updates stopped");
  if (document.getElementById("reload-notice")) return;
  const notice = el("div", "reload-notice");
  notice.id = "reload-notice";
  notice.setAttribute("role", "alert");
  notice.dataset.reason = reason ?? "";
  const button = el("button", "reload-button", "Reload page");
  button.type = "button";
  button.addEventListener("click", () => location.reload());
  notice.append(el("p", null, "This page has missed updates that can no longer be sent. Reload to catch up."), button);
  page.feed.before(notice);
}

// --- new briefs --------------------------------------------------------------------------------

/** The brief's <li> in the rolling list, or null. */
function listItem(id) {
  return itemIn(page.list, id);
}

function isRendered(id) {
  return listItem(id) !== null;
}

function pendingIndex(id) {
  return view.pending.findIndex((brief) => brief.id === id);
}

function isKnown(id) {
  return isRendered(id) || pendingIndex(id) >= 0;
}

function readerAtTop() {
  return page.list.getBoundingClientRect().top > -NEAR_TOP_PX;
}

function handleBrief(brief) {
  if (!brief?.id || isKnown(brief.id)) return;
  newsroom.syncKeyEvent(brief);
  if (!inTopic(page.topic, brief)) return; // a filtered page: not this topic's
  noteForAnnouncement();
  if (view.pending.length === 0 && readerAtTop()) {
    insertNew([brief]);
  } else {
    view.pending.push(brief);
    showPending();
  }
}

/** Insert briefs (oldest first) in stream order, highlighted; returns the last one's <li>. */
function insertNew(briefs) {
  let newest = null;
  for (const brief of briefs) {
    if (isRendered(brief.id)) continue;
    newest = insertInOrder(page.list, highlight(renderBrief(brief, page), "brief--new"));
  }
  if (newest) page.empty.hidden = true;
  return newest;
}

function showPending() {
  const count = view.pending.length;
  page.newUpdates.hidden = count === 0;
  page.newUpdates.textContent = plural(count);
  const title = newsroom.title();
  document.title = count ? `(${count}) ${title}` : title;
}

function flushPending() {
  const newest = insertNew(view.pending.splice(0));
  showPending();
  return newest;
}

function showNewUpdates() {
  const newest = flushPending();
  window.scrollTo({ top: 0, behavior: prefersReducedMotion() ? "auto" : "smooth" });
  if (newest) {
    newest.tabIndex = -1; // keyboard focus follows the hidden button to the newest brief
    newest.focus({ preventScroll: true });
  }
}

let scrollQueued = false;
function handleScroll() {
  if (scrollQueued || view.pending.length === 0) return;
  scrollQueued = true;
  requestAnimationFrame(() => {
    scrollQueued = false;
    if (view.pending.length && readerAtTop()) flushPending();
  });
}

/** Say "N new updates" once per burst, never the brief text. */
function noteForAnnouncement() {
  view.unannounced += 1;
  if (view.announceTimer) return;
  view.announceTimer = setTimeout(() => {
    const text = plural(view.unannounced);
    view.unannounced = 0;
    view.announceTimer = 0;
    page.announcer.textContent = ""; // so the same words are announced again
    setTimeout(() => { page.announcer.textContent = text; }, 100);
  }, ANNOUNCE_DELAY_MS);
}

function refreshTimesIfNewDay() {
  const today = dayKey(new Date(), page.timeZone);
  if (today === view.day) return;
  view.day = today;
  refreshTimes(page.feed, page.timeZone); // the list, the pinned box and the key events
}

// --- corrections, retractions, pins, coverage end ----------------------------------------------

const handlers = {
  brief: (frame) => handleBrief(frame.brief),
  brief_updated: (frame) => handleBriefUpdated(frame.brief),
  brief_deleted: (frame) => handleBriefDeleted(frame.brief_id),
  pinned: ({ brief_id: id }) => newsroom.pinned.pin(id, listItem(id) ?? view.pending[pendingIndex(id)]),
  unpinned: (frame) => newsroom.pinned.unpin(frame.brief_id),
  feed_updated: (frame) => newsroom.applyFeed(frame.feed),
  snapshot: (frame) => applySnapshot(frame),
  lead_updated: (frame) => story.handlers.lead_updated(frame),
  lead_cleared: (frame) => story.handlers.lead_cleared(frame),
  summary_updated: (frame) => story.handlers.summary_updated(frame),
  summary_cleared: (frame) => story.handlers.summary_cleared(frame),
};

/** A correction: replace the brief wherever it is, unless the page already has this version. */
function handleBriefUpdated(brief) {
  if (!brief?.id) return;
  const item = listItem(brief.id);
  const copy = newsroom.pinned.copy(brief.id);
  const waiting = pendingIndex(brief.id);
  if (!isNewer(brief.version, item?.dataset.version, copy?.dataset.version, view.pending[waiting]?.version)) return;
  const move = moveFor(page.topic, brief, item !== null || waiting >= 0);
  if (item && move === "stay") replaceBrief(item, renderBrief(brief, page));
  newsroom.pinned.update(brief);
  if (waiting >= 0) view.pending[waiting] = brief;
  newsroom.syncKeyEvent(brief);
  if (move === "in") insertNew([brief]); // the correction gave it the page's tag: in its place
  if (move === "out") dropBrief(brief.id);
}

/** A brief leaves the page's topic: out of the list and the pending updates, nowhere else. */
function dropBrief(id) {
  listItem(id)?.remove();
  const waiting = pendingIndex(id);
  if (waiting >= 0) {
    view.pending.splice(waiting, 1);
    showPending();
  }
  showEmpty();
}

/** A retraction: gone from the list, the pending updates, the pinned box and the key events. */
function handleBriefDeleted(id) {
  if (!id) return;
  listItem(id)?.remove();
  const waiting = pendingIndex(id);
  if (waiting >= 0) {
    view.pending.splice(waiting, 1);
    showPending();
  }
  newsroom.remove(id);
  showEmpty();
}

function showEmpty() {
  showEmptyIfNothing(page.list, page.empty, view.pending.length);
}

/** Only for a socket opened without `since`: the page as the server has it now. */
function applySnapshot({ briefs, pinned, feed, lead, summary }) {
  const all = Array.isArray(briefs) ? briefs.filter((brief) => brief?.id) : [];
  const latest = all.filter((brief) => inTopic(page.topic, brief));
  view.pending = [];
  page.list.replaceChildren(...latest.map((brief) => renderBrief(brief, page)));
  for (const brief of all) newsroom.syncKeyEvent(brief);
  const older = document.getElementById("load-older");
  if (older && latest.length) older.dataset.before = latest.at(-1).id;
  newsroom.pinned.reset(pinned);
  story.reset("lead", lead);
  story.reset("summary", summary);
  newsroom.applyFeed(feed);
  showPending();
  showEmpty();
}

function handleFeedChange({ statusChanged }) {
  showPending(); // document.title carries the feed's title
  if (!statusChanged) return;
  if (view.status === "live") setStatus("live", "Live");
  announce(newsroom.status() === "ended" ? "Coverage has ended" : "Coverage has resumed");
}

function announce(text) {
  page.announcer.textContent = "";
  setTimeout(() => { page.announcer.textContent = text; }, 100);
}

// --- older briefs ------------------------------------------------------------------------------

async function fetchOlder(before) {
  const url = `${apiUrl(page.slug, "briefs")}?before=${encodeURIComponent(before)}&limit=${OLDER_PAGE_SIZE}${topicQuery(page.topic)}`;
  const data = await getJson(url);
  if (!Array.isArray(data.briefs)) throw new Error("Couldn't load older updates.");
  return data;
}

function appendOlder(briefs) {
  const added = briefs.filter((brief) => !isKnown(brief.id))
    .map((brief) => insertInOrder(page.list, renderBrief(brief, page)));
  if (added.length) page.empty.hidden = true;
  return added;
}

function showOlderError(link, message) {
  let error = link.parentElement.querySelector(".load-older-error");
  if (!error) {
    error = el("p", "load-older-error");
    error.setAttribute("role", "alert");
    link.after(error);
  }
  error.textContent = message;
}

async function loadOlder(event) {
  event.preventDefault();
  const link = event.currentTarget;
  if (link.getAttribute("aria-busy") === "true") return;
  link.dataset.label ??= link.textContent;
  link.setAttribute("aria-busy", "true");
  link.textContent = "Loading…";
  link.parentElement.querySelector(".load-older-error")?.remove();
  try {
    const { briefs, next_before: nextBefore } = await fetchOlder(link.dataset.before);
    const added = appendOlder(briefs);
    if (nextBefore) {
      link.dataset.before = nextBefore;
      link.href = `/feeds/${encodeURIComponent(page.slug)}?before=${encodeURIComponent(nextBefore)}${topicQuery(page.topic)}`;
    } else {
      link.remove();
      if (added[0]) {
        added[0].tabIndex = -1;
        added[0].focus({ preventScroll: true });
      }
    }
  } catch (error) {
    showOlderError(link, error.message);
  } finally {
    link.removeAttribute("aria-busy");
    link.textContent = link.dataset.label;
  }
}

// --- wiring ------------------------------------------------------------------------------------

function start() {
  enableGalleries();
  const feed = document.getElementById("feed");
  if (!feed) return;
  initEmbeds(feed);
  Object.assign(page, {
    feed,
    slug: feed.dataset.feed,
    timeZone: feed.dataset.timezone,
    list: document.getElementById("briefs"),
    empty: document.getElementById("empty"),
    status: document.getElementById("conn-status"),
    announcer: document.getElementById("announcer"),
    newUpdates: document.getElementById("new-updates"),
    topic: topicOf(feed),
  });
  newsroom = createNewsroom({
    feed, slug: page.slug, timeZone: page.timeZone, onFeedChange: handleFeedChange,
  });
  story = createStory({ timeZone: page.timeZone, announce });
  refreshTimesIfNewDay();
  // A permalink (`#<id>`), on arrival or clicked (key events): in view, or on its older page.
  const linked = { slug: page.slug, list: page.list, hasOlder: () => document.getElementById("load-older") !== null };
  showLinkedBrief(linked);
  window.addEventListener("hashchange", () => showLinkedBrief(linked));
  setInterval(refreshTimesIfNewDay, 60_000);
  initFollow(document.getElementById("follow"), page.slug);

  const since = createSince({ slug: page.slug, timeZone: page.timeZone, feed, list: page.list,
    currentId: feed.dataset.lastEventId || "0-0" });
  connection = createConnection({
    slug: page.slug,
    lastEventId: feed.dataset.lastEventId || "0-0",
    handlers: since.track(handlers),
    onReload: showReloadNotice,
    onStatus: (state, ...text) => { setStatus(state, ...text); since.onStatus(state, connection?.lastEventId()); },
  });
  since.start();

  page.newUpdates.addEventListener("click", showNewUpdates);
  document.getElementById("load-older")?.addEventListener("click", loadOlder);
  window.addEventListener("scroll", handleScroll, { passive: true });
  window.addEventListener("online", () => connection.reconnectNow());
  window.addEventListener("offline", () => connection.markOffline());
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState !== "visible") return;
    refreshTimesIfNewDay();
    connection.reconnectNow();
  });

  window.livefeed = {
    state: () => ({
      connection: view.status, // the socket: connecting, live, reconnecting, offline, error
      status: newsroom.status(), // the coverage: live or ended
      lastEventId: connection.lastEventId(),
      pending: view.pending.length,
      pinned: newsroom.pinned.pinnedId(),
      keyEvents: newsroom.keyEventCount(),
      story: story.versions(),
    }),
  };
  connection.connect();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
