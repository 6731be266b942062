-- Append one event to a feed, atomically with the state it changes.
-- KEYS[1] the stream   KEYS[2] brief states (hash: id -> JSON)   KEYS[3] day counts (hash)
-- KEYS[4] brief histories (hash: id -> comma-separated event ids)   KEYS[5] feed meta (hash)
-- KEYS[6] key events (set of brief ids)
-- ARGV[1] a JSON header:
--   type      event type
--   at        time in ms for the id
--   strict    true: refuse an `at` older than the stream's last id (imports);
--             false: take max(at, last id) so ids never go backwards (live publishing)
--   day_end   with `day`: last ms of the local day `at` falls on; a live id bumped past it
--             is refused with LIVEFEED_RETRY, so the day count stays exact
--   day, day_delta   add day_delta to the count of `day` (a brief created or retracted)
--   state     "set": store the event body as the brief's state under `field` (or the new
--             entry's id when field is null); "del": remove `field`
--   expect    brief id that must have a state (else LIVEFEED_NOTFOUND) ...
--   version   ... whose version must be this (else LIVEFEED_STALE <current version>)
--   open      refuse with LIVEFEED_ENDED when the feed's coverage has ended
--   history   record the new entry id in the history of `field` (or of the new id)
--   key       true/false: add `field` (or the new id) to / remove it from the key events
--   meta_set  {name: value} for the feed meta hash ("$AT" is the entry's time);
--   meta_del  [names];  unpin  brief id: drop the pin if it is this brief
-- ARGV[2] the markers, one letter per gap between chunks: I = entry id, A = entry time (ISO)
-- ARGV[3] the head of the event JSON; ARGV[4] its tail
-- ARGV[5..] chunks of the event body; event = head .. body .. tail
-- Returns the new entry id.

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

local h = cjson.decode(ARGV[1])

local last_ms, last_seq = -1, -1
local info = redis.pcall('XINFO', 'STREAM', KEYS[1])
if type(info) == 'table' and not info.err then
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then
      local a, b = string.match(info[i + 1], '^(%d+)-(%d+)$')
      last_ms, last_seq = tonumber(a), tonumber(b)
    end
  end
end

local function present(value)
  return value ~= nil and value ~= cjson.null
end

if present(h.expect) then
  local current = redis.call('HGET', KEYS[2], h.expect)
  if not current then
    return redis.error_reply('LIVEFEED_NOTFOUND ' .. h.expect)
  end
  if present(h.version) then
    local v = cjson.decode(current).version
    if v ~= h.version then
      return redis.error_reply(string.format('LIVEFEED_STALE %d', v))
    end
  end
end
if h.open and redis.call('HGET', KEYS[5], 'status') == 'ended' then
  return redis.error_reply('LIVEFEED_ENDED coverage has ended')
end

local ms, seq = h.at, 0
if ms < last_ms and h.strict then
  return redis.error_reply(string.format('LIVEFEED_OLDER %d-%d', last_ms, last_seq))
end
if ms <= last_ms then
  ms, seq = last_ms, last_seq + 1
end
if type(h.day) == 'string' and ms > h.day_end then
  return redis.error_reply('LIVEFEED_RETRY the id moved past the end of the day')
end

local id = string.format('%d-%d', ms, seq)
local at = iso(ms)
local markers = ARGV[2]
local parts = { ARGV[5] }
for i = 1, #markers do
  parts[#parts + 1] = (string.sub(markers, i, i) == 'I') and id or at
  parts[#parts + 1] = ARGV[5 + i]
end
local body = table.concat(parts)

redis.call('XADD', KEYS[1], id, 't', h.type, 'd', ARGV[3] .. body .. ARGV[4])
local field = h.field
if type(field) ~= 'string' then field = id end
if h.state == 'set' then
  redis.call('HSET', KEYS[2], field, body)
elseif h.state == 'del' then
  redis.call('HDEL', KEYS[2], field)
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
if type(h.day) == 'string' and h.day_delta ~= 0 then
  redis.call('HINCRBY', KEYS[3], h.day, h.day_delta)
end
return id
