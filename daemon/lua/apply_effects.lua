-- apply_effects.lua: checks that what the daemon read is still current and
-- writes what it computed, atomically.  Called by duewatchd for every batch
-- of events, every claim of due alerts and every recompute of provisional
-- clocks; the daemon has computed every effect (daemon/clock_engine.c) and
-- built this call (daemon/effects.c).  No date, calendar or deadline
-- arithmetic lives here: the script checks and writes.
-- Its twin: redis_module/duewatch_module.c's DUEWATCH.APPLY takes the same
-- arguments and does the same in C, for a Redis that loads duewatch's module
-- (README "The Redis module"); the daemon writes through it when Redis has
-- it.  A change to the call is made in both, and
-- tests/e2e/test_redis_module.py holds them to the same replies and writes.
--
-- ARGV (1-based):
--   1 format version of these arguments (include/formats.h; a call of
--     another version is refused: daemons of two releases never misread
--     each other)
--   2 fence chain ('' = none)  3 fence position (see below)
--   4 check count C, then C checks:
--       V key value          the string key holds exactly value
--       A key                the key does not exist
--       H key field value    the hash field holds exactly value
--       h key field          the hash field does not exist
--   then commands, each: name, argument count N, N arguments.  Names are
--   Redis write commands from an allow list, HINCRBYS key field amount ...
--   (HINCRBY of each field: counters, their key given once), FORGET index bucket_key
--   bucket (ZREM index bucket when bucket_key no longer exists), and
--   DISTINCT members count_key count_field member... (HSET members member 1
--   ...; HINCRBY count_key count_field by the number of members new to the
--   hash: a distinct count).
-- A failed check changes nothing and fails with STALE (the daemon reads
-- again and recomputes): a claim or a recompute may have changed a clock
-- between a batch's read and its write, and the reverse.
-- The fence lets the daemon send a batch before the one ahead of it has
-- answered: batches sent back to back form a chain (a name unique to the
-- sender), numbered from 1, and a batch at position n > 1 applies only if
-- <prefix>fence:<chain> (the chain name carries the prefix) says n - 1,
-- i.e. the batch ahead of it applied; otherwise it changes nothing and fails
-- with STALE.
-- (Over maxmemory, Redis refuses a script at its first write, before it has
-- written anything, and lets a script that has written finish.)
-- Returns the number of commands written.

if ARGV[1] ~= '@SCRIPT_ARGS_VERSION@' then
    return redis.error_reply('VERSION arguments of format ' .. tostring(ARGV[1]) ..
                             ', this script reads @SCRIPT_ARGS_VERSION@')
end
local FENCE_TTL = 600 -- s: a chain lives as long as batches follow each other
local fence_key, fence_position = ARGV[2], tonumber(ARGV[3])
if fence_key ~= '' and fence_position > 1 and
        tonumber(redis.call('GET', fence_key)) ~= fence_position - 1 then
    return redis.error_reply('STALE the batch ahead of this one did not apply')
end

local at = 5
for _ = 1, tonumber(ARGV[4]) do
    local kind, key = ARGV[at], ARGV[at + 1]
    local found, expected
    if kind == 'V' or kind == 'A' then
        found = redis.call('GET', key)
        expected = kind == 'V' and ARGV[at + 2] or false
        at = at + (kind == 'V' and 3 or 2)
    else
        found = redis.call('HGET', key, ARGV[at + 2])
        expected = kind == 'H' and ARGV[at + 3] or false
        at = at + (kind == 'H' and 4 or 3)
    end
    if found ~= expected then
        return redis.error_reply('STALE ' .. key .. ' changed since it was read')
    end
end

local ALLOWED = {MSET = true, DEL = true, ZADD = true, ZREM = true, HSET = true, HDEL = true,
                 HINCRBYS = true, INCRBY = true, EXPIRE = true, SADD = true, FORGET = true,
                 DISTINCT = true}
-- Every command is looked at before the first write: all or nothing.
local first = at
while at <= #ARGV do
    local name, count = ARGV[at], tonumber(ARGV[at + 1])
    if not ALLOWED[name] or count == nil or count < 1 or at + 1 + count > #ARGV or
            (name == 'DISTINCT' and count < 4) or (name == 'FORGET' and count ~= 3) or
            (name == 'HINCRBYS' and (count < 3 or count % 2 == 0)) then
        return redis.error_reply('ERR apply_effects: command ' .. tostring(name) ..
                                 ' is not allowed or malformed')
    end
    at = at + 2 + count
end
at = first
local written = 0
while at <= #ARGV do
    local name, count = ARGV[at], tonumber(ARGV[at + 1])
    if name == 'HINCRBYS' then
        local key = ARGV[at + 2]
        for i = at + 3, at + 1 + count, 2 do
            redis.call('HINCRBY', key, ARGV[i], ARGV[i + 1])
        end
    elseif name == 'DISTINCT' then
        local members = {}
        for i = at + 5, at + 1 + count do
            members[#members + 1] = ARGV[i]
            members[#members + 1] = '1'
        end
        local added = redis.call('HSET', ARGV[at + 2], unpack(members))
        if added > 0 then
            redis.call('HINCRBY', ARGV[at + 3], ARGV[at + 4], added)
        end
    elseif name == 'FORGET' then
        if redis.call('EXISTS', ARGV[at + 3]) == 0 then
            redis.call('ZREM', ARGV[at + 2], ARGV[at + 4])
        end
    else
        redis.call(name, unpack(ARGV, at + 2, at + 1 + count))
    end
    written = written + 1
    at = at + 2 + count
end

if fence_key ~= '' then
    redis.call('SET', fence_key, ARGV[3], 'EX', FENCE_TTL)
end
return written
