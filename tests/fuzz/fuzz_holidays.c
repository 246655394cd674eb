/* libFuzzer target: holidays_load() on an arbitrary calendar file (a memfd
 * opened as /proc/self/fd/N), then every query the daemon makes of a loaded
 * calendar.
 *
 * Oracles besides the sanitizers:
 *   - an error is one NUL-terminated line;
 *   - the covered range runs from a January 1 to a December 31, first <= last;
 *   - holidays_is_working_day() answers for every covered day and refuses the
 *     days just outside;
 *   - holidays_serialize() (into the 16 KiB buffer clock_setup.c uses, and a
 *     buffer large enough for anything) returns its length, and its two lists
 *     agree with holidays_is_working_day(): ascending weekday holidays that
 *     are not worked, then ascending weekend days that are worked. */
#include "fuzz_common.h"
#include "holidays.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

static struct fuzz_file calendar_file;
static char big_buffer[4 << 20];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_daemon_init();
    fuzz_file_init(&calendar_file, "fuzz_holidays");
    return 0;
}

/* Parses a ','-separated list of day numbers in [*cursor, end): each must be
 * ascending, covered, and have the expected weekday class and working flag. */
static void check_list(const struct holidays *holidays, const char *start, const char *end,
                       bool weekend, bool working_expected)
{
    long previous = LONG_MIN;
    const char *p = start;
    while (p < end) {
        char *after;
        long day = strtol(p, &after, 10);
        FUZZ_CHECK(after > p && after <= end, "bad number in serialized list");
        FUZZ_CHECK(day > previous, "list not ascending at %ld", day);
        previous = day;
        bool working;
        FUZZ_CHECK(holidays_is_working_day(holidays, (day_number)day, &working) == 0,
                   "listed day %ld not covered", day);
        FUZZ_CHECK(working == working_expected, "listed day %ld has the wrong working flag", day);
        FUZZ_CHECK((calendar_weekday((day_number)day) >= 5) == weekend,
                   "listed day %ld has the wrong weekday", day);
        p = after;
        if (p < end) {
            FUZZ_CHECK(*p == ',', "expected ',' in serialized list");
            p++;
        }
    }
}

static void check_serialized(const struct holidays *holidays, const char *text, int length)
{
    FUZZ_CHECK(length >= 0 && (size_t)length == strlen(text), "serialize returned %d", length);
    char *after;
    long first = strtol(text, &after, 10);
    FUZZ_CHECK(*after == ',' && first == holidays_first_day(holidays), "bad first day");
    long last = strtol(after + 1, &after, 10);
    FUZZ_CHECK(*after == ',' && last == holidays_last_day(holidays), "bad last day");
    long official_last = strtol(after + 1, &after, 10);
    FUZZ_CHECK(*after == ';' && official_last == holidays_official_last_day(holidays) &&
                   official_last <= last && official_last >= first,
               "bad last official day");
    const char *holidays_start = after + 1;
    const char *holidays_end = strchr(holidays_start, ';');
    FUZZ_CHECK(holidays_end != NULL, "no second ';'");
    check_list(holidays, holidays_start, holidays_end, false, false);
    const char *workdays_start = holidays_end + 1;
    FUZZ_CHECK(strchr(workdays_start, ';') == NULL, "more than three fields");
    check_list(holidays, workdays_start, workdays_start + strlen(workdays_start), true, true);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[1024];
    memset(err, 'Z', sizeof err);
    fuzz_file_write(&calendar_file, data, size);
    struct holidays *holidays = holidays_load(calendar_file.path, err, sizeof err);
    if (holidays == NULL) {
        size_t length = strnlen(err, sizeof err);
        FUZZ_CHECK(length < sizeof err, "error not NUL-terminated");
        FUZZ_CHECK(length > 0, "empty error");
        FUZZ_CHECK(memchr(err, '\n', length) == NULL, "error spans lines: %s", err);
        return 0;
    }
    day_number first = holidays_first_day(holidays), last = holidays_last_day(holidays);
    FUZZ_CHECK(first <= last, "first %d > last %d", first, last);
    int year, month, day_of_month;
    calendar_day_to_ymd(first, &year, &month, &day_of_month);
    FUZZ_CHECK(month == 1 && day_of_month == 1, "first day is not January 1");
    calendar_day_to_ymd(last, &year, &month, &day_of_month);
    FUZZ_CHECK(month == 12 && day_of_month == 31, "last day is not December 31");
    bool working = true;
    FUZZ_CHECK(holidays_is_working_day(holidays, first - 1, &working) == -1, "day before covered");
    FUZZ_CHECK(holidays_is_working_day(holidays, last + 1, &working) == -1, "day after covered");
    for (day_number day = first; day <= last; day++)
        FUZZ_CHECK(holidays_is_working_day(holidays, day, &working) == 0, "day %d not covered",
                   day);

    static char small_buffer[16384];
    int length = holidays_serialize(holidays, small_buffer, sizeof small_buffer);
    if (length >= 0)
        check_serialized(holidays, small_buffer, length);
    length = holidays_serialize(holidays, big_buffer, sizeof big_buffer);
    FUZZ_CHECK(length >= 0, "a 200-year calendar does not fit 4 MiB");
    check_serialized(holidays, big_buffer, length);
    holidays_destroy(holidays);
    return 0;
}
