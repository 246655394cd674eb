-- read_batch.lua: reads, in one call, what the daemon needs to compute a
-- batch's effects (daemon/batch_apply.c); writes nothing.  The daemon then
-- sends the effects to apply_effects.lua, which checks that the clocks it
-- changes are still as read here.
--
-- ARGV (1-based):
--   1 format version of these arguments (include/formats.h)
--   2 prefix  3 span count K, then K event-id keys <prefix>ev:<span> and K
--     stop-marker keys <prefix>stopped:<span> (oldest first)
--   then N, N event ids;  M, M clock keys;  Q, Q stop-marker fields;
--   P, P partitions "<topic>:<partition>";
--   F, the number of a clock record's partition field (1-based, after the
--   version tag; include/formats.h, the same in every version);
--   R, R pairs: clock number (1-based, into the M clock keys), due-index
--   member "<rule>:<key>" (a clock whose provisional entry is wanted: it is
--   looked up in <prefix>provisional:<the record's partition field>).
-- Returns { seen (N: 1 when the id is in a span's id set, else 0),
--           records (M: value or false), markers (Q: the newest span's
--           value or false), event times (P: ms or false),
--           claimed (flat HGETALL of <prefix>claimed),
--           entries (R: value or false) }.

if ARGV[1] ~= '@SCRIPT_ARGS_VERSION@' then
    return redis.error_reply('VERSION arguments of format ' .. tostring(ARGV[1]) ..
                             ', this script reads @SCRIPT_ARGS_VERSION@')
end
local prefix = ARGV[2]
local span_count = tonumber(ARGV[3])
local at = 4 + 2 * span_count

-- The next list of ARGV: its items, from `at` on.
local function take_list()
    local count = tonumber(ARGV[at])
    local first = at + 1
    at = first + count
    return first, count
end

-- `command key list...` in chunks (well inside Lua's unpack limit).
local CHUNK = 4000
local function chunked(command, key, first, count, out)
    for offset = 0, count - 1, CHUNK do
        local n = math.min(CHUNK, count - offset)
        local reply
        if key then
            reply = redis.call(command, key, unpack(ARGV, first + offset, first + offset + n - 1))
        else
            reply = redis.call(command, unpack(ARGV, first + offset, first + offset + n - 1))
        end
        for j = 1, #reply do out[offset + j] = reply[j] end
    end
end

local ids_first, id_count = take_list()
local seen = {}
for i = 1, id_count do seen[i] = 0 end
for s = 1, span_count do
    local key = ARGV[3 + s]
    if id_count > 0 and redis.call('EXISTS', key) == 1 then
        local found = {}
        chunked('SMISMEMBER', key, ids_first, id_count, found)
        for i = 1, id_count do
            if found[i] == 1 then seen[i] = 1 end
        end
    end
end

local clocks_first, clock_count = take_list()
local records = {}
chunked('MGET', nil, clocks_first, clock_count, records)

local markers_first, marker_count = take_list()
local markers = {}
for i = 1, marker_count do markers[i] = false end
for s = 1, span_count do
    local key = ARGV[3 + span_count + s]
    if marker_count > 0 and redis.call('EXISTS', key) == 1 then
        local found = {}
        chunked('HMGET', key, markers_first, marker_count, found)
        for i = 1, marker_count do
            if found[i] then markers[i] = found[i] end
        end
    end
end

local partitions_first, partition_count = take_list()
local times = {}
if partition_count > 0 then
    chunked('HMGET', prefix .. 'eventtime', partitions_first, partition_count, times)
end

local claimed = redis.call('HGETALL', prefix .. 'claimed')

local partition_field = tonumber(ARGV[at])
at = at + 1

-- A record's partition field ('' when it has fewer fields).
local function partition_of(record)
    local number = 0
    for value in string.gmatch((string.gsub(record, '^@%d+|', '', 1)) .. '|', '([^|]*)|') do
        number = number + 1
        if number == partition_field then
            return value
        end
    end
    return ''
end

local entries = {}
local entry_count = tonumber(ARGV[at])
for i = 1, entry_count do
    local record = records[tonumber(ARGV[at + 2 * i - 1])]
    local entry = false
    if record then
        entry = redis.call('HGET', prefix .. 'provisional:' .. partition_of(record),
                           ARGV[at + 2 * i])
    end
    entries[i] = entry
end

return {seen, records, markers, times, claimed, entries}
