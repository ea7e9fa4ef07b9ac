-- Schedule store definitions (schedule_store.py): put, remove, or sync the "config" set.
-- ARGV: prefix, mode, then for 'put': source, name, definition; 'remove': name;
-- 'sync': name, definition, ... (every "config" entry).
-- Keys under the prefix: hashes defs, source, changed_at, last_run, last_task, count (field:
-- entry name); versions (sorted set: name -> cursor of its last change, removals kept as
-- tombstones), tombs (name -> removal time, for pruning), floor (cursors up to it are too old).
-- One call moves the cursor once and publishes the new value on <prefix>changed.
-- Returns: put 1; remove 1 if the entry existed, else 0; sync the number of entries changed.
local p, mode = ARGV[1], ARGV[2]
local t = redis.call('TIME')
local now = t[1] .. '.' .. string.format('%06d', t[2])
local DAY = 86400
local cursor = false

local function hget(key, field)  -- false when missing or when the key is no hash
  local value = redis.pcall('HGET', key, field)
  if type(value) ~= 'string' then return false end
  return value
end

-- the cursor for this call's changes (an unreadable one restarts above every version)
local function bump()
  if cursor then return cursor end
  local value = redis.pcall('INCR', p .. 'cursor')
  if type(value) ~= 'number' then
    local top = redis.call('ZREVRANGE', p .. 'versions', 0, 0, 'WITHSCORES')
    value = math.floor(tonumber(top[2] or '0') or 0) + 1
    redis.call('SET', p .. 'cursor', value)
  end
  cursor = value
  return value
end

local function put(name, definition, source)
  local version = bump()
  redis.call('HSET', p .. 'defs', name, definition)
  redis.call('HSET', p .. 'source', name, source)
  redis.call('HSET', p .. 'changed_at', name, now)
  redis.call('ZADD', p .. 'versions', version, name)
  redis.call('ZREM', p .. 'tombs', name)
end

local function forget_runs(name)  -- the entry's run records
  local key = p .. 'runs:' .. name
  local ids = redis.pcall('ZRANGE', key, 0, -1)
  if ids.err then ids = {} end  -- not a sorted set: nothing of ours, deleted below
  for i = 1, #ids, 1000 do
    local chunk = {unpack(ids, i, math.min(i + 999, #ids))}
    redis.call('HDEL', p .. 'run', unpack(chunk))
    redis.call('HDEL', p .. 'taken', unpack(chunk))
    redis.call('ZREM', p .. 'runs', unpack(chunk))
    redis.call('ZREM', p .. 'unsent', unpack(chunk))
  end
  redis.call('DEL', key)
end

local function prune_tombstones()  -- older than a day: a cursor from before them is too old
  local old = redis.call('ZRANGEBYSCORE', p .. 'tombs', '-inf', '(' .. (tonumber(now) - DAY),
                         'LIMIT', 0, 100)
  if #old == 0 then return end
  local floor = tonumber(redis.pcall('GET', p .. 'floor')) or 0
  for _, name in ipairs(old) do
    floor = math.max(floor, tonumber(redis.call('ZSCORE', p .. 'versions', name)) or 0)
    redis.call('ZREM', p .. 'versions', name)
  end
  redis.call('ZREM', p .. 'tombs', unpack(old))
  redis.call('SET', p .. 'floor', floor)
end

local function remove(name)
  local existed = redis.call('HDEL', p .. 'defs', name)
  local state = 0
  for _, hash in ipairs({'source', 'changed_at', 'last_run', 'last_task', 'count'}) do
    state = state + redis.call('HDEL', p .. hash, name)
  end
  forget_runs(name)
  if existed == 0 and state == 0 then return 0 end
  redis.call('ZADD', p .. 'versions', bump(), name)
  redis.call('ZADD', p .. 'tombs', now, name)
  prune_tombstones()
  return existed
end

-- Every key this call may write must be free or of its type: a key another program wrote
-- with another type fails the call before any write, naming the key.
local kinds = {defs = 'hash', source = 'hash', changed_at = 'hash', last_run = 'hash',
               last_task = 'hash', count = 'hash', run = 'hash', taken = 'hash', versions = 'zset',
               tombs = 'zset', runs = 'zset', unsent = 'zset'}
for suffix, kind in pairs(kinds) do
  local got = redis.call('TYPE', p .. suffix).ok
  if got ~= kind and got ~= 'none' then
    return redis.error_reply('schedule store key ' .. p .. suffix .. ' holds a ' .. got ..
                             ', not a ' .. kind .. ': another program wrote it; delete it')
  end
end

local result = 0
if mode == 'put' then
  put(ARGV[4], ARGV[5], ARGV[3])
  result = 1
elseif mode == 'remove' then
  result = remove(ARGV[3])
elseif mode == 'sync' then
  local wanted = {}
  for i = 3, #ARGV, 2 do
    local name, definition = ARGV[i], ARGV[i + 1]
    wanted[name] = true
    if hget(p .. 'defs', name) ~= definition or hget(p .. 'source', name) ~= 'config' then
      put(name, definition, 'config')
      result = result + 1
    end
  end
  local sources = redis.call('HGETALL', p .. 'source')
  for i = 1, #sources, 2 do
    if sources[i + 1] == 'config' and not wanted[sources[i]] then
      remove(sources[i])
      result = result + 1
    end
  end
else
  return redis.error_reply('beat_defs: unknown mode ' .. tostring(mode))
end
if cursor then
  redis.call('PUBLISH', p .. 'changed', cursor)
end
return result
