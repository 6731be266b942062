-- Undo an import in one step: remove the entries bulk.lua wrote and everything they changed,
-- and, unless the feed has been appended to since, put its last id back as it was before.
-- KEYS as append.lua (Keys.script): [1] stream [2] brief states [3] day counts
--   [4] histories [5] feed meta (unused) [6] key events [7] time index [8] the stream's last id
--   [9] topic index [10] briefs' tag keys
-- ARGV[1]  the import's last entry id ('' when it wrote nothing)
-- ARGV[2]  for each of KEYS, 1 if it existed before the import, else 0 ("11110111")
-- ARGV[3..6]  the stream before: last-generated-id, entries-added and max-deleted-entry-id
--          (both '' where Redis 6.2 keeps neither), and the last-id key ('' if absent)
-- ARGV[7]  the entry ids to remove, separated by spaces
-- ARGV[8]  d, then d times: day, how many to take off, 1 if the day had no count before
--          (dropped again when it comes back to 0)
-- Returns 1 when the last id was put back, 0 when the feed had moved on (a refused import keeps
-- what was published meanwhile) or nothing was written.

local written_last, existed = ARGV[1], ARGV[2]
local last, added, max_deleted, last_key = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
-- Nobody appended after the import: every change since the mark is its own.
local alone = written_last ~= '' and stream_last_id() == written_last  -- last_id.lua

local ids, n = {}, 0
for id in ARGV[7]:gmatch('%S+') do
  n = n + 1
  ids[n] = id
end
local function remove_from(k, command)
  if alone and existed:sub(k, k) == '0' then
    redis.call('UNLINK', KEYS[k])  -- the import made it: freed in the background, at once
    return
  end
  for first = 1, n, 4000 do  -- unpack() is limited by Lua's C stack
    redis.call(command, KEYS[k], unpack(ids, first, math.min(first + 3999, n)))
  end
end
if alone and existed:sub(9, 9) == '0' then
  redis.call('UNLINK', KEYS[9], KEYS[10])  -- the import made the index (and so the tag keys)
else
  for i = 1, n do untag_brief(ids[i]) end  -- tags.lua
end
remove_from(1, 'XDEL')
remove_from(2, 'HDEL')
remove_from(4, 'HDEL')
remove_from(6, 'SREM')
remove_from(7, 'ZREM')

local pos = 8
local days = tonumber(ARGV[pos])
for i = 1, days do
  local day, count, new = ARGV[pos + 3 * i - 2], ARGV[pos + 3 * i - 1], ARGV[pos + 3 * i]
  local left = redis.call('HINCRBY', KEYS[3], day, -tonumber(count))
  if new == '1' and left <= 0 then
    redis.call('HDEL', KEYS[3], day)
  end
end

if not alone then
  return 0
end
if existed:sub(1, 1) == '0' then
  -- the stream was deleted above: the import had created it
elseif added == '' then
  redis.call('XSETID', KEYS[1], last)  -- Redis 6.2: a stream keeps only its last id
elseif max_deleted == '0-0' then
  -- Redis 7 takes MAXDELETEDID 0-0 as "not given"; 0-1 is the least it keeps, older than any
  -- entry livefeed writes, so Redis counts no deleted entry inside the stream.
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
