// The day page: the archive as the server rendered it (oldest first), and "Replay the day" —
// the day's briefs arriving again at their original pace times a speed, newest on top as on the
// live page. The archive list is only hidden during a replay, so "Back to the full day" is instant.

import { highlight, insertInOrder, itemIn } from "./js/list.js";
import { initEmbeds } from "./js/embeds.js";
import { inTopic, moveFor, topicOf } from "./js/filter.js";
import { el, renderBrief } from "./js/render.js";
import { createClock, localClock, openReplay } from "./js/replay.js";
import { enableGalleries } from "./js/media.js";
import { createStory } from "./js/story.js";

const TICK_MS = 250;
const MINUTE_MS = 60_000;
const FATAL_CLOSES = new Map([[4400, "The replay could not start."], [4404, "This feed no longer exists."]]);
const LABELS = {
  play: "▶ Replay the day", again: "↻ Replay again", resume: "▶ Continue",
  stop: "■ Stop", back: "Back to the full day",
};

const page = {}; // elements and day settings, filled in by start()
const bounds = { start: 0, end: 0 }; // the local day in UTC ms, both inclusive
const view = {
  playing: false, paused: false, received: 0, // received: brief frames since Play, seeks included
  sinceStart: 0, // brief frames since the latest replay_start (each seek sends one)
  startAt: 0, // the last replay_start's `at`: briefs up to it rebuild the page, later ones are new
  from: null, // "HH:MM:SS" where the next Play starts, or null for the start of the day
  dragging: false, seeking: false, ticker: 0,
};
let replay = null;
let clock = null;
let story = null; // the summary box, as the replay changes it (js/story.js)

// --- time of day ---------------------------------------------------------------------------------

const clockText = (ms) => localClock(ms, page.timeZone);
const shortText = (ms) => localClock(ms, page.timeZone, { seconds: false });

/** The scrubber counts real minutes from the day's start, so a 25-hour day has 1500 of them. */
function scrubberMs(value = page.scrubber.valueAsNumber) {
  return Math.min(bounds.start + value * MINUTE_MS, bounds.end);
}

function scrubberValue(ms) {
  return Math.floor((ms - bounds.start) / MINUTE_MS);
}

function setBounds(start, end) {
  if (!Number.isFinite(start) || !Number.isFinite(end) || end <= start) return;
  Object.assign(bounds, { start, end });
  page.scrubber.max = String(Math.ceil((end + 1 - start) / MINUTE_MS) - 1);
  page.scrubber.step = "1";
}

/** Show `ms` on the clock and, unless the reader holds it, on the scrubber. */
function showTime(ms) {
  const text = clockText(ms);
  if (page.clock.textContent !== text) page.clock.textContent = text;
  if (view.dragging) return;
  const value = String(scrubberValue(ms));
  if (page.scrubber.value !== value) {
    page.scrubber.value = value;
    page.scrubber.setAttribute("aria-valuetext", shortText(ms));
  }
}

function tick() {
  showTime(view.dragging ? scrubberMs() : clock.now());
}

// --- the page --------------------------------------------------------------------------------

function setStatus(text) {
  if (page.status.textContent !== text) page.status.textContent = text;
}

function showArchive(visible) {
  page.list.hidden = !visible;
  page.empty.hidden = visible ? page.emptyWasHidden : true;
  if (page.older) page.older.hidden = !visible;
  page.replayList.hidden = visible;
  page.stop.hidden = visible;
  if (visible) story.reset("summary", null); // the archive shows the day's briefs alone
}

function moveFocus(from, to) {
  if (document.activeElement === from) to.focus();
}

function showPlaying(playing) {
  view.playing = playing;
  page.section.toggleAttribute("data-playing", playing);
  page.play.hidden = playing;
  page.pause.hidden = !playing;
  page.stop.textContent = playing ? LABELS.stop : LABELS.back;
  if (playing) moveFocus(page.play, page.pause);
  else moveFocus(page.pause, page.play);
}

function showPaused(paused) {
  view.paused = paused;
  page.pause.textContent = paused ? "Resume" : "Pause";
}

function showSpeed(speed) {
  const value = String(Number(speed));
  if ([...page.speed.options].some((option) => option.value === value)) page.speed.value = value;
}

function clearReplayList() {
  page.replayList.replaceChildren();
}

/** The brief's <li> in the replayed list, or null. */
function replayed(id) {
  return itemIn(page.replayList, id);
}

/** UTC ms of an ISO time, else of a stream id's "ms-seq"; NaN when neither reads. */
function msOf(iso, id) {
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? ms : Number(String(id ?? "").split("-")[0] || NaN);
}

/** The brief as the server renders it on this page: "HH:MM" (with the zone on a 23/25-hour day). */
function renderReplayBrief(brief) {
  const item = renderBrief(brief, { ...page, withId: false }); // the hidden archive holds the ids
  const label = (ms) => localClock(ms, page.timeZone, { seconds: false, zone: page.showZone });
  const published = item.querySelector(".brief-permalink time");
  if (published) published.textContent = label(msOf(brief.published_at, brief.id));
  const updated = item.querySelector(".brief-updated time");
  if (updated && brief.updated_at) updated.textContent = label(Date.parse(brief.updated_at));
  return item;
}

/** Frames after the replay's start run the clock and get the highlight; earlier ones rebuild. */
function onTime(ms) {
  if (!(ms > view.startAt)) return false;
  clock.sync(ms);
  return true;
}

// --- playing -----------------------------------------------------------------------------------

function play() {
  replay?.close();
  clearReplayList();
  view.received = 0;
  view.seeking = false;
  showArchive(false);
  showPaused(false);
  showPlaying(true);
  setStatus("Starting the replay…");
  replay = openReplay({
    slug: page.slug,
    date: page.date,
    speed: page.speed.value,
    from: view.from,
    handlers,
    afterFrame: tick,
    onClose: handleClose,
  });
  clearInterval(view.ticker);
  view.ticker = setInterval(tick, TICK_MS);
}

/** The replay is over (ended, refused or cut off): freeze the clock and offer Play again. */
function finish(message, playLabel) {
  replay?.close();
  replay = null;
  clearInterval(view.ticker);
  clock.sync(clock.now(), { paused: true });
  page.play.textContent = playLabel;
  showPaused(false);
  showPlaying(false);
  setStatus(message);
  tick();
}

function stop() {
  if (view.playing) finish("", LABELS.play);
  view.from = null;
  page.play.textContent = LABELS.play;
  clock.sync(bounds.start);
  tick();
  showArchive(true);
  moveFocus(page.stop, page.play);
  setStatus("Showing the full day.");
}

function replayStart(frame) {
  const at = Date.parse(frame.at);
  setBounds(Date.parse(frame.day_start), Date.parse(frame.day_end));
  view.startAt = at;
  view.sinceStart = 0;
  clearReplayList();
  story.reset("summary", null); // rebuilt from the summaries before `at`, sent at once
  showPaused(false);
  showSpeed(frame.speed);
  clock.sync(at, { speed: frame.speed, paused: false });
  setStatus(view.seeking ? `Jumped to ${clockText(at)}.`
    : `Replaying from ${clockText(at)} at ${Number(frame.speed)}×.`);
  view.seeking = false;
}

function replayState(frame) {
  showPaused(Boolean(frame.paused));
  showSpeed(frame.speed);
  clock.sync(Date.parse(frame.at), { speed: frame.speed, paused: view.paused });
  setStatus(view.paused ? `Paused at ${clockText(clock.now())}.` : `Playing at ${Number(frame.speed)}×.`);
}

/** The replay shows the briefs and the summary box as they came and went, not the pins or the
 * feed around them. */
const handlers = {
  replay_start: replayStart,
  brief: (frame) => handleBrief(frame.brief),
  brief_updated: handleBriefUpdated,
  brief_deleted: handleBriefDeleted,
  summary_updated: ({ summary, event_id: eventId }) => {
    story.set("summary", summary, { quiet: !onTime(msOf(null, eventId)) });
  },
  summary_cleared: ({ version, event_id: eventId }) => {
    story.clear("summary", version, { quiet: !onTime(msOf(null, eventId)) });
  },
  replay_skip: (frame) => {
    clock.sync(Date.parse(frame.to));
    showSkip(Date.parse(frame.from), Date.parse(frame.to));
  },
  replay_state: replayState,
  replay_end: () => {
    finish("End of the day.", LABELS.again);
    view.from = null;
  },
  error: (frame) => setStatus(frame.message || "The server did not understand that."),
};

function handleBrief(brief) {
  if (!brief?.id || !inTopic(page.topic, brief)) return; // a filtered day: not this topic's
  view.received += 1;
  view.sinceStart += 1;
  const item = renderReplayBrief(brief);
  if (onTime(msOf(brief.published_at, brief.id))) highlight(item, "brief--new");
  const old = replayed(brief.id);
  if (old) old.replaceWith(item);
  else insertInOrder(page.replayList, item);
}

/** A correction replaces the brief in place; one to a brief not in this replay has no place. */
function handleBriefUpdated({ brief, event_id: eventId }) {
  const old = replayed(brief?.id);
  const published = msOf(brief?.published_at, brief?.id);
  const ofDay = published >= bounds.start && published <= bounds.end;
  const move = moveFor(page.topic, brief, old !== null || !ofDay);
  if (move === "out" && old) old.remove(); // a filtered day: the correction took its tag away
  if (move === "out" || (!old && move !== "in")) return;
  const item = renderReplayBrief(brief);
  if (onTime(msOf(brief.updated_at, eventId))) highlight(item, "brief--updated");
  if (old) old.replaceWith(item);
  else insertInOrder(page.replayList, item); // it gained the tag: in its place, as it happened
}

/** A retraction takes the brief away, as it happened. */
function handleBriefDeleted({ brief_id: id, event_id: eventId }) {
  const old = replayed(id);
  if (!old) return;
  onTime(msOf(null, eventId));
  old.remove();
}

/** "Skipped a quiet spell: 03:12 → 05:40", with seconds when the minutes alone would match. */
function showSkip(from, to) {
  const label = shortText(from) === shortText(to) ? clockText : shortText;
  setStatus(`Skipped a quiet spell: ${label(from)} → ${label(to)}`);
}

function handleClose(code, reason) {
  replay = null;
  if (!view.playing) return;
  const fatal = FATAL_CLOSES.get(code);
  if (fatal) {
    view.from = null;
    finish(reason || fatal, LABELS.play);
    if (page.replayList.children.length === 0) showArchive(true);
    return;
  }
  const at = clock.now();
  view.from = clockText(at);
  finish(`The replay was interrupted at ${clockText(at)}. Press Continue to carry on.`, LABELS.resume);
}

// --- controls ----------------------------------------------------------------------------------

function togglePause() {
  if (!replay) return;
  const pausing = !view.paused;
  replay.send({ action: pausing ? "pause" : "resume" });
  showPaused(pausing); // the server's replay_state confirms and sets the exact time
  clock.sync(clock.now(), { paused: pausing });
}

function changeSpeed() {
  if (replay) replay.send({ action: "speed", speed: Number(page.speed.value) });
}

function scrubbing() {
  view.dragging = true;
  tick();
}

function scrubbed() {
  view.dragging = false;
  const ms = scrubberMs();
  const to = clockText(ms);
  page.scrubber.setAttribute("aria-valuetext", shortText(ms));
  if (replay) {
    view.seeking = true;
    replay.send({ action: "seek", to });
    clock.sync(ms);
  } else {
    view.from = to; // where Play will start
    clock.sync(ms, { paused: true });
  }
  tick();
}

// --- wiring ------------------------------------------------------------------------------------

function start() {
  initEmbeds(document.querySelector("main") ?? document);
  enableGalleries();
  const section = document.getElementById("replay");
  const list = document.getElementById("briefs");
  if (!section || !list || !("WebSocket" in window)) return;
  Object.assign(page, {
    section,
    list,
    slug: section.dataset.feed,
    date: section.dataset.date,
    timeZone: section.dataset.timezone,
    empty: document.getElementById("empty"),
    older: document.querySelector("#day .older"),
    play: document.getElementById("replay-play"),
    pause: document.getElementById("replay-pause"),
    speed: document.getElementById("replay-speed"),
    clock: document.getElementById("replay-clock"),
    scrubber: document.getElementById("replay-scrubber"),
    status: document.getElementById("replay-status"),
    replayList: el("ol", "briefs replay-briefs"),
    stop: el("button", "replay-stop", LABELS.back),
    topic: topicOf(document.getElementById("day")),
    tagBase: `/feeds/${encodeURIComponent(section.dataset.feed)}/days/${section.dataset.date}`,
  });
  page.emptyWasHidden = page.empty.hidden;
  setBounds(Number(section.dataset.dayStart), Number(section.dataset.dayEnd));
  page.showZone = bounds.end + 1 - bounds.start !== 24 * 60 * MINUTE_MS;
  clock = createClock(bounds);
  story = createStory({ timeZone: page.timeZone, announce: setStatus });

  page.replayList.id = "replay-briefs";
  page.replayList.setAttribute("aria-label", "Replayed updates, newest first");
  page.replayList.hidden = true;
  list.before(page.replayList);
  page.stop.type = "button";
  page.stop.hidden = true;
  page.pause.after(page.stop);

  page.play.addEventListener("click", play);
  page.pause.addEventListener("click", togglePause);
  page.stop.addEventListener("click", stop);
  page.speed.addEventListener("change", changeSpeed);
  page.scrubber.addEventListener("input", scrubbing);
  page.scrubber.addEventListener("change", scrubbed);
  page.scrubber.addEventListener("pointerdown", () => { view.dragging = true; });
  for (const type of ["pointerup", "pointercancel", "blur"]) {
    page.scrubber.addEventListener(type, () => { view.dragging = false; });
  }

  window.livefeedReplay = {
    state: () => ({ playing: view.playing, paused: view.paused, clock: clockText(clock.now()),
      received: view.received, sinceStart: view.sinceStart, shown: page.replayList.children.length }),
  };
  tick();
  section.hidden = false;
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
