-- Store task metas in one call.  ARGV: expiry in ms (0: none), then per meta:
-- key, serialized meta, and what to announce on the key's channel: "0" nothing
-- (a state that is not ready), "1" the meta itself, else that short notice
-- (a large meta: a subscriber's output buffer must not hold it; waiters GET it).
local px = tonumber(ARGV[1])
for i = 2, #ARGV, 3 do
  if px > 0 then
    redis.call('SET', ARGV[i], ARGV[i + 1], 'PX', px)
  else
    redis.call('SET', ARGV[i], ARGV[i + 1])
  end
  local announce = ARGV[i + 2]
  if announce == '1' then
    redis.call('PUBLISH', ARGV[i], ARGV[i + 1])
  elseif announce ~= '0' then
    redis.call('PUBLISH', ARGV[i], announce)
  end
end
return (#ARGV - 1) / 3
