#!/usr/bin/env bash
# Runs cmocka unit test binaries (the arguments, e.g. build/tests/test_*) one
# after another, shows their output, and counts test cases: passed from
# cmocka's "[       OK ]" lines, failed from its "[  FAILED  ] N test(s)"
# summary.  A binary that crashes, times out or exits non-zero without a
# failure summary (a sanitizer abort, say) counts as one failed test, so no
# failure is ever lost.  Ends with the line "unit: N passed, N failed" and
# exits 1 when anything failed.
#
# Environment: UNIT_TEST_TIMEOUT seconds per binary (default 300).
set -uo pipefail

timeout_seconds=${UNIT_TEST_TIMEOUT:-300}
total_passed=0
total_failed=0
failed_binaries=()

for binary in "$@"; do
    if [ ! -x "$binary" ]; then
        echo "run-unit-tests: $binary: not an executable" >&2
        total_failed=$((total_failed + 1))
        failed_binaries+=("$binary")
        continue
    fi
    echo "=== $binary"
    output_file=$(mktemp)
    timeout --kill-after=10 "$timeout_seconds" "$binary" 2>&1 | tee "$output_file"
    status=${PIPESTATUS[0]}
    passed=$(grep -c '^\[       OK \]' "$output_file")
    failed=$(sed -n 's/^\[  FAILED  \] \([0-9][0-9]*\) test(s), listed below:.*/\1/p' "$output_file" \
             | tail -n 1)
    failed=${failed:-0}
    rm -f "$output_file"
    if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
        if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
            echo "run-unit-tests: $binary timed out after ${timeout_seconds}s"
        else
            echo "run-unit-tests: $binary exited with status $status"
        fi
        failed=1
    fi
    if [ "$failed" -gt 0 ]; then
        failed_binaries+=("$binary")
    fi
    total_passed=$((total_passed + passed))
    total_failed=$((total_failed + failed))
done

if [ ${#failed_binaries[@]} -gt 0 ]; then
    echo "run-unit-tests: failures in: ${failed_binaries[*]}"
fi
echo "unit: $total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
