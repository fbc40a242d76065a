-- failed_retry.lua: move one failure record back onto its queue, atomically.
-- protocol.md section 8.7.
--
-- KEYS[1]  <ns>:failed
-- KEYS[2]  <ns>:queues
-- KEYS[3]  <ns>:queue:<q>
-- KEYS[4]  <ns>:jobwire:wake:<q>
-- KEYS[5]  <ns>:jobwire:wake-new-queue
-- ARGV[1]  the failure record, byte for byte as read from KEYS[1]
-- ARGV[2]  queue name <q>
-- ARGV[3]  the payload to push: the record's payload member, its bytes cut out of the record as
--          they are (never re-encoded; protocol.md section 5)
--
-- Returns: 1 when the record was removed and the payload pushed; 0 when the record was no
--          longer in the list (someone else retried or removed it) and nothing changed.
-- Errors:  none of its own.
--
-- Records are matched by value, never by index, so concurrent removals cannot make this
-- retry the wrong job (resque#1172).

if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then
  return 0
end
if redis.call('SADD', KEYS[2], ARGV[2]) == 1 then
  redis.call('LPUSH', KEYS[5], '1')
  redis.call('LTRIM', KEYS[5], 0, 0)
end
redis.call('RPUSH', KEYS[3], ARGV[3])
redis.call('LPUSH', KEYS[4], '1')
redis.call('LTRIM', KEYS[4], 0, 0)
return 1
