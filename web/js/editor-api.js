// HTTP for the editor page: JSON in and out, the editor's bearer token (this tab only), and one
// error type carrying the server's {"error": {"code", "message", "field"}}.

const TOKEN_KEY = "livefeed.editor.token";
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

export function feedPath(slug, rest = "") {
  return `/api/feeds/${encodeURIComponent(slug)}${rest}`;
}

/**
 * One request. Resolves to the parsed JSON (null for 204); rejects with ApiError.
 * `version` sends `If-Match: "N"`; `auth` checks a token other than the stored one (sign-in).
 */
export async function api(method, path, { body, version, auth = token.get() } = {}) {
  const headers = { Accept: "application/json" };
  if (auth) headers.Authorization = `Bearer ${auth}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (version !== undefined) headers["If-Match"] = `"${version}"`;
  let response;
  try {
    response = await fetch(path, {
      method, headers, cache: "no-store", body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, { code: "network", message: "Couldn't reach the server. Check your connection and try again." });
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (response.ok) return data;
  const error = new ApiError(response.status, data?.error);
  if (response.status === 401 && auth && auth === token.get()) onUnauthorized(error);
  throw error;
}
