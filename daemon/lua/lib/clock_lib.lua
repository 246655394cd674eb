-- clock_lib.lua: deadline clocks in Redis, shared by apply_batch.lua and
-- claim_due.lua (scripts/embed-lua.sh prepends this file to both).
--
-- A clock is one string key  <prefix>clock:<rule>:<key>  holding
--   unit|case|subject|cause|started_at|last_day|base_deadline|paused_total|
--   paused_since|fired|seq|next_due|partition
-- (identifiers never contain '|': the contract limits them to [A-Za-z0-9._-]).
--   last_day      local day number of the last day ('' for hour rules)
--   base_deadline deadline in epoch ms before pauses; the effective deadline is
--                 base_deadline + paused_total
--   fired         highest level fired: -1 none, 0 yellow, 1 orange, 2 red
--   seq           number of the next red repeat (0 = first red)
--   next_due      epoch ms the next level is due ('' = nothing armed)
--   partition     "<topic>:<partition>" whose owner fires the clock's alerts
-- Due clocks are indexed per partition in time buckets:
--   <prefix>due:<partition>            zset: bucket number -> bucket start ms
--   <prefix>due:<partition>:<bucket>   zset: "<rule>:<key>" -> next_due
-- (small per-bucket sets stay in Redis's compact listpack encoding).
-- Claimed alerts wait in <prefix>outbox:<partition> (hash alert_id -> payload)
-- until the daemon has the producer's delivery report.
-- Provisional clocks: a clock whose rule asks the holiday calendar and whose
-- last day lies after the calendar's official years was computed with
-- provisional years (statutory holidays only).  It is listed in
--   <prefix>provisional:<partition>    hash "<rule>:<key>" -> entry
-- where entry says how its last day came to be, for the daemon to recompute
-- it when the official year is added (daemon/provisional.c): "S" (computed
-- from its start) or "D<day>" (a last day computed from official years, or
-- stated by the start's `until`), then ",<days>" per extension since.

local DAY_MS = 86400000
local DUE_BUCKET_MS = 600000
local LEVEL_NAMES = {[0] = 'yellow', [1] = 'orange', [2] = 'red'}

-- Calendar: "first,last,official_last;holiday days;adjusted working days;
-- day:delta,..." (day numbers are local days since 1970-01-01; the days
-- after official_last are provisional; delta is the instant of that local
-- midnight minus day*DAY_MS, listed where it changes).
local function parse_list(text)
    local list = {}
    for item in string.gmatch(text or '', '[^,]+') do
        list[#list + 1] = tonumber(item)
    end
    return list
end

local function parse_calendar(blob)
    local parts = {}
    for part in string.gmatch(blob .. ';', '([^;]*);') do
        parts[#parts + 1] = part
    end
    local range = parse_list(parts[1])
    local calendar = {first = range[1] or 0, last = range[2] or -1,
                      official_last = range[3] or range[2] or -1, holiday = {}, workday = {},
                      deltas = {}, gaps = 0}
    for _, day in ipairs(parse_list(parts[2])) do calendar.holiday[day] = true end
    for _, day in ipairs(parse_list(parts[3])) do calendar.workday[day] = true end
    for pair in string.gmatch(parts[4] or '', '[^,]+') do
        local day, delta = string.match(pair, '^(-?%d+):(-?%d+)$')
        calendar.deltas[#calendar.deltas + 1] = {tonumber(day), tonumber(delta)}
    end
    return calendar
end

local function day_delta(calendar, day)
    local delta = 0
    for _, entry in ipairs(calendar.deltas) do
        if entry[1] <= day then delta = entry[2] else break end
    end
    return delta
end

local function day_start(calendar, day)
    return day * DAY_MS + day_delta(calendar, day)
end

local function local_day(calendar, ts)
    local day = math.floor(ts / DAY_MS)
    while day_start(calendar, day) > ts do day = day - 1 end
    while day_start(calendar, day + 1) <= ts do day = day + 1 end
    return day
end

-- 0 = Monday ... 6 = Sunday (1970-01-01 was a Thursday)
local function weekday(day)
    return (day + 3) % 7
end

-- Outside the calendar's years Mon-Fri counts as working; such clocks are
-- counted in calendar.gaps (the daemon logs them).
local function is_working(calendar, day)
    if day < calendar.first or day > calendar.last then
        calendar.gaps = calendar.gaps + 1
        return weekday(day) < 5
    end
    if calendar.holiday[day] then return false end
    if calendar.workday[day] then return true end
    return weekday(day) < 5
end

local function civil_from_days(day)
    local z = day + 719468
    local era = math.floor(z / 146097)
    local doe = z - era * 146097
    local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) -
                            math.floor(doe / 146096)) / 365)
    local y = yoe + era * 400
    local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
    local mp = math.floor((5 * doy + 2) / 153)
    local d = doy - math.floor((153 * mp + 2) / 5) + 1
    local m = mp < 10 and mp + 3 or mp - 9
    if m <= 2 then y = y + 1 end
    return y, m, d
end

local function days_from_civil(y, m, d)
    if m <= 2 then y = y - 1 end
    local era = math.floor(y / 400)
    local yoe = y - era * 400
    local mp = m > 2 and m - 3 or m + 9
    local doy = math.floor((153 * mp + 2) / 5) + d - 1
    local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
    return era * 146097 + doe - 719468
end

-- Bucket names of a local day: "YYYY-MM-DD", "YYYY-Www" (ISO week), "YYYY-MM".
local function bucket_names(day)
    local y, m, d = civil_from_days(day)
    local thursday = day - weekday(day) + 3
    local week_year = civil_from_days(thursday)
    local week = math.floor((thursday - days_from_civil(week_year, 1, 1)) / 7) + 1
    return string.format('%04d-%02d-%02d', y, m, d), string.format('%04d-W%02d', week_year, week),
           string.format('%04d-%02d', y, m)
end

-- Rules: "name,unit,amount,move,yellow_unit,yellow_amount,orange_unit,
-- orange_amount,repeat_ms,stop_types,calendar" joined by ';' (unit: s h d M
-- w, or '-' for an absent warning; stop_types joined by '+'; calendar 1 when
-- the rule's clocks ask the holiday calendar, deadline_uses_calendar()).
local function parse_rules(blob)
    local rules = {}
    for text in string.gmatch(blob, '[^;]+') do
        local f = {}
        for field in string.gmatch(text .. ',', '([^,]*),') do f[#f + 1] = field end
        local stops = {}
        for stop in string.gmatch(f[10] or '', '[^+]+') do stops[stop] = true end
        rules[f[1]] = {name = f[1], unit = f[2], amount = tonumber(f[3]), move = f[4] == '1',
                       yellow_unit = f[5], yellow = tonumber(f[6]), orange_unit = f[7],
                       orange = tonumber(f[8]), repeat_ms = tonumber(f[9]), stops = stops,
                       calendar = f[11] == '1'}
    end
    return rules
end

local function split_record(text)
    local r = {}
    for field in string.gmatch(text .. '|', '([^|]*)|') do r[#r + 1] = field end
    return {unit = r[1], case = r[2], subject = r[3], cause = r[4], started_at = tonumber(r[5]),
            last_day = tonumber(r[6]), base_deadline = tonumber(r[7]),
            paused_total = tonumber(r[8]), paused_since = tonumber(r[9]), fired = tonumber(r[10]),
            seq = tonumber(r[11]), next_due = tonumber(r[12]), partition = r[13]}
end

local function join_record(c)
    return table.concat({c.unit, c.case, c.subject, c.cause, c.started_at, c.last_day or '',
                         c.base_deadline, c.paused_total, c.paused_since or '', c.fired, c.seq,
                         c.next_due or '', c.partition}, '|')
end

local function deadline_of(c)
    return c.base_deadline + c.paused_total
end

-- The instant a warning `amount unit` before the deadline is due.
local function warning_due(calendar, rule, c, unit, amount)
    if unit == 's' then return deadline_of(c) - amount * 1000 end
    if unit == 'h' then return deadline_of(c) - amount * 3600000 end
    local last = c.last_day
    -- (unpaused: the pause is added once, below)
    if last == nil then last = local_day(calendar, c.base_deadline - 1) end
    local day
    if unit == 'w' then
        -- the Nth working day counting back, the last day being the 1st if it
        -- is a working day
        day = last
        while not is_working(calendar, day) do day = day - 1 end
        for _ = 2, amount do
            day = day - 1
            while not is_working(calendar, day) do day = day - 1 end
        end
    else
        day = last - amount + 1
    end
    return day_start(calendar, day) + c.paused_total
end

-- Due time of level (0 yellow, 1 orange, 2 red) with red repeat seq, or nil
-- when the rule has no such level.
local function level_due(calendar, rule, c, level, seq)
    if level == 0 then
        if rule.yellow_unit == '-' then return nil end
        return warning_due(calendar, rule, c, rule.yellow_unit, rule.yellow)
    elseif level == 1 then
        if rule.orange_unit == '-' then return nil end
        return warning_due(calendar, rule, c, rule.orange_unit, rule.orange)
    end
    if seq > 0 and (rule.repeat_ms == nil or rule.repeat_ms <= 0) then return nil end
    return deadline_of(c) + seq * (rule.repeat_ms or 0)
end

-- The next (level, seq, due) after the clock's fired state, or nil.
local function next_level(calendar, rule, c)
    local level, seq = c.fired + 1, 0
    if c.fired >= 2 then level, seq = 2, c.seq end
    while level <= 2 do
        local due = level_due(calendar, rule, c, level, seq)
        if due ~= nil then return level, seq, due end
        if level == 2 then return nil end
        level = level + 1
    end
    return nil
end

local function alert_id(rule_name, key, deadline, level_name, seq)
    return string.sub(redis.sha1hex(rule_name .. '|' .. key .. '|' .. deadline .. '|' ..
                                    level_name .. '|' .. seq), 1, 32)
end

-- ctx: prefix, calendar, rules, counter_ttl, add (counter aggregator),
-- alerts (list of {partition, id, payload}) and now.
local function emit(ctx, rule, key, c, level, seq, due, state, resolved_by, late)
    local level_name = LEVEL_NAMES[level]
    local deadline = deadline_of(c)
    local id = alert_id(rule.name, key, deadline, state == 'resolved' and 'resolved' or level_name,
                        state == 'resolved' and 0 or seq)
    local payload = table.concat({rule.name, level_name, state, seq, c.unit, c.case, key,
                                  c.subject, c.started_at, deadline, due, c.cause,
                                  resolved_by or '', late and '1' or '0', c.last_day or ''}, '|')
    redis.call('HSET', ctx.prefix .. 'outbox:' .. c.partition, id, payload)
    ctx.alerts[#ctx.alerts + 1] = {c.partition, id, payload}
    if state == 'firing' then
        local day, week, month = bucket_names(local_day(ctx.calendar, due))
        local field = 'alert.' .. rule.name .. '.' .. level_name
        for _, who in ipairs({c.unit, '_all'}) do
            ctx.add(ctx.prefix .. 'd:' .. day .. ':' .. who, field, 1, ctx.counter_ttl)
            ctx.add(ctx.prefix .. 'w:' .. week .. ':' .. who, field, 1, ctx.counter_ttl)
            ctx.add(ctx.prefix .. 'm:' .. month .. ':' .. who, field, 1, ctx.counter_ttl)
        end
        if level == 2 and seq == 0 then
            redis.call('ZADD', ctx.prefix .. 'overdue:' .. rule.name .. ':' .. c.unit, deadline, key)
        end
    end
end

local function due_member(rule, key)
    return rule.member_prefix .. key
end

-- The key of bucket number `bucket` of partition's due index, made once per
-- call (building key strings is a large part of a script's cost).
local function bucket_key_of(ctx, partition, bucket)
    local keys = ctx.bucket_keys[partition]
    if keys == nil then
        keys = {}
        ctx.bucket_keys[partition] = keys
    end
    local key = keys[bucket]
    if key == nil then
        key = ctx.prefix .. 'due:' .. partition .. ':' .. string.format('%d', bucket)
        keys[bucket] = key
    end
    return key
end

-- `command [key] list...` in chunks of CHUNK list items (even, so MSET,
-- HSET and ZADD pairs stay whole; well inside Lua's unpack limit);
-- on_reply(first item, reply).
local CHUNK = 4000
local function chunked(command, key, list, on_reply)
    for first = 1, #list, CHUNK do
        local last = math.min(first + CHUNK - 1, #list)
        local reply
        if key then
            reply = redis.call(command, key, unpack(list, first, last))
        else
            reply = redis.call(command, unpack(list, first, last))
        end
        if on_reply then on_reply(first, reply) end
    end
end

-- Due-index changes: written at once, or (ctx.index_changes, see
-- flush_index) collected per bucket and written with one ZADD and one ZREM
-- per bucket.  Only a member's last change in a bucket counts.
local function change_index(ctx, bucket_key, member, due_text)
    local changes = ctx.index_changes
    if changes == nil then
        if due_text then
            redis.call('ZADD', bucket_key, due_text, member)
        else
            redis.call('ZREM', bucket_key, member)
        end
        return
    end
    local bucket = changes[bucket_key]
    if bucket == nil then
        bucket = {}
        changes[bucket_key] = bucket
    end
    bucket[member] = due_text or false
end

-- Splits `changes` (name -> value, or false for a removal) into a flat
-- name, value list for one write command (value, name when value_first: ZADD)
-- and the list of names removed.
local function split_changes(changes, value_first)
    local writes, removes = {}, {}
    for name, value in pairs(changes) do
        if not value then
            removes[#removes + 1] = name
        elseif value_first then
            writes[#writes + 1] = value
            writes[#writes + 1] = name
        else
            writes[#writes + 1] = name
            writes[#writes + 1] = value
        end
    end
    return writes, removes
end

-- Provisional clocks (see the top of this file): changes are collected per
-- partition and written once per call (flush_provisional).
local function is_provisional(ctx, rule, c)
    return rule.calendar and c.last_day ~= nil and c.last_day > ctx.calendar.official_last
end

local function provisional_key(ctx, partition)
    return ctx.prefix .. 'provisional:' .. partition
end

-- Sets the clock's entry (false: removes it).
local function note_provisional(ctx, rule, key, partition, entry)
    local changes = ctx.provisional_changes[partition]
    if changes == nil then
        changes = {}
        ctx.provisional_changes[partition] = changes
    end
    changes[due_member(rule, key)] = entry
end

-- The clock's entry as this call left it, or nil.
local function provisional_entry(ctx, rule, key, partition)
    local changes = ctx.provisional_changes[partition]
    local entry = changes and changes[due_member(rule, key)]
    if entry == nil then
        entry = redis.call('HGET', provisional_key(ctx, partition), due_member(rule, key))
    end
    return entry or nil
end

local function flush_provisional(ctx)
    for partition, changes in pairs(ctx.provisional_changes) do
        local writes, removes = split_changes(changes)
        local key = provisional_key(ctx, partition)
        chunked('HDEL', key, removes)
        chunked('HSET', key, writes)
    end
    ctx.provisional_changes = {}
end

local function flush_index(ctx)
    for bucket_key, members in pairs(ctx.index_changes or {}) do
        local adds, removes = split_changes(members, true)
        chunked('ZREM', bucket_key, removes)
        chunked('ZADD', bucket_key, adds)
    end
    ctx.index_changes = {}
end

-- Takes the clock out of the due index.  A bucket left empty stays listed
-- in <prefix>due:<partition> until claim_due.lua passes it (one command here
-- instead of three: stops are frequent, empty buckets are not).
local function unindex(ctx, rule, key, c)
    if c.next_due == nil then return end
    change_index(ctx, bucket_key_of(ctx, c.partition, math.floor(c.next_due / DUE_BUCKET_MS)),
                 due_member(rule, key), nil)
    c.next_due = nil
end

-- Indexes the clock rule:key of `partition` as due at `due` (ms; due_text,
-- when given, is its decimal text: formatting a number costs more than the
-- ZADD).
local function index_at(ctx, rule, key, partition, due, due_text)
    local bucket = math.floor(due / DUE_BUCKET_MS)
    local bucket_key = bucket_key_of(ctx, partition, bucket)
    change_index(ctx, bucket_key, due_member(rule, key), due_text or string.format('%d', due))
    if not ctx.listed_buckets[bucket_key] then
        -- once per bucket and call: the bucket's entry in the index is fixed
        redis.call('ZADD', ctx.prefix .. 'due:' .. partition,
                   string.format('%d', bucket * DUE_BUCKET_MS), string.format('%d', bucket))
        ctx.listed_buckets[bucket_key] = true
    end
    if ctx.earliest == nil or due < ctx.earliest then ctx.earliest = due end
end

local function index(ctx, rule, key, c, due)
    c.next_due = due
    index_at(ctx, rule, key, c.partition, due)
end

-- Emits the level a collapse kept: pending = {level, seq, due}.
local function emit_collapsed(ctx, rule, key, c, pending)
    emit(ctx, rule, key, c, pending[1], pending[2], pending[3], 'firing')
    ctx.budget = ctx.budget - 1
    if pending[1] == 2 and pending[2] > 0 then
        -- the first red (seq 0) was skipped by the collapse: the clock is
        -- overdue all the same
        redis.call('ZADD', ctx.prefix .. 'overdue:' .. rule.name .. ':' .. c.unit,
                   deadline_of(c), key)
    end
end

-- Fires the clock's levels due at or before `horizon`: every one in order, or
-- (collapse) only the latest of them.  With collapse and `since` (optional:
-- an instant up to which every due level was already claimed), only the
-- levels due at or before `since` collapse (backfill: they were past when
-- the clock started); those due after it fell due while nobody claimed
-- (an outage, a rebalance) and fire each, in order, after the collapsed one.
-- Leaves the clock's fired/seq updated and returns whether anything fired.
-- Does not touch the due index.  Stops early when ctx.budget (alerts this
-- call may still emit) runs out.
local function fire_through(ctx, rule, key, c, horizon, collapse, since)
    if c.next_due ~= nil and c.next_due > horizon then
        -- the armed level is the next one (rearm keeps next_due so): not due
        return false
    end
    local fired_any = false
    local pending = nil
    while ctx.budget > 0 do
        local level, seq, due = next_level(ctx.calendar, rule, c)
        if level == nil or due > horizon then break end
        local collapsing = collapse and (since == nil or due <= since)
        if level == 2 and seq > 0 and rule.repeat_ms > 0 and collapsing then
            -- jump straight to the latest repeat due by the horizon (by
            -- `since` when given: the repeats after it fire each)
            local limit = horizon
            if since ~= nil and since < limit then limit = since end
            local latest = math.floor((limit - deadline_of(c)) / rule.repeat_ms)
            if latest > seq then
                seq = latest
                due = deadline_of(c) + seq * rule.repeat_ms
            end
        end
        if collapsing then
            pending = {level, seq, due}
        else
            if pending then
                -- the collapsed level first (c already records it)
                emit_collapsed(ctx, rule, key, c, pending)
                pending = nil
                fired_any = true
                if ctx.budget <= 0 then break end
            end
            emit(ctx, rule, key, c, level, seq, due, 'firing')
            ctx.budget = ctx.budget - 1
            fired_any = true
        end
        c.fired = level
        c.seq = (level == 2) and seq + 1 or 0
    end
    if pending then
        emit_collapsed(ctx, rule, key, c, pending)
        fired_any = true
    end
    return fired_any
end

-- After the deadline moved (an extension, a resume, a recompute): the clock
-- leaves <prefix>overdue when its deadline is ahead of `now` again, and is
-- listed there (at its new deadline) when red had fired and it is still past.
local function update_overdue(ctx, rule, key, c, now)
    local overdue = ctx.prefix .. 'overdue:' .. rule.name .. ':' .. c.unit
    if deadline_of(c) > now then
        if c.fired >= 2 then redis.call('ZREM', overdue, key) end
    elseif c.fired >= 2 then
        redis.call('ZADD', overdue, deadline_of(c), key)
    end
end

-- Arms the next level in the due index (or nothing when none is left).
local function rearm(ctx, rule, key, c)
    unindex(ctx, rule, key, c)
    if c.paused_since ~= nil then return end
    local level, seq, due = next_level(ctx.calendar, rule, c)
    if level ~= nil then index(ctx, rule, key, c, due) end
end

local function clock_key(ctx, rule, key)
    return rule.clock_prefix .. key
end

local function load_clock(ctx, rule, key)
    local text = redis.call('GET', clock_key(ctx, rule, key))
    if not text then return nil end
    return split_record(text)
end

local function save_clock(ctx, rule, key, c)
    redis.call('SET', clock_key(ctx, rule, key), join_record(c))
end

-- Sums counter increments per (key, field) so each is written once per call.
local function counter_aggregator()
    local increments, key_ttl = {}, {}
    local aggregator = {}
    function aggregator.add(key, field, n, ttl)
        local fields = increments[key]
        if fields == nil then
            fields = {}
            increments[key] = fields
            key_ttl[key] = ttl
        end
        fields[field] = (fields[field] or 0) + n
    end
    function aggregator.flush()
        for key, fields in pairs(increments) do
            for field, n in pairs(fields) do
                redis.call('HINCRBY', key, field, n)
            end
            redis.call('EXPIRE', key, key_ttl[key])
        end
    end
    return aggregator
end

local function new_context(prefix, now, mode, calendar_blob, rules_blob, counter_ttl, budget)
    local counters = counter_aggregator()
    local rules = parse_rules(rules_blob)
    -- the strings every clock of a rule uses, made once per call
    for name, rule in pairs(rules) do
        rule.clock_prefix = prefix .. 'clock:' .. name .. ':'
        rule.member_prefix = name .. ':'
        rule.active_prefix = prefix .. 'active:' .. name .. ':'
        rule.active_keys = {}
    end
    return {prefix = prefix, now = tonumber(now), wall = mode == 'wall',
            calendar = parse_calendar(calendar_blob), rules = rules,
            counter_ttl = counter_ttl, add = counters.add, flush = counters.flush,
            alerts = {}, budget = budget, earliest = nil, listed_buckets = {},
            bucket_keys = {}, index_changes = nil, provisional_changes = {}}
end

-- Flat reply tail shared by the scripts: earliest due armed by this call (or
-- -1), calendar gaps, then partition, alert id, payload for each alert.
local function reply_tail(ctx, reply)
    reply[#reply + 1] = ctx.earliest or -1
    reply[#reply + 1] = ctx.calendar.gaps
    for _, alert in ipairs(ctx.alerts) do
        reply[#reply + 1] = alert[1]
        reply[#reply + 1] = alert[2]
        reply[#reply + 1] = alert[3]
    end
    return reply
end
