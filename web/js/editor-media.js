// The compose form's images and audio: drop, paste or choose files; each is uploaded at once
// (POST /api/media) and listed with its rendition, alt text (asked for), caption, credit,
// and buttons to move it up or down or remove it. payload() gives the brief's media and gallery;
// load() puts a draft's media (references: ids and texts) back, each with its upload's record.
// mediaCorrection() gives an edit form the same fields for a published brief's media.

import { api, token } from "./api.js";
import { limits } from "./limits.js";
import { mediaPath } from "./media.js";
import { el } from "./render.js";

let counter = 0;

/** POST one file to /api/media; its record (id, widths, renditions), or an Error to show. */
export async function upload(file) {
  const response = await fetch("/api/media", {
    method: "POST",
    headers: { Authorization: `Bearer ${token.get()}`, "Content-Type": file.type || "application/octet-stream" },
    body: file,
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error?.message ?? `Upload failed (${response.status})`);
  return data;
}

function textField(item, name, label, { max, multiline = false, hint } = {}) {
  const id = `media-${item.key}-${name}`;
  const field = el("div", "field");
  const labelNode = el("label", null, label);
  labelNode.htmlFor = id;
  const input = el(multiline ? "textarea" : "input");
  input.id = id;
  input.dir = "auto";
  input.value = item[name];
  if (max) input.maxLength = max;
  input.addEventListener("input", () => { item[name] = input.value; });
  field.append(labelNode, input);
  const error = el("p", "field-error");
  error.id = `${id}-error`;
  if (hint) {
    const help = el("p", "hint", hint);
    help.id = `${id}-help`;
    field.append(help);
    input.setAttribute("aria-describedby", `${help.id} ${error.id}`);
  }
  field.append(error);
  return field;
}

export function createMediaEditor({ form, fileInput, list, gallery, message }) {
  let items = [];

  function say(text, kind = "info") {
    message.textContent = text;
    message.dataset.kind = kind;
  }

  function move(item, step) {
    const at = items.indexOf(item);
    const to = at + step;
    if (to < 0 || to >= items.length) return;
    items.splice(at, 1);
    items.splice(to, 0, item);
    render();
    list.querySelector(`[data-key="${item.key}"] .media-${step < 0 ? "up" : "down"}`)?.focus();
  }

  function row(item) {
    const li = el("li", "media-item");
    li.dataset.key = item.key;
    li.dataset.id = item.info.id;
    const { info } = item;
    if (info.kind === "image") {
      const img = el("img", "media-thumb");
      img.src = mediaPath(info.id, `${info.widths[0]}.webp`);
      img.width = info.widths[0];
      img.height = Math.round(info.height * info.widths[0] / info.width);
      img.alt = "";
      li.append(img);
      li.append(textField(item, "alt", "Alt text (required)", { max: limits.alt,
        hint: "What the picture shows, for readers who cannot see it. Not the caption." }));
      const check = el("div", "field-check");
      const box = el("input");
      box.type = "checkbox";
      box.id = `media-${item.key}-decorative`;
      box.checked = item.decorative;
      box.addEventListener("change", () => { item.decorative = box.checked; });
      const label = el("label", null, "Decorative: no alt text needed");
      label.htmlFor = box.id;
      check.append(box, label);
      li.append(check);
    } else {
      const audio = el("audio");
      audio.controls = true;
      audio.preload = "none";
      audio.src = mediaPath(info.id, `audio.${info.format}`);
      li.append(audio);
    }
    li.append(textField(item, "caption", "Caption", { max: limits.caption }),
      textField(item, "credit", "Credit", { max: limits.credit, hint: "e.g. Photo: Reuters" }));
    if (info.kind === "audio") {
      li.append(textField(item, "transcript", "Transcript", { max: limits.transcript, multiline: true }));
    }
    const actions = el("div", "media-actions");
    for (const [cls, text, run] of [["media-up", "Move up", () => move(item, -1)],
      ["media-down", "Move down", () => move(item, 1)], ["media-remove", "Remove", () => remove(item)]]) {
      const button = el("button", `button ${cls}`, text);
      button.type = "button";
      button.addEventListener("click", run);
      actions.append(button);
    }
    li.append(actions);
    return li;
  }

  function render() {
    list.replaceChildren(...items.map(row));
  }

  function remove(item) {
    items = items.filter((other) => other !== item);
    render();
    say("Removed.");
  }

  async function add(files) {
    for (const file of files) {
      if (items.length >= (limits.media ?? 10)) {
        say(`A brief can carry at most ${limits.media} images and audio clips.`, "error");
        return;
      }
      say(`Uploading ${file.name || "the pasted image"}…`);
      try {
        const info = await upload(file);
        if (items.some((item) => item.info.id === info.id)) {
          say("That file is already in this brief.", "error");
          continue;
        }
        const item = { key: ++counter, info, alt: "", decorative: false, caption: "", credit: "", transcript: "" };
        items.push(item);
        render();
        say(info.kind === "image" ? "Uploaded: now describe the picture in its alt text." : "Uploaded.", "ok");
        if (info.kind === "image") document.getElementById(`media-${item.key}-alt`)?.focus();
      } catch (error) {
        say(error.message, "error");
      }
    }
  }

  fileInput.addEventListener("change", () => {
    add([...fileInput.files]);
    fileInput.value = "";
  });
  form.addEventListener("dragover", (event) => {
    if (!event.dataTransfer?.types.includes("Files")) return;
    event.preventDefault();
    form.classList.add("dropping");
  });
  form.addEventListener("dragleave", () => form.classList.remove("dropping"));
  form.addEventListener("drop", (event) => {
    form.classList.remove("dropping");
    if (!event.dataTransfer?.files.length) return;
    event.preventDefault();
    add([...event.dataTransfer.files]);
  });
  form.addEventListener("paste", (event) => {
    const files = [...(event.clipboardData?.files ?? [])];
    if (!files.length) return;
    event.preventDefault();
    add(files);
  });

  return {
    /** The brief's `media` and `gallery` fields. */
    payload() {
      const media = items.map((item) => {
        const out = { id: item.info.id, caption: item.caption, credit: item.credit };
        if (item.role) out.role = item.role; // a draft's, kept as it was
        if (item.info.kind === "image") Object.assign(out, { alt: item.alt, decorative: item.decorative });
        else out.transcript = item.transcript;
        return out;
      });
      return { media, gallery: gallery.checked };
    },
    /**
     * Show `refs` (a draft's media) as if just uploaded, each joined to its upload's record
     * (GET /api/media/{id}); `stillCurrent()` false drops an answer that came too late. Rejects,
     * showing nothing, if one cannot be read.
     */
    async load(refs, asGallery, stillCurrent = () => true) {
      const infos = await Promise.all((refs ?? []).map((ref) =>
        api("GET", `/api/media/${encodeURIComponent(ref.id)}`)));
      if (!stillCurrent()) return;
      items = (refs ?? []).map((ref, i) => ({ key: ++counter, info: infos[i], alt: ref.alt ?? "",
        decorative: Boolean(ref.decorative), caption: ref.caption ?? "", credit: ref.credit ?? "",
        transcript: ref.transcript ?? "", role: ref.role }));
      gallery.checked = Boolean(asGallery);
      render();
    },
    /** An image that still needs alt text: its alt input, with a note beside it; else null. */
    missingAlt() {
      const item = items.find((i) => i.info.kind === "image" && !i.alt.trim() && !i.decorative);
      if (!item) return null;
      const input = document.getElementById(`media-${item.key}-alt`);
      document.getElementById(`${input.id}-error`).textContent =
        "Describe the picture, or mark it decorative.";
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return input;
    },
    reset() {
      items = [];
      gallery.checked = false;
      render();
      say("");
    },
  };
}

/** What a brief names of an item: the fields an editor sets, as a correction sends them back. */
function reference(item) {
  return { id: item.id ?? item.info.id, alt: item.alt ?? "", decorative: Boolean(item.decorative),
    caption: item.caption ?? "", credit: item.credit ?? "", role: item.role ?? item.info?.role ?? "inline",
    transcript: item.transcript ?? "" };
}

/**
 * A published brief's media in its edit form: each item's alt text, caption and credit (and an
 * audio clip's transcript). `{ node, changes() }`, or null for a brief without media; changes()
 * is the whole `media` list when any of them changed (a correction replaces the list), else null.
 */
export function mediaCorrection(brief) {
  const published = brief.media ?? [];
  if (!published.length) return null;
  const items = published.map((info) => ({ ...reference(info), key: `e${++counter}`, info }));
  const box = el("fieldset", "media-field media-correction");
  box.append(el("legend", null, "Images and audio"));
  for (const item of items) {
    const row = el("div", "media-item");
    if (item.info.kind === "image") {
      const img = el("img", "media-thumb");
      img.src = mediaPath(item.id, `${item.info.widths[0]}.webp`);
      img.alt = "";
      row.append(img, textField(item, "alt", "Alt text", { max: limits.alt }));
    }
    row.append(textField(item, "caption", "Caption", { max: limits.caption }),
      textField(item, "credit", "Credit", { max: limits.credit }));
    if (item.info.kind === "audio") {
      row.append(textField(item, "transcript", "Transcript", { max: limits.transcript, multiline: true }));
    }
    box.append(row);
  }
  return {
    node: box,
    changes() {
      const now = items.map(reference);
      return JSON.stringify(now) === JSON.stringify(published.map(reference)) ? null : now;
    },
  };
}
