// The desk panels of the editor page: "My drafts" (edit, submit, discard; a send-back note
// shown), and for editors the review queue (Publish, Send back with a note, Schedule) and the
// schedule list (Unschedule). Kept current by the desk socket's frames (js/desk.js) and by the
// answers to our own requests; a draft never goes back to an older version.

import { api, apiUrl } from "./api.js";
import { editingText } from "./desk.js";
import { isNewer } from "./list.js";
import { el, formatBriefTime, userText } from "./render.js";
import { setMessage } from "./editor-form.js";

const GONE = new Set(["published", "discarded"]);
const STATUS = { draft: "Draft", submitted: "Submitted for review", scheduled: "Scheduled" };
const view = { slug: "", timeZone: "UTC", me: "", reviewer: false, drafts: new Map(), lists: null,
  message: null, editorsOf: () => [], onEdit: () => {} };

const draftPath = (id, ...rest) => apiUrl(view.slug, "drafts", id, ...rest);
const say = (text, kind = "info") => setMessage(view.message, text, kind);

/** `lists`: {mine, queue, scheduled} (<ol>s); `onEdit(draft)` loads a draft into the composer. */
export function initDesk({ lists, message, onEdit }) {
  Object.assign(view, { lists, message, onEdit });
  for (const list of Object.values(lists)) {
    list.addEventListener("click", handleClick);
    list.addEventListener("submit", (event) => {
      event.preventDefault();
      handleForm(event.target);
    });
  }
}

/** A new feed or session: who we are, what we may do, and the snapshot's drafts. */
export function showDesk({ slug, timeZone, me, reviewer, editorsOf }, drafts) {
  Object.assign(view, { slug, timeZone, me, reviewer, editorsOf });
  view.drafts = new Map();
  for (const draft of drafts ?? []) view.drafts.set(draft.id, draft);
  redraw();
}

export function clearDesk() {
  view.drafts.clear();
  for (const list of Object.values(view.lists ?? {})) list.replaceChildren();
}

/** A draft as a frame or an answer has it: kept unless we hold a newer version. */
export function updateDraft(draft) {
  if (!draft?.id) return;
  const known = view.drafts.get(draft.id);
  if (known && isNewer(known.version, draft.version)) return;
  if (GONE.has(draft.status)) view.drafts.delete(draft.id);
  else view.drafts.set(draft.id, draft);
  redraw();
}

/** Every desk event, by type: the draft as it stands now. */
export const deskHandlers = Object.fromEntries(["draft_saved", "draft_submitted", "draft_sent_back",
  "draft_scheduled", "draft_unscheduled", "draft_published", "draft_discarded"]
  .map((type) => [type, (frame) => updateDraft(frame.draft)]));
deskHandlers.draft_schedule_failed = (frame) => {
  updateDraft(frame.draft);
  say(`“${frame.draft?.headline ?? ""}” was not published at its time: ${frame.reason ?? "it failed"}.`, "error");
};

/** Redraw every list (a presence change, a new draft): they are short. */
export function redraw() {
  if (!view.lists) return;
  const all = [...view.drafts.values()].sort((a, b) => String(a.updated_at).localeCompare(String(b.updated_at)));
  view.lists.mine.replaceChildren(...all.filter((d) => d.owner === view.me).map((d) => renderDraft(d, "mine")));
  view.lists.queue.replaceChildren(...(view.reviewer ? all.filter((d) => d.status === "submitted") : [])
    .map((d) => renderDraft(d, "queue")));
  view.lists.scheduled.replaceChildren(...(view.reviewer ? all.filter((d) => d.status === "scheduled") : [])
    .sort((a, b) => String(a.scheduled_for).localeCompare(String(b.scheduled_for)))
    .map((d) => renderDraft(d, "scheduled")));
  for (const list of Object.values(view.lists)) {
    const empty = list.nextElementSibling;
    if (empty?.classList.contains("empty")) empty.hidden = list.children.length > 0;
  }
}

/** A body's text without its markup: parsed inert (DOMParser runs nothing), read as text. */
function plainText(html) {
  return new DOMParser().parseFromString(html, "text/html").body.textContent ?? "";
}

function button(action, text) {
  const node = el("button", `${action} button`, text);
  node.type = "button";
  node.dataset.action = action;
  return node;
}

function renderDraft(draft, where) {
  const item = el("li", "draft-item");
  item.dataset.draft = draft.id;
  const meta = el("p", "recent-meta");
  meta.append(el("span", "badge badge-status", STATUS[draft.status] ?? draft.status));
  if (draft.status === "scheduled" && draft.scheduled_for) {
    const time = el("time", null, formatBriefTime(draft.scheduled_for, view.timeZone));
    time.dateTime = draft.scheduled_for;
    meta.append(" for ", time);
  }
  if (draft.owner !== view.me) meta.append(" · by ", userText("span", "draft-owner", draft.owner ?? ""));
  const others = view.editorsOf(`draft:${draft.id}`);
  if (others.length) meta.append(" ", userText("span", "badge badge-editing", editingText(others)));
  item.append(meta, userText("p", "recent-headline", draft.headline ?? ""));
  if (where === "queue" && draft.body) {
    item.append(userText("p", "draft-body", plainText(draft.body)));
  }
  if (draft.note && draft.status === "draft") {
    const note = el("p", "draft-note");
    note.append(el("strong", null, "Sent back: "), userText("span", null, draft.note));
    item.append(note);
  }
  const actions = el("div", "recent-actions");
  if (where === "mine") {
    actions.append(button("edit", "Edit"));
    if (draft.status === "draft") actions.append(button("submit", "Submit for review"));
    actions.append(button("discard", "Discard"));
  } else if (where === "queue") {
    actions.append(button("publish", "Publish"), button("send-back", "Send back"), button("schedule", "Schedule"));
  } else {
    actions.append(button("unschedule", "Unschedule"));
  }
  item.append(actions, el("div", "draft-extra"));
  return item;
}

function handleClick(event) {
  const action = event.target.closest("button[data-action]")?.dataset.action;
  const item = event.target.closest("li[data-draft]");
  if (!action || !item) return;
  const draft = view.drafts.get(item.dataset.draft);
  if (!draft) return;
  if (action === "edit") view.onEdit(draft);
  else if (action === "submit") act(item, () => api("POST", draftPath(draft.id, "submit")), "Submitted for review.");
  else if (action === "discard") {
    if (window.confirm(`Discard “${draft.headline}”?`)) {
      act(item, () => api("DELETE", draftPath(draft.id), { version: draft.version }), "Draft discarded.");
    }
  } else if (action === "publish") act(item, () => api("POST", draftPath(draft.id, "publish"), { body: {} }), "Published.");
  else if (action === "unschedule") act(item, () => api("POST", draftPath(draft.id, "unschedule")), "Unscheduled: back in the queue.");
  else if (action === "send-back") openForm(item, "send-back", "Note for the author", "text", "Send back");
  else if (action === "schedule") openForm(item, "schedule", "Publish at", "datetime-local", "Schedule");
}

function openForm(item, kind, label, type, submit) {
  const form = el("form", `draft-form draft-${kind}`);
  form.dataset.kind = kind;
  const input = userText("input", "draft-input");
  input.type = type;
  input.id = `draft-${item.dataset.draft}-${kind}`;
  input.required = true;
  const labelEl = el("label", null, label);
  labelEl.htmlFor = input.id;
  const go = el("button", "button button-primary", submit);
  go.type = "submit";
  form.append(labelEl, input, go);
  item.querySelector(".draft-extra").replaceChildren(form);
  input.focus();
}

function handleForm(form) {
  const item = form.closest("li[data-draft]");
  const draft = view.drafts.get(item?.dataset.draft);
  const value = form.querySelector("input").value.trim();
  if (!draft || !value) return;
  if (form.dataset.kind === "send-back") {
    act(item, () => api("POST", draftPath(draft.id, "send-back"), { body: { note: value } }), "Sent back with your note.");
  } else {
    const at = new Date(value);
    if (Number.isNaN(at.getTime())) return say("Choose a date and time.", "error");
    act(item, () => api("POST", draftPath(draft.id, "publish"), { body: { at: at.toISOString() } }),
      `Scheduled for ${formatBriefTime(at.toISOString(), view.timeZone)}.`);
  }
}

/** Run one request for a draft; its answer (a draft, or {brief, draft}) updates the lists. */
async function act(item, request, done) {
  if (item.getAttribute("aria-busy") === "true") return;
  item.setAttribute("aria-busy", "true");
  try {
    const answer = await request();
    const draft = answer?.draft ?? (answer?.id ? answer : null);
    if (draft) updateDraft(draft);
    else if (answer === null) {
      view.drafts.delete(item.dataset.draft); // 204: discarded
      redraw();
    }
    say(done, "ok");
  } catch (error) {
    say(error.message, "error");
  } finally {
    item.removeAttribute("aria-busy");
  }
}
