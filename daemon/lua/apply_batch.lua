-- apply_batch.lua: applies one batch of validated events to Redis atomically.
--
-- Called as EVALSHA <sha> 0 ARGV... by daemon/ingest.c (layout built by
-- daemon/batch.c).  Every effect of every event in the batch -- counters,
-- clock changes, alerts claimed into the outbox -- and the partitions' next
-- offsets commit together, so a crash or a lost connection never leaves half
-- a batch behind.  (Over maxmemory, Redis refuses a script at its first write,
-- before it has written anything, and lets a script that has written finish.)
--
-- Exactly once: an event's effects apply only when its id is in none of the
-- id sets <prefix>ev:<day> (see the dedupe pass below); a redelivered event
-- finds its id and changes nothing.
--
-- Redis's cost is the number of commands (and of arguments), so no command
-- is issued per event: ids are checked and added per batch (SMISMEMBER,
-- SADD), the clocks the ops touch are read with one MGET and written back
-- with one MSET and one DEL, the daemon has grouped the events into counter
-- groups with their sizes, and only the events that touch a clock carry more
-- than their id.  Counter increments, running-clock counts, stop markers
-- (HSET into a per-span hash) and due-index changes (one ZADD and one ZREM
-- per bucket) are summed or collected in Lua and written once per batch, and
-- key strings are made once per batch: in Lua, making a string costs about
-- as much as a command.
-- What is left (make bench, 2 cores, 1M events; its profile times the
-- phases marked below): ~10 us of redis-server CPU per event, ~7.8 of it in
-- the script: clock reads, ops and writes 3.6 (a stop of a running clock ~8
-- us: record parsing, counters; almost half the ops are stops of clocks that
-- do not exist), ids 1.3 (mostly SMISMEMBER and SADD themselves), counters
-- 1.6 (one HINCRBY per distinct key and field, ~1 per event at 5000 events a
-- batch), running counts, stop markers and due index 0.8, the collector 0.4;
-- outside it, ~10 arguments per event and the AOF.  Next step: the clock
-- ops computed by the daemon from the records it reads (this script then
-- only checks they are unchanged and writes), and fewer arguments per event.
-- `-- @phase NAME` lines are comments here; scripts/bench_run.py turns them
-- into timers for `make bench`'s profile of the script by phase.

-- ARGV layout (1-based):
--   1 prefix  2 dedupe ttl (s)  3 counter ttl (s)  4 group count G
--   5 event count E  6 offset count O  7 clock mode (wall|event)
--   8 now (epoch ms: wall time, or event time in event mode; -1 unknown)
--   9 calendar  10 rules (formats in lib/clock_lib.lua)  11 clock event count K
--   12 fence chain ('' = none)  13 fence position (see below)
--   then G groups of 8: unit, type, day, week, month, hour index, minute index
--        (hour/minute index "" = outside the sliding windows), event count
--   then O partitions of 3: "<topic>:<partition>", next offset, highest ts of
--        the batch's events there (clock.tick included; -1 none)
--   then E events of 2: id, group number (1-based)
--   then K clock events: event number (1-based, into the E events), ts,
--        partition number (1-based), highest ts of the partition's earlier
--        events in this batch (-1 none), op count, then the ops:
--        S rule key keykind unit head first_due provisional   (start; see op_start)
--        X rule key keykind type          (stop)
--        E rule key days                  (extend)
--        P rule key                       (pause)
--        R rule key                       (resume)
-- The fence lets the daemon send a batch before the one ahead of it has
-- answered: batches sent back to back form a chain (a name unique to the
-- sender), numbered from 1, and a batch at position n > 1 applies only if
-- <prefix>fence:<chain> says n - 1, i.e. the batch ahead of it applied;
-- otherwise it changes nothing and fails with STALE (the daemon sends it
-- again after the one ahead).
-- Each partition's event time (the highest ts applied) is kept in
-- <prefix>eventtime, hash "<topic>:<partition>" -> ms.
-- Returns { applied, duplicates, earliest due armed or -1, calendar gaps,
--           partition, alert id, payload, ... }.

-- @include lib/clock_lib.lua

-- @phase collector
-- Lua's incremental collector would mark this batch's tables (tens of
-- thousands of strings) again and again while it runs: collect what earlier
-- calls left once, then hold the collector until the script returns.  A
-- script that fails part way leaves it held until the next call collects
-- (Redis's own periodic GC step restarts it too), so garbage stays bounded.
collectgarbage('collect')
collectgarbage('stop')
-- @phase setup
local prefix = ARGV[1]
local dedupe_ttl = ARGV[2]
local counter_ttl = ARGV[3]
local group_count = tonumber(ARGV[4])
local event_count = tonumber(ARGV[5])
local offset_count = tonumber(ARGV[6])
local ctx = new_context(prefix, ARGV[8], ARGV[7], ARGV[9], ARGV[10], counter_ttl, 1000000)
local clock_event_count = tonumber(ARGV[11])
local fence_chain, fence_position = ARGV[12], tonumber(ARGV[13])
local group_base = 14
-- Due-index changes are collected and written per bucket (flush_index).
ctx.index_changes = {}
for name, rule in pairs(ctx.rules) do
    rule.resolved_field = {[true] = 'resolved.' .. name .. '.late',
                           [false] = 'resolved.' .. name .. '.ontime'}
end

local FENCE_TTL = 600 -- s: a chain lives as long as batches follow each other
local fence_key = prefix .. 'fence:' .. fence_chain
if fence_chain ~= '' and fence_position > 1 and
        tonumber(redis.call('GET', fence_key)) ~= fence_position - 1 then
    collectgarbage('restart')
    return redis.error_reply('STALE the batch ahead of this one did not apply')
end

-- Sliding-window buckets only need to outlive the longest window they serve.
local HOUR_BUCKET_TTL = 31 * 86400 + 7200
local MINUTE_BUCKET_TTL = 7200 + 120

local offset_base = group_base + group_count * 8
local event_base = offset_base + offset_count * 3
local clock_event_base = event_base + event_count * 2
local partition_keys = {}
for i = 1, offset_count do
    partition_keys[i] = ARGV[offset_base + (i - 1) * 3]
end

-- Event time per partition as stored before this batch.
local stored_time = {}
if offset_count > 0 then
    local stored = redis.call('HMGET', prefix .. 'eventtime', unpack(partition_keys))
    for i = 1, offset_count do stored_time[i] = tonumber(stored[i]) or -1 end
end

-- "Now" as seen by an event: in event mode the time its own partition had
-- reached before it (depending on nothing but the partition's own order, so
-- a replay decides exactly as the live run did however partitions
-- interleave); in wall mode the wall clock.
local function now_for(ts, partition, before)
    local now = ctx.wall and ctx.now or math.max(stored_time[partition], before)
    if now > ts then return now end
    return ts
end

-- Stop markers ("<keykind>:<key>" -> "type|ts", see the span sets below):
-- those this batch writes, seen by its later starts and written at the end,
-- and those stored before it that its starts look at.
local markers, stored_markers = {}, {}

-- Clock records the batch's ops touch: read with one
-- MGET before the ops, changed here, written back with one MSET and one DEL
-- after them -- a command per clock change would cost more than the change.
-- false = no such key (or deleted by this batch); `dirty` holds what this
-- batch changed (the same values), for the write-back.
local cache, dirty = {}, {}

local function load_cached(clock)
    local text = cache[clock]
    if not text then return nil end
    return split_record(text)
end

local function store_cached(clock, text)
    cache[clock] = text
    dirty[clock] = text
end

-- Wall mode: the instant up to which claim_due.lua claimed every due level
-- of a clock's partition (<prefix>claimed): levels due after it that a
-- stop, extension or pause reaches first fire each, not collapsed (see
-- fire_through).  Read once per partition, when a clock has something due.
local claimed = {}
local function claimed_since(c)
    if not ctx.wall then return nil end
    local since = claimed[c.partition]
    if since == nil then
        since = tonumber(redis.call('HGET', prefix .. 'claimed', c.partition)) or false
        claimed[c.partition] = since
    end
    return since or nil
end

-- Running-clock counts (<prefix>active:<rule>:<unit|_all>), summed.
local active_delta = {}
local function active_key(rule, unit)
    local key = rule.active_keys[unit]
    if key == nil then
        key = rule.active_prefix .. unit
        rule.active_keys[unit] = key
    end
    return key
end

local function count_active(rule, unit, delta)
    local key = active_key(rule, unit)
    active_delta[key] = (active_delta[key] or 0) + delta
    key = active_key(rule, '_all')
    active_delta[key] = (active_delta[key] or 0) + delta
end

-- Counter key <prefix><kind>:<bucket>:<who> (kind d, w, m, wh, wm; who a
-- unit or _all), made once per batch: the groups of a unit share them.
local counter_key_memo = {d = {}, w = {}, m = {}, wh = {}, wm = {}}
local function counter_key(kind, bucket, who)
    local by_bucket = counter_key_memo[kind]
    local by_who = by_bucket[bucket]
    if by_who == nil then
        by_who = {}
        by_bucket[bucket] = by_who
    end
    local key = by_who[who]
    if key == nil then
        key = prefix .. kind .. ':' .. bucket .. ':' .. who
        by_who[who] = key
    end
    return key
end

-- A start.  `at` points at the op's unit, record head (see batch.c:
-- unit|case|subject|cause|started_at|last_day|base_deadline), the due time
-- of the rule's first level and its provisional entry ('' = none), computed
-- by the daemon.  `clock` is the clock's
-- key, `marker` the field of its key's stop marker.
local function op_start(rule, key, clock, marker, at, ts, partition, before)
    if cache[clock] then
        return -- a second start for a running clock changes nothing
    end
    local stopped = markers[marker] or stored_markers[marker]
    if stopped then
        local stop_type, stop_ts = string.match(stopped, '^([^|]*)|(-?%d+)$')
        if rule.stops[stop_type] and tonumber(stop_ts) >= ts then
            return -- its stop came first: the measure is already over
        end
    end
    local unit, head, first_due = ARGV[at], ARGV[at + 1], ARGV[at + 2]
    count_active(rule, unit, 1)
    local partition_key = partition_keys[partition]
    if ARGV[at + 3] ~= '' then
        note_provisional(ctx, rule, key, partition_key, ARGV[at + 3])
    end
    -- The levels a starting clock fires at once, collapsed to the latest:
    -- those due by its partition's time (backfill: a start behind its
    -- partition).  In wall mode only those due by its own ts fire here: the
    -- claim that follows the batch fires the latest due level, after the
    -- batch's own stops have had their say.
    local horizon = ctx.wall and ts or now_for(ts, partition, before)
    local due = tonumber(first_due)
    if due > horizon then
        -- nothing due yet (the usual case): written as the daemon made it
        store_cached(clock, head .. '|0||-1|0|' .. first_due .. '|' .. partition_key)
        index_at(ctx, rule, key, partition_key, due, first_due)
        return
    end
    local c = split_record(head .. '|0||-1|0||' .. partition_key)
    fire_through(ctx, rule, key, c, horizon, true)
    rearm(ctx, rule, key, c)
    store_cached(clock, join_record(c))
end

local function op_stop(rule, key, clock, event_id, ts, group)
    local c = load_cached(clock)
    if c == nil then return end
    store_cached(clock, false)
    -- Levels due by the time of the stop fire first, as a live run would have.
    fire_through(ctx, rule, key, c, ts, ctx.wall, claimed_since(c))
    unindex(ctx, rule, key, c)
    count_active(rule, c.unit, -1)
    if is_provisional(ctx, rule, c) then note_provisional(ctx, rule, key, c.partition, false) end
    if c.fired >= 2 then
        redis.call('ZREM', prefix .. 'overdue:' .. rule.name .. ':' .. c.unit, key)
    end
    local late = ts > deadline_of(c)
    -- the stop's own counter group has the buckets of its day
    local field = rule.resolved_field[late]
    local g = group_base + (group - 1) * 8
    local day, week, month = ARGV[g + 2], ARGV[g + 3], ARGV[g + 4]
    for w = 1, 2 do
        local who = w == 1 and c.unit or '_all'
        ctx.add(counter_key('d', day, who), field, 1, counter_ttl)
        ctx.add(counter_key('w', week, who), field, 1, counter_ttl)
        ctx.add(counter_key('m', month, who), field, 1, counter_ttl)
    end
    if c.fired >= 0 then
        -- level: the highest that fired; seq 0 (a resolution is not a repeat)
        emit(ctx, rule, key, c, c.fired, 0, ts, 'resolved', event_id, late)
    end
end

local function op_extend(rule, key, clock, days, ts, partition, before)
    local c = load_cached(clock)
    if c == nil then return end
    fire_through(ctx, rule, key, c, ts, ctx.wall, claimed_since(c))
    if rule.unit == 's' or rule.unit == 'h' or c.last_day == nil then
        c.base_deadline = c.base_deadline + days * DAY_MS
        if c.last_day ~= nil then c.last_day = c.last_day + days end
    else
        local last = c.last_day + days
        if rule.move or rule.unit == 'w' then
            while not is_working(ctx.calendar, last) do last = last + 1 end
        end
        -- a provisional clock records the extension for its recompute; one
        -- that becomes provisional records the official last day it had
        local was_provisional = is_provisional(ctx, rule, c)
        local base = was_provisional and provisional_entry(ctx, rule, key, c.partition) or
                     ('D' .. c.last_day)
        c.last_day = last
        c.base_deadline = day_start(ctx.calendar, last + 1)
        if is_provisional(ctx, rule, c) then
            note_provisional(ctx, rule, key, c.partition, base .. ',' .. days)
        elseif was_provisional then
            note_provisional(ctx, rule, key, c.partition, false)
        end
    end
    -- Levels still ahead are armed for the new deadline; red repeats count
    -- again from it.
    if c.fired >= 2 then c.seq = 0 end
    update_overdue(ctx, rule, key, c, now_for(ts, partition, before))
    rearm(ctx, rule, key, c)
    store_cached(clock, join_record(c))
end

local function op_pause(rule, key, clock, ts)
    local c = load_cached(clock)
    if c == nil or c.paused_since ~= nil then return end
    fire_through(ctx, rule, key, c, ts, ctx.wall, claimed_since(c))
    c.paused_since = ts
    unindex(ctx, rule, key, c)
    store_cached(clock, join_record(c))
end

local function op_resume(rule, key, clock, ts, partition, before)
    local c = load_cached(clock)
    if c == nil or c.paused_since == nil then return end
    if ts > c.paused_since then c.paused_total = c.paused_total + (ts - c.paused_since) end
    c.paused_since = nil
    update_overdue(ctx, rule, key, c, now_for(ts, partition, before))
    rearm(ctx, rule, key, c)
    store_cached(clock, join_record(c))
end

-- Event ids and stop markers are remembered per span of days, in one key per
-- span (<prefix>ev:<first day of the span, UTC>, a set of ids;
-- <prefix>stopped:<first day>, a hash of markers), where a key per id or
-- marker would cost a command each: a batch asks each key that may hold
-- entries of the last dedupe_ttl about all of its own at once and adds the
-- new ones with one command.  An entry is remembered at least dedupe_ttl and
-- at most a span longer.
local ttl_days = math.ceil(tonumber(dedupe_ttl) / 86400)
local span = math.ceil(ttl_days / 4)
local older = math.ceil(ttl_days / span) -- earlier spans that may hold entries of the ttl
-- looked up until `older` spans after its own: a key is kept that long after
-- its last write
local SPAN_TTL = (older + 1) * span * 86400
local span_days = {}
do
    local today = math.floor(tonumber(redis.call('TIME')[1]) / 86400)
    local current = math.floor(today / span)
    for index = current - older, current do
        local y, m, d = civil_from_days(index * span)
        span_days[#span_days + 1] = string.format('%04d-%02d-%02d', y, m, d)
    end
end

-- The keys of `kind` (ev, stopped) that may hold entries, oldest first, and
-- the current one (written to).
local function span_keys(kind)
    local keys = {}
    for i, day in ipairs(span_days) do keys[i] = prefix .. kind .. ':' .. day end
    return keys, keys[#keys]
end

-- @phase ids
-- The dedupe pass: a duplicate is taken off its counter group.
local duplicate = {}
local duplicates_per_group = {}
local duplicates = 0
local ids = {}
for i = 1, event_count do ids[i] = ARGV[event_base + (i - 1) * 2] end
if event_count > 0 then
    local keys, current_key = span_keys('ev')
    local seen = {}
    for _, key in ipairs(keys) do
        if redis.call('EXISTS', key) == 1 then
            chunked('SMISMEMBER', key, ids, function(first, reply)
                for j = 1, #reply do
                    if reply[j] == 1 then seen[ids[first + j - 1]] = true end
                end
            end)
        end
    end
    local new_ids = {}
    for i = 1, event_count do
        local id = ids[i]
        if seen[id] then
            duplicates = duplicates + 1
            duplicate[i] = true
            local group = tonumber(ARGV[event_base + (i - 1) * 2 + 1])
            duplicates_per_group[group] = (duplicates_per_group[group] or 0) + 1
        else
            seen[id] = true -- a second copy in this batch is a duplicate too
            new_ids[#new_ids + 1] = id
        end
    end
    if #new_ids > 0 then
        chunked('SADD', current_key, new_ids)
        redis.call('EXPIRE', current_key, SPAN_TTL)
    end
end

local OP_WIDTH = {S = 8, X = 5, E = 4, P = 3, R = 3}

-- Calls visit(event_at, op, rule, op_at) for each op, in order, of the clock
-- events that are not duplicates, whose rule is known; event_at indexes the
-- clock event's fields in ARGV, op_at the op's.
local function each_op(visit)
    local at = clock_event_base
    for _ = 1, clock_event_count do
        local event_at, op_count = at, tonumber(ARGV[at + 4])
        local new = not duplicate[tonumber(ARGV[at])]
        at = at + 5
        for _ = 1, op_count do
            local op, rule = ARGV[at], ctx.rules[ARGV[at + 1]]
            if new and rule ~= nil then visit(event_at, op, rule, at) end
            at = at + OP_WIDTH[op]
        end
    end
end

-- @phase clock_reads
-- Read what the ops will look at: the clocks (MGET) and, for starts, the
-- stop markers (HMGET of each span's hash, a newer span's marker winning).
-- Each op's clock key and marker field are made here once: op_clock and
-- op_marker, by the op's position in ARGV.
local op_clock, op_marker = {}, {}
do
    local keys, listed, fields, listed_fields = {}, {}, {}, {}
    each_op(function(_, op, rule, at)
        local key = ARGV[at + 2]
        local clock = clock_key(ctx, rule, key)
        op_clock[at] = clock
        if not listed[clock] then
            listed[clock] = true
            keys[#keys + 1] = clock
        end
        if op == 'S' or op == 'X' then
            local marker = ARGV[at + 3] .. ':' .. key
            op_marker[at] = marker
            if op == 'S' and not listed_fields[marker] then
                listed_fields[marker] = true
                fields[#fields + 1] = marker
            end
        end
    end)
    chunked('MGET', nil, keys, function(first, values)
        for j = 1, #values do cache[keys[first + j - 1]] = values[j] end
    end)
    if #fields > 0 then
        for _, key in ipairs(span_keys('stopped')) do
            if redis.call('EXISTS', key) == 1 then
                chunked('HMGET', key, fields, function(first, values)
                    for j = 1, #values do
                        if values[j] then stored_markers[fields[first + j - 1]] = values[j] end
                    end
                end)
            end
        end
    end
end

-- @phase clock_ops
-- The clock events, in order (an event's fields are read once for its ops).
do
    local current, event_id, group, ts_text, ts, partition, before
    each_op(function(event_at, op, rule, at)
        if event_at ~= current then
            current = event_at
            local number = tonumber(ARGV[event_at])
            event_id = ARGV[event_base + (number - 1) * 2]
            group = tonumber(ARGV[event_base + (number - 1) * 2 + 1])
            ts_text = ARGV[event_at + 1]
            ts = tonumber(ts_text)
            partition, before = tonumber(ARGV[event_at + 2]), tonumber(ARGV[event_at + 3])
        end
        local key, clock = ARGV[at + 2], op_clock[at]
        if op == 'S' then
            op_start(rule, key, clock, op_marker[at], at + 4, ts, partition, before)
        elseif op == 'X' then
            op_stop(rule, key, clock, event_id, ts, group)
            markers[op_marker[at]] = ARGV[at + 4] .. '|' .. ts_text
        elseif op == 'E' then
            op_extend(rule, key, clock, tonumber(ARGV[at + 3]), ts, partition, before)
        elseif op == 'P' then
            op_pause(rule, key, clock, ts)
        elseif op == 'R' then
            op_resume(rule, key, clock, ts, partition, before)
        end
    end)
end

-- @phase clock_writes
-- Write the clocks back.
do
    local sets, deletes = split_changes(dirty)
    chunked('MSET', nil, sets)
    chunked('DEL', nil, deletes)
end

-- @phase counters
for group = 1, group_count do
    local g = group_base + (group - 1) * 8
    local n = tonumber(ARGV[g + 7]) - (duplicates_per_group[group] or 0)
    if n > 0 then
        local unit, event_type = ARGV[g], ARGV[g + 1]
        local day, week, month = ARGV[g + 2], ARGV[g + 3], ARGV[g + 4]
        local hour, minute = ARGV[g + 5], ARGV[g + 6]
        for w = 1, 2 do
            local who = w == 1 and unit or '_all'
            ctx.add(counter_key('d', day, who), event_type, n, counter_ttl)
            ctx.add(counter_key('w', week, who), event_type, n, counter_ttl)
            ctx.add(counter_key('m', month, who), event_type, n, counter_ttl)
            if hour ~= '' then
                ctx.add(counter_key('wh', hour, who), event_type, n, HOUR_BUCKET_TTL)
            end
            if minute ~= '' then
                ctx.add(counter_key('wm', minute, who), event_type, n, MINUTE_BUCKET_TTL)
            end
        end
    end
end
ctx.flush()
-- @phase counts_markers_index
for key, delta in pairs(active_delta) do
    redis.call('INCRBY', key, delta) -- 0 too: a start and stop leave "0", as INCR+DECR would
end
do
    local list = {}
    for field, value in pairs(markers) do
        list[#list + 1] = field
        list[#list + 1] = value
    end
    if #list > 0 then
        local _, current_key = span_keys('stopped')
        chunked('HSET', current_key, list)
        redis.call('EXPIRE', current_key, SPAN_TTL)
    end
end
flush_index(ctx)
flush_provisional(ctx)

-- @phase offsets
if offset_count > 0 then
    local offsets, times = {prefix .. 'offsets'}, {prefix .. 'eventtime'}
    for i = 1, offset_count do
        local base = offset_base + (i - 1) * 3
        offsets[#offsets + 1] = partition_keys[i]
        offsets[#offsets + 1] = ARGV[base + 1]
        local time = tonumber(ARGV[base + 2])
        if time >= 0 and time > stored_time[i] then
            times[#times + 1] = partition_keys[i]
            times[#times + 1] = ARGV[base + 2]
        end
    end
    redis.call('HSET', unpack(offsets))
    if #times > 1 then redis.call('HSET', unpack(times)) end
end

if fence_chain ~= '' then
    redis.call('SET', fence_key, ARGV[13], 'EX', FENCE_TTL)
end

-- @phase end
collectgarbage('restart')
return reply_tail(ctx, {event_count - duplicates, duplicates})
