// Form helpers shared by the compose, edit and new-feed forms: the brief payload, errors shown
// beside their input (the note whose id is the input's id + "-error", already named by the
// input's aria-describedby) and form-level messages.

function noteFor(input) {
  return document.getElementById(`${input.id}-error`);
}

export function setMessage(node, text, kind = "info") {
  node.textContent = text;
  node.dataset.kind = kind;
}

export function clearErrors(fields, message) {
  for (const input of Object.values(fields)) {
    input.removeAttribute("aria-invalid");
    const note = noteFor(input);
    if (note) note.textContent = "";
  }
  if (message) setMessage(message, "");
}

/** Show `error` beside the input named by `error.field`, else in the form-level `message`. */
export function showError(fields, message, error) {
  clearErrors(fields, message);
  const input = error.field ? fields[error.field] : null;
  const note = input && noteFor(input);
  if (!note) {
    setMessage(message, error.message, "error");
    return;
  }
  note.textContent = error.message;
  input.setAttribute("aria-invalid", "true");
  input.focus();
}

/** Tags from a comma-separated field, whitespace collapsed and repeats dropped: the server
 * refuses a list longer than its limit (limits.tags) even if some of them repeat. */
function tagList(text) {
  const tags = text.split(",").map((tag) => tag.split(/\s+/).filter(Boolean).join(" "));
  return [...new Set(tags.filter(Boolean))];
}

/** The API body for a brief from fields named headline, body, author, url, tags[, key_event]. */
export function briefPayload(fields) {
  const payload = {
    headline: fields.headline.value.trim(),
    body: fields.body.value,
    author: fields.author.value.trim(),
    url: fields.url.value.trim() || null,
    tags: tagList(fields.tags.value),
  };
  if (fields.key_event) payload.key_event = fields.key_event.checked;
  return payload;
}

export function fillBriefFields(fields, brief) {
  fields.headline.value = brief.headline ?? "";
  fields.body.value = brief.body ?? "";
  fields.author.value = brief.author ?? "";
  fields.url.value = brief.url ?? "";
  fields.tags.value = (brief.tags ?? []).join(", ");
  if (fields.key_event) fields.key_event.checked = Boolean(brief.key_event);
}
