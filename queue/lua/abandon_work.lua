-- abandon_work.lua: release a work item lock; the item becomes fetchable at now+delay.
-- KEYS[1] prefix "{ns}:"   KEYS[2] wi:<work id>
-- ARGV[1] work id   ARGV[2] token   ARGV[3] delay ms (>= 0)
-- ARGV[4] "1" to keep the attempt count, "0" to give the attempt back (att-1, min 0)
-- Returns 1.
-- Errors: WORK_NOT_FOUND; LOCK_LOST when the token is not the current lock.
local wid, token = ARGV[1], ARGV[2]

-- validate
local f, err = locked_fields(HOLDER_WORK, KEYS[2], wid, token, nil, 'att', 'node')
if not f then return err end

-- decide
local now = now_ms()
local delay = tonumber(ARGV[3])
local att = abandoned_attempts(f.att, ARGV[4])

-- write
redis.call('HSET', KEYS[2], 'tok', '', 'ldl', '', 'att', att, 'node', '')
lock_owner_move(f.node, '', 'w:' .. wid)
redis.call('ZADD', k_work(f.bucket), now + delay, wid)
if delay == 0 then redis.call('PUBLISH', CH_WAKE_WORK, f.bucket) end
return 1
