// The compose form's embeds: paste a post's or article's URL, see the card the server resolves
// (POST /api/embeds/preview), attach it, reorder nothing, remove any. What is attached goes
// into the brief as `embeds: [{url}]`; the server resolves each again when it is published.
// loadEmbeds() attaches a draft's (its URLs), each previewed again for its card.

import { api } from "./api.js";
import { limits } from "./limits.js";
import { formatBriefTime } from "./render.js";
import { initEmbeds, renderEmbed } from "./embeds.js";

const state = { attached: [], previewed: null, timeZone: () => "UTC", page: {} };

function byId(id) {
  return document.getElementById(id);
}

function say(text, kind = "info") {
  state.page.message.textContent = text;
  state.page.message.dataset.kind = kind;
}

function card(embed) {
  return renderEmbed(embed, state.timeZone(), formatBriefTime);
}

async function previewCard() {
  const { input, cardBox, attach, preview } = state.page;
  const url = input.value.trim();
  state.previewed = null;
  cardBox.replaceChildren();
  cardBox.hidden = true;
  attach.hidden = true;
  if (!url) return say("Paste the address of a post or an article first.", "error");
  preview.disabled = true;
  say("Fetching the card…");
  try {
    const embed = await api("POST", "/api/embeds/preview", { body: { url } });
    state.previewed = embed;
    cardBox.append(card(embed));
    cardBox.hidden = false;
    attach.hidden = state.attached.length >= limits.embeds;
    say(attach.hidden ? `A brief quotes at most ${limits.embeds}.` : "");
  } catch (error) {
    say(error.message, "error");
  } finally {
    preview.disabled = false;
  }
}

function showAttached() {
  const items = state.attached.map((embed, index) => {
    const item = document.createElement("li");
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "button embed-remove";
    remove.textContent = "Remove";
    remove.addEventListener("click", () => {
      state.attached.splice(index, 1);
      showAttached();
    });
    // A draft's URL that cannot be previewed now (a deleted post) stays attached, as its address.
    item.append(embed.unresolved ? unresolvedCard(embed) : card(embed), remove);
    return item;
  });
  state.page.list.replaceChildren(...items);
}

function unresolvedCard(embed) {
  const note = document.createElement("p");
  note.className = "embed-unresolved";
  note.dir = "auto";
  note.textContent = `${embed.url} (no preview: ${embed.unresolved})`;
  return note;
}

function attachCard() {
  if (!state.previewed || state.attached.length >= limits.embeds) return;
  state.attached.push(state.previewed);
  state.previewed = null;
  state.page.input.value = "";
  state.page.cardBox.replaceChildren();
  state.page.cardBox.hidden = true;
  state.page.attach.hidden = true;
  showAttached();
  say("");
  state.page.input.focus();
}

/** The attached embeds as the API takes them. */
export function embedRefs() {
  return state.attached.map((embed) => ({ url: embed.url }));
}

/**
 * Attach `refs` (a draft's embeds, `[{url}]`) in place of what was, each with the card its
 * preview answers now; `stillCurrent()` false drops answers that came too late.
 */
export async function loadEmbeds(refs, stillCurrent = () => true) {
  const cards = await Promise.all((refs ?? []).map(({ url }) =>
    api("POST", "/api/embeds/preview", { body: { url } })
      .catch((error) => ({ url, unresolved: error.message }))));
  if (!stillCurrent()) return;
  clearEmbeds();
  state.attached = cards;
  if (state.page.list) showAttached();
}

/** Forget what was attached: after a publish, a feed switch or a sign-out. */
export function clearEmbeds() {
  state.attached = [];
  state.previewed = null;
  if (!state.page.list) return;
  showAttached();
  state.page.cardBox.replaceChildren();
  state.page.cardBox.hidden = true;
  state.page.attach.hidden = true;
}

/** Wire the embed field; `timeZone` answers the chosen feed's zone, for the cards' times. */
export function initEmbedPicker(timeZone) {
  state.timeZone = timeZone;
  state.page = { input: byId("embed-url"), preview: byId("embed-preview"), attach: byId("embed-attach"),
    cardBox: byId("embed-card"), list: byId("embed-list"), message: byId("embed-url-error") };
  initEmbeds(document.querySelector("main") ?? document); // "Show the post" in previews, recent briefs
  state.page.preview.addEventListener("click", previewCard);
  state.page.attach.addEventListener("click", attachCard);
  state.page.input.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || event.ctrlKey || event.metaKey) return;
    event.preventDefault(); // Enter fetches the card; it must not publish
    previewCard();
  });
}
