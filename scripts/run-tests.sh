#!/usr/bin/env bash
# The body of `make test`, run after the packages are installed and the build
# is done: the cmocka unit tests (every <build>/tests/test_* binary), then the
# end-to-end tests (/usr/bin/python3 -m pytest tests/e2e) under a hard time
# limit, then one closing line "N passed, N failed[, N skipped]" adding both
# up.  Exits non-zero when anything failed or when no test ran at all.
#
# Environment:
#   DUEWATCH_BUILD           build directory (default: BUILD= or SANITIZER= from
#                            make's command line, else "build")
#   DUEWATCH_TEST_ARGS       extra pytest arguments, shell-quoted, e.g. "-k redis -x"
#   DUEWATCH_PYTEST_TIMEOUT  hard limit for the whole pytest run in seconds (3000)
#   DUEWATCH_SKIP_UNIT=1 / DUEWATCH_SKIP_E2E=1  run only the other half
set -uo pipefail
cd "$(dirname "$0")/.."

# `make test SANITIZER=address` builds into build-address; make passes its
# command-line variables to us only inside MAKEFLAGS, so read them there.
build=${DUEWATCH_BUILD:-}
if [ -z "$build" ]; then
    build=build
    for word in ${MAKEFLAGS:-}; do
        case $word in
            SANITIZER=?*) build="build-${word#SANITIZER=}" ;;
        esac
    done
    for word in ${MAKEFLAGS:-}; do
        case $word in
            BUILD=?*) build="${word#BUILD=}" ;;
        esac
    done
fi
export DUEWATCH_BUILD=$build

unit_passed=0
unit_failed=0
e2e_passed=0
e2e_failed=0
e2e_skipped=0

# ---- unit tests
if [ "${DUEWATCH_SKIP_UNIT:-0}" != 1 ]; then
    shopt -s nullglob
    unit_binaries=("$build"/tests/test_*)
    shopt -u nullglob
    unit_log=$(mktemp)
    scripts/run-unit-tests.sh "${unit_binaries[@]}" | tee "$unit_log"
    unit_line=$(grep -E '^unit: [0-9]+ passed, [0-9]+ failed$' "$unit_log" | tail -n 1)
    rm -f "$unit_log"
    if [[ $unit_line =~ ^unit:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
        unit_passed=${BASH_REMATCH[1]}
        unit_failed=${BASH_REMATCH[2]}
    else
        echo "run-tests: the unit test runner printed no summary" >&2
        unit_failed=1
    fi
fi

# ---- end-to-end tests
if [ "${DUEWATCH_SKIP_E2E:-0}" != 1 ]; then
    results_dir="$build/test-results"
    junit="$results_dir/e2e.xml"
    mkdir -p "$results_dir"
    rm -f "$junit"
    # Quoted arguments ("-k 'a and b'") need the shell's own word splitting.
    eval "extra_args=(${DUEWATCH_TEST_ARGS:-})"
    echo "=== e2e: /usr/bin/python3 -m pytest tests/e2e (DUEWATCH_BUILD=$build)"
    timeout --kill-after=30 "${DUEWATCH_PYTEST_TIMEOUT:-3000}" \
        /usr/bin/python3 -m pytest tests/e2e -v -s --junitxml="$junit" "${extra_args[@]}"
    pytest_status=$?

    if [ -s "$junit" ]; then
        read -r e2e_passed e2e_failed e2e_skipped < <(/usr/bin/python3 - "$junit" <<'EOF'
import sys
import xml.etree.ElementTree as ElementTree
root = ElementTree.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
total = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
for suite in suites:
    for name in total:
        total[name] += int(suite.get(name, 0))
failed = total["failures"] + total["errors"]
print(total["tests"] - failed - total["skipped"], failed, total["skipped"])
EOF
        )
        e2e_passed=${e2e_passed:-0} e2e_failed=${e2e_failed:-0} e2e_skipped=${e2e_skipped:-0}
    fi
    case $pytest_status in
        0|5) ;;  # 5: nothing collected (e.g. DUEWATCH_TEST_ARGS deselected all)
        1) [ "$e2e_failed" -gt 0 ] || e2e_failed=1 ;;
        124|137)
            echo "run-tests: pytest hit the ${DUEWATCH_PYTEST_TIMEOUT:-3000}s limit and was stopped" >&2
            e2e_failed=$((e2e_failed + 1)) ;;
        *)
            echo "run-tests: pytest exited with status $pytest_status" >&2
            e2e_failed=$((e2e_failed + 1)) ;;
    esac
    echo "e2e: $e2e_passed passed, $e2e_failed failed, $e2e_skipped skipped"
fi

passed=$((unit_passed + e2e_passed))
failed=$((unit_failed + e2e_failed))
summary="$passed passed, $failed failed"
if [ "$e2e_skipped" -gt 0 ]; then
    summary="$summary, $e2e_skipped skipped"
fi
if [ "$failed" -eq 0 ] && [ "$passed" -eq 0 ]; then
    echo "run-tests: no test ran" >&2
    echo "$summary"
    exit 1
fi
echo "$summary"
[ "$failed" -eq 0 ]
