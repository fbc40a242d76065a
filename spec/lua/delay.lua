-- delay.lua: store one job to run at a later time, in resque-scheduler's layout.
-- protocol.md section 14.2.
--
-- KEYS[1]  <ns>:delayed_queue_schedule      zset, member = score = the bucket's unix second
-- KEYS[2]  <ns>:delayed:<ts>                the bucket: list of delayed items
-- KEYS[3]  <ns>:timestamps:<item>           set of "delayed:<ts>" (resque-scheduler's reverse index)
-- KEYS[4]  <ns>:jobwire:wake-schedule       wake marker for idle promoting workers (at most one element)
-- ARGV[1]  <ts>: the bucket, whole unix seconds, decimal (ceil of the due time in ms / 1000)
-- ARGV[2]  the delayed item: the job payload with "queue" as its third member
--          (schemas/delayed-item.schema.json), already validated by the caller
--
-- Returns: 1.
-- Errors:  none of its own.
--
-- The three writes are the ones resque-scheduler makes (RPUSH, SADD, ZADD), here in one atomic
-- step. When the bucket is now the earliest, one idle worker is woken so that it shortens its
-- block to the new due time.

redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], 'delayed:' .. ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[1])
local first = redis.call('ZRANGE', KEYS[1], 0, 0)
if first[1] == ARGV[1] then
  redis.call('LPUSH', KEYS[4], '1')
  redis.call('LTRIM', KEYS[4], 0, 0)
end
return 1
