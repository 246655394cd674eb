/* The clock configuration (see clock_setup.h): parses the rules file,
 * loads the holiday calendar, serializes both for the Lua scripts, and maps
 * each event to the clock operations of the rules it concerns.  Deadlines of
 * starting clocks are computed here (deadline.c), and so are the deadlines of
 * provisional clocks recomputed after the calendar changed; what happens to
 * a clock after its start is the deadline engine's (clock_engine.h). */
#include "clock_setup.h"

#include "calendar.h"
#include "clock_engine.h"
#include "config.h"
#include "deadline.h"
#include "holidays.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RULES_MAX 64
#define VERSIONS_MAX 64 /* `[rule since DATE]` sections, all rules together */
#define RULE_NAME_MAX 40
#define TYPES_MAX 8
#define TEXT_MAX 256
#define BASIS_MAX 1024 /* a law, its article and the quoted half-sentence(s) */

enum rule_role { ROLE_START, ROLE_STOP, ROLE_EXTEND, ROLE_PAUSE, ROLE_RESUME, ROLE_COUNT };

/* One `key=v1,v2` of a start line: the starting event's enumerated key
 * (kind, scope, ...: event.h) must hold one of the values. */
struct start_filter {
    enum event_enum_key key;
    char values[TYPES_MAX][24];
    int value_count;
};

struct rule {
    char name[RULE_NAME_MAX + 1];
    char label[TEXT_MAX];
    char action[TEXT_MAX];
    enum event_type start_type;
    struct start_filter filters[EVENT_ENUM_COUNT];
    int filter_count;
    /* stop/extend/pause/resume event types */
    enum event_type types[ROLE_COUNT][TYPES_MAX];
    int type_count[ROLE_COUNT];
    bool key_is_case;
    bool custody; /* a term in custody (在押): never moved off rest days */
    struct deadline_spec spec;
    struct extension_caps caps;
    char extension_limit[TEXT_MAX]; /* "" when no cap is set */
    char basis[BASIS_MAX];          /* the legal basis, carried by every alert */
    char overdue_text[TEXT_MAX];    /* what the law says once overdue; "" when not set */
    int line;
    unsigned seen; /* keys given, by bit (a version: its own and its rule's) */
    /* a version (`[name since DATE]`): in force for clocks whose start
     * event's local date is on or after `since`; its keys given by bit */
    bool is_version;
    day_number since;
    unsigned version_seen;
};

struct clock_setup {
    struct rule rules[RULES_MAX]; /* each rule as its first section states it */
    size_t rule_count;
    /* the later versions, in file order: a rule's versions in date order */
    struct rule versions[VERSIONS_MAX];
    size_t version_count;
    struct holidays *holidays;
    char *fingerprint; /* build_fingerprint */
};

/* ---- parsing ---- */

enum rule_key {
    RULE_LABEL,
    RULE_ACTION,
    RULE_START,
    RULE_STOP,
    RULE_EXTEND,
    RULE_PAUSE,
    RULE_RESUME,
    RULE_KEY,
    RULE_LENGTH,
    RULE_MOVE,
    RULE_CUSTODY,
    RULE_YELLOW,
    RULE_ORANGE,
    RULE_RED_REPEAT,
    RULE_MAX_EXTENSIONS,
    RULE_MAX_EXTENSION_DAYS,
    RULE_MAX_TOTAL_DAYS,
    RULE_GROUND_MAX_TOTAL_DAYS,
    RULE_GROUNDS,
    RULE_EXTENSION_LIMIT,
    RULE_BASIS,
    RULE_OVERDUE_TEXT,
    RULE_KEY_COUNT
};

static const char *const rule_key_names[RULE_KEY_COUNT] = {
    "label", "action", "start", "stop", "extend", "pause", "resume",
    "key", "length", "move_to_working_day", "custody", "yellow", "orange", "red_repeat",
    "max_extensions", "max_extension_days", "max_total_days", "ground_max_total_days",
    "grounds", "extension_limit", "basis", "overdue_text",
};

/* The cap keys (N or none), each with the extension_caps member it sets. */
#define CAP_KEYS                                                                               \
    ((1u << RULE_MAX_EXTENSIONS) | (1u << RULE_MAX_EXTENSION_DAYS) |                           \
     (1u << RULE_MAX_TOTAL_DAYS) | (1u << RULE_GROUND_MAX_TOTAL_DAYS))
#define CAP_MAX 100000

static int32_t *cap_of(struct rule *rule, enum rule_key key)
{
    switch (key) {
    case RULE_MAX_EXTENSIONS: return &rule->caps.max_extensions;
    case RULE_MAX_EXTENSION_DAYS: return &rule->caps.max_extension_days;
    case RULE_MAX_TOTAL_DAYS: return &rule->caps.max_total_days;
    default: return &rule->caps.ground_max_total_days;
    }
}

#define REQUIRED_KEYS                                                                          \
    ((1u << RULE_LABEL) | (1u << RULE_ACTION) | (1u << RULE_START) | (1u << RULE_STOP) |        \
     (1u << RULE_KEY) | (1u << RULE_LENGTH) | (1u << RULE_YELLOW) | (1u << RULE_ORANGE) |       \
     (1u << RULE_RED_REPEAT) | (1u << RULE_BASIS))

/* What a version cannot change: the events its rule concerns and the clock
 * key (an event maps to a rule's clocks whatever their version); and what
 * it must give: its own legal basis. */
#define RULE_EVENT_KEYS                                                                        \
    ((1u << RULE_START) | (1u << RULE_STOP) | (1u << RULE_EXTEND) | (1u << RULE_PAUSE) |        \
     (1u << RULE_RESUME) | (1u << RULE_KEY))
#define VERSION_REQUIRED_KEYS (1u << RULE_BASIS)

static char *trim(char *text)
{
    while (isspace((unsigned char)*text))
        text++;
    char *end = text + strlen(text);
    while (end > text && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return text;
}

/* Parses "N unit" (unit: second(s), hour(s), day(s), month(s), working day(s)).
 * `allowed` is a bit set of duration units the key accepts. */
static bool parse_duration(const char *text, unsigned allowed, struct duration *out, char *reason,
                           size_t reason_size)
{
    char *end;
    errno = 0;
    long amount = strtol(text, &end, 10);
    if (end == text || errno || amount < 1 || amount > 100000) {
        snprintf(reason, reason_size, "expected '<number> <unit>' with a number from 1 to 100000");
        return false;
    }
    while (isspace((unsigned char)*end))
        end++;
    static const struct {
        const char *word;
        enum duration_unit unit;
    } units[] = {
        {"second", DURATION_SECONDS}, {"seconds", DURATION_SECONDS},
        {"hour", DURATION_HOURS},     {"hours", DURATION_HOURS},
        {"day", DURATION_DAYS},       {"days", DURATION_DAYS},
        {"month", DURATION_MONTHS},   {"months", DURATION_MONTHS},
        {"working day", DURATION_WORKING_DAYS}, {"working days", DURATION_WORKING_DAYS},
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(end, units[i].word) == 0) {
            if (!(allowed & (1u << units[i].unit))) {
                snprintf(reason, reason_size, "'%s' is not allowed here", units[i].word);
                return false;
            }
            out->unit = units[i].unit;
            out->amount = (int32_t)amount;
            return true;
        }
    snprintf(reason, reason_size,
             "unknown unit '%s' (seconds, hours, days, months, working days)", end);
    return false;
}

static bool parse_type(const char *text, enum event_type *out, char *reason, size_t reason_size)
{
    int type = event_type_from_name(text, strlen(text));
    if (type < 0 || type == EVENT_CLOCK_TICK) {
        snprintf(reason, reason_size, "unknown event type '%s'", text);
        return false;
    }
    *out = (enum event_type)type;
    return true;
}

static bool parse_type_list(char *text, enum event_type *types, int *count, char *reason,
                            size_t reason_size)
{
    *count = 0;
    for (char *save = NULL, *item = strtok_r(text, ",", &save); item;
         item = strtok_r(NULL, ",", &save)) {
        item = trim(item);
        if (*item == '\0')
            continue;
        if (*count == TYPES_MAX) {
            snprintf(reason, reason_size, "more than %d event types", TYPES_MAX);
            return false;
        }
        if (!parse_type(item, &types[*count], reason, reason_size))
            return false;
        (*count)++;
    }
    return true;
}

/* Adds `value` to the filter, checked against the values the contract
 * lists for its key on the rule's start type. */
static bool add_filter_value(struct rule *rule, struct start_filter *filter, const char *value,
                             char *reason, size_t reason_size)
{
    const char *name = event_enum_key_name(filter->key);
    const char *const *allowed = event_enum_values(rule->start_type, filter->key);
    bool listed = false;
    for (size_t i = 0; allowed != NULL && allowed[i] != NULL; i++)
        listed |= strcmp(allowed[i], value) == 0;
    if (!listed) {
        snprintf(reason, reason_size, "%s '%s' is not one the event contract lists for %s", name,
                 value, event_type_name(rule->start_type));
        return false;
    }
    if (filter->value_count == TYPES_MAX) {
        snprintf(reason, reason_size, "more than %d values of %s", TYPES_MAX, name);
        return false;
    }
    snprintf(filter->values[filter->value_count++], sizeof filter->values[0], "%s", value);
    return true;
}

/* Starts a filter at "key=values" (the values may be empty when they follow
 * in the next words). */
static struct start_filter *open_filter(struct rule *rule, char *word, char **values,
                                        char *reason, size_t reason_size)
{
    char *equals = strchr(word, '=');
    *equals = '\0';
    *values = equals + 1;
    int key = event_enum_key_from_name(word, strlen(word));
    if (key < 0 || event_enum_values(rule->start_type, (enum event_enum_key)key) == NULL) {
        snprintf(reason, reason_size, "%s events have no enumerated key '%s' to filter on",
                 event_type_name(rule->start_type), word);
        return NULL;
    }
    for (int i = 0; i < rule->filter_count; i++)
        if ((int)rule->filters[i].key == key) {
            snprintf(reason, reason_size, "'%s=' given twice", word);
            return NULL;
        }
    struct start_filter *filter = &rule->filters[rule->filter_count++];
    memset(filter, 0, sizeof *filter);
    filter->key = (enum event_enum_key)key;
    return filter;
}

/* "TYPE [key=v1,v2 ...]": the starting type, then filters on its enumerated
 * keys (kind, scope, admin_type, publish), each value one the contract lists
 * for that type; all filters must match (README "Deadline clocks"). */
static bool parse_start(char *text, struct rule *rule, char *reason, size_t reason_size)
{
    char *save = NULL, *word = strtok_r(text, " \t", &save);
    if (word == NULL) {
        snprintf(reason, reason_size, "expected an event type");
        return false;
    }
    if (!parse_type(word, &rule->start_type, reason, reason_size))
        return false;
    rule->filter_count = 0;
    struct start_filter *filter = NULL;
    while ((word = strtok_r(NULL, " \t", &save)) != NULL) {
        char *values = word;
        if (strchr(word, '=') != NULL) {
            if (filter != NULL && filter->value_count == 0) {
                snprintf(reason, reason_size, "'%s=' lists no value",
                         event_enum_key_name(filter->key));
                return false;
            }
            filter = open_filter(rule, word, &values, reason, reason_size);
            if (filter == NULL)
                return false;
        } else if (filter == NULL) {
            snprintf(reason, reason_size, "expected 'key=value,...' after the type, not '%s'",
                     word);
            return false;
        }
        for (char *item_save = NULL, *item = strtok_r(values, ",", &item_save); item;
             item = strtok_r(NULL, ",", &item_save))
            if (!add_filter_value(rule, filter, item, reason, reason_size))
                return false;
    }
    if (filter != NULL && filter->value_count == 0) {
        snprintf(reason, reason_size, "'%s=' lists no value", event_enum_key_name(filter->key));
        return false;
    }
    return true;
}

/* Optional warning: "none" or a duration before the deadline. */
static bool parse_warning(const char *text, bool *present, struct duration *out, char *reason,
                          size_t reason_size)
{
    if (strcmp(text, "none") == 0) {
        *present = false;
        return true;
    }
    *present = true;
    return parse_duration(text,
                          (1u << DURATION_SECONDS) | (1u << DURATION_HOURS) |
                              (1u << DURATION_DAYS) | (1u << DURATION_WORKING_DAYS),
                          out, reason, reason_size);
}

/* A cap: "none", or a number from 0 to CAP_MAX. */
static bool parse_cap(const char *text, int32_t *out, char *reason, size_t reason_size)
{
    if (strcmp(text, "none") == 0) {
        *out = EXTENSION_UNCAPPED;
        return true;
    }
    char *end;
    errno = 0;
    long number = strtol(text, &end, 10);
    if (end == text || *end != '\0' || errno || number < 0 || number > CAP_MAX) {
        snprintf(reason, reason_size, "expected 'none' or a number from 0 to %d", CAP_MAX);
        return false;
    }
    *out = (int32_t)number;
    return true;
}

/* `grounds`: the comma-separated extension grounds (the contract's `ground`
 * values, event.h) that unlock the rule's ground_max_total_days. */
static bool parse_grounds(char *text, unsigned *out, char *reason, size_t reason_size)
{
    *out = 0;
    for (char *save = NULL, *item = strtok_r(text, ",", &save); item;
         item = strtok_r(NULL, ",", &save)) {
        item = trim(item);
        if (*item == '\0')
            continue;
        int ground = event_ground_from_name(item, strlen(item));
        if (ground < 0) {
            snprintf(reason, reason_size, "'%s' is not a ground of the event contract (README "
                     "\"Event contract\": ground)", item);
            return false;
        }
        *out |= EXTENSION_GROUND_BIT(ground);
    }
    if (*out == 0)
        snprintf(reason, reason_size, "lists no ground");
    return *out != 0;
}

static bool set_rule_key(struct rule *rule, enum rule_key key, char *value, char *reason,
                         size_t reason_size)
{
    switch (key) {
    case RULE_GROUNDS:
        return parse_grounds(value, &rule->caps.grounds, reason, reason_size);
    case RULE_MAX_EXTENSIONS:
    case RULE_MAX_EXTENSION_DAYS:
    case RULE_MAX_TOTAL_DAYS:
    case RULE_GROUND_MAX_TOTAL_DAYS:
        return parse_cap(value, cap_of(rule, key), reason, reason_size);
    case RULE_LABEL:
    case RULE_ACTION:
    case RULE_EXTENSION_LIMIT:
    case RULE_OVERDUE_TEXT:
    case RULE_BASIS: {
        char *target = key == RULE_LABEL             ? rule->label
                       : key == RULE_ACTION          ? rule->action
                       : key == RULE_EXTENSION_LIMIT ? rule->extension_limit
                       : key == RULE_OVERDUE_TEXT    ? rule->overdue_text
                                                     : rule->basis;
        size_t size = key == RULE_BASIS ? BASIS_MAX : TEXT_MAX;
        if (*value == '\0' || strlen(value) >= size || strchr(value, '|')) {
            snprintf(reason, reason_size, "must be 1..%zu bytes without '|'", size - 1);
            return false;
        }
        memcpy(target, value, strlen(value) + 1);
        return true;
    }
    case RULE_START:
        return parse_start(value, rule, reason, reason_size);
    case RULE_STOP:
    case RULE_EXTEND:
    case RULE_PAUSE:
    case RULE_RESUME: {
        enum rule_role role = key == RULE_STOP     ? ROLE_STOP
                              : key == RULE_EXTEND ? ROLE_EXTEND
                              : key == RULE_PAUSE  ? ROLE_PAUSE
                                                   : ROLE_RESUME;
        return parse_type_list(value, rule->types[role], &rule->type_count[role], reason,
                               reason_size);
    }
    case RULE_KEY:
        if (strcmp(value, "ref") != 0 && strcmp(value, "case") != 0) {
            snprintf(reason, reason_size, "expected 'ref' or 'case'");
            return false;
        }
        rule->key_is_case = strcmp(value, "case") == 0;
        return true;
    case RULE_LENGTH:
        return parse_duration(value, 0x1f, &rule->spec.length, reason, reason_size);
    case RULE_MOVE:
    case RULE_CUSTODY: {
        if (strcmp(value, "yes") != 0 && strcmp(value, "no") != 0) {
            snprintf(reason, reason_size, "expected 'yes' or 'no'");
            return false;
        }
        bool *target = key == RULE_MOVE ? &rule->spec.move_to_working_day : &rule->custody;
        *target = strcmp(value, "yes") == 0;
        return true;
    }
    case RULE_YELLOW:
        return parse_warning(value, &rule->spec.has_yellow, &rule->spec.yellow_before, reason,
                             reason_size);
    case RULE_ORANGE:
        return parse_warning(value, &rule->spec.has_orange, &rule->spec.orange_before, reason,
                             reason_size);
    case RULE_RED_REPEAT: {
        if (strcmp(value, "none") == 0) {
            rule->spec.red_repeat_ms = 0;
            return true;
        }
        struct duration repeat;
        if (!parse_duration(value,
                            (1u << DURATION_SECONDS) | (1u << DURATION_HOURS) |
                                (1u << DURATION_DAYS),
                            &repeat, reason, reason_size))
            return false;
        int64_t unit_ms = repeat.unit == DURATION_SECONDS ? 1000
                          : repeat.unit == DURATION_HOURS ? 3600000
                                                          : 86400000;
        rule->spec.red_repeat_ms = unit_ms * repeat.amount;
        return true;
    }
    case RULE_KEY_COUNT:
        break;
    }
    return false;
}

/* Whether a clock keyed by case (else by ref) may take events of `type`:
 * its key must be the type's partition key in the event contract
 * (event_partition_key_name), so every event of one clock lands on one
 * partition. */
static bool key_partitions(enum event_type type, bool key_is_case)
{
    const char *name = event_partition_key_name(type);
    return name != NULL && strcmp(name, key_is_case ? "case" : "ref") == 0;
}

static bool type_carries_days(enum event_type type)
{
    return type == EVENT_CASE_EXTENDED || type == EVENT_MEASURE_EXTENDED ||
           type == EVENT_PROPERTY_EXTENDED || type == EVENT_DETENTION_DECIDED;
}

/* Whether the rule sets any cap (a key given with a number). */
static bool has_caps(const struct extension_caps *caps)
{
    return caps->max_extensions != EXTENSION_UNCAPPED ||
           caps->max_extension_days != EXTENSION_UNCAPPED ||
           caps->max_total_days != EXTENSION_UNCAPPED ||
           caps->ground_max_total_days != EXTENSION_UNCAPPED || caps->grounds != 0;
}

/* The extension caps of a complete rule: they need extending events and
 * the law's words (extension_limit); a total counts calendar days, so it
 * needs a day length it is not below; the grounded total goes with a plain
 * one it is not below and with the grounds that unlock it. */
static bool validate_caps(const struct rule *rule, char *reason, size_t reason_size)
{
    const struct extension_caps *caps = &rule->caps;
    if (!has_caps(caps)) {
        if (rule->extension_limit[0] != '\0')
            snprintf(reason, reason_size, "rule '%s': extension_limit without a cap",
                     rule->name);
        return rule->extension_limit[0] == '\0';
    }
    const char *problem = NULL;
    if (rule->type_count[ROLE_EXTEND] == 0)
        problem = "extension caps without extend events";
    else if (rule->extension_limit[0] == '\0')
        problem = "extension caps need extension_limit (what the law allows, for the alert text)";
    else if (caps->max_total_days != EXTENSION_UNCAPPED &&
             rule->spec.length.unit != DURATION_DAYS)
        problem = "max_total_days counts calendar days: the length must be in days";
    else if (caps->max_total_days != EXTENSION_UNCAPPED &&
             caps->max_total_days < rule->spec.length.amount)
        problem = "max_total_days is below the length";
    else if (caps->ground_max_total_days != EXTENSION_UNCAPPED &&
             (caps->max_total_days == EXTENSION_UNCAPPED ||
              caps->ground_max_total_days < caps->max_total_days))
        problem = "ground_max_total_days needs max_total_days, and is not below it";
    else if ((caps->ground_max_total_days != EXTENSION_UNCAPPED) != (caps->grounds != 0))
        problem = "ground_max_total_days and grounds (the grounds that unlock it) go together";
    if (problem)
        snprintf(reason, reason_size, "rule '%s': %s", rule->name, problem);
    return problem == NULL;
}

/* Checks a complete rule; returns false with a reason. */
static bool validate_rule(const struct rule *rule, char *reason, size_t reason_size)
{
    if (rule->is_version && (VERSION_REQUIRED_KEYS & ~rule->version_seen)) {
        char since[16];
        calendar_format_day(rule->since, since, sizeof since);
        snprintf(reason, reason_size,
                 "version %s of rule '%s' lacks key 'basis' (every version names its own "
                 "legal basis)",
                 since, rule->name);
        return false;
    }
    unsigned missing = REQUIRED_KEYS & ~rule->seen;
    for (int key = 0; key < RULE_KEY_COUNT; key++)
        if (missing & (1u << key)) {
            snprintf(reason, reason_size, "rule '%s' lacks key '%s'", rule->name,
                     rule_key_names[key]);
            return false;
        }
    for (int role = ROLE_START; role < ROLE_COUNT; role++)
        for (int i = 0; i < (role == ROLE_START ? 1 : rule->type_count[role]); i++) {
            enum event_type type = role == ROLE_START ? rule->start_type : rule->types[role][i];
            if (!key_partitions(type, rule->key_is_case)) {
                const char *partition_key = event_partition_key_name(type);
                snprintf(reason, reason_size,
                         "rule '%s': key = %s, but %s events are keyed by %s on Kafka (README "
                         "\"Event contract\"): a clock's events must share its key",
                         rule->name, rule->key_is_case ? "case" : "ref", event_type_name(type),
                         partition_key ? partition_key : "nothing");
                return false;
            }
            if (role == ROLE_EXTEND && !type_carries_days(type)) {
                snprintf(reason, reason_size, "rule '%s': %s events carry no days to extend by",
                         rule->name, event_type_name(type));
                return false;
            }
        }
    if ((rule->type_count[ROLE_PAUSE] == 0) != (rule->type_count[ROLE_RESUME] == 0)) {
        snprintf(reason, reason_size, "rule '%s': pause and resume go together", rule->name);
        return false;
    }
    enum duration_unit unit = rule->spec.length.unit;
    if (rule->spec.move_to_working_day &&
        (unit == DURATION_SECONDS || unit == DURATION_HOURS)) {
        snprintf(reason, reason_size,
                 "rule '%s': move_to_working_day applies to day and month lengths only",
                 rule->name);
        return false;
    }
    if (rule->custody && rule->spec.move_to_working_day) {
        snprintf(reason, reason_size,
                 "rule '%s': custody = yes with move_to_working_day = yes: a term in custody "
                 "is never moved off rest days (刑事诉讼法 第一百零五条: 在押期间，应当至期满之日"
                 "为止，不得因节假日而延长)",
                 rule->name);
        return false;
    }
    return validate_caps(rule, reason, reason_size);
}

void clock_setup_coverage(const struct clock_setup *setup, int64_t now_ms,
                          struct calendar_coverage *out)
{
    out->official_end_ms =
        calendar_day_start_ms(holidays_official_last_day(setup->holidays) + 1);
    out->end_ms = calendar_day_start_ms(holidays_last_day(setup->holidays) + 1);
    out->official_ending =
        now_ms >= out->official_end_ms - (int64_t)CALENDAR_ENDING_DAYS * 86400000;
}

static const struct rule *find_rule(const struct clock_setup *setup, const char *name)
{
    for (size_t i = 0; i < setup->rule_count; i++)
        if (strcmp(setup->rules[i].name, name) == 0)
            return &setup->rules[i];
    return NULL;
}

/* The version of rule `name` in force for a clock started at started_ms:
 * the latest whose date is on or before the start's local date, or the rule
 * as its first section states it; NULL when no such rule. */
static const struct rule *rule_at(const struct clock_setup *setup, const char *name,
                                  int64_t started_ms)
{
    const struct rule *rule = find_rule(setup, name);
    if (rule == NULL || setup->version_count == 0)
        return rule;
    day_number day = calendar_local_day(started_ms);
    for (size_t i = 0; i < setup->version_count; i++) {
        const struct rule *version = &setup->versions[i];
        if (version->since <= day && strcmp(version->name, name) == 0)
            rule = version; /* a rule's versions are in date order */
    }
    return rule;
}

static bool valid_rule_name(const char *name)
{
    size_t length = strlen(name);
    if (length == 0 || length > RULE_NAME_MAX)
        return false;
    for (size_t i = 0; i < length; i++)
        if (!(islower((unsigned char)name[i]) || isdigit((unsigned char)name[i]) || name[i] == '_'))
            return false;
    return true;
}

/* "YYYY-MM-DD", a real date, and nothing after it, into *day. */
static bool parse_date(const char *text, day_number *day)
{
    return calendar_read_day(&text, day) && *text == '\0';
}

/* The latest section of rule `name` so far: its last version, or the rule. */
static struct rule *latest_section(struct clock_setup *setup, const char *name)
{
    struct rule *latest = (struct rule *)find_rule(setup, name);
    for (size_t i = 0; latest != NULL && i < setup->version_count; i++)
        if (strcmp(setup->versions[i].name, name) == 0)
            latest = &setup->versions[i];
    return latest;
}

/* A version section "NAME since YYYY-MM-DD" (`text` without brackets): a
 * copy of the rule's latest section so far, whose keys the version's own
 * override.  Returns NULL with a reason. */
static struct rule *open_version(struct clock_setup *setup, char *text, char *since,
                                 char *reason, size_t reason_size)
{
    *since = '\0';
    char *date = trim(since + strlen(" since"));
    day_number day;
    if (!parse_date(date, &day)) {
        snprintf(reason, reason_size, "expected '[rule_name since YYYY-MM-DD]', a real date, "
                 "not '%s'", date);
        return NULL;
    }
    const char *name = trim(text);
    struct rule *previous = latest_section(setup, name);
    if (previous == NULL) {
        snprintf(reason, reason_size,
                 "a version of rule '%s', which is not defined above (a version follows its rule)",
                 name);
        return NULL;
    }
    if (previous->is_version && day <= previous->since) {
        char before[16];
        calendar_format_day(previous->since, before, sizeof before);
        snprintf(reason, reason_size,
                 day == previous->since
                     ? "version %s of rule '%s' given twice"
                     : "version %s of rule '%s' is not after its version %s (versions in date "
                       "order)",
                 date, name, before);
        return NULL;
    }
    if (setup->version_count == VERSIONS_MAX) {
        snprintf(reason, reason_size, "more than %d versions", VERSIONS_MAX);
        return NULL;
    }
    struct rule *version = &setup->versions[setup->version_count++];
    *version = *previous;
    version->is_version = true;
    version->since = day;
    version->version_seen = 0;
    return version;
}

/* Opens the section `text` ("[NAME]" or "[NAME since YYYY-MM-DD]"): a new
 * rule, or a new version of one defined above.  Returns NULL with a reason. */
static struct rule *open_section(struct clock_setup *setup, char *text, char *reason,
                                 size_t reason_size)
{
    char *close = strchr(text, ']');
    if (close == NULL || close[1] != '\0') {
        snprintf(reason, reason_size, "expected '[rule_name]' or '[rule_name since YYYY-MM-DD]'");
        return NULL;
    }
    *close = '\0';
    text++;
    char *since = strstr(text, " since");
    if (since != NULL)
        return open_version(setup, text, since, reason, reason_size);
    if (!valid_rule_name(text)) {
        snprintf(reason, reason_size, "rule name '%s' must be 1..%d of [a-z0-9_]", text,
                 RULE_NAME_MAX);
        return NULL;
    }
    if (find_rule(setup, text)) {
        snprintf(reason, reason_size, "rule '%s' defined twice", text);
        return NULL;
    }
    if (setup->rule_count == RULES_MAX) {
        snprintf(reason, reason_size, "more than %d rules", RULES_MAX);
        return NULL;
    }
    struct rule *rule = &setup->rules[setup->rule_count++];
    memset(rule, 0, sizeof *rule);
    rule->caps = (struct extension_caps){EXTENSION_UNCAPPED, EXTENSION_UNCAPPED,
                                         EXTENSION_UNCAPPED, EXTENSION_UNCAPPED, 0};
    snprintf(rule->name, sizeof rule->name, "%s", text);
    return rule;
}

static int parse_rules_file(struct clock_setup *setup, const char *path, char *err,
                            size_t err_size)
{
    FILE *file = fopen(path, "r");
    if (file == NULL) {
        snprintf(err, err_size, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    char line[1024], reason[300];
    int number = 0;
    struct rule *rule = NULL;
    int status = -1;
    while (fgets(line, sizeof line, file)) {
        number++;
        if (strchr(line, '\n') == NULL && !feof(file)) {
            snprintf(err, err_size, "%s:%d: line too long", path, number);
            goto done;
        }
        char *text = trim(line);
        if (*text == '\0' || *text == '#')
            continue;
        if (*text == '[') {
            if (rule && !validate_rule(rule, reason, sizeof reason)) {
                snprintf(err, err_size, "%s:%d: %s", path, rule->line, reason);
                goto done;
            }
            rule = open_section(setup, text, reason, sizeof reason);
            if (rule == NULL) {
                snprintf(err, err_size, "%s:%d: %s", path, number, reason);
                goto done;
            }
            rule->line = number;
            continue;
        }
        char *equals = strchr(text, '=');
        if (equals == NULL) {
            snprintf(err, err_size, "%s:%d: expected 'key = value'", path, number);
            goto done;
        }
        *equals = '\0';
        char *name = trim(text), *value = trim(equals + 1);
        if (rule == NULL) {
            snprintf(err, err_size, "%s:%d: key '%s' outside a [rule] section", path, number,
                     name);
            goto done;
        }
        int key = -1;
        for (int i = 0; i < RULE_KEY_COUNT; i++)
            if (strcmp(name, rule_key_names[i]) == 0)
                key = i;
        if (key < 0) {
            snprintf(err, err_size, "%s:%d: unknown key '%s' in rule '%s'", path, number, name,
                     rule->name);
            goto done;
        }
        unsigned *given = rule->is_version ? &rule->version_seen : &rule->seen;
        if (*given & (1u << key)) {
            snprintf(err, err_size, "%s:%d: key '%s' given twice in rule '%s'", path, number, name,
                     rule->name);
            goto done;
        }
        if (rule->is_version && (RULE_EVENT_KEYS & (1u << key))) {
            snprintf(err, err_size,
                     "%s:%d: key '%s' cannot change in a version of rule '%s': a rule's events "
                     "and key are the same in every version",
                     path, number, name, rule->name);
            goto done;
        }
        *given |= 1u << key;
        rule->seen |= 1u << key;
        if (!set_rule_key(rule, (enum rule_key)key, value, reason, sizeof reason)) {
            snprintf(err, err_size, "%s:%d: key '%s': %s", path, number, name, reason);
            goto done;
        }
    }
    if (rule && !validate_rule(rule, reason, sizeof reason)) {
        snprintf(err, err_size, "%s:%d: %s", path, rule->line, reason);
        goto done;
    }
    if (setup->rule_count == 0) {
        snprintf(err, err_size, "%s: no rules", path);
        goto done;
    }
    status = 0;
done:
    fclose(file);
    return status;
}

/* ---- what clocks depend on ---- */

static char unit_letter(enum duration_unit unit)
{
    switch (unit) {
    case DURATION_SECONDS: return 's';
    case DURATION_HOURS: return 'h';
    case DURATION_DAYS: return 'd';
    case DURATION_MONTHS: return 'M';
    case DURATION_WORKING_DAYS: return 'w';
    }
    return '?';
}

static void write_duration(FILE *out, bool present, const struct duration *duration)
{
    if (present)
        fprintf(out, "%c%d,", unit_letter(duration->unit), duration->amount);
    else
        fprintf(out, "-,");
}

/* A text that differs whenever a running clock could compute differently:
 * every rule's deadline and stop types, and the holiday calendar
 * (clock_setup_same_clocks compares it). */
static int build_fingerprint(struct clock_setup *setup)
{
    char holidays[16384];
    if (holidays_serialize(setup->holidays, holidays, sizeof holidays) < 0)
        return -1;
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    if (out == NULL)
        return -1;
    for (size_t i = 0; i < setup->rule_count + setup->version_count; i++) {
        const struct rule *rule = i < setup->rule_count ? &setup->rules[i]
                                                        : &setup->versions[i - setup->rule_count];
        const struct deadline_spec *spec = &rule->spec;
        fprintf(out, "%s@%" PRId32 ":", rule->name, rule->is_version ? rule->since : 0);
        write_duration(out, true, &spec->length);
        write_duration(out, spec->has_yellow, &spec->yellow_before);
        write_duration(out, spec->has_orange, &spec->orange_before);
        fprintf(out, "%d,%" PRId64 ",", spec->move_to_working_day ? 1 : 0, spec->red_repeat_ms);
        for (int t = 0; t < rule->type_count[ROLE_STOP]; t++)
            fprintf(out, "%s+", event_type_name(rule->types[ROLE_STOP][t]));
        fprintf(out, ";");
    }
    fprintf(out, "|%s", holidays);
    if (fclose(out) != 0) {
        free(text);
        return -1;
    }
    setup->fingerprint = text;
    return 0;
}

/* ---- public ---- */

struct clock_setup *clock_setup_load(const struct config *config, char *err, size_t err_size)
{
    struct clock_setup *setup = calloc(1, sizeof *setup);
    if (setup == NULL) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    if (parse_rules_file(setup, config->rules_file, err, err_size) != 0)
        goto fail;
    setup->holidays = holidays_load(config->holidays_file, err, err_size);
    if (setup->holidays == NULL)
        goto fail;
    if (build_fingerprint(setup) != 0) {
        snprintf(err, err_size, "out of memory");
        goto fail;
    }
    /* Every event type may concern at most CLOCK_OPS_MAX rules. */
    for (int type = 0; type < EVENT_TYPE_COUNT; type++) {
        int uses = 0;
        for (size_t i = 0; i < setup->rule_count; i++) {
            const struct rule *rule = &setup->rules[i];
            uses += rule->start_type == (enum event_type)type;
            for (int role = ROLE_STOP; role < ROLE_COUNT; role++)
                for (int t = 0; t < rule->type_count[role]; t++)
                    uses += rule->types[role][t] == (enum event_type)type;
        }
        if (uses > CLOCK_OPS_MAX) {
            snprintf(err, err_size, "%s: %s concerns %d rules (at most %d)", config->rules_file,
                     event_type_name((enum event_type)type), uses, CLOCK_OPS_MAX);
            goto fail;
        }
    }
    return setup;
fail:
    clock_setup_destroy(setup);
    return NULL;
}

void clock_setup_destroy(struct clock_setup *setup)
{
    if (setup == NULL)
        return;
    holidays_destroy(setup->holidays);
    free(setup->fingerprint);
    free(setup);
}

bool clock_setup_same_clocks(const struct clock_setup *a, const struct clock_setup *b)
{
    return strcmp(a->fingerprint, b->fingerprint) == 0;
}

const struct holidays *clock_setup_holidays(const struct clock_setup *setup)
{
    return setup->holidays;
}
size_t clock_setup_rule_count(const struct clock_setup *setup)
{
    size_t count = 0;
    for (size_t i = 0; i < setup->rule_count; i++)
        count += !setup->rules[i].is_version;
    return count;
}

const char *clock_setup_rule_name(const struct clock_setup *setup, size_t index)
{
    for (size_t i = 0; i < setup->rule_count; i++)
        if (!setup->rules[i].is_version && index-- == 0)
            return setup->rules[i].name;
    return NULL;
}

const struct deadline_spec *clock_setup_rule_spec(const struct clock_setup *setup,
                                                  const char *rule_name, int64_t started_ms)
{
    const struct rule *rule = rule_at(setup, rule_name, started_ms);
    return rule ? &rule->spec : NULL;
}

bool clock_setup_rule_may_use_calendar(const struct clock_setup *setup, const char *rule_name)
{
    const struct rule *rule = find_rule(setup, rule_name);
    bool uses = rule != NULL && deadline_uses_calendar(&rule->spec);
    for (size_t i = 0; i < setup->version_count; i++)
        uses |= strcmp(setup->versions[i].name, rule_name) == 0 &&
                deadline_uses_calendar(&setup->versions[i].spec);
    return uses;
}

const struct extension_caps *clock_setup_rule_caps(const struct clock_setup *setup,
                                                   const char *rule_name, int64_t started_ms)
{
    const struct rule *rule = rule_at(setup, rule_name, started_ms);
    return rule && has_caps(&rule->caps) ? &rule->caps : NULL;
}

bool clock_setup_rule_stops_on(const struct clock_setup *setup, const char *rule_name,
                               int type)
{
    const struct rule *rule = find_rule(setup, rule_name);
    if (rule == NULL)
        return false;
    for (int t = 0; t < rule->type_count[ROLE_STOP]; t++)
        if ((int)rule->types[ROLE_STOP][t] == type)
            return true;
    return false;
}

bool clock_setup_is_provisional(const struct clock_setup *setup, const char *rule_name,
                                int64_t started_ms, bool has_last_day, int32_t last_day)
{
    const struct rule *rule = rule_at(setup, rule_name, started_ms);
    return rule != NULL && has_last_day && deadline_uses_calendar(&rule->spec) &&
           last_day > holidays_official_last_day(setup->holidays);
}

/* Reads "<digits>" (optionally signed) at *cursor into *value. */
static bool read_entry_number(const char **cursor, int64_t low, int64_t high, int64_t *value)
{
    char *end;
    errno = 0;
    long long number = strtoll(*cursor, &end, 10);
    if (end == *cursor || errno != 0 || number < low || number > high)
        return false;
    *cursor = end;
    *value = number;
    return true;
}

int clock_setup_recompute(const struct clock_setup *setup, const char *rule_name,
                          const char *entry, int64_t started_ms, int32_t recorded_last_day,
                          int64_t recorded_base_deadline_ms, struct clock_recompute *out,
                          char *err, size_t err_size)
{
    const struct rule *rule = rule_at(setup, rule_name, started_ms);
    if (rule == NULL) {
        snprintf(err, err_size, "rule '%s' is not configured", rule_name);
        return -1;
    }
    const struct deadline_spec *spec = &rule->spec;
    enum duration_unit unit = spec->length.unit;
    struct clock_recompute result = {recorded_last_day, recorded_base_deadline_ms, false};
    if (unit != DURATION_SECONDS && unit != DURATION_HOURS) {
        int64_t day;
        const char *cursor = entry + 1;
        if (entry[0] == 'S') {
            struct deadline_result start;
            if (deadline_compute(spec, setup->holidays, started_ms, 0, &start, err, err_size) != 0)
                return -1;
            day = start.last_day;
        } else if (entry[0] != 'D' || !read_entry_number(&cursor, INT32_MIN, INT32_MAX, &day)) {
            snprintf(err, err_size, "malformed provisional entry '%s'", entry);
            return -1;
        }
        while (*cursor == ',') {
            cursor++;
            int64_t days;
            day_number extended;
            if (!read_entry_number(&cursor, -100000, 100000, &days)) {
                snprintf(err, err_size, "malformed provisional entry '%s'", entry);
                return -1;
            }
            if (deadline_extend_last_day(spec, setup->holidays, (day_number)day, (int32_t)days,
                                         &extended, err, err_size) != 0)
                return -1;
            day = extended;
        }
        if (*cursor != '\0') {
            snprintf(err, err_size, "malformed provisional entry '%s'", entry);
            return -1;
        }
        result.last_day = (int32_t)day;
        result.base_deadline_ms = calendar_day_start_ms((day_number)day + 1);
    }
    result.provisional =
        clock_setup_is_provisional(setup, rule_name, started_ms, true, result.last_day);
    *out = result;
    return 0;
}

void clock_setup_wording(const struct clock_setup *setup, const char *rule_name,
                         int64_t started_ms, struct alert_wording *out)
{
    const struct rule *rule = rule_at(setup, rule_name, started_ms);
    out->label = rule ? rule->label : rule_name;
    out->action = rule ? rule->action : "请及时处理";
    out->extension_limit = rule ? rule->extension_limit : "";
    out->basis = rule ? rule->basis : "";
    out->overdue_text = rule ? rule->overdue_text : "";
}

/* Whether an event's `until` (deadline `until_deadline_ms`) is later than
 * the deadline the rule computes from the event's time, for a rule whose
 * term the law bounds (one with extension caps: bail, 监视居住, detention,
 * seizure, 治安 case): the document's term goes beyond the law's.  A rule
 * deadline the calendar cannot compute (past its provisional years) is not
 * held against the document. */
static bool until_beyond_law(const struct rule *rule, const struct holidays *holidays,
                             const struct duewatch_event *event, int64_t until_deadline_ms)
{
    if (event->until_ms == 0 || rule->extension_limit[0] == '\0')
        return false;
    struct deadline_result legal;
    char ignored[64];
    if (deadline_compute(&rule->spec, holidays, event->ts_ms, 0, &legal, ignored,
                         sizeof ignored) != 0)
        return false;
    return until_deadline_ms > legal.deadline_ms;
}

/* Whether the event passes every filter of the rule's start line. */
static bool start_matches(const struct rule *rule, const struct duewatch_event *event)
{
    for (int f = 0; f < rule->filter_count; f++) {
        const struct start_filter *filter = &rule->filters[f];
        struct text value = event_enum_value(event, filter->key);
        bool listed = false;
        for (int i = 0; i < filter->value_count && !listed; i++)
            listed = strlen(filter->values[i]) == value.length &&
                     memcmp(filter->values[i], value.bytes, value.length) == 0;
        if (!listed)
            return false;
    }
    return true;
}

/* An extension whose new last day may have to be moved to a working day (or
 * counted in working days: in any version of the rule) is refused when that
 * day is certainly past the holiday calendar: a clock not yet past its
 * deadline has its last day on or after the event's day, so the new one is
 * at least `days` after that day.
 * Returns -1 with a reason in err. */
static int check_extension_covered(const struct clock_setup *setup, const struct rule *rule,
                                   const struct duewatch_event *event, char *err,
                                   size_t err_size)
{
    bool moves = false; /* in any version: the extended clock's is not known here */
    for (size_t i = 0; i <= setup->version_count; i++) {
        const struct rule *section = i == 0 ? rule : &setup->versions[i - 1];
        moves |= strcmp(section->name, rule->name) == 0 &&
                 (section->spec.move_to_working_day ||
                  section->spec.length.unit == DURATION_WORKING_DAYS);
    }
    if (!moves)
        return 0;
    day_number least = calendar_local_day(event->ts_ms) + (day_number)event->days;
    day_number last = holidays_last_day(setup->holidays);
    if (least <= last)
        return 0;
    char from[16], end[16];
    calendar_format_day(calendar_local_day(event->ts_ms), from, sizeof from);
    calendar_format_day(last, end, sizeof end);
    snprintf(err, err_size,
             "rule '%s': an extension by %" PRIu32 " days from %s ends after the holiday "
             "calendar's last day %s: the move to a working day cannot be computed",
             rule->name, event->days, from, end);
    return -1;
}

int clock_setup_ops_for_event(const struct clock_setup *setup, const struct duewatch_event *event,
                              struct clock_op *ops, char *err, size_t err_size)
{
    static const enum clock_op_kind kinds[ROLE_COUNT] = {
        CLOCK_OP_START, CLOCK_OP_STOP, CLOCK_OP_EXTEND, CLOCK_OP_PAUSE, CLOCK_OP_RESUME};
    int count = 0;
    for (size_t i = 0; i < setup->rule_count; i++) {
        const struct rule *rule = &setup->rules[i];
        for (int role = ROLE_START; role < ROLE_COUNT; role++) {
            bool concerned = false;
            if (role == ROLE_START)
                concerned = rule->start_type == event->type && start_matches(rule, event);
            else
                for (int t = 0; t < rule->type_count[role]; t++)
                    concerned |= rule->types[role][t] == event->type;
            if (!concerned || count == CLOCK_OPS_MAX)
                continue;
            struct clock_op *op = &ops[count];
            memset(op, 0, sizeof *op);
            op->kind = kinds[role];
            op->rule = rule->name;
            op->key_is_case = rule->key_is_case;
            op->key = rule->key_is_case ? event->case_number : event->ref;
            if (op->key.length == 0)
                continue; /* validated rules make this impossible; never key on "" */
            if (role == ROLE_EXTEND && check_extension_covered(setup, rule, event, err,
                                                               err_size) != 0)
                return -1;
            if (role == ROLE_START) {
                const struct rule *version = rule_at(setup, rule->name, event->ts_ms);
                struct deadline_result result;
                if (deadline_compute(&version->spec, setup->holidays, event->ts_ms,
                                     event->until_ms, &result, err, err_size) != 0)
                    return -1;
                enum duration_unit unit = version->spec.length.unit;
                op->has_last_day = event->until_ms != 0 ||
                                   (unit != DURATION_SECONDS && unit != DURATION_HOURS);
                op->last_day = result.last_day;
                op->base_deadline_ms = result.deadline_ms;
                op->until_beyond_law = until_beyond_law(version, setup->holidays, event,
                                                        result.deadline_ms);
                if (clock_setup_is_provisional(setup, rule->name, event->ts_ms,
                                               op->has_last_day, op->last_day)) {
                    if (event->until_ms != 0)
                        snprintf(op->provisional_entry, sizeof op->provisional_entry,
                                 "D%" PRId32, op->last_day);
                    else
                        snprintf(op->provisional_entry, sizeof op->provisional_entry, "S");
                }
            }
            count++;
        }
    }
    return count;
}
