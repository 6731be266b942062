// The story so far on a page: the lead and the summary box, built exactly as
// web/templates/_story.html renders them, and kept live from lead_* and summary_* frames.
// A frame older than what the page shows (a lower version) changes nothing.

import { renderMedia } from "./media.js";
import { el, formatBriefTime, userText } from "./render.js";

function renderTime(iso, timeZone) {
  const time = el("time", null, formatBriefTime(iso, timeZone));
  time.dateTime = iso;
  return time;
}

function updatedLine(className, iso, timeZone) {
  const line = el("p", className, "Updated ");
  line.append(renderTime(iso, timeZone));
  return line;
}

/** Fill the lead <article> with `lead`'s content. */
export function renderLead(box, lead, timeZone) {
  const headline = userText("h2", "lead-headline", lead.headline);
  headline.id = "lead-headline";
  const parts = [headline];
  if (lead.standfirst) parts.push(userText("p", "lead-standfirst", lead.standfirst));
  if (lead.media?.length) {
    const media = el("div", "lead-media"); // the pictures as a brief shows them (media.js)
    media.append(...renderMedia({ media: lead.media, gallery: false }));
    parts.push(media);
  }
  const body = userText("div", "lead-body");
  body.innerHTML = lead.body ?? ""; // sanitised by the server, as a brief's body is
  const meta = el("p", "lead-meta");
  if (lead.author) meta.append(userText("span", "lead-author", lead.author), " · ");
  meta.append("Updated ", renderTime(lead.updated_at, timeZone));
  parts.push(body, meta);
  box.replaceChildren(...parts);
}

/** Fill the summary <section> with `summary`'s content. */
export function renderSummary(box, summary, timeZone) {
  const title = userText("h2", "summary-title", summary.title);
  title.id = "summary-title";
  const list = el("ul", "summary-items");
  for (const item of summary.items ?? []) {
    const li = userText("li");
    li.innerHTML = item; // sanitised by the server, as a brief's body is
    list.append(li);
  }
  box.replaceChildren(title, list, updatedLine("summary-updated", summary.updated_at, timeZone));
}

/**
 * The lead and summary boxes of a page (either may be missing: the embed has no lead).
 * `announce(text)` is told "Summary updated 14:05" and the like, politely.
 */
export function createStory({ timeZone, announce }) {
  const parts = {
    lead: { box: document.getElementById("lead"), render: renderLead, name: "Lead" },
    summary: { box: document.getElementById("summary"), render: renderSummary, name: "Summary" },
  };

  function shownVersion(box) {
    return Number(box.dataset.version ?? 0);
  }

  function set(kind, value, { quiet = false } = {}) {
    const part = parts[kind];
    if (!part.box || !value) return;
    if (Number(value.version) <= shownVersion(part.box)) return;
    part.render(part.box, value, timeZone);
    part.box.dataset.version = String(value.version);
    part.box.hidden = false;
    if (quiet) return;
    part.box.classList.remove(`${kind}--new`);
    void part.box.offsetWidth; // restart the highlight
    part.box.classList.add(`${kind}--new`);
    announce(`${part.name} updated ${formatBriefTime(value.updated_at, timeZone)}`);
  }

  function clear(kind, version, { quiet = false } = {}) {
    const part = parts[kind];
    if (!part.box || Number(version) <= shownVersion(part.box)) return;
    const had = !part.box.hidden;
    part.box.dataset.version = String(version);
    part.box.hidden = true;
    part.box.replaceChildren();
    if (had && !quiet) announce(`${part.name} removed`);
  }

  /** A snapshot's lead and summary: the page as the server has it now, said nothing about. */
  function reset(kind, value) {
    const part = parts[kind];
    if (!part.box) return;
    delete part.box.dataset.version;
    if (value) set(kind, value, { quiet: true });
    else {
      part.box.hidden = true;
      part.box.replaceChildren();
    }
  }

  return {
    handlers: {
      lead_updated: (frame) => set("lead", frame.lead),
      lead_cleared: (frame) => clear("lead", frame.version),
      summary_updated: (frame) => set("summary", frame.summary),
      summary_cleared: (frame) => clear("summary", frame.version),
    },
    reset,
    set,
    clear,
    versions: () => ({
      lead: parts.lead.box && !parts.lead.box.hidden ? shownVersion(parts.lead.box) : null,
      summary: parts.summary.box && !parts.summary.box.hidden ? shownVersion(parts.summary.box) : null,
    }),
  };
}
