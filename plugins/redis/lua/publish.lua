-- Publish a batch.  ARGV: prefix, then per message: queue, priority, eta (or ""), envelope.
-- A message gets an id from <prefix>seq; due messages go in the queue's sorted set
-- (score orders by priority, then arrival), others in the queue's delayed set (score = eta).
local prefix = ARGV[1]
local n = 0
for i = 2, #ARGV, 4 do
  local queue, priority, eta, envelope = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2], ARGV[i + 3]
  local id = redis.call('INCR', prefix .. 'seq')
  redis.call('HSET', prefix .. 'msg', id, envelope)
  redis.call('HSET', prefix .. 'route', id, queue .. '\n' .. priority)
  if eta ~= '' then
    redis.call('ZADD', prefix .. 'delayed:' .. queue, tonumber(eta), id)
  else
    redis.call('ZADD', prefix .. 'q:' .. queue, (9 - priority) * 1099511627776 + id, id)
  end
  n = n + 1
end
return n
