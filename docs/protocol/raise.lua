-- raise.lua: deliver a message (ExternalEvent, QueueEvent or Cancel) to a
-- running instance (duroworker wire protocol 0.2).
-- KEYS[1] "{<prefix>}:"   KEYS[2] "{<prefix>}:inst:<id>"   KEYS[3] "{<prefix>}:inbox:<id>"
-- KEYS[4] "{<prefix>}:req:<request id>" (only with ARGV[3])
-- ARGV[1] instance id     ARGV[2] the message (JSON)
-- ARGV[3] optional request id (1 to 128 of A-Z a-z 0-9 _ - . :): a second run
--         with the same request id within 15 minutes returns 1 and delivers nothing
-- Returns 1, or the error INSTANCE_NOT_FOUND, INSTANCE_ENDED, INVALID_INPUT or
-- REQUEST_REUSED. Nothing is written unless it returns 1. Other message kinds
-- (TimerFired, ActivityCompleted, Start, ...) are duroworker's own and refused.

-- valid_utf8: as in start.lua.
local function valid_utf8(s)
  if not string.find(s, '[\128-\255]') then return true end
  for _, p in ipairs({
    '\240[\144-\191][\128-\191][\128-\191]', '[\241-\243][\128-\191][\128-\191][\128-\191]',
    '\244[\128-\143][\128-\191][\128-\191]',
    '\224[\160-\191][\128-\191]', '[\225-\236][\128-\191][\128-\191]',
    '\237[\128-\159][\128-\191]', '[\238-\239][\128-\191][\128-\191]',
    '[\194-\223][\128-\191]'}) do
    s = string.gsub(s, p, 'x')
  end
  return not string.find(s, '[\128-\255]')
end

local function invalid(why) return redis.error_reply('INVALID_INPUT ' .. why) end

local id, msg, rid = ARGV[1], ARGV[2], ARGV[3] or ''
-- validate (nothing is written before this block has passed)
if not valid_utf8(msg) then return invalid('message is not valid UTF-8') end
if #msg > 4259840 then return invalid('message is larger than 4 MiB + 64 KiB') end
local ok, m = pcall(cjson.decode, msg)
if not ok or type(m) ~= 'table' then return invalid('message is not a JSON object') end
-- exact field names only: the Go decoder matches field names without regard
-- to case, so {"kind":"Cancel","KIND":"TimerFired"} must not get through
local fields = {
  ExternalEvent = {kind = 'string', name = 'string', result = 'string', trace = 'string'},
  QueueEvent = {kind = 'string', name = 'string', result = 'string', trace = 'string'},
  Cancel = {kind = 'string', reason = 'string', trace = 'string'},
}
local allowed = fields[m.kind]
if not allowed then return invalid('message kind must be ExternalEvent, QueueEvent or Cancel') end
for k, v in pairs(m) do
  if allowed[k] ~= type(v) then return invalid('message field ' .. tostring(k) .. ' is not allowed in a ' .. m.kind .. ', or has the wrong type') end
end
if m.kind ~= 'Cancel' and (m.name or '') == '' then return invalid('event name is empty') end
if rid ~= '' then
  if #rid > 128 or string.find(rid, '[^%w_%-%.:]') then return invalid('request id must be 1 to 128 of A-Z a-z 0-9 _ - . :') end
  local prev = redis.call('GET', KEYS[4])
  if prev == 'enqueue:' .. id then return 1 end -- a resend of a delivery that succeeded
  if prev then return redis.error_reply('REQUEST_REUSED request id ' .. rid .. ' already named another request') end
end
local f = redis.call('HMGET', KEYS[2], 'status', 'rq')
if not f[1] then
  return redis.error_reply('INSTANCE_NOT_FOUND ' .. id)
end
if f[1] == 'Completed' or f[1] == 'Failed' then
  return redis.error_reply('INSTANCE_ENDED ' .. id)
end

-- publish before writing: if an ACL denies the channel, nothing is written
redis.call('PUBLISH', KEYS[1] .. 'wake:orch', f[2])

-- write
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('RPUSH', KEYS[3], msg)
-- the ready key depends on the rq field; it shares the hash tag of KEYS[1].
-- A Running instance is scored 60 s early (the turn lead: it goes before the
-- starts of the last 60 s), a Pending one now.
local score = now
if f[1] == 'Running' then score = now - 60000 end
redis.call('ZADD', KEYS[1] .. 'ready:' .. f[2], 'NX', score, id)
if rid ~= '' then redis.call('SET', KEYS[4], 'enqueue:' .. id, 'PX', 900000) end
return 1
