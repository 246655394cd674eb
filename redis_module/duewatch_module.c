/* duewatch_module.c: DUEWATCH.APPLY, the check-and-write call of
 * daemon/lua/apply_effects.lua as a Redis module command, for redis-server
 * 7.0 (`loadmodule /usr/lib/duewatch/duewatch_redis.so` in redis.conf).
 *
 * Contract: the call's arguments are apply_effects.lua's ARGV, in the same
 * layout (its header is the reference; ARGV[i] is argv[i] here), and it
 * answers the same: the number of commands written, or an error beginning
 * VERSION, STALE, WRONGTYPE or ERR, before any write for a version, fence,
 * check or malformed command.  `DUEWATCH.APPLY <version>` alone writes
 * nothing and answers the version: the daemon's probe at each connection
 * (daemon/redis_client.c), which sends its batches here when the version is
 * its own and to the script otherwise.  tests/e2e/test_redis_module.py holds
 * the two to the same replies and the same Redis state.
 *
 * Why a module beside the script: Redis's single thread bounds duewatch's
 * rate, and in the script most of it went to Lua, not to writing: every
 * argument turned into a Lua string, every write into a redis.call with its
 * command lookup and its own propagated command (make bench: ~8.5 s of
 * redis-server CPU per million events with the script, ~5.5 s with this).
 * The script stays for a Redis without the module: same effects, slower.
 *
 * Replication and the AOF: every write goes out as plain Redis commands
 * (a counter as HSET of its new value, an expiry as PEXPIREAT), never as
 * DUEWATCH.APPLY, so a replica or an AOF is read by a Redis without the
 * module.  No date arithmetic here either: the daemon computed everything. */
#include "formats.h"
#include "redismodule.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define FENCE_TTL_SECONDS "600" /* as apply_effects.lua's FENCE_TTL */

static bool text_is(RedisModuleString *string, const char *text)
{
    size_t length;
    const char *bytes = RedisModule_StringPtrLen(string, &length);
    return length == strlen(text) && memcmp(bytes, text, length) == 0;
}

static bool to_number(RedisModuleString *string, long long *number)
{
    return RedisModule_StringToLongLong(string, number) == REDISMODULE_OK;
}

/* The key opened for writing, or NULL after replying WRONGTYPE when it
 * holds another type than `type`. */
static RedisModuleKey *open_typed(RedisModuleCtx *ctx, RedisModuleString *name, int type)
{
    RedisModuleKey *key = RedisModule_OpenKey(ctx, name, REDISMODULE_READ | REDISMODULE_WRITE);
    int found = RedisModule_KeyType(key);
    if (found == REDISMODULE_KEYTYPE_EMPTY || found == type)
        return key;
    RedisModule_CloseKey(key);
    RedisModule_ReplyWithError(ctx, "WRONGTYPE Operation against a key holding the wrong kind "
                                    "of value");
    return NULL;
}

/* The string at `name`; NULL when there is none (or it is not a string). */
static RedisModuleString *string_value(RedisModuleCtx *ctx, RedisModuleString *name)
{
    RedisModuleKey *key = RedisModule_OpenKey(ctx, name, REDISMODULE_READ);
    RedisModuleString *value = NULL;
    if (RedisModule_KeyType(key) == REDISMODULE_KEYTYPE_STRING) {
        size_t length;
        const char *bytes = RedisModule_StringDMA(key, &length, REDISMODULE_READ);
        value = RedisModule_CreateString(ctx, bytes, length);
    }
    RedisModule_CloseKey(key);
    return value;
}

/* The field's value in the hash at `name`, or NULL. */
static RedisModuleString *field_value(RedisModuleCtx *ctx, RedisModuleString *name,
                                      RedisModuleString *field)
{
    RedisModuleKey *key = RedisModule_OpenKey(ctx, name, REDISMODULE_READ);
    RedisModuleString *value = NULL;
    if (RedisModule_KeyType(key) == REDISMODULE_KEYTYPE_HASH)
        RedisModule_HashGet(key, REDISMODULE_HASH_NONE, field, &value, NULL);
    RedisModule_CloseKey(key);
    return value;
}

static bool same_value(RedisModuleString *found, RedisModuleString *expected)
{
    return found != NULL && RedisModule_StringCompare(found, expected) == 0;
}

/* The fence (apply_effects.lua): a batch at position n > 1 of a chain
 * applies only when the chain's key says n - 1.  Replies and returns false
 * when it does not. */
static bool fence_holds(RedisModuleCtx *ctx, RedisModuleString **argv)
{
    size_t chain_length;
    RedisModule_StringPtrLen(argv[2], &chain_length);
    long long position;
    if (!to_number(argv[3], &position)) {
        RedisModule_ReplyWithError(ctx, "ERR apply_effects: the fence position is not a number");
        return false;
    }
    if (chain_length == 0 || position <= 1)
        return true;
    RedisModuleString *applied = string_value(ctx, argv[2]);
    long long last;
    if (applied != NULL && to_number(applied, &last) && last == position - 1)
        return true;
    RedisModule_ReplyWithError(ctx, "STALE the batch ahead of this one did not apply");
    return false;
}

/* The width of the check at argv[at] (V key value: 3, A key: 2, H key field
 * value: 4, h key field: 3), 0 when it is malformed. */
static int check_width(RedisModuleString **argv, int argc, int at)
{
    size_t length;
    const char *kind = RedisModule_StringPtrLen(argv[at], &length);
    int width = length != 1 ? 0 : *kind == 'V' ? 3 : *kind == 'A' ? 2 : *kind == 'H' ? 4
                                  : *kind == 'h' ? 3 : 0;
    return at + width <= argc ? width : 0;
}

/* The checks from argv[at] on; *at moves past them.  Replies and returns
 * false at the first that fails or is malformed. */
static bool checks_hold(RedisModuleCtx *ctx, RedisModuleString **argv, int argc, int *at)
{
    long long count;
    if (!to_number(argv[4], &count) || count < 0) {
        RedisModule_ReplyWithError(ctx, "ERR apply_effects: the check count is not a number");
        return false;
    }
    for (long long c = 0; c < count; c++) {
        int i = *at, width = i < argc ? check_width(argv, argc, i) : 0;
        if (width == 0) {
            RedisModule_ReplyWithError(ctx, "ERR apply_effects: a check is malformed");
            return false;
        }
        char kind = *RedisModule_StringPtrLen(argv[i], NULL);
        RedisModuleString *found = kind == 'V' || kind == 'A'
                                       ? string_value(ctx, argv[i + 1])
                                       : field_value(ctx, argv[i + 1], argv[i + 2]);
        bool holds = kind == 'V'   ? same_value(found, argv[i + 2])
                     : kind == 'H' ? same_value(found, argv[i + 3])
                                   : found == NULL;
        if (!holds) {
            size_t length;
            const char *key = RedisModule_StringPtrLen(argv[i + 1], &length);
            char message[600];
            snprintf(message, sizeof message, "STALE %.*s changed since it was read",
                     (int)(length > 500 ? 500 : length), key);
            RedisModule_ReplyWithError(ctx, message);
            return false;
        }
        *at = i + width;
    }
    return true;
}

enum command_kind {
    COMMAND_PAIRS,    /* HSET, ZADD, MSET: key (or none) then pairs, applied here */
    COMMAND_MEMBERS,  /* HDEL, ZREM: key then members, applied here */
    COMMAND_HINCRBYS, /* key, then field amount ...: HINCRBY of each */
    COMMAND_DISTINCT, /* members count_key count_field member ... */
    COMMAND_FORGET,   /* index bucket_key bucket */
    COMMAND_CALL,     /* DEL, INCRBY, EXPIRE, SADD: called as they are */
};

/* Which of a command's arguments are keys (declared to Redis, whose ACL
 * then holds a user to its key patterns, as it did the script's calls). */
enum key_arguments {
    KEYS_FIRST,     /* the first */
    KEYS_FIRST_TWO, /* the first two */
    KEYS_EVEN,      /* every other from the first (MSET) */
    KEYS_ALL,       /* all (DEL) */
};

/* The commands apply_effects.lua allows, how each is written, its keys. */
static const struct {
    const char *name;
    enum command_kind kind;
    enum key_arguments keys;
} commands[] = {
    {"MSET", COMMAND_PAIRS, KEYS_EVEN},
    {"HSET", COMMAND_PAIRS, KEYS_FIRST},
    {"ZADD", COMMAND_PAIRS, KEYS_FIRST},
    {"HDEL", COMMAND_MEMBERS, KEYS_FIRST},
    {"ZREM", COMMAND_MEMBERS, KEYS_FIRST},
    {"HINCRBYS", COMMAND_HINCRBYS, KEYS_FIRST},
    {"DISTINCT", COMMAND_DISTINCT, KEYS_FIRST_TWO},
    {"FORGET", COMMAND_FORGET, KEYS_FIRST_TWO},
    {"DEL", COMMAND_CALL, KEYS_ALL},
    {"INCRBY", COMMAND_CALL, KEYS_FIRST},
    {"EXPIRE", COMMAND_CALL, KEYS_FIRST},
    {"SADD", COMMAND_CALL, KEYS_FIRST},
};
#define COMMAND_COUNT (sizeof commands / sizeof commands[0])

static int command_index(RedisModuleString *name)
{
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        if (text_is(name, commands[i].name))
            return (int)i;
    return -1;
}

/* Every command from `at` on is allowed and well formed (as
 * apply_effects.lua checks it before its first write); replies and returns
 * false otherwise. */
static bool commands_well_formed(RedisModuleCtx *ctx, RedisModuleString **argv, int argc, int at)
{
    while (at < argc) {
        int index = command_index(argv[at]);
        long long count = 0;
        bool ok = index >= 0 && at + 1 < argc && to_number(argv[at + 1], &count) && count >= 1 &&
                  at + 1 + count <= argc - 1;
        if (ok && commands[index].kind == COMMAND_DISTINCT)
            ok = count >= 4;
        else if (ok && commands[index].kind == COMMAND_FORGET)
            ok = count == 3;
        else if (ok && commands[index].kind == COMMAND_HINCRBYS)
            ok = count >= 3 && count % 2 == 1;
        if (!ok) {
            size_t length;
            const char *name = RedisModule_StringPtrLen(argv[at], &length);
            char message[200];
            snprintf(message, sizeof message,
                     "ERR apply_effects: command %.*s is not allowed or malformed",
                     (int)(length > 64 ? 64 : length), name);
            RedisModule_ReplyWithError(ctx, message);
            return false;
        }
        at += 2 + (int)count;
    }
    return true;
}

/* HSET key field value ..., ZADD key score member ..., MSET key value ...
 * through the key API, propagated as they are. */
static bool write_pairs(RedisModuleCtx *ctx, const char *name, RedisModuleString **args, int count)
{
    if (strcmp(name, "MSET") == 0) {
        for (int i = 0; i + 1 < count; i += 2) {
            RedisModuleKey *key = RedisModule_OpenKey(ctx, args[i], REDISMODULE_WRITE);
            RedisModule_StringSet(key, args[i + 1]);
            RedisModule_CloseKey(key);
        }
    } else {
        bool sorted_set = strcmp(name, "ZADD") == 0;
        /* every score first, as ZADD itself does: a bad one writes nothing */
        for (int i = 1; sorted_set && i + 1 < count; i += 2) {
            double score;
            if (RedisModule_StringToDouble(args[i], &score) != REDISMODULE_OK) {
                RedisModule_ReplyWithError(ctx, "ERR value is not a valid float");
                return false;
            }
        }
        RedisModuleKey *key = open_typed(ctx, args[0], sorted_set ? REDISMODULE_KEYTYPE_ZSET
                                                                  : REDISMODULE_KEYTYPE_HASH);
        if (key == NULL)
            return false;
        for (int i = 1; i + 1 < count; i += 2) {
            double score;
            if (!sorted_set) {
                RedisModule_HashSet(key, REDISMODULE_HASH_NONE, args[i], args[i + 1], NULL);
            } else {
                RedisModule_StringToDouble(args[i], &score);
                RedisModule_ZsetAdd(key, score, args[i + 1], NULL);
            }
        }
        RedisModule_CloseKey(key);
    }
    RedisModule_Replicate(ctx, name, "v", args, (size_t)count);
    return true;
}

/* HDEL key field ..., ZREM key member ...: through the key API. */
static bool remove_members(RedisModuleCtx *ctx, const char *name, RedisModuleString **args,
                           int count)
{
    bool sorted_set = strcmp(name, "ZREM") == 0;
    RedisModuleKey *key =
        open_typed(ctx, args[0], sorted_set ? REDISMODULE_KEYTYPE_ZSET : REDISMODULE_KEYTYPE_HASH);
    if (key == NULL)
        return false;
    bool removed = false;
    for (int i = 1; i < count && RedisModule_KeyType(key) != REDISMODULE_KEYTYPE_EMPTY; i++) {
        int deleted = 0;
        if (sorted_set)
            RedisModule_ZsetRem(key, args[i], &deleted);
        else
            deleted = RedisModule_HashSet(key, REDISMODULE_HASH_NONE, args[i],
                                          REDISMODULE_HASH_DELETE, NULL);
        removed |= deleted > 0;
    }
    RedisModule_CloseKey(key);
    if (removed)
        RedisModule_Replicate(ctx, name, "v", args, (size_t)count);
    return true;
}

/* The hash field's integer (0 when absent); false after replying when it
 * holds something else. */
static bool field_number(RedisModuleCtx *ctx, RedisModuleKey *key, RedisModuleString *field,
                         long long *number)
{
    RedisModuleString *value = NULL;
    *number = 0;
    if (RedisModule_KeyType(key) == REDISMODULE_KEYTYPE_HASH)
        RedisModule_HashGet(key, REDISMODULE_HASH_NONE, field, &value, NULL);
    if (value == NULL || to_number(value, number))
        return true;
    RedisModule_ReplyWithError(ctx, "ERR hash value is not an integer");
    return false;
}

static bool add_without_overflow(RedisModuleCtx *ctx, long long *number, long long amount)
{
    if (__builtin_add_overflow(*number, amount, number)) {
        RedisModule_ReplyWithError(ctx, "ERR increment or decrement would overflow");
        return false;
    }
    return true;
}

/* HINCRBYS key field amount ...: each field incremented, propagated as one
 * HSET of the key's new values (the key written once, not once a field). */
static bool increment_fields(RedisModuleCtx *ctx, RedisModuleString **args, int count)
{
    RedisModuleKey *key = open_typed(ctx, args[0], REDISMODULE_KEYTYPE_HASH);
    if (key == NULL)
        return false;
    RedisModuleString **written = RedisModule_Alloc(sizeof(RedisModuleString *) * (size_t)count);
    int length = 0;
    written[length++] = args[0];
    bool ok = true;
    for (int i = 1; ok && i + 1 < count; i += 2) {
        long long number, amount = 0;
        ok = field_number(ctx, key, args[i], &number);
        if (ok && !to_number(args[i + 1], &amount)) {
            RedisModule_ReplyWithError(ctx, "ERR value is not an integer or out of range");
            ok = false;
        }
        if (ok && add_without_overflow(ctx, &number, amount)) {
            written[length++] = args[i];
            written[length] = RedisModule_CreateStringFromLongLong(ctx, number);
            RedisModule_HashSet(key, REDISMODULE_HASH_NONE, args[i], written[length++], NULL);
        } else {
            ok = false;
        }
    }
    RedisModule_CloseKey(key);
    /* what was written before an error goes to replicas too, as the
     * script's HINCRBYs before its error did */
    if (length > 1)
        RedisModule_Replicate(ctx, "HSET", "v", written, (size_t)length);
    RedisModule_Free(written);
    return ok;
}

/* DISTINCT members count_key count_field member ...: each member set to 1
 * in the members hash, the count raised by the members new to it. */
static bool count_distinct(RedisModuleCtx *ctx, RedisModuleString **args, int count)
{
    RedisModuleKey *members = open_typed(ctx, args[0], REDISMODULE_KEYTYPE_HASH);
    if (members == NULL)
        return false;
    RedisModuleString *one = RedisModule_CreateString(ctx, "1", 1);
    RedisModuleString **written = RedisModule_Alloc(sizeof(RedisModuleString *) * (size_t)(2 * count));
    int length = 0;
    written[length++] = args[0];
    long long added = 0;
    for (int i = 3; i < count; i++) {
        int exists = 0;
        if (RedisModule_KeyType(members) == REDISMODULE_KEYTYPE_HASH)
            RedisModule_HashGet(members, REDISMODULE_HASH_EXISTS, args[i], &exists, NULL);
        if (exists)
            continue;
        RedisModule_HashSet(members, REDISMODULE_HASH_NONE, args[i], one, NULL);
        written[length++] = args[i];
        written[length++] = one;
        added++;
    }
    RedisModule_CloseKey(members);
    if (added > 0)
        RedisModule_Replicate(ctx, "HSET", "v", written, (size_t)length);
    RedisModule_Free(written);
    if (added == 0)
        return true;
    RedisModuleKey *counts = open_typed(ctx, args[1], REDISMODULE_KEYTYPE_HASH);
    long long number;
    bool ok = counts != NULL && field_number(ctx, counts, args[2], &number) &&
              add_without_overflow(ctx, &number, added);
    if (ok) {
        RedisModuleString *value = RedisModule_CreateStringFromLongLong(ctx, number);
        RedisModule_HashSet(counts, REDISMODULE_HASH_NONE, args[2], value, NULL);
        RedisModule_Replicate(ctx, "HSET", "sss", args[1], args[2], value);
    }
    if (counts != NULL)
        RedisModule_CloseKey(counts);
    return ok;
}

/* FORGET index bucket_key bucket: ZREM index bucket when bucket_key no
 * longer exists. */
static bool forget_bucket(RedisModuleCtx *ctx, RedisModuleString **args)
{
    RedisModuleKey *bucket = RedisModule_OpenKey(ctx, args[1], REDISMODULE_READ);
    bool gone = RedisModule_KeyType(bucket) == REDISMODULE_KEYTYPE_EMPTY;
    RedisModule_CloseKey(bucket);
    if (!gone)
        return true;
    return remove_members(ctx, "ZREM", (RedisModuleString *[]){args[0], args[2]}, 2);
}

/* DEL, INCRBY, EXPIRE, SADD: called as Redis's own commands, which
 * propagate themselves (EXPIRE as PEXPIREAT). */
static bool call_command(RedisModuleCtx *ctx, const char *name, RedisModuleString **args,
                         int count)
{
    RedisModuleCallReply *reply = RedisModule_Call(ctx, name, "!v", args, (size_t)count);
    if (reply != NULL && RedisModule_CallReplyType(reply) != REDISMODULE_REPLY_ERROR)
        return true;
    if (reply == NULL) {
        RedisModule_ReplyWithError(ctx, errno == ENOENT ? "ERR apply_effects: no such command"
                                                        : "ERR apply_effects: a write failed");
    } else {
        size_t length;
        const char *text = RedisModule_CallReplyStringPtr(reply, &length);
        char message[300];
        snprintf(message, sizeof message, "%.*s", (int)(length > 256 ? 256 : length), text);
        RedisModule_ReplyWithError(ctx, message);
    }
    return false;
}

/* One command of the call; false after replying an error. */
static bool write_command(RedisModuleCtx *ctx, int index, RedisModuleString **args, int count)
{
    const char *name = commands[index].name;
    switch (commands[index].kind) {
    case COMMAND_PAIRS: return write_pairs(ctx, name, args, count);
    case COMMAND_MEMBERS: return remove_members(ctx, name, args, count);
    case COMMAND_HINCRBYS: return increment_fields(ctx, args, count);
    case COMMAND_DISTINCT: return count_distinct(ctx, args, count);
    case COMMAND_FORGET: return forget_bucket(ctx, args);
    case COMMAND_CALL: return call_command(ctx, name, args, count);
    }
    return false;
}

/* Redis asks which arguments are keys (ACL, getkeys-api): the fence, each
 * check's key and each command's keys, as far as the call is well formed. */
static int declare_keys(RedisModuleCtx *ctx, RedisModuleString **argv, int argc)
{
    size_t chain_length = 0;
    if (argc > 2)
        RedisModule_StringPtrLen(argv[2], &chain_length);
    if (chain_length > 0)
        RedisModule_KeyAtPos(ctx, 2);
    long long checks = 0;
    int at = 5;
    if (argc > 4)
        to_number(argv[4], &checks);
    for (long long c = 0; c < checks && at < argc; c++) {
        int width = check_width(argv, argc, at);
        if (width == 0)
            return REDISMODULE_OK;
        RedisModule_KeyAtPos(ctx, at + 1);
        at += width;
    }
    while (at + 1 < argc) {
        int index = command_index(argv[at]);
        long long count;
        if (index < 0 || !to_number(argv[at + 1], &count) || count < 1 ||
            at + 1 + count > argc - 1)
            return REDISMODULE_OK;
        int first = at + 2, end = at + 2 + (int)count;
        enum key_arguments keys = commands[index].keys;
        int last = keys == KEYS_FIRST ? first : keys == KEYS_FIRST_TWO ? first + 1 : end - 1;
        for (int i = first; i <= last && i < end; i += keys == KEYS_EVEN ? 2 : 1)
            RedisModule_KeyAtPos(ctx, i);
        at = end;
    }
    return REDISMODULE_OK;
}

static int apply_command(RedisModuleCtx *ctx, RedisModuleString **argv, int argc)
{
    if (RedisModule_IsKeysPositionRequest(ctx))
        return declare_keys(ctx, argv, argc);
    RedisModule_AutoMemory(ctx);
    if (argc < 2)
        return RedisModule_WrongArity(ctx);
    if (!text_is(argv[1], SCRIPT_ARGS_VERSION_TEXT)) {
        size_t length;
        const char *version = RedisModule_StringPtrLen(argv[1], &length);
        char message[200];
        snprintf(message, sizeof message,
                 "VERSION arguments of format %.*s, this module reads " SCRIPT_ARGS_VERSION_TEXT,
                 (int)(length > 32 ? 32 : length), version);
        return RedisModule_ReplyWithError(ctx, message);
    }
    if (argc == 2) /* the daemon's probe */
        return RedisModule_ReplyWithLongLong(ctx, SCRIPT_ARGS_VERSION);
    if (argc < 5)
        return RedisModule_WrongArity(ctx);
    int at = 5;
    if (!fence_holds(ctx, argv) || !checks_hold(ctx, argv, argc, &at) ||
        !commands_well_formed(ctx, argv, argc, at))
        return REDISMODULE_OK;
    long long written = 0;
    while (at < argc) {
        long long count;
        to_number(argv[at + 1], &count);
        if (!write_command(ctx, command_index(argv[at]), argv + at + 2, (int)count))
            return REDISMODULE_OK;
        written++;
        at += 2 + (int)count;
    }
    size_t chain_length;
    RedisModule_StringPtrLen(argv[2], &chain_length);
    if (chain_length > 0)
        RedisModule_Call(ctx, "SET", "!sscc", argv[2], argv[3], "EX", FENCE_TTL_SECONDS);
    return RedisModule_ReplyWithLongLong(ctx, written);
}

int RedisModule_OnLoad(RedisModuleCtx *ctx, RedisModuleString **argv, int argc);

int RedisModule_OnLoad(RedisModuleCtx *ctx, RedisModuleString **argv, int argc)
{
    (void)argv;
    (void)argc;
    if (RedisModule_Init(ctx, "duewatch", SCRIPT_ARGS_VERSION, REDISMODULE_APIVER_1) ==
        REDISMODULE_ERR)
        return REDISMODULE_ERR;
    /* keys are named inside the arguments: declare_keys finds them */
    return RedisModule_CreateCommand(ctx, "duewatch.apply", apply_command,
                                     "write deny-oom getkeys-api", 0, 0, 0);
}
