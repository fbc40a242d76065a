-- heartbeat.lua: register a worker, or renew its lease, and list peers whose lease has lapsed.
-- protocol.md section 8.4.
--
-- KEYS[1]  <ns>:workers                  set of worker ids (Resque)
-- KEYS[2]  <ns>:workers:heartbeat        hash id -> ISO-8601 Redis time (Resque 1.26+)
-- KEYS[3]  <ns>:jobwire:leases           zset id -> lease deadline, ms of Redis time
-- KEYS[4]  <ns>:worker:<id>:started      string (Resque)
-- KEYS[5]  <ns>:jobwire:worker:<id>      hash of worker facts for operators
-- KEYS[6]  <ns>:jobwire:meta             hash; field "spec_major"
-- ARGV[1]  worker id
-- ARGV[2]  lease in ms (default 30000)
-- ARGV[3]  mode: "register" | "beat" | "renew" (protocol 1.3, section 16)
-- ARGV[4]  started, "%Y-%m-%d %H:%M:%S +0000" (mode "register"; ignored otherwise)
-- ARGV[5]  the spec major version the worker speaks ("1")
-- ARGV[6..] mode "register": field, value, field, value ... for KEYS[5] (see key-layout.md);
--           mode "renew": more worker ids beaten in the same call with the same lease
--
-- Returns: { status, expired_id_1, ..., expired_id_k }   k <= 10, the caller's own id excluded
--   status: "ok"
--           "unknown"  mode "beat" but the worker holds no lease (it was recovered as dead):
--                      it MUST NOT settle or reserve again under this id; it registers afresh.
-- Mode "renew" returns { "ok", next_lapse_ms, u, unknown_id_1..u, expired_id_1..k }: the ms until
--   the earliest lease of another worker lapses (-1: none seen), the u given ids that hold no
--   lease (recovered as dead: each registers afresh) and the lapsed peers, k <= 10, given ids
--   excluded. It writes the same keys as "beat" for every id that holds a lease.
-- Errors:  "JOBWIRE_SPEC_MISMATCH ..." when <ns>:jobwire:meta names another spec major.
--
-- Leases use Redis's clock only, so liveness never depends on hosts' clocks agreeing.

local id, lease_ms, mode = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local now = redis.call('TIME')
local now_s = tonumber(now[1])
local now_ms = now_s * 1000 + math.floor(tonumber(now[2]) / 1000)

-- Resque writes heartbeats as Time#iso8601 of Redis time; Ruby's pruner parses this form.
local function iso8601(sec)
  local days = math.floor(sec / 86400)
  local rem = sec - days * 86400
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local day = doy - math.floor((153 * mp + 2) / 5) + 1
  local month = mp < 10 and mp + 3 or mp - 9
  local year = yoe + era * 400 + (month <= 2 and 1 or 0)
  return string.format('%04d-%02d-%02dT%02d:%02d:%02d+00:00', year, month, day,
    math.floor(rem / 3600), math.floor((rem % 3600) / 60), rem % 60)
end

-- Mode "renew" (section 16): beat every given id in one ZADD and one HSET, and list lapsed peers
-- and the next lapse from one ZRANGE over the lowest leases.
local function renew()
  local ids = { id }
  for i = 6, #ARGV do ids[#ids + 1] = ARGV[i] end
  local deadline, beat = now_ms + lease_ms, iso8601(now_s)
  local zargs, hargs, own = {}, {}, {}
  for _, w in ipairs(ids) do
    zargs[#zargs + 1] = deadline
    zargs[#zargs + 1] = w
    own[w] = true
  end
  local unknown, lost = {}, {}
  if redis.call('ZADD', KEYS[3], 'XX', 'CH', unpack(zargs)) < #ids then
    -- some id holds no lease (or was renewed in this very ms): tell them apart one by one
    for _, w in ipairs(ids) do
      if tonumber(redis.call('ZSCORE', KEYS[3], w)) ~= deadline then
        unknown[#unknown + 1] = w
        lost[w] = true
      end
    end
  end
  for _, w in ipairs(ids) do
    if not lost[w] then
      hargs[#hargs + 1] = w
      hargs[#hargs + 1] = beat
    end
  end
  if #hargs > 0 then redis.call('HSET', KEYS[2], unpack(hargs)) end
  local next_lapse, expired = -1, {}
  local lowest = redis.call('ZRANGE', KEYS[3], 0, 10 + #ids, 'WITHSCORES')
  for i = 1, #lowest, 2 do
    local w, score = lowest[i], tonumber(lowest[i + 1])
    if not own[w] then
      if score < now_ms then
        if #expired < 10 then expired[#expired + 1] = w end
      elseif next_lapse < 0 then
        next_lapse = score - now_ms
      end
    end
  end
  local result = { 'ok', next_lapse, #unknown }
  for _, w in ipairs(unknown) do result[#result + 1] = w end
  for _, w in ipairs(expired) do result[#result + 1] = w end
  return result
end

if mode == 'renew' then
  return renew()
elseif mode == 'register' then
  local major = redis.call('HGET', KEYS[6], 'spec_major')
  if major and major ~= ARGV[5] then
    return redis.error_reply('JOBWIRE_SPEC_MISMATCH this Redis holds spec major ' .. major ..
      ', the worker speaks ' .. ARGV[5])
  end
  redis.call('HSETNX', KEYS[6], 'spec_major', ARGV[5])
  redis.call('SADD', KEYS[1], id)
  redis.call('SET', KEYS[4], ARGV[4])
  redis.call('DEL', KEYS[5])
  if #ARGV > 5 then
    redis.call('HSET', KEYS[5], unpack(ARGV, 6))
  end
elseif not redis.call('ZSCORE', KEYS[3], id) then
  return { 'unknown' }
end

redis.call('ZADD', KEYS[3], now_ms + lease_ms, id)
redis.call('HSET', KEYS[2], id, iso8601(now_s))

local result = { 'ok' }
for _, other in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', '(' .. now_ms, 'LIMIT', 0, 11)) do
  if other ~= id and #result <= 10 then
    result[#result + 1] = other
  end
end
return result
