// "Since you were last here": the page remembers, per feed, the last event id it showed while
// visible (in localStorage: nothing goes to the server but the id, no cookie). On a return visit (or after
// a long gap with the tab hidden or the socket down) it asks GET /api/feeds/{feed}/since/{id}
// and shows one line above the feed, each part a link, and marks the briefs published since as
// new until each has been in view for a moment. `?since=<id>` in the address stands in for the
// remembered id (to test or share the line). First visit, or nothing new: no line.

import { apiUrl, getJson } from "./api.js";
import { compareIds } from "./frames.js";
import { el, formatBriefTime } from "./render.js";

const STORAGE_PREFIX = "livefeed:last-seen:";
const STREAM_ID = /^\d{1,20}(-\d{1,20})?$/;
const LONG_GAP_MS = 15 * 60_000; // hidden or disconnected this long: say what happened meanwhile
const SEEN_AFTER_MS = 4000; // in view this long: no longer new

function count(n, one, many) {
  return n === 1 ? `1 ${one}` : `${n} ${many}`;
}

function link(text, href) {
  const a = el("a", null, text);
  a.href = href;
  return a;
}

/** The id the page should report from: `?since=` if valid, else the remembered one, else "". */
function previousId(slug) {
  const asked = new URLSearchParams(location.search).get("since") ?? "";
  if (STREAM_ID.test(asked)) return asked;
  try {
    const stored = localStorage.getItem(STORAGE_PREFIX + slug) ?? "";
    return STREAM_ID.test(stored) ? stored : "";
  } catch {
    return ""; // storage off (private mode, blocked): no line, nothing breaks
  }
}

/**
 * `feed` is the <main> the line goes first in; `list` the rolling list whose briefs after the
 * visit are marked; `currentId` the position the page was rendered at.
 */
export function createSince({ slug, timeZone, feed, list, currentId }) {
  const state = { visit: "", seen: "", received: "", hiddenAt: 0, hiddenId: "", downAt: 0, downId: "",
    asked: 0, askedId: "", askedAt: 0 };
  const timers = new Map(); // brief <li> -> its "seen" timer
  const watcher = "IntersectionObserver" in window
    ? new IntersectionObserver(onView, { threshold: [0, 0.25, 0.5, 0.75, 1] }) : null;

  /** An event the page got; it counts as seen only while the page is visible. */
  function note(id) {
    if (!STREAM_ID.test(id ?? "")) return;
    if (!state.received || compareIds(id, state.received) > 0) state.received = id;
    if (document.visibilityState === "visible") remember(state.received);
  }

  function remember(id) {
    if (!STREAM_ID.test(id ?? "") || (state.seen && compareIds(id, state.seen) <= 0)) return;
    state.seen = id;
    try {
      localStorage.setItem(STORAGE_PREFIX + slug, id);
    } catch {
      // storage full or off: the next visit simply has no line
    }
  }

  /** Ask what happened after `id` and show it; a later ask replaces an earlier one's line. */
  async function report(id) {
    // Two signs of one return (the tab shown, the socket live again): keep the wider answer.
    if (Date.now() - state.askedAt < 60_000 && compareIds(id, state.askedId) > 0) return;
    Object.assign(state, { askedId: id, askedAt: Date.now() });
    const asked = ++state.asked;
    let answer;
    try {
      answer = await getJson(apiUrl(slug, "since", id));
    } catch {
      return; // the line is a courtesy: no line rather than an error
    }
    if (asked !== state.asked) return;
    const parts = answer.too_much ? tooMuch(answer) : summaryParts(answer);
    document.getElementById("since-line")?.remove();
    if (!parts.length) return;
    state.visit = id;
    const line = el("p", "since-line");
    line.id = "since-line";
    const when = formatBriefTime(answer.since_at, timeZone);
    line.append(`Since you were here at ${when}: `);
    parts.forEach((part, i) => line.append(...(i ? [", ", part] : [part])));
    feed.prepend(line);
    for (const item of list.querySelectorAll(":scope > li.brief[data-id]")) markIfNew(item);
  }

  function tooMuch({ links }) {
    const line = el("span", null, "a lot has happened: see the ");
    line.append(link("key events", links.key_events), " and the ", link("earlier days", links.days));
    return [line];
  }

  function summaryParts(answer) {
    const parts = [];
    const keys = answer.key_events ?? [];
    if (keys.length) {
      const a = link(count(keys.length, "key event", "key events"), `#${keys[0].id}`);
      a.className = "since-key-events";
      a.title = keys.map((brief) => brief.headline).join(" · ");
      parts.push(a);
    }
    if (answer.new_briefs > 0) {
      const oldestNew = [...list.querySelectorAll(":scope > li.brief[data-id]")]
        .filter((item) => compareIds(item.dataset.id, answer.since) > 0).at(-1);
      parts.push(link(count(answer.new_briefs, "update", "updates"), oldestNew ? `#${oldestNew.dataset.id}` : "#briefs"));
    }
    const fixed = answer.corrections ?? [];
    if (fixed.length) {
      const text = count(fixed.length, "correction to something you read", "corrections to things you read");
      const a = link(text, `/feeds/${encodeURIComponent(slug)}/briefs/${encodeURIComponent(fixed[0].id)}/changes`);
      a.className = "since-corrections";
      a.title = fixed.map((brief) => brief.headline).join(" · ");
      parts.push(a);
    }
    const gone = answer.retractions ?? [];
    if (gone.length) parts.push(el("span", null, count(gone.length, "retraction of something you read", "retractions of things you read")));
    if (answer.lead_updated) parts.push(link("lead updated", "#lead"));
    if (answer.summary_updated) parts.push(link("summary updated", "#summary"));
    if (answer.ended) parts.push(link("coverage ended", "#coverage-ended"));
    return parts;
  }

  /** A brief published after the visit: labelled "New" (text, not only colour) until seen. */
  function markIfNew(item) {
    const id = item.dataset.id;
    if (!state.visit || !id || compareIds(id, state.visit) <= 0 || item.classList.contains("brief--unseen")) return;
    if (item.dataset.seen === state.visit) return;
    item.classList.add("brief--unseen");
    const label = el("span", "brief-new-label", "New");
    item.querySelector(".brief-meta")?.prepend(label, " ");
    watcher?.observe(item);
  }

  function unmark(item) {
    item.classList.remove("brief--unseen");
    item.dataset.seen = state.visit;
    const label = item.querySelector(".brief-new-label");
    if (label?.nextSibling?.nodeType === Node.TEXT_NODE) label.nextSibling.remove();
    label?.remove();
    watcher?.unobserve(item);
  }

  function onView(entries) {
    for (const { target, intersectionRatio, intersectionRect } of entries) {
      clearTimeout(timers.get(target));
      timers.delete(target);
      // Mostly in view, or (a tall brief) filling half the window.
      const inView = intersectionRatio >= 0.5 || intersectionRect.height >= window.innerHeight / 2;
      if (inView && document.visibilityState === "visible") {
        timers.set(target, setTimeout(() => { timers.delete(target); unmark(target); }, SEEN_AFTER_MS));
      }
    }
  }

  // Briefs that arrive later (pending ones shown, older pages, a resume's catch-up) are marked too.
  new MutationObserver((changes) => {
    for (const change of changes) {
      for (const node of change.addedNodes) if (node instanceof HTMLLIElement) markIfNew(node);
    }
  }).observe(list, { childList: true });

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") {
      Object.assign(state, { hiddenAt: Date.now(), hiddenId: state.seen });
      return;
    }
    if (state.hiddenAt && Date.now() - state.hiddenAt > LONG_GAP_MS && state.hiddenId) report(state.hiddenId);
    remember(state.received); // what arrived while hidden is on the page now
  });

  return {
    /** On load: the line for the previous visit, if it was before what the page shows. */
    start() {
      const previous = previousId(slug);
      note(currentId);
      if (previous && compareIds(previous, currentId) < 0) report(previous);
    },
    /** The handlers, each also remembering its frame's event id once handled. */
    track(handlers) {
      return Object.fromEntries(Object.entries(handlers).map(([type, handle]) => [type, (frame) => {
        handle(frame);
        if (frame?.event_id) note(frame.event_id);
      }]));
    },
    /** The connection's status: live again after a long time down, say what happened. */
    onStatus(status, lastId) {
      if (status === "live") {
        if (state.downAt && Date.now() - state.downAt > LONG_GAP_MS && state.downId) report(state.downId);
        state.downAt = 0;
        note(lastId);
      } else if (!state.downAt && status !== "connecting") {
        Object.assign(state, { downAt: Date.now(), downId: state.seen });
      }
    },
  };
}
