-- Ack what the consumer finished, then claim up to `limit` due messages from
-- queues (in order) for it: the worker's turn in one round trip.
-- ARGV: prefix, consumer, now, limit, token, previous token, register, nacks,
-- ack id x nacks, queue...
-- The lease is renewed first, by Redis's clock, as renew.lua does (register
-- "1": a new consumer); a lapsed one returns {'lapsed'}, acking and claiming
-- nothing.  Only acks of ids the consumer still owns delete anything.  `now`
-- (the consumer's clock) only says which ETAs are due: an ETA is the
-- producer's absolute time.
-- The claimed ids are also kept under claim:<token> until the next fetch, so a
-- consumer whose connection dropped before the reply arrived can take them
-- back (reclaim.lua) instead of leaving them owned and unseen.
-- Due delayed messages of these queues are promoted first; every claimed id is
-- recorded in the consumer's owned set in the same step, so a crash can only
-- leave a message owned (and recovered when the lease lapses), never lost.
-- Returns id, envelope, redelivered for each claimed message; with nothing to
-- claim, {'due', <earliest ETA of these queues>} or {} when none is delayed.
-- A claim takes as many wake-up tokens (wake:<queue>, see publish.lua).
local prefix, consumer, now, limit = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local token, previous, register, nacks = ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8])
local owned = prefix .. 'owned:' .. consumer
local consumers = prefix .. 'consumers'
local t = redis.call('TIME')
local clock = tonumber(t[1]) + tonumber(t[2]) / 1000000
if register == '1' then
  redis.call('ZADD', consumers, clock, consumer)
elseif redis.call('ZADD', consumers, 'XX', 'CH', clock, consumer) == 0
    and not redis.call('ZSCORE', consumers, consumer) then
  return {'lapsed'}
end
if previous ~= '' then
  redis.call('DEL', prefix .. 'claim:' .. previous)
end
for first = 9, 8 + nacks, 1000 do  -- one command per key for up to 1,000 acks
  local last = math.min(first + 999, 8 + nacks)
  local acked = {unpack(ARGV, first, last)}
  local mine = redis.call('SMISMEMBER', owned, unpack(acked))
  local kept = {}
  for k, id in ipairs(acked) do
    if mine[k] == 1 then kept[#kept + 1] = id end
  end
  if #kept > 0 then
    redis.call('SREM', owned, unpack(kept))
    redis.call('HDEL', prefix .. 'msg', unpack(kept))
    redis.call('HDEL', prefix .. 'route', unpack(kept))
    redis.call('HDEL', prefix .. 'redelivered', unpack(kept))
  end
end
local ids = {}
local routes = {}
local next_due = nil
for i = 9 + nacks, #ARGV do
  local queue = ARGV[i]
  local delayed = prefix .. 'delayed:' .. queue
  local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, 1000)
  for _, id in ipairs(due) do
    -- a missing or garbage route (or id) still promotes: the claim repairs the route
    local route = redis.call('HGET', prefix .. 'route', id)
    local priority = route and tonumber(string.match(route, '\n(%d)$')) or 0
    redis.call('ZADD', prefix .. 'q:' .. queue, (9 - priority) * 1099511627776 + (tonumber(id) or 0), id)
    redis.call('ZREM', delayed, id)
  end
  if #ids < limit then
    local popped = redis.call('ZPOPMIN', prefix .. 'q:' .. queue, limit - #ids)
    if #popped > 0 then
      redis.call('LTRIM', prefix .. 'wake:' .. queue, #popped / 2, -1)
    end
    for j = 1, #popped, 2 do
      ids[#ids + 1] = popped[j]
      -- the route a requeue or recovery will need: the queue it came from
      routes[#ids] = queue .. '\n' .. math.max(0, math.min(9, 9 - math.floor((tonumber(popped[j + 1]) or 0) / 1099511627776)))
    end
  end
  if #ids == 0 then
    local first = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
    if first[2] and (next_due == nil or tonumber(first[2]) < next_due) then
      next_due = tonumber(first[2])
    end
  end
end
if #ids == 0 then
  if next_due then
    return {'due', tostring(next_due)}
  end
  return {}
end
redis.call('SADD', owned, unpack(ids))
redis.call('SET', prefix .. 'claim:' .. token, table.concat(ids, ','), 'EX', 86400)
local envelopes = redis.call('HMGET', prefix .. 'msg', unpack(ids))
local stored = redis.call('HMGET', prefix .. 'route', unpack(ids))
for k, id in ipairs(ids) do
  -- settle.lua and recover.lua cannot requeue an id whose route is garbage
  if stored[k] ~= routes[k] then
    redis.call('HSET', prefix .. 'route', id, routes[k])
  end
end
local redelivered = redis.call('HMGET', prefix .. 'redelivered', unpack(ids))
local out = {}
for k, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = envelopes[k] or false
  out[#out + 1] = redelivered[k] and 1 or 0
end
return out
