-- abandon_orch.lua: release an instance lock without committing the turn.
-- KEYS[1] prefix "{ns}:"   KEYS[2] inst:<id>   KEYS[3] inbox:<id>
-- ARGV[1] instance id   ARGV[2] token   ARGV[3] delay ms (>= 0)
-- ARGV[4] "1" to keep the attempt count, "0" to give the attempt back (att-1, min 0)
-- Returns 1. The inbox is untouched; the instance becomes fetchable at now+delay
-- (with no delay it is scored as a delivery would score it: see ready_score).
-- Errors: INSTANCE_NOT_FOUND; LOCK_LOST when the token is not the current lock.
local id, token = ARGV[1], ARGV[2]

-- validate
local f, err = locked_fields(HOLDER_INST, KEYS[2], id, token, nil, 'att', 'node', 'status')
if not f then return err end

-- decide
local now = now_ms()
local delay = tonumber(ARGV[3])
local att = abandoned_attempts(f.att, ARGV[4])

-- write
redis.call('HSET', KEYS[2], 'tok', '', 'ldl', '', 'batch', 0, 'att', att, 'utime', now, 'node', '')
lock_owner_move(f.node, '', 'o:' .. id)
if redis.call('LLEN', KEYS[3]) > 0 then
  local score = I(now + delay)
  if delay == 0 then score = ready_score(f.status, now) end -- a delay is never shortened
  redis.call('ZADD', k_ready(f.rq), score, id)
  if delay == 0 then redis.call('PUBLISH', CH_WAKE_ORCH, f.rq) end
else
  redis.call('ZREM', k_ready(f.rq), id)
end
return 1
