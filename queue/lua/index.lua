-- index.lua: helpers of the scripts that walk the listing indices (list.lua,
-- delete_bulk.lua), prepended after common.lua (it is not run on its own).
-- instances and bystatus:<status> are ordered by score (creation time, ms),
-- then by member, bytewise: the order these helpers reproduce.

-- before reports whether member a sorts before member b (bytewise, as Redis
-- orders equal scores; Lua's < follows the server's locale).
local function before(a, b)
  if a == b then return false end
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

-- zseek returns the rank in sorted set key of its first entry that does not
-- sort before (score, member), ZCARD when there is none, and the number of
-- entries it read. Cost: O(log N) per step of a binary search over the
-- entries whose score equals score.
local function zseek(key, score, member)
  local lo = redis.call('ZCOUNT', key, '-inf', '(' .. score)
  local hi = lo + redis.call('ZCOUNT', key, score, score)
  local read = 0
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    local e = redis.call('ZRANGE', key, mid, mid)
    read = read + 1
    if before(e[1], member) then lo = mid + 1 else hi = mid end
  end
  return lo, read
end
