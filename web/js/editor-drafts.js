// The editor page's side of the desk that touches the compose form: the desk socket of the
// chosen feed (js/desk.js) feeding the desk panel (js/editor-desk.js) and the presence shown on
// recent briefs (js/editor-recent.js); this tab's own presence (the brief or draft whose form is
// open); and saving the compose form as a draft (Save draft, Submit for review), If-Match on
// every later save.

import { api, apiUrl } from "./api.js";
import { editingText, openDesk } from "./desk.js";
import { deskHandlers, redraw, showDesk, updateDraft } from "./editor-desk.js";
import { clearErrors, fillBriefFields, setMessage, showError } from "./editor-form.js";
import { refreshPresence, setPresence } from "./editor-recent.js";

// composer: what editor.js lends (nodes and the compose form's functions), see initDrafts.
// loading: the draft load in progress (editDraft), which alone ends the composer's busy state.
const state = { desk: null, editing: null, draft: null, composer: null, loading: null };

/**
 * `composer`: {status, warning, note, noteText, composeMessage, headline (nodes), fields() (the
 * compose inputs), payload() (the API body), busy(), setBusy(b), reset(), filled(),
 * loadMedia(draft, current), loadEmbeds(draft, current) (promises; `current()` false: too late)}.
 */
export function initDrafts(composer) {
  state.composer = composer;
}

/** Follow `feed`'s desk for `me` (a `role`); the previous feed's desk stops. */
export function openDeskOf(feed, me, role) {
  const desk = openDesk({
    slug: feed.slug, me, onStatus: setDeskStatus,
    onReload: () => { if (state.desk === desk) openDeskOf(feed, me, role); },
    onPresence: () => {
      redraw();
      refreshPresence();
      warnCompose();
    },
    handlers: {
      ...deskHandlers,
      snapshot: (frame) => showDesk({ slug: feed.slug, timeZone: feed.timezone, me,
        reviewer: role !== "contributor", editorsOf: desk.editorsOf }, frame.drafts),
    },
  });
  state.desk?.stop();
  state.desk = desk;
  setPresence({ editorsOf: desk.editorsOf, onEditing: setEditing });
  desk.connect();
}

export function stopDesk() {
  state.desk?.stop();
  state.desk = null;
  state.editing = null;
  setDeskStatus("static", "");
}

export function reconnectDesk() {
  state.desk?.reconnectNow();
}

/** Our open form: announced to the desk, renewed while it stays open, withdrawn when it closes. */
function setEditing(item, open = true) {
  if (!open && state.editing !== item) return; // another form took over meanwhile
  state.editing = open ? item : null;
  state.desk?.editing(state.editing);
  warnCompose();
}

function setDeskStatus(kind, text) {
  const node = state.composer.status;
  node.dataset.state = kind;
  node.textContent = text;
}

/** The composer's warning when someone else edits the draft loaded into it. */
function warnCompose() {
  const { warning } = state.composer;
  const others = state.draft && state.desk ? state.desk.editorsOf(`draft:${state.draft.id}`) : [];
  warning.hidden = others.length === 0;
  warning.textContent = others.length
    ? `${editingText(others)} this draft too: whoever saves second is asked to reload it.` : "";
}

/**
 * The draft now in the composer. `unloaded`: its media or embeds the composer could not load
 * (their records unreadable), which a save then leaves as they are instead of clearing them.
 */
function holdDraft(draft, unloaded = { media: false, embeds: false }) {
  state.draft = { id: draft.id, version: draft.version, unloaded };
  state.composer.noteText.textContent = `Editing your draft “${draft.headline}”.`;
  state.composer.note.hidden = false;
  setEditing(`draft:${draft.id}`);
}

/** "Edit" on one of my drafts: into the composer (its images and quoted posts too, so they can
 * be removed or added to), announced as being edited. */
export async function editDraft(draft) {
  const { composer } = state;
  composer.reset(); // what was in the composer belongs to no draft
  fillBriefFields(composer.fields(), draft);
  composer.filled();
  holdDraft(draft);
  composer.headline.focus();
  if (!draft.media?.length && !draft.embeds?.length) return;
  const held = state.draft;
  const current = () => state.draft === held;
  const load = Symbol("load");
  state.loading = load;
  composer.setBusy(true); // a save before they are in would drop them
  setMessage(composer.composeMessage, "Loading its images and quoted posts…");
  const [media] = await Promise.allSettled([composer.loadMedia(draft, current),
    composer.loadEmbeds(draft, current)]);
  if (state.loading === load) {
    state.loading = null;
    composer.setBusy(false);
  }
  if (!current()) return;
  if (media.status === "fulfilled") return setMessage(composer.composeMessage, "");
  held.unloaded = { media: true, embeds: false };
  setMessage(composer.composeMessage, `Its images could not be loaded (${media.reason.message}): `
    + "saving keeps them as they are unless you add new ones.", "error");
}

/** The composer holds no draft any more (a new brief, a feed switch, a sign-out). */
export function forgetDraft() {
  if (state.draft) setEditing(`draft:${state.draft.id}`, false);
  state.draft = null;
  state.composer.note.hidden = true;
  state.composer.warning.hidden = true;
}

/** "Save draft" / "Submit for review": create or update (If-Match) the draft, then submit it. */
export async function saveDraft(feed, submit) {
  const { composeMessage: message, headline } = state.composer;
  if (state.composer.busy()) return;
  if (!feed) return setMessage(message, "Choose or create a feed first.", "error");
  const fields = state.composer.fields();
  clearErrors(fields, message);
  if (!headline.value.trim()) {
    return showError(fields, message, { field: "headline", message: "Write a headline first." });
  }
  state.composer.setBusy(true);
  setMessage(message, submit ? "Submitting…" : "Saving…");
  const body = state.composer.payload();
  const held = state.draft;
  // Media the composer could not load are kept, unless new ones were added.
  if (held?.unloaded.media && body.media?.length === 0) {
    delete body.media;
    delete body.gallery;
  }
  if (held?.unloaded.embeds && body.embeds?.length === 0) delete body.embeds;
  const unloaded = { media: Boolean(held?.unloaded.media && !body.media),
    embeds: Boolean(held?.unloaded.embeds && !body.embeds) };
  try {
    let draft = held
      ? await api("PATCH", apiUrl(feed.slug, "drafts", held.id), { body, version: held.version })
      : await api("POST", apiUrl(feed.slug, "drafts"), { body });
    if (submit) draft = await api("POST", apiUrl(feed.slug, "drafts", draft.id, "submit"));
    updateDraft(draft);
    if (submit) {
      forgetDraft();
      state.composer.reset();
      setMessage(message, "Submitted for review: an editor will publish it.", "ok");
    } else {
      holdDraft(draft, unloaded);
      setMessage(message, "Draft saved. Only you and the editors can see it.", "ok");
    }
  } catch (error) {
    if (error.code === "stale_version") error.message = "Someone else changed this draft: reopen it from My drafts.";
    showError(fields, message, error);
  } finally {
    state.composer.setBusy(false);
  }
}
