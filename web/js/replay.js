// Replaying a day: clock labels in the feed's zone, a clock that runs on between the server's
// frames, and the replay socket. Knows nothing of the page: day.js wires these to the controls.

import { createRouter, parseFrame } from "./frames.js";

const formatters = new Map();

function formatterFor(timeZone, seconds, zone) {
  const key = `${timeZone}|${seconds}|${zone}`;
  let formatter = formatters.get(key);
  if (!formatter) {
    const options = { hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
    if (seconds) options.second = "2-digit";
    if (zone) options.timeZoneName = "short";
    try {
      formatter = new Intl.DateTimeFormat("en-GB", { ...options, timeZone });
    } catch {
      formatter = new Intl.DateTimeFormat("en-GB", options); // unknown zone: the reader's own
    }
    formatters.set(key, formatter);
  }
  return formatter;
}

/** "HH:MM:SS" on the zone's wall clock at `ms`; `seconds: false` gives "HH:MM", `zone` adds "CEST". */
export function localClock(ms, timeZone, { seconds = true, zone = false } = {}) {
  const parts = {};
  for (const part of formatterFor(timeZone, seconds, zone).formatToParts(new Date(ms))) {
    parts[part.type] = part.value;
  }
  let text = `${parts.hour === "24" ? "00" : parts.hour}:${parts.minute}`;
  if (seconds) text += `:${parts.second}`;
  if (zone && parts.timeZoneName) text += ` ${parts.timeZoneName}`;
  return text;
}

/**
 * The replay clock, in the day's original UTC milliseconds: it runs at `speed` from the last
 * sync, stands still while paused, and never leaves `bounds` ({start, end}, read on each call).
 */
export function createClock(bounds) {
  let base = bounds.start;
  let t0 = performance.now();
  let speed = 1;
  let paused = true;

  function now() {
    const ms = paused ? base : base + (performance.now() - t0) * speed;
    return Math.min(Math.max(ms, bounds.start), bounds.end);
  }

  /** Restart from `ms` (default: where it is now), optionally with a new speed or paused state. */
  function sync(ms = now(), changes = {}) {
    base = Number.isFinite(ms) ? ms : now(); // a frame without a readable time keeps the clock
    t0 = performance.now();
    if (Number(changes.speed) > 0) speed = Number(changes.speed);
    if (typeof changes.paused === "boolean") paused = changes.paused;
  }

  return { now, sync, speed: () => speed };
}

export function replayUrl({ slug, date, speed, from }) {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const params = new URLSearchParams({ replay: date, speed: String(speed) });
  if (from) params.set("from", from);
  return `${scheme}${location.host}/ws/feeds/${encodeURIComponent(slug)}?${params}`;
}

/**
 * Open a replay socket. Frames go to `handlers` by type (js/frames.js), then to `afterFrame`;
 * the first close to onClose(code, reason), unless we closed it ourselves. Controls sent while
 * the socket is still opening are queued.
 */
export function openReplay({ slug, date, speed, from, handlers, afterFrame, onClose }) {
  const route = createRouter(handlers);
  const socket = new WebSocket(replayUrl({ slug, date, speed, from }));
  const queued = [];
  let done = false;

  socket.addEventListener("open", () => {
    for (const text of queued.splice(0)) socket.send(text);
  });
  socket.addEventListener("message", (event) => {
    if (done) return;
    const frame = parseFrame(event.data);
    if (frame === null) return;
    route(frame);
    afterFrame?.(frame);
  });
  socket.addEventListener("close", (event) => {
    if (done) return;
    done = true;
    onClose(event.code, event.reason);
  });

  function send(control) {
    if (done) return;
    const text = JSON.stringify(control);
    if (socket.readyState === WebSocket.OPEN) socket.send(text);
    else queued.push(text);
  }

  function close() {
    if (done) return;
    done = true;
    socket.close(1000);
  }

  return { send, close };
}
