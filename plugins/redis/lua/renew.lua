-- Renew a consumer's lease, timed by Redis's clock.  ARGV: prefix, consumer, register.
-- register "1" starts the lease of a new consumer; "0" renews only a live one:
-- a consumer that recover.lua found lapsed is not taken back (its messages may
-- be running elsewhere).  Returns 1, or 0 when the lease had lapsed.
local prefix, consumer, register = ARGV[1], ARGV[2], ARGV[3]
local consumers = prefix .. 'consumers'
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
if register == '1' then
  redis.call('ZADD', consumers, now, consumer)
  return 1
end
if redis.call('ZADD', consumers, 'XX', 'CH', now, consumer) == 1
    or redis.call('ZSCORE', consumers, consumer) then
  return 1
end
return 0
