// Embeds: a brief's quoted posts and articles as static cards from their snapshots (mirrors
// web/templates/_embeds.html), and the "Show the post from …" button that loads the provider's
// frame only when the reader asks; the choice can be remembered per provider (localStorage).

const NAMES = { youtube: "YouTube", x: "X", telegram: "Telegram", link: "Related article" };
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const REMEMBER = "livefeed.embeds.show.";

function node(tag, className, text, auto = false) {
  const item = document.createElement(tag);
  if (className) item.className = className;
  if (text !== undefined) item.textContent = text;
  if (auto) item.dir = "auto";
  return item;
}

function safeHref(url) {
  try {
    const parsed = new URL(url, location.href);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch {
    return null;
  }
}

function thumb(embed) {
  if (!embed.thumbnail || !embed.thumbnail.startsWith("/media/")) return null; // ours only
  const img = node("img", "embed-thumb");
  img.src = embed.thumbnail;
  img.alt = "";
  img.loading = "lazy";
  img.decoding = "async";
  return img;
}

function linkCard(embed) {
  const card = node("a", "embed-card");
  const href = safeHref(embed.canonical_url);
  if (href) card.href = href;
  card.rel = "noopener noreferrer nofollow";
  const image = thumb(embed);
  if (image) card.append(image);
  card.append(node("span", "embed-title", embed.title, true));
  if (embed.text) card.append(node("span", "embed-text", embed.text, true));
  const source = node("span", "embed-source");
  source.append(node("span", "embed-outlet", embed.outlet, true));
  if (embed.author) source.append(" · ", node("span", "embed-author", embed.author, true));
  card.append(source);
  return card;
}

function post(embed) {
  const quote = node("blockquote", "embed-post");
  quote.cite = embed.canonical_url;
  const byline = node("p", "embed-byline");
  byline.append(node("span", "embed-author", embed.author, true));
  if (embed.handle) byline.append(" ", node("span", "embed-handle", embed.handle, true));
  quote.append(byline);
  if (embed.title) quote.append(node("p", "embed-title", embed.title, true));
  if (embed.text) quote.append(node("p", "embed-text", embed.text, true));
  const image = thumb(embed);
  if (image) quote.append(image);
  return quote;
}

/** "1 Mar 2026" for a date-only time (X gives only the date), else a brief's time label. */
function timeLabel(iso, timeZone, formatTime) {
  if (/^\d{4}-\d{2}-\d{2}$/.test(iso)) {
    const [year, month, day] = iso.split("-").map(Number);
    return `${day} ${MONTHS[month - 1]} ${year}`;
  }
  return formatTime(iso, timeZone);
}

/** The <figure class="embed"> for one snapshot, as _embeds.html renders it. */
export function renderEmbed(embed, timeZone, formatTime) {
  const figure = node("figure", `embed embed--${embed.provider}${embed.deleted ? " embed--deleted" : ""}`);
  figure.dataset.provider = embed.provider;
  if (embed.frame_url && !embed.deleted) figure.dataset.frame = embed.frame_url;
  figure.append(embed.provider === "link" ? linkCard(embed) : post(embed));
  const caption = node("figcaption", "embed-caption");
  if (embed.deleted) caption.append(node("strong", "embed-deleted", "A quotation of a deleted post"), " · ");
  const original = node("a", "embed-original", NAMES[embed.provider] ?? embed.provider);
  const href = safeHref(embed.canonical_url);
  if (href) original.href = href;
  original.rel = "noopener noreferrer nofollow";
  caption.append(original);
  if (embed.published_at) {
    const dateOnly = embed.published_at.length === 10;
    const time = node("time", dateOnly ? "embed-time embed-day" : "embed-time",
      timeLabel(embed.published_at, timeZone, formatTime));
    time.dateTime = embed.published_at;
    caption.append(" · ", time);
  }
  figure.append(caption);
  return figure;
}

/** A brief's `<div class="embeds">`, or null when it quotes nothing. */
export function renderEmbeds(brief, timeZone, formatTime) {
  if (!brief.embeds?.length) return null;
  const box = node("div", "embeds");
  box.append(...brief.embeds.map((embed) => renderEmbed(embed, timeZone, formatTime)));
  offerFrames(box);
  return box;
}

function remembered(provider) {
  try {
    return localStorage.getItem(REMEMBER + provider) === "1";
  } catch {
    return false; // storage blocked: ask every time
  }
}

function remember(provider) {
  try {
    localStorage.setItem(REMEMBER + provider, "1");
  } catch {
    // storage blocked: the choice lasts this page only
  }
}

function loadFrame(figure) {
  const src = safeHref(figure.dataset.frame);
  if (!src || figure.querySelector("iframe")) return;
  const name = NAMES[figure.dataset.provider] ?? figure.dataset.provider;
  const frame = node("iframe", "embed-frame");
  frame.src = src;
  frame.title = `Post from ${name}`;
  frame.loading = "lazy";
  frame.referrerPolicy = "strict-origin-when-cross-origin";
  // A provider's own origin is kept (its player needs it); a frame from this site gets none.
  const own = new URL(src).origin === location.origin;
  frame.setAttribute("sandbox", `allow-scripts allow-popups allow-presentation${own ? "" : " allow-same-origin"}`);
  frame.allow = "encrypted-media; picture-in-picture; fullscreen";
  figure.querySelector(".embed-offer")?.remove();
  figure.classList.add("embed--framed");
  figure.insertBefore(frame, figure.querySelector(".embed-caption"));
}

/** Give each card with a frame its button (or load the frame if the reader chose to always). */
export function offerFrames(root) {
  for (const figure of root.querySelectorAll("figure.embed[data-frame]")) {
    if (figure.querySelector(".embed-offer, iframe")) continue;
    const provider = figure.dataset.provider;
    if (remembered(provider)) {
      loadFrame(figure);
      continue;
    }
    const name = NAMES[provider] ?? provider;
    const offer = node("p", "embed-offer");
    const show = node("button", "embed-show", `Show the post from ${name}`);
    show.type = "button";
    const label = node("label", "embed-remember");
    const always = node("input");
    always.type = "checkbox";
    label.append(always, ` Always show posts from ${name}`);
    offer.append(show, " ", label);
    figure.insertBefore(offer, figure.querySelector(".embed-caption"));
  }
}

/** Buttons for the cards the server rendered, and one click handler for every card. */
export function initEmbeds(root = document) {
  offerFrames(root);
  root.addEventListener("click", (event) => {
    const show = event.target.closest?.(".embed-show");
    if (!show) return;
    const figure = show.closest("figure.embed");
    if (figure.querySelector(".embed-remember input")?.checked) remember(figure.dataset.provider);
    loadFrame(figure);
  });
}
