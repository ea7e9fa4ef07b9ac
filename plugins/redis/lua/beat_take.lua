-- A worker takes a run before running a copy of its message (take_run in schedule_store.py).
-- ARGV: prefix, run id ('<scheduled_at>|<name>'), send id.  A run that has a record (in
-- <prefix>run) and no mark yet (in <prefix>taken, a hash: run id -> send id) gets the send id
-- as its mark.  Returns the mark, or false: no record, or a key another program wrote with
-- another type (then nothing is known to drop a copy for).
local p, id, send = ARGV[1], ARGV[2], ARGV[3]
if redis.pcall('HEXISTS', p .. 'run', id) ~= 1 then
  return false
end
local mark = redis.pcall('HGET', p .. 'taken', id)
if mark == false then
  if type(redis.pcall('HSET', p .. 'taken', id, send)) ~= 'number' then
    return false
  end
  return send
end
if type(mark) ~= 'string' then
  return false
end
return mark
