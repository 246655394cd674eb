#!/usr/bin/env bash
# `make run`: a local duewatch on loopback.  Starts a private redis-server and a
# Kafka-protocol broker (librdkafka's mock cluster in its own process), starts
# duewatchd on them, feeds it a sample stream, shows what happened and the
# redis-cli commands to try.  Ctrl-C stops everything it started.
#
# The three run in sessions of their own (setsid), out of reach of the
# terminal's Ctrl-C: the cleanup stops them in order, duewatchd first (one
# SIGTERM, so it finishes its work while Kafka and Redis are still there;
# its shutdown is bounded by shutdown_timeout_ms), then Redis and Kafka, each
# waited for with a bound and killed if it outlasts it.  Further signals are
# ignored while the cleanup runs, so a second Ctrl-C cannot cut it short.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
work=$(mktemp -d /tmp/duewatch-demo.XXXXXX)
pids=()
# stop_process PID SECONDS: SIGTERM, wait up to SECONDS, then SIGKILL.
stop_process() {
  kill -TERM "$1" 2>/dev/null || return 0
  for _ in $(seq $(($2 * 10))); do
    kill -0 "$1" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
cleanup() {
  trap '' INT TERM HUP
  trap - EXIT
  echo
  echo "stopping duewatchd, Kafka and Redis ..."
  # duewatchd (pids[2]) first, then Kafka and Redis.
  for index in 2 1 0; do
    [ -n "${pids[$index]:-}" ] && stop_process "${pids[$index]}" 15
  done
  echo "stopped; files were in $work"
}
trap cleanup EXIT INT TERM HUP

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

redis_port=$(free_port)
# the settings README "From the source tree" asks of duewatch's Redis, and
# its module (README "The Redis module")
setsid redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$work" --save "" --appendonly yes \
  --appendfsync everysec --lazyfree-lazy-expire yes --loadmodule "$(realpath "$BUILD/duewatch_redis.so")" \
  --daemonize no --logfile "$work/redis.log" &
pids+=($!)
for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done

setsid "$BUILD/tests/mock_cluster" --no-stdin --topic duewatch.events:4 --topic duewatch.deadletter:1 \
  --topic duewatch.alerts:2 > "$work/kafka.out" 2> "$work/kafka.log" &
pids+=($!)
for _ in $(seq 50); do grep -q BOOTSTRAP= "$work/kafka.out" 2>/dev/null && break; sleep 0.1; done
bootstrap=$(sed -n 's/^BOOTSTRAP=//p' "$work/kafka.out")

cat > "$work/duewatch.conf" <<CONF
kafka.bootstrap.servers = $bootstrap
kafka.group.id = duewatch-demo
redis_port = $redis_port
rules_file = $PWD/conf/rules.conf
holidays_file = $PWD/conf/holidays-cn.conf
http_listen =
CONF
"$BUILD/duewatchd" -c "$work/duewatch.conf" --check-config | sed -n 's/^holiday calendar: /holiday calendar: /p'
setsid "$BUILD/duewatchd" -c "$work/duewatch.conf" 2> "$work/duewatchd.log" &
pids+=($!)
echo "Redis on 127.0.0.1:$redis_port, Kafka (mock cluster) on $bootstrap, duewatchd running."
for _ in $(seq 100); do grep -q "consuming duewatch.events" "$work/duewatchd.log" && break; sleep 0.1; done

/usr/bin/python3 scripts/demo_events.py "$bootstrap" duewatch.events
sleep 3

today=$(TZ=Asia/Shanghai date +%F)
echo
echo "== what duewatchd did (its log: $work/duewatchd.log) =="
grep -E "dead letter|pausing|resuming|connected|consuming" "$work/duewatchd.log" | sed -E 's/^([^ ]+Z )?<[0-9]>/  /' | head -20
echo
echo "== bureau-wide counts today ($today) =="
redis-cli -p "$redis_port" HGETALL "dw:d:$today:_all" | paste - - | sed 's/^/  /'
echo
echo "== clocks running, by rule (sum of dw:active:<rule>:<unit>) =="
for key in $(redis-cli -p "$redis_port" --scan --pattern 'dw:active:*'); do
  echo "${key#dw:active:} $(redis-cli -p "$redis_port" GET "$key")"
done | awk '{split($1, p, ":"); n[p[1]] += $2} END {for (r in n) printf "  %-28s %d\n", r, n[r]}' | sort
echo
echo "== clocks whose deadline falls in a provisional calendar year (dw:provisional:<partition>) =="
provisional=0
for key in $(redis-cli -p "$redis_port" --scan --pattern 'dw:provisional:*'); do
  provisional=$((provisional + $(redis-cli -p "$redis_port" HLEN "$key")))
done
echo "  $provisional (recomputed when the official year is added and duewatchd reloads)"
echo
echo "== alerts on duewatch.alerts =="
/usr/bin/python3 - "$bootstrap" <<'PY'
import collections, sys, time, msgpack
from confluent_kafka import Consumer, TopicPartition
c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": "demo-reader", "enable.auto.commit": False})
c.assign([TopicPartition("duewatch.alerts", p, 0) for p in (0, 1)])
alerts, quiet_since = [], time.time()
while time.time() - quiet_since < 2:
    m = c.poll(0.2)
    if m is not None and not m.error():
        alerts.append(msgpack.unpackb(m.value()))
        quiet_since = time.time()
c.close()
counts = collections.Counter((a["rule"], a["level"], a["state"]) for a in alerts)
print(f"  {len(alerts)} alerts from the sample stream:")
for (rule, level, state), n in sorted(counts.items()):
    print(f"    {rule:28} {level:7} {state:9} {n}")
print("  the deadline stories (unit 500112-FZ01):")
for a in alerts:
    if a["unit"] == "500112-FZ01":
        print(f"    [{a['level']} {a['state']}] {a['text']}")
PY
cat <<EOT

== try ==
  redis-cli -p $redis_port HGETALL dw:d:$today:_all          # today's counts, all units
  redis-cli -p $redis_port FCALL dw_window 0 _all 30d          # sliding 30-day window
  redis-cli -p $redis_port --scan --pattern 'dw:overdue:*'     # overdue sets, one per rule and unit
  redis-cli -p $redis_port ZRANGE dw:overdue:detention_unexecuted:500112-FZ01 0 -1 WITHSCORES
  redis-cli -p $redis_port HGETALL dw:m:${today:0:7}:500112-FZ01    # this month's counts and alerts, one unit
  tail -f $work/duewatchd.log

duewatchd keeps running; press Ctrl-C to stop everything.
EOT
wait "${pids[2]}"
