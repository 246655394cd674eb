-- apply_batch.lua: applies one batch of validated events to Redis atomically.
--
-- Called as EVALSHA <sha> 0 ARGV... by daemon/ingest.c (layout built by
-- daemon/batch.c).  Every effect of every event in the batch -- counters,
-- clock changes, alerts claimed into the outbox -- and the partitions' next
-- offsets commit together, so a crash or a lost connection never leaves half
-- a batch behind.  (Over maxmemory, Redis refuses a script at its first write,
-- before it has written anything, and lets a script that has written finish.)
--
-- Exactly once: an event's effects apply only when `SET <prefix>ev:<id> 1 NX EX
-- ttl` succeeds; a redelivered event finds its id and changes nothing.
-- Counter increments are summed per (key, field) and written once per batch:
-- Redis's cost is the number of writes, so per event there is the dedupe SET
-- and, for the few events that touch a clock, the clock's writes.
--
-- ARGV layout (1-based):
--   1 prefix  2 dedupe ttl (s)  3 counter ttl (s)  4 group count G
--   5 event count E  6 offset count O  7 clock mode (wall|event)
--   8 now (epoch ms: wall time, or event time in event mode; -1 unknown)
--   9 calendar  10 rules  (formats in lib/clock_lib.lua)
--   then G groups of 7: unit, type, day, week, month, hour index, minute index
--        (hour/minute index "" = outside the sliding windows)
--   then O offsets of 2: "<topic>:<partition>", next offset
--   then E events: id ('' for clock.tick), group number (1-based; 0 = none),
--        ts, partition number (1-based, into the offsets), op count, then ops:
--        S rule key keykind unit case subject last_day base_deadline partition
--        X rule key keykind type          (stop)
--        E rule key days                  (extend)
--        P rule key                       (pause)
--        R rule key                       (resume)
-- Each partition's event time (the highest ts applied) is kept in
-- <prefix>eventtime, hash "<topic>:<partition>" -> ms.
-- Returns { applied, duplicates, earliest due armed or -1, calendar gaps,
--           partition, alert id, payload, ... }.

-- @include lib/clock_lib.lua

local prefix = ARGV[1]
local dedupe_ttl = ARGV[2]
local counter_ttl = ARGV[3]
local group_count = tonumber(ARGV[4])
local event_count = tonumber(ARGV[5])
local offset_count = tonumber(ARGV[6])
local ctx = new_context(prefix, ARGV[8], ARGV[7], ARGV[9], ARGV[10], counter_ttl, 1000000)
local group_base = 11

-- Sliding-window buckets only need to outlive the longest window they serve.
local HOUR_BUCKET_TTL = 31 * 86400 + 7200
local MINUTE_BUCKET_TTL = 7200 + 120

local offset_base = group_base + group_count * 7
local event_base = offset_base + offset_count * 2
local partition_keys = {}
for i = 1, offset_count do
    partition_keys[i] = ARGV[offset_base + (i - 1) * 2]
end

-- Event time per partition: what its events have reached so far (before the
-- event at hand), read once per batch.
local partition_time = {}
local function partition_time_of(number)
    local key = partition_keys[number]
    if partition_time[key] == nil then
        partition_time[key] = tonumber(redis.call('HGET', prefix .. 'eventtime', key)) or -1
    end
    return partition_time[key]
end

-- "Now" as seen by an event: in event mode the time its own partition had
-- reached before it (depending on nothing but the partition's own order, so
-- a replay decides exactly as the live run did however partitions
-- interleave); in wall mode the wall clock.
local function now_for(ts, partition)
    local now = ctx.wall and ctx.now or partition_time_of(partition)
    if now > ts then return now end
    return ts
end

-- The levels a starting clock fires at once, collapsed to the latest: those
-- due by its partition's time (backfill: a start behind its partition).  In
-- wall mode none fire here: the claim that follows the batch fires the
-- latest due level, after the batch's own stops have had their say.
local function backfill_horizon(ts, partition)
    if ctx.wall then return ts end
    return now_for(ts, partition)
end

local function update_overdue(rule, key, c, now)
    local overdue = prefix .. 'overdue:' .. rule.name .. ':' .. c.unit
    if deadline_of(c) > now then
        redis.call('ZREM', overdue, key)
    elseif c.fired >= 2 then
        redis.call('ZADD', overdue, deadline_of(c), key)
    end
end

local function op_start(rule, key, keykind, at, event_id, ts, partition)
    if redis.call('EXISTS', clock_key(ctx, rule, key)) == 1 then
        return -- a second start for a running clock changes nothing
    end
    local stopped = redis.call('GET', prefix .. 'stopped:' .. keykind .. ':' .. key)
    if stopped then
        local stop_type, stop_ts = string.match(stopped, '^([^|]*)|(-?%d+)$')
        if rule.stops[stop_type] and tonumber(stop_ts) >= ts then
            return -- its stop came first: the measure is already over
        end
    end
    local c = {unit = ARGV[at], case = ARGV[at + 1], subject = ARGV[at + 2], cause = event_id,
               started_at = ts, last_day = tonumber(ARGV[at + 3]),
               base_deadline = tonumber(ARGV[at + 4]), paused_total = 0, paused_since = nil,
               fired = -1, seq = 0, next_due = nil, partition = ARGV[at + 5]}
    redis.call('INCR', prefix .. 'active:' .. rule.name .. ':' .. c.unit)
    redis.call('INCR', prefix .. 'active:' .. rule.name .. ':_all')
    -- Backfill or late data: of the levels already past, only the latest fires.
    fire_through(ctx, rule, key, c, backfill_horizon(ts, partition), true)
    rearm(ctx, rule, key, c)
    save_clock(ctx, rule, key, c)
end

local function op_stop(rule, key, event_id, ts)
    local c = load_clock(ctx, rule, key)
    if c == nil then return end
    -- Levels due by the time of the stop fire first, as a live run would have.
    fire_through(ctx, rule, key, c, ts, ctx.wall)
    unindex(ctx, rule, key, c)
    redis.call('DEL', clock_key(ctx, rule, key))
    redis.call('DECR', prefix .. 'active:' .. rule.name .. ':' .. c.unit)
    redis.call('DECR', prefix .. 'active:' .. rule.name .. ':_all')
    redis.call('ZREM', prefix .. 'overdue:' .. rule.name .. ':' .. c.unit, key)
    local late = ts > deadline_of(c)
    local day, week, month = bucket_names(local_day(ctx.calendar, ts))
    local field = 'resolved.' .. rule.name .. (late and '.late' or '.ontime')
    for _, who in ipairs({c.unit, '_all'}) do
        ctx.add(prefix .. 'd:' .. day .. ':' .. who, field, 1, counter_ttl)
        ctx.add(prefix .. 'w:' .. week .. ':' .. who, field, 1, counter_ttl)
        ctx.add(prefix .. 'm:' .. month .. ':' .. who, field, 1, counter_ttl)
    end
    if c.fired >= 0 then
        -- level: the highest that fired; seq 0 (a resolution is not a repeat)
        emit(ctx, rule, key, c, c.fired, 0, ts, 'resolved', event_id, late)
    end
end

local function op_extend(rule, key, days, ts, partition)
    local c = load_clock(ctx, rule, key)
    if c == nil then return end
    fire_through(ctx, rule, key, c, ts, ctx.wall)
    if rule.unit == 's' or rule.unit == 'h' or c.last_day == nil then
        c.base_deadline = c.base_deadline + days * DAY_MS
        if c.last_day ~= nil then c.last_day = c.last_day + days end
    else
        local last = c.last_day + days
        if rule.move or rule.unit == 'w' then
            while not is_working(ctx.calendar, last) do last = last + 1 end
        end
        c.last_day = last
        c.base_deadline = day_start(ctx.calendar, last + 1)
    end
    -- Levels still ahead are armed for the new deadline; red repeats count
    -- again from it.
    if c.fired >= 2 then c.seq = 0 end
    update_overdue(rule, key, c, now_for(ts, partition))
    rearm(ctx, rule, key, c)
    save_clock(ctx, rule, key, c)
end

local function op_pause(rule, key, ts)
    local c = load_clock(ctx, rule, key)
    if c == nil or c.paused_since ~= nil then return end
    fire_through(ctx, rule, key, c, ts, ctx.wall)
    c.paused_since = ts
    unindex(ctx, rule, key, c)
    save_clock(ctx, rule, key, c)
end

local function op_resume(rule, key, ts, partition)
    local c = load_clock(ctx, rule, key)
    if c == nil or c.paused_since == nil then return end
    if ts > c.paused_since then c.paused_total = c.paused_total + (ts - c.paused_since) end
    c.paused_since = nil
    update_overdue(rule, key, c, now_for(ts, partition))
    rearm(ctx, rule, key, c)
    save_clock(ctx, rule, key, c)
end

local OP_WIDTH = {S = 10, X = 5, E = 4, P = 3, R = 3}

local new_per_group = {}
local applied, duplicates = 0, 0
local at = event_base
for _ = 1, event_count do
    local event_id, group, ts = ARGV[at], tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2])
    local partition, op_count = tonumber(ARGV[at + 3]), tonumber(ARGV[at + 4])
    at = at + 5
    local new = false
    if event_id ~= '' then
        new = redis.call('SET', prefix .. 'ev:' .. event_id, '1', 'NX', 'EX', dedupe_ttl)
        if new then
            applied = applied + 1
            if group > 0 then new_per_group[group] = (new_per_group[group] or 0) + 1 end
        else
            duplicates = duplicates + 1
        end
    end
    for _ = 1, op_count do
        local op, rule = ARGV[at], ctx.rules[ARGV[at + 1]]
        local key = ARGV[at + 2]
        if new and rule ~= nil then
            if op == 'S' then
                op_start(rule, key, ARGV[at + 3], at + 4, event_id, ts, partition)
            elseif op == 'X' then
                op_stop(rule, key, event_id, ts)
                redis.call('SET', prefix .. 'stopped:' .. ARGV[at + 3] .. ':' .. key,
                           ARGV[at + 4] .. '|' .. ts, 'EX', dedupe_ttl)
            elseif op == 'E' then
                op_extend(rule, key, tonumber(ARGV[at + 3]), ts, partition)
            elseif op == 'P' then
                op_pause(rule, key, ts)
            elseif op == 'R' then
                op_resume(rule, key, ts, partition)
            end
        end
        at = at + OP_WIDTH[op]
    end
    -- the partition's time moves on after the event (ticks included)
    local partition_key = partition_keys[partition]
    if ts > partition_time_of(partition) then partition_time[partition_key] = ts end
end

for group, n in pairs(new_per_group) do
    local g = group_base + (group - 1) * 7
    local unit, event_type = ARGV[g], ARGV[g + 1]
    local day, week, month = ARGV[g + 2], ARGV[g + 3], ARGV[g + 4]
    local hour, minute = ARGV[g + 5], ARGV[g + 6]
    for _, who in ipairs({unit, '_all'}) do
        ctx.add(prefix .. 'd:' .. day .. ':' .. who, event_type, n, counter_ttl)
        ctx.add(prefix .. 'w:' .. week .. ':' .. who, event_type, n, counter_ttl)
        ctx.add(prefix .. 'm:' .. month .. ':' .. who, event_type, n, counter_ttl)
        if hour ~= '' then
            ctx.add(prefix .. 'wh:' .. hour .. ':' .. who, event_type, n, HOUR_BUCKET_TTL)
        end
        if minute ~= '' then
            ctx.add(prefix .. 'wm:' .. minute .. ':' .. who, event_type, n, MINUTE_BUCKET_TTL)
        end
    end
end
ctx.flush()

if offset_count > 0 then
    local offsets, times = {prefix .. 'offsets'}, {prefix .. 'eventtime'}
    for i = 1, offset_count do
        local key = partition_keys[i]
        offsets[#offsets + 1] = key
        offsets[#offsets + 1] = ARGV[offset_base + (i - 1) * 2 + 1]
        if partition_time[key] ~= nil and partition_time[key] >= 0 then
            times[#times + 1] = key
            times[#times + 1] = partition_time[key]
        end
    end
    redis.call('HSET', unpack(offsets))
    if #times > 1 then redis.call('HSET', unpack(times)) end
end

return reply_tail(ctx, {applied, duplicates})
