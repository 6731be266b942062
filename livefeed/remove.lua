-- Undo an import in one step: remove the entries bulk.lua wrote and everything they changed,
-- and, unless the feed has been appended to since, put its last id back as it was before.
-- KEYS as append.lua (Store.script_keys): [1] stream [2] brief states [3] day counts
--   [4] histories [5] feed meta (unused) [6] key events [7] time index [8] the stream's last id
-- ARGV[1]  n, then n entry ids to remove
-- then d, and d times: day, how many to take off, 1 if the day had no count before (dropped
--          again when it comes back to 0)
-- then the import's last entry id ('' when it wrote nothing) and the feed as it was before:
--   whether the stream existed (1/0), its last-generated-id, entries-added and
--   max-deleted-entry-id (both '' where Redis 6.2 keeps neither), the last-id key ('' if absent)
-- Returns 1 when the last id was put back, 0 when the feed had moved on (a refused import keeps
-- what was published meanwhile) or nothing was written.

local function call_in_slices(command, key, list)
  for first = 1, #list, 4000 do
    redis.call(command, key, unpack(list, first, math.min(first + 3999, #list)))
  end
end

local n = tonumber(ARGV[1])
local ids = {}
for i = 1, n do
  ids[i] = ARGV[1 + i]
end
if n > 0 then
  call_in_slices('XDEL', KEYS[1], ids)
  call_in_slices('HDEL', KEYS[2], ids)
  call_in_slices('HDEL', KEYS[4], ids)
  call_in_slices('ZREM', KEYS[7], ids)
  call_in_slices('SREM', KEYS[6], ids)
end
local pos = 2 + n
local days = tonumber(ARGV[pos])
for i = 1, days do
  local day, count, new = ARGV[pos + 3 * i - 2], ARGV[pos + 3 * i - 1], ARGV[pos + 3 * i]
  local left = redis.call('HINCRBY', KEYS[3], day, -tonumber(count))
  if new == '1' and left <= 0 then
    redis.call('HDEL', KEYS[3], day)
  end
end
pos = pos + 1 + 3 * days
local written_last, existed, last, added, max_deleted, last_key =
  ARGV[pos], ARGV[pos + 1], ARGV[pos + 2], ARGV[pos + 3], ARGV[pos + 4], ARGV[pos + 5]

if written_last == '' or stream_last_id() ~= written_last then  -- last_id.lua
  return 0
end
if existed == '0' then
  redis.call('DEL', KEYS[1])  -- the import created it; now it holds nothing
elseif added == '' then
  redis.call('XSETID', KEYS[1], last)  -- Redis 6.2: a stream keeps only its last id
elseif max_deleted == '0-0' then
  -- Redis 7 takes MAXDELETEDID 0-0 as "not given"; 0-1 is the smallest it keeps, older than
  -- any entry livefeed writes, so Redis counts no deleted entry inside the stream.
  redis.call('XSETID', KEYS[1], last, 'ENTRIESADDED', added, 'MAXDELETEDID', '0-1')
else
  redis.call('XSETID', KEYS[1], last, 'ENTRIESADDED', added, 'MAXDELETEDID', max_deleted)
end
if last_key == '' then
  redis.call('DEL', KEYS[8])
else
  redis.call('SET', KEYS[8], last_key)
end
return 1
