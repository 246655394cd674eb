/* Lua sources embedded at build time from daemon/lua/ (see scripts/embed-lua.sh). */
#ifndef DUEWATCH_LUA_SCRIPTS_H
#define DUEWATCH_LUA_SCRIPTS_H

/* daemon/lua/apply_batch.lua: applies one batch of events atomically. */
extern const char lua_apply_batch[];
/* daemon/lua/windows.lua: Redis 7 function library `duewatch` (FCALL dw_window). */
extern const char lua_windows[];
/* daemon/lua/claim_due.lua: fires due clock levels into the outbox. */
extern const char lua_claim_due[];
/* daemon/lua/recompute_clocks.lua: writes recomputed provisional clocks. */
extern const char lua_recompute_clocks[];

#endif
