-- Claim runs for the lease holder.  ARGV: prefix, holder, sent ('1': the caller publishes in
-- the same transaction, so the runs are recorded as sent), then per run: name, scheduled_at
-- (Unix seconds as text), task id.  In order, a run is claimed when the holder has the lease,
-- the entry exists and its last_run is unset, unreadable, or before scheduled_at; the claim
-- moves last_run, last_task and count and records the run: <prefix>run (hash: run id -> task
-- id), runs and runs:<name> (sorted sets by scheduled_at), unsent (until confirmed); pruning
-- a record also drops its mark in taken (beat_take.lua).
-- A run id is '<scheduled_at>|<name>'.  Returns the 1-based positions of the runs claimed.
-- With sent = 'check' nothing is claimed: the keys are checked and 1 returned (or the error).
local p, holder, sent = ARGV[1], ARGV[2], ARGV[3]
local KEEP, DAY = 100, 86400
local lease = redis.pcall('GET', p .. 'lease')
if sent ~= 'check' and (lease ~= holder or redis.call('PTTL', p .. 'lease') < 0) then
  return {}
end
-- Every key this call may write must be free or of its type (see beat_defs.lua)
local kinds = {last_run = 'hash', last_task = 'hash', count = 'hash', run = 'hash',
               taken = 'hash', runs = 'zset', unsent = 'zset', defs = 'hash'}
for i = 4, #ARGV, 3 do kinds['runs:' .. ARGV[i]] = 'zset' end
for suffix, kind in pairs(kinds) do
  local got = redis.call('TYPE', p .. suffix).ok
  if got ~= kind and got ~= 'none' then
    return redis.error_reply('schedule store key ' .. p .. suffix .. ' holds a ' .. got ..
                             ', not a ' .. kind .. ': another program wrote it; delete it')
  end
end
if sent == 'check' then
  return 1
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000

local function last_run(name)  -- nil: never ran, or unreadable
  local value = tonumber(redis.call('HGET', p .. 'last_run', name))
  if value == nil or value ~= value or value == math.huge or value == -math.huge then
    return nil
  end
  return value
end

local function prune(name)  -- sent records older than a day, beyond the newest KEEP
  local key = p .. 'runs:' .. name
  local extra = redis.call('ZCARD', key) - KEEP
  if extra <= 0 then return end
  local old = redis.call('ZRANGEBYSCORE', key, '-inf', '(' .. (now - DAY), 'LIMIT', 0,
                         math.min(extra, 1000))
  local gone = {}
  for _, id in ipairs(old) do
    if not redis.call('ZSCORE', p .. 'unsent', id) then gone[#gone + 1] = id end
  end
  if #gone == 0 then return end
  redis.call('ZREM', key, unpack(gone))
  redis.call('ZREM', p .. 'runs', unpack(gone))
  redis.call('HDEL', p .. 'run', unpack(gone))
  redis.call('HDEL', p .. 'taken', unpack(gone))
end

-- Writes are gathered and made a few commands per batch, not per run.
local function flush(command, key, items)
  for i = 1, #items, 2000 do
    redis.call(command, key, unpack(items, i, math.min(i + 1999, #items)))
  end
end

local claimed, exists, latest, to_prune = {}, {}, {}, {}
local last_runs, last_tasks, run_ids, by_time, unsent = {}, {}, {}, {}, {}
for i = 4, #ARGV, 3 do
  local name, at_text, task_id = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local at = tonumber(at_text)
  if exists[name] == nil then
    exists[name] = redis.call('HEXISTS', p .. 'defs', name) == 1
    latest[name] = last_run(name) or false
  end
  local last = latest[name]
  if exists[name] and (last == false or last < at) then
    latest[name] = at
    local count = redis.pcall('HINCRBY', p .. 'count', name, 1)
    if type(count) ~= 'number' then
      redis.call('HSET', p .. 'count', name, 1)  -- an unreadable count restarts
      count = 1
    end
    if count % 16 == 0 then to_prune[name] = true end
    local id = at_text .. '|' .. name
    last_runs[#last_runs + 1], last_runs[#last_runs + 2] = name, at_text
    last_tasks[#last_tasks + 1], last_tasks[#last_tasks + 2] = name, task_id
    run_ids[#run_ids + 1], run_ids[#run_ids + 2] = id, task_id
    by_time[#by_time + 1], by_time[#by_time + 2] = at_text, id
    redis.call('ZADD', p .. 'runs:' .. name, at_text, id)
    if sent ~= '1' then
      unsent[#unsent + 1], unsent[#unsent + 2] = at_text, id
    end
    claimed[#claimed + 1] = (i - 1) / 3
  end
end
flush('HSET', p .. 'last_run', last_runs)
flush('HSET', p .. 'last_task', last_tasks)
flush('HSET', p .. 'run', run_ids)
flush('ZADD', p .. 'runs', by_time)
flush('ZADD', p .. 'unsent', unsent)
for name in pairs(to_prune) do prune(name) end  -- every 16th claim of an entry
return claimed
