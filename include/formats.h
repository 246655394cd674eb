/* The formats duewatchd keeps in Redis and hands to its scripts, defined
 * once, with a version.
 *
 * Stored values (a clock record, an outbox payload) of the current version
 * begin with FORMAT_TAG, "@<version>|", then their fields joined by '|' in
 * the order of the X-lists below (identifiers never contain '|' or '@': the
 * event contract limits them to [A-Za-z0-9._-]).  A value without a tag is
 * version 0, as releases up to 2026-12-03 wrote it.  Version 1 (tag "@1|",
 * releases up to 2026-12-04) has the fields of version 0; version 2 (tag
 * "@2|") adds the clock record's extension counts (CLOCK_RECORD_FIELDS_V1 is
 * the older list; outbox payloads are unchanged); version 3 adds the outbox
 * payload's `resolves` (clock records are as in version 2); version 4
 * writes the clock record's numbers compactly (below; outbox payloads are as
 * in version 3).  A daemon reads
 * every version back to 0, so an upgrade with clocks running and alerts
 * waiting in the outbox loses nothing; it writes the current one.  A field added or
 * moved means a new version, a reader for it, and a fixture of the old one
 * in tests/e2e/fixtures/.
 *
 * Script arguments: every script call's first argument is SCRIPT_ARGS_VERSION
 * (scripts/embed-lua.sh writes the same number into the scripts where they
 * say @SCRIPT_ARGS_VERSION@); a script refuses a call of another version, so
 * daemons of two releases sharing a Redis never misread each other. */
#ifndef DUEWATCH_FORMATS_H
#define DUEWATCH_FORMATS_H

#include <stdint.h>

#define FORMAT_VERSION 5
#define FORMAT_TAG "@5|"
#define FORMAT_TAG_LENGTH 3

/* 2: apply_effects.lua HINCRBYS, DISTINCT; 3: the provisional entries'
 * script (read_entries.lua, read_batch.lua before it) is told the record
 * field that names a clock's partition */
#define SCRIPT_ARGS_VERSION 3
#define FORMATS_TEXT_OF(number) #number
#define FORMATS_TEXT(number) FORMATS_TEXT_OF(number)
/* SCRIPT_ARGS_VERSION as the text a script call carries (for the tests). */
#define SCRIPT_ARGS_VERSION_TEXT FORMATS_TEXT(SCRIPT_ARGS_VERSION)

/* Clock record, the value of <prefix>clock:<rule>:<key>:
 *   unit, case, subject, cause (id of the starting event);
 *   started_at     the start, epoch ms;
 *   last_day       local day number of the last day ('' for an hour rule
 *                  started without `until`);
 *   base_deadline  the deadline before pauses, epoch ms (the effective
 *                  deadline adds paused_total);
 *   paused_total   ms paused so far;  paused_since  '' or epoch ms;
 *   fired          highest level fired: -1 none, 0 yellow, 1 orange, 2 red;
 *   seq            number of the next red repeat (0 = the first red);
 *   next_due       epoch ms of the level armed in the due index ('' none);
 *   partition      "<topic>:<partition>" whose owner fires its alerts;
 *   extensions     (version 2) how many extensions were applied;
 *   extended_days  (version 2) the days they added, in total.
 * Versions 0 and 1 end at partition (CLOCK_FIELD_COUNT_V1 fields): read as
 * no extension counted.
 * Numbers (CLOCK_RECORD_NUMBERS): decimal up to version 3.  Version 4
 * writes them in base 36 (digits 0-9 then a-z, '-' before a negative one:
 * an instant takes 8 characters, not 13) and leaves a number empty when it
 * is absent (CLOCK_NUMBER_OPTIONAL, as every version does) or equals its
 * default (a clock that never paused, fired or was extended spends one
 * separator on each); CLOCK_NUMBER_REQUIRED ones are never empty.  A record
 * is a Redis string of its own, allocated in size classes 32 bytes apart at
 * these sizes: the ~23 bytes saved per record weigh.
 * Version 5 has version 4's fields, written shorter, and says where the
 * clock's due entry is:
 * - a number that is a whole number of minutes (not 0) is written as its
 *   sixty-thousandths in base 36 and '.' ("i4tuo." for 1827504000000): the
 *   deadlines and due times of day rules fall at midnight;
 * - a cause that is a UUID in its canonical text (8-4-4-4-12 lowercase hex
 *   digits) is written as '~' and its 16 bytes in base64url without padding
 *   (RFC 4648 section 5), 23 characters instead of 36; '~' begins no event
 *   id (the contract's identifiers are A-Z a-z 0-9 . _ -);
 * - a record of version 5 is armed in a sharded due bucket,
 *   <prefix>due:<partition>:<bucket>.<shard> (DUE_SHARDS below), one of an
 *   earlier version in <prefix>due:<partition>:<bucket>, where it stays
 *   until the clock is armed again (and its record written in version 5).
 * A record of 124 bytes or fewer takes a 128-byte allocation, one of 125 to
 * 156 a 160-byte one: the bench's records went from ~139 to ~122 bytes. */
/* The due index (daemon/clock_engine.c): a partition's clocks are listed by
 * the 10-minute bucket their armed level falls due in, and, since format
 * version 5, spread by their member over DUE_SHARDS buckets of the same
 * 10 minutes (shard = FNV-1a of "<rule>:<key>" modulo DUE_SHARDS): every day
 * rule falls due at local midnight, so one bucket of a busy day held ~640
 * clocks of 1,000,000 in make bench, too many for Redis to keep a sorted
 * set packed (zset-max-listpack-entries, 128 by default); an eighth of that
 * stays packed, at ~40 B per entry instead of ~125. */
#define DUE_BUCKET_SHARDED_SINCE 5
#define DUE_SHARDS 8

#define CLOCK_RECORD_FIELDS(X)                                                                 \
    X(UNIT) X(CASE) X(SUBJECT) X(CAUSE) X(STARTED_AT) X(LAST_DAY) X(BASE_DEADLINE)             \
    X(PAUSED_TOTAL) X(PAUSED_SINCE) X(FIRED) X(SEQ) X(NEXT_DUE) X(PARTITION) X(EXTENSIONS)     \
    X(EXTENDED_DAYS)

/* Outbox payload, the value of <prefix>outbox:<partition> field <alert id>
 * (alert_message.h): rule, level, state, seq, unit, case, ref, subject,
 * started_at, deadline, due_at, cause, resolved_by, late (0|1), last_day,
 * resolves (version 3: a resolution's list of the alert ids it resolves,
 * joined by ',', as the deadline engine computed them at the stop; '' for a
 * firing alert).  Level `violation` (an extension beyond the law's cap;
 * seq = the extension's number) is new with version 2; versions 0 to 2 end
 * at last_day (PAYLOAD_FIELD_COUNT_V2 fields): read as resolving no id. */
#define OUTBOX_PAYLOAD_FIELDS(X)                                                               \
    X(RULE) X(LEVEL) X(STATE) X(SEQ) X(UNIT) X(CASE) X(REF) X(SUBJECT) X(STARTED_AT)           \
    X(DEADLINE) X(DUE_AT) X(CAUSE) X(RESOLVED_BY) X(LATE) X(LAST_DAY) X(RESOLVES)

/* The record's numbers and what version 4 leaves empty for each: the
 * default number, or one of the two markers (outside the numbers a record
 * holds, which stay within +-2^62). */
#define CLOCK_NUMBER_REQUIRED INT64_MIN
#define CLOCK_NUMBER_OPTIONAL (INT64_MIN + 1)
#define CLOCK_RECORD_NUMBERS(X)                                                                \
    X(STARTED_AT, CLOCK_NUMBER_REQUIRED) X(LAST_DAY, CLOCK_NUMBER_OPTIONAL)                     \
    X(BASE_DEADLINE, CLOCK_NUMBER_REQUIRED) X(PAUSED_TOTAL, 0)                                  \
    X(PAUSED_SINCE, CLOCK_NUMBER_OPTIONAL) X(FIRED, -1) X(SEQ, 0)                               \
    X(NEXT_DUE, CLOCK_NUMBER_OPTIONAL) X(EXTENSIONS, 0) X(EXTENDED_DAYS, 0)

#define FORMAT_ENUM_ITEM(name) CLOCK_FIELD_##name,
enum clock_record_field { CLOCK_RECORD_FIELDS(FORMAT_ENUM_ITEM) CLOCK_FIELD_COUNT };
#undef FORMAT_ENUM_ITEM
/* Versions 0 and 1: the fields up to partition. */
#define CLOCK_FIELD_COUNT_V1 (CLOCK_FIELD_PARTITION + 1)
#define FORMAT_ENUM_ITEM(name) PAYLOAD_FIELD_##name,
enum outbox_payload_field { OUTBOX_PAYLOAD_FIELDS(FORMAT_ENUM_ITEM) PAYLOAD_FIELD_COUNT };
#undef FORMAT_ENUM_ITEM
/* Versions 0 to 2: the fields up to last_day. */
#define PAYLOAD_FIELD_COUNT_V2 (PAYLOAD_FIELD_LAST_DAY + 1)

#endif
