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
#
# After the end-to-end run against librdkafka's mock cluster, the same
# fixtures run a second time against a real Apache Kafka broker
# (DUEWATCH_KAFKA=real: scripts/kafka-broker.sh, tests/e2e/kafka_real.py) over
# the tests that make sense there; its results count in the closing line, and
# it prints its wall time.  It runs by default when Java 17+ is there and
# Kafka's jars are cached or Maven can fetch them (from Maven Central, once;
# cached in ~/.cache/duewatch).  Otherwise, and in a sanitized build (CI's
# second pass: the real-broker suite runs in the non-sanitizer pass, saving
# its ~5 minutes), it prints "real-broker suite SKIPPED: <why>".
#   DUEWATCH_REAL_KAFKA=0              never run it
#   DUEWATCH_REAL_KAFKA=1              run it in a sanitized build too
#   DUEWATCH_SANITIZER                 the build's sanitizers (make passes SANITIZER=)
#   DUEWATCH_REAL_KAFKA_TESTS          its test files (default below)
#   DUEWATCH_REAL_PYTEST_TIMEOUT       its hard limit in seconds (1500)
set -uo pipefail
cd "$(dirname "$0")/.."

# `make test SANITIZER=address` builds into build-address; make passes its
# command-line variables to us only inside MAKEFLAGS, so read them there.
sanitizer=${DUEWATCH_SANITIZER:-}
for word in ${MAKEFLAGS:-}; do
    case $word in
        SANITIZER=?*) [ -n "$sanitizer" ] || sanitizer=${word#SANITIZER=} ;;
    esac
done
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

junit_counts() {  # prints "passed failed skipped" of a junit xml file
    /usr/bin/python3 - "$1" <<'EOF'
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
}

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
        read -r e2e_passed e2e_failed e2e_skipped < <(junit_counts "$junit")
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

# ---- end-to-end tests against a real Kafka broker
real_skip_reason() {  # prints why the real-broker suite cannot run here, or nothing
    local version
    case ${DUEWATCH_REAL_KAFKA:-auto} in
        0) echo "DUEWATCH_REAL_KAFKA=0"; return ;;
        1) ;;
        *) if [ -n "$sanitizer" ]; then
               echo "runs in the non-sanitizer pass (this build: SANITIZER=$sanitizer;" \
                    "DUEWATCH_REAL_KAFKA=1 runs it here too)"
               return
           fi ;;
    esac
    command -v java >/dev/null 2>&1 || { echo "java not found (Java 17 or later is needed)"; return; }
    version=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1)
    if [ -z "$version" ] || [ "$version" -lt 17 ]; then
        echo "Java 17 or later is needed (found: ${version:-unknown})"
        return
    fi
    # Maven only fetches Kafka's jars, once; kafka-broker.sh fetch says
    # whether they are cached.
    if ! command -v mvn >/dev/null 2>&1 && ! scripts/kafka-broker.sh fetch >/dev/null 2>&1; then
        echo "mvn not found, and Kafka is not cached (Maven fetches it from Maven Central once)"
    fi
}

if [ "${DUEWATCH_SKIP_E2E:-0}" != 1 ]; then
    reason=$(real_skip_reason)
    if [ -z "$reason" ]; then
        fetch_started=$(date +%s)
        if scripts/kafka-broker.sh fetch; then
            echo "real-broker: Kafka ready in $(( $(date +%s) - fetch_started )) s"
        else
            reason="could not fetch Apache Kafka with mvn (see above)"
        fi
    fi
    if [ -n "$reason" ]; then
        echo "real-broker suite SKIPPED: $reason"
    else
        real_passed=0 real_failed=0 real_skipped=0
        real_started=$(date +%s)
        real_junit="$results_dir/e2e-real-kafka.xml"
        rm -f "$real_junit"
        kafka_dir=$(mktemp -d "${TMPDIR:-/tmp}/duewatch-kafka.XXXXXX")
        # shellcheck disable=SC2206  # a list of files: word splitting wanted
        real_tests=(${DUEWATCH_REAL_KAFKA_TESTS:-tests/e2e/test_ingest.py tests/e2e/test_clocks.py tests/e2e/test_alert_delivery.py tests/e2e/test_faults.py})
        echo "=== e2e against a real Kafka broker: DUEWATCH_KAFKA=real /usr/bin/python3 -m pytest ${real_tests[*]}"
        DUEWATCH_KAFKA=real DUEWATCH_KAFKA_DIR="$kafka_dir" \
            timeout --kill-after=30 "${DUEWATCH_REAL_PYTEST_TIMEOUT:-1500}" \
            /usr/bin/python3 -m pytest "${real_tests[@]}" -v -s --junitxml="$real_junit" \
            "${extra_args[@]}"
        real_status=$?
        # The session broker stops with pytest; make sure, even after a kill.
        scripts/kafka-broker.sh stop "$kafka_dir" >/dev/null 2>&1
        rm -rf "$kafka_dir"
        if [ -s "$real_junit" ]; then
            read -r real_passed real_failed real_skipped < <(junit_counts "$real_junit")
            real_passed=${real_passed:-0} real_failed=${real_failed:-0} real_skipped=${real_skipped:-0}
        fi
        case $real_status in
            0|5) ;;
            1) [ "$real_failed" -gt 0 ] || real_failed=1 ;;
            124|137)
                echo "run-tests: the real-broker pytest hit the ${DUEWATCH_REAL_PYTEST_TIMEOUT:-1500}s limit and was stopped" >&2
                real_failed=$((real_failed + 1)) ;;
            *)
                echo "run-tests: the real-broker pytest exited with status $real_status" >&2
                real_failed=$((real_failed + 1)) ;;
        esac
        echo "e2e (real Kafka): $real_passed passed, $real_failed failed, $real_skipped skipped" \
             "in $(( $(date +%s) - real_started )) s"
        e2e_passed=$((e2e_passed + real_passed))
        e2e_failed=$((e2e_failed + real_failed))
        e2e_skipped=$((e2e_skipped + real_skipped))
    fi
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
