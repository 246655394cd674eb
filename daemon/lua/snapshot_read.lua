-- snapshot_read.lua: reads what the end-of-day snapshot of one day needs;
-- daemon/snapshots.c computes the running and overdue counts and
-- apply_effects.lua writes them, checking <prefix>snapshot is still as read
-- here.  Reads only; no date or deadline arithmetic: the daemon names the
-- day's end and the days after it.
--
-- ARGV: 1 format version of these arguments (include/formats.h)  2 prefix
-- 3 the day's end (epoch ms: 24:00 local)  4 D, then D days (YYYY-MM-DD)
-- after it, up to the daemon's day.
-- Returns { the snapshot marker (<prefix>snapshot) or false,
--           { per running count listed in <prefix>running (members
--             "<rule>:<unit>"): the name, <prefix>active:<name> (or false),
--             how many of <prefix>overdue:<name> have a deadline before the
--             day's end },
--           then per day after it: HGETALL <prefix>changes:<day> (fields
--           "<rule>:<unit>:started|stopped"), and the members of
--           <prefix>unlisted:<day> and <prefix>relisted:<day> scored before
--           the day's end }.

if ARGV[1] ~= '@SCRIPT_ARGS_VERSION@' then
    return redis.error_reply('VERSION arguments of format ' .. tostring(ARGV[1]) ..
                             ', this script reads @SCRIPT_ARGS_VERSION@')
end
local prefix, before_end, day_count = ARGV[2], '(' .. ARGV[3], tonumber(ARGV[4])
local counts = {}
for _, name in ipairs(redis.call('SMEMBERS', prefix .. 'running')) do
    counts[#counts + 1] = name
    counts[#counts + 1] = redis.call('GET', prefix .. 'active:' .. name)
    counts[#counts + 1] = redis.call('ZCOUNT', prefix .. 'overdue:' .. name, '-inf', before_end)
end
local reply = {redis.call('GET', prefix .. 'snapshot'), counts}
for d = 1, day_count do
    local day = ARGV[4 + d]
    reply[#reply + 1] = redis.call('HGETALL', prefix .. 'changes:' .. day)
    reply[#reply + 1] = redis.call('ZRANGEBYSCORE', prefix .. 'unlisted:' .. day, '-inf', before_end)
    reply[#reply + 1] = redis.call('ZRANGEBYSCORE', prefix .. 'relisted:' .. day, '-inf', before_end)
end
return reply
