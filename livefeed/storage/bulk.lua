-- Append a batch of imported briefs in one step: the same writes append.lua's publish makes for
-- each (state, time index, history, day count, key event, topic index), a few commands for the
-- whole batch.
-- KEYS as append.lua: [1] stream [2] brief states [3] day counts [4] histories [5] feed meta
--   (unused) [6] key events [7] time index [8] the stream's last id [9] topic index
--   [10] briefs' tag keys
-- ARGV[1]  the stream's last id this batch must follow; if the stream has moved on (someone
--          published meanwhile), nothing is written and LIVEFEED_MOVED <last id> is returned
-- ARGV[2], ARGV[3]  event head and tail: an entry's data is head .. state .. tail
-- ARGV[4]  n, then n times: entry id (increasing, after ARGV[1]), its ms, the brief's JSON,
--          its tag keys as a JSON list ('' for none)
-- then d, and d times: day, how many of the briefs fall on it
-- then k, and k entry ids that are key events
-- Returns the batch's last id. The caller computed the ids (the stream's last id is checked
-- here first, so they are what append.lua would have given) and filled them into the JSON.

local last = stream_last_id() or '0-0'  -- last_id.lua
if last ~= ARGV[1] then
  return 'LIVEFEED_MOVED ' .. last
end

-- unpack() is limited by Lua's C stack: hand over long argument lists in slices
local function call_in_slices(command, key, list, width)
  local step = 4000 - 4000 % width
  for first = 1, #list, step do
    redis.call(command, key, unpack(list, first, math.min(first + step - 1, #list)))
  end
end

local head, tail = ARGV[2], ARGV[3]
local n = tonumber(ARGV[4])
local states, index, history, tagged = {}, {}, {}, {}
local pos, id = 5, nil
local prev = last  -- each entry names the one before it (field p), as in append.lua
for i = 1, n do
  id = ARGV[pos]
  local ms, state = ARGV[pos + 1], ARGV[pos + 2]
  redis.call('XADD', KEYS[1], id, 't', 'brief', 'd', head .. state .. tail, 'p', prev)
  prev = id
  states[2 * i - 1], states[2 * i] = id, state
  index[2 * i - 1], index[2 * i] = ms, id
  history[2 * i - 1], history[2 * i] = id, id  -- a new id has no history yet
  if ARGV[pos + 3] ~= '' then tagged[id] = cjson.decode(ARGV[pos + 3]) end
  pos = pos + 4
end
if n == 0 then
  return last
end
call_in_slices('HSET', KEYS[2], states, 2)
call_in_slices('ZADD', KEYS[7], index, 2)
call_in_slices('HSET', KEYS[4], history, 2)

local days = tonumber(ARGV[pos])
for i = 1, days do
  redis.call('HINCRBY', KEYS[3], ARGV[pos + 2 * i - 1], ARGV[pos + 2 * i])
end
pos = pos + 1 + 2 * days
local keys = tonumber(ARGV[pos])
if keys > 0 then
  local members = {}
  for i = 1, keys do
    members[i] = ARGV[pos + i]
  end
  call_in_slices('SADD', KEYS[6], members, 1)
  for _, key_id in ipairs(members) do
    tag_brief(key_id, tagged[key_id] or {}, true)  -- tags.lua
    tagged[key_id] = nil
  end
end
for brief_id, tags in pairs(tagged) do
  tag_brief(brief_id, tags, false)
end
redis.call('SET', KEYS[8], id)
return id
