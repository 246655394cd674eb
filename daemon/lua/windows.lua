#!lua name=duewatch
-- windows.lua: the Redis 7 function library `duewatch`, loaded by duewatchd
-- (FUNCTION LOAD REPLACE) on every connect.  It answers sliding-window
-- questions with one redis-cli command:
--
--   FCALL dw_window 0 <unit|_all> <1h|24h|7d|30d> [prefix]
--
-- and returns field/value pairs like HGETALL: event type -> count of events
-- whose time (ts) falls in the window ending now (Redis server time).
-- Precision: the 1h window sums minute buckets (the current minute plus the 59
-- before it); 24h, 7d and 30d sum hour buckets (the current hour plus the
-- 23/167/719 before it).  The buckets are `<prefix>wm:<minute since epoch>:<unit>`
-- and `<prefix>wh:<hour since epoch>:<unit>`, written by each batch (daemon/batch_apply.c, through apply_effects.lua).

local windows = {
    ['1h'] = {kind = 'wm', seconds = 60, buckets = 60},
    ['24h'] = {kind = 'wh', seconds = 3600, buckets = 24},
    ['7d'] = {kind = 'wh', seconds = 3600, buckets = 168},
    ['30d'] = {kind = 'wh', seconds = 3600, buckets = 720},
}

local function window(keys, args)
    local unit, name, prefix = args[1], args[2], args[3] or 'dw:'
    if unit == nil or name == nil then
        return redis.error_reply('usage: FCALL dw_window 0 <unit|_all> <1h|24h|7d|30d> [prefix]')
    end
    local spec = windows[name]
    if spec == nil then
        return redis.error_reply('unknown window ' .. name .. ' (1h, 24h, 7d or 30d)')
    end
    local now = redis.call('TIME')
    local current = math.floor(tonumber(now[1]) / spec.seconds)
    local totals, names = {}, {}
    for index = current - spec.buckets + 1, current do
        local flat = redis.call('HGETALL', prefix .. spec.kind .. ':' .. index .. ':' .. unit)
        for i = 1, #flat, 2 do
            local field = flat[i]
            if totals[field] == nil then
                totals[field] = 0
                names[#names + 1] = field
            end
            totals[field] = totals[field] + tonumber(flat[i + 1])
        end
    end
    table.sort(names)
    local reply = {}
    for _, field in ipairs(names) do
        reply[#reply + 1] = field
        reply[#reply + 1] = totals[field]
    end
    return reply
end

redis.register_function{function_name = 'dw_window', callback = window, flags = {'no-writes'}}
