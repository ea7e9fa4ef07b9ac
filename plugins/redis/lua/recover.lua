-- Give back the messages of consumers whose heartbeat is older than the lease,
-- by Redis's clock (every consumer's heartbeat is too: renew.lua, fetch.lua).
-- ARGV: prefix, lease timeout (seconds).  Returns how many messages went back.
local prefix = ARGV[1]
local t = redis.call('TIME')
local cutoff = tonumber(t[1]) + tonumber(t[2]) / 1000000 - tonumber(ARGV[2])
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
