-- snapshot_read.lua: reads what the end-of-day snapshot of one day needs;
-- daemon/snapshots.c computes the running and overdue counts and
-- apply_effects.lua writes them, checking <prefix>snapshot is still as read
-- here.  Reads only; no date or deadline arithmetic: the daemon names the
-- day's end and the day buckets.
--
-- ARGV: 1 format version of these arguments (include/formats.h)  2 prefix
-- 3 the day's end (epoch ms: 24:00 local)  4 D, then D day-bucket names
-- (YYYY-MM-DD) of the days after it, up to the daemon's day.
-- Returns { the snapshot marker (<prefix>snapshot) or false,
--           then per running count <prefix>active:<rule>:<unit> listed in
--           <prefix>running (members "<rule>:<unit>"):
--           "<rule>:<unit>", the count, how many of its overdue list
--           (<prefix>overdue:<rule>:<unit>) have a deadline before the day's
--           end, then per day bucket <prefix>d:<day>:<unit> its
--           started.<rule>, stopped.<rule> and unlisted.<rule> (or false) }.

if ARGV[1] ~= '@SCRIPT_ARGS_VERSION@' then
    return redis.error_reply('VERSION arguments of format ' .. tostring(ARGV[1]) ..
                             ', this script reads @SCRIPT_ARGS_VERSION@')
end
local prefix, day_end, day_count = ARGV[2], ARGV[3], tonumber(ARGV[4])
local reply = {redis.call('GET', prefix .. 'snapshot')}
for _, name in ipairs(redis.call('SMEMBERS', prefix .. 'running')) do
    local rule, unit = name:match('^([^:]+):(.+)$')
    if rule then
        reply[#reply + 1] = name
        reply[#reply + 1] = redis.call('GET', prefix .. 'active:' .. name)
        reply[#reply + 1] = redis.call('ZCOUNT', prefix .. 'overdue:' .. name, '-inf',
                                       '(' .. day_end)
        for d = 1, day_count do
            local values = redis.call('HMGET', prefix .. 'd:' .. ARGV[4 + d] .. ':' .. unit,
                                      'started.' .. rule, 'stopped.' .. rule,
                                      'unlisted.' .. rule)
            reply[#reply + 1] = values[1]
            reply[#reply + 1] = values[2]
            reply[#reply + 1] = values[3]
        end
    end
end
return reply
