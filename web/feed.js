// The live feed page: new briefs from the WebSocket, pending updates while the reader is scrolled
// down, "Load older" without a page load, and the connection status line.

import { createConnection } from "./js/connection.js";
import { dayKey, el, refreshTimes, renderBrief } from "./js/render.js";

const NEAR_TOP_PX = 80;
const ANNOUNCE_DELAY_MS = 1000;
const HIGHLIGHT_MS = 5000;
const OLDER_PAGE_SIZE = 20;

const page = {}; // elements and feed settings, filled in by start()
const view = { status: "connecting", pending: [], unannounced: 0, announceTimer: 0, day: "", title: "" };
let connection = null;

function plural(n) {
  return n === 1 ? "1 new update" : `${n} new updates`;
}

function prefersReducedMotion() {
  return window.matchMedia("(prefers-reduced-motion: reduce)").matches;
}

// --- status ------------------------------------------------------------------------------------

/** Show the connection state; `spoken` lets a ticking countdown be announced only once. */
function setStatus(state, text, spoken = text) {
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

function isRendered(id) {
  const node = document.getElementById(id); // a brief's element id is its stream id
  return node !== null && page.list.contains(node);
}

function isKnown(id) {
  return isRendered(id) || view.pending.some((brief) => brief.id === id);
}

function readerAtTop() {
  return page.list.getBoundingClientRect().top > -NEAR_TOP_PX;
}

function handleBrief(brief) {
  if (!brief?.id || isKnown(brief.id)) return;
  noteForAnnouncement();
  if (view.pending.length === 0 && readerAtTop()) {
    insertNew([brief]);
  } else {
    view.pending.push(brief);
    showPending();
  }
}

/** Insert briefs (oldest first) at the top; returns the newest <li>. */
function insertNew(briefs) {
  let newest = null;
  for (const brief of briefs) {
    if (isRendered(brief.id)) continue;
    newest = renderBrief(brief, page);
    newest.classList.add("brief--new");
    const item = newest;
    setTimeout(() => item.classList.remove("brief--new"), HIGHLIGHT_MS);
    page.list.prepend(item);
  }
  if (newest) page.empty.hidden = true;
  return newest;
}

function showPending() {
  const count = view.pending.length;
  page.newUpdates.hidden = count === 0;
  page.newUpdates.textContent = plural(count);
  document.title = count ? `(${count}) ${view.title}` : view.title;
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
  refreshTimes(page.list, page.timeZone);
}

// --- older briefs ------------------------------------------------------------------------------

async function fetchOlder(before) {
  const url = `/api/feeds/${encodeURIComponent(page.slug)}/briefs`
    + `?before=${encodeURIComponent(before)}&limit=${OLDER_PAGE_SIZE}`;
  let response;
  try {
    response = await fetch(url, { headers: { Accept: "application/json" } });
  } catch {
    throw new Error("Couldn't reach the server. Check your connection and try again.");
  }
  const data = await response.json().catch(() => null);
  if (!response.ok || !Array.isArray(data?.briefs)) {
    throw new Error(data?.error?.message || `Couldn't load older updates (HTTP ${response.status}).`);
  }
  return data;
}

function appendOlder(briefs) {
  const added = briefs.filter((brief) => !isKnown(brief.id)).map((brief) => renderBrief(brief, page));
  page.list.append(...added);
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
      link.href = `/feeds/${encodeURIComponent(page.slug)}?before=${encodeURIComponent(nextBefore)}`;
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
  const feed = document.getElementById("feed");
  if (!feed) return;
  Object.assign(page, {
    feed,
    slug: feed.dataset.feed,
    timeZone: feed.dataset.timezone,
    list: document.getElementById("briefs"),
    empty: document.getElementById("empty"),
    status: document.getElementById("conn-status"),
    announcer: document.getElementById("announcer"),
    newUpdates: document.getElementById("new-updates"),
  });
  view.title = document.title;
  refreshTimesIfNewDay();
  setInterval(refreshTimesIfNewDay, 60_000);

  connection = createConnection({
    slug: page.slug,
    lastEventId: feed.dataset.lastEventId || "0-0",
    onBrief: handleBrief,
    onReload: showReloadNotice,
    onStatus: setStatus,
  });

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
    state: () => ({ status: view.status, lastEventId: connection.lastEventId(), pending: view.pending.length }),
  };
  connection.connect();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
