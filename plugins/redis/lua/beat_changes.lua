-- What changed after a cursor, read in one step.  ARGV: prefix, cursor.
-- Returns {cursor, 'all'} when the cursor is unknown (ahead of the store's, or from before
-- pruned tombstones): the caller loads everything.  Otherwise {cursor, 'some', then per name
-- changed: name, definition (nil: removed), source, changed_at, last_run, last_task, count}.
-- Fields another program wrote wrong come back nil or as they are: the caller decodes with care.
local p, since = ARGV[1], tonumber(ARGV[2])

local function read(command, key, ...)  -- nil when missing or when the key has another type
  local value = redis.pcall(command, key, ...)
  if type(value) == 'table' and value.err then return false end
  return value
end

local cursor = math.floor(tonumber(read('GET', p .. 'cursor')) or 0)
local floor = tonumber(read('GET', p .. 'floor')) or 0
if since > cursor or since < floor then
  return {cursor, 'all'}
end
local names = read('ZRANGEBYSCORE', p .. 'versions', '(' .. since, '+inf')
if not names then
  return {cursor, 'all'}
end
local out = {cursor, 'some'}
for _, name in ipairs(names) do
  out[#out + 1] = name
  for _, hash in ipairs({'defs', 'source', 'changed_at', 'last_run', 'last_task', 'count'}) do
    local value = read('HGET', p .. hash, name)
    if type(value) ~= 'string' then value = false end
    out[#out + 1] = value
  end
end
return out
