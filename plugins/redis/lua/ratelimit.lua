-- take_tokens: a token bucket shared by every worker, timed by the server's clock.
-- ARGV: prefix, key, rate (tokens/s), capacity, wanted -> {granted, wait seconds}
local k = ARGV[1] .. 'bucket:' .. ARGV[2]
local rate, cap, wanted = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local b = redis.call('HMGET', k, 'tokens', 'ts')
local tokens = tonumber(b[1]) or cap
local ts = tonumber(b[2]) or now
tokens = math.min(cap, tokens + math.max(0, now - ts) * rate)
local granted = math.min(wanted, math.floor(tokens))
tokens = tokens - granted
redis.call('HSET', k, 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', k, math.ceil(cap / rate * 1000) + 60000)
local wait = 0
if tokens < 1 then wait = (1 - tokens) / rate end
return {granted, tostring(wait)}
