-- Shared by append.lua and bulk.lua, put before each when it is loaded (livefeed/append.py).
-- The stream's last id: KEYS[8], or for a stream written before that key existed, XINFO on
-- the stream KEYS[1]; nil for a stream that has never had an entry.
local function stream_last_id()
  local last = redis.call('GET', KEYS[8])
  if not last then
    local info = redis.pcall('XINFO', 'STREAM', KEYS[1])
    if type(info) == 'table' and not info.err then
      for i = 1, #info, 2 do
        if info[i] == 'last-generated-id' then last = info[i + 1] end
      end
    end
  end
  return last
end

