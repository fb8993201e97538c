-- ack_orch.lua: commit an orchestration turn and release the instance lock.
-- KEYS[1] prefix "{ns}:"   KEYS[2] inst:<id>   KEYS[3] inbox:<id>
-- KEYS[4] hist:<id>:<execution id>   KEYS[5] timers   KEYS[6] seq   KEYS[7] engines
-- ARGV[1] instance id   ARGV[2] token   ARGV[3] execution id (>= 1)
-- ARGV[4] status: Running | Completed | Failed | ContinuedAsNew
-- ARGV[5] output   ARGV[6] name (may be "")   ARGV[7] version (may be "")
-- ARGV[8] engine pin (may be "")   ARGV[9] ready bucket (may be "": keep)
-- ARGV[10] cache owner (may be "")
-- ARGV[11..15] counts: events E, head messages H, activities A, timers T, outbox O
-- then E events, H head messages, A pairs (bucket, body), T pairs (due ms, body),
-- O pairs (instance id, body).
-- Returns 1 when applied, 0 when this token was already acked (a retried ack).
-- Errors: INSTANCE_NOT_FOUND; LOCK_LOST when the token is not the current
-- lock and not the last acked one; STALE_EXECUTION when the execution id is
-- lower than the instance's current one.
local id, token = ARGV[1], ARGV[2]
local exec = tonumber(ARGV[3])
local status = ARGV[4]
local ne, nh, na, nt, no = tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13]),
  tonumber(ARGV[14]), tonumber(ARGV[15])

-- validate
local f = redis.call('HMGET', KEYS[2], 'status', 'tok', 'acked', 'exec', 'rq', 'batch')
if not f[1] then
  return redis.error_reply('INSTANCE_NOT_FOUND ' .. id)
end
if f[2] ~= token then
  if f[3] == token then return 0 end
  return redis.error_reply('LOCK_LOST ' .. id)
end
local cur = num(f[4])
if exec < cur then
  return redis.error_reply('STALE_EXECUTION ' .. id .. ' acks execution ' .. ARGV[3] .. ' but is at ' .. f[4])
end

-- decide
local now = now_ms()
local old_rq = f[5]
local new_rq = old_rq
if ARGV[9] ~= '' then new_rq = ARGV[9] end
local ended = is_ended(status)
local inst_status = status
if status == 'ContinuedAsNew' then inst_status = 'Running' end
local batch = num(f[6])
local woken, woken_work = {}, {}

-- write: consume the batch, append history, put head messages back in front
if batch > 0 then redis.call('LTRIM', KEYS[3], batch, -1) end
local a = 16
for i = 0, ne - 1, 100 do
  local chunk = {}
  for j = i, math.min(i + 99, ne - 1) do table.insert(chunk, ARGV[a + j]) end
  redis.call('RPUSH', KEYS[4], unpack(chunk))
end
a = a + ne
for j = nh - 1, 0, -1 do
  redis.call('LPUSH', KEYS[3], ARGV[a + j])
end
a = a + nh

-- instance fields
redis.call('HSET', KEYS[2], 'status', inst_status, 'out', ARGV[5], 'utime', now,
  'exec', exec, 'rq', new_rq, 'cache', ARGV[10],
  'tok', '', 'ldl', '', 'att', 0, 'batch', 0, 'acked', token)
if exec > cur then
  redis.call('HSET', KEYS[2], 'ver', ARGV[7], 'pin', ARGV[8])
elseif ARGV[7] ~= '' then
  redis.call('HSET', KEYS[2], 'ver', ARGV[7])
end
if ARGV[6] ~= '' then redis.call('HSET', KEYS[2], 'name', ARGV[6]) end
if ARGV[8] ~= '' then
  redis.call('HSET', KEYS[2], 'pin', ARGV[8])
  redis.call('SADD', KEYS[7], ARGV[8])
end

-- new work items
for j = 0, na - 1 do
  local bucket, body = ARGV[a + 2 * j], ARGV[a + 2 * j + 1]
  local wid = tostring(redis.call('INCR', KEYS[6]))
  redis.call('HSET', k_wi(wid), 'body', body, 'bucket', bucket, 'inst', id,
    'tok', '', 'ldl', '', 'att', 0)
  redis.call('ZADD', k_work(bucket), now, wid)
  woken_work[bucket] = true
end
a = a + 2 * na
for bucket in pairs(woken_work) do redis.call('SADD', K_WORK_BUCKETS, bucket) end

-- timers: member "<seq>:<len>:<id><body>" keeps equal bodies apart
for j = 0, nt - 1 do
  local due, body = ARGV[a + 2 * j], ARGV[a + 2 * j + 1]
  local seq = redis.call('INCR', KEYS[6])
  redis.call('ZADD', KEYS[5], due, seq .. ':' .. #id .. ':' .. id .. body)
end
a = a + 2 * nt

-- messages to other instances (dropped if missing or ended)
for j = 0, no - 1 do
  deliver(ARGV[a + 2 * j], ARGV[a + 2 * j + 1], now, woken)
end

-- where the instance waits now
if ended then
  redis.call('DEL', KEYS[3])
  redis.call('ZREM', k_ready(old_rq), id)
  if new_rq ~= old_rq then redis.call('ZREM', k_ready(new_rq), id) end
  redis.call('PUBLISH', CH_ENDED, id)
elseif redis.call('LLEN', KEYS[3]) > 0 then
  if new_rq ~= old_rq then
    redis.call('ZREM', k_ready(old_rq), id)
    redis.call('SADD', K_ORCH_BUCKETS, new_rq)
  end
  redis.call('ZADD', k_ready(new_rq), now, id)
  woken[new_rq] = true
else
  redis.call('ZREM', k_ready(old_rq), id)
  if new_rq ~= old_rq then
    redis.call('ZREM', k_ready(new_rq), id)
    redis.call('SADD', K_ORCH_BUCKETS, new_rq) -- messages may arrive for it later
  end
end

publish_all(CH_WAKE_ORCH, woken)
publish_all(CH_WAKE_WORK, woken_work)
return 1
