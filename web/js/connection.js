// The WebSocket to one feed: resume from the last event id seen, catch up, then live.
// Reconnects with capped exponential backoff and full jitter; a silent socket counts as dead.
// Knows nothing of the page: `handlers` (frame type → function, see js/frames.js) take the
// frames the page wants; live, heartbeat and reload are handled here and reported through
// onReload and onStatus.

import { compareIds, createRouter, parseFrame } from "./frames.js";

export const FATAL_CLOSES = new Map([[4400, "Bad request"], [4404, "Feed not found"]]);
const TOO_SLOW = 4408; // the server dropped us for falling behind: come straight back
const SILENCE_LIMIT_MS = 45_000; // heartbeats come every ~20 s
const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 30_000;

export function socketUrl(slug, since) {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  return `${scheme}${location.host}/ws/feeds/${encodeURIComponent(slug)}?since=${encodeURIComponent(since)}`;
}

/**
 * `handlers` routes the page's frames (brief, brief_updated, ..., snapshot) by type. The desk
 * (js/desk.js) passes its own `url`, a `hello` message sent as each socket opens (its auth),
 * `idKey`/`liveKey` (where its frames carry their id) and `fatal` close codes.
 */
export function createConnection({ slug, lastEventId, handlers, onReload, onStatus, url = socketUrl,
  hello = null, idKey = "event_id", liveKey = "last_event_id", fatal = FATAL_CLOSES }) {
  const state = {
    socket: null, lastEventId, attempt: 0, live: false, stopped: false,
    retryAt: 0, retryTimer: 0, countdownTimer: 0, watchdog: 0,
  };

  function clearTimers() {
    clearTimeout(state.retryTimer);
    clearInterval(state.countdownTimer);
    clearTimeout(state.watchdog);
  }

  function resumeFrom(since) {
    clearTimers();
    if (state.stopped) return;
    state.live = false;
    onStatus("connecting", "Connecting…");
    const socket = new WebSocket(url(slug, since));
    state.socket = socket;
    if (hello) socket.addEventListener("open", () => socket.send(JSON.stringify(hello())));
    armWatchdog(); // covers a handshake that hangs, too
    socket.addEventListener("message", (event) => {
      if (socket !== state.socket) return;
      armWatchdog();
      handleMessage(event.data);
    });
    socket.addEventListener("close", (event) => handleClose(socket, event));
  }

  function connect() {
    resumeFrom(state.lastEventId);
  }

  function handleMessage(data) {
    const frame = parseFrame(data);
    if (frame === null) return;
    if (typeof frame[idKey] === "string") state.lastEventId = frame[idKey];
    route(frame);
  }

  function live(frame) {
    // after a snapshot (no event ids) or a catch-up, this is where to resume from
    if (compareIds(frame[liveKey], state.lastEventId) > 0) state.lastEventId = frame[liveKey];
    state.attempt = 0;
    state.live = true;
    onStatus("live", "Live");
  }

  const route = createRouter({
    ...handlers,
    live: (frame) => {
      live(frame);
      handlers.live?.(frame);
    },
    heartbeat: () => {}, // its arrival already re-armed the watchdog
    reload: (frame) => {
      stop();
      onReload(frame.reason);
    },
  });

  function handleClose(socket, event) {
    if (socket !== state.socket) return; // one we already gave up on
    state.socket = null;
    clearTimers();
    if (state.stopped) return;
    const why = fatal.get(event.code);
    if (why) {
      state.stopped = true;
      onStatus("error", event.reason || why);
      return;
    }
    scheduleReconnect(event.code === TOO_SLOW ? 0 : nextBackoff());
  }

  function nextBackoff() {
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** state.attempt);
    state.attempt += 1;
    return Math.random() * ceiling;
  }

  function scheduleReconnect(delay) {
    clearTimers();
    if (delay <= 0) {
      connect();
      return;
    }
    state.retryAt = Date.now() + delay;
    state.retryTimer = setTimeout(connect, delay);
    showCountdown();
    state.countdownTimer = setInterval(showCountdown, 250);
  }

  function showCountdown() {
    if (!navigator.onLine) {
      onStatus("offline", "Offline — will reconnect");
      return;
    }
    const seconds = Math.max(1, Math.ceil((state.retryAt - Date.now()) / 1000));
    onStatus("reconnecting", `Reconnecting in ${seconds} s…`, "Reconnecting shortly");
  }

  function armWatchdog() {
    clearTimeout(state.watchdog);
    state.watchdog = setTimeout(dropSilentSocket, SILENCE_LIMIT_MS);
  }

  function dropSilentSocket() {
    const socket = state.socket;
    state.socket = null; // so its late close event is ignored
    socket?.close();
    scheduleReconnect(nextBackoff());
  }

  function isOpen() {
    return state.socket !== null && state.socket.readyState <= WebSocket.OPEN;
  }

  /** Reconnect now, skipping any backoff wait; does nothing while a socket is up or after a stop. */
  function reconnectNow() {
    if (state.stopped) return;
    if (!isOpen()) connect();
    else if (navigator.onLine) onStatus(state.live ? "live" : "connecting", state.live ? "Live" : "Connecting…");
  }

  function markOffline() {
    if (!state.stopped) onStatus("offline", "Offline — will reconnect");
  }

  function stop() {
    state.stopped = true;
    clearTimers();
    const socket = state.socket;
    state.socket = null;
    socket?.close(1000);
  }

  /** Send `message` as JSON if the socket is open; false if it is not (it is not queued). */
  function send(message) {
    if (state.socket?.readyState !== WebSocket.OPEN) return false;
    state.socket.send(JSON.stringify(message));
    return true;
  }

  return { connect, reconnectNow, markOffline, stop, send, lastEventId: () => state.lastEventId };
}
