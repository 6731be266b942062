// The topic filter of the live, day and embed pages (`?tag=` and/or `?key_event=true`, rendered
// by the server as data-tag / data-key-event on the page's <main>): which briefs a filtered page
// shows, so it stays live (briefs without the tag are dropped; a correction that adds or removes
// the tag moves the brief in or out), and the query that asks the API for the same topic.

/**
 * A tag's key, as livefeed.model.topics.tag_key makes it: NFKC, then case-folded. JavaScript has
 * no casefold; upper then lower case folds as it does for the scripts live blogs write in
 * (Kharkiv = KHARKIV, Харків = харків, Straße = STRASSE, final sigma).
 */
export function tagKey(tag) {
  return String(tag).normalize("NFKC").toUpperCase().toLowerCase();
}

/** The page's topic from its root element, or null when the page shows every brief. */
export function topicOf(root) {
  const tag = root?.dataset.tag || null;
  const keyEvent = root?.dataset.keyEvent === "true";
  if (!tag && !keyEvent) return null;
  return { tag, key: tag === null ? null : tagKey(tag), keyEvent };
}

/** Whether `brief` belongs on a page of `topic` (every brief does when there is no topic). */
export function inTopic(topic, brief) {
  if (!topic) return true;
  if (topic.keyEvent && !brief?.key_event) return false;
  return topic.key === null || (brief?.tags ?? []).some((tag) => tagKey(tag) === topic.key);
}

/** "&tag=…&key_event=true" for the topic, to add to an API or page URL; "" for none. */
export function topicQuery(topic) {
  if (!topic) return "";
  const tag = topic.tag === null ? "" : `&tag=${encodeURIComponent(topic.tag)}`;
  return tag + (topic.keyEvent ? "&key_event=true" : "");
}

/**
 * What a correction does on a filtered page: "in" (now in the topic, not yet shown: add it),
 * "out" (shown, now out of the topic: remove it), or "stay" (replace it where it is, if shown).
 */
export function moveFor(topic, brief, shown) {
  const belongs = inTopic(topic, brief);
  if (belongs && !shown && topic) return "in";
  if (!belongs && shown) return "out";
  return "stay";
}
