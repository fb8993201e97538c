-- fetch_orch.lua: promote due timers, then lock up to Max fetchable instances
-- of the served ready buckets and return their batches.
-- KEYS[1] prefix "{ns}:"   KEYS[2] timers   KEYS[3] fr:o:<request id>
-- KEYS[3+i] ready:<bucket i> for i = 1..n (distinct buckets)
-- ARGV[1] request id   ARGV[2] max instances (>= 1)   ARGV[3] max messages per batch (>= 1)
-- ARGV[4] lock timeout ms   ARGV[5] cache owner (may be "")   ARGV[6] max timers to promote (>= 0)
-- ARGV[7] node id of the caller (may be ""): recorded with each lock (inst
--   field node, set nlocks:<node>) so that the lock is reclaimed when the
--   node's liveness lapses (see reclaim_dead_nodes in common.lua)
-- ARGV[7+i] bucket name i (same order as KEYS[3+i])
-- Returns {next_wake_ms, item...}; item = {instance id, token, attempts,
--   inst fields (the values of ITEM_FIELDS of common.lua, in order; "" when missing), messages, history length, omitted (0|1), history,
--   flat kv:<id> (HGETALL; empty when the history is omitted), read error}.
--   read error is "" or why the history or kv:<id> could not be read (a key
--   of the wrong type): the item is still locked and returned, with an empty
--   history, so that the worker counts the attempt and finally poisons it.
--   next_wake_ms: delay until the earliest entry left in the served buckets or
--   the timers (0 = none, at least 1 when one is already due); 1, not
--   computed, when the fetch locked Max items (the caller fetches again).
-- Idempotent per request id: while KEYS[3] exists (PX = lock timeout) the
-- script only rebuilds the items it locked that are still locked by it.
-- Cost: O(buckets * log N + Max * buckets + promoted timers), independent of
-- the size of buckets not served.
local req = ARGV[1]
local max = tonumber(ARGV[2])
local maxmsg = tonumber(ARGV[3])
local lock = tonumber(ARGV[4])
local owner = ARGV[5]
local npromote = tonumber(ARGV[6])
local me = ARGV[7]
local nb = #KEYS - 3
local now = now_ms()

-- build_item returns the reply item of instance id locked with token tok
-- (see orch_item in common.lua).
local function build_item(id, tok, v) return orch_item(id, tok, owner, v) end

local function next_wake()
  return wake_after(earliest_of(3, nb, earliest(KEYS[2])), now)
end

-- Replay of a request that already ran: return what it locked, lock nothing new.
local rec = redis.call('GET', KEYS[3])
if rec then return replay_fetch(rec, req, k_inst, build_item, next_wake()) end

local woken = {}

-- (1) Promote due timers, at most npromote. Member: "<seq>:<len>:<id><body>".
-- A timer numbered before its instance's creation (cseq) was set by an
-- earlier instance with the same id, since deleted: it is dropped.
if npromote > 0 then
  local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', I(now), 'LIMIT', '0', ARGV[6])
  for _, m in ipairs(due) do
    local c1 = string.find(m, ':', 1, true)
    local c2 = c1 and string.find(m, ':', c1 + 1, true)
    local n = c2 and tonumber(string.sub(m, c1 + 1, c2 - 1))
    if n then
      local tid = string.sub(m, c2 + 1, c2 + n)
      local seq = tonumber(string.sub(m, 1, c1 - 1)) or 0
      if seq >= num(redis.call('HGET', k_inst(tid), 'cseq')) then
        deliver(tid, string.sub(m, c2 + n + 1), now, woken)
      end
    end
    redis.call('ZREM', KEYS[2], m)
  end
end

-- (2) Candidates: the Max oldest fetchable entries of each served bucket, merged.
local cands = candidates(3, nb, max, now)

-- (3) Lock. Entries that break the invariant are repaired and skipped.
local locked, items, seen = {}, {}, {}
for _, c in ipairs(cands) do
  if #locked >= max then break end
  local id, zkey, bucket = c[1], KEYS[3 + c[3]], ARGV[7 + c[3]]
  if not seen[id] then
    seen[id] = true
    local ik = k_inst(id)
    local v = redis.call('HMGET', ik, unpack(LOCK_FIELDS))
    local f = {v[F_STATUS], v[F_RQ], v[F_TOK], v[F_LDL], v[F_ATT], v[F_NODE]}
    local tok, ldl = f[3] or '', num(f[4])
    if not f[1] then
      redis.call('ZREM', zkey, id)                      -- orphan entry
    elseif is_ended(f[1]) then
      redis.call('ZREM', zkey, id)                      -- ended: nothing to do
      redis.call('DEL', k_inbox(id))
    elseif f[2] ~= bucket then
      redis.call('ZREM', zkey, id)                      -- stale bucket: move to rq
      if tok ~= '' then
        redis.call('ZADD', k_ready(f[2]), 'NX', I(ldl), id)
      elseif redis.call('LLEN', k_inbox(id)) > 0 then
        if redis.call('ZADD', k_ready(f[2]), 'NX', ready_score(f[1], now), id) == 1 then
          woken[f[2]] = true
        end
      end
    elseif tok ~= '' and ldl > now then
      redis.call('ZADD', zkey, I(ldl), id)              -- live lock: fix its score
    else
      local llen = redis.call('LLEN', k_inbox(id))
      if llen == 0 then
        redis.call('ZREM', zkey, id)                    -- nothing to process
        if tok ~= '' then
          redis.call('HSET', ik, 'tok', '', 'ldl', '', 'batch', '0', 'node', '')
          lock_owner_move(f[6], '', 'o:' .. id)
        end
      else
        local n = #locked + 1
        local t = req .. ':' .. I(n)
        local deadline = I(now + lock)
        v[F_TOK], v[F_ATT], v[F_BATCH] = t, I(num(f[5]) + 1), I(math.min(llen, maxmsg))
        redis.call('HSET', ik, 'tok', t, 'ldl', deadline, 'att', v[F_ATT],
          'batch', v[F_BATCH], 'node', me, 'eager', '0')
        lock_owner_move(f[6], me, 'o:' .. id)
        redis.call('ZADD', zkey, deadline, id)
        locked[n] = id
        table.insert(items, build_item(id, t, v))
      end
    end
  end
end

if #locked > 0 then
  redis.call('SET', KEYS[3], encode_ids(locked), 'PX', ARGV[4])
end
-- (4) Announce the buckets that got fetchable entries (promoted timers,
-- moved entries), except those this fetch serves when it locked fewer than
-- Max: it took what it found, and whatever it left there (an entry moved in
-- after the candidates were read) is due, so its next_wake is 1 and its
-- caller fetches again. Other fetchers serving them are not woken in vain.
if #locked < max then
  for i = 1, nb do woken[ARGV[7 + i]] = nil end
end
publish_all(CH_WAKE_ORCH, woken)

-- A fetch that locked Max items answers 1 (fetch again now) without
-- looking at the buckets: its caller fetches again at once anyway.
local out = {1}
if #locked < max then out[1] = next_wake() end
for _, it in ipairs(items) do table.insert(out, it) end
return out
