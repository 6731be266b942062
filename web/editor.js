// The editor page: sign in with a token, choose or create a feed, compose with a preview,
// publish (a contributor: save a draft, submit it for review), and keep "Recent briefs" current
// from the feed's WebSocket and the desk (drafts, the review queue, presence) from the desk's.

import { api, apiUrl, newIntentKey, token, whenUnauthorized } from "./js/api.js";
import { createConnection } from "./js/connection.js";
import { limits } from "./js/limits.js";
import { el, formatBriefTime, renderBrief } from "./js/render.js";
import { briefPayload, clearErrors, setMessage, showError } from "./js/editor-form.js";
import { clearEmbeds, embedRefs, initEmbedPicker, loadEmbeds } from "./js/editor-embeds.js";
import { createMediaEditor } from "./js/editor-media.js";
import { addBrief, clearRecent, initRecent, removeBrief, setPinned, showRecent, updateBrief } from "./js/editor-recent.js";
import { initStory, loadStory, storyHandlers } from "./js/editor-story.js";
import { clearDesk, initDesk } from "./js/editor-desk.js";
import { editDraft, forgetDraft, initDrafts, openDeskOf, reconnectDesk, saveDraft, stopDesk } from "./js/editor-drafts.js";

const FEED_KEY = "livefeed.editor.feed";
const NEAR_LIMIT = 20; // the headline counter warns this many characters before the limit
const COMMON_ZONES = ["Europe/London", "Europe/Paris", "Europe/Kyiv", "America/New_York",
  "America/Los_Angeles", "Asia/Kolkata", "Asia/Tokyo", "Australia/Sydney"]; // without Intl.supportedValuesOf
const INVALID_TOKEN = "That token is not valid or was revoked";

const page = {}; // elements, filled in by start()
// publishKey: the Idempotency-Key of the draft being published, kept until it is published or
// edited, so publishing it again after "Couldn't reach the server" cannot post it twice.
const view = { editor: "", role: "", feed: null, connection: null, generation: 0, busy: false, publishKey: null };
let media = null; // the compose form's images and audio (js/editor-media.js)

const composeFields = () => ({ headline: page.headline, body: page.body, author: page.author,
  url: page.url, tags: page.tags, key_event: page.keyEvent, embeds: page.embedUrl });

// --- session -----------------------------------------------------------------------------------

async function signIn(event) {
  event.preventDefault();
  const value = page.token.value.trim();
  const fields = { token: page.token };
  if (!value) return showError(fields, null, { field: "token", message: "Enter your editor token." });
  if (page.signIn.disabled) return;
  page.signIn.disabled = true;
  try {
    const me = await api("GET", "/api/me", { auth: value });
    token.set(value);
    page.token.value = "";
    clearErrors(fields);
    await startSession(me.editor, me.role);
  } catch (error) {
    showError(fields, null, { field: "token", message: error.status === 401 ? INVALID_TOKEN : error.message });
  } finally {
    page.signIn.disabled = false;
  }
}

async function startSession(name, role) {
  view.editor = name;
  view.role = role;
  document.body.dataset.role = role;
  page.editorName.textContent = name;
  page.editorRole.textContent = role;
  page.shortcutHint.textContent = role === "contributor" ? "" : page.shortcutHint.dataset.text;
  if (!page.author.value) page.author.value = name;
  page.signInPanel.hidden = true;
  page.session.hidden = false;
  page.workspace.hidden = false;
  await loadFeeds();
}

function signOut(reason) {
  token.clear();
  stopConnection();
  view.feed = null;
  view.generation += 1; // answers still on their way belong to the old session
  clearRecent();
  delete document.body.dataset.role;
  page.composeForm.reset();
  clearEmbeds();
  clearPreview();
  page.workspace.hidden = true;
  page.session.hidden = true;
  page.signInPanel.hidden = false;
  if (reason) showError({ token: page.token }, null, { field: "token", message: reason });
  else page.token.focus();
}

async function resumeSession() {
  if (!token.get()) return;
  try {
    const me = await api("GET", "/api/me");
    await startSession(me.editor, me.role);
  } catch (error) {
    if (error.status !== 401) showError({ token: page.token }, null, { field: "token", message: error.message });
  }
}

// --- feeds -------------------------------------------------------------------------------------

async function loadFeeds(preferred) {
  let feeds;
  try {
    ({ feeds } = await api("GET", "/api/feeds"));
  } catch (error) {
    return setMessage(page.feedMessage, error.message, "error");
  }
  page.feedSelect.replaceChildren(...feeds.map((feed) => {
    const option = el("option", null, feedLabel(feed));
    option.dir = "auto";
    option.value = feed.slug;
    return option;
  }));
  page.noFeeds.hidden = feeds.length > 0;
  page.feedBar.hidden = feeds.length === 0;
  const fromUrl = new URLSearchParams(location.search).get("feed");
  const slug = [preferred, fromUrl, sessionStorage.getItem(FEED_KEY)]
    .find((s) => s && feeds.some((feed) => feed.slug === s)) ?? feeds[0]?.slug;
  if (slug) await selectFeed(slug);
}

async function selectFeed(slug) {
  const generation = ++view.generation;
  stopConnection();
  page.feedSelect.value = slug;
  sessionStorage.setItem(FEED_KEY, slug);
  history.replaceState(null, "", `${location.pathname}?feed=${encodeURIComponent(slug)}`);
  setMessage(page.feedMessage, "Loading…");
  clearPreview();
  try {
    const feed = await api("GET", apiUrl(slug));
    const { briefs } = await api("GET", `${apiUrl(slug, "briefs")}?limit=50`);
    if (generation !== view.generation) return;
    showFeed(feed);
    showRecent(feed, briefs);
    await loadStory(slug, feed.timezone);
    setMessage(page.feedMessage, "");
    view.connection = createConnection({
      slug, lastEventId: feed.last_event_id || "0-0", handlers,
      onReload: () => selectFeed(slug), onStatus: setConnectionStatus,
    });
    view.connection.connect();
    openDeskOf(feed, view.editor, view.role);
  } catch (error) {
    if (generation === view.generation) setMessage(page.feedMessage, error.message, "error");
  }
}

function stopConnection() {
  view.connection?.stop();
  view.connection = null;
  forgetDraft(); // before the desk stops: it withdraws the draft's presence
  stopDesk();
  clearDesk();
  setConnectionStatus("static", "Not connected");
}

/** The connection line; `spoken` (if given) replaces a ticking countdown so it is read out once. */
function setConnectionStatus(state, text, spoken = text) {
  page.connStatus.dataset.state = state;
  if (page.connStatus.textContent !== spoken) page.connStatus.textContent = spoken;
}

function showFeed(feed) {
  view.feed = feed;
  const ended = feed.status === "ended";
  page.feedStatus.textContent = ended ? "Coverage ended" : "Live";
  page.feedStatus.dataset.status = feed.status;
  page.coverage.textContent = ended ? "Reopen coverage" : "End coverage";
  page.feedLink.href = `/feeds/${encodeURIComponent(feed.slug)}`;
  page.endedNote.hidden = !ended;
  const option = [...page.feedSelect.options].find((o) => o.value === feed.slug);
  if (option) option.textContent = feedLabel(feed);
}

/** "Title (slug)", or the title alone when it already ends with the slug, e.g. "… (demo)". */
function feedLabel(feed) {
  return feed.title.endsWith(`(${feed.slug})`) ? feed.title : `${feed.title} (${feed.slug})`;
}

async function toggleCoverage() {
  const feed = view.feed;
  if (!feed || page.coverage.getAttribute("aria-busy") === "true") return;
  const status = feed.status === "ended" ? "live" : "ended";
  page.coverage.setAttribute("aria-busy", "true");
  try {
    const updated = await api("PATCH", apiUrl(feed.slug), { body: { status } });
    if (view.feed?.slug === feed.slug) showFeed({ ...view.feed, ...updated });
    setMessage(page.feedMessage, status === "ended" ? "Coverage ended: readers now see the closing note."
      : "Coverage reopened.", "ok");
  } catch (error) {
    setMessage(page.feedMessage, error.message, "error");
  } finally {
    page.coverage.removeAttribute("aria-busy");
  }
}

async function createFeed(event) {
  event.preventDefault();
  const fields = { slug: page.newSlug, title: page.newTitle, timezone: page.newTimezone,
    language: page.newLanguage };
  if (page.createFeed.disabled) return;
  clearErrors(fields, page.newFeedMessage);
  page.createFeed.disabled = true;
  try {
    const feed = await api("POST", "/api/feeds", { body: { slug: page.newSlug.value.trim(),
      title: page.newTitle.value.trim(), timezone: page.newTimezone.value.trim(),
      language: page.newLanguage.value.trim() || "en" } });
    page.newFeedForm.reset();
    page.newTimezone.value = localZone();
    page.newFeed.open = false;
    await loadFeeds(feed.slug);
    setMessage(page.feedMessage, `Created “${feed.title}”.`, "ok");
  } catch (error) {
    if (error.status === 409 && !error.field) error.field = "slug"; // the slug is taken
    showError(fields, page.newFeedMessage, error);
  } finally {
    page.createFeed.disabled = false;
  }
}

function localZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

function fillZones() {
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : COMMON_ZONES;
  page.zones.replaceChildren(...["UTC", ...zones.filter((zone) => zone !== "UTC")].map((zone) => {
    const option = el("option");
    option.value = zone;
    return option;
  }));
  page.newTimezone.value = localZone();
}

// --- frames ------------------------------------------------------------------------------------

/** "Recent briefs" and the feed's state follow the feed's frames; a snapshot never comes (we
 * always resume from an id). */
const handlers = {
  brief: (frame) => addBrief(frame.brief),
  brief_updated: (frame) => updateBrief(frame.brief),
  brief_deleted: (frame) => removeBrief(frame.brief_id),
  pinned: (frame) => setPinned(frame.brief_id),
  unpinned: () => setPinned(null),
  feed_updated: ({ feed }) => {
    if (feed?.slug === view.feed?.slug) showFeed({ ...view.feed, ...feed });
  },
  ...storyHandlers,
};

// --- compose -----------------------------------------------------------------------------------

function updateCount() {
  const length = page.headline.value.length;
  page.headlineCount.textContent = `${length} / ${limits.headline}`;
  page.headlineCount.dataset.near = String(length > limits.headline - NEAR_LIMIT);
}

function setBusy(busy) {
  view.busy = busy;
  page.preview.disabled = busy;
  page.publish.disabled = busy;
  page.saveDraft.disabled = busy;
  page.submitDraft.disabled = busy;
  page.composeForm.setAttribute("aria-busy", String(busy));
}

/** Preview or publish the form; one request at a time, so a brief is never posted twice. */
async function send(kind) {
  const feed = view.feed;
  if (view.busy) return;
  if (!feed) return setMessage(page.composeMessage, "Choose or create a feed first.", "error");
  const fields = composeFields();
  clearErrors(fields, page.composeMessage);
  if (!page.headline.value.trim()) {
    return showError(fields, page.composeMessage, { field: "headline", message: "Write a headline first." });
  }
  if (media.missingAlt()) return setMessage(page.composeMessage, "An image needs its alt text.", "error");
  const publishing = kind === "publish";
  const hadFocus = document.activeElement;
  setBusy(true);
  setMessage(page.composeMessage, publishing ? "Publishing…" : "Preparing the preview…");
  const body = { ...briefPayload(fields), ...media.payload(), embeds: embedRefs() };
  if (publishing && page.composeForm.elements.notify?.checked) body.notify = true; // a breaking alert
  const draft = JSON.stringify([feed.slug, body]);
  if (publishing && view.publishKey?.draft !== draft) view.publishKey = { draft, key: newIntentKey() };
  try {
    const brief = await api("POST", apiUrl(feed.slug, ...(publishing ? ["briefs"] : ["briefs", "preview"])),
      { body, key: publishing ? view.publishKey.key : undefined });
    if (publishing) view.publishKey = null;
    if (publishing) published(brief, feed);
    else showPreview(brief, feed);
  } catch (error) {
    if (error.code === "feed_ended") error.message = "Coverage of this feed has ended: reopen it to publish.";
    if (error.status === 0 && publishing) {
      error.message = "Couldn't reach the server, so the brief may or may not have been published. "
        + "Publishing it again is safe: it will not appear twice.";
    }
    showError(fields, page.composeMessage, error);
  } finally {
    setBusy(false);
    if (hadFocus?.disabled === false && document.activeElement === document.body) hadFocus.focus();
  }
}

function resetCompose() {
  const author = page.author.value;
  page.composeForm.reset();
  clearEmbeds();
  media.reset();
  page.author.value = author;
  updateCount();
  clearPreview();
}

function published(brief, feed) {
  resetCompose();
  if (view.feed?.slug === feed.slug) addBrief(brief);
  setMessage(page.composeMessage, `Published ${formatBriefTime(brief.published_at, feed.timezone)}`, "ok");
  page.headline.focus();
}

/** Forget the preview and any compose messages: after a publish, a feed switch or a sign-out. */
function clearPreview() {
  page.previewOutput.replaceChildren();
  page.previewPanel.hidden = true;
  clearErrors(composeFields(), page.composeMessage);
}

function showPreview(brief, feed) {
  const shown = { ...brief, id: brief.id ?? "preview", published_at: brief.published_at ?? new Date().toISOString() };
  const item = renderBrief(shown, { slug: feed.slug, timeZone: feed.timezone });
  item.removeAttribute("id");
  item.querySelector(".brief-permalink")?.removeAttribute("href");
  page.previewOutput.replaceChildren(item);
  page.previewPanel.hidden = false;
  setMessage(page.composeMessage, "Preview ready below: this is how readers will see it.", "ok");
}

// --- wiring ------------------------------------------------------------------------------------

function start() {
  const byId = (id) => document.getElementById(id);
  Object.assign(page, {
    token: byId("token"), signIn: byId("sign-in"), signInPanel: byId("sign-in-panel"), session: byId("session"),
    editorName: byId("editor-name"), editorRole: byId("editor-role"),
    saveDraft: byId("save-draft"), submitDraft: byId("submit-draft"), shortcutHint: byId("shortcut-hint"), workspace: byId("workspace"), connStatus: byId("conn-status"),
    feedSelect: byId("feed-select"), feedBar: byId("feed-bar"), noFeeds: byId("no-feeds"),
    feedStatus: byId("feed-status"), coverage: byId("coverage-toggle"), feedLink: byId("feed-link"),
    feedMessage: byId("feed-message"), newFeed: byId("new-feed"), newFeedForm: byId("new-feed-form"),
    newSlug: byId("new-slug"), newTitle: byId("new-title"), newTimezone: byId("new-timezone"),
    newLanguage: byId("new-language"),
    zones: byId("timezones"), createFeed: byId("create-feed"), newFeedMessage: byId("new-feed-message"),
    composeForm: byId("compose-form"), headline: byId("headline"), headlineCount: byId("headline-count"),
    body: byId("body"), author: byId("author"), url: byId("url"), tags: byId("tags"), keyEvent: byId("key-event"),
    preview: byId("preview"), publish: byId("publish"), composeMessage: byId("compose-message"),
    previewPanel: byId("preview-panel"), previewOutput: byId("preview-output"), endedNote: byId("feed-ended-note"),
  });
  if (!page.composeForm) return;
  media = createMediaEditor({ form: page.composeForm, fileInput: byId("media-file"), list: byId("media-list"),
    gallery: byId("gallery"), message: byId("media-message") });
  initRecent({ list: byId("recent"), empty: byId("recent-empty"), message: byId("recent-message") });
  initStory();
  fillZones();
  updateCount();
  const mac = /Mac|iPhone|iPad/.test(navigator.userAgentData?.platform ?? navigator.platform);
  page.shortcutHint.dataset.text = mac ? "⌘ Enter publishes" : "Ctrl + Enter publishes";
  page.shortcutHint.textContent = page.shortcutHint.dataset.text;
  initDesk({ lists: { mine: byId("my-drafts"), queue: byId("review-queue"), scheduled: byId("schedule-list") },
    message: byId("desk-message"), onEdit: editDraft });
  initDrafts({ status: byId("desk-status"), warning: byId("compose-warning"), note: byId("draft-editing"),
    noteText: byId("draft-editing-text"), composeMessage: page.composeMessage, fields: composeFields,
    payload: () => ({ ...briefPayload(composeFields()), ...media.payload(), embeds: embedRefs() }),
    busy: () => view.busy, setBusy, reset: resetCompose, filled: updateCount, headline: page.headline,
    loadMedia: (draft, current) => media.load(draft.media, draft.gallery, current),
    loadEmbeds: (draft, current) => loadEmbeds(draft.embeds, current) });

  page.embedUrl = byId("embed-url");
  initEmbedPicker(() => view.feed?.timezone ?? "UTC");
  whenUnauthorized(() => signOut(INVALID_TOKEN));
  byId("sign-in-form").addEventListener("submit", signIn);
  byId("sign-out").addEventListener("click", () => signOut());
  page.feedSelect.addEventListener("change", () => selectFeed(page.feedSelect.value));
  page.coverage.addEventListener("click", toggleCoverage);
  page.newFeedForm.addEventListener("submit", createFeed);
  page.headline.addEventListener("input", updateCount);
  page.preview.addEventListener("click", () => send("preview"));
  page.publish.addEventListener("click", () => send("publish"));
  page.saveDraft.addEventListener("click", () => saveDraft(view.feed, false));
  page.submitDraft.addEventListener("click", () => saveDraft(view.feed, true));
  byId("new-instead").addEventListener("click", () => {
    forgetDraft();
    resetCompose();
  });
  page.composeForm.addEventListener("submit", (event) => event.preventDefault()); // Enter must not publish
  page.composeForm.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
    event.preventDefault();
    if (view.role === "contributor") saveDraft(view.feed, true);
    else send("publish");
  });
  window.addEventListener("online", () => {
    view.connection?.reconnectNow();
    reconnectDesk();
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState !== "visible") return;
    view.connection?.reconnectNow();
    reconnectDesk();
  });
  resumeSession();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
