-- Append editor actions to a feed, each atomically with the state it changes.
-- KEYS[1] the stream   KEYS[2] brief states (hash: id -> JSON)   KEYS[3] day counts (hash)
-- KEYS[4] brief histories (hash: id -> comma-separated event ids)   KEYS[5] feed meta (hash)
-- KEYS[6] key events (set of brief ids)   KEYS[7] live briefs by time (sorted set: ms -> id)
-- KEYS[8] the stream's last id (a string kept here: cheaper than XINFO on every append)
-- KEYS[9] the topic index, KEYS[10] each brief's tag keys (tags.lua)
-- KEYS[11] (with `idem`) the idempotency record (hash: fp, result; expires after idem.ttl s)
-- KEYS[k..k+2] (with `draft`) the feed's drafts, desk stream and drafts' histories (desk.lua)
-- ARGV: one or more appends, each given as
--   a JSON header, the markers, the event head, the event tail, the number of body chunks,
--   then the chunks. The header's `type` (the event type) names the action: one function
--   below each, which reads the rest of the header (its parameters, described with it).
--   idem      {fp, ttl, markers, chunks}: an Idempotency-Key (KEYS[11]). If KEYS[11] holds the
--             same fp, nothing is written and LIVEFEED_REPLAY <stored result> is returned; a
--             different fp is LIVEFEED_REUSED. Otherwise, after the append, the result template
--             (chunks and markers, as for the body) is filled and kept with fp for ttl seconds
--   draft     {k, id, version, statuses, markers, chunks, emarkers, echunks}: the publish is of
--             a draft, checked first as desk.lua's check_draft does (a refusal writes nothing);
--             after it, the draft's state (chunks) and its draft_published desk event
--             (echunks), both filled as the body is, are written by write_draft: the brief and
--             the draft's change are one step, so a draft is published at most once
-- Every entry is stamped with Redis's clock (TIME) and its id never goes backwards: at or
-- before the last id it takes the last id's ms and the next sequence number.
-- Markers: one letter per gap between chunks, I = entry id, A = entry time (ISO); the event is
-- head .. body .. tail, and body is the chunks joined with the markers' values.
-- Returns the new entry ids, in order; if an append is refused, the ids of those before it and
-- then the refusal ("LIVEFEED_..." text) as the last element. Several appends in one call share
-- one fsync. (Imports use bulk.lua, which makes publish's writes for a batch of new briefs.)

-- The entry's time as UTC ISO 8601 with ms, as livefeed.model.ids.iso_ms writes it: it is
-- formatted here because Redis chooses the time and the stored JSON (the wire form) holds it.
local function iso(ms)
  local secs = math.floor(ms / 1000)
  local days = math.floor(secs / 86400)
  local rest = secs - days * 86400
  -- civil_from_days (H. Hinnant), proleptic Gregorian calendar
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)
    - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400 + (m <= 2 and 1 or 0)
  return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%03dZ', y, m, d,
    math.floor(rest / 3600), math.floor(rest % 3600 / 60), rest % 60, ms % 1000)
end

local function present(value)
  return value ~= nil and value ~= cjson.null
end

local clock_ms  -- Redis's time, asked once per call (scripts are replicated by effects)
local function redis_ms()
  if not clock_ms then
    local t = redis.call('TIME')
    clock_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return clock_ms
end

local function fill(markers, chunks, id, at)
  local parts = { chunks[1] }
  for i = 1, #markers do
    parts[#parts + 1] = (string.sub(markers, i, i) == 'I') and id or at
    parts[#parts + 1] = chunks[i + 1]
  end
  return table.concat(parts)
end

local last_ms, last_seq = -1, -1
local last = stream_last_id()  -- last_id.lua
local prev = last or '0-0'  -- each entry names the one before it (field p): readers check the chain
if last then
  local a, b = string.match(last, '^(%d+)-(%d+)$')
  last_ms, last_seq = tonumber(a), tonumber(b)
end

-- The next entry's ms and sequence number: at `ms` (Redis's time when nil), never backwards.
local function next_position(ms)
  ms = ms or redis_ms()
  if ms <= last_ms then
    return last_ms, last_seq + 1
  end
  return ms, 0
end

-- Add the entry to the stream at (ms, seq); returns its id, its time (ISO) and the filled body.
local function write(entry, ms, seq)
  local id = string.format('%d-%d', ms, seq)
  local at = iso(ms)
  local body = fill(entry.markers, entry.chunks, id, at)
  redis.call('XADD', KEYS[1], id, 't', entry.type, 'd', entry.head .. body .. entry.tail, 'p', prev)
  prev = id
  last_ms, last_seq = ms, seq
  return id, at, body
end

-- The refusal when brief `brief` has no state, or (with `version`) is at another version.
local function check_brief(brief, version)
  local current = redis.call('HGET', KEYS[2], brief)
  if not current then
    return 'LIVEFEED_NOTFOUND ' .. brief
  end
  if present(version) then
    local v = cjson.decode(current).version
    if v ~= version then
      return string.format('LIVEFEED_STALE %d', v)
    end
  end
end

local function add_history(brief, id)
  local past = redis.call('HGET', KEYS[4], brief)
  redis.call('HSET', KEYS[4], brief, past and (past .. ',' .. id) or id)
end

-- Each action checks its conditions first (a refusal writes nothing), then writes the entry and
-- what it changes; it returns the entry's id and time, or nil and the refusal.

-- publish (type brief): a new brief; its state is the body, under its own id.
--   days       [[iso, first ms, last ms], ...]: the local days around the publisher's "now";
--              the count is that of the one the entry's time falls on, and a time on none is
--              refused with LIVEFEED_CLOCK <ms> (retry with days around <ms>)
--   key_event  true: the brief is a key event
--   tags       the brief's tag keys (model.brief.tag_key), for the topic index
--   at         (tests only) this ms instead of Redis's time
-- Refused with LIVEFEED_ENDED once the feed's coverage has ended.
local function publish(h, entry)
  if redis.call('HGET', KEYS[5], 'status') == 'ended' then
    return nil, 'LIVEFEED_ENDED coverage has ended'
  end
  local ms, seq = next_position(present(h.at) and h.at or nil)
  local day
  for _, d in ipairs(h.days) do
    if d[2] <= ms and ms <= d[3] then day = d[1] end
  end
  if not day then
    return nil, string.format('LIVEFEED_CLOCK %d', ms)
  end
  local id, at, body = write(entry, ms, seq)
  redis.call('HSET', KEYS[2], id, body)
  redis.call('ZADD', KEYS[7], ms, id)
  add_history(id, id)
  if h.key_event then
    redis.call('SADD', KEYS[6], id)
  end
  tag_brief(id, h.tags, h.key_event)  -- tags.lua
  redis.call('HINCRBY', KEYS[3], day, 1)
  return id, at
end

-- correct (type brief_updated): the body becomes the state of brief `brief`, which must be at
--   `version`; key_event true/false: it joins / leaves the key events; `tags` (tag keys) are
--   what the topic index then holds it under.
local function correct(h, entry)
  local refused = check_brief(h.brief, h.version)
  if refused then return nil, refused end
  local id, at, body = write(entry, next_position())
  redis.call('HSET', KEYS[2], h.brief, body)
  add_history(h.brief, id)
  redis.call(h.key_event and 'SADD' or 'SREM', KEYS[6], h.brief)
  untag_brief(h.brief)  -- tags.lua
  tag_brief(h.brief, h.tags, h.key_event)
  return id, at
end

-- retract (type brief_deleted): brief `brief` (at `version`, when not null) leaves the states,
--   the time index, the key events, the topic index, the pin and the count of its local `day`; its history
--   records the retraction.
local function retract(h, entry)
  local refused = check_brief(h.brief, h.version)
  if refused then return nil, refused end
  local id, at = write(entry, next_position())
  redis.call('HDEL', KEYS[2], h.brief)
  redis.call('ZREM', KEYS[7], h.brief)
  add_history(h.brief, id)
  redis.call('SREM', KEYS[6], h.brief)
  untag_brief(h.brief)  -- tags.lua
  if redis.call('HGET', KEYS[5], 'pinned') == h.brief then
    redis.call('HDEL', KEYS[5], 'pinned')
  end
  redis.call('HINCRBY', KEYS[3], h.day, -1)
  return id, at
end

-- pin (type pinned): brief `brief`, which must exist, is the feed's pin.
local function pin(h, entry)
  local refused = check_brief(h.brief)
  if refused then return nil, refused end
  local id, at = write(entry, next_position())
  redis.call('HSET', KEYS[5], 'pinned', h.brief)
  return id, at
end

-- unpin (type unpinned): the feed has no pin.
local function unpin(_, entry)
  local id, at = write(entry, next_position())
  redis.call('HDEL', KEYS[5], 'pinned')
  return id, at
end

-- update_feed (type feed_updated): meta_set {name: value} into the feed meta hash ("$AT" is the
--   entry's time), meta_del [names] out of it.
local function update_feed(h, entry)
  local id, at = write(entry, next_position())
  for name, value in pairs(h.meta_set) do
    redis.call('HSET', KEYS[5], name, value == '$AT' and at or value)
  end
  for _, name in ipairs(h.meta_del) do
    redis.call('HDEL', KEYS[5], name)
  end
  return id, at
end

-- The lead and the summary (model/story.py) live in the feed meta hash: `lead` / `summary` hold
-- the JSON, `lead_version` / `summary_version` count every change, clears included.
local STORY = { lead = true, summary = true }

-- The refusal when story field `field` is not at `version` (0: never set).
local function check_story(h)
  if not STORY[h.field] then
    return 'LIVEFEED_UNKNOWN story ' .. tostring(h.field)
  end
  local current = tonumber(redis.call('HGET', KEYS[5], h.field .. '_version') or '0')
  if current ~= h.version then
    return string.format('LIVEFEED_STALE %d', current)
  end
end

-- set_story (types lead_updated, summary_updated): `field` (lead or summary), at `version`,
--   becomes the body, which carries version + 1 (or `next`, when an import restores one).
local function set_story(h, entry)
  local refused = check_story(h)
  if refused then return nil, refused end
  local id, at, body = write(entry, next_position())
  local version = present(h.next) and h.next or h.version + 1
  redis.call('HSET', KEYS[5], h.field, body, h.field .. '_version', version)
  return id, at
end

-- clear_story (types lead_cleared, summary_cleared): `field`, at `version`, is removed; its
--   version counts on.
local function clear_story(h, entry)
  local refused = check_story(h)
  if refused then return nil, refused end
  local id, at = write(entry, next_position())
  redis.call('HDEL', KEYS[5], h.field)
  redis.call('HSET', KEYS[5], h.field .. '_version', h.version + 1)
  return id, at
end

local actions = {
  brief = publish, brief_updated = correct, brief_deleted = retract,
  pinned = pin, unpinned = unpin, feed_updated = update_feed,
  lead_updated = set_story, summary_updated = set_story,
  lead_cleared = clear_story, summary_cleared = clear_story,
}

local function append_one(h, entry)
  local action = actions[h.type]
  if not action then
    return nil, 'LIVEFEED_UNKNOWN action ' .. tostring(h.type)
  end
  local idem = present(h.idem) and h.idem or nil
  if idem then
    local seen = redis.call('HMGET', KEYS[11], 'fp', 'result')
    if seen[1] then
      if seen[1] == idem.fp then
        return nil, 'LIVEFEED_REPLAY ' .. seen[2]
      end
      return nil, 'LIVEFEED_REUSED'
    end
  end
  local draft = present(h.draft) and h.draft or nil
  if draft then
    local refused = check_draft(KEYS[draft.k], draft.id, draft.version, draft.statuses)
    if refused then return nil, refused end
  end
  local id, at = action(h, entry)
  if not id then
    return nil, at
  end
  if draft then
    write_draft(KEYS[draft.k], KEYS[draft.k + 1], KEYS[draft.k + 2], draft.id,
      fill(draft.markers, draft.chunks, id, at), 'draft_published',
      fill(draft.emarkers, draft.echunks, id, at))
  end
  if idem then
    redis.call('HSET', KEYS[11], 'fp', idem.fp, 'result', fill(idem.markers, idem.chunks, id, at))
    redis.call('EXPIRE', KEYS[11], idem.ttl)
  end
  return id, nil
end

local ids = {}
local pos = 1
while pos <= #ARGV do
  local h = cjson.decode(ARGV[pos])
  local entry = { type = h.type, markers = ARGV[pos + 1], head = ARGV[pos + 2],
    tail = ARGV[pos + 3], chunks = {} }
  local count = tonumber(ARGV[pos + 4])
  for i = 1, count do
    entry.chunks[i] = ARGV[pos + 4 + i]
  end
  local id, refusal = append_one(h, entry)
  if refusal then
    ids[#ids + 1] = refusal
    break
  end
  ids[#ids + 1] = id
  pos = pos + 5 + count
end
if last_ms >= 0 then
  redis.call('SET', KEYS[8], string.format('%d-%d', last_ms, last_seq))
end
return ids
