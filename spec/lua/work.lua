-- work.lua: settle the job a worker holds, then reserve its next job. One round trip per job.
-- protocol.md section 8.2 (settle and reserve); section 8.3 says when it is called.
--
-- KEYS[1]   <ns>:worker:<id>                  Resque "working on" record
-- KEYS[2]   <ns>:jobwire:inflight:<id>        in-flight hash (queue, payload, token, job_key, reserved_ms)
-- KEYS[3]   <ns>:stat:processed
-- KEYS[4]   <ns>:stat:processed:<id>
-- KEYS[5]   <ns>:stat:failed
-- KEYS[6]   <ns>:stat:failed:<id>
-- KEYS[7]   <ns>:failed
-- KEYS[8]   <ns>:jobwire:deaths
-- KEYS[9]   <ns>:jobwire:minutes:<yyyy-mm-dd>  per-minute counters, the caller's UTC day
-- KEYS[10]  <ns>:jobwire:leases
-- KEYS[11]  <ns>:pause-all-workers
-- KEYS[12]  <ns>:queue:<settled job's queue>   (used by op "crash"; otherwise any key, e.g. KEYS[1])
-- KEYS[13]  <ns>:jobwire:wake:<settled queue>  (as KEYS[12])
-- KEYS[14 .. 13+n]      <ns>:queue:<q_i>       queues to reserve from, highest priority first
-- KEYS[14+n .. 13+2n]   <ns>:jobwire:wake:<q_i>
--
-- ARGV[1]   worker id
-- ARGV[2]   settle op: "none" | "ok" | "fail" | "crash"
-- ARGV[3]   token of the job being settled (as returned when it was reserved)
-- ARGV[4]   op "fail": the failure record (JSON); op "crash": why the job's process died (text)
-- ARGV[5]   failed_at for records this script writes ("%Y/%m/%d %H:%M:%S UTC", caller's clock)
-- ARGV[6]   run_at for the next job's working-on record ("%Y-%m-%dT%H:%M:%SZ", caller's clock)
-- ARGV[7]   deaths before a job is failed as a poison job (default 3)
-- ARGV[8]   largest payload in bytes a worker accepts (default 16777216)
-- ARGV[9 .. 8+n]  queue names q_1..q_n; n = 0 means settle only
--
-- Returns: { settled, status [, token, queue, payload] }
--   settled: "none" | "ok" | "failed" | "requeued" | "poisoned" | "stale"
--            ("stale": the worker no longer holds that job, e.g. it was recovered; nothing changed)
--   status:  "job"     followed by the token, the queue name and the raw payload; when the
--                      worker still holds an unsettled job, that job again (a retried call)
--            "empty"   no queue had a valid job
--            "paused"  <ns>:pause-all-workers is "true"; nothing was reserved
--            "expired" the worker's lease has lapsed; it MUST register again before reserving
--            "settled" n was 0
--            "retry"   100 unrunnable payloads were moved to the failed list; call again at once
-- Errors:   none of its own. Payloads that are too large, not JSON, or not a JSON object with a
--           non-empty string "class" (or not UTF-8) are moved to KEYS[7] here, with the raw bytes
--           kept (in "payload_hex" when they are not UTF-8).

local worker_id, op, held_token = ARGV[1], ARGV[2], ARGV[3]
local max_deaths, max_bytes = tonumber(ARGV[7]), tonumber(ARGV[8])
local nqueues = #ARGV - 8
local worker_name = string.match(worker_id, '^(.*):[^:]*$') or worker_id  -- host:pid, as node-resque names it

-- Strings are escaped as protocol.md 6.2 says (JSON.stringify's way): node-resque removes
-- failure records by re-encoding them. cjson also writes "/" as "\/" and DEL as "\u007f";
-- both are written raw instead (1.0.1: DEL). cjson writes "/" only in "\/", so replacing every
-- "\/" is exact; "\u007f" may follow an escaped backslash, so a string holding a DEL is read
-- escape by escape, left to right ("\\" is never split). Only a string that needs a pass pays for it.
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

local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local minute = math.floor(tonumber(now[1]) / 60)

-- Count one settled job: every job counts as processed (as Ruby Resque does), failures also
-- as failed. The minute counters feed the web UI's charts and expire after eight days.
local function count(failed)
  redis.call('INCRBY', KEYS[3], 1)
  redis.call('INCRBY', KEYS[4], 1)
  if redis.call('HINCRBY', KEYS[9], 'processed:' .. minute, 1) == 1 then
    redis.call('EXPIRE', KEYS[9], 691200)
  end
  if failed then
    redis.call('INCRBY', KEYS[5], 1)
    redis.call('INCRBY', KEYS[6], 1)
    redis.call('HINCRBY', KEYS[9], 'failed:' .. minute, 1)
  end
end

-- True when s is well-formed UTF-8 (RFC 8259 requires it of JSON). Each pattern is a row of
-- RFC 3629 section 4's table (the second byte's range rules out overlong forms, UTF-16
-- surrogates and code points above U+10FFFF); each pass replaces the characters of its row with
-- an ASCII byte, so a later pass can never join bytes that were not adjacent. s is valid when no
-- byte above 127 is left. Passes run in C (string.gsub): a 16 MiB payload takes a fraction of
-- the byte-by-byte loop's time. ASCII is checked first.
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

-- The bytes of s as lowercase hex, two digits each (payload_hex), 64 bytes per string.format call.
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

-- A Resque-format failure record for a payload this script cannot run. The payload is embedded
-- verbatim when it is a JSON object, else as a JSON string; bytes that are not UTF-8 go to
-- "payload_hex" instead, so no byte is lost and the record stays valid JSON.
local function failure_record(raw, exception, message, queue)
  local payload_json, extra = raw, ''
  if not utf8_valid(raw) then
    payload_json = '"payload is not valid UTF-8; its bytes are in payload_hex"'
    extra = ',"payload_hex":"' .. hex(raw) .. '"'
  elseif exception ~= 'jobwire.InvalidPayload' or not string.find(raw, '^%s*{') then
    payload_json = jstr(raw)
  end
  return '{"failed_at":' .. jstr(ARGV[5]) .. ',"payload":' .. payload_json ..
    ',"exception":' .. jstr(exception) .. ',"error":' .. jstr(message) ..
    ',"backtrace":[],"worker":' .. jstr(worker_id) .. ',"queue":' .. jstr(queue) .. extra .. '}'
end

-- Why a raw payload cannot be run, or nil and the decoded document when it can.
local function check_payload(raw)
  if #raw > max_bytes then
    return 'jobwire.PayloadTooLarge', 'payload is ' .. #raw .. ' bytes; the limit is ' .. max_bytes
  end
  if not utf8_valid(raw) then
    return 'jobwire.InvalidJSON', 'payload is not valid UTF-8'
  end
  local ok, doc = pcall(cjson.decode, raw)
  if not ok then
    return 'jobwire.InvalidJSON', 'payload is not valid JSON: ' .. tostring(doc)
  end
  if type(doc) ~= 'table' or not string.find(raw, '^%s*{') then
    return 'jobwire.InvalidPayload', 'payload is not a JSON object'
  end
  if type(doc['class']) ~= 'string' or doc['class'] == '' then
    return 'jobwire.InvalidPayload', 'payload has no "class" string'
  end
  return nil, doc
end

-- 1. Settle the job this worker holds.
local settled = 'none'
if op ~= 'none' then
  local held = redis.call('HMGET', KEYS[2], 'token', 'queue', 'payload', 'job_key')
  if held[1] ~= held_token then
    settled = 'stale'
  else
    local queue, payload, job_key = held[2], held[3], held[4]
    if op == 'ok' then
      count(false)
      settled = 'ok'
    elseif op == 'fail' then
      redis.call('RPUSH', KEYS[7], ARGV[4])
      count(true)
      settled = 'failed'
    else -- crash: the job's process died; requeue it unless it has now killed max_deaths times
      local deaths = redis.call('HINCRBY', KEYS[8], job_key, 1)
      if deaths >= max_deaths then
        redis.call('RPUSH', KEYS[7], '{"failed_at":' .. jstr(ARGV[5]) .. ',"payload":' .. payload ..
          ',"exception":"jobwire.PoisonJob","error":' ..
          jstr('job killed its worker ' .. deaths .. ' times; last: ' .. ARGV[4]) ..
          ',"backtrace":[],"worker":' .. jstr(worker_id) .. ',"queue":' .. jstr(queue) .. '}')
        count(true)
        settled = 'poisoned'
      else
        redis.call('LPUSH', KEYS[12], payload)
        redis.call('LPUSH', KEYS[13], '1')
        redis.call('LTRIM', KEYS[13], 0, 0)
        settled = 'requeued'
      end
    end
    if settled ~= 'requeued' then
      redis.call('HDEL', KEYS[8], job_key)
    end
    redis.call('DEL', KEYS[1], KEYS[2])
  end
end

if nqueues == 0 then
  return { settled, 'settled' }
end

-- 2. Reserve the next job, in strict priority order.
local lease = redis.call('ZSCORE', KEYS[10], worker_id)
if not lease or tonumber(lease) < now_ms then
  return { settled, 'expired' }
end
-- A job still held (the reply that carried it was lost, and the caller retried) is handed out
-- again instead of being overwritten: this makes a retried call safe.
if settled == 'none' or settled == 'stale' then  -- after any other settle the hash is gone
  local still = redis.call('HMGET', KEYS[2], 'token', 'queue', 'payload')
  if still[1] then
    return { settled, 'job', still[1], still[2], still[3] }
  end
end
local pause = redis.call('GET', KEYS[11])
if pause and string.lower(string.match(pause, '^%s*(.-)%s*$')) == 'true' then
  return { settled, 'paused' }
end

local skipped = 0
for i = 1, nqueues do
  local queue_key, wake_key, queue = KEYS[13 + i], KEYS[13 + nqueues + i], ARGV[8 + i]
  while skipped < 100 do
    local raw = redis.call('LPOP', queue_key)
    if not raw then break end
    local exception, doc = check_payload(raw)
    if exception then
      redis.call('RPUSH', KEYS[7], failure_record(raw, exception, doc, queue))
      count(true)
      skipped = skipped + 1
    else
      local token = now[1] .. string.format('%06d', tonumber(now[2]))
      local job_key = doc['id']
      if type(job_key) ~= 'string' or job_key == '' then
        job_key = 'sha1:' .. redis.sha1hex(raw)
      end
      redis.call('SET', KEYS[1], '{"queue":' .. jstr(queue) .. ',"run_at":' ..
        jstr(ARGV[6]) .. ',"payload":' .. raw .. ',"worker":' .. jstr(worker_name) .. '}')
      redis.call('HSET', KEYS[2], 'queue', queue, 'payload', raw, 'token', token,
        'job_key', job_key, 'reserved_ms', now_ms)
      if redis.call('LLEN', queue_key) > 0 then
        redis.call('LPUSH', wake_key, '1')
        redis.call('LTRIM', wake_key, 0, 0)
      end
      -- Since 1.0.1: the caller may have been woken by the marker of a lower-priority queue that
      -- it passed over here; that marker is gone, so re-arm every lower queue that still has
      -- jobs, or an idle worker listening only there would wait out its block timeout.
      for j = i + 1, nqueues do
        if redis.call('LLEN', KEYS[13 + j]) > 0 and redis.call('EXISTS', KEYS[13 + nqueues + j]) == 0 then
          redis.call('LPUSH', KEYS[13 + nqueues + j], '1')
        end
      end
      return { settled, 'job', token, queue, raw }
    end
  end
end
if skipped >= 100 then
  return { settled, 'retry' }
end
return { settled, 'empty' }
