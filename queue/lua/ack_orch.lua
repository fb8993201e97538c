-- ack_orch.lua: commit an orchestration turn and release the instance lock.
-- KEYS[1] prefix "{ns}:"   KEYS[2] inst:<id>   KEYS[3] inbox:<id>
-- KEYS[4] hist:<id>:<execution id>   KEYS[5] timers   KEYS[6] seq   KEYS[7] engines
-- KEYS[8] wimap:<id>   KEYS[9] kv:<id>   KEYS[10] kvd:<id>   KEYS[11] execs:<id>
-- KEYS[12] fr:w:<request id> (only with a work claim)
-- ARGV[1] instance id   ARGV[2] token   ARGV[3] execution id (>= 1)
-- ARGV[4] status: Running | Completed | Failed | ContinuedAsNew
-- ARGV[5] output   ARGV[6] name (may be "")   ARGV[7] version (may be "")
-- ARGV[8] engine pin (may be "")   ARGV[9] ready bucket (may be "": keep)
-- ARGV[10] cache owner (may be "")
-- ARGV[11..18] counts: events E, head messages H, activities A, timers T,
--   outbox O, children C, cancelled activities X, key-value ops K
-- ARGV[19] custom status: "" (unchanged) | "set" | "clear"   ARGV[20] its value
-- then, from ARGV[21]: E events, H head messages,
--   A quadruples (bucket, body, ref "<exec>:<eventid>" or "", session id or ""),
--   T pairs (due ms, body), O pairs (instance id, body),
--   C 7-tuples (id, name, version, parent id, bucket, message, collision message),
--   X refs "<exec>:<eventid>",
--   K quads (op "set" | "del" | "all", key, JSON string literal of the value, time ms or "").
-- then the dead letter: "1", reason, attempts, max attempts | "" (none)
-- then, with KEYS[12] (a work claim, eager dispatch; ignored by a poison
--   ack): request id, max items N (>= 1), lock timeout ms, node id, and the
--   work buckets the caller serves: in the buckets of those where this ack
--   added work that belongs to no session, up to N ready items are locked
--   for the caller by lock_ready_work (common.lua), as a fetch would lock
--   them (the oldest first: the ack's own when the buckets were empty).
-- Returns 1 when applied, 0 when this token was already acked (a retried or
-- resent ack): the field acked keeps the last ACKED_KEEP acked tokens, so
-- that a resent ack is recognised even after later turns ran. With a work
-- claim: {1 | 0, item...}, items in fetch_work.lua's item shape; a resent
-- ack returns the items its first run claimed that are still locked by it.
-- Errors: INSTANCE_NOT_FOUND; LOCK_LOST when the token is not the current
-- lock and not a recently acked one; STALE_EXECUTION when the execution id is
-- lower than the instance's current one; HISTORY_UNREADABLE when the history
-- key is not a list (a poison ack, with a dead letter, moves it aside to
-- hist:<id>:<exec>:unreadable instead and goes on).
-- Keys of children, cancelled work items and outbox targets are derived
-- from KEYS[1] (see docs/redis-layout.md, "Dynamic keys"), and so are the
-- namespace-wide indices (instances, stats) that children and the status
-- change update.
local id, token = ARGV[1], ARGV[2]
local exec = tonumber(ARGV[3])
local status = ARGV[4]
local ne, nh, na, nt, no = tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13]),
  tonumber(ARGV[14]), tonumber(ARGV[15])
local nc, nx, nk = tonumber(ARGV[16]), tonumber(ARGV[17]), tonumber(ARGV[18])
local KV_ALL = '\0all' -- clear-all marker field of kvd:<id>; keys never start with NUL
local ACKED_KEEP = 32

-- acked holds the last acked tokens, each followed by a newline.
local function acked_has(acked, tok)
  if not acked or acked == '' or tok == '' then return false end
  return string.find('\n' .. acked, '\n' .. tok .. '\n', 1, true) ~= nil
end
local function acked_push(acked, tok)
  if string.find(tok, '\n', 1, true) then return acked or '' end
  local list = {}
  for t in string.gmatch(acked or '', '([^\n]+)\n') do list[#list + 1] = t end
  local from = math.max(1, #list - ACKED_KEEP + 2)
  local out = {}
  for i = from, #list do out[#out + 1] = list[i] .. '\n' end
  out[#out + 1] = tok .. '\n'
  return table.concat(out)
end

-- validate
local f = redis.call('HMGET', KEYS[2], 'status', 'tok', 'acked', 'exec', 'rq', 'batch', 'node', 'ctime')
if not f[1] then
  return redis.error_reply('INSTANCE_NOT_FOUND ' .. id)
end
-- a work claim (eager dispatch): its arguments follow the dead letter
local claim = #KEYS >= 12
local oQ = 21 + ne + nh + 4 * na + 2 * nt + 2 * no + 7 * nc + nx + 4 * nk
if ARGV[oQ] == '1' then oQ = oQ + 4 else oQ = oQ + 1 end
local function claimed_reply(applied, items)
  if not claim then return applied end
  local out = {applied}
  for _, it in ipairs(items) do out[#out + 1] = it end
  return out
end
if f[2] ~= token then
  if acked_has(f[3], token) then
    if claim then return claimed_reply(0, lock_ready_work(ARGV[oQ], KEYS[12], {}, 0, '1', '', 0)) end
    return 0
  end
  return redis.error_reply('LOCK_LOST ' .. id)
end
local cur = num(f[4])
if exec < cur then
  return redis.error_reply('STALE_EXECUTION ' .. id .. ' acks execution ' .. ARGV[3] .. ' but is at ' .. f[4])
end

-- The history must be a list. A poison ack checks its type (it moves an
-- unreadable history aside); any other ack appends its first events with
-- pcall as its first write, so that a key of the wrong type fails it before
-- it wrote anything, without a TYPE call on every ack.
local function hist_type()
  local t = redis.call('TYPE', KEYS[4])
  return t.ok or t
end
local function unreadable(htype)
  return redis.error_reply('HISTORY_UNREADABLE ' .. KEYS[4] .. ' holds a ' .. htype .. ', not a list')
end
local poison = ARGV[21 + ne + nh + 4 * na + 2 * nt + 2 * no + 7 * nc + nx + 4 * nk] == '1'
local hist_unreadable = false
local pushed, hlen = 0, nil -- events appended so far; the history's length after them
if poison or ne == 0 then
  local htype = hist_type()
  hist_unreadable = htype ~= 'list' and htype ~= 'none'
  if hist_unreadable and not poison then return unreadable(htype) end
else
  pushed = math.min(ne, 100)
  local r = redis.pcall('RPUSH', KEYS[4], unpack(ARGV, 21, 20 + pushed))
  if type(r) == 'table' and r.err then
    local htype = hist_type()
    if htype ~= 'list' and htype ~= 'none' then return unreadable(htype) end
    return r
  end
  hlen = r
end

-- decide
local now = now_ms()
local nows = I(now)
local old_rq = f[5]
local new_rq = old_rq
if ARGV[9] ~= '' then new_rq = ARGV[9] end
local ended = is_ended(status)
local inst_status = status
if status == 'ContinuedAsNew' then inst_status = 'Running' end
local batch = num(f[6])
local woken, woken_work = {}, {}
-- offsets of the item lists in ARGV
local oE = 21
local oH = oE + ne
local oA = oH + nh
local oT = oA + 4 * na
local oO = oT + 2 * nt
local oC = oO + 2 * no
local oX = oC + 7 * nc
local oK = oX + nx
local oD = oK + 4 * nk

-- dead letter: a poisoned batch is kept with its reason, together with the
-- whole inbox (messages after the batch would be dropped by the terminal ack)
-- and the instance's state before this ack, so that it can be requeued.
if poison then
  if hist_unreadable then redis.call('RENAME', KEYS[4], KEYS[4] .. ':unreadable') end
  local pre = redis.call('HMGET', KEYS[2], 'exec', 'ver', 'pin', 'status', 'rq')
  redis.call('XADD', K_DEAD, 'MAXLEN', '~', DEAD_MAXLEN, '*',
    'kind', 'orchestration', 'instance', id, 'execution', ARGV[3],
    'reason', ARGV[oD + 1], 'attempts', ARGV[oD + 2], 'max_attempts', ARGV[oD + 3],
    'hlen', I(redis.call('LLEN', KEYS[4])), 'messages', encode_ids(redis.call('LRANGE', KEYS[3], '0', '-1')),
    'prev_exec', pre[1] or '0', 'prev_ver', pre[2] or '', 'prev_pin', pre[3] or '',
    'prev_status', pre[4] or '', 'rq', pre[5] or '', 'time', nows)
end

-- kv_merge folds kvd:<id> (the delta of the execution that ends) into
-- kv:<id>: the clear-all marker empties kv first, tombstones delete, other
-- fields overwrite. kvd:<id> is deleted.
local function kv_merge()
  local d = redis.call('HGETALL', KEYS[10])
  if #d == 0 then return end
  local sets, dels = {}, {}
  for i = 1, #d, 2 do
    local field, v = d[i], d[i + 1]
    if field == KV_ALL then
      redis.call('DEL', KEYS[9])
    elseif string.sub(v, 1, 5) == '{"d":' then
      table.insert(dels, field)
    else
      table.insert(sets, field)
      table.insert(sets, v)
    end
  end
  for i = 1, #dels, 100 do
    redis.call('HDEL', KEYS[9], unpack(dels, i, math.min(i + 99, #dels)))
  end
  for i = 1, #sets, 200 do
    redis.call('HSET', KEYS[9], unpack(sets, i, math.min(i + 199, #sets)))
  end
  redis.call('DEL', KEYS[10])
end

-- write: consume the batch, append history, put head messages back in front
if batch > 0 then redis.call('LTRIM', KEYS[3], f[6], '-1') end
for i = pushed, ne - 1, 100 do
  hlen = redis.call('RPUSH', KEYS[4], unpack(ARGV, oE + i, oE + math.min(i + 99, ne - 1)))
end
for j = nh - 1, 0, -1 do
  redis.call('LPUSH', KEYS[3], ARGV[oH + j])
end

-- instance fields, in one HSET (custom status included)
local fields = {'status', inst_status, 'out', ARGV[5], 'utime', nows,
  'exec', ARGV[3], 'rq', new_rq, 'cache', ARGV[10],
  'tok', '', 'ldl', '', 'att', '0', 'batch', '0', 'acked', acked_push(f[3], token), 'node', ''}
local function field(name, v) fields[#fields + 1] = name; fields[#fields + 1] = v end
if exec > cur or ARGV[7] ~= '' then field('ver', ARGV[7]) end
if exec > cur or ARGV[8] ~= '' then field('pin', ARGV[8]) end
if ARGV[6] ~= '' then field('name', ARGV[6]) end
if ARGV[19] == 'set' then
  field('cstatus', ARGV[20]); field('cset', '1')
elseif ARGV[19] == 'clear' then
  field('cstatus', ''); field('cset', '')
end
redis.call('HSET', KEYS[2], unpack(fields))
lock_owner_move(f[7], '', 'o:' .. id)
if ARGV[8] ~= '' then redis.call('SADD', KEYS[7], ARGV[8]) end

-- management indices: the status counters follow the instance, the
-- execution record of this ack's execution is created (counted in
-- stats.executions) or updated, stats.events counts the appended events.
-- The counters are written together (stats_flush); the record's events
-- count is the history length the last RPUSH returned.
do
  local delta = {}
  stat_move(f[1], inst_status, id, f[8], delta) -- the id keeps bystatus: in step
  local ef = ARGV[3]
  local rec = redis.call('HGET', KEYS[11], ef)
  local started = now
  if rec then
    started = exec_field(rec, 'start')
  else
    delta.executions = 1
  end
  local fin = 0
  local ex = {}
  if ended or status == 'ContinuedAsNew' then
    fin = now
    ex = {ef .. ':out', ARGV[5]}
  end
  ex[#ex + 1] = ef
  ex[#ex + 1] = exec_record(status, started, fin, hlen or redis.call('LLEN', KEYS[4]))
  redis.call('HSET', KEYS[11], unpack(ex))
  if ne > 0 then delta.events = ne end
  stats_flush(delta)
end

-- custom status (written with the instance fields above): csver counts
-- every update and is never reset
if ARGV[19] == 'set' or ARGV[19] == 'clear' then
  redis.call('HINCRBY', KEYS[2], 'csver', '1')
end

-- new work items; those with a ref are recorded in wimap:<id> for cancellation
-- (a work claim lists in eager the buckets, served by the caller, where it
-- added items that belong to no session)
local eager, eager_in, serves = {}, {}, {}
if claim and not poison then
  for i = oQ + 4, #ARGV do serves[ARGV[i]] = true end
end
for j = 0, na - 1 do
  local o = oA + 4 * j
  local bucket, body, ref, sess = ARGV[o], ARGV[o + 1], ARGV[o + 2], ARGV[o + 3]
  local wid = I(redis.call('INCR', KEYS[6]))
  local home = bucket
  if sess ~= '' then
    -- a session with a live owner routes the item to the owner's node bucket
    local owner = session_owner(sess, now)
    if owner then
      bucket = node_bucket(owner)
      redis.call('HSET', k_sess(sess), 'last', nows)
    end
  end
  if not woken_work[bucket] then
    wq_register(bucket)
    woken_work[bucket] = true
  end
  local extra = {'body', body, 'inst', id, 'tok', '', 'ldl', '', 'att', '0', 'home', home, 'sess', sess}
  if ref ~= '' then
    extra[#extra + 1] = 'ref'
    extra[#extra + 1] = ref
    redis.call('HSET', KEYS[8], ref, wid)
  end
  wq_append(bucket, wid, extra)
  if sess == '' and serves[bucket] and not eager_in[bucket] then
    eager_in[bucket] = true
    eager[#eager + 1] = bucket
  end
end

-- cancelled work items (after the new ones: a turn may schedule and cancel
-- the same activity). A ref that is not there (completed) is skipped. A
-- worker holding a deleted item gets WORK_NOT_FOUND on renew and ack.
for j = 0, nx - 1 do
  local ref = ARGV[oX + j]
  local wid = redis.call('HGET', KEYS[8], ref)
  if wid then
    local w = redis.call('HMGET', k_wi(wid), 'bucket', 'eid', 'node')
    wq_forget(w[1], w[2], wid)
    lock_owner_move(w[3], '', 'w:' .. wid)
    redis.call('DEL', k_wi(wid))
    redis.call('HDEL', KEYS[8], ref)
  end
end

-- work claim: lock up to N ready items of those buckets for the caller
local claimed = {}
if claim then
  claimed = lock_ready_work(ARGV[oQ], KEYS[12], eager, num(ARGV[oQ + 1]), ARGV[oQ + 2], ARGV[oQ + 3], now)
end

-- children (before the outbox, so a message to a child started in this turn
-- lands after its start message). An existing id is left untouched; its
-- collision message goes to this instance's inbox (after the trim above),
-- unless this instance is ending.
for j = 0, nc - 1 do
  local o = oC + 7 * j
  local cid, parent = ARGV[o], ARGV[o + 3]
  if redis.call('EXISTS', k_inst(cid)) == 0 then
    create_instance(cid, ARGV[o + 1], ARGV[o + 2], parent, ARGV[o + 4], ARGV[o + 5], now, woken)
    if parent ~= '' then redis.call('SADD', k_children(parent), cid) end
  elseif ARGV[o + 6] ~= '' and not ended then
    redis.call('RPUSH', KEYS[3], ARGV[o + 6])
  end
end

-- timers: member "<seq>:<len>:<id><body>" keeps equal bodies apart
for j = 0, nt - 1 do
  local due, body = ARGV[oT + 2 * j], ARGV[oT + 2 * j + 1]
  local seq = redis.call('INCR', KEYS[6])
  redis.call('ZADD', KEYS[5], due, I(seq) .. ':' .. I(#id) .. ':' .. id .. body)
end

-- messages to other instances (dropped if missing or ended)
for j = 0, no - 1 do
  deliver(ARGV[oO + 2 * j], ARGV[oO + 2 * j + 1], now, woken)
end

-- key-value state: a new execution first commits what the previous one left
-- (normally nothing: its ending ack merged it); this turn's ops go to the
-- delta in order; an ending execution merges the delta into the store.
if exec > cur then kv_merge() end
for j = 0, nk - 1 do
  local o = oK + 4 * j
  local op, key, t = ARGV[o], ARGV[o + 1], ARGV[o + 3]
  if t == '' then t = nows end
  if op == 'set' then
    redis.call('HSET', KEYS[10], key, '{"v":' .. ARGV[o + 2] .. ',"t":' .. t .. '}')
  elseif op == 'del' then
    redis.call('HSET', KEYS[10], key, '{"d":1,"t":' .. t .. '}')
  elseif op == 'all' then
    redis.call('DEL', KEYS[10])
    redis.call('HSET', KEYS[10], KV_ALL, '1')
  end
end
if ended or status == 'ContinuedAsNew' then kv_merge() end

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
  redis.call('ZADD', k_ready(new_rq), ready_score(inst_status, now), id)
  woken[new_rq] = true
else
  redis.call('ZREM', k_ready(old_rq), id)
  if new_rq ~= old_rq then
    redis.call('ZREM', k_ready(new_rq), id)
    redis.call('SADD', K_ORCH_BUCKETS, new_rq) -- messages may arrive for it later
  end
end

publish_all(CH_WAKE_ORCH, woken)
return claimed_reply(1, claimed)
