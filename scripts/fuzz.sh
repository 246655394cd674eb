#!/usr/bin/env bash
# The body of `make fuzz` (after the targets are built into build-fuzz/): for
# each libFuzzer target named on the command line (default: all five),
#   1. regression: run it once over its committed corpus tests/fuzz/corpus/<t>/
#      (every seed, including earlier crash inputs kept as regression seeds);
#   2. fuzz it for FUZZ_SECONDS seconds (0 = skip), one process (-jobs=1), new
#      interesting inputs going to build-fuzz/corpus/<t>/ (never into the
#      committed corpus), with tests/fuzz/<t>.dict as dictionary.
# A crash, leak, timeout or failed check leaves its input in tests/fuzz/crashes/
# (<target>-crash-<sha1>, ...-leak-, ...-timeout-, ...-oom-) and makes the script
# exit 1 after all targets ran.  Prints one line per target with the executions.
#
# Environment:
#   FUZZ_SECONDS   seconds of fuzzing per target (default 60)
#   FUZZ_BUILD     directory holding the fuzz_<target> binaries (default build-fuzz)
#   FUZZ_ARGS      extra libFuzzer flags, e.g. "-max_len=8192"
#   FUZZ_KEEP_GOING=1  long runs: fuzz also after a failing regression seed and
#                  go on after a crash (libFuzzer -fork=1 -ignore_crashes=1, still
#                  one process at a time), so one run collects every distinct crash
# Reproduce one crash:  build-fuzz/fuzz_<target> tests/fuzz/crashes/<file>
set -uo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
build=${FUZZ_BUILD:-build-fuzz}
crashes=tests/fuzz/crashes
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(event config rules holidays alert)
# shellcheck disable=SC2206
extra=(${FUZZ_ARGS:-})
keep_going=${FUZZ_KEEP_GOING:-0}
fork=()
[ "$keep_going" = 1 ] && fork=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)

# Symbolized reports; stop at the first error; leaks count as crashes.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ]; then
    for candidate in llvm-symbolizer /usr/lib/llvm-14/bin/llvm-symbolizer; do
        if command -v "$candidate" >/dev/null 2>&1; then
            export ASAN_SYMBOLIZER_PATH=$(command -v "$candidate")
            break
        fi
    done
fi

mkdir -p "$crashes" "$build/logs"
failed=()
summary=()

for target in "${targets[@]}"; do
    binary="$build/fuzz_$target"
    seeds="tests/fuzz/corpus/$target"
    work="$build/corpus/$target"
    log="$build/logs/$target.log"
    if [ ! -x "$binary" ]; then
        echo "fuzz: $binary is not built (make fuzz-build)" >&2
        failed+=("$target")
        continue
    fi
    mkdir -p "$work" "$seeds"
    dict=()
    [ -f "tests/fuzz/$target.dict" ] && dict=(-dict="tests/fuzz/$target.dict")
    before=$(ls "$crashes" 2>/dev/null | wc -l)

    # 1. Regression over the committed corpus: -runs=0 executes every seed
    # once and stops.
    echo "=== fuzz_$target: regression over $seeds ($(ls "$seeds" | wc -l) seeds)"
    if ! "$binary" -runs=0 -timeout=25 -artifact_prefix="$crashes/$target-" "${dict[@]}" \
            "${extra[@]}" "$seeds" >"$log.regression" 2>&1; then
        tail -n 60 "$log.regression" >&2
        echo "fuzz_$target: FAILED on a committed seed (log: $log.regression)" >&2
        failed+=("$target")
        summary+=("fuzz_$target: regression FAILED")
        [ "$keep_going" = 1 ] || continue
    fi

    if [ "$seconds" -le 0 ]; then
        summary+=("fuzz_$target: regression ok, not fuzzed (FUZZ_SECONDS=0)")
        continue
    fi

    # 2. Fuzzing.  The first directory receives new inputs; the committed
    # seeds are only read.
    echo "=== fuzz_$target: fuzzing for ${seconds}s"
    "$binary" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$crashes/$target-" "${dict[@]}" "${fork[@]}" \
        "${extra[@]}" "$work" "$seeds" >"$log" 2>&1
    status=$?
    if [ "$keep_going" = 1 ]; then
        # fork mode: "#EXECS: cov: ... exec/s: N oom/timeout/crash: a/b/c time: ..."
        executions=$(sed -n 's/^#\([0-9]*\): cov:.*/\1/p' "$log" | tail -n 1)
        rate=$(sed -n 's/^#[0-9]*: cov:.* exec\/s:* \([0-9]*\).*/\1/p' "$log" | tail -n 1)
    else
        executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    fi
    corpus=$(ls "$work" | wc -l)
    after=$(ls "$crashes" 2>/dev/null | wc -l)
    if [ "$status" -ne 0 ] || [ "$after" -gt "$before" ]; then
        grep -E 'ERROR: |runtime error|fuzz check failed|SUMMARY|Test unit written' "$log" \
            | head -n 20 >&2
        echo "fuzz_$target: CRASH after ${executions:-?} executions (exit $status; log: $log;" \
             "input in $crashes/)" >&2
        failed+=("$target")
        summary+=("fuzz_$target: CRASH after ${executions:-?} executions")
    else
        summary+=("fuzz_$target: ok, ${executions:-?} executions in ${seconds}s (${rate:-?}/s), $corpus inputs in $work")
    fi
done

echo "=== fuzz summary"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: FAILED: $(printf "%s\n" "${failed[@]}" | sort -u | tr "\n" " ")"
    exit 1
fi
echo "fuzz: all targets passed"
