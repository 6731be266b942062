// Reading the public JSON API. Errors come back as Error objects whose message a reader can see.

/** `/api/feeds/{slug}/…parts`, each part escaped. */
export function apiUrl(slug, ...parts) {
  return ["/api/feeds", slug, ...parts].map((part, i) => (i ? encodeURIComponent(part) : part)).join("/");
}

/** GET `url` as JSON; throws with the server's `error.message` (or a plain one naming `what`). */
export async function getJson(url, what = "updates") {
  let response;
  try {
    response = await fetch(url, { headers: { Accept: "application/json" } });
  } catch {
    throw new Error("Couldn't reach the server. Check your connection and try again.");
  }
  const data = await response.json().catch(() => null);
  if (!response.ok || data === null || typeof data !== "object") {
    const error = new Error(data?.error?.message || `Couldn't load ${what} (HTTP ${response.status}).`);
    error.status = response.status;
    throw error;
  }
  return data;
}
