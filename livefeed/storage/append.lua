-- Append one event to a feed, atomically with the state it changes.
-- KEYS[1] the stream   KEYS[2] brief states (hash: id -> JSON)   KEYS[3] day counts (hash)
-- KEYS[4] brief histories (hash: id -> comma-separated event ids)   KEYS[5] feed meta (hash)
-- KEYS[6] key events (set of brief ids)   KEYS[7] live briefs by time (sorted set: ms -> id)
-- KEYS[8] the stream's last id (a string kept here: cheaper than XINFO on every append)
-- KEYS[9] (with `idem`) the idempotency record (hash: fp, result; expires after idem.ttl s)
-- ARGV: one or more appends, each given as
--   a JSON header, the markers, the event head, the event tail, the number of body chunks,
--   then the chunks. The header:
--   type      event type
--   at        time in ms for the id; null: Redis's own clock (TIME), for live actions
--   strict    true: refuse an `at` older than the stream's last id (imports);
--             false: take max(at, last id) so ids never go backwards (live publishing)
--   day_end   with `day`: last ms of the local day `at` falls on; a live id bumped past it
--             is refused with LIVEFEED_RETRY, so the day count stays exact
--   day, day_delta   add day_delta to the count of `day` (a brief created or retracted)
--   days      instead of `day`: [[iso, first ms, last ms], ...], the local days around the
--             publisher's "now"; the count is that of the one the entry's time falls on, and a
--             time on none is refused with LIVEFEED_CLOCK <ms> (retry with days around <ms>)
--   idem      {fp, ttl, markers, chunks}: an Idempotency-Key (KEYS[9]). If KEYS[9] holds the
--             same fp, nothing is written and LIVEFEED_REPLAY <stored result> is returned; a
--             different fp is LIVEFEED_REUSED. Otherwise, after the append, the result template
--             (chunks and markers, as for the body) is filled and kept with fp for ttl seconds
--   state     "set": store the event body as the brief's state under `field` (or the new
--             entry's id when field is null); "del": remove `field`
--   expect    brief id that must have a state (else LIVEFEED_NOTFOUND) ...
--   version   ... whose version must be this (else LIVEFEED_STALE <current version>)
--   open      refuse with LIVEFEED_ENDED when the feed's coverage has ended
--   history   record the new entry id in the history of `field` (or of the new id)
--   key       true/false: add `field` (or the new id) to / remove it from the key events
--   meta_set  {name: value} for the feed meta hash ("$AT" is the entry's time);
--   meta_del  [names];  unpin  brief id: drop the pin if it is this brief
-- Markers: one letter per gap between chunks, I = entry id, A = entry time (ISO); the event is
-- head .. body .. tail, and body is the chunks joined with the markers' values.
-- Returns the new entry ids, in order; if an append is refused, the ids of those before it and
-- then the refusal ("LIVEFEED_..." text) as the last element. Several appends in one call share
-- one fsync. (Imports use bulk.lua, which makes the same writes for a batch of new briefs.)

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

local function append_one(h, markers, head, tail, chunks)
  local idem = present(h.idem) and h.idem or nil
  if idem then
    local seen = redis.call('HMGET', KEYS[9], 'fp', 'result')
    if seen[1] then
      if seen[1] == idem.fp then
        return nil, 'LIVEFEED_REPLAY ' .. seen[2]
      end
      return nil, 'LIVEFEED_REUSED'
    end
  end
  if present(h.expect) then
    local current = redis.call('HGET', KEYS[2], h.expect)
    if not current then
      return nil, 'LIVEFEED_NOTFOUND ' .. h.expect
    end
    if present(h.version) then
      local v = cjson.decode(current).version
      if v ~= h.version then
        return nil, string.format('LIVEFEED_STALE %d', v)
      end
    end
  end
  if h.open and redis.call('HGET', KEYS[5], 'status') == 'ended' then
    return nil, 'LIVEFEED_ENDED coverage has ended'
  end

  local ms, seq = present(h.at) and h.at or redis_ms(), 0
  if ms < last_ms and h.strict then
    return nil, string.format('LIVEFEED_OLDER %d-%d', last_ms, last_seq)
  end
  if ms <= last_ms then
    ms, seq = last_ms, last_seq + 1
  end
  local day = h.day
  if present(h.days) then
    day = nil
    for _, d in ipairs(h.days) do
      if d[2] <= ms and ms <= d[3] then day = d[1] end
    end
    if not day then
      return nil, string.format('LIVEFEED_CLOCK %d', ms)
    end
  elseif type(day) == 'string' and ms > h.day_end then
    return nil, 'LIVEFEED_RETRY the id moved past the end of the day'
  end

  local id = string.format('%d-%d', ms, seq)
  local at = iso(ms)
  local body = fill(markers, chunks, id, at)

  redis.call('XADD', KEYS[1], id, 't', h.type, 'd', head .. body .. tail, 'p', prev)
  prev = id
  last_ms, last_seq = ms, seq
  local field = h.field
  if type(field) ~= 'string' then field = id end
  if h.state == 'set' then
    redis.call('HSET', KEYS[2], field, body)
    if field == id then
      redis.call('ZADD', KEYS[7], ms, id)
    end
  elseif h.state == 'del' then
    redis.call('HDEL', KEYS[2], field)
    redis.call('ZREM', KEYS[7], field)
  end
  if h.history then
    local past = redis.call('HGET', KEYS[4], field)
    redis.call('HSET', KEYS[4], field, past and (past .. ',' .. id) or id)
  end
  if h.key == true then
    redis.call('SADD', KEYS[6], field)
  elseif h.key == false then
    redis.call('SREM', KEYS[6], field)
  end
  if present(h.unpin) and redis.call('HGET', KEYS[5], 'pinned') == h.unpin then
    redis.call('HDEL', KEYS[5], 'pinned')
  end
  if present(h.meta_set) then
    for name, value in pairs(h.meta_set) do
      redis.call('HSET', KEYS[5], name, value == '$AT' and at or value)
    end
  end
  if present(h.meta_del) then
    for _, name in ipairs(h.meta_del) do
      redis.call('HDEL', KEYS[5], name)
    end
  end
  if type(day) == 'string' and h.day_delta ~= 0 then
    redis.call('HINCRBY', KEYS[3], day, h.day_delta)
  end
  if idem then
    redis.call('HSET', KEYS[9], 'fp', idem.fp, 'result', fill(idem.markers, idem.chunks, id, at))
    redis.call('EXPIRE', KEYS[9], idem.ttl)
  end
  return id, nil
end

local ids = {}
local pos = 1
while pos <= #ARGV do
  local count = tonumber(ARGV[pos + 4])
  local chunks = {}
  for i = 1, count do
    chunks[i] = ARGV[pos + 4 + i]
  end
  local id, refusal = append_one(cjson.decode(ARGV[pos]), ARGV[pos + 1], ARGV[pos + 2],
    ARGV[pos + 3], chunks)
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
