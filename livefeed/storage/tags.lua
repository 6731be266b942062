-- Shared by append.lua, bulk.lua and remove.lua, put before each when it is loaded: the topic
-- index (storage/keys.py: by-tag, KEYS[9], and tags, KEYS[10]). Tags come as tag keys
-- (model.brief.tag_key: Lua cannot case-fold Unicode); each brief's are kept in KEYS[10] so that
-- a correction or a retraction takes out exactly the members its brief put in.

-- The brief id with ms and seq zero-padded to 20 digits: lex order is then time order.
local function tag_id(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return string.rep('0', 20 - #ms) .. ms .. '-' .. string.rep('0', 20 - #seq) .. seq
end

-- The index members of brief `id` with tag keys `tags` (a list), a key event or not.
local function tag_members(id, tags, key_event)
  local pid, members = tag_id(id), {}
  for _, tag in ipairs(tags) do members[#members + 1] = 't' .. tag .. '\0' .. pid end
  if key_event then
    members[#members + 1] = 'k\0' .. pid
    for _, tag in ipairs(tags) do members[#members + 1] = 'k' .. tag .. '\0' .. pid end
  end
  return members
end

-- Take brief `id` out of the index, whatever it was indexed under.
local function untag_brief(id)
  local raw = redis.call('HGET', KEYS[10], id)
  local members = tag_members(id, raw and cjson.decode(raw) or {}, true)
  redis.call('ZREM', KEYS[9], unpack(members))
  if raw then redis.call('HDEL', KEYS[10], id) end
end

-- Put brief `id` into the index under `tags` (and the key events when `key_event`).
local function tag_brief(id, tags, key_event)
  local members, args = tag_members(id, tags, key_event), {}
  for i, member in ipairs(members) do
    args[2 * i - 1], args[2 * i] = 0, member
  end
  if #args > 0 then redis.call('ZADD', KEYS[9], unpack(args)) end
  if #tags > 0 then redis.call('HSET', KEYS[10], id, cjson.encode(tags)) end
end
