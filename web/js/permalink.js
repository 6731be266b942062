// Permalinks: /feeds/{feed}#<brief id> shows that brief, highlighted by CSS (:target). A brief on
// the page is scrolled into view; one older than every brief on the page is on a server-rendered
// older page, so the browser goes there: `?before=` the id just after it makes it that page's
// first brief. Nothing else moves the reader (an unknown or retracted id, or any other #fragment).

import { compareIds } from "./frames.js";

const STREAM_ID = /^(\d+)-(\d+)$/;
const U64_MAX = 2n ** 64n - 1n;

/** The brief id in the address's fragment, or "" when it holds none. */
export function linkedId(hash = location.hash) {
  let id = "";
  try {
    id = decodeURIComponent(hash.replace(/^#/, ""));
  } catch {
    return "";
  }
  return STREAM_ID.test(id) ? id : "";
}

/** The older page whose first brief is `id`, with the fragment that marks it. */
export function olderPageUrl(slug, id) {
  const [, ms, seq] = STREAM_ID.exec(id);
  const next = BigInt(seq) < U64_MAX ? `${ms}-${BigInt(seq) + 1n}` : `${BigInt(ms) + 1n}-0`;
  return `/feeds/${encodeURIComponent(slug)}?before=${next}#${id}`;
}

/**
 * Show the brief the address names: scroll to it in `list`, or go to the older page holding it
 * when it is older than the oldest brief in `list` and `hasOlder` (a "Load older" link exists).
 */
export function showLinkedBrief({ slug, list, hasOlder }) {
  const id = linkedId();
  if (!id) return;
  const item = document.getElementById(id);
  if (item && list.contains(item)) {
    item.scrollIntoView({ block: "start" });
    return;
  }
  const oldest = [...list.querySelectorAll(":scope > li.brief[id]")].at(-1)?.id;
  if (hasOlder() && (!oldest || compareIds(id, oldest) < 0)) location.replace(olderPageUrl(slug, id));
}
