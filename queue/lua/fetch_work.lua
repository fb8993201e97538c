-- fetch_work.lua: lock up to Max ready work items of the served buckets.
-- KEYS[1] prefix "{ns}:"   KEYS[2] fr:w:<request id>
-- KEYS[2+i] wq:<bucket i> for i = 1..n (distinct buckets)
-- ARGV[1] request id   ARGV[2] max items (>= 1)   ARGV[3] lock timeout ms
-- ARGV[4] session owner id ("" = this worker takes no session work)
-- ARGV[5] session lease ms   ARGV[6] max sessions the owner may hold
-- ARGV[7] node id of the caller (may be ""): recorded with each lock, as in
--   fetch_orch.lua, and the consumer name in the streams' group ("-" if "")
-- ARGV[8] "1": also lock the entries pending for the caller's consumer that
--   it read but never locked (lock_work's recover), else "0"
-- ARGV[8+i] bucket name i (same order as KEYS[2+i]), then triples (bucket
--   name, entry id, work id) of entries the caller read itself with a
--   blocking XREADGROUP, locked first when still pending for it
-- Steps: move the due items of each served bucket's delayed set wqd:<bucket>
-- (at most PROMOTE per bucket; wqdue says which have any) into its stream,
-- then lock_work (common.lua):
-- the pre-read entries (and, with ARGV[8], the caller's other unlocked
-- ones), expired locks taken back, new entries read.
-- Session items: an item of a session owned (live lease) by another owner is
-- moved to that owner's node stream "s:<owner>"; a session without a live
-- owner is claimed for ARGV[4] if it holds fewer than ARGV[6] sessions, else
-- the item is put back for others (see lock_work); fetching a session's item
-- extends its lease and records activity.
-- Returns {next_wake_ms, item...}; item = {work id, token, bucket, body,
--   instance id, attempts}. next_wake_ms: 1 when Max items were locked,
--   else the delay until the earliest delayed item of the served buckets
--   (at least 1; 0 when there is none). Expired locks are not included.
-- Idempotent per request id like fetch_orch.lua.
-- Cost: O(buckets * (log N + Max + WQ_WAIT_WINDOW + PROMOTE)), independent
-- of buckets not served.
local req = ARGV[1]
local max = tonumber(ARGV[2])
local lock = tonumber(ARGV[3])
local nb = #KEYS - 2
local now = now_ms()
local PROMOTE = 64

local function build_item(wid, tok)
  local f = redis.call('HMGET', k_wi(wid), 'bucket', 'body', 'inst', 'att')
  return {wid, tok, f[1], f[2], f[3], num(f[4])}
end

-- Replay of a request that already ran.
local rec = redis.call('GET', KEYS[2])
if rec then return replay_fetch(rec, req, k_wi, build_item, 1) end

local buckets, keys = {}, {}
for i = 1, nb do buckets[i], keys[i] = ARGV[8 + i], KEYS[2 + i] end
local best = wq_promote_due(buckets, PROMOTE, now)
local pre = {}
for j = 9 + nb, #ARGV - 2, 3 do pre[#pre + 1] = {ARGV[j], ARGV[j + 1], ARGV[j + 2]} end

local items, locked, wake = lock_work(buckets, keys, max, lock, ARGV[7], req, now,
  {me = ARGV[4], lease = tonumber(ARGV[5]), maxsess = tonumber(ARGV[6]), pre = pre, recover = ARGV[8] == '1'})
if wake and (not best or wake < best) then best = wake end

if #locked > 0 then
  redis.call('SET', KEYS[2], encode_ids(locked), 'PX', ARGV[3])
end

local out = {1}
if #locked < max then out[1] = wake_after(best, now) end
for _, it in ipairs(items) do table.insert(out, it) end
return out
