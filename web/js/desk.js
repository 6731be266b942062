// The desk socket of one feed (/ws/feeds/{feed}/desk): drafts, the review queue and who is
// editing what, live. Authenticates with the token in its first message (never in the URL),
// resumes from the last desk id like the reader stream, and keeps this tab's presence: the item
// whose form is open is announced and renewed every RENEW_MS until the form closes.

import { token } from "./api.js";
import { createConnection, FATAL_CLOSES } from "./connection.js";

const RENEW_MS = 3000; // the server lets an announcement lapse after 10 s (PRESENCE_TTL_MS)
const DESK_FATAL = new Map([...FATAL_CLOSES, [1008, "Not allowed on the desk"]]);

function deskUrl(slug, since) {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const query = since ? `?since=${encodeURIComponent(since)}` : "";
  return `${scheme}${location.host}/ws/feeds/${encodeURIComponent(slug)}/desk${query}`;
}

/**
 * Open the desk of `slug`. `handlers` take the desk's frames (snapshot, draft_*, live);
 * `onPresence()` is called whenever who-is-editing changes; `me` is the signed-in name, whose
 * own presence is never shown as someone else's.
 */
export function openDesk({ slug, me, handlers, onPresence, onStatus, onReload }) {
  const editing = new Map(); // item → Map(editor → until, ms)
  let mine = null; // the item this tab's open form edits
  let renewTimer = 0;
  let expiryTimer = 0;

  function setAll(list) {
    editing.clear();
    for (const entry of list ?? []) add(entry);
    changed();
  }

  function add({ item, editor, until }) {
    if (typeof item !== "string" || typeof editor !== "string") return;
    if (!editing.has(item)) editing.set(item, new Map());
    editing.get(item).set(editor, Number(until) || Date.now() + 10_000);
  }

  function drop({ item, editor }) {
    editing.get(item)?.delete(editor);
    if (editing.get(item)?.size === 0) editing.delete(item);
  }

  /** Forget announcements whose time ran out (a node that died cannot say so), then redraw. */
  function changed() {
    const now = Date.now();
    let next = Infinity;
    for (const [item, editors] of editing) {
      for (const [editor, until] of editors) {
        if (until <= now) editors.delete(editor);
        else next = Math.min(next, until);
      }
      if (editors.size === 0) editing.delete(item);
    }
    clearTimeout(expiryTimer);
    if (next !== Infinity) expiryTimer = setTimeout(changed, next - now + 50);
    onPresence();
  }

  function announce() {
    if (mine) connection.send({ type: "editing", item: mine });
  }

  const connection = createConnection({
    slug, lastEventId: null, url: deskUrl, idKey: "id", liveKey: "id", fatal: DESK_FATAL,
    hello: () => ({ type: "auth", token: token.get() }),
    onStatus, onReload,
    handlers: {
      ...handlers,
      snapshot: (frame) => {
        setAll(frame.editing);
        handlers.snapshot?.(frame);
      },
      live: (frame) => {
        setAll(frame.editing);
        announce(); // a new socket holds none of this tab's presence yet
      },
      editing: (frame) => {
        add(frame);
        changed();
      },
      editing_stopped: (frame) => {
        drop(frame);
        changed();
      },
    },
  });

  return {
    connect: () => connection.connect(),
    reconnectNow: () => connection.reconnectNow(),
    /** Announce that this tab edits `item` ("brief:<id>", "draft:<id>"), or nothing (null). */
    editing(item) {
      if (item === mine) return;
      mine = item;
      clearInterval(renewTimer);
      if (item) {
        announce();
        renewTimer = setInterval(announce, RENEW_MS);
      } else {
        connection.send({ type: "idle" });
      }
    },
    /** The others editing `item` now, by name. */
    editorsOf(item) {
      const now = Date.now();
      return [...(editing.get(item) ?? new Map())].filter(([name, until]) => name !== me && until > now)
        .map(([name]) => name);
    },
    stop() {
      clearInterval(renewTimer);
      clearTimeout(expiryTimer);
      connection.stop();
    },
  };
}

/** "Olena K is editing", "Olena K and Max are editing". */
export function editingText(names) {
  if (names.length === 0) return "";
  const who = names.length === 1 ? names[0] : `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`;
  return `${who} ${names.length === 1 ? "is" : "are"} editing`;
}
