// Building brief markup and formatting times in the feed's time zone.
// Mirrors web/templates/feed.html and models.local_time_label, so a brief rendered here looks
// exactly like one the server rendered.

import { renderEmbeds } from "./embeds.js";
import { renderMedia } from "./media.js";

// Python's %b, not Intl's en-GB "short" month (which says "Sept").
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const formatters = new Map();

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** An element holding text a person wrote: its direction comes from the text (Arabic, Hebrew). */
export function userText(tag, className, text) {
  const node = el(tag, className, text);
  node.dir = "auto";
  return node;
}

function partsIn(date, timeZone) {
  let formatter = formatters.get(timeZone);
  if (!formatter) {
    const options = { year: "numeric", month: "numeric", day: "numeric",
      hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
    try {
      formatter = new Intl.DateTimeFormat("en-GB", { ...options, timeZone });
    } catch {
      formatter = new Intl.DateTimeFormat("en-GB", options); // unknown zone: the reader's own
    }
    formatters.set(timeZone, formatter);
  }
  return Object.fromEntries(formatter.formatToParts(date).map((part) => [part.type, part.value]));
}

/** The local date in the zone, e.g. "2026-11-24"; it changing means time labels must be redone. */
export function dayKey(date, timeZone) {
  const parts = partsIn(date, timeZone);
  return `${parts.year}-${parts.month}-${parts.day}`;
}

/** "HH:MM" on today's local date in the zone, else "D Mon HH:MM". */
export function formatBriefTime(iso, timeZone, now = new Date()) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const parts = partsIn(date, timeZone);
  const clock = `${parts.hour}:${parts.minute}`;
  if (dayKey(date, timeZone) === dayKey(now, timeZone)) return clock;
  return `${Number(parts.day)} ${MONTHS[Number(parts.month) - 1]} ${clock}`;
}

/** Rewrite only the time labels whose text changed (e.g. yesterday's briefs after midnight). */
export function refreshTimes(root, timeZone) {
  const now = new Date();
  for (const time of root.querySelectorAll("time[datetime]:not(.embed-day)")) {
    const text = formatBriefTime(time.dateTime, timeZone, now);
    if (text && time.textContent !== text) time.textContent = text;
  }
}

function safeHttpUrl(url) {
  if (!url) return null;
  try {
    const parsed = new URL(url, location.href);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch {
    return null;
  }
}

/** A tag as a link to its topic page: `tagBase` (the page's own path) or the live page. */
function renderTag(tag, slug, tagBase) {
  const link = el("a", "brief-tag", tag);
  link.href = `${tagBase ?? `/feeds/${encodeURIComponent(slug)}`}?tag=${encodeURIComponent(tag)}`;
  const item = userText("li");
  item.append(link);
  return item;
}

function renderFoot(brief, slug, tagBase) {
  const foot = el("footer", "brief-foot");
  const pieces = [];
  if (brief.author) pieces.push(userText("span", "brief-author", brief.author));
  const href = safeHttpUrl(brief.url);
  if (href) {
    const link = el("a", "brief-link", "Source");
    link.href = href;
    link.rel = "noopener noreferrer nofollow";
    pieces.push(link);
  }
  if (brief.tags?.length) {
    const tags = el("ul", "brief-tags");
    tags.append(...brief.tags.map((tag) => renderTag(tag, slug, tagBase)));
    pieces.push(tags);
  }
  pieces.forEach((piece, i) => foot.append(...(i ? [" ", piece] : [piece])));
  return foot;
}

/** `<time datetime=iso>label</time>` in the feed's zone. */
function renderTime(iso, timeZone) {
  const time = el("time", null, formatBriefTime(iso, timeZone));
  time.dateTime = iso;
  return time;
}

/** The brief's permalink on the live page; the fragment is its stream id. */
export function briefUrl(slug, id) {
  return `/feeds/${encodeURIComponent(slug)}#${id}`;
}

/** A brief's public correction: "Corrected HH:MM — note" and a link to what changed. */
function renderCorrection(brief, slug, timeZone) {
  const line = el("p", "brief-correction", "Corrected ");
  const changes = el("a", "brief-changes", "What changed");
  changes.href = `/feeds/${encodeURIComponent(slug)}/briefs/${brief.id}/changes`;
  line.append(renderTime(brief.correction.at, timeZone), " — ",
    userText("span", "brief-correction-note", brief.correction.note), " ", changes);
  return line;
}

/**
 * The <li class="brief"> for one brief, as the server's _brief.html would render it. `withId:
 * false` leaves out the element id (a copy, e.g. in the pinned box: ids must stay unique);
 * `tagBase` is the path its tag links filter (the day page's own), else the live page.
 */
export function renderBrief(brief, { slug, timeZone, withId = true, tagBase }) {
  const item = el("li", brief.key_event ? "brief brief--key" : "brief");
  if (withId) item.id = brief.id;
  item.dataset.id = brief.id;
  item.dataset.version = String(brief.version ?? 1);

  const permalink = el("a", "brief-permalink");
  permalink.href = briefUrl(slug, brief.id);
  permalink.append(renderTime(brief.published_at, timeZone));
  const meta = el("p", "brief-meta");
  meta.append(permalink);
  if (brief.key_event) meta.append(" ", el("span", "brief-key-label", "Key event"));
  if (brief.updated_at) {
    const updated = el("span", "brief-updated", "Updated ");
    updated.append(renderTime(brief.updated_at, timeZone));
    meta.append(" ", updated);
  }

  const body = userText("div", "brief-body");
  body.innerHTML = brief.body ?? ""; // sanitised by the server: p, br, a[href], strong, em, ul, ol, li, blockquote

  const article = el("article");
  article.append(meta, userText("h2", "brief-headline", brief.headline), body,
    ...renderMedia(brief));
  const embeds = renderEmbeds(brief, timeZone, formatBriefTime);
  if (embeds) article.append(embeds);
  article.append(renderFoot(brief, slug, tagBase));
  if (brief.correction) article.append(renderCorrection(brief, slug, timeZone));
  item.append(article);
  return item;
}

/**
 * One entry of the key events list:
 * `<li data-id><a href><time>HH:MM</time> <span dir=auto>headline</span></a></li>`.
 */
export function renderKeyEvent(brief, { slug, timeZone }) {
  const link = el("a");
  link.href = briefUrl(slug, brief.id);
  link.append(renderTime(brief.published_at, timeZone), " ",
    userText("span", "key-event-headline", brief.headline));
  const item = el("li");
  item.dataset.id = brief.id;
  item.append(link);
  return item;
}
