// The rolling list of briefs, as every page keeps it (live page, embed, day replay, editor):
// items are <li data-id="<stream id>"> newest first; a new one goes in stream order, a
// correction replaces its item in place unless the page holds a newer version, a retraction
// removes it, and the pinned box holds a copy of one. Changes are highlighted for a few seconds.

import { apiUrl, getJson } from "./api.js";
import { compareIds } from "./frames.js";
import { renderBrief } from "./render.js";

const HIGHLIGHT_MS = 5000;

/** Mark `item` with `className` ("brief--new", "brief--updated") for a few seconds. */
export function highlight(item, className) {
  item.classList.add(className);
  setTimeout(() => item.classList.remove(className), HIGHLIGHT_MS);
  return item;
}

/** The item for brief `id` directly in `list`, or null. */
export function itemIn(list, id) {
  if (!id) return null;
  return list.querySelector(`:scope > [data-id="${CSS.escape(String(id))}"]`);
}

/** Put `item` (its data-id a stream id) into the newest-first `list` where the stream has it. */
export function insertInOrder(list, item) {
  const id = item.dataset.id;
  const older = [...list.children].find((other) => compareIds(other.dataset.id, id) < 0);
  list.insertBefore(item, older ?? null);
  return item;
}

/** Whether `version` is newer than every readable version in `held` (true when none is). */
export function isNewer(version, ...held) {
  const versions = held.map(Number).filter(Number.isFinite);
  const mine = Number(version);
  return versions.length === 0 || !Number.isFinite(mine) || mine > Math.max(...versions);
}

/** Put `fresh` where `old` is, marked "just corrected" for a few seconds; focus stays with it. */
export function replaceBrief(old, fresh) {
  const hadFocus = old.contains(document.activeElement);
  highlight(fresh, "brief--updated");
  old.replaceWith(fresh);
  if (hadFocus) {
    fresh.tabIndex = -1;
    fresh.focus({ preventScroll: true });
  }
  return fresh;
}

/** Show `empty` only while `list` holds no brief (and nothing else is `waiting`). */
export function showEmptyIfNothing(list, empty, waiting = 0) {
  empty.hidden = waiting > 0 || list.querySelector(".brief") !== null;
}

/** A copy of a rolling-list <li> for the pinned box: no id (ids stay unique), no transient marks. */
function copyOf(item) {
  const copy = item.cloneNode(true);
  copy.removeAttribute("id");
  copy.removeAttribute("tabindex");
  copy.classList.remove("brief--new", "brief--updated");
  return copy;
}

/**
 * The pinned box (`box`, holding an <ol class="pinned-briefs">) as the server rendered it; it
 * follows pinned, unpinned and retractions, and fetches a pinned brief the page does not have.
 */
export function createPinnedBox({ box, slug, timeZone }) {
  const list = box.querySelector(".pinned-briefs");
  const options = { slug, timeZone, withId: false };
  let pinned = box.hidden ? null : list.firstElementChild?.dataset.id ?? null;

  /** The box's <li> if it holds `id`, else null. */
  function copy(id) {
    const item = list.firstElementChild;
    return item && item.dataset.id === id ? item : null;
  }

  function show(item) {
    list.replaceChildren(item);
    box.hidden = false;
  }

  /** Pin `id`. `local` is its rolling-list <li> or its brief object if the page has it; else fetched. */
  async function pin(id, local) {
    if (!id) return;
    pinned = id;
    if (copy(id)) return;
    if (local instanceof Element) return show(copyOf(local));
    if (local) return show(renderBrief(local, options));
    let brief = null;
    try {
      brief = await getJson(apiUrl(slug, "briefs", id));
    } catch (error) {
      console.warn("livefeed: could not load the pinned brief", id, error.message);
    }
    if (pinned !== id) return; // unpinned, replaced or retracted meanwhile
    if (brief?.id === id) show(renderBrief(brief, options));
    else unpin(id);
  }

  /** Empty the box if it holds `id` (whatever it holds when `id` is undefined). */
  function unpin(id) {
    if (id !== undefined && id !== pinned) return;
    pinned = null;
    list.replaceChildren();
    box.hidden = true;
  }

  /** A correction of the pinned brief, unless the box already holds this version or a newer one. */
  function update(brief) {
    const old = copy(brief.id);
    if (old && isNewer(brief.version, old.dataset.version)) replaceBrief(old, renderBrief(brief, options));
  }

  /** The box as a snapshot has it: `brief` pinned, or nothing. */
  function reset(brief) {
    unpin();
    if (brief?.id) pin(brief.id, brief);
  }

  return { pin, unpin, update, reset, copy, pinnedId: () => pinned };
}
