// "Recent briefs": newest first, each with Edit, Key event, Pin, History and Delete. Kept current
// by the answers to our own requests and by the feed's frames (addBrief, updateBrief, removeBrief,
// setPinned), which may arrive in either order: a brief never goes back to an older version.

import { api, apiUrl } from "./api.js";
import { limits } from "./limits.js";
import { insertInOrder, isNewer, itemIn } from "./list.js";
import { el, formatBriefTime, userText } from "./render.js";
import { briefPayload, clearErrors, fillBriefFields, setMessage, showError } from "./editor-form.js";
import { mediaCorrection } from "./editor-media.js";
import { editingText } from "./desk.js";

const EDIT_FIELDS = [["headline", "Headline"], ["body", "Body"], ["author", "Author"],
  ["url", "Link"], ["tags", "Tags (comma-separated)"],
  ["correction_note", "Correction note (shown to readers)"]];
const view = { slug: "", timeZone: "UTC", pinned: null, briefs: new Map(), list: null, empty: null, message: null,
  editorsOf: () => [], onEditing: () => {} }; // presence (js/desk.js): who else edits a brief; ours
const editBase = new WeakMap(); // edit form → the brief it was filled from
const editMedia = new WeakMap(); // edit form → its media fields (js/editor-media.js), if any

const briefPath = (id, ...rest) => apiUrl(view.slug, "briefs", id, ...rest);
const itemFor = (id) => itemIn(view.list, id);
const say = (text, kind = "info") => setMessage(view.message, text, kind);

/** Presence: `editorsOf(item)` names the others editing it; `onEditing(item, open)` is told
 * when this page opens or closes a brief's edit form. */
export function setPresence({ editorsOf, onEditing }) {
  Object.assign(view, { editorsOf, onEditing });
}

/** Redraw every brief's line after a presence change (the form's warning too). */
export function refreshPresence() {
  for (const id of view.briefs.keys()) refreshItem(id);
  for (const form of view.list?.querySelectorAll(".edit-form") ?? []) warnEditing(form, form.closest("li[data-id]").dataset.id);
}

function warnEditing(form, id) {
  const others = view.editorsOf(`brief:${id}`);
  let warning = form.querySelector(".editing-warning");
  if (!others.length) return warning?.remove();
  if (!warning) {
    warning = el("p", "editor-notice editing-warning");
    warning.setAttribute("role", "status");
    form.prepend(warning);
  }
  warning.textContent = `${editingText(others)} this brief too: whoever saves second is asked to re-apply their changes.`;
}

export function initRecent({ list, empty, message }) {
  Object.assign(view, { list, empty, message });
  list.addEventListener("click", handleClick);
  list.addEventListener("submit", (event) => {
    event.preventDefault();
    saveEdit(event.target);
  });
  list.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) event.target.form?.requestSubmit();
  });
}

export function showRecent(feed, briefs) {
  Object.assign(view, { slug: feed.slug, timeZone: feed.timezone, pinned: feed.pinned ?? null });
  view.briefs = new Map(briefs.map((brief) => [brief.id, brief]));
  view.list.replaceChildren(...briefs.map(renderItem));
  say("");
  view.empty.hidden = briefs.length > 0;
}

export function clearRecent() {
  view.briefs.clear();
  view.list.replaceChildren();
  view.empty.hidden = true;
}

export function addBrief(brief) {
  if (!brief?.id || view.briefs.has(brief.id)) return;
  view.briefs.set(brief.id, brief);
  const item = renderItem(brief);
  item.classList.add("recent-item--new");
  insertInOrder(view.list, item);
  view.empty.hidden = true;
}

/** Replace a listed brief in place, unless we already hold a newer version. */
export function updateBrief(brief) {
  const known = view.briefs.get(brief?.id);
  if (!known || isNewer(known.version, brief.version)) return;
  view.briefs.set(brief.id, brief);
  refreshItem(brief.id);
}

export function removeBrief(id) {
  view.briefs.delete(id);
  itemFor(id)?.remove();
  if (view.pinned === id) view.pinned = null;
  view.empty.hidden = view.briefs.size > 0;
}

export function setPinned(id) {
  const before = view.pinned;
  view.pinned = id ?? null;
  refreshItem(before);
  refreshItem(view.pinned);
}

// --- rendering ---------------------------------------------------------------------------------

function renderItem(brief) {
  const item = el("li", "recent-item");
  item.dataset.id = brief.id;
  const extra = el("div", "recent-extra");
  extra.dataset.mode = "";
  item.append(renderSummary(brief, ""), extra);
  return item;
}

function actionButton(className, text, headlineId) {
  const button = el("button", className, text);
  button.type = "button";
  button.setAttribute("aria-describedby", headlineId); // "Edit, <headline>" for screen readers
  return button;
}

function renderSummary(brief, mode) {
  const pinned = view.pinned === brief.id;
  const time = el("time", null, formatBriefTime(brief.published_at, view.timeZone));
  time.dateTime = brief.published_at;
  const meta = el("p", "recent-meta");
  meta.append(time);
  if (brief.key_event) meta.append(" ", el("span", "badge badge-key", "Key event"));
  if (pinned) meta.append(" ", el("span", "badge badge-pinned", "Pinned"));
  meta.append(" ", el("span", "recent-version", `v${brief.version}`));
  if (brief.updated_at) meta.append(" ", el("span", "recent-updated", `edited ${formatBriefTime(brief.updated_at, view.timeZone)}`));
  const others = view.editorsOf(`brief:${brief.id}`);
  if (others.length) meta.append(" ", userText("span", "badge badge-editing", editingText(others)));

  const headline = userText("p", "recent-headline", brief.headline);
  headline.id = `recent-${brief.id}-headline`;
  const edit = actionButton("edit", "Edit", headline.id);
  const key = actionButton("key-toggle", "Key event", headline.id);
  const history = actionButton("history", "History", headline.id);
  edit.setAttribute("aria-expanded", String(mode === "edit"));
  key.setAttribute("aria-pressed", String(Boolean(brief.key_event)));
  history.setAttribute("aria-expanded", String(mode === "history"));
  const actions = el("div", "recent-actions");
  const pin = actionButton("pin", pinned ? "Unpin" : "Pin", headline.id);
  const remove = actionButton("delete", "Delete", headline.id);
  actions.append(edit, key, pin, history, remove);
  // Resolving a brief's embeds again is how a deleted post is found (the card then says so).
  if (brief.embeds?.length) actions.append(actionButton("recheck", "Re-check quoted posts", headline.id));
  for (const button of actions.querySelectorAll("button:not(.history)")) button.dataset.needs = "editor";

  const summary = el("div", "recent-summary");
  summary.append(meta, headline, actions);
  return summary;
}

/** Redraw an item's summary, keeping keyboard focus on the same button. */
function refreshItem(id) {
  const item = itemFor(id);
  const brief = view.briefs.get(id);
  if (!item || !brief) return;
  const old = item.querySelector(".recent-summary");
  const focused = old.contains(document.activeElement) ? document.activeElement.classList[0] : null;
  const fresh = renderSummary(brief, item.querySelector(".recent-extra").dataset.mode);
  old.replaceWith(fresh);
  if (focused) fresh.querySelector(`button.${focused}`)?.focus();
}

function setPanel(item, mode, content) {
  const extra = item.querySelector(".recent-extra");
  if (extra.dataset.mode === "edit" && mode !== "edit") view.onEditing(`brief:${item.dataset.id}`, false);
  extra.dataset.mode = mode;
  extra.replaceChildren(...(content ? [content] : []));
  refreshItem(item.dataset.id);
}

// --- actions -----------------------------------------------------------------------------------

function handleClick(event) {
  const button = event.target.closest("button");
  const item = button?.closest("li[data-id]");
  if (!item || button.type === "submit") return;
  const id = item.dataset.id;
  const mode = item.querySelector(".recent-extra").dataset.mode;
  const action = button.classList[0];
  if (action === "edit") mode === "edit" ? closePanel(item) : openEditor(item, view.briefs.get(id));
  else if (action === "history") mode === "history" ? closePanel(item) : showHistory(item, id);
  else if (action === "cancel" || action === "close") closePanel(item);
  else if (action === "key-toggle") act(item, (brief) => api("PATCH", briefPath(id),
    { body: { key_event: !brief.key_event }, version: brief.version }), (brief) => {
    updateBrief(brief);
    say(brief.key_event ? "Marked as a key event." : "No longer a key event.", "ok");
  });
  else if (action === "pin") act(item, () => (view.pinned === id
    ? api("DELETE", apiUrl(view.slug, "pin"))
    : api("PUT", apiUrl(view.slug, "pin"), { body: { brief_id: id } })), (data) => {
    setPinned(data?.pinned?.id ?? null);
    say(data?.pinned ? "Pinned to the top of the feed." : "Unpinned.", "ok");
  });
  else if (action === "delete") deleteBrief(item, id);
  else if (action === "recheck") act(item, (brief) => api("PATCH", briefPath(id),
    { body: { embeds: brief.embeds.map((embed) => ({ url: embed.url })) }, version: brief.version }), (brief) => {
    updateBrief(brief);
    say(brief.embeds.some((embed) => embed.deleted)
      ? "Checked: a quoted post is gone, and its card now says it is a quotation of a deleted post."
      : "Checked: the quoted posts are still there.", "ok");
  });
}

function closePanel(item, focusClass = null) {
  const mode = item.querySelector(".recent-extra").dataset.mode;
  setPanel(item, "", null);
  item.querySelector(`.recent-summary button.${focusClass ?? (mode || "edit")}`)?.focus();
}

/** Run one request for an item; a second click while it runs is ignored. */
async function act(item, request, done) {
  const id = item.dataset.id;
  if (item.getAttribute("aria-busy") === "true") return;
  item.setAttribute("aria-busy", "true");
  try {
    done(await request(view.briefs.get(id)));
  } catch (error) {
    await recover(id, error);
  } finally {
    item.removeAttribute("aria-busy");
  }
}

/** After a refused change: drop a vanished brief, or fetch the newer version someone else saved. */
async function recover(id, error) {
  if (error.code === "brief_not_found") {
    removeBrief(id);
    say("That brief no longer exists: someone else deleted it.", "error");
  } else if (error.code === "stale_version") {
    const current = await fetchBrief(id);
    if (current) say(`Someone else changed this brief (now version ${current.version}). Check it and try again.`, "error");
    return current;
  } else {
    say(error.message, "error");
  }
  return null;
}

async function fetchBrief(id) {
  try {
    const brief = await api("GET", briefPath(id));
    updateBrief(brief);
    return brief;
  } catch (error) {
    if (error.status === 404) removeBrief(id);
    say(error.status === 404 ? "Someone else deleted this brief." : error.message, "error");
    return null;
  }
}

function deleteBrief(item, id) {
  const brief = view.briefs.get(id);
  if (!window.confirm(`Delete “${brief.headline}”? It disappears from every reader's page.`)) return;
  act(item, () => api("DELETE", briefPath(id), { version: brief.version }), () => {
    removeBrief(id);
    say("Brief deleted.", "ok");
  });
}

// --- edit --------------------------------------------------------------------------------------

function editFields(form) {
  return Object.fromEntries(EDIT_FIELDS.map(([name]) => [name, form.querySelector(`.edit-${name}`)]));
}

function openEditor(item, brief) {
  const form = el("form", "edit-form");
  form.noValidate = true;
  form.setAttribute("aria-label", "Edit brief");
  for (const [name, label] of EDIT_FIELDS) {
    const input = userText(name === "body" ? "textarea" : "input", `edit-${name}`);
    input.id = `edit-${brief.id}-${name}`;
    input.name = name;
    const note = el("p", "field-error");
    note.id = `${input.id}-error`;
    input.setAttribute("aria-describedby", note.id);
    const labelEl = el("label", null, label);
    labelEl.htmlFor = input.id;
    const row = el("div", "field");
    row.append(labelEl, input, note);
    form.append(row);
  }
  const fields = editFields(form);
  Object.assign(fields.headline, { required: true, maxLength: limits.headline });
  fields.author.maxLength = limits.author;
  fields.correction_note.maxLength = limits.correction_note;
  Object.assign(fields.url, { type: "url", inputMode: "url" });
  fields.body.rows = 6;
  const message = el("p", "form-message");
  message.setAttribute("role", "status");
  const save = el("button", "save button button-primary", "Save");
  const cancel = el("button", "cancel button", "Cancel");
  cancel.type = "button";
  const buttons = el("div", "form-actions");
  buttons.append(save, cancel);
  const media = mediaCorrection(brief);
  if (media) {
    form.append(media.node);
    editMedia.set(form, media);
  }
  form.append(buttons, message);
  fillBriefFields(fields, brief);
  editBase.set(form, brief);
  setPanel(item, "edit", form);
  warnEditing(form, brief.id);
  view.onEditing(`brief:${brief.id}`, true);
  fields.headline.focus();
}

/** Only the fields that differ from the brief the form was filled from. */
function changes(payload, base) {
  const before = { headline: base.headline, body: base.body ?? "", author: base.author ?? "",
    url: base.url ?? null, tags: base.tags ?? [] };
  return Object.fromEntries(Object.entries(payload)
    .filter(([name, value]) => JSON.stringify(value) !== JSON.stringify(before[name])));
}

async function saveEdit(form) {
  const item = form.closest("li[data-id]");
  const fields = editFields(form);
  const message = form.querySelector(".form-message");
  const save = form.querySelector(".save");
  if (save.disabled) return;
  const base = editBase.get(form);
  const patch = changes(briefPayload(fields), base);
  const media = editMedia.get(form)?.changes();
  if (media) patch.media = media;
  clearErrors(fields, message);
  if (Object.keys(patch).length === 0) {
    closePanel(item);
    say("Nothing changed.");
    return;
  }
  const note = fields.correction_note.value.trim(); // none: a silent fix
  if (note) patch.correction_note = note;
  save.disabled = true;
  try {
    const brief = await api("PATCH", briefPath(base.id), { body: patch, version: base.version });
    updateBrief(brief);
    closePanel(item);
    say(`Saved: now version ${brief.version}.`, "ok");
  } catch (error) {
    if (error.code === "stale_version") await reloadEdit(form, fields, message, error);
    else if (error.code === "brief_not_found") await recover(base.id, error);
    else showError(fields, message, error);
  } finally {
    save.disabled = false;
  }
}

/** 412: load the current version into the form and keep the editor's text beside it to re-apply. */
async function reloadEdit(form, fields, message, error) {
  const draft = briefPayload(fields);
  const current = await fetchBrief(editBase.get(form).id);
  if (!current) return;
  fillBriefFields(fields, current);
  editBase.set(form, current);
  const media = editMedia.get(form);
  const theirs = mediaCorrection(current);
  if (media && theirs) {
    media.node.replaceWith(theirs.node);
    editMedia.set(form, theirs);
  }
  setMessage(message, `Someone else changed this brief (now version ${current.version ?? error.currentVersion}). `
    + "The form now shows their version: re-apply your changes and save again.", "error");
  const yours = el("details", "your-draft");
  yours.append(el("summary", null, "Your unsaved text"), userText("p", "recent-headline", draft.headline),
    userText("pre", null, draft.body));
  form.querySelector(".your-draft")?.remove();
  message.after(yours);
  fields.headline.focus();
}

// --- history -----------------------------------------------------------------------------------

async function showHistory(item, id) {
  const panel = el("div", "history-panel");
  panel.append(el("p", null, "Loading history…"));
  setPanel(item, "history", panel);
  const close = el("button", "close button", "Close history");
  close.type = "button";
  try {
    const { versions } = await api("GET", briefPath(id, "history"));
    const table = el("table", "history-table");
    const head = el("tr");
    head.append(...["Version", "Action", "When", "Editor", "Correction note"].map((text) => el("th", null, text)));
    table.append(el("caption", null, "History"), head);
    let shown = null; // the public correction the versions so far carry
    for (const version of versions) {
      const row = el("tr");
      row.append(...[`v${version.version}`, version.action, formatBriefTime(version.at, view.timeZone) || version.at,
        version.editor ?? "—"].map((text) => userText("td", null, String(text ?? ""))));
      // A version carries the latest note until another replaces it: the note is this one's
      // only where it changed (a silent fix shows none).
      const correction = version.brief ? version.brief.correction ?? null : shown;
      const fresh = correction && JSON.stringify(correction) !== JSON.stringify(shown);
      row.append(userText("td", "history-note", fresh ? correction.note : ""));
      shown = correction;
      table.append(row);
    }
    panel.replaceChildren(table, close);
  } catch (error) {
    panel.replaceChildren(el("p", "field-error", error.message), close);
  }
}
