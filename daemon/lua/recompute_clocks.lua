-- recompute_clocks.lua: writes the deadlines of provisional clocks that the
-- daemon recomputed after the holiday calendar changed (daemon/provisional.c:
-- an official year replaced a provisional one and duewatchd reloaded), and
-- re-arms their levels with the calendar in force.
--
-- ARGV: 1 prefix  2 now (epoch ms: wall time, or event time in event mode)
-- 3 clock mode (wall|event)  4 calendar  5 rules  6 counter ttl (s)
-- 7 partition "<topic>:<partition>"  8 clock count N, then N clocks of 7:
--   rule, key, entry (its <prefix>provisional:<partition> field as the daemon
--   read it), record (the clock's value as the daemon read it), new last
--   day, new base deadline (ms, before pauses), still provisional (1|0).
-- A clock is written only when its entry and record are still what the
-- daemon read (a batch may have extended or stopped it since: the daemon
-- reads it again); a clock that no longer exists loses its entry.  As after
-- an extension, the levels already sent stay sent; the levels still ahead
-- are armed for the new deadline, red repeats counting again from it when
-- the deadline moved.  Nothing is emitted here: claim_due.lua fires what is
-- due.
-- Returns { written, skipped (changed since read), earliest due armed or -1,
--           calendar gaps }.

-- @include lib/clock_lib.lua

local prefix = ARGV[1]
local ctx = new_context(prefix, ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], 0)
local partition = ARGV[7]
local count = tonumber(ARGV[8])
local list_key = provisional_key(ctx, partition)
local written, skipped = 0, 0

for i = 0, count - 1 do
    local at = 9 + i * 7
    local rule = ctx.rules[ARGV[at]]
    local key, entry, record = ARGV[at + 1], ARGV[at + 2], ARGV[at + 3]
    local member = ARGV[at] .. ':' .. key
    local text = rule and redis.call('GET', clock_key(ctx, rule, key))
    if rule == nil or redis.call('HGET', list_key, member) ~= entry or
            (text and text ~= record) then
        skipped = skipped + 1 -- changed since read (or the rule is not in force)
    elseif not text then
        redis.call('HDEL', list_key, member) -- the clock stopped
    else
        local c = split_record(text)
        local deadline = deadline_of(c)
        c.last_day = tonumber(ARGV[at + 4])
        c.base_deadline = tonumber(ARGV[at + 5])
        if deadline_of(c) ~= deadline then
            if c.fired >= 2 then c.seq = 0 end
            if ctx.now >= 0 then update_overdue(ctx, rule, key, c, ctx.now) end
        end
        rearm(ctx, rule, key, c)
        save_clock(ctx, rule, key, c)
        if ARGV[at + 6] ~= '1' then redis.call('HDEL', list_key, member) end
        written = written + 1
    end
end

return reply_tail(ctx, {written, skipped})
