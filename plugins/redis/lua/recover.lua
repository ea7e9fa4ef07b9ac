-- Give back the messages of consumers whose heartbeat is older than the lease.
-- ARGV: prefix, cutoff.  Returns how many messages went back.
local prefix, cutoff = ARGV[1], tonumber(ARGV[2])
local lapsed = redis.call('ZRANGEBYSCORE', prefix .. 'consumers', '-inf', '(' .. cutoff)
local n = 0
for _, consumer in ipairs(lapsed) do
  local owned = prefix .. 'owned:' .. consumer
  for _, id in ipairs(redis.call('SMEMBERS', owned)) do
    local route = redis.call('HGET', prefix .. 'route', id)
    if route then
      local queue, priority = string.match(route, '^(.*)\n(%d+)$')
      redis.call('ZADD', prefix .. 'q:' .. queue, (9 - tonumber(priority)) * 1099511627776 + tonumber(id), id)
      redis.call('HSET', prefix .. 'redelivered', id, 1)
      n = n + 1
      redis.call('RPUSH', prefix .. 'wake:' .. queue, 1)  -- wake a waiting consumer
      redis.call('LTRIM', prefix .. 'wake:' .. queue, -64, -1)
    end
  end
  redis.call('DEL', owned)
  redis.call('ZREM', prefix .. 'consumers', consumer)
end
return n
