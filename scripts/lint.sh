#!/usr/bin/env bash
# The body of `make lint`: static analysis of the daemon's C sources and its
# Redis module's.
#   1. cppcheck --enable=warning,performance,portability on daemon/, include/
#      and redis_module/
#   2. clang-tidy with the checked-in .clang-tidy on daemon/*.c and
#      redis_module/*.c (Redis's redismodule.h as a system header), compiled with
#      the project's flags (-std=c11 -D_GNU_SOURCE -Iinclude, pkg-config
#      --cflags of libevent rdkafka hiredis msgpack)
# Every finding fails the run (exit 1); the output names file:line and check.
# Deterministic: no network, no timing, no state outside a temporary directory.
# A finding that is a false positive is silenced where it is, with a reason:
#   cppcheck:   // cppcheck-suppress <id>    on the line before
#   clang-tidy: // NOLINTNEXTLINE(<check>)   on the line before
#
# Environment: LINT_JOBS (parallel clang-tidy processes, default: CPUs),
#              CLANG_TIDY / CPPCHECK (binaries, default from PATH).
set -uo pipefail
cd "$(dirname "$0")/.."

clang_tidy=${CLANG_TIDY:-$(command -v clang-tidy || command -v clang-tidy-14 || true)}
cppcheck=${CPPCHECK:-$(command -v cppcheck || true)}
if [ -z "$clang_tidy" ] || [ -z "$cppcheck" ]; then
    echo "lint: needs cppcheck and clang-tidy (scripts/install-deps.sh installs them)" >&2
    exit 2
fi
pkg_cflags=$(pkg-config --cflags libevent rdkafka hiredis msgpack) || {
    echo "lint: pkg-config does not know libevent/rdkafka/hiredis/msgpack" \
         "(scripts/install-deps.sh)" >&2
    exit 2
}
jobs=${LINT_JOBS:-$(nproc 2>/dev/null || echo 2)}
version=$(cat VERSION 2>/dev/null || echo 0.1.0)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0

# ---- cppcheck
# libevent's evutil_timercmp takes an operator as argument, which cppcheck
# cannot parse without its definition; system headers themselves are not
# read (they would only slow the run and report their own code).
cat >"$work/duewatch.cfg" <<'CFG'
<?xml version="1.0"?>
<def format="2">
  <define name="evutil_timercmp(tvp, uvp, cmp)" value="(((tvp)->tv_sec == (uvp)->tv_sec) ? ((tvp)->tv_usec cmp (uvp)->tv_usec) : ((tvp)->tv_sec cmp (uvp)->tv_sec))"/>
</def>
CFG
echo "=== lint: cppcheck $("$cppcheck" --version | sed 's/^Cppcheck //')"
if ! "$cppcheck" --enable=warning,performance,portability --error-exitcode=1 --inline-suppr \
        --quiet --std=c11 --library=posix --library="$work/duewatch.cfg" \
        -D_GNU_SOURCE -DDUEWATCH_VERSION="\"$version\"" -Iinclude -Ibuild \
        --template='{file}:{line}:{column}: {severity}: {message} [{id}]' \
        daemon/ include/ redis_module/; then
    status=1
fi

# ---- clang-tidy
echo "=== lint: $("$clang_tidy" --version | sed -n 's/.*LLVM version /clang-tidy /p')" \
     "on daemon/*.c and redis_module/*.c ($jobs at a time)"
flags=(-std=c11 -D_GNU_SOURCE "-DDUEWATCH_VERSION=\"$version\"" -Iinclude -Ibuild)
# shellcheck disable=SC2206
flags+=($pkg_cflags -isystem third_party/redismodule)
for file in daemon/*.c redis_module/*.c; do
    printf '%s\n' "$file"
done | xargs -P "$jobs" -I{} sh -c '
    f={}; name=$(echo "$f" | tr / _)
    if ! "$0" --quiet "$f" -- "$@" >"'"$work"'/$name.out" 2>&1; then
        touch "'"$work"'/$name.failed"
    fi' "$clang_tidy" "${flags[@]}"
for file in daemon/*.c redis_module/*.c; do
    name=$(echo "$file" | tr / _)
    # Drop clang-tidy's "N warnings generated" chatter; keep diagnostics.
    grep -v -E '^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$|^Suppressed [0-9]+ warnings|^Use -header-filter|^Use -system-headers' \
        "$work/$name.out" || true
    if [ -e "$work/$name.failed" ]; then
        status=1
    fi
done

if [ "$status" -ne 0 ]; then
    echo "lint: FAILED"
    exit 1
fi
echo "lint: clean"
