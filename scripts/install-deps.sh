#!/usr/bin/env bash
# Installs the Debian 12 packages duewatch needs to build, test and lint, and
# only those that are missing: a fresh CI machine has none of them, while a
# second run on a prepared machine must cost well under a second (one
# dpkg-query call, no apt-get at all).
#
# As root it installs with apt-get; otherwise it prints the exact command to
# run and exits 1.  The redis-server package may start a system Redis on 6379
# when installed (and redis-sentinel a system Sentinel on 26379); nothing in
# duewatch's tests uses them (every test starts its own redis-server and
# redis-sentinel on free loopback ports), so they are left alone.
set -euo pipefail

packages=(
    # build (libssl-dev: libcrypto, and libssl for hiredis_ssl in
    # scripts/check-hiredis1.sh: Redis TLS).  No libsystemd-dev: daemon/notify.c speaks
    # the sd_notify datagram protocol itself (a stable, documented interface:
    # sd_notify(3)), which spares the daemon libsystemd and the compression and
    # crypto libraries it links (liblzma, libzstd, liblz4, libgcrypt).
    build-essential pkg-config
    libevent-dev librdkafka-dev libmsgpack-dev libhiredis-dev libssl-dev
    # unit tests (libjansson-dev: tests/unit/test_golden.c reads the golden
    # table tests/golden/deadlines.json)
    libcmocka-dev libjansson-dev
    # end-to-end tests: a private redis-server per test, python3 from Debian
    # (/usr/bin/python3) with its own packages, time zone data for Asia/Shanghai
    redis-server redis-tools tzdata
    # tests/e2e/test_redis_sentinel.py: a master, a replica and three Sentinels
    redis-sentinel
    python3 python3-pytest python3-pytest-timeout python3-confluent-kafka python3-redis
    python3-msgpack python3-jsonschema
    python3-prometheus-client python3-yaml
    # tests/e2e/test_report.py: `duewatch report --format html` rendered by headless
    # chromium, the screenshot read with python3-pil, a CJK font to draw the Chinese
    chromium python3-pil fonts-wqy-microhei
    # monitoring tests: promtool (check metrics, check rules, test rules)
    prometheus
    # lint
    clang clang-tidy cppcheck
    # fuzzing (make fuzz): the libFuzzer/sanitizer runtimes, llvm-symbolizer for traces
    libclang-rt-14-dev llvm
    # operations tests: systemd-analyze verify/security, man -l, groff -ww
    systemd man-db groff-base
    # the Debian package (debian/, tests/e2e/test_package.py): dpkg-buildpackage,
    # debhelper with its sysusers sequence, lintian
    dpkg-dev debhelper fakeroot lintian
)

# The real-broker suite (scripts/kafka-broker.sh) runs Apache Kafka on Java 17
# and fetches it with Maven: installed here only when the machine has neither
# a java nor an mvn of its own (this project's machines come with both).
command -v java >/dev/null 2>&1 || packages+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || packages+=(maven)

# One dpkg-query for all packages; a package never seen by dpkg is missing from
# the output (and reported on stderr, which we do not need).
installed=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${packages[@]}" 2>/dev/null || true)
missing=()
for package in "${packages[@]}"; do
    if ! grep -Eq "^${package} ii" <<<"$installed"; then
        missing+=("$package")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

install_command="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages: ${missing[*]}" >&2
    echo "install-deps: as root, run:  apt-get update && $install_command" >&2
    exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Mirrors hiccup; a second try is cheaper than a failed CI run.
for attempt in 1 2 3; do
    if apt-get update -q && apt-get install -q -y --no-install-recommends "${missing[@]}"; then
        exit 0
    fi
    echo "install-deps: apt-get failed (attempt $attempt of 3)" >&2
    sleep $((attempt * 5))
done
echo "install-deps: could not install: ${missing[*]}" >&2
exit 1
