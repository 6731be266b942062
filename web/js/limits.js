// The text limits the server enforces (livefeed/model/schema.py), as it renders them into the
// page: <meta name="livefeed-limits" content='{"headline": 300, ...}'>. No number is copied here.

function read() {
  const meta = document.querySelector('meta[name="livefeed-limits"]');
  try {
    return Object.freeze(JSON.parse(meta?.content ?? "{}"));
  } catch {
    console.warn("livefeed: unreadable limits", meta?.content);
    return Object.freeze({});
  }
}

/** headline, body, author, url, tags, tag, title, language: the most characters (tags: items). */
export const limits = read();
