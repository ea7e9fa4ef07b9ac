-- Take back a batch whose fetch reply was lost.  ARGV: prefix, consumer, token.
-- Returns the ids still owned by this consumer, as fetch.lua does.
local prefix, consumer, token = ARGV[1], ARGV[2], ARGV[3]
local claim = redis.call('GET', prefix .. 'claim:' .. token)
redis.call('DEL', prefix .. 'claim:' .. token)
if not claim then
  return {}
end
local owned = prefix .. 'owned:' .. consumer
local out = {}
for id in string.gmatch(claim, '[^,]+') do
  if redis.call('SISMEMBER', owned, id) == 1 then
    out[#out + 1] = id
    out[#out + 1] = redis.call('HGET', prefix .. 'msg', id) or false
    out[#out + 1] = redis.call('HGET', prefix .. 'redelivered', id) and 1 or 0
  end
end
return out
