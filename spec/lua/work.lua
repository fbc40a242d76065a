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
-- both are written raw instead (1.0.1: DEL). Escapes are read left to right, so "\\" is never split.
local function jstr(s)
  return (string.gsub(cjson.encode(s), '\\(.)(%x?%x?%x?%x?)', function(c, hex)
    if c == '/' then return '/' .. hex end
    if c == 'u' and hex == '007f' then return '\127' end
    return '\\' .. c .. hex
  end))
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

-- True when s is well-formed UTF-8 (RFC 8259 requires it of JSON). ASCII is checked in C.
-- RFC 3629 section 4: the second byte's range depends on the first, which rules out overlong
-- forms (E0 80..9F, F0 80..8F), UTF-16 surrogates (ED A0..BF) and code points above U+10FFFF.
local second_lo = { [0xE0] = 0xA0, [0xF0] = 0x90 }
local second_hi = { [0xED] = 0x9F, [0xF4] = 0x8F }
local function utf8_valid(s)
  if not string.find(s, '[\128-\255]') then return true end
  local i, n = 1, #s
  while i <= n do
    local c = string.byte(s, i)
    local len = 1
    if c >= 0xC2 and c <= 0xDF then len = 2
    elseif c >= 0xE0 and c <= 0xEF then len = 3
    elseif c >= 0xF0 and c <= 0xF4 then len = 4
    elseif c >= 0x80 then return false end
    for j = i + 1, i + len - 1 do
      local b = string.byte(s, j)
      local lo, hi = 0x80, 0xBF
      if j == i + 1 then lo, hi = second_lo[c] or 0x80, second_hi[c] or 0xBF end
      if not b or b < lo or b > hi then return false end
    end
    i = i + len
  end
  return true
end

-- A Resque-format failure record for a payload this script cannot run. The payload is embedded
-- verbatim when it is a JSON object, else as a JSON string; bytes that are not UTF-8 go to
-- "payload_hex" instead, so no byte is lost and the record stays valid JSON.
local function failure_record(raw, exception, message, queue)
  local payload_json, extra = raw, ''
  if not utf8_valid(raw) then
    payload_json = '"payload is not valid UTF-8; its bytes are in payload_hex"'
    extra = ',"payload_hex":"' .. string.gsub(raw, '.', function(c) return string.format('%02x', string.byte(c)) end) .. '"'
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
