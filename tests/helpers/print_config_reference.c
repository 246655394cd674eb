/* Prints the reference configuration (every key with its default, bounds and
 * description) to stdout.  conf/duewatch.conf is this program's output:
 *   build/tests/print_config_reference > conf/duewatch.conf
 * and tests/unit/test_config.c fails when the two differ. */
#include "config.h"

#include <stdio.h>

int main(void)
{
    config_write_reference(stdout);
    /* A full disk or closed stdout must not leave a silently truncated file. */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        perror("print_config_reference: stdout");
        return 1;
    }
    return 0;
}
