-- common.lua: helpers of the scripts of package queue (it is not run on its
-- own); a script gets the definitions it uses in front of it (prelude.go:
-- a definition starts with "local" at column 0, function bodies indented).
-- KEYS[1] of every script is the key prefix "{ns}:". Keys that depend on
-- data only known inside the script (an instance's ready bucket, a work
-- item's instance) are derived from it; they share the hash tag of the
-- prefix, so they live in the same cluster slot as KEYS[1].
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
local function k_wq(bucket) return P .. 'wq:' .. bucket end
local function k_wqd(bucket) return P .. 'wqd:' .. bucket end
local K_WQ_DUE = P .. 'wqdue'
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
local function k_nodeinfo(id) return P .. 'nodeinfo:' .. id end
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

-- K_NODE_TTL maps each listed node to the liveness (ms) its heartbeats give
-- it (advertise.lua's ttl): a node that is alive shows up again within that
-- long of Redis answering it.
local K_NODE_TTL = P .. 'nodettl'

-- NODE_FORGET_MS is how long a node whose liveness lapsed is kept, with
-- its lock list, before forget_dead_nodes drops it: every live worker's
-- heartbeat (reclaim_nodes.lua) gets that long to take its locks over, so
-- an UnservedBuckets call that lands between a node's death and the next
-- reclaim cannot make its locks wait out their deadlines. A node lapsed
-- during an outage of Redis (never reclaimed) is dropped after it too.
local NODE_FORGET_MS = 60000

-- forget_dead_nodes removes the nodes whose liveness lapsed more than
-- NODE_FORGET_MS before now, with what is kept about them (nlocks:<node>,
-- their nodesince and nodettl fields).
local function forget_dead_nodes(now)
  local before = '(' .. I(now - NODE_FORGET_MS)
  for _, node in ipairs(redis.call('ZRANGEBYSCORE', K_NODES, '-inf', before)) do
    redis.call('DEL', k_nlocks(node))
    redis.call('HDEL', K_NODE_SINCE, node)
    redis.call('HDEL', K_NODE_TTL, node)
  end
  redis.call('ZREMRANGEBYSCORE', K_NODES, '-inf', before)
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

-- Work streams. Each work bucket is a stream wq:<bucket> read through one
-- consumer group (WQ_GROUP, queue.WorkGroup); an entry's only field "w" is
-- the work id, and wi:<id> field eid names the entry that carries the item
-- now ("" while it waits in the delayed set wqd:<bucket>). An entry not yet
-- delivered is ready; a delivered one sits in the group's pending entries
-- list (PEL) under the consumer that read or claimed it, with a delivery
-- count: the lock. wi:<id> keeps the token and deadline (tok, ldl), and
-- attb, the attempts counted before the current entry, so that the
-- attempts of a lock are attb + the entry's delivery count.
local WQ_GROUP = 'g'
-- WQ_FREE is the consumer that holds the entries of reclaimed dead nodes;
-- no caller is named so (node ids do not start with NUL).
local WQ_FREE = '\0reclaimed'
-- An idle time (ms) longer than any lock: an entry given it is listed by
-- every reclaim at once.
local WQ_LONG_IDLE = '100000000000'
-- WQ_IDLE_MS is the idle time (ms) from which a reclaim lists a pending
-- entry. A lock sets its entry's delivery time to deadline - WQ_IDLE_MS
-- (XCLAIM ... TIME), so the entry reaches that idle time exactly when the
-- lock expires, whatever the lock timeouts of the holder and of the
-- reclaimer. Redis does not take a delivery time in the future, so a lock
-- longer than WQ_IDLE_MS is listed before it expires (and left alone: the
-- reclaim checks ldl); an entry read but never locked is listed
-- WQ_IDLE_MS after the read.
local WQ_IDLE_MS = 300000

-- wq_time is the delivery time (ms, a string) that makes an entry locked
-- until deadline reach WQ_IDLE_MS of idle time at the deadline.
local function wq_time(deadline, now)
  return I(math.min(now, deadline - WQ_IDLE_MS))
end

-- wq_consumer is the consumer name of a caller: its node id, or "-".
local function wq_consumer(node)
  if not node or node == '' then return '-' end
  return node
end

-- wq_group creates the consumer group of stream key (and the stream) if it
-- is missing, at id 0 so that entries already in the stream are delivered.
local function wq_group(key)
  redis.pcall('XGROUP', 'CREATE', key, WQ_GROUP, '0', 'MKSTREAM')
end

-- wq_register adds bucket to buckets:a and creates its stream's group the
-- first time.
local function wq_register(bucket)
  if redis.call('SADD', K_WORK_BUCKETS, bucket) == 1 then wq_group(k_wq(bucket)) end
end

-- wq_append adds an entry for work item wid at the back of bucket's stream
-- and records it (fields eid, bucket, plus the pairs in extra).
local function wq_append(bucket, wid, extra)
  local eid = redis.call('XADD', k_wq(bucket), '*', 'w', wid)
  local f = {'eid', eid, 'bucket', bucket}
  for _, v in ipairs(extra or {}) do f[#f + 1] = v end
  redis.call('HSET', k_wi(wid), unpack(f))
  return eid
end

-- wq_remove acknowledges and deletes entry eid of stream key (an XDEL alone
-- would leave it in the PEL).
local function wq_remove(key, eid)
  if eid and eid ~= '' then
    redis.call('XACK', key, WQ_GROUP, eid)
    redis.call('XDEL', key, eid)
  end
end

-- wq_forget takes work item wid (in bucket, entry eid or delayed) out of
-- its bucket's stream and delayed set; the caller deletes or moves wi:<wid>.
local function wq_forget(bucket, eid, wid)
  if not bucket then return end
  wq_remove(k_wq(bucket), eid)
  redis.call('ZREM', k_wqd(bucket), wid)
end

-- wq_pel returns the consumer and the delivery count of entry eid in the PEL
-- of stream key, or nil when it is not pending.
local function wq_pel(key, eid)
  if not eid or eid == '' then return nil end
  local r = redis.pcall('XPENDING', key, WQ_GROUP, eid, eid, '1')
  if type(r) ~= 'table' or r.err or not r[1] then return nil end
  return r[1][2], tonumber(r[1][4])
end

-- wq_holds is the stream half of the fence of the work scripts: the entry
-- of locked work item f (fields bucket, eid, node) is pending for the
-- consumer that locked it. Returns ok, the delivery count.
local function wq_holds(f)
  local cons, dc = wq_pel(k_wq(f.bucket), f.eid)
  return cons ~= nil and cons == wq_consumer(f.node), dc
end

-- wq_delay puts work item wid in bucket's delayed set until due (ms) and
-- keeps wqdue, the hash bucket -> earliest due time of its delayed set,
-- that fetches read instead of every served bucket's delayed set. wqdue
-- may name a time earlier than what is left (items removed by a cancel or
-- a delete): a fetch then looks, finds nothing due and corrects it.
local function wq_delay(bucket, wid, due)
  redis.call('ZADD', k_wqd(bucket), I(due), wid)
  local cur = tonumber(redis.call('HGET', K_WQ_DUE, bucket) or '')
  if not cur or due < cur then redis.call('HSET', K_WQ_DUE, bucket, I(due)) end
end

-- wq_promote moves the due items of bucket's delayed set (at most limit)
-- into its stream and records the earliest due time left in wqdue.
-- Returns that time (nil when none; now when more may be due).
local function wq_promote(bucket, limit, now)
  local dk = k_wqd(bucket)
  local r = redis.call('ZRANGE', dk, '0', I(limit - 1), 'WITHSCORES')
  local left = nil
  for j = 1, #r, 2 do
    local due = tonumber(r[j + 1])
    if due > now then
      left = due
      break
    end
    local wid = r[j]
    redis.call('ZREM', dk, wid)
    if redis.call('HGET', k_wi(wid), 'bucket') == bucket then wq_append(bucket, wid) end
  end
  if not left and #r == 2 * limit then left = now end
  if left then
    redis.call('HSET', K_WQ_DUE, bucket, I(left))
  else
    redis.call('HDEL', K_WQ_DUE, bucket)
  end
  return left
end

-- wq_promote_due runs wq_promote on those of buckets whose delayed set has
-- something due (one HMGET of wqdue for all of them). Returns the earliest
-- due time left among them, or nil.
local function wq_promote_due(buckets, limit, now)
  if #buckets == 0 then return nil end
  local dues = redis.call('HMGET', K_WQ_DUE, unpack(buckets))
  local best = nil
  for i, b in ipairs(buckets) do
    local due = tonumber(dues[i] or '')
    if due and due <= now then due = wq_promote(b, limit, now) end
    if due and (not best or due < best) then best = due end
  end
  return best
end

-- Fetch bounds of lock_work: the entries a reclaim lists beyond the free
-- slots, the entries a fetch reads past those it locks (session items it
-- cannot claim), and how long a session item that bounced twice within
-- that time waits before it goes back into its stream. WQ_RECOVER_SCAN
-- bounds the caller's own pending entries a recovery looks at per stream
-- (its live locks among them).
local WQ_RECLAIM_SLACK, WQ_WAIT_WINDOW, WQ_WAIT_DEFER_MS = 16, 64, 100
local WQ_RECOVER_SCAN = 1000

-- lock_work locks up to max ready work items of the streams keys[i] of
-- buckets[i] (i = 1..#buckets) for the caller; it is the core of
-- fetch_work.lua, shared with the scripts that hand out work they create.
--   buckets, keys: bucket names and their stream keys (wq:<bucket>), in
--     the same order; lock: lock timeout (ms); node: the caller's node id
--     ("" for none; the consumer is then "-"); tokpfx: token prefix (the
--     n-th item locked gets tokpfx .. ':' .. n); now: now_ms().
--   opt (may be nil): me, lease, maxsess: the session owner id ("" or nil:
--     takes no session work), lease ms and session capacity as in
--     fetch_work.lua; pre: entries the caller read itself (a blocking
--     XREADGROUP), each {bucket index, entry id, work id}, locked first;
--     recover: also lock the entries pending for the caller's consumer that
--     no lock holds (a read whose reply was lost, or the reads of an earlier
--     process under the same node id), as pre-read entries.
-- Steps: (1) the pre-read entries still pending for the caller, then, with
-- recover, its other unlocked pending entries (XPENDING ... <consumer>, at
-- most WQ_RECOVER_SCAN per stream); (2) take
-- back expired locks: XPENDING IDLE <lock> lists entries idle at least that
-- long (renewals reset the idle time), each is checked against wi:<id>
-- (an entry whose item is gone is dropped; a live lock of a longer timeout
-- is left) and claimed with XCLAIM RETRYCOUNT (delivery count + 1);
-- (3) XREADGROUP COUNT <free> ... > per stream, starting at a rotating
-- bucket. Every item taken is locked as fetch_work.lua documents (tok, ldl,
-- att = attb + delivery count, node, nlocks). Session items follow the
-- rules of fetch_work.lua; an item that cannot be taken is never lost: it
-- is moved to its owner's node stream, or put back at the back of its
-- stream (a second bounce within WQ_WAIT_DEFER_MS parks it in the delayed
-- set until then), with attb + the deliveries before this one.
-- Returns items, locked ids (token order), earliest delayed time it set
-- (or nil). Item = {work id, token, bucket, body, instance id, attempts}.
local function lock_work(buckets, keys, max, lock, node, tokpfx, now, opt)
  opt = opt or {}
  local me, lease, maxsess = opt.me or '', opt.lease or 0, opt.maxsess or 0
  local cons = wq_consumer(node)
  local items, locked, seen = {}, {}, {}
  local held, wake = nil, nil
  local deadline = I(now + lock)
  local dtime = wq_time(now + lock, now)
  -- fresh[i] lists the entries of stream i locked with delivery count 1
  -- whose delivery time is still the read's: set in one XCLAIM at the end.
  local fresh = {}

  -- readd puts wid (entry eid of stream i, delivered dc times) back at the
  -- back of stream i, or parks it until due when given; this delivery is
  -- not counted.
  local function readd(i, eid, wid, dc, attb, due)
    local bucket = buckets[i]
    wq_remove(keys[i], eid)
    local nattb = I(attb + dc - 1)
    if due then
      wq_delay(bucket, wid, due)
      redis.call('HSET', k_wi(wid), 'eid', '', 'attb', nattb)
      if not wake or due < wake then wake = due end
    else
      wq_append(bucket, wid, {'attb', nattb})
    end
  end

  -- take locks wid (entry eid of stream i, delivered dc times) if it may.
  local function take(i, eid, wid, dc, reclaimed)
    local bucket, key = buckets[i], keys[i]
    local f = redis.call('HMGET', k_wi(wid), 'bucket', 'eid', 'tok', 'ldl', 'attb', 'sess', 'node', 'bounce')
    if not f[1] or f[1] ~= bucket or f[2] ~= eid then
      wq_remove(key, eid) -- the item is gone or carried by another entry
      return
    end
    if (f[3] or '') ~= '' and num(f[4]) > now then return end -- live lock
    local attb, sess = num(f[5]), f[6] or ''
    if sess ~= '' then
      local owner = session_owner(sess, now)
      if owner and owner ~= me then
        -- route it to the owner's node stream
        local nb2 = node_bucket(owner)
        wq_remove(key, eid)
        wq_register(nb2)
        wq_append(nb2, wid, {'attb', I(attb + dc - 1)})
        return
      elseif not owner then
        if me ~= '' and held == nil then held = held_sessions(me, now) end
        if me == '' or held >= maxsess then
          -- cannot claim it: give it back to the others
          local due = nil
          if num(f[8]) > now - WQ_WAIT_DEFER_MS then due = now + WQ_WAIT_DEFER_MS end
          redis.call('HSET', k_wi(wid), 'bounce', I(now))
          readd(i, eid, wid, dc, attb, due)
          return
        end
        redis.call('HSET', k_sess(sess), 'owner', me, 'ldl', I(now + lease), 'last', I(now))
        redis.call('SADD', k_osess(me), sess)
        held = held + 1
      else
        redis.call('HSET', k_sess(sess), 'ldl', I(now + lease), 'last', I(now))
      end
    end
    if dc == 1 and not reclaimed then
      fresh[i] = fresh[i] or {}
      table.insert(fresh[i], eid)
    elseif not reclaimed then
      redis.call('XCLAIM', key, WQ_GROUP, cons, '0', eid, 'TIME', dtime, 'RETRYCOUNT', I(dc), 'JUSTID')
    end
    local n = #locked + 1
    local t = tokpfx .. ':' .. I(n)
    local att = attb + dc
    redis.call('HSET', k_wi(wid), 'tok', t, 'ldl', deadline, 'att', I(att), 'node', node)
    local v = redis.call('HMGET', k_wi(wid), 'body', 'inst')
    lock_owner_move(f[7], node, 'w:' .. wid)
    locked[n] = wid
    items[n] = {wid, t, bucket, v[1], v[2], att}
  end

  local index = {}
  for i, b in ipairs(buckets) do index[b] = i end

  -- (1) entries the caller read itself
  for _, p in ipairs(opt.pre or {}) do
    local i = index[p[1]]
    if i and not seen[p[3]] then
      seen[p[3]] = true
      local c, dc = wq_pel(keys[i], p[2])
      if c == cons then
        if #locked < max then
          take(i, p[2], p[3], dc)
        else
          -- no slot left: back to the others (unless the item moved on)
          local f = redis.call('HMGET', k_wi(p[3]), 'bucket', 'eid', 'attb')
          if f[1] == buckets[i] and f[2] == p[2] then
            readd(i, p[2], p[3], dc, num(f[3]))
          else
            wq_remove(keys[i], p[2])
          end
        end
      end
    end
  end

  -- pending_item returns the work id, token and lock deadline of the item
  -- that entry eid of stream i carries, or nil (the entry dropped) when the
  -- item is gone or carried by another entry.
  local function pending_item(i, eid)
    local e = redis.call('XRANGE', keys[i], eid, eid)
    local wid = e[1] and e[1][2][2]
    local f = wid and redis.call('HMGET', k_wi(wid), 'bucket', 'eid', 'tok', 'ldl')
    if not f or f[1] ~= buckets[i] or f[2] ~= eid then
      wq_remove(keys[i], eid)
      return nil
    end
    return wid, f[3] or '', num(f[4])
  end

  -- (1b) entries pending for the caller that it never locked; one with a
  -- lock (live, or expired: step 2 takes that back) is left alone
  if opt.recover then
    for i = 1, #buckets do
      if #locked >= max then break end
      local r = redis.pcall('XPENDING', keys[i], WQ_GROUP, '-', '+', I(WQ_RECOVER_SCAN), cons)
      if type(r) == 'table' and not r.err then
        for _, p in ipairs(r) do
          if #locked >= max then break end
          local eid, dc = p[1], tonumber(p[4])
          local wid, tok = pending_item(i, eid)
          if wid and tok == '' and not seen[wid] then
            seen[wid] = true
            take(i, eid, wid, dc)
          end
        end
      end
    end
  end

  -- (2) expired locks
  for i = 1, #buckets do
    if #locked >= max then break end
    local key = keys[i]
    local r = redis.pcall('XPENDING', key, WQ_GROUP, 'IDLE', I(WQ_IDLE_MS), '-', '+', I(max - #locked + WQ_RECLAIM_SLACK))
    if type(r) == 'table' and not r.err then
      for _, p in ipairs(r) do
        if #locked >= max then break end
        local eid, dc = p[1], tonumber(p[4])
        local wid, tok, ldl = pending_item(i, eid)
        if wid and (tok == '' or ldl <= now) then
          seen[wid] = true
          redis.call('XCLAIM', key, WQ_GROUP, cons, '0', eid, 'TIME', dtime, 'RETRYCOUNT', I(dc + 1), 'JUSTID')
          take(i, eid, wid, dc + 1, true)
        end
      end
    end
  end

  -- (3) new entries, a stream at a time from a rotating start
  local nb = #buckets
  for j = 0, nb - 1 do
    if #locked >= max then break end
    local i = (now + j) % nb + 1
    local key = keys[i]
    local looked, stop = 0, false
    while not stop and #locked < max and looked < max + WQ_WAIT_WINDOW do
      local want = I(max - #locked)
      local r = redis.pcall('XREADGROUP', 'GROUP', WQ_GROUP, cons, 'COUNT', want, 'STREAMS', key, '>')
      if type(r) == 'table' and r.err then
        wq_group(key) -- a stream without its group (or no stream yet)
        r = redis.pcall('XREADGROUP', 'GROUP', WQ_GROUP, cons, 'COUNT', want, 'STREAMS', key, '>')
        if type(r) == 'table' and r.err then break end
      end
      if not r or not r[1] then break end
      local entries = r[1][2]
      for _, e in ipairs(entries) do
        local eid, wid = e[1], e[2][2]
        looked = looked + 1
        if seen[wid] then
          -- put back earlier in this call: leave it for the others
          wq_remove(key, eid)
          wq_append(buckets[i], wid)
          stop = true
        else
          seen[wid] = true
          take(i, eid, wid, 1)
        end
      end
      if #entries < tonumber(want) then break end
    end
  end

  -- delivery times of the entries locked from a read (see WQ_IDLE_MS)
  for i, ids in pairs(fresh) do
    local args = {keys[i], WQ_GROUP, cons, '0'}
    for _, eid in ipairs(ids) do args[#args + 1] = eid end
    args[#args + 1] = 'TIME'
    args[#args + 1] = dtime
    args[#args + 1] = 'RETRYCOUNT'
    args[#args + 1] = '1'
    args[#args + 1] = 'JUSTID'
    redis.call('XCLAIM', unpack(args))
  end
  return items, locked, wake
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

-- lock_ready_work locks for the caller, under request req (record rkey),
-- up to max ready work items of buckets (the buckets where the ack made
-- work the caller serves) with lock ms lock (a string) and node id node,
-- through lock_work: exactly what a fetch of those buckets would lock (the
-- oldest entries first, which are the ack's own when the buckets were
-- empty; session items are left to fetches, which apply the session
-- rules). Returns the items in fetch_work.lua's item shape. When rkey
-- exists the request already ran (a resent ack): nothing is locked and the
-- items it locked that it still holds are returned. This is the only place
-- where an ack locks work items. Cost: that of lock_work for max items.
local function lock_ready_work(req, rkey, buckets, max, lock, node, now)
  local rec = redis.call('GET', rkey)
  if rec then
    local out = replay_fetch(rec, req, k_wi, work_item_reply, 0)
    table.remove(out, 1)
    return out
  end
  if #buckets == 0 or max <= 0 then return {} end
  local keys = {}
  for i, b in ipairs(buckets) do keys[i] = k_wq(b) end
  local items, locked = lock_work(buckets, keys, max, tonumber(lock), node, req, now, nil)
  if #locked > 0 then redis.call('SET', rkey, encode_ids(locked), 'PX', lock) end
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
