// The WebSocket to one feed: resume from the last event id seen, catch up, then live.
// Reconnects with capped exponential backoff and full jitter; a silent socket counts as dead.
// Knows nothing of the page: `handlers` (frame type → function, see js/frames.js) take the
// frames the page wants; live, heartbeat and reload are handled here and reported through
// onReload and onStatus.

import { compareIds, createRouter, parseFrame } from "./frames.js";

const FATAL_CLOSES = new Map([[4400, "Bad request"], [4404, "Feed not found"]]);
const TOO_SLOW = 4408; // the server dropped us for falling behind: come straight back
const SILENCE_LIMIT_MS = 45_000; // heartbeats come every ~20 s
const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 30_000;

export function socketUrl(slug, since) {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  return `${scheme}${location.host}/ws/feeds/${encodeURIComponent(slug)}?since=${encodeURIComponent(since)}`;
}

/** `handlers` routes the page's frames (brief, brief_updated, ..., snapshot) by type. */
export function createConnection({ slug, lastEventId, handlers, onReload, onStatus }) {
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
    const socket = new WebSocket(socketUrl(slug, since));
    state.socket = socket;
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
    if (typeof frame.event_id === "string") state.lastEventId = frame.event_id;
    route(frame);
  }

  function live(frame) {
    // after a snapshot (no event ids) or a catch-up, this is where to resume from
    if (compareIds(frame.last_event_id, state.lastEventId) > 0) state.lastEventId = frame.last_event_id;
    state.attempt = 0;
    state.live = true;
    onStatus("live", "Live");
  }

  const route = createRouter({
    ...handlers,
    live,
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
    const fatal = FATAL_CLOSES.get(event.code);
    if (fatal) {
      state.stopped = true;
      onStatus("error", event.reason || fatal);
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

  return { connect, reconnectNow, markOffline, stop, lastEventId: () => state.lastEventId };
}
