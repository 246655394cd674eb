/* libFuzzer target: config_load() on an arbitrary file (written to a memfd
 * and opened as /proc/self/fd/N), then what the daemon does with a loaded
 * config: --print-config (config_write_effective), the reload comparison and
 * the librdkafka property lookup.
 *
 * Oracles besides the sanitizers:
 *   - an error is one NUL-terminated line ("FILE:LINE: ..." or "FILE: ...");
 *   - secrets never appear in the effective configuration: redis_password and
 *     every pass-through property whose name contains password/secret is
 *     printed as ******** (or "" when empty);
 *   - round trip, as write_value_text() promises: the effective configuration
 *     loads again, and prints the same (after the "loaded from" line). */
#include "config.h"
#include "fuzz_common.h"

#include <stdbool.h>
#include <stdint.h>

static struct fuzz_file input_file, round_trip_file;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_daemon_init();
    fuzz_file_init(&input_file, "fuzz_config");
    fuzz_file_init(&round_trip_file, "fuzz_config_round_trip");
    return 0;
}

/* The effective configuration without its first line (which names the file). */
static char *effective_text(const struct config *config, size_t *length)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    FUZZ_CHECK(out != NULL, "open_memstream");
    config_write_effective(config, out);
    FUZZ_CHECK(fclose(out) == 0, "fclose");
    char *newline = memchr(text, '\n', size);
    FUZZ_CHECK(newline != NULL, "effective configuration has no header line");
    size_t skip = (size_t)(newline + 1 - text);
    memmove(text, text + skip, size - skip + 1);
    *length = size - skip;
    return text;
}

static bool contains_ci(const char *haystack, size_t length, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= length; i++)
        if (strncasecmp(haystack + i, needle, n) == 0)
            return true;
    return false;
}

/* Every `name = value` line whose name is a secret shows a masked value. */
static void check_masked(const char *text, size_t length)
{
    const char *line = text;
    while (line < text + length) {
        const char *end = memchr(line, '\n', (size_t)(text + length - line));
        if (end == NULL)
            end = text + length;
        const char *equals = memchr(line, '=', (size_t)(end - line));
        if (equals != NULL && line[0] != '#') {
            size_t name_length = (size_t)(equals - line);
            bool secret = contains_ci(line, name_length, "password") ||
                          contains_ci(line, name_length, "secret") ||
                          contains_ci(line, name_length, "sasl.oauthbearer.config") ||
                          contains_ci(line, name_length, "ssl.key.pem");
            if (secret) {
                const char *value = equals + 1;
                while (value < end && *value == ' ')
                    value++;
                size_t value_length = (size_t)(end - value);
                bool masked = (value_length == 8 && memcmp(value, "********", 8) == 0) ||
                              (value_length == 2 && memcmp(value, "\"\"", 2) == 0);
                FUZZ_CHECK(masked, "secret shown: %.*s", (int)(end - line), line);
            }
        }
        line = end + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[1024];
    memset(err, 'Z', sizeof err);
    fuzz_file_write(&input_file, data, size);
    struct config *config = config_load(input_file.path, err, sizeof err);
    if (config == NULL) {
        size_t length = strnlen(err, sizeof err);
        FUZZ_CHECK(length < sizeof err, "error not NUL-terminated");
        FUZZ_CHECK(length > 0, "empty error");
        FUZZ_CHECK(memchr(err, '\n', length) == NULL, "error spans lines: %s", err);
        return 0;
    }
    size_t length;
    char *text = effective_text(config, &length);
    check_masked(text, length);

    char changed[512];
    FUZZ_CHECK(config_restart_only_changes(config, config, changed, sizeof changed) == 0,
               "a config differs from itself: %s", changed);
    (void)config_kafka_property(config, KAFKA_SCOPE_CONSUMER, "bootstrap.servers");
    (void)config_kafka_property(config, KAFKA_SCOPE_PRODUCER, "sasl.password");

    fuzz_file_write(&round_trip_file, text, length);
    struct config *again = config_load(round_trip_file.path, err, sizeof err);
    FUZZ_CHECK(again != NULL, "--print-config output does not load: %s", err);
    size_t again_length;
    char *again_text = effective_text(again, &again_length);
    FUZZ_CHECK(again_length == length && memcmp(text, again_text, length) == 0,
               "round trip changes the configuration:\n%s\n----\n%s", text, again_text);
    free(again_text);
    config_destroy(again);
    free(text);
    config_destroy(config);
    return 0;
}
