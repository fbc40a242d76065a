-- promote.lua: move due delayed jobs and due retries onto their queues; list due schedules.
-- protocol.md section 14.3. Any number of workers may call it at once: each item is moved by
-- exactly one call, because each call is atomic and takes the item out before pushing it.
--
-- KEYS[1]  <ns>:delayed_queue_schedule     resque-scheduler's zset of buckets (unix seconds)
-- KEYS[2]  <ns>:queues
-- KEYS[3]  <ns>:jobwire:wake-new-queue
-- KEYS[4]  <ns>:failed
-- KEYS[5]  <ns>:jobwire:retry              zset "<q> <payload>" -> due time, ms of Redis time
-- KEYS[6]  <ns>:jobwire:schedules          zset schedule name -> next fire time, ms (ARGV[6] "1";
--                                          otherwise any key, e.g. KEYS[1])
-- ARGV[1]  "<ns>:", the namespace and a colon. This is the one script that builds key names
--          (delayed:<ts>, timestamps:<item>, queue:<q>, jobwire:wake:<q>): they come from the
--          data. With a hash-tagged namespace they share the slot of KEYS (key-layout.md).
-- ARGV[2]  most items (moved, failed, or empty buckets dropped) handled in this call: 100
-- ARGV[3]  failed_at for records this script writes ("%Y/%m/%d %H:%M:%S UTC", caller's clock)
-- ARGV[4]  worker id, for those records
-- ARGV[5]  largest item in bytes (the worker's max-payload-bytes)
-- ARGV[6]  "1": also list due schedules (a worker that fires them); "0": do not
--
-- Returns: { moved, malformed, more, now_ms, next_due_ms, name_1, due_ms_1, ..., name_k, due_ms_k }
--   moved:       items pushed onto their queues
--   malformed:   items moved to <ns>:failed as jobwire.InvalidDelayedItem (never dropped): items
--                that are not jobs, items whose queue key is not a list, and buckets that are not
--                lists (reported, left in place, taken out of KEYS[1] so they block nothing)
--   more:        1 when the limit was reached and due items may remain (call again at once)
--   now_ms:      Redis time of this call
--   next_due_ms: the earliest due time still waiting (delayed bucket, retry, and with ARGV[6]
--                "1" schedule), ms of Redis time; -1 when nothing waits
--   name_i, due_ms_i: up to 10 schedules whose next fire time is <= now_ms (ARGV[6] "1"); due_ms_i
--                is the zset score as a string, exactly as ZSCORE writes it (pass it to fire.lua)
-- Errors:  none of its own.

local prefix, limit, failed_at, worker_id = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local max_bytes = tonumber(ARGV[5])
local now = redis.call('TIME')
local now_s = tonumber(now[1])
local now_ms = now_s * 1000 + math.floor(tonumber(now[2]) / 1000)

-- Strings are escaped as protocol.md 6.2 says, exactly as work.lua does (its comment says how).
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

-- True when s is well-formed UTF-8, and the hex of s: as work.lua (its comments say how).
local function utf8_valid(s)
  if not string.find(s, '[\128-\255]') then return true end
  s = string.gsub(s, '[\194-\223][\128-\191]', 'A')
  if string.find(s, '[\225-\236\238\239]') then
    s = string.gsub(s, '[\225-\236\238\239][\128-\191][\128-\191]', 'A')
  end
  if string.find(s, '[\224\237\240-\244]') then
    for _, row in ipairs({ '\224[\160-\191][\128-\191]', '\237[\128-\159][\128-\191]',
        '\240[\144-\191][\128-\191][\128-\191]', '[\241-\243][\128-\191][\128-\191][\128-\191]',
        '\244[\128-\143][\128-\191][\128-\191]' }) do
      s = string.gsub(s, row, 'A')
    end
  end
  return not string.find(s, '[\128-\255]')
end

local function hex(s)
  local parts, n = {}, #s
  local whole = n - n % 64
  local fmt = string.rep('%02x', 64)
  for i = 1, whole, 64 do
    parts[#parts + 1] = string.format(fmt, string.byte(s, i, i + 63))
  end
  if whole < n then
    parts[#parts + 1] = string.format(string.rep('%02x', n - whole), string.byte(s, whole + 1, n))
  end
  return table.concat(parts)
end

-- key-layout.md's queue-name rule: 1-255 bytes, no ':', '*', ',', whitespace or control characters.
local function valid_queue(q)
  return type(q) == 'string' and #q >= 1 and #q <= 255 and not string.find(q, '[:*,%s%c]')
end

-- Why an item cannot be promoted (nil when it can), and its queue.
local function check_item(raw, queue)
  if #raw > max_bytes then
    return 'item is ' .. #raw .. ' bytes; the limit is ' .. max_bytes
  end
  if not utf8_valid(raw) then return 'item is not valid UTF-8' end
  local ok, doc = pcall(cjson.decode, raw)
  if not ok then return 'item is not valid JSON: ' .. tostring(doc) end
  if type(doc) ~= 'table' or not string.find(raw, '^%s*{') then return 'item is not a JSON object' end
  if type(doc['class']) ~= 'string' or doc['class'] == '' then return 'item has no "class" string' end
  if doc['args'] ~= nil and type(doc['args']) ~= 'table' then return 'item\'s "args" is not an array' end
  if queue == nil then
    queue = doc['queue']
    if not valid_queue(queue) then
      return 'item has no valid "queue" (a string that follows the queue-name rules)'
    end
  end
  return nil, queue
end

-- A failure record for an item that cannot be promoted; the item is kept whole (as work.lua).
local function item_failure_record(raw, message, queue)
  local payload_json, extra = raw, ''
  if not utf8_valid(raw) then
    payload_json = '"payload is not valid UTF-8; its bytes are in payload_hex"'
    extra = ',"payload_hex":"' .. hex(raw) .. '"'
  elseif not string.find(raw, '^%s*{') or not pcall(cjson.decode, raw) then
    payload_json = jstr(raw)
  end
  return '{"failed_at":' .. jstr(failed_at) .. ',"payload":' .. payload_json ..
    ',"exception":"jobwire.InvalidDelayedItem","error":' .. jstr(message) ..
    ',"backtrace":[],"worker":' .. jstr(worker_id) .. ',"queue":' .. jstr(queue) .. extra .. '}'
end

-- True when r is the error a redis.pcall returned (a key of the wrong type, say).
local function failed(r)
  return type(r) == 'table' and r['err'] ~= nil
end

-- Push a due payload onto its queue and wake one idle worker of that queue (as enqueue.lua).
-- Returns nil, or the error when the queue key holds something else than a list: the item has
-- already left its bucket, so the caller records it in the failed list instead of losing it.
local function push(queue, payload)
  local pushed = redis.pcall('RPUSH', prefix .. 'queue:' .. queue, payload)
  if failed(pushed) then return pushed['err'] end
  if redis.call('SADD', KEYS[2], queue) == 1 then
    redis.call('LPUSH', KEYS[3], '1')
    redis.call('LTRIM', KEYS[3], 0, 0)
  end
  local wake = prefix .. 'jobwire:wake:' .. queue
  redis.pcall('LPUSH', wake, '1')
  redis.pcall('LTRIM', wake, 0, 0)
  return nil
end

local moved, malformed, handled = 0, 0, 0

-- 1. Delayed buckets, oldest first, each item in its list order.
while handled < limit do
  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_s, 'LIMIT', 0, 1)
  if #due == 0 then break end
  local ts = due[1]
  local bucket = prefix .. 'delayed:' .. ts
  local raw = redis.pcall('LPOP', bucket)
  handled = handled + 1
  if failed(raw) then
    -- not a list: report it, leave the key as it is, and stop it blocking the buckets behind it
    redis.call('ZREM', KEYS[1], ts)
    redis.call('RPUSH', KEYS[4], item_failure_record(bucket, 'delayed bucket ' .. bucket .. ' is not a list (' ..
      raw['err'] .. '); it was left as it is and taken out of delayed_queue_schedule', ''))
    malformed = malformed + 1
  else
    if raw then
      redis.pcall('SREM', prefix .. 'timestamps:' .. raw, 'delayed:' .. ts)
      local problem, queue = check_item(raw, nil)
      local q = ''
      if problem then
        local ok, doc = pcall(cjson.decode, raw)
        if ok and type(doc) == 'table' and type(doc['queue']) == 'string' then q = doc['queue'] end
      else
        q = queue
        problem = push(queue, raw)
        if problem then problem = 'queue ' .. queue .. ' cannot take it: ' .. problem end
      end
      if problem then
        redis.call('RPUSH', KEYS[4], item_failure_record(raw, 'delayed ' .. problem, q))
        malformed = malformed + 1
      else
        moved = moved + 1
      end
    end
    if redis.call('LLEN', bucket) == 0 then
      redis.call('ZREM', KEYS[1], ts)
    end
  end
end

-- 2. Retries whose delay has passed.
while handled < limit do
  local due = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now_ms, 'LIMIT', 0, 1)
  if #due == 0 then break end
  local member = due[1]
  redis.call('ZREM', KEYS[5], member)
  handled = handled + 1
  local queue, payload = string.match(member, '^([^ ]*) (.*)$')
  local problem
  if not queue or not valid_queue(queue) then
    problem, payload, queue = 'retry member is not "<queue> <payload>"', member, ''
  else
    problem = check_item(payload, queue)
  end
  if not problem then
    problem = push(queue, payload)
    if problem then problem = 'queue ' .. queue .. ' cannot take it: ' .. problem end
  end
  if problem then
    redis.call('RPUSH', KEYS[4], item_failure_record(payload, problem, queue))
    malformed = malformed + 1
  else
    moved = moved + 1
  end
end

-- 3. What is due next, and which schedules are due now.
local function first_score(key)
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  local score = first[2] and tonumber(first[2])
  if not score or score ~= score or score == math.huge then return nil end
  return score
end
local next_due = nil
local ts = first_score(KEYS[1])
if ts then next_due = ts * 1000 end
local r = first_score(KEYS[5])
if r and (not next_due or r < next_due) then next_due = r end
local result = { moved, malformed, handled >= limit and 1 or 0, now_ms, -1 }
if ARGV[6] == '1' then
  local s = first_score(KEYS[6])
  if s and (not next_due or s < next_due) then next_due = s end
  local due = redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', now_ms, 'WITHSCORES', 'LIMIT', 0, 10)
  for i = 1, #due, 2 do
    result[#result + 1] = due[i]
    result[#result + 1] = due[i + 1]  -- the score as Redis writes it, for fire.lua's comparison
  end
end
if next_due then result[5] = next_due end
return result
