-- renew_work.lua: extend a live work item lock. Never changes the attempt count.
-- KEYS[1] prefix "{ns}:"   KEYS[2] wi:<work id>
-- ARGV[1] work id   ARGV[2] token   ARGV[3] lock timeout ms
-- Fenced like ack_work.lua. Moves the delivery time of the item's stream
-- entry with the deadline (XCLAIM ... TIME deadline - WQ_IDLE_MS JUSTID to
-- the same consumer, RETRYCOUNT = its delivery count, which therefore does
-- not change), so that reclaims list it only once the new deadline passes.
-- Returns the new lock deadline (Unix ms).
-- Errors: WORK_NOT_FOUND; LOCK_LOST when the token is not the current lock,
-- the lock has already expired (deadline <= now), or the entry is not
-- pending for its consumer.
local wid, token = ARGV[1], ARGV[2]

-- validate
local now = now_ms()
local f, err = locked_fields(HOLDER_WORK, KEYS[2], wid, token, now, 'sess', 'node', 'eid')
if not f then return err end
local ok, dc = wq_holds(f)
if not ok then return redis.error_reply(HOLDER_WORK.lost .. wid) end

-- write
local deadline = now + tonumber(ARGV[3])
redis.call('HSET', KEYS[2], 'ldl', I(deadline))
redis.call('XCLAIM', k_wq(f.bucket), WQ_GROUP, wq_consumer(f.node), '0', f.eid,
  'TIME', wq_time(deadline, now), 'RETRYCOUNT', I(dc), 'JUSTID')
if f.sess and f.sess ~= '' and redis.call('EXISTS', k_sess(f.sess)) == 1 then
  redis.call('HSET', k_sess(f.sess), 'last', I(now)) -- a long activity keeps its session busy
end
return deadline
