-- Store task metas in one call.  ARGV: expiry in ms (0: none), then per meta:
-- key, serialized meta, "1" to publish it on the key's channel (a ready state).
local px = tonumber(ARGV[1])
for i = 2, #ARGV, 3 do
  if px > 0 then
    redis.call('SET', ARGV[i], ARGV[i + 1], 'PX', px)
  else
    redis.call('SET', ARGV[i], ARGV[i + 1])
  end
  if ARGV[i + 2] == '1' then
    redis.call('PUBLISH', ARGV[i], ARGV[i + 1])
  end
end
return (#ARGV - 1) / 3
