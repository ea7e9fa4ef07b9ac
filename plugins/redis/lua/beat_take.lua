-- Workers take runs before running copies of their messages (take_runs in schedule_store.py).
-- ARGV: prefix, then per run: run id ('<scheduled_at>|<name>'), send id.  A run that has a
-- record (in <prefix>run) and no mark yet (in <prefix>taken, a hash: run id -> send id) gets
-- the send id as its mark.  Returns one item per run: its mark, or 0 when there is no record
-- or a key holds another type (another program wrote it): nothing to drop a copy for.
local p = ARGV[1]
local marks = {}
for i = 2, #ARGV, 2 do
  local id, send = ARGV[i], ARGV[i + 1]
  local mark = 0
  if redis.pcall('HEXISTS', p .. 'run', id) == 1 then
    local current = redis.pcall('HGET', p .. 'taken', id)
    if current == false then
      if type(redis.pcall('HSET', p .. 'taken', id, send)) == 'number' then
        mark = send
      end
    elseif type(current) == 'string' then
      mark = current
    end
  end
  marks[#marks + 1] = mark
end
return marks
