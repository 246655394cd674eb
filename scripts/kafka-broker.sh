#!/usr/bin/env bash
# kafka-broker.sh: a real, single-node Apache Kafka broker (KRaft, no
# ZooKeeper) on loopback, for duewatch's end-to-end tests against the real
# thing (DUEWATCH_KAFKA=real, see tests/e2e/kafka_real.py).
#
#   scripts/kafka-broker.sh fetch         obtain Kafka's jars (once; cached)
#   scripts/kafka-broker.sh start DIR     start a broker whose files live in DIR;
#                                         prints BOOTSTRAP=127.0.0.1:PORT when it
#                                         answers metadata requests
#   scripts/kafka-broker.sh stop DIR      SIGTERM, wait, SIGKILL after a timeout
#   scripts/kafka-broker.sh kill DIR      SIGKILL at once (a crash)
#   scripts/kafka-broker.sh status DIR    "running BOOTSTRAP=..." or "stopped" (exit 1)
#
# What it needs:
#   - Java 17 or later (`java` on PATH, or JAVA_HOME)
#   - Maven (`mvn`) and access to Maven Central, for `fetch` only, and only
#     when the cache is missing: the artifact org.apache.kafka:kafka_2.13 and
#     its runtime dependencies (plus the slf4j/reload4j logging binding) are
#     copied by `mvn dependency:copy-dependencies` from a pom generated in a
#     temporary directory.  Nothing else is downloaded, ever.
#   - about 100 MB of disk: ~50 MB of jars in the cache below, ~60 MB in
#     Maven's own repository (~/.m2)
#   - /usr/bin/python3 with python3-confluent-kafka (the readiness probe)
#
# start DIR writes DIR/server.properties (fresh loopback ports, KRaft with
# process.roles=broker,controller, node id 1, auto topic creation off, one
# partition by default, replication factor 1, small segments), formats
# DIR/data with kafka.tools.StorageTool and runs `java -cp "libs/*"
# kafka.Kafka` in the background: pid in DIR/broker.pid, output in
# DIR/broker.log.  Starting again a DIR that was stopped reuses its
# properties, ports and data (a restart).  When DUEWATCH_KAFKA_WATCH_PID is
# set, a watcher kills the broker once that process is gone, so a test
# runner killed without cleaning up leaves no broker behind.
#
# Environment:
#   DUEWATCH_KAFKA_VERSION        Kafka version (default 3.9.1)
#   DUEWATCH_KAFKA_HOME           cache folder (default
#                                 ${XDG_CACHE_HOME:-$HOME/.cache}/duewatch/kafka-VERSION);
#                                 jars in its libs/, .fetch-complete marks a full fetch
#   DUEWATCH_KAFKA_HEAP           java -Xmx (default 512m)
#   DUEWATCH_KAFKA_START_TIMEOUT  seconds to wait for metadata answers (default 120)
#   DUEWATCH_KAFKA_STOP_TIMEOUT   seconds between SIGTERM and SIGKILL (default 30)
#   DUEWATCH_KAFKA_WATCH_PID      see above
set -euo pipefail

version=${DUEWATCH_KAFKA_VERSION:-3.9.1}
home=${DUEWATCH_KAFKA_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/duewatch/kafka-$version}
libs=$home/libs
marker=$home/.fetch-complete
python=/usr/bin/python3
[ -x "$python" ] || python=python3

die() {
    echo "kafka-broker: $*" >&2
    exit 1
}

java_binary() {
    if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then
        echo "$JAVA_HOME/bin/java"
    elif command -v java >/dev/null 2>&1; then
        command -v java
    else
        die "java not found (Java 17 or later is needed)"
    fi
}

fetch() {
    if [ -f "$marker" ] && [ -d "$libs" ]; then
        echo "kafka-broker: Kafka $version cached in $libs"
        return 0
    fi
    command -v mvn >/dev/null 2>&1 || die "mvn not found (Maven fetches Kafka from Maven Central)"
    local work started
    work=$(mktemp -d)
    started=$(date +%s)
    # The slf4j binding and log4j 1 (reload4j) are what Kafka's own
    # distribution ships; without them the broker logs nothing.
    cat >"$work/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.duewatch</groupId>
  <artifactId>kafka-broker-fetch</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$version</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-reload4j</artifactId>
      <version>1.7.36</version>
    </dependency>
    <dependency>
      <groupId>ch.qos.reload4j</groupId>
      <artifactId>reload4j</artifactId>
      <version>1.2.25</version>
    </dependency>
  </dependencies>
</project>
EOF
    echo "kafka-broker: fetching Kafka $version and its runtime dependencies from Maven Central"
    mkdir -p "$home"
    rm -rf "$libs.partial"
    if ! (cd "$work" && mvn -q -B -Dstyle.color=never dependency:copy-dependencies \
            -DincludeScope=runtime \
            -DoutputDirectory="$libs.partial"); then
        rm -rf "$work" "$libs.partial"
        die "mvn could not fetch org.apache.kafka:kafka_2.13:$version"
    fi
    rm -rf "$work"
    [ -f "$libs.partial/kafka_2.13-$version.jar" ] || die "fetch incomplete: no kafka_2.13-$version.jar"
    rm -rf "$libs"
    mv "$libs.partial" "$libs"
    date -u +%Y-%m-%dT%H:%M:%SZ >"$marker"
    echo "kafka-broker: Kafka $version in $libs ($(du -sh "$libs" | cut -f1), $(( $(date +%s) - started )) s)"
}

free_ports() {  # two distinct free loopback ports
    "$python" - <<'EOF'
import socket
sockets = []
for _ in range(2):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    sockets.append(s)
print(" ".join(str(s.getsockname()[1]) for s in sockets))
EOF
}

property() {  # property FILE KEY
    sed -n "s/^$2=//p" "$1" | tail -n 1
}

pid_of() {  # the broker's pid when it runs, else nothing
    local pidfile=$1/broker.pid pid
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null \
            && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka'; then
        echo "$pid"
    fi
}

bootstrap_of() {
    local listeners
    listeners=$(property "$1/server.properties" listeners)
    listeners=${listeners#*PLAINTEXT://}
    echo "${listeners%%,*}"
}

write_properties() {  # write_properties DIR PORT CONTROLLER_PORT
    local dir=$1 port=$2 cport=$3
    cat >"$dir/server.properties" <<EOF
# written by scripts/kafka-broker.sh: a single-node KRaft broker for tests
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$dir/data
auto.create.topics.enable=false
delete.topic.enable=true
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=2
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
num.network.threads=2
num.io.threads=4
background.threads=4
num.recovery.threads.per.data.dir=1
log.segment.bytes=1048576
log.retention.hours=24
log.retention.check.interval.ms=60000
log.cleaner.dedupe.buffer.size=4194304
offsets.topic.segment.bytes=1048576
transaction.state.log.segment.bytes=1048576
file.delete.delay.ms=1000
EOF
    cat >"$dir/log4j.properties" <<EOF
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.log.LogCleaner=WARN
log4j.logger.org.apache.kafka.storage.internals.log=WARN
log4j.logger.kafka.log=WARN
EOF
}

wait_ready() {  # wait_ready DIR PID BOOTSTRAP TIMEOUT
    local dir=$1 pid=$2 bootstrap=$3 timeout=$4
    "$python" - "$bootstrap" "$timeout" "$pid" <<'EOF' || return 1
import os, sys, time
from confluent_kafka.admin import AdminClient
bootstrap, timeout, pid = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
deadline = time.monotonic() + timeout
admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0,
                     "reconnect.backoff.max.ms": 200})
while True:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit("broker exited")
    try:
        metadata = admin.list_topics(timeout=1)
        if metadata.brokers and metadata.controller_id >= 0:
            sys.exit(0)
    except Exception:
        pass
    if time.monotonic() > deadline:
        sys.exit(f"no metadata answer from {bootstrap} within {timeout:.0f}s")
    time.sleep(0.2)
EOF
}

start() {
    local dir=$1
    [ -f "$marker" ] && [ -d "$libs" ] || die "Kafka $version not fetched: run $0 fetch"
    local java
    java=$(java_binary)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [ -n "$(pid_of "$dir")" ]; then
        die "a broker already runs in $dir (pid $(cat "$dir/broker.pid"))"
    fi
    if [ ! -f "$dir/server.properties" ] || [ ! -f "$dir/data/meta.properties" ]; then
        local ports cluster_id
        ports=$(free_ports)
        rm -rf "$dir/data"
        write_properties "$dir" ${ports% *} ${ports#* }
        # What `StorageTool random-uuid` prints (base64url, 16 random bytes),
        # without starting one more JVM.
        cluster_id=$("$python" -c 'import base64, os
while True:
    text = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
    if not text.startswith("-"):
        print(text)
        break')
        if ! "$java" -cp "$libs/*" -Dlog4j.configuration="file:$dir/log4j.properties" \
                kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/server.properties" \
                >>"$dir/broker.log" 2>&1; then
            die "formatting $dir/data failed; log tail:
$(tail -n 20 "$dir/broker.log")"
        fi
    fi
    local bootstrap pid
    bootstrap=$(bootstrap_of "$dir")
    echo "=== kafka-broker.sh: start $(date -u +%Y-%m-%dT%H:%M:%SZ) ===" >>"$dir/broker.log"
    # setsid: the broker gets a session of its own, so a Ctrl-C meant for the
    # caller reaches it only through `stop`.
    setsid "$java" "-Xmx${DUEWATCH_KAFKA_HEAP:-512m}" -Xms128m -XX:+UseG1GC \
        -XX:MaxGCPauseMillis=20 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
        -Dlog4j.configuration="file:$dir/log4j.properties" -Dkafka.logs.dir="$dir" \
        -cp "$libs/*" kafka.Kafka "$dir/server.properties" \
        </dev/null >>"$dir/broker.log" 2>&1 &
    pid=$!
    echo "$pid" >"$dir/broker.pid"
    if [ -n "${DUEWATCH_KAFKA_WATCH_PID:-}" ]; then
        local watched=$DUEWATCH_KAFKA_WATCH_PID
        setsid bash -c "while kill -0 $watched 2>/dev/null && kill -0 $pid 2>/dev/null; do
                            sleep 1; done
                        kill -9 $pid 2>/dev/null" </dev/null >/dev/null 2>&1 &
    fi
    if ! wait_ready "$dir" "$pid" "$bootstrap" "${DUEWATCH_KAFKA_START_TIMEOUT:-120}"; then
        kill -9 "$pid" 2>/dev/null || true
        die "the broker in $dir did not come up; log tail:
$(tail -n 40 "$dir/broker.log")"
    fi
    echo "BOOTSTRAP=$bootstrap"
}

stop() {  # stop DIR [SIGNAL]
    local dir=$1 signal=${2:-TERM} pid waited=0
    local timeout=${DUEWATCH_KAFKA_STOP_TIMEOUT:-30}
    pid=$(pid_of "$dir")
    if [ -z "$pid" ]; then
        rm -f "$dir/broker.pid"
        echo "kafka-broker: not running in $dir"
        return 0
    fi
    kill "-$signal" "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$waited" -ge $((timeout * 10)) ]; then
            echo "kafka-broker: no exit ${timeout}s after SIG$signal: SIGKILL" >&2
            kill -9 "$pid" 2>/dev/null || true
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    rm -f "$dir/broker.pid"
    echo "kafka-broker: stopped (pid $pid, SIG$signal)"
}

status() {
    local dir=$1 pid
    pid=$(pid_of "$dir")
    if [ -n "$pid" ]; then
        echo "running pid=$pid BOOTSTRAP=$(bootstrap_of "$dir")"
    else
        echo "stopped"
        return 1
    fi
}

usage() {
    echo "usage: $0 fetch | start DIR | stop DIR | kill DIR | status DIR" >&2
    exit 2
}

case ${1:-} in
    fetch) [ $# -eq 1 ] || usage; fetch ;;
    start) [ $# -eq 2 ] || usage; start "$2" ;;
    stop) [ $# -eq 2 ] || usage; stop "$2" TERM ;;
    kill) [ $# -eq 2 ] || usage; stop "$2" KILL ;;
    status) [ $# -eq 2 ] || usage; status "$2" ;;
    *) usage ;;
esac
