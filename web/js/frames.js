// The frames the server sends over a feed's WebSocket, in one place: their types, reading one,
// ordering the stream ids they carry, and routing each to the handler a page registered for it.
// A frame of a type not listed here is reported (console.warn once per type, and counted in
// <html data-unknown-frames>), never dropped in silence: the server is newer than the page.

/** Every frame type the server sends (docs/newsroom-protocol.md; livefeed/stream/). */
export const FRAME_TYPES = new Set([
  // stream events, live and replayed
  "brief", "brief_updated", "brief_deleted", "pinned", "unpinned", "feed_updated",
  "lead_updated", "lead_cleared", "summary_updated", "summary_cleared",
  // a live socket's control frames
  "snapshot", "live", "heartbeat", "reload",
  // the desk socket's (js/desk.js): desk events and presence
  "draft_saved", "draft_submitted", "draft_sent_back", "draft_scheduled", "draft_unscheduled",
  "draft_published", "draft_discarded", "draft_schedule_failed", "editing", "editing_stopped",
  // a replay socket's control frames
  "replay_start", "replay_state", "replay_skip", "replay_end", "error",
]);

const warned = new Set();

/** Count and (once per type) warn about a frame whose type this page does not know. */
function reportUnknown(type) {
  const root = document.documentElement;
  root.dataset.unknownFrames = String(Number(root.dataset.unknownFrames ?? 0) + 1);
  if (warned.has(type)) return;
  warned.add(type);
  root.dataset.unknownFrameTypes = [...warned].join(" ");
  console.warn("livefeed: unknown frame type", type);
}

/** The frame a message holds, or null (warned) when it is not a JSON object. */
export function parseFrame(text) {
  let frame = null;
  try {
    frame = JSON.parse(text);
  } catch {
    // falls through to the warning
  }
  if (frame !== null && typeof frame === "object" && !Array.isArray(frame)) return frame;
  console.warn("livefeed: unreadable frame", text);
  return null;
}

/**
 * A function that routes a frame to `handlers[frame.type]`. A known type the page has no
 * handler for is left alone on purpose (the editor ignores replays); an unknown one is reported.
 * A handler for a type not in FRAME_TYPES is a mistake in the page and throws at once.
 */
export function createRouter(handlers) {
  for (const type of Object.keys(handlers)) {
    if (!FRAME_TYPES.has(type)) throw new Error(`livefeed: no frame type "${type}"`);
  }
  return function route(frame) {
    const type = String(frame.type);
    if (!FRAME_TYPES.has(type)) {
      reportUnknown(type);
      return;
    }
    handlers[type]?.(frame);
  };
}

/** Order two stream ids ("ms-seq") by number, not as strings: <0, 0 or >0. Unreadable ones are 0-0. */
export function compareIds(a, b) {
  const parse = (id) => {
    const match = /^(\d+)-(\d+)$/.exec(String(id ?? ""));
    return match ? [BigInt(match[1]), BigInt(match[2])] : [0n, 0n];
  };
  const [[msA, seqA], [msB, seqB]] = [parse(a), parse(b)];
  if (msA !== msB) return msA < msB ? -1 : 1;
  return seqA === seqB ? 0 : (seqA < seqB ? -1 : 1);
}
