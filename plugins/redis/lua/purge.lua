-- Delete every waiting (due or delayed) message of queues.  ARGV: prefix, queue...
local prefix = ARGV[1]
local n = 0
for i = 2, #ARGV do
  for _, key in ipairs({prefix .. 'q:' .. ARGV[i], prefix .. 'delayed:' .. ARGV[i]}) do
    local ids = redis.call('ZRANGE', key, 0, -1)
    for _, id in ipairs(ids) do
      redis.call('HDEL', prefix .. 'msg', id)
      redis.call('HDEL', prefix .. 'route', id)
      redis.call('HDEL', prefix .. 'redelivered', id)
    end
    n = n + #ids
    redis.call('DEL', key)
  end
end
return n
