/* Lua sources embedded at build time from daemon/lua/ (see scripts/embed-lua.sh). */
#ifndef DUEWATCH_LUA_SCRIPTS_H
#define DUEWATCH_LUA_SCRIPTS_H

/* daemon/lua/read_entries.lua: the provisional entries of a batch's clocks. */
extern const char lua_read_entries[];
/* daemon/lua/apply_effects.lua: checks and writes what the daemon computed. */
extern const char lua_apply_effects[];
/* daemon/lua/claim_read.lua: reads the clocks whose next level is due. */
extern const char lua_claim_read[];
/* daemon/lua/snapshot_read.lua: reads what an end-of-day snapshot needs. */
extern const char lua_snapshot_read[];
/* daemon/lua/windows.lua: Redis 7 function library `duewatch` (FCALL dw_window). */
extern const char lua_windows[];

#endif
