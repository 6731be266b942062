-- Shared by drafts.lua and append.lua (which publishes a draft with its brief), put before each
-- when it is loaded (livefeed/storage/append.py). A draft change is checked and written here:
-- the drafts hash, the desk stream and the drafts' histories are three keys of the feed's slot.

-- The refusal when draft `id` in hash `drafts` is missing, is in none of `statuses`, or (when
-- `version` is not null) is at another version; nil when the change may go ahead.
local function check_draft(drafts, id, version, statuses)
  local current = redis.call('HGET', drafts, id)
  if not current then
    return 'LIVEFEED_DRAFT_NOTFOUND ' .. id
  end
  local draft = cjson.decode(current)
  local allowed = false
  for _, status in ipairs(statuses) do
    if draft.status == status then allowed = true end
  end
  if not allowed then
    return 'LIVEFEED_DRAFT_STATUS ' .. draft.status
  end
  if version ~= nil and version ~= cjson.null and draft.version ~= version then
    return string.format('LIVEFEED_STALE %d', draft.version)
  end
end

-- Store the draft's new state and append its desk event (fields t, d); the desk stream is
-- never trimmed, so a desk reader can always resume. Returns the desk entry's id.
local function write_draft(drafts, desk, histories, id, state, event_type, event)
  redis.call('HSET', drafts, id, state)
  local desk_id = redis.call('XADD', desk, '*', 't', event_type, 'd', event)
  local past = redis.call('HGET', histories, id)
  redis.call('HSET', histories, id, past and (past .. ',' .. desk_id) or desk_id)
  return desk_id
end
