-- claim_read.lua: reads the clocks whose next level is due, for the daemon
-- to fire them (daemon/claims.c computes; apply_effects.lua writes, checking
-- each clock is still as read here).  Its only write is housekeeping: a
-- due-index bucket found empty on the way to the earliest due left is
-- dropped from its partition's list (stops leave emptied buckets listed).
--
-- ARGV: 1 format version of these arguments (include/formats.h)  2 prefix
-- 3 now (epoch ms)  4 most clocks to read  5 partition count P, then P
-- partitions "<topic>:<partition>".
-- The due index of a partition: <prefix>due:<partition> (zset: bucket ->
-- bucket start ms) and <prefix>due:<partition>:<bucket> (zset: "<rule>:<key>"
-- -> due ms).
-- Returns { per partition (P): { claimed instant or false, 1 when every due
--           clock of the partition was read, earliest due after now or
--           false },
--           due clocks: partition number, bucket, member, record or false,
--           ...,
--           buckets due: partition number, bucket, ... }.

if ARGV[1] ~= '@SCRIPT_ARGS_VERSION@' then
    return redis.error_reply('VERSION arguments of format ' .. tostring(ARGV[1]) ..
                             ', this script reads @SCRIPT_ARGS_VERSION@')
end
local prefix, now, room = ARGV[2], ARGV[3], tonumber(ARGV[4])
local partition_count = tonumber(ARGV[5])
local states, clocks, buckets_due = {}, {}, {}

-- The earliest due after `now` in a partition's index, dropping emptied
-- buckets on the way (the buckets before it hold only clocks due now).
local function earliest_after(index_key)
    local position = 0
    while true do
        local bucket = redis.call('ZRANGE', index_key, position, position)[1]
        if bucket == nil then return false end
        local bucket_key = index_key .. ':' .. bucket
        local head = redis.call('ZRANGEBYSCORE', bucket_key, '(' .. now, '+inf', 'WITHSCORES',
                                'LIMIT', 0, 1)
        if head[2] then return head[2] end
        if redis.call('EXISTS', bucket_key) == 0 then
            redis.call('ZREM', index_key, bucket)
        else
            position = position + 1
        end
    end
end

for p = 1, partition_count do
    local partition = ARGV[5 + p]
    local index_key = prefix .. 'due:' .. partition
    local complete = 1
    for _, bucket in ipairs(redis.call('ZRANGEBYSCORE', index_key, '-inf', now)) do
        if room <= 0 then
            complete = 0
            break
        end
        buckets_due[#buckets_due + 1] = p
        buckets_due[#buckets_due + 1] = bucket
        local members = redis.call('ZRANGEBYSCORE', index_key .. ':' .. bucket, '-inf', now,
                                   'LIMIT', 0, room)
        for _, member in ipairs(members) do
            clocks[#clocks + 1] = p
            clocks[#clocks + 1] = bucket
            clocks[#clocks + 1] = member
            clocks[#clocks + 1] = redis.call('GET', prefix .. 'clock:' .. member)
            room = room - 1
        end
        if room <= 0 and redis.call('ZCOUNT', index_key .. ':' .. bucket, '-inf', now) >
                #members then
            complete = 0
        end
    end
    states[p] = {redis.call('HGET', prefix .. 'claimed', partition), complete,
                 earliest_after(index_key)}
end

return {states, clocks, buckets_due}
