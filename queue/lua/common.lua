-- common.lua: helpers prepended to every script of package queue (it is not
-- run on its own). KEYS[1] of every script is the key prefix "{ns}:". Keys
-- that depend on data only known inside the script (an instance's ready
-- bucket, a work item's instance) are derived from it; they share the hash
-- tag of the prefix, so they live in the same cluster slot as KEYS[1].
-- The key kinds below must match queue/keys.go.
local P = KEYS[1]

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- I formats integer n as a string for redis.call and for keys and tokens.
-- Redis formats every Lua number argument with %.17g and Lua's own
-- number-to-string conversion (.., tostring) uses %.14g; both go through
-- the C library's float printing, which is several times slower than
-- integer formatting. Hot-path scripts pass strings only.
local function I(n) return string.format('%d', n) end

local function k_inst(id) return P .. 'inst:' .. id end
local function k_inbox(id) return P .. 'inbox:' .. id end
local function k_hist(id, exec) return P .. 'hist:' .. id .. ':' .. exec end
local function k_ready(bucket) return P .. 'ready:' .. bucket end
local function k_work(bucket) return P .. 'work:' .. bucket end
local function k_wi(id) return P .. 'wi:' .. id end
local function k_children(id) return P .. 'children:' .. id end
local function k_wimap(id) return P .. 'wimap:' .. id end
local function k_kv(id) return P .. 'kv:' .. id end
local function k_kvd(id) return P .. 'kvd:' .. id end
local function k_execs(id) return P .. 'execs:' .. id end
local K_TIMERS = P .. 'timers'
local K_ENGINES = P .. 'engines'
local K_SEQ = P .. 'seq'
local K_ORCH_BUCKETS = P .. 'buckets:o'
local K_WORK_BUCKETS = P .. 'buckets:a'
local K_NODES = P .. 'nodes'
local K_DEAD = P .. 'dead'
local DEAD_MAXLEN = 100000
local function k_sess(id) return P .. 'sess:' .. id end
local function k_osess(owner) return P .. 'osess:' .. owner end
-- node_bucket is the work bucket of session owner owner (queue.NodeWorkBucket).
local function node_bucket(owner) return 's:' .. owner end

-- held_sessions counts the sessions owner still holds (owner field and a
-- live lease), forgetting the others in its set. Cost: O(sessions held).
local function held_sessions(owner, now)
  local n = 0
  for _, sid in ipairs(redis.call('SMEMBERS', k_osess(owner))) do
    local f = redis.call('HMGET', k_sess(sid), 'owner', 'ldl')
    if f[1] == owner and tonumber(f[2] or 0) > now then
      n = n + 1
    elseif f[1] ~= owner then
      redis.call('SREM', k_osess(owner), sid)
    end
  end
  return n
end

-- session_owner returns the live owner of session sid (lease not lapsed),
-- or nil.
local function session_owner(sid, now)
  local f = redis.call('HMGET', k_sess(sid), 'owner', 'ldl')
  if f[1] and f[1] ~= '' and tonumber(f[2] or 0) > now then return f[1] end
  return nil
end
local K_INSTANCES = P .. 'instances'
local K_STATS = P .. 'stats'
local function k_node(id) return P .. 'node:' .. id end
-- nlocks:<node> lists the locks a node holds: "o:<instance id>" and
-- "w:<work id>", so that they can be reclaimed when the node dies.
local function k_nlocks(id) return P .. 'nlocks:' .. id end

-- lock_owner_move records that the lock of member (see k_nlocks) passes
-- from node old to node new (either may be '' or false: none).
local function lock_owner_move(old, new, member)
  if old and old ~= '' and old ~= new then redis.call('SREM', k_nlocks(old), member) end
  if new and new ~= '' then redis.call('SADD', k_nlocks(new), member) end
end
local CH_WAKE_ORCH = P .. 'wake:orch'
local CH_WAKE_WORK = P .. 'wake:work'
local CH_ENDED = P .. 'ended'

local function is_ended(status)
  return status == 'Completed' or status == 'Failed'
end

-- STAT_FIELD maps an instance status to its counter in the stats hash.
local STAT_FIELD = {Pending = 'pending', Running = 'running', Completed = 'completed', Failed = 'failed'}

-- k_bystatus is the per-status listing index: the ids of the instances in
-- status st, scored like instances (creation time, ms).
local function k_bystatus(st) return P .. 'bystatus:' .. st end

-- stat_add adds n to counter field of the stats hash, or to delta[field]
-- when a delta table is given (written later by stats_flush).
local function stat_add(delta, field, n)
  if delta then
    delta[field] = (delta[field] or 0) + n
  else
    redis.call('HINCRBY', K_STATS, field, I(n))
  end
end

-- stats_flush writes the counter changes of delta (field -> n) to the stats
-- hash: one HINCRBY for one field, else one HMGET and one HSET (the script
-- is atomic, so nothing runs between them).
local function stats_flush(delta)
  local names = {}
  for field, n in pairs(delta) do
    if n ~= 0 then names[#names + 1] = field end
  end
  if #names == 0 then return end
  if #names == 1 then
    redis.call('HINCRBY', K_STATS, names[1], I(delta[names[1]]))
    return
  end
  local v = redis.call('HMGET', K_STATS, unpack(names))
  local out = {}
  for i, field in ipairs(names) do
    out[#out + 1] = field
    out[#out + 1] = I((tonumber(v[i] or 0) or 0) + delta[field])
  end
  redis.call('HSET', K_STATS, unpack(out))
end

-- stat_move moves instance id from the counter and the per-status index of
-- status from to those of status to (either may be nil: created or
-- deleted). The index score is the instance's score in instances (its
-- creation time, also its field ctime): score when the caller passes it,
-- else read, so stat_move runs after ZADD instances on create and before
-- ZREM on delete. The counters change in delta when one is given (see
-- stat_add). Every caller must pass id (the queue tests recount the
-- indices); it does not raise an error without one, as Lua would not undo
-- the caller's writes.
local function stat_move(from, to, id, score, delta)
  if from == to then return end
  if from and STAT_FIELD[from] then
    stat_add(delta, STAT_FIELD[from], -1)
    if id then redis.call('ZREM', k_bystatus(from), id) end
  end
  if to and STAT_FIELD[to] then
    stat_add(delta, STAT_FIELD[to], 1)
    if not score or score == '' then score = id and redis.call('ZSCORE', K_INSTANCES, id) end
    if score then redis.call('ZADD', k_bystatus(to), score, id) end
  end
end

-- exec_record encodes the execution record stored in execs:<id> field "<n>".
local function exec_record(status, start, ended, events)
  return '{"status":"' .. status .. '","start":' .. I(start) ..
    ',"end":' .. I(ended) .. ',"events":' .. I(events) .. '}'
end

-- exec_field reads one number field of an execution record (0 if absent).
local function exec_field(rec, name)
  return tonumber(string.match(rec, '"' .. name .. '":(%d+)')) or 0
end

-- exec_status reads the status of an execution record.
local function exec_status(rec)
  return string.match(rec, '"status":"(%a+)"') or ''
end

-- num converts a hash field (false when missing, '' when cleared) to a number.
local function num(v)
  if not v or v == '' then return 0 end
  return tonumber(v) or 0
end

-- Lock holders: an instance (inst:<id>, which always has the field rq) and a
-- work item (wi:<work id>, which always has bucket), with the errors that the
-- scripts acting on their locks return.
local HOLDER_INST = {field = 'rq', missing = 'INSTANCE_NOT_FOUND ', lost = 'LOCK_LOST '}
local HOLDER_WORK = {field = 'bucket', missing = 'WORK_NOT_FOUND ', lost = 'LOCK_LOST work '}

-- locked_fields is the validation prologue of the scripts that act on a
-- lock (abandon, renew, the ack of a work item). It reads tok, ldl, the
-- holder's always-present field and the extra fields ... of key, the hash of
-- holder id, and returns them by name when token is the current lock.
-- Otherwise it returns nil and the error reply to return: holder.missing
-- when the hash does not exist, holder.lost when token is not the lock or,
-- when now is given (renewals), the lock's deadline is not after now.
local function locked_fields(holder, key, id, token, now, ...)
  local names = {'tok', 'ldl', holder.field, ...}
  local v = redis.call('HMGET', key, unpack(names))
  if not v[3] then
    return nil, redis.error_reply(holder.missing .. id)
  end
  if v[1] ~= token or (now and num(v[2]) <= now) then
    return nil, redis.error_reply(holder.lost .. id)
  end
  local f = {}
  for i, name in ipairs(names) do f[name] = v[i] end
  return f
end

-- abandoned_attempts is the attempt count an abandon leaves: att (a hash
-- field) when keep is "1", else one less (the fetch is given back), min 0.
local function abandoned_attempts(att, keep)
  local n = num(att)
  if keep ~= '1' and n > 0 then n = n - 1 end
  return n
end

-- TURN_LEAD_MS is how far ahead of new starts a running instance's turn is
-- served (queue.TurnLead): an instance that has already run a turn (status
-- Running) and becomes fetchable now is scored now - TURN_LEAD_MS in its
-- ready bucket, a new start (status Pending) now. Fetches take the lowest
-- scores first, so a running instance's next turn goes before the starts
-- made in the last TURN_LEAD_MS, and a start that has waited longer goes
-- before it: starts are never starved. The score is still a time from
-- which the entry may be fetched (it is in the past either way); locks
-- (the deadline) and delays (now + delay) are not moved.
local TURN_LEAD_MS = 60000

-- ready_score is the ready-bucket score of an instance in status status
-- that becomes fetchable at now (see TURN_LEAD_MS), as a string.
local function ready_score(status, now)
  if status == 'Running' then return I(now - TURN_LEAD_MS) end
  return I(now)
end

-- deliver appends msg to the inbox of instance id and makes it fetchable
-- now (scored by ready_score), unless it already waits in its bucket (ZADD
-- NX keeps the score of a locked or delayed instance). Messages to a missing
-- or ended instance are dropped. woken collects the buckets to announce on
-- wake:orch: only when the entry was added. An entry that was there already
-- is fetchable and was announced when it became so, or is locked (the ack or
-- abandon that releases the lock announces it) or delayed (it becomes
-- fetchable by time: fetchers wake at the next_wake of their last fetch, or
-- after their block timeout); this message does not change when it may be
-- fetched. Returns true if the message was delivered.
local function deliver(id, msg, now, woken)
  local f = redis.call('HMGET', k_inst(id), 'status', 'rq')
  if not f[1] or is_ended(f[1]) then return false end
  redis.call('RPUSH', k_inbox(id), msg)
  if redis.call('ZADD', k_ready(f[2]), 'NX', ready_score(f[1], now), id) == 1 then
    woken[f[2]] = true
  end
  return true
end

-- create_instance writes a new instance exactly as CreateInstance does:
-- status Pending, msg in its inbox, fetchable from bucket now, listed in
-- the instances index and counted as pending. cseq (from the seq counter
-- that also numbers timers) tells this instance's timers from those of a
-- deleted instance that had the same id. The caller has checked that
-- inst:<id> does not exist and publishes woken (bucket added).
local function create_instance(id, name, ver, parent, bucket, msg, now, woken)
  local ns = I(now)
  redis.call('HSET', k_inst(id),
    'name', name, 'ver', ver, 'status', 'Pending', 'exec', '0', 'pin', '',
    'parent', parent, 'out', '', 'ctime', ns, 'utime', ns, 'rq', bucket,
    'tok', '', 'ldl', '', 'att', '0', 'batch', '0', 'cache', '', 'acked', '',
    'cseq', I(redis.call('INCR', K_SEQ)))
  redis.call('RPUSH', k_inbox(id), msg)
  redis.call('ZADD', k_ready(bucket), 'NX', ns, id)
  redis.call('SADD', K_ORCH_BUCKETS, bucket)
  redis.call('ZADD', K_INSTANCES, ns, id)
  stat_move(nil, 'Pending', id, ns)
  woken[bucket] = true
end

-- served_buckets returns the set (table) of bucket names that live nodes
-- (score in nodes >= now) advertise. Cost: O(live nodes x their buckets).
local function served_buckets(now)
  local served = {}
  for _, node in ipairs(redis.call('ZRANGEBYSCORE', K_NODES, I(now), '+inf')) do
    for _, b in ipairs(redis.call('SMEMBERS', k_node(node))) do served[b] = true end
  end
  return served
end

-- publish_all announces every bucket in set (a table used as a set) on channel.
local function publish_all(channel, set)
  for bucket in pairs(set) do
    redis.call('PUBLISH', channel, bucket)
  end
end

-- decode_ids parses "<len>:<id><len>:<id>..." as written by encode_ids.
local function decode_ids(s)
  local ids, pos = {}, 1
  while pos <= #s do
    local colon = string.find(s, ':', pos, true)
    if not colon then break end
    local n = tonumber(string.sub(s, pos, colon - 1))
    if not n then break end
    table.insert(ids, string.sub(s, colon + 1, colon + n))
    pos = colon + n + 1
  end
  return ids
end

local function encode_ids(ids)
  local parts = {}
  for i, id in ipairs(ids) do parts[i] = I(#id) .. ':' .. id end
  return table.concat(parts)
end

-- candidates returns the max oldest fetchable entries (score <= now) of the
-- nb sorted sets KEYS[first + 1 .. first + nb], merged oldest first; each
-- entry is {member, score, i, score as Redis returned it} with i the index
-- of its set (1..nb).
-- Cost: O(nb * (log N + max) + nb * max * log(nb * max)), whatever the size of
-- sets that are not passed.
local function candidates(first, nb, max, now)
  local cands = {}
  local ns, ms = I(now), I(max)
  for i = 1, nb do
    local r = redis.call('ZRANGEBYSCORE', KEYS[first + i], '-inf', ns, 'WITHSCORES', 'LIMIT', '0', ms)
    for j = 1, #r, 2 do
      table.insert(cands, {r[j], tonumber(r[j + 1]), i, r[j + 1]})
    end
  end
  table.sort(cands, function(a, b)
    if a[2] ~= b[2] then return a[2] < b[2] end
    if a[1] ~= b[1] then return a[1] < b[1] end
    return a[3] < b[3]
  end)
  return cands
end

-- earliest returns the lowest score in zset key, or nil when it is empty.
local function earliest(key)
  local r = redis.call('ZRANGE', key, '0', '0', 'WITHSCORES')
  if r[2] then return tonumber(r[2]) end
  return nil
end

-- earliest_of returns the lowest score among the sorted sets
-- KEYS[first + 1 .. first + nb], starting from best (nil when none).
local function earliest_of(first, nb, best)
  for i = 1, nb do
    local s = earliest(KEYS[first + i])
    if s and (not best or s < best) then best = s end
  end
  return best
end

-- replay_fetch answers a fetch whose request id already ran (its record
-- rec lists what it locked): the items still locked by that request are
-- returned again, nothing new is locked. key_of builds an item's hash key,
-- build an item's reply; wake is the next_wake value.
local function replay_fetch(rec, req, key_of, build, wake)
  local out = {wake}
  for i, id in ipairs(decode_ids(rec)) do
    local tok = req .. ':' .. I(i)
    if redis.call('HGET', key_of(id), 'tok') == tok then
      table.insert(out, build(id, tok))
    end
  end
  return out
end

-- wake_after turns the earliest known score into a delay in ms from now:
-- 0 when nothing is known, at least 1 when something is (already) due.
local function wake_after(best, now)
  if not best then return 0 end
  local d = best - now
  if d < 1 then d = 1 end
  return d
end

-- K_NODE_SINCE maps each live node to the time from which it has been live
-- without a lapse (set by advertise.lua when its previous liveness had
-- lapsed or it was not listed).
local K_NODE_SINCE = P .. 'nodesince'

-- forget_dead_nodes removes the nodes whose liveness lapsed before now,
-- with what is kept about them (nlocks:<node>, their nodesince field).
local function forget_dead_nodes(now)
  for _, node in ipairs(redis.call('ZRANGEBYSCORE', K_NODES, '-inf', '(' .. now)) do
    redis.call('DEL', k_nlocks(node))
    redis.call('HDEL', K_NODE_SINCE, node)
  end
  redis.call('ZREMRANGEBYSCORE', K_NODES, '-inf', '(' .. now)
end

-- replay_request answers a request whose id (rid, remembered in key req)
-- already succeeded: 1 when req records answer (a resend), a REQUEST_REUSED
-- error when it records another request, nil when the request is new or has
-- no id (req is nil).
local function replay_request(req, rid, answer)
  if not req then return nil end
  local prev = redis.call('GET', req)
  if prev == answer then return 1 end
  if prev then
    return redis.error_reply('REQUEST_REUSED request id ' .. rid .. ' already named another request')
  end
  return nil
end

-- ORCH_ITEM_FIELDS are the inst fields an orchestration item carries
-- (queue.orchItemFields decodes them in this order); batch and cache are
-- read for the script. Not acked (the ring of acked tokens, up to 1.2 KB)
-- nor the others. LOCK_FIELDS adds what a lock step reads: one HMGET
-- serves both steps.
local ITEM_FIELDS = {'name', 'ver', 'status', 'pin', 'parent', 'out', 'rq', 'tok',
  'cstatus', 'cset', 'exec', 'att', 'csver', 'ctime', 'utime', 'batch', 'cache'}
local LOCK_FIELDS = {unpack(ITEM_FIELDS)}
LOCK_FIELDS[#ITEM_FIELDS + 1] = 'ldl'
LOCK_FIELDS[#ITEM_FIELDS + 2] = 'node'
-- positions in LOCK_FIELDS (and ITEM_FIELDS) of the fields the scripts use
local F_STATUS, F_RQ, F_TOK, F_ATT, F_BATCH, F_CACHE, F_LDL, F_NODE = 3, 7, 8, 12, 16, 17, 18, 19

-- orch_item returns the reply item (fetch_orch.lua's item shape) of
-- instance id locked with token tok for cache owner owner (its history is
-- omitted when owner holds it); v, when given, holds its LOCK_FIELDS as
-- they are after the lock (the lock step read them), else they are read.
local function orch_item(id, tok, owner, v)
  if not v then v = redis.call('HMGET', k_inst(id), unpack(ITEM_FIELDS)) end
  for i = #ITEM_FIELDS + 1, #LOCK_FIELDS + 1 do v[i] = nil end
  local h = {}
  for i, name in ipairs(ITEM_FIELDS) do
    if not v[i] then v[i] = '' end
    h[name] = v[i]
  end
  local batch = num(h.batch)
  local msgs = {}
  if batch > 0 then msgs = redis.call('LRANGE', k_inbox(id), '0', I(batch - 1)) end
  local hk = k_hist(id, h.exec ~= '' and h.exec or '0')
  local omitted, hist, kv, rerr = 0, {}, {}, ''
  local hlen = redis.pcall('LLEN', hk)
  if type(hlen) == 'table' then
    rerr, hlen = 'history ' .. hk .. ': ' .. tostring(hlen.err), 0
  end
  if owner ~= '' and h.cache == owner then
    omitted = 1
  elseif rerr == '' then
    hist = redis.pcall('LRANGE', hk, '0', '-1')
    kv = redis.pcall('HGETALL', k_kv(id))
    if hist.err then rerr, hist = 'history ' .. hk .. ': ' .. tostring(hist.err), {} end
    if kv.err then rerr, kv = 'key-value state ' .. k_kv(id) .. ': ' .. tostring(kv.err), {} end
  end
  return {id, tok, num(h.att), v, msgs, hlen, omitted, hist, kv, rerr}
end

-- Eager dispatch (see docs/architecture.md, "Eager dispatch"): an ack may
-- lock, for its caller, work that it has just made ready, and return it
-- in the shape a fetch returns, so that the caller needs no fetch and no
-- wake-up. The lock is the one a fetch takes (token "<request id>:<n>",
-- ldl, att + 1, node recorded, score = deadline), and the request record
-- (rkey = fr:w:<request id> or fr:o:<request id>, PX = lock timeout) makes a
-- resent ack return the same items instead of locking more: a crash after
-- an eager claim is recovered like a crash after a fetch.

-- work_item_reply is a work item in fetch_work.lua's reply shape.
local function work_item_reply(wid, tok)
  local f = redis.call('HMGET', k_wi(wid), 'bucket', 'body', 'inst', 'att')
  return {wid, tok, f[1], f[2], f[3], num(f[4])}
end

-- lock_ready_work locks for the caller the work items wids (ids of items
-- ready in their bucket, in order) exactly as fetch_work.lua locks a
-- fetched item, under request req (record rkey), with lock ms lock (a
-- string) and node id node, and returns them in fetch_work.lua's item
-- shape. Items that are gone, already locked or belong to a session are
-- skipped (session items are only taken by a fetch, which applies the
-- session rules). When rkey exists the request already ran (a resent
-- ack): nothing is locked and the items it locked that it still holds are
-- returned. This is the only place where an ack locks work items; a
-- backend that stores work queues differently replaces its body.
-- Cost: O(#wids).
local function lock_ready_work(req, rkey, wids, lock, node, now)
  local rec = redis.call('GET', rkey)
  if rec then
    local out = replay_fetch(rec, req, k_wi, work_item_reply, 0)
    table.remove(out, 1)
    return out
  end
  local locked, toks, items = {}, {}, {}
  local deadline = I(now + tonumber(lock))
  for _, wid in ipairs(wids) do
    local f = redis.call('HMGET', k_wi(wid), 'bucket', 'tok', 'ldl', 'att', 'sess', 'node')
    if f[1] and (f[2] or '') == '' and (f[5] or '') == '' then
      local n = #locked + 1
      local t = req .. ':' .. I(n)
      redis.call('HSET', k_wi(wid), 'tok', t, 'ldl', deadline, 'att', I(num(f[4]) + 1), 'node', node)
      lock_owner_move(f[6], node, 'w:' .. wid)
      redis.call('ZADD', k_work(f[1]), deadline, wid)
      locked[n], toks[n] = wid, t
    end
  end
  if #locked > 0 then
    redis.call('SET', rkey, encode_ids(locked), 'PX', lock)
    for i, wid in ipairs(locked) do items[i] = work_item_reply(wid, toks[i]) end
  end
  return items
end

-- EAGER_TURNS_MAX bounds the consecutive turns of one instance that
-- lock_ready_turn locks: after that many, its next turn waits in its ready
-- bucket for a fetch (which resets the count, inst field eager), so that
-- a worker whose activities keep completing does not starve the instances
-- queued in the shared ready sets.
local EAGER_TURNS_MAX = 8

-- lock_ready_turn locks for the caller the next turn of instance id, as
-- fetch_orch.lua locks it, when the caller holds its executor (field cache
-- = owner, not ''), it waits in bucket (field rq), it is not locked, it is
-- due there (score <= now), its inbox is not empty and fewer than
-- EAGER_TURNS_MAX of its turns in a row were locked this way. The lock is
-- taken under request req (token "<req>:1", record rkey, PX = lock ms) with
-- at most maxmsg messages. Returns the item in fetch_orch.lua's item
-- shape, or nil. When rkey exists (a resent ack) nothing is locked and the
-- item is returned again if req still holds it.
local function lock_ready_turn(id, bucket, owner, req, rkey, lock, node, maxmsg, now)
  local rec = redis.call('GET', rkey)
  if rec then
    local out = replay_fetch(rec, req, k_inst, function(iid, tok) return orch_item(iid, tok, owner) end, 0)
    return out[2]
  end
  if owner == '' then return nil end
  local ik = k_inst(id)
  local v = redis.call('HMGET', ik, 'eager', unpack(LOCK_FIELDS))
  local eager = num(table.remove(v, 1))
  if not v[F_STATUS] or is_ended(v[F_STATUS]) or v[F_CACHE] ~= owner or v[F_RQ] ~= bucket or
    (v[F_TOK] or '') ~= '' or eager >= EAGER_TURNS_MAX then
    return nil
  end
  local zkey = k_ready(bucket)
  local score = redis.call('ZSCORE', zkey, id)
  if not score or tonumber(score) > now then return nil end
  local llen = redis.call('LLEN', k_inbox(id))
  if llen == 0 then return nil end
  local t = req .. ':1'
  local deadline = I(now + tonumber(lock))
  v[F_TOK], v[F_ATT], v[F_BATCH] = t, I(num(v[F_ATT]) + 1), I(math.min(llen, maxmsg))
  redis.call('HSET', ik, 'tok', t, 'ldl', deadline, 'att', v[F_ATT], 'batch', v[F_BATCH],
    'node', node, 'eager', I(eager + 1))
  lock_owner_move(v[F_NODE], node, 'o:' .. id)
  redis.call('ZADD', zkey, deadline, id)
  redis.call('SET', rkey, encode_ids({id}), 'PX', lock)
  return orch_item(id, t, owner, v)
end
