-- fetch_work.lua: lock up to Max fetchable work items of the served buckets.
-- KEYS[1] prefix "{ns}:"   KEYS[2] fr:w:<request id>
-- KEYS[2+i] work:<bucket i> for i = 1..n (distinct buckets)
-- ARGV[1] request id   ARGV[2] max items (>= 1)   ARGV[3] lock timeout ms
-- ARGV[4] session owner id ("" = this worker takes no session work)
-- ARGV[5] session lease ms   ARGV[6] max sessions the owner may hold
-- ARGV[7] node id of the caller (may be ""): recorded with each lock, as in
--   fetch_orch.lua
-- ARGV[7+i] bucket name i (same order as KEYS[2+i])
-- Session items: an item of a session owned (live lease) by another owner is
-- moved to that owner's node bucket "s:<owner>" instead of being skipped; a
-- session without a live owner is claimed for ARGV[4] if it holds fewer than
-- ARGV[6] sessions (else the item is left for others, and the fetch looks
-- past it: see WAIT_WINDOW below); fetching a session's item extends its
-- lease and records activity.
-- Returns {next_wake_ms, item...}; item = {work id, token, bucket, body,
--   instance id, attempts}. next_wake_ms as in fetch_orch.lua (timers excluded;
--   1 when Max items were locked).
-- Idempotent per request id like fetch_orch.lua.
-- Cost: O(buckets * (log N + Max + WAIT_WINDOW)), independent of buckets not
-- served and of how many session items wait for a claimer.
local req = ARGV[1]
local max = tonumber(ARGV[2])
local lock = tonumber(ARGV[3])
local me, lease, maxsess = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
local node = ARGV[7]
local nb = #KEYS - 2
local now = now_ms()

local function build_item(wid, tok)
  local f = redis.call('HMGET', k_wi(wid), 'bucket', 'body', 'inst', 'att')
  return {wid, tok, f[1], f[2], f[3], num(f[4])}
end

local function next_wake()
  return wake_after(earliest_of(2, nb, nil), now)
end

-- Replay of a request that already ran.
local rec = redis.call('GET', KEYS[2])
if rec then return replay_fetch(rec, req, k_wi, build_item, next_wake()) end

-- held counts the sessions the caller holds, read once (held_sessions walks
-- them) and moved on by this fetch's own claims.
local held = nil

-- waiting lists the session items this fetch leaves alone because the caller
-- cannot claim their session (no owner id, or at capacity), in the order met.
local locked, items, seen, waiting = {}, {}, {}, {}

-- scan walks the limit oldest fetchable items of each served bucket, merged,
-- skipping those already seen, until Max are locked.
local function scan(limit)
  for _, c in ipairs(candidates(2, nb, limit, now)) do
    if #locked >= max then return end
    local wid, zkey, bucket = c[1], KEYS[2 + c[3]], ARGV[7 + c[3]]
    if not seen[wid] then
      seen[wid] = true
      local f = redis.call('HMGET', k_wi(wid), 'bucket', 'tok', 'ldl', 'att', 'sess', 'node')
      local tok, ldl, sess = f[2] or '', num(f[3]), f[5] or ''
      local take = true
      if not f[1] or f[1] ~= bucket then
        redis.call('ZREM', zkey, wid)                     -- orphan or stale entry
        take = false
      elseif tok ~= '' and ldl > now then
        redis.call('ZADD', zkey, I(ldl), wid)             -- live lock: fix its score
        take = false
      elseif sess ~= '' then
        local owner = session_owner(sess, now)
        if owner and owner ~= me then
          -- route to the owner instead of skipping it
          local nb2 = node_bucket(owner)
          redis.call('ZREM', zkey, wid)
          redis.call('ZADD', k_work(nb2), c[4], wid)
          redis.call('HSET', k_wi(wid), 'bucket', nb2)
          redis.call('SADD', K_WORK_BUCKETS, nb2)
          redis.call('PUBLISH', CH_WAKE_WORK, nb2)
          take = false
        elseif not owner then
          if me ~= '' and held == nil then held = held_sessions(me, now) end
          if me == '' or held >= maxsess then
            table.insert(waiting, {zkey, wid})            -- no capacity: leave it for others
            take = false
          else
            redis.call('HSET', k_sess(sess), 'owner', me, 'ldl', I(now + lease), 'last', I(now))
            redis.call('SADD', k_osess(me), sess)
            held = held + 1
          end
        else
          redis.call('HSET', k_sess(sess), 'ldl', I(now + lease), 'last', I(now))
        end
      end
      if take then
        local n = #locked + 1
        local t = req .. ':' .. I(n)
        local deadline = I(now + lock)
        redis.call('HSET', k_wi(wid), 'tok', t, 'ldl', deadline, 'att', I(num(f[4]) + 1), 'node', node)
        lock_owner_move(f[6], node, 'w:' .. wid)
        redis.call('ZADD', zkey, deadline, wid)
        locked[n] = wid
        table.insert(items, build_item(wid, t))
      end
    end
  end
end

-- Candidates: the Max oldest fetchable items of each served bucket, merged.
scan(max)
-- Session items the caller cannot claim stay at the head of their bucket.
-- Look past them, within a window of WAIT_WINDOW more items per bucket, so
-- that a worker at capacity still reaches the work queued behind them; when
-- that many wait, hand them back for WAIT_DEFER_MS (in their order), so
-- that the next fetch sees what lies behind them. Either way the cost stays
-- O(buckets * (log N + Max + WAIT_WINDOW)).
local WAIT_WINDOW, WAIT_DEFER_MS = 64, 1000
if #locked < max and #waiting > 0 then
  scan(max + WAIT_WINDOW)
  if #locked < max and #waiting >= WAIT_WINDOW then
    for i, w in ipairs(waiting) do
      redis.call('ZADD', w[1], I(now + WAIT_DEFER_MS + i), w[2])
    end
  end
end

if #locked > 0 then
  redis.call('SET', KEYS[2], encode_ids(locked), 'PX', ARGV[3])
end

-- A fetch that locked Max items answers 1 (fetch again now) without
-- looking at the buckets: its caller fetches again at once anyway.
local out = {1}
if #locked < max then out[1] = next_wake() end
for _, it in ipairs(items) do table.insert(out, it) end
return out
