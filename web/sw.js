// The service worker (served at /sw.js, scope /): shows each web push message livefeed sends
// (livefeed.model.push.Notification) and opens the brief's permalink when one is clicked.
// `tag` is the event id, so a message sent again replaces its notification rather than adding one.

self.addEventListener("push", (event) => {
  let message = {};
  try {
    message = event.data ? event.data.json() : {};
  } catch {
    return;
  }
  if (!message.title || !message.url) return;
  event.waitUntil(
    self.registration.showNotification(message.title, {
      body: message.body || "",
      tag: message.tag,
      dir: "auto",
      data: { url: message.url },
      requireInteraction: Boolean(message.breaking),
    }),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = new URL(event.notification.data && event.notification.data.url || "/", self.location.origin);
  if (url.origin !== self.location.origin) return;
  event.waitUntil(openOrFocus(url.href));
});

/** Focus a tab already at `href` (navigating one on the same page), else open one. */
async function openOrFocus(href) {
  const tabs = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  const target = new URL(href);
  for (const tab of tabs) {
    const at = new URL(tab.url);
    if (at.pathname === target.pathname && "focus" in tab) {
      await tab.focus();
      return "navigate" in tab ? tab.navigate(href) : undefined;
    }
  }
  return self.clients.openWindow(href);
}
