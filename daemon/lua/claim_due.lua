-- claim_due.lua: fires the clock levels that are due, atomically moving each
-- alert into its partition's outbox.  Called by daemon/alerts.c when the
-- timer for the next due clock fires (wall mode) or event time advances
-- (event mode), for the partitions this instance owns.
--
-- ARGV: 1 prefix  2 now (epoch ms)  3 clock mode (wall|event)  4 budget (most
-- alerts to claim)  5 calendar  6 rules  7 counter ttl (s)  8 partition count
-- P, then P partitions "<topic>:<partition>".
-- In wall mode a clock that is several levels (or red repeats) behind fires
-- only the latest of them; in event mode every level fires in order, as a live
-- run would have.
-- Returns { more (1 when the budget ran out), earliest due still armed in
-- these partitions or -1, calendar gaps, partition, alert id, payload, ... }.

-- @include lib/clock_lib.lua

local prefix = ARGV[1]
local now = tonumber(ARGV[2])
local ctx = new_context(prefix, now, ARGV[3], ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[4]))
local partition_count = tonumber(ARGV[8])
local unknown_rules = 0

-- Stops leave emptied buckets listed in the index (see unindex): drop one
-- when it is found empty.
local function forget_if_empty(index_key, bucket)
    local bucket_key = index_key .. ':' .. bucket
    if redis.call('EXISTS', bucket_key) == 0 then
        redis.call('ZREM', index_key, bucket)
        ctx.listed_buckets[bucket_key] = nil
    end
end

for p = 1, partition_count do
    local partition = ARGV[8 + p]
    local index_key = prefix .. 'due:' .. partition
    local buckets = redis.call('ZRANGEBYSCORE', index_key, '-inf', now)
    for _, bucket in ipairs(buckets) do
        if ctx.budget <= 0 then break end
        local members = redis.call('ZRANGEBYSCORE', index_key .. ':' .. bucket, '-inf', now)
        for _, member in ipairs(members) do
            if ctx.budget <= 0 then break end
            local rule_name, key = string.match(member, '^([^:]+):(.+)$')
            local rule = ctx.rules[rule_name]
            local c = rule and load_clock(ctx, rule, key)
            if rule == nil or c == nil then
                -- A rule removed by a reload, or an index entry left behind:
                -- drop the entry so it does not block the timer.
                unknown_rules = unknown_rules + 1
                redis.call('ZREM', index_key .. ':' .. bucket, member)
            else
                fire_through(ctx, rule, key, c, now, ctx.wall)
                rearm(ctx, rule, key, c)
                save_clock(ctx, rule, key, c)
            end
        end
        forget_if_empty(index_key, bucket)
    end
end
ctx.flush()

-- The earliest due left in these partitions, for the next timer.
local earliest = nil
for p = 1, partition_count do
    local index_key = prefix .. 'due:' .. ARGV[8 + p]
    while true do
        local first = redis.call('ZRANGE', index_key, 0, 0)
        if not first[1] then break end
        local head = redis.call('ZRANGE', index_key .. ':' .. first[1], 0, 0, 'WITHSCORES')
        if head[2] then
            local due = tonumber(head[2])
            if earliest == nil or due < earliest then earliest = due end
            break
        end
        forget_if_empty(index_key, first[1])
    end
end
ctx.earliest = earliest
return reply_tail(ctx, {ctx.budget <= 0 and 1 or 0})
