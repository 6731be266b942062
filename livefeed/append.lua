-- Append one event to a feed, atomically with the state it changes.
-- KEYS[1] the stream   KEYS[2] brief states (hash: id -> JSON)   KEYS[3] day counts (hash)
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
if h.state == 'set' then
  local field = h.field
  if type(field) ~= 'string' then field = id end
  redis.call('HSET', KEYS[2], field, body)
elseif h.state == 'del' then
  redis.call('HDEL', KEYS[2], h.field)
end
if type(h.day) == 'string' and h.day_delta ~= 0 then
  redis.call('HINCRBY', KEYS[3], h.day, h.day_delta)
end
return id
