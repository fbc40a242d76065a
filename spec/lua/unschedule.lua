-- unschedule.lua: take one delayed item or one waiting retry out, and drop it or enqueue it now.
-- protocol.md section 14.2 (delayed) and 14.4 (retries).
--
-- KEYS[1]  <ns>:delayed_queue_schedule   (kind "retry": <ns>:jobwire:retry instead)
-- KEYS[2]  <ns>:delayed:<ts>              (kind "retry": any key, e.g. KEYS[1])
-- KEYS[3]  <ns>:timestamps:<item>         (kind "retry": any key, e.g. KEYS[1])
-- KEYS[4]  <ns>:queues
-- KEYS[5]  <ns>:queue:<q>                (mode "enqueue"; otherwise any key, e.g. KEYS[1])
-- KEYS[6]  <ns>:jobwire:wake:<q>         (as KEYS[5])
-- KEYS[7]  <ns>:jobwire:wake-new-queue   (as KEYS[5])
-- ARGV[1]  kind: "delayed" | "retry"
-- ARGV[2]  kind "delayed": <ts>, the bucket;  kind "retry": the zset member as read ("<q> <payload>")
-- ARGV[3]  kind "delayed": the item as read;  kind "retry": the payload part of the member
-- ARGV[4]  mode: "remove" (drop it) | "enqueue" (push it onto <q> now)
-- ARGV[5]  <q> (mode "enqueue")
--
-- Returns: 1 when the item was found (and removed or enqueued), 0 when it was no longer there
--          (promoted or removed by someone else first) and nothing changed.
-- Errors:  none of its own.

local kind, mode = ARGV[1], ARGV[4]
if kind == 'delayed' then
  if redis.call('LREM', KEYS[2], 1, ARGV[3]) == 0 then
    return 0
  end
  redis.call('SREM', KEYS[3], 'delayed:' .. ARGV[2])
  if redis.call('LLEN', KEYS[2]) == 0 then
    redis.call('ZREM', KEYS[1], ARGV[2])
  end
else
  if redis.call('ZREM', KEYS[1], ARGV[2]) == 0 then
    return 0
  end
end
if mode == 'enqueue' then
  if redis.call('SADD', KEYS[4], ARGV[5]) == 1 then
    redis.call('LPUSH', KEYS[7], '1')
    redis.call('LTRIM', KEYS[7], 0, 0)
  end
  redis.call('RPUSH', KEYS[5], ARGV[3])
  redis.call('LPUSH', KEYS[6], '1')
  redis.call('LTRIM', KEYS[6], 0, 0)
end
return 1
