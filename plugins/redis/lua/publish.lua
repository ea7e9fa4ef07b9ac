-- Publish a batch.  ARGV: prefix, then per message: queue, priority, eta (or ""), envelope.
-- A message gets an id from <prefix>seq; due messages go in the queue's sorted set
-- (score orders by priority, then arrival), others in the queue's delayed set (score = eta).
-- Each due message also pushes a wake-up token on wake:<queue> (at most 64 kept),
-- which idle consumers wait for with BLPOP instead of polling.
local prefix = ARGV[1]
local n = 0
local woken = {}
for i = 2, #ARGV, 4 do
  local queue, priority, eta, envelope = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2], ARGV[i + 3]
  local id = redis.call('INCR', prefix .. 'seq')
  redis.call('HSET', prefix .. 'msg', id, envelope)
  redis.call('HSET', prefix .. 'route', id, queue .. '\n' .. priority)
  if eta ~= '' then
    redis.call('ZADD', prefix .. 'delayed:' .. queue, tonumber(eta), id)
  else
    redis.call('ZADD', prefix .. 'q:' .. queue, (9 - priority) * 1099511627776 + id, id)
    woken[queue] = (woken[queue] or 0) + 1
  end
  n = n + 1
end
for queue, count in pairs(woken) do
  local wake, tokens = prefix .. 'wake:' .. queue, {}
  for k = 1, math.min(count, 64) do
    tokens[k] = 1
  end
  redis.call('RPUSH', wake, unpack(tokens))
  redis.call('LTRIM', wake, -64, -1)
end
return n
