-- read_entries.lua: the provisional entries of a batch's clocks, for the
-- daemon to compute the batch (daemon/batch_apply.c); writes nothing.  It
-- runs inside the batch's read, a transaction of plain commands (MULTI, the
-- reads, this, EXEC: see include/batch.h), so what it reads is as current as
-- the rest; it is a script only because where an entry lives depends on the
-- clock's record: <prefix>provisional:<the record's partition field>.
--
-- ARGV (1-based):
--   1 format version of these arguments (include/formats.h)
--   2 prefix
--   3 the number of a clock record's partition field (1-based, after the
--     version tag; include/formats.h, the same in every version)
--   then pairs: clock key, due-index member "<rule>:<key>".
-- Returns one value per pair: the entry, or false (no record, no entry).

if ARGV[1] ~= '@SCRIPT_ARGS_VERSION@' then
    return redis.error_reply('VERSION arguments of format ' .. tostring(ARGV[1]) ..
                             ', this script reads @SCRIPT_ARGS_VERSION@')
end
local prefix, partition_field = ARGV[2], tonumber(ARGV[3])

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
for at = 4, #ARGV - 1, 2 do
    local record = redis.call('GET', ARGV[at])
    local entry = false
    if record then
        entry = redis.call('HGET', prefix .. 'provisional:' .. partition_of(record), ARGV[at + 1])
    end
    entries[#entries + 1] = entry
end
return entries
