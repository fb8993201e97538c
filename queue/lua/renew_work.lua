-- renew_work.lua: extend a live work item lock. Never changes the attempt count.
-- KEYS[1] prefix "{ns}:"   KEYS[2] wi:<work id>
-- ARGV[1] work id   ARGV[2] token   ARGV[3] lock timeout ms
-- Returns the new lock deadline (Unix ms).
-- Errors: WORK_NOT_FOUND; LOCK_LOST when the token is not the current lock or
-- the lock has already expired (deadline <= now).
local wid, token = ARGV[1], ARGV[2]

-- validate
local now = now_ms()
local f, err = locked_fields(HOLDER_WORK, KEYS[2], wid, token, now, 'sess')
if not f then return err end

-- write
local deadline = now + tonumber(ARGV[3])
redis.call('HSET', KEYS[2], 'ldl', deadline)
redis.call('ZADD', k_work(f.bucket), 'XX', deadline, wid)
if f.sess and f.sess ~= '' and redis.call('EXISTS', k_sess(f.sess)) == 1 then
  redis.call('HSET', k_sess(f.sess), 'last', now) -- a long activity keeps its session busy
end
return deadline
