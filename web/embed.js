// The embedded feed (/embed/{feed}, inside an iframe on another site): the latest briefs, kept
// live over the same WebSocket protocol as the reader page, newest on top, at most data-limit of
// them. It tells the embedding page its height ({type: "livefeed:height", height}) whenever that
// changes, so web/embed-loader.js can size the iframe to fit without a scrollbar. The pinned
// brief, if any, stands above the list as on the reader page.

import { createConnection } from "./js/connection.js";
import {
  createPinnedBox, highlight, insertInOrder, isNewer, itemIn, replaceBrief, showEmptyIfNothing,
} from "./js/list.js";
import { initEmbeds } from "./js/embeds.js";
import { inTopic, moveFor, topicOf } from "./js/filter.js";
import { refreshTimes, renderBrief } from "./js/render.js";
import { enableGalleries } from "./js/media.js";
import { createStory } from "./js/story.js";

const page = {}; // elements and feed settings, filled in by start()
const view = { connection: "connecting", status: "live", height: 0 };
let pinned = null; // the pinned box (js/list.js)
let story = null; // the summary box (js/story.js); the embed shows no lead

// --- height ------------------------------------------------------------------------------------

/** Post the document's height to the embedding page (the value is not secret: any origin may read it). */
function postHeight() {
  const height = Math.ceil(document.documentElement.getBoundingClientRect().height);
  if (height === view.height) return;
  view.height = height;
  if (window.parent !== window) window.parent.postMessage({ type: "livefeed:height", height }, "*");
}

// --- frames ------------------------------------------------------------------------------------

const handlers = {
  brief: (frame) => addBrief(frame.brief),
  brief_updated: (frame) => updateBrief(frame.brief),
  brief_deleted: ({ brief_id: id }) => {
    itemIn(page.list, id)?.remove();
    pinned.unpin(id);
    showEmpty();
  },
  pinned: ({ brief_id: id }) => pinned.pin(id, itemIn(page.list, id)),
  unpinned: (frame) => pinned.unpin(frame.brief_id),
  feed_updated: (frame) => applyFeed(frame.feed),
  snapshot: (frame) => {
    applySnapshot(frame.briefs);
    pinned.reset(frame.pinned);
    story.reset("summary", frame.summary);
  },
  summary_updated: (frame) => story.handlers.summary_updated(frame),
  summary_cleared: (frame) => story.handlers.summary_cleared(frame),
};

function addBrief(brief) {
  if (!brief?.id || itemIn(page.list, brief.id) || !inTopic(page.topic, brief)) return;
  insertInOrder(page.list, highlight(renderBrief(brief, page), "brief--new"));
  while (page.list.children.length > page.limit) page.list.lastElementChild.remove();
  showEmpty();
}

function updateBrief(brief) {
  if (!brief?.id) return;
  const item = itemIn(page.list, brief.id);
  const move = !item || isNewer(brief.version, item.dataset.version)
    ? moveFor(page.topic, brief, item !== null) : "old";
  if (move === "stay" && item) replaceBrief(item, renderBrief(brief, page));
  if (move === "in") addBrief(brief); // the correction gave it the page's tag
  if (move === "out") {
    item.remove();
    showEmpty();
  }
  pinned.update(brief);
}

function applySnapshot(briefs) {
  const latest = Array.isArray(briefs)
    ? briefs.filter((brief) => brief?.id && inTopic(page.topic, brief)).slice(0, page.limit) : [];
  page.list.replaceChildren(...latest.map((brief) => renderBrief(brief, page)));
  showEmpty();
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

function showEmpty() {
  showEmptyIfNothing(page.list, page.empty);
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
  enableGalleries();
  const root = document.getElementById("embed");
  if (!root) return;
  initEmbeds(root);
  Object.assign(page, {
    slug: root.dataset.feed,
    timeZone: root.dataset.timezone,
    limit: Math.max(1, Number(root.dataset.limit) || 10),
    list: document.getElementById("briefs"),
    empty: document.getElementById("empty"),
    status: document.getElementById("conn-status"),
    title: document.getElementById("feed-title"),
    banner: document.getElementById("coverage-ended"),
    topic: topicOf(root),
  });
  pinned = createPinnedBox({ box: document.getElementById("pinned"), slug: page.slug, timeZone: page.timeZone });
  story = createStory({ timeZone: page.timeZone, announce: () => {} }); // no live region in a frame
  view.status = root.dataset.status === "ended" ? "ended" : "live";
  const connection = createConnection({
    slug: page.slug,
    lastEventId: root.dataset.lastEventId || "0-0",
    handlers,
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
      pinned: pinned.pinnedId(),
      summary: story.versions().summary,
      lastEventId: connection.lastEventId(),
    }),
  };
  connection.connect();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
