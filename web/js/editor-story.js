// The editor's "story so far" panel: write or clear the feed's lead (headline, standfirst, body,
// author, pictures) and its summary box (a title and points: add, remove, reorder). Each save
// sends the version the form was based on (If-Match); a 412 loads the current version into the
// form and keeps the editor's own text beside it to re-apply, as corrections do.

import { api, apiUrl } from "./api.js";
import { clearErrors, setMessage, showError } from "./editor-form.js";
import { upload } from "./editor-media.js";
import { limits } from "./limits.js";
import { mediaPath } from "./media.js";
import { el, formatBriefTime, userText } from "./render.js";

const parts = {}; // lead and summary: their form, fields, message, state line, base version
const view = { slug: null, timeZone: "UTC" };

function byId(id) {
  return document.getElementById(id);
}

// --- rows of the pictures and points lists ------------------------------------------------------

function rowButton(text, label, onClick) {
  const button = el("button", "button button-small", text);
  button.type = "button";
  button.setAttribute("aria-label", label);
  button.addEventListener("click", onClick);
  return button;
}

function labelled(labelText, input) {
  const label = el("label", "story-row-field");
  label.append(el("span", null, labelText), input);
  return label;
}

function textInput(className, value, maxLength) {
  const input = el("input", className);
  input.dir = "auto";
  input.value = value ?? "";
  if (maxLength) input.maxLength = maxLength;
  return input;
}

/** One point of the summary: its text, and buttons to move it up or down or remove it. */
function pointRow(text = "") {
  const row = el("li", "story-row");
  const area = el("textarea", "summary-point");
  area.dir = "auto";
  area.rows = 2;
  area.value = text;
  if (limits.summary_item) area.maxLength = limits.summary_item;
  area.setAttribute("aria-label", "Point");
  row.append(area,
    rowButton("↑", "Move point up", () => row.previousElementSibling?.before(row)),
    rowButton("↓", "Move point down", () => row.nextElementSibling?.after(row)),
    rowButton("Remove", "Remove point", () => row.remove()));
  return row;
}

/** A picture row's upload: choosing a file sends it to /api/media and fills in its id. */
function pictureUpload(idInput) {
  const file = el("input", "media-upload");
  file.type = "file";
  file.accept = "image/jpeg,image/png,image/webp,image/heic";
  const status = el("span", "hint media-upload-status");
  status.setAttribute("role", "status");
  const thumb = el("img", "media-thumb");
  thumb.alt = "";
  thumb.hidden = true;
  file.addEventListener("change", async () => {
    if (!file.files?.length) return;
    status.textContent = "Uploading…";
    try {
      const info = await upload(file.files[0]);
      idInput.value = info.id;
      idInput.dispatchEvent(new Event("input", { bubbles: true })); // the form is now changed
      thumb.src = mediaPath(info.id, `${info.widths[0]}.jpg`);
      thumb.hidden = false;
      status.textContent = "Uploaded: now type its alt text.";
    } catch (error) {
      status.textContent = error.message;
    }
  });
  return [labelled("Upload a picture", file), thumb, status];
}

/** One picture of the lead: an upload (or a media id), alt text (or decorative), caption and
 * credit. */
function mediaRow(media = {}) {
  const row = el("li", "story-row story-media");
  const decorative = el("input", "media-decorative");
  decorative.type = "checkbox";
  decorative.checked = Boolean(media.decorative);
  const id = textInput("media-id", media.id);
  row.append(
    ...pictureUpload(id),
    labelled("Media id", id),
    labelled("Alt text", textInput("media-alt", media.alt)),
    labelled("Decorative (no alt text)", decorative),
    labelled("Caption", textInput("media-caption-input", media.caption)),
    labelled("Credit", textInput("media-credit-input", media.credit)),
    rowButton("Remove", "Remove picture", () => row.remove()),
  );
  return row;
}

function mediaOf(list) {
  return [...list.children].map((row) => ({
    id: row.querySelector(".media-id").value.trim(),
    alt: row.querySelector(".media-alt").value.trim(),
    caption: row.querySelector(".media-caption-input").value.trim(),
    credit: row.querySelector(".media-credit-input").value.trim(),
    decorative: row.querySelector(".media-decorative").checked,
  }));
}

// --- the two forms ---------------------------------------------------------------------------------

const LEAD = {
  name: "lead",
  title: "lead",
  payload(part) {
    const f = part.fields;
    return { headline: f.headline.value.trim(), standfirst: f.standfirst.value.trim(),
      body: f.body.value, author: f.author.value.trim(), media: mediaOf(part.media) };
  },
  fill(part, lead) {
    const f = part.fields;
    f.headline.value = lead?.headline ?? "";
    f.standfirst.value = lead?.standfirst ?? "";
    f.body.value = lead?.body ?? "";
    f.author.value = lead?.author ?? "";
    part.media.replaceChildren(...(lead?.media ?? []).map(mediaRow));
  },
  draftText: (payload) => `${payload.headline}\n\n${payload.standfirst}\n\n${payload.body}`,
};

const SUMMARY = {
  name: "summary",
  title: "summary",
  payload(part) {
    const items = [...part.items.querySelectorAll(".summary-point")].map((a) => a.value.trim()).filter(Boolean);
    return { title: part.fields.title.value.trim(), items };
  },
  fill(part, summary) {
    part.fields.title.value = summary?.title ?? "What we know";
    const items = summary?.items ?? [];
    // Stored points are sanitised HTML; editors edit them as such (a plain point is one <p>).
    part.items.replaceChildren(...items.map((item) => pointRow(item.replace(/^<p>(.*)<\/p>$/s, "$1"))));
    if (!items.length) part.items.append(pointRow());
  },
  draftText: (payload) => [payload.title, ...payload.items.map((item) => `• ${item}`)].join("\n"),
};

function showState(part, value, version) {
  part.version = version;
  part.state.textContent = value
    ? `(version ${version}, updated ${formatBriefTime(value.updated_at, view.timeZone)})`
    : "(none)";
}

function load(part, value, version) {
  part.kind.fill(part, value);
  showState(part, value, version);
  part.dirty = false;
  part.form.querySelector(".your-draft")?.remove();
}

async function fetchCurrent(part) {
  const data = await api("GET", apiUrl(view.slug, part.kind.name));
  return [data[part.kind.name], data.version];
}

async function save(part, event) {
  event.preventDefault();
  const payload = part.kind.payload(part);
  clearErrors(part.fields, part.message);
  part.save.disabled = true;
  try {
    const value = await api("PUT", apiUrl(view.slug, part.kind.name), { body: payload, version: part.version });
    load(part, value, value.version);
    setMessage(part.message, `Saved: readers see it now (version ${value.version}).`, "ok");
  } catch (error) {
    if (error.code === "stale_version") await reloadStale(part, payload, error);
    else showError(part.fields, part.message, error);
  } finally {
    part.save.disabled = false;
  }
}

async function clear(part) {
  clearErrors(part.fields, part.message);
  try {
    await api("DELETE", apiUrl(view.slug, part.kind.name), { version: part.version });
    const [value, version] = await fetchCurrent(part);
    load(part, value, version);
    setMessage(part.message, `Cleared: readers no longer see the ${part.kind.title}.`, "ok");
  } catch (error) {
    if (error.code === "stale_version") await reloadStale(part, part.kind.payload(part), error);
    else setMessage(part.message, error.message, "error");
  }
}

/** 412: show the current version in the form, and the editor's own text beside it. */
async function reloadStale(part, payload, error) {
  const [value, version] = await fetchCurrent(part);
  load(part, value, version);
  setMessage(part.message, `Someone else changed the ${part.kind.title} (now version ${version ?? error.currentVersion}). `
    + "The form now shows their version: re-apply your changes and save again.", "error");
  const yours = el("details", "your-draft");
  yours.append(el("summary", null, "Your unsaved text"), userText("pre", null, part.kind.draftText(payload)));
  part.message.after(yours);
}

/** A lead_* or summary_* frame: show the new state; refill the form unless it has unsaved edits. */
function applyFrame(part, value, version) {
  if (!(Number(version) > part.version)) return; // this page's own save, or older
  if (part.dirty) {
    part.state.textContent = `(changed meanwhile: now version ${version})`;
    return; // the save then gets 412 and shows both versions
  }
  load(part, value, version);
}

// --- wiring ------------------------------------------------------------------------------------

function initPart(kind, fields, list, addRow) {
  const name = kind.name;
  const part = {
    kind, fields, version: 0, dirty: false,
    form: byId(`${name}-form`), message: byId(`${name}-message`), state: byId(`${name}-state`),
    save: byId(`${name}-save`),
  };
  part[list.key] = byId(list.id);
  part.form.addEventListener("input", () => { part.dirty = true; });
  part.form.addEventListener("submit", (event) => save(part, event));
  byId(`${name}-clear`).addEventListener("click", () => clear(part));
  addRow.addEventListener("click", () => {
    part.dirty = true;
    part[list.key].append(list.row());
    part[list.key].lastElementChild.querySelector("input, textarea")?.focus();
  });
  parts[name] = part;
}

/** Wire the panel (once, if the page has it). */
export function initStory() {
  if (!byId("story-panel")) return;
  initPart(LEAD, { headline: byId("lead-headline"), standfirst: byId("lead-standfirst"), body: byId("lead-body"),
    author: byId("lead-author"), media: byId("lead-media") },
  { key: "media", id: "lead-media-list", row: mediaRow }, byId("lead-media"));
  initPart(SUMMARY, { title: byId("summary-title"), items: byId("summary-items") },
    { key: "items", id: "summary-items-list", row: pointRow }, byId("summary-items"));
}

/** Load the feed's lead and summary into the panel. */
export async function loadStory(slug, timeZone) {
  if (!parts.lead) return;
  view.slug = slug;
  view.timeZone = timeZone || "UTC";
  for (const part of Object.values(parts)) {
    const [value, version] = await fetchCurrent(part);
    if (view.slug !== slug) return;
    load(part, value, version);
    setMessage(part.message, "");
  }
}

/** Frame handlers for the editor's socket. */
export const storyHandlers = {
  lead_updated: (frame) => parts.lead && applyFrame(parts.lead, frame.lead, frame.lead?.version),
  lead_cleared: (frame) => parts.lead && applyFrame(parts.lead, null, frame.version),
  summary_updated: (frame) => parts.summary && applyFrame(parts.summary, frame.summary, frame.summary?.version),
  summary_cleared: (frame) => parts.summary && applyFrame(parts.summary, null, frame.version),
};
