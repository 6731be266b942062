// The embedded feed (/embed/{feed}, inside an iframe on another site): the latest briefs, kept
// live over the same WebSocket protocol as the reader page, newest on top, at most data-limit of
// them. It tells the embedding page its height ({type: "livefeed:height", height}) whenever that
// changes, so web/embed-loader.js can size the iframe to fit without a scrollbar. The pinned
// brief, if any, stands above the list as on the reader page.

import { apiUrl, getJson } from "./js/api.js";
import { createConnection } from "./js/connection.js";
import { replaceBrief } from "./js/newsroom.js";
import { refreshTimes, renderBrief } from "./js/render.js";

const HIGHLIGHT_MS = 5000;
const page = {}; // elements and feed settings, filled in by start()
const view = { connection: "connecting", status: "live", height: 0, pinned: null };

// --- height ------------------------------------------------------------------------------------

/** Post the document's height to the embedding page (the value is not secret: any origin may read it). */
function postHeight() {
  const height = Math.ceil(document.documentElement.getBoundingClientRect().height);
  if (height === view.height) return;
  view.height = height;
  if (window.parent !== window) window.parent.postMessage({ type: "livefeed:height", height }, "*");
}

// --- frames ------------------------------------------------------------------------------------

function listItem(id) {
  const node = document.getElementById(id);
  return node !== null && page.list.contains(node) ? node : null;
}

function handleFrame(frame) {
  switch (frame.type) {
    case "brief":
      addBrief(frame.brief);
      break;
    case "brief_updated":
      updateBrief(frame.brief);
      break;
    case "brief_deleted":
      listItem(frame.brief_id)?.remove();
      unpin(frame.brief_id);
      showEmptyIfNothing();
      break;
    case "pinned":
      pin(frame.brief_id, listItem(frame.brief_id));
      break;
    case "unpinned":
      unpin(frame.brief_id);
      break;
    case "feed_updated":
      applyFeed(frame.feed);
      break;
    case "snapshot":
      applySnapshot(frame.briefs);
      unpin();
      if (frame.pinned?.id) pin(frame.pinned.id, frame.pinned);
      break;
    default:
      console.warn("livefeed: unknown frame type", frame.type);
  }
}

function addBrief(brief) {
  if (!brief?.id || listItem(brief.id)) return;
  const item = renderBrief(brief, page);
  item.classList.add("brief--new");
  setTimeout(() => item.classList.remove("brief--new"), HIGHLIGHT_MS);
  page.list.prepend(item);
  while (page.list.children.length > page.limit) page.list.lastElementChild.remove();
  showEmptyIfNothing();
}

function updateBrief(brief) {
  if (!brief?.id) return;
  const item = listItem(brief.id);
  if (item && Number(brief.version) > Number(item.dataset.version)) replaceBrief(item, renderBrief(brief, page));
  const copy = pinnedCopy(brief.id);
  if (copy && Number(brief.version) > Number(copy.dataset.version)) {
    replaceBrief(copy, renderBrief(brief, { ...page, withId: false }));
  }
}

// --- the pinned brief --------------------------------------------------------------------------

function pinnedCopy(id) {
  const item = page.pinnedList.firstElementChild;
  return item && item.dataset.id === id ? item : null;
}

function showPinned(item) {
  item.removeAttribute("id"); // ids stay unique: the list may hold the same brief
  item.classList.remove("brief--new", "brief--updated");
  page.pinnedList.replaceChildren(item);
  page.pinned.hidden = false;
}

/** Pin `id`: `local` is its <li> in the list or its brief object, else it is fetched. */
async function pin(id, local) {
  if (!id) return;
  view.pinned = id;
  if (pinnedCopy(id)) return;
  if (local instanceof Element) return showPinned(local.cloneNode(true));
  let brief = local ?? null;
  if (!brief) {
    try {
      brief = await getJson(apiUrl(page.slug, "briefs", id), "the pinned update");
    } catch (error) {
      console.warn("livefeed: could not load the pinned brief", id, error.message);
    }
  }
  if (view.pinned !== id) return; // unpinned or replaced meanwhile
  if (brief?.id === id) showPinned(renderBrief(brief, { ...page, withId: false }));
  else unpin(id);
}

/** Empty the pinned box if it holds `id` (whatever it holds when `id` is undefined). */
function unpin(id) {
  if (id !== undefined && id !== view.pinned) return;
  view.pinned = null;
  page.pinnedList.replaceChildren();
  page.pinned.hidden = true;
}

function applySnapshot(briefs) {
  const latest = Array.isArray(briefs) ? briefs.filter((brief) => brief?.id).slice(0, page.limit) : [];
  page.list.replaceChildren(...latest.map((brief) => renderBrief(brief, page)));
  showEmptyIfNothing();
}

function applyFeed(feed) {
  if (!feed) return;
  if (typeof feed.title === "string") page.title.textContent = feed.title;
  if (typeof feed.language === "string" && feed.language) document.documentElement.lang = feed.language;
  if (feed.status === "live" || feed.status === "ended") {
    view.status = feed.status;
    page.banner.hidden = feed.status !== "ended";
    document.body.classList.toggle("feed-ended", feed.status === "ended");
    if (view.connection === "live") setStatus("live", "Live");
  }
}

function showEmptyIfNothing() {
  page.empty.hidden = page.list.querySelector(".brief") !== null;
}

// --- status ------------------------------------------------------------------------------------

/** The connection line; a reconnect countdown is shown by its steady wording, not every tick. */
function setStatus(state, text, spoken = text) {
  view.connection = state;
  const shown = state === "live" && view.status === "ended" ? "Coverage ended" : spoken;
  page.status.dataset.state = state;
  if (page.status.textContent !== shown) page.status.textContent = shown;
}

// --- wiring ------------------------------------------------------------------------------------

function start() {
  const root = document.getElementById("embed");
  if (!root) return;
  Object.assign(page, {
    slug: root.dataset.feed,
    timeZone: root.dataset.timezone,
    limit: Math.max(1, Number(root.dataset.limit) || 10),
    list: document.getElementById("briefs"),
    empty: document.getElementById("empty"),
    status: document.getElementById("conn-status"),
    title: document.getElementById("feed-title"),
    banner: document.getElementById("coverage-ended"),
    pinned: document.getElementById("pinned"),
  });
  page.pinnedList = page.pinned.querySelector(".pinned-briefs");
  view.pinned = page.pinned.hidden ? null : page.pinnedList.firstElementChild?.dataset.id ?? null;
  view.status = root.dataset.status === "ended" ? "ended" : "live";
  const connection = createConnection({
    slug: page.slug,
    lastEventId: root.dataset.lastEventId || "0-0",
    onFrame: handleFrame,
    onReload: () => setStatus("error", "Updates stopped: reload the page"),
    onStatus: setStatus,
  });
  new ResizeObserver(postHeight).observe(document.documentElement);
  postHeight();
  setInterval(() => refreshTimes(root, page.timeZone), 60_000);
  window.addEventListener("online", () => connection.reconnectNow());
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") connection.reconnectNow();
  });
  window.livefeedEmbed = {
    state: () => ({
      connection: view.connection,
      status: view.status,
      height: view.height,
      briefs: page.list.querySelectorAll(".brief").length,
      pinned: view.pinned,
      lastEventId: connection.lastEventId(),
    }),
  };
  connection.connect();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
