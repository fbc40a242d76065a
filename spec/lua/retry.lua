-- retry.lua: settle a failed job by scheduling it again, with this attempt added to its history.
-- protocol.md section 14.4. A worker calls it instead of work.lua's op "fail" when the job's
-- retry policy allows another attempt, then calls work.lua with op "none" to reserve.
--
-- KEYS[1]   <ns>:worker:<id>                  Resque "working on" record
-- KEYS[2]   <ns>:jobwire:inflight:<id>        in-flight hash
-- KEYS[3]   <ns>:stat:processed
-- KEYS[4]   <ns>:stat:processed:<id>
-- KEYS[5]   <ns>:stat:failed
-- KEYS[6]   <ns>:stat:failed:<id>
-- KEYS[7]   <ns>:jobwire:deaths
-- KEYS[8]   <ns>:jobwire:minutes:<yyyy-mm-dd>  per-minute counters, the caller's UTC day
-- KEYS[9]   <ns>:jobwire:retry                zset of waiting retries, score = due time, ms of Redis time
-- KEYS[10]  <ns>:jobwire:wake-schedule        wake marker for idle promoting workers
-- ARGV[1]   worker id
-- ARGV[2]   token of the job being settled
-- ARGV[3]   delay in ms before the next attempt (protocol.md 14.4's formula, computed by the worker)
-- ARGV[4]   the attempt entry: compact JSON object (schemas/attempt.schema.json)
-- ARGV[5]   the held job's queue name
--
-- Returns: { settled, due_ms }
--   settled: "retrying" (due_ms: when it falls due, ms of Redis time) | "stale" (the worker no
--            longer holds that job; nothing changed; due_ms is 0)
-- Errors:   none of its own.
--
-- The payload is kept byte for byte except for its top-level "attempts" array, to which the
-- entry is appended (the member is added at the end when there is none), so that the job keeps
-- its id, its policy and every field a newer producer added. The retry set's member is
-- "<q> <payload>" (queue names hold no space); a member that already exists gets a trailing
-- space added to its payload (still the same JSON) so that no retry overwrites another.

local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local minute = math.floor(tonumber(now[1]) / 60)

-- Index of the closing quote of the JSON string that opens at p.
local function string_end(s, p)
  local q = p + 1
  while true do
    local e = string.find(s, '["\\]', q)
    if string.byte(s, e) == 92 then q = e + 2 else return e end
  end
end

-- First and last index of the value of the top-level member `name` of the JSON object s, or nil.
-- s is a valid JSON object (the worker validated it before running the job).
local function member_span(s, name)
  local depth, i, key, vstart, want_key = 0, 1, nil, nil, false
  while true do
    local p = string.find(s, '["{}%[%],:]', i)
    if not p then return nil end
    local c = string.byte(s, p)
    if c == 34 then                       -- a string: at depth 1 after { or , it is a key
      local e = string_end(s, p)
      if depth == 1 and want_key then key, want_key = string.sub(s, p + 1, e - 1), false end
      i = e + 1
    elseif c == 123 or c == 91 then       -- { [
      depth = depth + 1
      if depth == 1 then want_key = true end
      i = p + 1
    elseif c == 125 or c == 93 then       -- } ]
      if depth == 1 and vstart and key == name then return vstart, p - 1 end
      depth = depth - 1
      if depth == 0 then return nil end
      i = p + 1
    elseif c == 58 then                   -- :
      if depth == 1 then vstart = p + 1 end
      i = p + 1
    else                                  -- ,
      if depth == 1 then
        if key == name then return vstart, p - 1 end
        want_key, vstart = true, nil
      end
      i = p + 1
    end
  end
end

-- The payload with `entry` appended to its top-level "attempts" array.
local function add_attempt(payload, entry)
  local a, b = member_span(payload, 'attempts')
  if a then
    local lead, value, trail = string.match(string.sub(payload, a, b), '^(%s*)(.-)(%s*)$')
    local new
    if string.match(value, '^%[%s*%]$') then
      new = '[' .. entry .. ']'
    elseif string.sub(value, 1, 1) == '[' then
      new = string.sub(value, 1, -2) .. ',' .. entry .. ']'
    else
      new = '[' .. entry .. ']'
    end
    return string.sub(payload, 1, a - 1) .. lead .. new .. trail .. string.sub(payload, b + 1)
  end
  local last = string.match(payload, '^.*()}')
  return string.sub(payload, 1, last - 1) .. ',"attempts":[' .. entry .. ']' .. string.sub(payload, last)
end

local held = redis.call('HMGET', KEYS[2], 'token', 'payload', 'job_key')
if held[1] ~= ARGV[2] then
  return { 'stale', 0 }
end
local payload = add_attempt(held[2], ARGV[4])
local due_ms = now_ms + tonumber(ARGV[3])
while redis.call('ZADD', KEYS[9], 'NX', due_ms, ARGV[5] .. ' ' .. payload) == 0 do
  payload = payload .. ' '
end
redis.call('LPUSH', KEYS[10], '1')
redis.call('LTRIM', KEYS[10], 0, 0)

-- A failed attempt counts as processed and failed, as work.lua's op "fail" counts it.
redis.call('INCRBY', KEYS[3], 1)
redis.call('INCRBY', KEYS[4], 1)
redis.call('INCRBY', KEYS[5], 1)
redis.call('INCRBY', KEYS[6], 1)
if redis.call('HINCRBY', KEYS[8], 'processed:' .. minute, 1) == 1 then
  redis.call('EXPIRE', KEYS[8], 691200)
end
redis.call('HINCRBY', KEYS[8], 'failed:' .. minute, 1)
redis.call('HDEL', KEYS[7], held[3])
redis.call('DEL', KEYS[1], KEYS[2])
return { 'retrying', due_ms }
