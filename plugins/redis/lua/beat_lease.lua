-- The beat leader's lease: one key, <prefix>lease = holder, timed by Redis's expiry (its clock).
-- ARGV: prefix, mode, holder, ttl in ms.  'acquire' takes a free or lapsed lease or renews the
-- holder's (1), else 0; a key that is no string or has no expiry (written by another program)
-- counts as free.  'release' deletes it if the holder has it.  'read': {holder, ms left} or {}.
local key, mode, holder = ARGV[1] .. 'lease', ARGV[2], ARGV[3]
local current = redis.pcall('GET', key)
if type(current) ~= 'string' or redis.call('PTTL', key) < 0 then
  current = false
end
if mode == 'acquire' then
  if current and current ~= holder then return 0 end
  redis.call('SET', key, holder, 'PX', tonumber(ARGV[4]))
  return 1
elseif mode == 'release' then
  if current == holder then redis.call('DEL', key) end
  return 0
elseif mode == 'read' then
  if not current then return {} end
  return {current, redis.call('PTTL', key)}
end
return redis.error_reply('beat_lease: unknown mode ' .. tostring(mode))
