-- start.lua: create an orchestration instance (duroworker wire protocol 0.2).
-- KEYS[1] "{<prefix>}:"            KEYS[2] "{<prefix>}:inst:<id>"
-- KEYS[3] "{<prefix>}:inbox:<id>"  KEYS[4] "{<prefix>}:ready:<bucket>"
-- KEYS[5] "{<prefix>}:buckets:o"   KEYS[6] "{<prefix>}:instances"   KEYS[7] "{<prefix>}:stats"
-- KEYS[8] "{<prefix>}:seq"           KEYS[9] "{<prefix>}:bystatus:Pending"
-- KEYS[10] "{<prefix>}:req:<request id>" (only with ARGV[6])
-- ARGV[1] instance id   ARGV[2] orchestration name
-- ARGV[3] version: "" (registry policy) or canonical MAJOR.MINOR.PATCH
-- ARGV[4] bucket: "o:<name>" when ARGV[3] is "", else "v:<name>@<version>"
-- ARGV[5] the Start message (JSON)
-- ARGV[6] optional request id (1 to 128 of A-Z a-z 0-9 _ - . :): a second run
--         with the same request id within 15 minutes returns 1 and writes nothing
-- Returns 1, or the error INSTANCE_EXISTS, INVALID_INPUT or REQUEST_REUSED.
-- Nothing is written unless it returns 1.

-- valid_utf8 reports whether s is valid UTF-8 (RFC 3629: no overlong forms,
-- no surrogates, nothing above U+10FFFF). Each valid multi-byte sequence is
-- replaced by an ASCII byte, longest first; any byte >= 0x80 left over is
-- invalid. Lead bytes tell the length, so the passes cannot join bytes.
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

local id, name, ver, bucket, msg, rid = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6] or ''
-- validate (nothing is written before this block has passed)
for _, a in ipairs({{'instance id', id}, {'name', name}, {'version', ver}, {'message', msg}}) do
  if not valid_utf8(a[2]) then return invalid(a[1] .. ' is not valid UTF-8') end
end
if #id == 0 or #id > 512 or string.find(id, '%c') or string.find(id, '\194[\128-\159]') then
  return invalid('instance id must be 1 to 512 bytes without control characters')
end
if string.find(id, '::sub::', 1, true) then return invalid('instance id contains ::sub::') end
if #name == 0 or #name > 256 or string.find(name, '[{}\r\n]') then
  return invalid('name must be 1 to 256 bytes without { } CR LF')
end
if string.sub(name, 1, 12) == '__duroworker' then return invalid('names starting with __duroworker are reserved') end
if ver ~= '' then
  local a, b, c = string.match(ver, '^(%d+)%.(%d+)%.(%d+)$')
  for _, part in ipairs({a or 'x', b or 'x', c or 'x'}) do
    if not string.match(part, '^%d+$') or (#part > 1 and string.sub(part, 1, 1) == '0') then
      return invalid('version is not canonical MAJOR.MINOR.PATCH')
    end
  end
end
if (ver == '' and bucket ~= 'o:' .. name) or (ver ~= '' and bucket ~= 'v:' .. name .. '@' .. ver) then
  return invalid('bucket does not match the name and version')
end
if #msg > 4259840 then return invalid('message is larger than 4 MiB + 64 KiB') end
local ok, m = pcall(cjson.decode, msg)
if not ok or type(m) ~= 'table' then return invalid('message is not a JSON object') end
local allowed = {kind = 'string', execution = 'number', name = 'string', version = 'string', input = 'string', trace = 'string'}
for k, v in pairs(m) do
  if allowed[k] ~= type(v) then return invalid('message field ' .. tostring(k) .. ' is not allowed in a Start, or has the wrong type') end
end
if m.kind ~= 'Start' then return invalid('message kind must be Start') end
if m.name ~= name or (m.version or '') ~= ver then return invalid('message name and version must match ARGV[2] and ARGV[3]') end
if rid ~= '' then
  if #rid > 128 or string.find(rid, '[^%w_%-%.:]') then return invalid('request id must be 1 to 128 of A-Z a-z 0-9 _ - . :') end
  local prev = redis.call('GET', KEYS[10])
  if prev == 'create:' .. id then return 1 end -- a resend of a start that succeeded
  if prev then return redis.error_reply('REQUEST_REUSED request id ' .. rid .. ' already named another request') end
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  return redis.error_reply('INSTANCE_EXISTS ' .. id)
end

-- publish before writing: if an ACL denies the channel, nothing is written
-- (subscribers get the message only after the script has ended)
redis.call('PUBLISH', KEYS[1] .. 'wake:orch', bucket)

-- write
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[2],
  'name', name, 'ver', ver, 'status', 'Pending', 'exec', '0', 'pin', '',
  'parent', '', 'out', '', 'ctime', now, 'utime', now, 'rq', bucket,
  'tok', '', 'ldl', '', 'att', 0, 'batch', 0, 'cache', '', 'acked', '',
  'cseq', redis.call('INCR', KEYS[8]))
redis.call('RPUSH', KEYS[3], msg)
redis.call('ZADD', KEYS[4], 'NX', now, id)
redis.call('SADD', KEYS[5], bucket)
redis.call('ZADD', KEYS[6], now, id)
redis.call('HINCRBY', KEYS[7], 'pending', 1)
redis.call('ZADD', KEYS[9], now, id)
if rid ~= '' then redis.call('SET', KEYS[10], 'create:' .. id, 'PX', 900000) end
return 1
