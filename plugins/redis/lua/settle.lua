-- Ack, reject or requeue ids owned by a consumer.  ARGV: prefix, consumer, mode, id...
-- mode "ack"/"drop": forget the message; mode "requeue": back to its queue.
-- Only ids this consumer still owns: after its lease lapsed they may be
-- another consumer's, whose copy must stay.
local prefix, consumer, mode = ARGV[1], ARGV[2], ARGV[3]
local owned = prefix .. 'owned:' .. consumer
local n = 0
for i = 4, #ARGV do
  local id = ARGV[i]
  local mine = redis.call('SREM', owned, id) == 1
  if mode == 'requeue' then
    if mine then
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
  elseif mine then
    redis.call('HDEL', prefix .. 'msg', id)
    redis.call('HDEL', prefix .. 'route', id)
    redis.call('HDEL', prefix .. 'redelivered', id)
    n = n + 1
  end
end
return n
