-- Append one event to a feed's stream with an id chosen here, atomically.
-- KEYS[1]  the stream
-- ARGV[1]  event type
-- ARGV[2]  time in ms for the id, or "" for Redis's own clock
-- ARGV[3]  markers, one letter per gap between chunks: I = the entry id, A = its time (ISO 8601)
-- ARGV[4..] chunks of the event's JSON, joined with the markers' values
-- The id is max(time, last id + 1): a clock behind the stream never reorders it. An explicit
-- time older than the stream's last id is refused with an error starting "LIVEFEED_OLDER".

local function iso(ms)
  local secs = math.floor(ms / 1000)
  local days = math.floor(secs / 86400)
  local rest = secs - days * 86400
  -- civil_from_days (H. Hinnant), valid for the proleptic Gregorian calendar
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400 + (m <= 2 and 1 or 0)
  return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%03dZ', y, m, d,
    math.floor(rest / 3600), math.floor(rest % 3600 / 60), rest % 60, ms % 1000)
end

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

local ms
if ARGV[2] == '' then
  local t = redis.call('TIME')
  ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
else
  ms = tonumber(ARGV[2])
  if ms < last_ms then
    return redis.error_reply(string.format('LIVEFEED_OLDER %d-%d', last_ms, last_seq))
  end
end
local seq = 0
if ms <= last_ms then
  ms = last_ms
  seq = last_seq + 1
end

local id = string.format('%d-%d', ms, seq)
local at = iso(ms)
local markers = ARGV[3]
local out = { ARGV[4] }
for i = 1, #markers do
  out[#out + 1] = (string.sub(markers, i, i) == 'I') and id or at
  out[#out + 1] = ARGV[4 + i]
end
redis.call('XADD', KEYS[1], id, 't', ARGV[1], 'd', table.concat(out))
return id
