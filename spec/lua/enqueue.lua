-- enqueue.lua: push one or more job payloads onto a queue and wake a blocked worker.
-- protocol.md section 8.1.
--
-- KEYS[1]  <ns>:queues                  set of queue names
-- KEYS[2]  <ns>:queue:<q>               the queue list
-- KEYS[3]  <ns>:jobwire:wake:<q>        wake marker for <q> (list, at most one element)
-- KEYS[4]  <ns>:jobwire:wake-new-queue  wake marker for wildcard workers
-- ARGV[1]  queue name <q>
-- ARGV[2..] payloads, already validated by the caller, pushed in order (RPUSH)
--
-- Returns: the queue's length after the push (integer).
-- Errors:  none of its own.
--
-- The marker lists hold at most one element: a marker means "look again", not "one job".
-- A worker woken by it reserves with reserve-next semantics (work.lua), which re-arms the
-- marker while jobs remain, so a burst wakes idle workers one after another.

local added = redis.call('SADD', KEYS[1], ARGV[1])
local length = redis.call('RPUSH', KEYS[2], unpack(ARGV, 2))
redis.call('LPUSH', KEYS[3], '1')
redis.call('LTRIM', KEYS[3], 0, 0)
if added == 1 then
  redis.call('LPUSH', KEYS[4], '1')
  redis.call('LTRIM', KEYS[4], 0, 0)
end
return length
