// The search box on the reader and day pages. Without JavaScript its form is a plain GET to
// /feeds/{feed}/search; with it, results show above the page without leaving it (the live page
// stays connected). Each match is a <mark> built by DOM calls around text nodes: the server sends
// fragments of text, never HTML, so markup in a brief stays text.

import { ApiError, apiUrl, getJson } from "./api.js";
import { el, userText } from "./render.js";

/** The fragments of a hit's text as nodes in `node`: marked ones inside <mark>. */
export function appendMarked(node, fragments) {
  for (const { text, mark } of fragments) {
    if (mark) node.append(el("mark", null, text));
    else node.append(document.createTextNode(text));
  }
  return node;
}

function renderHit(slug, hit) {
  const item = el("li", "search-hit");
  item.dataset.id = hit.brief.id;
  const link = el("a");
  link.href = `/feeds/${encodeURIComponent(slug)}#${hit.brief.id}`;
  const time = el("time", null, new Date(hit.brief.published_at).toLocaleString());
  time.dateTime = hit.brief.published_at;
  link.append(time, " ", appendMarked(userText("span", "search-headline"), hit.headline));
  item.append(link);
  if (hit.snippet.length) item.append(appendMarked(userText("p", "search-snippet"), hit.snippet));
  return item;
}

function panelFor(form) {
  let panel = document.getElementById("search-results");
  if (!panel) {
    panel = el("section", "search-results");
    panel.id = "search-results";
    panel.setAttribute("aria-live", "polite");
    form.closest("header").after(panel);
  }
  return panel;
}

async function show(form, panel, q, cursor) {
  const slug = form.dataset.feed;
  const params = new URLSearchParams({ q });
  if (cursor) params.set("cursor", cursor);
  let page;
  try {
    page = await getJson(`${apiUrl(slug, "search")}?${params}`);
  } catch (error) {
    const message = error instanceof ApiError ? error.message : String(error);
    panel.replaceChildren(el("p", "search-problem", message));
    panel.hidden = false;
    return;
  }
  let list = panel.querySelector(".search-hits");
  if (!cursor) {
    const title = el("h2", null, "Updates matching “");
    title.append(userText("bdi", null, q), "”");
    const close = el("button", "search-close", "Close search");
    close.type = "button";
    close.addEventListener("click", () => { panel.hidden = true; panel.replaceChildren(); });
    list = el("ol", "search-hits");
    panel.replaceChildren(title, close, list);
  }
  panel.querySelector(".search-more")?.remove();
  for (const hit of page.hits) list.append(renderHit(slug, hit));
  if (!list.children.length) panel.append(el("p", "empty", "No updates match."));
  if (page.next) {
    const more = el("button", "search-more", "More results");
    more.type = "button";
    more.addEventListener("click", () => show(form, panel, q, page.next));
    panel.append(more);
  }
  panel.hidden = false;
}

export function initSearch(form) {
  form.addEventListener("submit", (event) => {
    const q = form.elements.q.value.trim();
    if (!q) return;
    event.preventDefault();
    show(form, panelFor(form), q, null);
  });
}

// On the results page itself the form simply loads the next page of results.
if (!document.body.classList.contains("search-page")) {
  for (const form of document.querySelectorAll("form.search-form")) initSearch(form);
}
