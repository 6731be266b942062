-- One change to a draft and its desk event, atomically (desk.lua is put before this).
-- KEYS[1] drafts (hash: id -> JSON)   KEYS[2] the desk stream   KEYS[3] drafts' histories
-- KEYS[4] (with `idem`) the idempotency record (hash: fp, result; expires after idem.ttl s)
-- ARGV[1] a JSON header: id, type (the desk event type), create (true: the draft is new),
--   version (the version it must be at; null: any), statuses (those it may be in),
--   idem {fp, ttl} (optional; the result kept is the new state)
-- ARGV[2] the draft's new state (JSON)   ARGV[3] the desk event's d (JSON)
-- Returns the desk entry's id, or a refusal: LIVEFEED_DRAFT_EXISTS, LIVEFEED_DRAFT_NOTFOUND,
-- LIVEFEED_DRAFT_STATUS <status>, LIVEFEED_STALE <version>, LIVEFEED_REPLAY <result>,
-- LIVEFEED_REUSED.
local h = cjson.decode(ARGV[1])
local idem = h.idem ~= nil and h.idem ~= cjson.null and h.idem or nil
if idem then
  local seen = redis.call('HMGET', KEYS[4], 'fp', 'result')
  if seen[1] then
    if seen[1] == idem.fp then
      return 'LIVEFEED_REPLAY ' .. seen[2]
    end
    return 'LIVEFEED_REUSED'
  end
end
if h.create then
  if redis.call('HEXISTS', KEYS[1], h.id) == 1 then
    return 'LIVEFEED_DRAFT_EXISTS ' .. h.id
  end
else
  local refused = check_draft(KEYS[1], h.id, h.version, h.statuses)
  if refused then return refused end
end
local desk_id = write_draft(KEYS[1], KEYS[2], KEYS[3], h.id, ARGV[2], h.type, ARGV[3])
if idem then
  redis.call('HSET', KEYS[4], 'fp', idem.fp, 'result', ARGV[2])
  redis.call('EXPIRE', KEYS[4], idem.ttl)
end
return desk_id
