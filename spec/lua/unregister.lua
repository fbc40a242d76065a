-- unregister.lua: remove a worker and everything it registered; give back its in-flight job.
-- protocol.md section 8.5 (leave) and 8.6 (recover a dead worker).
--
-- KEYS[1]   <ns>:jobwire:leases
-- KEYS[2]   <ns>:workers
-- KEYS[3]   <ns>:workers:heartbeat
-- KEYS[4]   <ns>:worker:<id>
-- KEYS[5]   <ns>:worker:<id>:started
-- KEYS[6]   <ns>:jobwire:inflight:<id>
-- KEYS[7]   <ns>:stat:processed:<id>
-- KEYS[8]   <ns>:stat:failed:<id>
-- KEYS[9]   <ns>:jobwire:worker:<id>
-- KEYS[10]  <ns>:jobwire:control:<id>
-- KEYS[11]  <ns>:jobwire:deaths
-- KEYS[12]  <ns>:failed
-- KEYS[13]  <ns>:stat:processed
-- KEYS[14]  <ns>:stat:failed
-- KEYS[15]  <ns>:jobwire:minutes:<yyyy-mm-dd>
-- KEYS[16]  <ns>:queue:<q>            q = HGET <ns>:jobwire:inflight:<id> queue, read just before
-- KEYS[17]  <ns>:jobwire:wake:<q>     (both any key, e.g. KEYS[6], when the worker held no job)
-- ARGV[1]   worker id
-- ARGV[2]   mode: "self"    the worker leaves by itself; a held job is requeued, no death counted
--                 "expired" recover the worker only if its lease has lapsed; a held job counts a death
--                 "dead"    its supervisor knows it died (e.g. reaped its pid); as "expired", no lease check
-- ARGV[3]   q as read before the call, or "" when the worker held no job
-- ARGV[4]   failed_at for a poison-job record ("%Y/%m/%d %H:%M:%S UTC")
-- ARGV[5]   deaths before a job is failed as a poison job (default 3)
-- ARGV[6]   who recovers, for the record's error text (e.g. the recovering worker's id)
--
-- Returns: { result, job }
--   result: "done" | "alive" (mode "expired" and the lease is current: nothing changed)
--           | "retry" (the in-flight job's queue is not ARGV[3]: read it again and call again)
--   job:    "none" | "requeued" | "poisoned"

-- Strings are escaped as protocol.md 6.2 says (JSON.stringify's way): node-resque removes
-- failure records by re-encoding them. cjson also writes "/" as "\/" and DEL as "\u007f";
-- both are written raw instead (1.0.1: DEL): as work.lua does (its comment says how).
local function jstr(s)
  local out = cjson.encode(s)
  if string.find(s, '\127', 1, true) then
    return (string.gsub(out, '\\(.)(%x?%x?%x?%x?)', function(c, hex)
      if c == '/' then return '/' .. hex end
      if c == 'u' and hex == '007f' then return '\127' end
      return '\\' .. c .. hex
    end))
  end
  if string.find(s, '/', 1, true) then
    out = string.gsub(out, '\\/', '/')
  end
  return out
end

local id, mode = ARGV[1], ARGV[2]
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)

if mode == 'expired' then
  local lease = redis.call('ZSCORE', KEYS[1], id)
  if lease and tonumber(lease) >= now_ms then
    return { 'alive', 'none' }
  end
end

local held = redis.call('HMGET', KEYS[6], 'queue', 'payload', 'job_key')
local queue, payload, job_key = held[1], held[2], held[3]
if (queue or '') ~= ARGV[3] then
  return { 'retry', 'none' }
end

local job = 'none'
if payload then
  local deaths = 0
  if mode ~= 'self' then
    deaths = redis.call('HINCRBY', KEYS[11], job_key, 1)
  end
  if deaths >= tonumber(ARGV[5]) then
    local minute = math.floor(tonumber(now[1]) / 60)
    redis.call('RPUSH', KEYS[12], '{"failed_at":' .. jstr(ARGV[4]) .. ',"payload":' .. payload ..
      ',"exception":"jobwire.PoisonJob","error":' ..
      jstr('job killed its worker ' .. deaths .. ' times; last: worker ' .. id ..
        ' was recovered as dead by ' .. ARGV[6]) ..
      ',"backtrace":[],"worker":' .. jstr(id) .. ',"queue":' .. jstr(queue) .. '}')
    redis.call('HDEL', KEYS[11], job_key)
    redis.call('INCRBY', KEYS[13], 1)
    redis.call('INCRBY', KEYS[14], 1)
    if redis.call('HINCRBY', KEYS[15], 'processed:' .. minute, 1) == 1 then
      redis.call('EXPIRE', KEYS[15], 691200)
    end
    redis.call('HINCRBY', KEYS[15], 'failed:' .. minute, 1)
    job = 'poisoned'
  else
    redis.call('LPUSH', KEYS[16], payload)
    redis.call('LPUSH', KEYS[17], '1')
    redis.call('LTRIM', KEYS[17], 0, 0)
    job = 'requeued'
  end
end

redis.call('ZREM', KEYS[1], id)
redis.call('SREM', KEYS[2], id)
redis.call('HDEL', KEYS[3], id)
redis.call('DEL', KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10])
return { 'done', job }
