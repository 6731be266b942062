// "Follow this live blog": web push for key events only or every update, through the service
// worker at /sw.js (livefeed.http.push). Shown only where the browser has the Push API; every
// failure (permission denied, no push service) is said in the status line, never thrown away.
// Which feeds this browser follows is kept in localStorage, by subscription id only.

import { ApiError, api, apiUrl, getJson } from "./api.js";
import { el } from "./render.js";

const STORE_PREFIX = "livefeed.push.";
const MODES = { key_events: "Key events only", all: "Every update" };

/** Whether this browser can follow at all: a service worker, the Push API, notifications. */
export function pushSupported() {
  return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
}

/** Build the control in `box` (hidden until then) for the feed `slug`. */
export function initFollow(box, slug) {
  if (!box || !pushSupported()) return;
  const status = el("p", "follow-status");
  status.id = "follow-status";
  status.setAttribute("role", "status");
  const buttons = {};
  for (const [mode, label] of Object.entries(MODES)) {
    buttons[mode] = el("button", "follow-mode", label);
    buttons[mode].type = "button";
    buttons[mode].dataset.mode = mode;
    buttons[mode].addEventListener("click", () => follow(slug, mode, show));
  }
  const off = el("button", "follow-off", "Unfollow");
  off.type = "button";
  off.addEventListener("click", () => unfollow(slug, show));
  const group = el("div", "follow-modes");
  group.setAttribute("role", "group");
  group.setAttribute("aria-labelledby", "follow-title");
  const title = el("span", "follow-title", "Follow this live blog:");
  title.id = "follow-title";
  group.append(title, " ", buttons.key_events, " ", buttons.all, " ", off);
  box.replaceChildren(group, status);

  function show(text) {
    const current = remembered(slug);
    for (const [mode, button] of Object.entries(buttons)) {
      button.setAttribute("aria-pressed", String(current?.mode === mode));
    }
    off.hidden = !current;
    if (text !== undefined) status.textContent = text;
  }
  box.hidden = false;
  const current = remembered(slug);
  show(current ? `Following: ${MODES[current.mode].toLowerCase()}.` : "");
  navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {
    show("Notifications can't be set up in this browser (the service worker did not start).");
  });
}

function remembered(slug) {
  try {
    const value = JSON.parse(localStorage.getItem(STORE_PREFIX + slug) || "null");
    return value && MODES[value.mode] && /^[0-9a-f]{64}$/.test(value.id) ? value : null;
  } catch {
    return null;
  }
}

async function follow(slug, mode, show) {
  show("Asking to show notifications…");
  const permission = await Notification.requestPermission();
  if (permission !== "granted") {
    show(permission === "denied"
      ? "Notifications are blocked for this site. Allow them in your browser's site settings to follow."
      : "Following needs your permission to show notifications.");
    return;
  }
  let subscription;
  try {
    const registration = await navigator.serviceWorker.register("/sw.js", { scope: "/" });
    await navigator.serviceWorker.ready;
    subscription = await registration.pushManager.getSubscription();
    if (!subscription) {
      const { key } = await getJson("/api/push/key");
      subscription = await registration.pushManager.subscribe({
        userVisibleOnly: true, applicationServerKey: fromBase64Url(key),
      });
    }
  } catch (error) {
    const why = error instanceof ApiError ? error.message : "the browser's push service did not answer";
    show(`Couldn't subscribe: ${why}. Try again later.`);
    return;
  }
  try {
    const body = { ...subscription.toJSON(), mode };
    const made = await api("POST", apiUrl(slug, "push-subscriptions"), { body, auth: null });
    localStorage.setItem(STORE_PREFIX + slug, JSON.stringify({ id: made.id, mode: made.mode }));
    show(`Following: ${MODES[made.mode].toLowerCase()}. You'll get a notification ${
      made.mode === "all" ? "for new updates" : "for key events"}.`);
  } catch (error) {
    show(`Couldn't follow: ${error.message}`);
  }
}

async function unfollow(slug, show) {
  const current = remembered(slug);
  if (!current) return show("");
  try {
    await api("DELETE", apiUrl(slug, "push-subscriptions", current.id), { auth: null });
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) {
      show(`Couldn't unfollow: ${error.message}`);
      return;
    }
  }
  localStorage.removeItem(STORE_PREFIX + slug);
  show("Not following: no more notifications from this live blog.");
}

function fromBase64Url(text) {
  const raw = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}
