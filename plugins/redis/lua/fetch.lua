-- Claim up to `limit` due messages from queues (in order) for one consumer.
-- ARGV: prefix, consumer, now, limit, token, previous token, queue...
-- The claimed ids are also kept under claim:<token> until the next fetch, so a
-- consumer whose connection dropped before the reply arrived can take them
-- back (reclaim.lua) instead of leaving them owned and unseen.
-- Due delayed messages of these queues are promoted first; every claimed id is
-- recorded in the consumer's owned set in the same step, so a crash can only
-- leave a message owned (and recovered when the lease lapses), never lost.
local prefix, consumer, now, limit = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local token, previous = ARGV[5], ARGV[6]
local owned = prefix .. 'owned:' .. consumer
redis.call('ZADD', prefix .. 'consumers', now, consumer)
if previous ~= '' then
  redis.call('DEL', prefix .. 'claim:' .. previous)
end
local ids = {}
for i = 7, #ARGV do
  local queue = ARGV[i]
  local delayed = prefix .. 'delayed:' .. queue
  local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, 1000)
  for _, id in ipairs(due) do
    local route = redis.call('HGET', prefix .. 'route', id)
    if route then
      local priority = tonumber(string.match(route, '\n(%d+)$')) or 0
      redis.call('ZADD', prefix .. 'q:' .. queue, (9 - priority) * 1099511627776 + tonumber(id), id)
    end
    redis.call('ZREM', delayed, id)
  end
  if #ids < limit then
    local popped = redis.call('ZPOPMIN', prefix .. 'q:' .. queue, limit - #ids)
    for j = 1, #popped, 2 do
      ids[#ids + 1] = popped[j]
    end
  end
end
if #ids == 0 then
  return {}
end
redis.call('SADD', owned, unpack(ids))
redis.call('SET', prefix .. 'claim:' .. token, table.concat(ids, ','), 'EX', 86400)
local envelopes = redis.call('HMGET', prefix .. 'msg', unpack(ids))
local redelivered = redis.call('HMGET', prefix .. 'redelivered', unpack(ids))
local out = {}
for k, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = envelopes[k] or false
  out[#out + 1] = redelivered[k] and 1 or 0
end
return out
