#!/usr/bin/env bash
# Builds duewatch against hiredis 1.x (Debian 12 ships 0.14).  The hiredis C
# sources come from the Python binding's source distribution on PyPI (its
# vendor/hiredis is hiredis 1.2.0); they are compiled into a static library in
# build-hiredis1/ (with hiredis_ssl when libssl-dev is installed: Redis TLS)
# and the daemon, its unit tests and helpers are built and linked against it,
# then the unit tests and a few end-to-end tests (the Redis TLS ones among
# them) run.  Usage: scripts/check-hiredis1.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=build-hiredis1
cache=${XDG_CACHE_HOME:-$HOME/.cache}/duewatch/hiredis-py-2.3.2
mkdir -p "$cache" "$out/hiredis/include/hiredis" "$out/hiredis/lib"
if [ ! -f "$cache/hiredis-2.3.2.tar.gz" ]; then
  /usr/bin/python3 -m pip download --no-binary :all: --no-deps -d "$cache" hiredis==2.3.2 -q ||
    python3 -m pip download --no-binary :all: --no-deps -d "$cache" hiredis==2.3.2 -q
fi
tar -xzf "$cache/hiredis-2.3.2.tar.gz" -C "$out/hiredis"
src="$out/hiredis/hiredis-2.3.2/vendor/hiredis"
version=$(awk '/define HIREDIS_(MAJOR|MINOR|PATCH)/ {printf "%s%s", sep, $3; sep="."}' "$src/hiredis.h")
echo "check-hiredis1: building hiredis $version from $cache"
objects=()
for file in alloc async dict hiredis net read sds sockcompat; do
  cc -O2 -fPIC -std=c99 -D_GNU_SOURCE -c "$src/$file.c" -o "$out/hiredis/$file.o"
  objects+=("$out/hiredis/$file.o")
done
ar rcs "$out/hiredis/lib/libhiredis.a" "${objects[@]}"
cp "$src"/*.h "$out/hiredis/include/hiredis/"
# hiredis_ssl (ssl.c, USE_SSL in hiredis's own Makefile) when OpenSSL's headers
# are installed (libssl-dev): the daemon is then built with HIREDIS_SSL=1 and
# speaks TLS to Redis (redis_tls; tests/e2e/test_redis_tls.py).
ssl=0
libs="$out/hiredis/lib/libhiredis.a"
pkgs="libevent rdkafka msgpack libcrypto"
if pkg-config --exists libssl; then
  cc -O2 -fPIC -std=c99 -D_GNU_SOURCE $(pkg-config --cflags libssl) -c "$src/ssl.c" \
    -o "$out/hiredis/ssl.o"
  ar rcs "$out/hiredis/lib/libhiredis_ssl.a" "$out/hiredis/ssl.o"
  ssl=1
  libs="$out/hiredis/lib/libhiredis_ssl.a $libs"
  pkgs="$pkgs libssl"
fi
echo "check-hiredis1: hiredis_ssl $([ "$ssl" = 1 ] && echo built || echo "not built (no libssl-dev)")"
make --no-print-directory BUILD="$out" WERROR=1 PKGS="$pkgs" HIREDIS_SSL="$ssl" \
  CFLAGS="-I$out/hiredis/include" LIBS="$libs" all
echo "check-hiredis1: built against hiredis $version; running the unit tests"
scripts/run-unit-tests.sh "$out"/tests/test_*
echo "check-hiredis1: end-to-end tests on the hiredis $version build"
# (Kafka is the same as in `make test`: its real-broker suite runs there.)
DUEWATCH_BUILD="$out" DUEWATCH_SKIP_UNIT=1 DUEWATCH_REAL_KAFKA=0 \
  DUEWATCH_TEST_ARGS="-k 'hundred_thousand or outage or bail_full or sigkill_with_alerts or redis_tls'" \
  scripts/run-tests.sh
