-- renew_work.lua: extend a live work item lock. Never changes the attempt count.
-- KEYS[1] prefix "{ns}:"   KEYS[2] wi:<work id>
-- ARGV[1] work id   ARGV[2] token   ARGV[3] lock timeout ms
-- Returns the new lock deadline (Unix ms).
-- Errors: WORK_NOT_FOUND; LOCK_LOST when the token is not the current lock or
-- the lock has already expired (deadline <= now).
local wid, token = ARGV[1], ARGV[2]

-- validate
local f = redis.call('HMGET', KEYS[2], 'tok', 'ldl', 'bucket', 'sess')
if not f[3] then
  return redis.error_reply('WORK_NOT_FOUND ' .. wid)
end
local now = now_ms()
if f[1] ~= token or num(f[2]) <= now then
  return redis.error_reply('LOCK_LOST work ' .. wid)
end

-- write
local deadline = now + tonumber(ARGV[3])
redis.call('HSET', KEYS[2], 'ldl', deadline)
redis.call('ZADD', k_work(f[3]), 'XX', deadline, wid)
if f[4] and f[4] ~= '' and redis.call('EXISTS', k_sess(f[4])) == 1 then
  redis.call('HSET', k_sess(f[4]), 'last', now) -- a long activity keeps its session busy
end
return deadline
