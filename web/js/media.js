// A brief's images and audio, as web/templates/_media.html renders them, and the gallery's
// slideshow buttons (one delegated listener for every gallery, server- or JS-rendered).
// URLs and sizes mirror livefeed/model/media.py (rendition_path, srcset, MEDIA_SIZES).

import { el, userText } from "./render.js";

export const MEDIA_SIZES = "(min-width: 45rem) 43rem, 100vw";

export function mediaPath(id, name) {
  return `/media/${id}/${name}`;
}

function srcset(item, ext) {
  return (item.widths ?? []).map((w) => `${mediaPath(item.id, `${w}.${ext}`)} ${w}w`).join(", ");
}

function caption(item) {
  if (!item.caption && !item.credit) return null;
  const figcaption = userText("figcaption");
  if (item.caption) figcaption.append(userText("span", "media-caption", item.caption));
  if (item.caption && item.credit) figcaption.append(" ");
  if (item.credit) figcaption.append(userText("span", "media-credit", item.credit));
  return figcaption;
}

function renderImage(item) {
  const widths = item.widths ?? [];
  const largest = mediaPath(item.id, `${widths[widths.length - 1]}.jpg`);
  const source = el("source");
  source.type = "image/webp";
  source.srcset = srcset(item, "webp");
  source.sizes = MEDIA_SIZES;
  const img = el("img");
  img.src = widths.length < 2 ? largest : mediaPath(item.id, `${widths[1]}.jpg`);
  img.srcset = srcset(item, "jpg");
  img.sizes = MEDIA_SIZES;
  img.width = item.width;
  img.height = item.height;
  img.loading = "lazy";
  img.decoding = "async";
  img.alt = item.alt ?? "";
  img.dir = "auto";
  const picture = el("picture");
  picture.append(source, img);
  const figure = el("figure", "media media--image");
  if (item.decorative) {
    figure.append(picture); // nothing to open: a link needs a name, and this image has none
  } else {
    const link = el("a", "media-full"); // named by the image's alt text
    link.href = largest;
    link.append(picture);
    figure.append(link);
  }
  const text = caption(item);
  if (text) figure.append(text);
  return figure;
}

function renderAudio(item) {
  const audio = el("audio");
  audio.controls = true;
  audio.preload = "none";
  audio.src = mediaPath(item.id, `audio.${item.format}`);
  const figure = el("figure", "media media--audio");
  figure.append(audio);
  const text = caption(item);
  if (text) figure.append(text);
  if (item.transcript) {
    const details = el("details", "media-transcript");
    details.append(el("summary", null, "Transcript"), userText("p", null, item.transcript));
    figure.append(details);
  }
  return figure;
}

/** The brief's media block (and a gallery's buttons), or nothing when it has none. */
export function renderMedia(brief) {
  const items = brief.media ?? [];
  if (!items.length) return [];
  const images = items.filter((item) => item.kind === "image");
  const gallery = Boolean(brief.gallery) && images.length > 1;
  const block = el("div", gallery ? "brief-media brief-gallery" : "brief-media");
  block.append(...items.map((item) => (item.kind === "image" ? renderImage(item) : renderAudio(item))));
  if (!gallery) return [block];
  block.setAttribute("role", "group");
  block.setAttribute("aria-roledescription", "slideshow");
  block.setAttribute("aria-label", `${images.length} images`);
  const controls = el("div", "gallery-controls");
  const previous = el("button", "gallery-prev", "‹");
  const next = el("button", "gallery-next", "›");
  for (const [button, label] of [[previous, "Previous image"], [next, "Next image"]]) {
    button.type = "button";
    button.setAttribute("aria-label", label);
  }
  controls.append(previous, " ", el("span", "gallery-count", `1 / ${items.length}`), " ", next);
  return [block, controls];
}

function slideOf(strip) {
  return Math.round(strip.scrollLeft / Math.max(1, strip.clientWidth));
}

function updateCount(strip) {
  const count = strip.nextElementSibling?.querySelector(".gallery-count");
  const text = `${slideOf(strip) + 1} / ${strip.children.length}`;
  if (count && count.textContent !== text) count.textContent = text;
}

/** Make every gallery's buttons work, now and for briefs added later; once per page. */
export function enableGalleries(root = document) {
  document.documentElement.classList.add("galleries");
  root.addEventListener("click", (event) => {
    const button = event.target.closest?.(".gallery-prev, .gallery-next");
    const strip = button?.parentElement?.previousElementSibling;
    if (!strip?.classList.contains("brief-gallery")) return;
    const step = button.classList.contains("gallery-next") ? 1 : -1;
    const last = strip.children.length - 1;
    const to = Math.min(last, Math.max(0, slideOf(strip) + step));
    strip.scrollTo({ left: to * strip.clientWidth, behavior: "instant" });
    updateCount(strip);
  });
  root.addEventListener("scroll", (event) => {
    if (event.target.classList?.contains("brief-gallery")) updateCount(event.target);
  }, true);
}
