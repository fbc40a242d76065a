-- fire.lua: enqueue one due fire of a recurring schedule, exactly once, and advance the schedule.
-- protocol.md section 14.5. Any number of workers may race for the same fire time: the call
-- acts only when the schedule's next fire time and definition are still the ones the caller
-- read, and it moves the next fire time on, so only the first call of the race acts.
--
-- KEYS[1]  <ns>:jobwire:schedules          zset name -> next fire time, ms
-- KEYS[2]  <ns>:jobwire:schedule:<name>    hash: definition, fired, missed, last_fire_ms, ...
-- KEYS[3]  <ns>:queues                     (mode "fire"; otherwise any key, e.g. KEYS[1])
-- KEYS[4]  <ns>:queue:<q>                  (as KEYS[3])
-- KEYS[5]  <ns>:jobwire:wake:<q>           (as KEYS[3])
-- KEYS[6]  <ns>:jobwire:wake-new-queue     (as KEYS[3])
-- ARGV[1]  schedule name
-- ARGV[2]  the next fire time the caller read, byte for byte as promote.lua or ZSCORE gave it
-- ARGV[3]  the definition the caller read, byte for byte ("" when the hash had none)
-- ARGV[4]  mode: "fire"  enqueue ARGV[9] for fire time ARGV[6], count ARGV[7] missed
--                "miss"  every due fire time was missed: count ARGV[7] missed, enqueue nothing
--                "error" the definition cannot be used: record ARGV[9] as the error; the
--                        schedule stays, with next fire time +inf, until it is set again
-- ARGV[5]  the new next fire time (ms, decimal; mode "error": ignored)
-- ARGV[6]  mode "fire": the fire time enqueued (ms)
-- ARGV[7]  how many fire times were missed (integer, 0 or more)
-- ARGV[8]  the latest missed fire time (ms), or "" when ARGV[7] is 0
-- ARGV[9]  mode "fire": the job payload; mode "error": the error message
-- ARGV[10] mode "fire": the queue name <q>
-- ARGV[11] mode "fire": the payload's id
--
-- Returns: 1 when it acted; 0 when the schedule had changed (fired by someone else, updated,
--          or removed) and nothing changed.
-- Errors:  none of its own.

local name, mode = ARGV[1], ARGV[4]
local score = redis.call('ZSCORE', KEYS[1], name)
if score ~= ARGV[2] then  -- compared as Redis writes scores, so no rounding can make it pass
  return 0
end
if (redis.call('HGET', KEYS[2], 'definition') or '') ~= ARGV[3] then  -- a missing one reads as ''
  return 0
end
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)

if mode == 'error' then
  redis.call('HSET', KEYS[2], 'error', ARGV[9], 'error_ms', string.format('%d', now_ms))
  redis.call('ZADD', KEYS[1], '+inf', name)
  return 1
end

if mode == 'fire' then
  local queue = ARGV[10]
  if redis.call('SADD', KEYS[3], queue) == 1 then
    redis.call('LPUSH', KEYS[6], '1')
    redis.call('LTRIM', KEYS[6], 0, 0)
  end
  redis.call('RPUSH', KEYS[4], ARGV[9])
  redis.call('LPUSH', KEYS[5], '1')
  redis.call('LTRIM', KEYS[5], 0, 0)
  redis.call('HINCRBY', KEYS[2], 'fired', 1)
  redis.call('HSET', KEYS[2], 'last_fire_ms', ARGV[6], 'last_job_id', ARGV[11],
    'last_enqueued_ms', string.format('%d', now_ms))
end
local missed = tonumber(ARGV[7])
if missed > 0 then
  redis.call('HINCRBY', KEYS[2], 'missed', missed)
  redis.call('HSET', KEYS[2], 'last_missed_ms', ARGV[8])
end
redis.call('HDEL', KEYS[2], 'error', 'error_ms')
redis.call('ZADD', KEYS[1], ARGV[5], name)
return 1
