// livefeed's embed loader, for any web page (a CMS article, a plain HTML file):
//
//   <div data-livefeed="https://live.example/embed/my-feed"></div>
//   <script src="https://live.example/static/embed-loader.js" async></script>
//
// It puts an iframe of that embed page into every element with data-livefeed (whatever the element
// held, e.g. a fallback link, is replaced) and sets the iframe's height from the
// {type: "livefeed:height", height} messages the embed posts, so it never needs a scrollbar. A
// message counts only if it comes from that very iframe and from the origin of its URL (livefeed's).
// Optional: data-livefeed-title="..." names the iframe for screen readers. Pages that add embeds
// later call window.livefeedEmbedLoader.scan(). Loading this script twice is harmless.
(() => {
  "use strict";

  if (window.livefeedEmbedLoader) {
    window.livefeedEmbedLoader.scan();
    return;
  }

  const INITIAL_HEIGHT = 400;
  const MAX_HEIGHT = 100_000;
  const frames = []; // {iframe, origin}

  function embedUrl(raw) {
    try {
      const url = new URL(raw || "", document.baseURI);
      return url.protocol === "https:" || url.protocol === "http:" ? url : null;
    } catch {
      return null;
    }
  }

  function mount(holder) {
    if (holder.getAttribute("data-livefeed-mounted") === "true") return;
    const url = embedUrl(holder.getAttribute("data-livefeed"));
    if (!url) {
      console.warn("livefeed: data-livefeed must be the http(s) address of an /embed/ page", holder);
      return;
    }
    const iframe = document.createElement("iframe");
    iframe.src = url.href;
    iframe.title = holder.getAttribute("data-livefeed-title") || "Live updates";
    iframe.style.cssText = `display:block;width:100%;height:${INITIAL_HEIGHT}px;border:0;`;
    holder.setAttribute("data-livefeed-mounted", "true");
    holder.replaceChildren(iframe);
    frames.push({ iframe, origin: url.origin });
  }

  function scan() {
    for (const holder of document.querySelectorAll("[data-livefeed]")) mount(holder);
  }

  function onMessage(event) {
    const data = event.data;
    if (!data || typeof data !== "object" || data.type !== "livefeed:height") return;
    const height = Number(data.height);
    if (!Number.isFinite(height) || height < 0) return;
    for (const { iframe, origin } of frames) {
      if (event.source === iframe.contentWindow && event.origin === origin) {
        iframe.style.height = `${Math.min(Math.ceil(height), MAX_HEIGHT)}px`;
      }
    }
  }

  window.addEventListener("message", onMessage);
  window.livefeedEmbedLoader = { scan };
  scan();
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", scan);
})();
