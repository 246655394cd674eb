-- claim_due.lua: fires the clock levels that are due, atomically moving each
-- alert into its partition's outbox.  Called by daemon/alerts.c when the
-- timer for the next due clock fires (wall mode) or event time advances
-- (event mode), for the partitions this instance owns.
--
-- ARGV: 1 prefix  2 now (epoch ms)  3 clock mode (wall|event)  4 budget (most
-- alerts to claim)  5 calendar  6 rules  7 counter ttl (s)  8 partition count
-- P, then P partitions "<topic>:<partition>".
-- In event mode every level fires in order, as a live run would have.  In
-- wall mode every level (and red repeat) that fell due after the partition's
-- last complete claim fires in order too, however long nobody claimed for it
-- (a daemon down, a Kafka outage that revoked the partition, a rebalance);
-- only levels already due by then collapse to the latest of them (a clock
-- that started with levels past: backfill, late data).  That instant is kept
-- per partition in <prefix>claimed (hash "<topic>:<partition>" -> epoch ms)
-- and moves on only once a claim has gone through all of the partition's due
-- clocks (not when the budget ran out part way).
-- Returns { more (1 when the budget ran out), earliest due still armed in
-- these partitions or -1, calendar gaps, partition, alert id, payload, ... }.

-- @include lib/clock_lib.lua

local prefix = ARGV[1]
local now = tonumber(ARGV[2])
local ctx = new_context(prefix, now, ARGV[3], ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[4]))
local partition_count = tonumber(ARGV[8])
local unknown_rules = 0
local claimed_key = prefix .. 'claimed'

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
    -- Wall mode: every level due up to `since` was claimed already.
    local since = nil
    if ctx.wall then since = tonumber(redis.call('HGET', claimed_key, partition)) end
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
                fire_through(ctx, rule, key, c, now, ctx.wall, since)
                rearm(ctx, rule, key, c)
                save_clock(ctx, rule, key, c)
            end
        end
        forget_if_empty(index_key, bucket)
    end
    -- A claim that used up its budget may have left clocks due in this
    -- partition and skips the partitions after it: they keep their instant
    -- (the daemon claims again at once).
    if ctx.wall and ctx.budget > 0 and (since == nil or now > since) then
        redis.call('HSET', claimed_key, partition, now)
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
