-- requeue.lua: undo a poison outcome and deliver its work again, with fresh
-- attempts.
-- KEYS[1] prefix "{ns}:"
-- ARGV[1] dead-letter stream id
-- ARGV[2] history length to keep for the poisoned execution; -1 = the length
--   recorded with an orchestration dead letter (everything the poison ack
--   appended goes). 0 deletes that execution's history and restores the
--   instance's previous execution, version and pin.
-- ARGV[3] n, then n work items (bucket, body, ref, session) to create unless
--   their ref is still in the instance's work map.
-- Returns 1. Errors: DEAD_LETTER_NOT_FOUND; INSTANCE_NOT_FOUND;
-- NOT_REQUEUEABLE when the instance is not Failed in the poisoned execution
-- (it moved on, or was already requeued).
local did = ARGV[1]
local r = redis.call('XRANGE', K_DEAD, did, did)
if #r == 0 then return redis.error_reply('DEAD_LETTER_NOT_FOUND ' .. did) end
local e = {}
for i = 1, #r[1][2], 2 do e[r[1][2][i]] = r[1][2][i + 1] end
local id = e.instance
local ik = k_inst(id)
local f = redis.call('HMGET', ik, 'status', 'exec', 'rq')
if not f[1] then return redis.error_reply('INSTANCE_NOT_FOUND ' .. id) end
if f[1] ~= 'Failed' or f[2] ~= e.execution then
  return redis.error_reply('NOT_REQUEUEABLE instance ' .. id .. ' is ' .. f[1] .. ' in execution ' .. f[2])
end

local now = now_ms()
local keep = tonumber(ARGV[2])
if keep < 0 then keep = tonumber(e.hlen or 0) end
local hk = k_hist(id, e.execution)
local had = redis.call('LLEN', hk)
if keep > had then keep = had end
local status = 'Running'
local rec = redis.call('HGET', k_execs(id), e.execution) or ''
if keep == 0 then
  redis.call('DEL', hk)
  redis.call('HDEL', k_execs(id), e.execution, e.execution .. ':out')
  redis.call('HINCRBY', K_STATS, 'executions', -1)
  local prev = e.prev_exec or '0'
  if prev == '0' then status = 'Pending' end
  redis.call('HSET', ik, 'exec', prev, 'ver', e.prev_ver or '', 'pin', e.prev_pin or '')
else
  redis.call('LTRIM', hk, 0, keep - 1)
  redis.call('HDEL', k_execs(id), e.execution .. ':out')
  redis.call('HSET', k_execs(id), e.execution, exec_record('Running', exec_field(rec, 'start'), 0, keep))
end
if had > keep then redis.call('HINCRBY', K_STATS, 'events', keep - had) end
redis.call('HSET', ik, 'status', status, 'out', '', 'cache', '', 'tok', '', 'ldl', '',
  'att', 0, 'batch', 0, 'utime', now)
stat_move('Failed', status, id)

local rq = e.rq
if not rq or rq == '' then rq = f[3] end
if e.kind == 'orchestration' then
  local msgs = decode_ids(e.messages or '')
  for _, m in ipairs(msgs) do redis.call('RPUSH', k_inbox(id), m) end
  if #msgs > 0 then
    redis.call('HSET', ik, 'rq', rq)
    redis.call('ZADD', k_ready(rq), ready_score(status, now), id)
    redis.call('PUBLISH', CH_WAKE_ORCH, rq)
  end
end

local n = tonumber(ARGV[3])
for j = 0, n - 1 do
  local o = 4 + 4 * j
  local bucket, body, ref, sess = ARGV[o], ARGV[o + 1], ARGV[o + 2], ARGV[o + 3]
  if ref == '' or redis.call('HEXISTS', k_wimap(id), ref) == 0 then
    local wid = tostring(redis.call('INCR', K_SEQ))
    local extra = {'body', body, 'inst', id, 'tok', '', 'ldl', '', 'att', '0', 'home', bucket, 'sess', sess}
    if ref ~= '' then
      extra[#extra + 1] = 'ref'
      extra[#extra + 1] = ref
      redis.call('HSET', k_wimap(id), ref, wid)
    end
    wq_register(bucket)
    wq_append(bucket, wid, extra)
  end
end
redis.call('XDEL', K_DEAD, did)
return 1
