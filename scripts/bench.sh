#!/usr/bin/env bash
# bench.sh: `make bench` -- duewatch's throughput, clock and replay figures on
# this machine (issue 6).  Not a test: it prints figures and judges nothing.
#
#   scripts/bench.sh                      the full run (BENCH_EVENTS=1000000)
#   BENCH_EVENTS=100000 scripts/bench.sh  a quick run
#
# On loopback only, it starts a private redis-server (appendonly yes,
# appendfsync everysec) and the mock Kafka cluster (build/tests/mock_cluster),
# and measures on the same data: duewatchd end to end, the Kafka read limit
# (tests/helpers/bench_kafka_reader.c), the Redis limit
# (tests/helpers/bench_redis_set.c), the batch scripts back to back
# (tests/helpers/bench_script.c), Redis memory, RSS and readiness with 1M
# running clocks, fire latency of 10,000 clocks due within a second, and the
# replay of a district-year in event-time mode.  Phases and knobs: see
# scripts/bench_run.py.  Prints a table, then one `bench ...` line per figure.
# Everything it starts is stopped when it ends, fails or is interrupted.
set -euo pipefail

cd "$(dirname "$0")/.."
build=${DUEWATCH_BUILD:-${BUILD:-build}}
export DUEWATCH_BUILD=$build
python=/usr/bin/python3
[ -x "$python" ] || python=python3

for binary in duewatchd tests/mock_cluster tests/bench_kafka_reader tests/bench_redis_set \
              tests/bench_script; do
    if [ ! -x "$build/$binary" ]; then
        echo "bench: $build/$binary is missing; run make (or make bench) first" >&2
        exit 1
    fi
done
command -v redis-server >/dev/null || { echo "bench: redis-server not found (make deps)" >&2; exit 1; }

runner=
cleanup() {
    # bench_run.py stops what it started on SIGTERM; its children also die
    # with it (PR_SET_PDEATHSIG), so this is the last resort.
    if [ -n "$runner" ] && kill -0 "$runner" 2>/dev/null; then
        kill -TERM "$runner" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$runner" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$runner" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$python" scripts/bench_run.py &
runner=$!
status=0
wait "$runner" || status=$?
runner=
exit "$status"
