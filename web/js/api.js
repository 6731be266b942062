// The JSON API, for the reader pages and the editor: one request function, one error type
// carrying the server's {"error": {"code", "message", "field"}}, and the editor's bearer token
// (this tab only). Reader pages read without a token (getJson).

const TOKEN_KEY = "livefeed.editor.token";
const WRITES = new Set(["POST", "PUT", "PATCH", "DELETE"]);
const RETRY_DELAYS_MS = [500, 1500]; // a write that got no answer is sent again, as many times
const UNREACHABLE = "Couldn't reach the server. Check your connection and try again.";
let onUnauthorized = () => {};

export class ApiError extends Error {
  constructor(status, error = {}) {
    super(error.message || `The server answered HTTP ${status}.`);
    this.status = status; // 0: the request never got an answer
    this.code = error.code || `http_${status}`;
    this.field = error.field || null;
    this.currentVersion = error.current_version ?? null;
  }
}

/** The token lives in sessionStorage: gone when the tab closes, never in the URL or localStorage. */
export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

/** Called when the stored token is refused (revoked while the page was open). */
export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

/** `/api/feeds/{slug}/…parts`, each part escaped. */
export function apiUrl(slug, ...parts) {
  return ["/api/feeds", slug, ...parts].map((part, i) => (i ? encodeURIComponent(part) : part)).join("/");
}

/** A fresh Idempotency-Key: 128 random bits (getRandomValues works on plain http too). */
export function newIntentKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

const pause = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

/**
 * One request. Resolves to the parsed JSON (null for 204); rejects with ApiError, also for an
 * answer that is not JSON. `version` sends `If-Match: "N"`; `auth` is the token to send (the
 * stored one by default, null for none). A write carries one Idempotency-Key per intent (`key`,
 * else a new one) and is sent again with it when no answer came, so a retry never makes a
 * second brief or a second correction.
 */
export async function api(method, path, { body, version, auth = token.get(), key } = {}) {
  const headers = { Accept: "application/json" };
  if (auth) headers.Authorization = `Bearer ${auth}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (version !== undefined) headers["If-Match"] = `"${version}"`;
  const write = WRITES.has(method);
  if (write) headers["Idempotency-Key"] = key ?? newIntentKey();
  const init = { method, headers, cache: "no-store", body: body === undefined ? undefined : JSON.stringify(body) };
  let response;
  for (let attempt = 0; !response; attempt += 1) {
    try {
      response = await fetch(path, init);
    } catch {
      if (!write || attempt >= RETRY_DELAYS_MS.length) throw new ApiError(0, { code: "network", message: UNREACHABLE });
      await pause(RETRY_DELAYS_MS[attempt]);
    }
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (response.ok && data !== null && typeof data === "object") return data;
  const error = new ApiError(response.status, data?.error);
  if (response.status === 401 && auth && auth === token.get()) onUnauthorized(error);
  throw error;
}

/** GET `url` as a reader: no token. */
export function getJson(url) {
  return api("GET", url, { auth: null });
}
