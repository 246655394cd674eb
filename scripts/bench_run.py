#!/usr/bin/python3
"""The benchmark behind `make bench` (run through scripts/bench.sh).

On loopback it starts a private redis-server (appendonly yes, appendfsync
everysec) and the mock Kafka cluster (build/tests/mock_cluster), then measures,
in one run and on the same data (scripts/bench_events.py):

  e2e      duewatchd over BENCH_EVENTS pre-loaded events: events/s from the
           first batch stored in dw:offsets to the last offset stored; CPU
           seconds of duewatchd, redis-server and the mock cluster over that
           span; duewatchd's peak RSS
  kafka    bare librdkafka consumer + event_decode (bench_kafka_reader),
           the median of 3 runs
  redis    one pipelined SET <id> NX EX per event (bench_redis_set), the
           median of 3 runs
  script   the batch scripts back to back from a bare client (bench_script
           rate: the read transaction, the computation, apply_effects.lua);
           redis-server CPU per event over it
  profile  the same, with Redis's time per event by command (INFO
           commandstats: EVALSHA is the scripts' own Lua time, the others the
           Redis commands they call)
  clocks   BENCH_CLOCKS running clocks (bench_script clocks): Redis bytes per
           clock, duewatchd RSS and start-to-READY=1; then BENCH_DUE clocks of
           a seconds rule falling due within one second: emitted_at - due_at
  replay   a district-year (BENCH_REPLAY_EVENTS, ts over 365 days) through an
           empty Redis in event-time mode

It prints figures and judges nothing.  Environment: BENCH_EVENTS (1000000),
BENCH_PARTITIONS (auto: enough for the mock's 5 MiB per partition),
BENCH_CLOCKS (1000000), BENCH_DUE (10000), BENCH_REPLAY_EVENTS (100000),
BENCH_SEED (1), BENCH_DIR (work directory; default a fresh temporary one,
removed unless BENCH_KEEP=1), BENCH_PERF=1 (perf record duewatchd and
redis-server during the e2e and fire phases; reports in the work directory,
kept), BENCH_AOF_REWRITE=1 (leave Redis's automatic AOF rewrite on; by default
it is off so a background rewrite does not land in one phase and not another),
BENCH_ONLY (comma-separated phases to run after generating the data: kafka,
e2e, redis, script, profile, clock, replay), BENCH_DAEMON ("key=value,..." daemon
settings for every phase, e.g. batch_max_events=2000), BENCH_REDIS_ARGS (more
redis-server options, e.g. "--zset-max-listpack-entries 512"; Redis's
defaults otherwise, but for appendonly and appendfsync), BENCH_SETTLE (seconds between
READY=1 and the RSS reading, 0.5), DUEWATCH_BUILD (build directory, default
build), DUEWATCH_REDIS_MODULE=0 (Redis without duewatch's module: the daemon
writes through apply_effects.lua, as README "Redis module" describes).

Figures are only as steady as the machine: on a shared 2-core host, other
work moves them by tens of percent; the table shows the load average.
"""

import atexit
import json
import math
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
sys.path.insert(0, str(REPO / "scripts"))
import bench_events  # noqa: E402
import duewatch_testlib as tl  # noqa: E402

EVENTS_TOPIC = "bench.events"
CLOCKS_TOPIC = "bench.clocks"
REPLAY_TOPIC = "bench.replay"
ALERTS_TOPIC = "bench.alerts"
REPLAY_ALERTS_TOPIC = "bench.replay.alerts"
CLOCK_PARTITIONS = 16
REPLAY_PARTITIONS = 16

DUE_RULE = """
# added by the benchmark: one red alert N seconds after the start, nothing else
[bench_due]
label = 基准测试
action = 请忽略
basis = 基准测试规则，无法律依据
start = incident.reported kind=other
stop = incident.closed
key = ref
length = {seconds} seconds
yellow = none
orange = none
red_repeat = none
"""


def env_int(name, default):
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def log(message):
    print(f"bench: {message}", file=sys.stderr, flush=True)


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_kib(pid, field):
    """VmRSS / VmHWM of a process, in KiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1


def parse_fields(line):
    """'a=1 b=2.5' -> {'a': 1.0, 'b': 2.5}"""
    return {key: float(value) for key, value in re.findall(r"(\w+)=([-0-9.]+)", line)}


def batch_figures(port):
    """Batches as duewatchd saw them (its /metrics): mean events per batch
    and mean time from sending a batch to its reply (two are in flight, so
    this includes the wait behind the one ahead)."""
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, _, value = line.partition(" ")
            values[name] = float(value)
    batches = values.get("duewatch_batch_events_count", 0)
    in_flight = values.get("duewatch_redis_batch_duration_seconds_sum", 0)
    return {"mean_batch_events": values.get("duewatch_batch_events_sum", 0) / batches
            if batches else 0,
            "mean_batch_ms": 1000 * in_flight / batches if batches else 0,
            "claims": values.get("duewatch_alert_claims_total", 0),
            "pauses": values.get("duewatch_consumer_pauses_total", 0)}


def command_usec(info):
    """{command: usec} from INFO commandstats (commands called from scripts
    count here too, so EVALSHA's own time is what the script did besides)."""
    usec = {}
    for key, value in info.items():
        if key.startswith("cmdstat_") and isinstance(value, dict):
            usec[key[len("cmdstat_"):]] = int(value.get("usec", 0))
    return usec


def clock_state_bytes(clocks):
    """A running clock's own bytes: its key (MEMORY USAGE, sampled) and its
    share of the due-index buckets."""
    return (clocks["clock_key_bytes"] +
            clocks["due_bucket_bytes"] * clocks["due_buckets"] / max(1, clocks["count"]))


LIMIT_RUNS = 3


def median_run(measure):
    """The run of LIMIT_RUNS whose rate is the median (a limit measured once
    moved by up to a half between runs on the 2-core machine), with every
    run's rate in "rates"."""
    runs = sorted((measure() for _ in range(LIMIT_RUNS)), key=lambda fields: fields["rate"])
    median = dict(runs[len(runs) // 2])
    median["rates"] = [fields["rate"] for fields in runs]
    return median


def run_helper(argv, timeout=900):
    log(" ".join(str(a) for a in argv))
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    return parse_fields(done.stdout.strip().splitlines()[-1])


def percentile(values, fraction):
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


class Bench:
    def __init__(self):
        self.events = env_int("BENCH_EVENTS", 1_000_000)
        # ~130 B values + record overhead; keep each partition under ~3 MiB of
        # the mock's 5 MiB so nothing is dropped before it is read
        auto = 16
        while auto * 3 * 1024 * 1024 < self.events * 180:
            auto *= 2
        self.partitions = env_int("BENCH_PARTITIONS", auto)
        self.clocks = env_int("BENCH_CLOCKS", 1_000_000)
        self.due = env_int("BENCH_DUE", 10_000)
        self.replay_events = env_int("BENCH_REPLAY_EVENTS", 100_000)
        self.seed = env_int("BENCH_SEED", 1)
        self.build = tl.build_dir()
        self.helpers = self.build / "tests"
        given = os.environ.get("BENCH_DIR")
        self.keep = bool(given) or os.environ.get("BENCH_KEEP") == "1" \
            or os.environ.get("BENCH_PERF") == "1"
        self.work = Path(given) if given else Path(tempfile.mkdtemp(prefix="duewatch-bench-"))
        self.work.mkdir(parents=True, exist_ok=True)
        self.results = {}
        self.notes = []
        self.redis = None
        self.mock = None

    # -- infrastructure --

    def start_infrastructure(self):
        # as README "From the source tree" asks of the Redis duewatch uses
        extra = ["--appendfsync", "everysec"]
        extra += os.environ.get("BENCH_REDIS_ARGS", "").split()
        if os.environ.get("BENCH_AOF_REWRITE") != "1":
            extra += ["--auto-aof-rewrite-percentage", "0"]
        self.redis = tl.RedisServer(self.work / "redis", appendonly=True, extra_args=extra)
        self.redis.start()
        self.r = self.redis.client()
        topics = {EVENTS_TOPIC: self.partitions, CLOCKS_TOPIC: CLOCK_PARTITIONS,
                  REPLAY_TOPIC: REPLAY_PARTITIONS, ALERTS_TOPIC: 4, REPLAY_ALERTS_TOPIC: 4,
                  "bench.deadletter": 1}
        self.mock = tl.MockCluster(self.work / "kafka", topics=topics)
        self.mock.start()
        log(f"redis-server on port {self.redis.port} (pid {self.redis.process.pid}), "
            f"mock cluster {self.mock.bootstrap} (pid {self.mock.process.pid}), "
            f"work directory {self.work}")

    def flush_redis(self):
        self.r.flushall()
        self.r.config_resetstat()

    def daemon_config(self, topic, alert_topic=ALERTS_TOPIC, **changes):
        config = tl.default_daemon_config(self.mock.bootstrap, self.redis)
        config.update({"input_topics": topic, "dead_letter_topic": "bench.deadletter",
                       "alert_topic": alert_topic, "log_level": "info"})
        config.update(changes)
        # BENCH_DAEMON="key=value,...": daemon settings to try (every phase)
        for item in filter(None, os.environ.get("BENCH_DAEMON", "").split(",")):
            key, _, value = item.partition("=")
            config[key.strip()] = value.strip()
        return config

    def wait_applied(self, daemon, topic, timeout):
        """Polls <prefix>offsets until every partition reached its high
        watermark.  Returns timings (monotonic) and CPU samples."""
        targets = {f"{topic}:{p}": high
                   for p, high in tl.high_watermarks(self.mock.bootstrap, topic).items() if high}
        total = sum(targets.values())
        pids = {"duewatchd": daemon.pid, "redis": self.redis.process.pid,
                "kafka": self.mock.process.pid}
        out = {"consuming": None, "first": None, "first_applied": 0, "end": None}
        deadline = time.monotonic() + timeout
        perf = None
        while time.monotonic() < deadline:
            now = time.monotonic()
            if out["consuming"] is None and "kafka: consuming" in daemon.log():
                out["consuming"] = now
            offsets = self.r.hgetall("dw:offsets")
            applied = sum(int(offsets.get(key, 0)) for key in targets)
            if out["first"] is None and applied > 0:
                out["first"] = now
                out["first_applied"] = applied
                out["cpu_first"] = {name: cpu_seconds(pid) for name, pid in pids.items()}
                perf = self.start_perf(pids)
            if applied >= total:
                out["end"] = now
                out["cpu_end"] = {name: cpu_seconds(pid) for name, pid in pids.items()}
                break
            if not daemon.running:
                raise RuntimeError(f"duewatchd exited; log tail:\n{daemon.log()[-3000:]}")
            time.sleep(0.01)
        if perf is not None:
            self.stop_perf(perf)
        if out["end"] is None:
            raise RuntimeError(f"{topic}: {applied} of {total} offsets stored within {timeout}s")
        out["total"] = total
        out["cpu"] = {name: out["cpu_end"][name] - out["cpu_first"][name] for name in pids}
        return out

    def start_perf(self, pids, name="e2e"):
        if os.environ.get("BENCH_PERF") != "1":
            return None
        if not shutil.which("perf"):
            self.notes.append("BENCH_PERF=1 but perf is not installed")
            return None
        path = self.work / f"perf-{name}.data"
        pid_list = f"{pids['duewatchd']},{pids['redis']}"
        log(f"perf record -g -p {pid_list} -o {path}")
        perf = subprocess.Popen(["perf", "record", "-F", "999", "-g", "-p", pid_list, "-o",
                                 str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        perf.bench_name = name
        return perf

    def stop_perf(self, perf):
        if perf is None:
            return
        perf.send_signal(signal.SIGINT)
        perf.wait(timeout=60)
        name = perf.bench_name
        report = self.work / f"perf-{name}.txt"
        with open(report, "w") as out:
            subprocess.run(["perf", "report", "--stdio", "--no-children", "-i",
                            str(self.work / f"perf-{name}.data"), "--sort", "comm,dso,symbol",
                            "--percent-limit", "0.5", "-g", "none"],
                           stdout=out, stderr=subprocess.DEVNULL, timeout=300)
        self.notes.append(f"perf profile of the {name} phase: {report}")

    # -- phases --

    def generate(self):
        rng = random.Random(self.seed)
        self.data = self.work / "events.dat"
        started = time.monotonic()
        stream = bench_events.live(rng, self.events, bench_events.ev.suite_now_ms())
        count, size, starts = bench_events.write(self.data, stream, self.partitions)
        del stream
        self.results["data"] = {"events": count, "mean_bytes": size / count,
                                "clock_starts": starts / count}
        log(f"generated {count} events ({size / count:.0f} B each, {100 * starts / count:.1f}% "
            f"start a clock) in {time.monotonic() - started:.1f}s")
        started = time.monotonic()
        produced = bench_events.produce(self.mock.bootstrap, EVENTS_TOPIC, self.data)
        highs = tl.high_watermarks(self.mock.bootstrap, EVENTS_TOPIC)
        if sum(highs.values()) != produced:
            raise RuntimeError(f"{EVENTS_TOPIC} holds {sum(highs.values())} of {produced} events "
                               f"(mock cluster dropped some?)")
        log(f"produced {produced} events to {EVENTS_TOPIC} ({self.partitions} partitions) in "
            f"{time.monotonic() - started:.1f}s")

    def kafka_limit(self):
        def once():
            fields = run_helper([self.helpers / "bench_kafka_reader", self.mock.bootstrap,
                                 EVENTS_TOPIC, self.events])
            if fields["valid"] != self.events:
                self.notes.append(f"kafka reader decoded {fields['valid']:.0f} valid of "
                                  f"{self.events}")
            return fields
        self.results["kafka"] = median_run(once)

    def e2e(self):
        self.flush_redis()
        metrics_port = tl.free_port()
        daemon = tl.Daemon(self.work / "e2e", self.daemon_config(
            EVENTS_TOPIC, http_listen=f"127.0.0.1:{metrics_port}"))
        started = time.monotonic()
        daemon.start()
        try:
            timing = self.wait_applied(daemon, EVENTS_TOPIC, timeout=max(300, self.events / 5000))
            seconds = timing["end"] - timing["first"]
            rate = (timing["total"] - timing["first_applied"]) / seconds if seconds > 0 else 0
            stats = self.r.info("commandstats")
            # the batches' writes: DUEWATCH.APPLY with the module, else the script
            write_command = "duewatch.apply" if self.redis.module else "evalsha"
            evalsha = stats.get(f"cmdstat_{write_command}", {})
            self.results["e2e"] = {
                "rate": rate, "seconds": seconds,
                "since_consuming_s": timing["end"] - (timing["consuming"] or timing["first"]),
                "since_start_s": timing["end"] - started,
                "cpu": timing["cpu"], "rss_peak_mib": memory_kib(daemon.pid, "VmHWM") / 1024,
                "evalsha_calls": evalsha.get("calls", 0),
                "evalsha_usec_per_call": evalsha.get("usec_per_call", 0),
                "redis_used_mib": self.r.info("memory")["used_memory"] / 2**20,
            }
            self.results["e2e"].update(batch_figures(metrics_port))
            self.results["e2e"]["evalsha_share"] = (
                evalsha.get("calls", 0) * evalsha.get("usec_per_call", 0) / 1e6 / seconds
                if seconds > 0 else 0)
        finally:
            daemon.close()
        match = re.search(r"stopped: (\d+) messages consumed, (\d+) events applied, (\d+) dupl",
                          daemon.log())
        if match and int(match.group(2)) != self.events:
            self.notes.append(f"e2e: daemon applied {match.group(2)} of {self.events} events")

    def redis_limit(self):
        def once():
            self.flush_redis()
            return run_helper([self.helpers / "bench_redis_set", self.redis.host,
                               self.redis.port, self.data, "--depth", "128"])
        self.results["redis"] = median_run(once)

    def run_script(self, *extra):
        """bench_script rate over the data with the e2e daemon's configuration
        (same Redis, prefix, TTLs, batch size, rules); adds redis_cpu_s."""
        self.flush_redis()
        config = self.work / "e2e" / "duewatch.conf"
        config.parent.mkdir(parents=True, exist_ok=True)
        tl.write_config(config, self.daemon_config(EVENTS_TOPIC))
        cpu_before = cpu_seconds(self.redis.process.pid)
        fields = run_helper([self.helpers / "bench_script", "rate", config, self.data,
                             EVENTS_TOPIC, *extra])
        fields["redis_cpu_s"] = cpu_seconds(self.redis.process.pid) - cpu_before
        if fields["applied"] != self.events:
            self.notes.append(f"bench_script applied {fields['applied']:.0f} of {self.events}")
        return fields

    def script_rate(self):
        self.results["script"] = self.run_script()

    def script_profile(self):
        """Redis time per event by command over a script run (INFO
        commandstats, reset before it)."""
        self.r.config_resetstat()
        fields = self.run_script()
        stats = self.r.info("commandstats")
        usec = command_usec(stats)
        top = sorted(usec.items(), key=lambda item: -item[1])[:8]
        self.results["profile"] = {
            "rate": fields["rate"], "redis_cpu_s": fields["redis_cpu_s"],
            "phases_us_per_event": {name: us / self.events for name, us in top},
            "calls_per_event": {name: stats[f"cmdstat_{name}"]["calls"] / self.events
                                for name, _ in top}}

    def clock_scale(self):
        self.flush_redis()
        rules = self.work / "rules-clocks.conf"
        due_seconds = 10
        rules.write_text((REPO / "conf" / "rules.conf").read_text()
                         + DUE_RULE.format(seconds=due_seconds))
        daemon = tl.Daemon(self.work / "clocks", self.daemon_config(
            CLOCKS_TOPIC, rules_file=str(rules)))
        tl.write_config(daemon.config_path, daemon.config)
        fields = run_helper([self.helpers / "bench_script", "clocks", daemon.config_path,
                             self.clocks, CLOCKS_TOPIC, CLOCK_PARTITIONS])
        clocks = {"count": self.clocks, "start_rate": fields["rate"],
                  "bytes": (fields["used_after_dedupe_del"] - fields["used_before"]) / self.clocks,
                  "bytes_with_dedupe": (fields["used_after"] - fields["used_before"]) / self.clocks,
                  "redis_used_mib": fields["used_after_dedupe_del"] / 2**20}
        # the clocks belong to CLOCKS_TOPIC's partitions, but no message of it
        # was consumed: let the daemon start from the topic's beginning
        self.r.delete("dw:offsets", "dw:eventtime")
        clocks["running"] = int(self.r.get("dw:active:bail_expiry:_all") or 0)
        clocks.update(self.clock_memory_breakdown())
        if clocks["running"] != self.clocks:
            self.notes.append(f"clocks: {clocks['running']} running of {self.clocks} started")
        self.results["clocks"] = clocks

        # start to READY=1, with 1M clocks in Redis
        started = time.monotonic()
        daemon.start()
        try:
            assigned = ready = redis_ready = None
            deadline = started + 60
            while time.monotonic() < deadline and ready is None:
                now = time.monotonic()
                if any(m.startswith("READY=1") for m in daemon.notifications()):
                    ready = now
                text = daemon.log()
                if redis_ready is None and "redis: connected" in text:
                    redis_ready = now
                if assigned is None and "partition(s) assigned" in text:
                    assigned = now
                if not daemon.running:
                    raise RuntimeError(f"duewatchd exited; log tail:\n{daemon.log()[-3000:]}")
                time.sleep(0.002)
            if ready is None:
                raise RuntimeError("no READY=1 within 60s")
            clocks["ready_s"] = ready - started
            clocks["assigned_to_ready_s"] = ready - (assigned or ready)
            clocks["redis_ready_s"] = (redis_ready or ready) - started
            time.sleep(float(os.environ.get("BENCH_SETTLE", "0.5")))
            clocks["rss_mib"] = memory_kib(daemon.pid, "VmRSS") / 1024

            # BENCH_DUE clocks of the seconds rule falling due within one second
            rng = random.Random(self.seed + 1)
            t0 = int(time.time() * 1000) + 1000
            due_data = self.work / "due.dat"
            bench_events.write(due_data, bench_events.due(rng, self.due, t0), CLOCK_PARTITIONS)
            before = sum(tl.high_watermarks(self.mock.bootstrap, ALERTS_TOPIC).values())
            # what Redis spends on the claims: scripts slower than 1 ms are logged
            self.r.config_set("slowlog-log-slower-than", 1000)
            self.r.config_set("slowlog-max-len", 100000)
            self.r.slowlog_reset()
            perf = self.start_perf({"duewatchd": daemon.pid, "redis": self.redis.process.pid},
                                   "fire")
            cpu_before = (cpu_seconds(daemon.pid), cpu_seconds(self.redis.process.pid))
            bench_events.produce(self.mock.bootstrap, CLOCKS_TOPIC, due_data)
            applied_by = time.time() * 1000
            # read the alerts only once they are out, so the reader does not
            # compete for the CPUs while they fire
            due_end = t0 + 1000 + due_seconds * 1000
            time.sleep(max(0.0, (due_end + 500) / 1000 - time.time()))
            tl.wait_until(lambda: sum(tl.high_watermarks(self.mock.bootstrap, ALERTS_TOPIC)
                                      .values()) >= before + self.due, timeout=60, interval=0.5,
                          message=f"{self.due} alerts on {ALERTS_TOPIC}")
            cpu_fire = (cpu_seconds(daemon.pid) - cpu_before[0],
                        cpu_seconds(self.redis.process.pid) - cpu_before[1])
            self.stop_perf(perf)
            claims = []
            for entry in self.r.slowlog_get(100000):
                words = entry["command"].split() if isinstance(entry["command"], str) \
                    else entry["command"].decode(errors="replace").split()
                if len(words) > 5 and words[0].upper() == "EVALSHA" and words[5] in ("wall",
                                                                                     "event"):
                    claims.append(entry["duration"] / 1000)
            self.r.config_set("slowlog-log-slower-than", 10000)
            records = tl.consume_all(self.mock.bootstrap, ALERTS_TOPIC, count=before + self.due,
                                     timeout=60)
            latencies, due_times = [], []
            for record in records:
                alert = bench_events.ev.msgpack.unpackb(record.value, raw=False)
                if alert.get("rule") == "bench_due" and alert.get("state") == "firing":
                    latencies.append(alert["emitted_at"] - alert["due_at"])
                    due_times.append(alert["due_at"])
            clocks["rss_peak_mib"] = memory_kib(daemon.pid, "VmHWM") / 1024
            (self.work / "fire_latencies.json").write_text(json.dumps(sorted(
                (alert_due, latency) for alert_due, latency in zip(due_times, latencies))))
            clocks["due_lead_ms"] = t0 + due_seconds * 1000 - applied_by
            self.results["fire"] = {"alerts": len(latencies),
                                    "p50": percentile(latencies, 0.50),
                                    "p99": percentile(latencies, 0.99),
                                    "max": max(latencies) if latencies else float("nan"),
                                    "min": min(latencies) if latencies else float("nan"),
                                    "mean": statistics.mean(latencies) if latencies else 0,
                                    "slow_claims": len(claims),
                                    "slow_claim_ms_max": max(claims, default=0),
                                    "slow_claim_ms_total": sum(claims),
                                    "cpu_duewatchd": cpu_fire[0], "cpu_redis": cpu_fire[1]}
            if len(latencies) != self.due:
                self.notes.append(f"fire: {len(latencies)} alerts of {self.due} clocks")
        finally:
            daemon.close()

    def clock_memory_breakdown(self):
        """Where a clock's bytes go: its string key (MEMORY USAGE of a sample)
        and its share of the due index (10-minute bucket zsets per partition)."""
        sizes = []
        cursor = 0
        while len(sizes) < 300:
            cursor, keys = self.r.scan(cursor, match="dw:clock:*", count=1000)
            for key in keys[:300 - len(sizes)]:
                sizes.append(self.r.memory_usage(key, samples=0) or 0)
            if cursor == 0:
                break
        buckets = sum(self.r.zcard(f"dw:due:{CLOCKS_TOPIC}:{p}") for p in range(CLOCK_PARTITIONS))
        bucket_sizes = []
        for p in range(CLOCK_PARTITIONS):
            for bucket in self.r.zrange(f"dw:due:{CLOCKS_TOPIC}:{p}", 0, 19):
                bucket_sizes.append(self.r.memory_usage(f"dw:due:{CLOCKS_TOPIC}:{p}:{bucket}",
                                                        samples=0) or 0)
        return {"clock_key_bytes": statistics.mean(sizes) if sizes else float("nan"),
                "due_buckets": buckets,
                "due_bucket_bytes": statistics.mean(bucket_sizes) if bucket_sizes else 0}

    def replay(self):
        self.flush_redis()
        rng = random.Random(self.seed + 2)
        data = self.work / "replay.dat"
        count, _, _ = bench_events.write(
            data, bench_events.year(rng, self.replay_events, bench_events.ev.suite_now_ms()),
            REPLAY_PARTITIONS)
        bench_events.produce(self.mock.bootstrap, REPLAY_TOPIC, data)
        daemon = tl.Daemon(self.work / "replay", self.daemon_config(
            REPLAY_TOPIC, alert_topic=REPLAY_ALERTS_TOPIC, clock_mode="event"))
        started = time.monotonic()
        daemon.start()
        try:
            timing = self.wait_applied(daemon, REPLAY_TOPIC, timeout=600)
            alerts_at_end = sum(tl.high_watermarks(self.mock.bootstrap,
                                                   REPLAY_ALERTS_TOPIC).values())
            self.results["replay"] = {
                "events": count, "seconds": timing["end"] - timing["first"],
                "since_start_s": timing["end"] - started, "alerts": alerts_at_end,
                "cpu": timing["cpu"], **self.counter_memory()}
        finally:
            daemon.close()

    def counter_memory(self):
        """What the district-year's counters take in Redis (MEMORY USAGE of
        every key, samples 0): the period buckets (d/w/m/q/y), the persons'
        membership hashes (p*) and the snapshots' overdue-list changes, per
        unit-month (a dw:m: key is one unit-month, _all included), and the
        persons' hashes per membership (a person in a bucket and unit)."""
        classes = {"buckets": ("d", "w", "m", "q", "y"), "persons": ("pd", "pw", "pm", "pq", "py"),
                   "changes": ("unlisted", "relisted")}
        sizes = {name: 0 for name in classes}
        unit_months = memberships = 0
        for name, kinds in classes.items():
            for kind in kinds:
                for key in self.r.scan_iter(match=f"dw:{kind}:*", count=1000):
                    sizes[name] += self.r.memory_usage(key, samples=0) or 0
                    if kind == "m":
                        unit_months += 1
                    if name == "persons":
                        memberships += self.r.hlen(key)
        return {"unit_months": unit_months, "memberships": memberships,
                "counter_bytes": sizes, "counter_bytes_per_unit_month":
                    sum(sizes.values()) / max(1, unit_months),
                "person_bytes_per_membership": sizes["persons"] / max(1, memberships)}

    # -- report --

    def machine(self):
        model = "unknown"
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        return {"nproc": os.cpu_count(), "cpu": model,
                "load1": os.getloadavg()[0],
                "redis": subprocess.run(["redis-server", "--version"], capture_output=True,
                                        text=True).stdout.split()[2]}

    def report(self, machine):
        # the way batches are written (README "The Redis module")
        machine["writes"] = "module" if self.redis is not None and self.redis.module else "script"
        res = self.results
        lines = []
        add = lines.append
        add("")
        add(f"duewatch benchmark  ({machine['nproc']} CPUs, {machine['cpu']}, load average "
            f"{machine['load1']:.2f} at start, redis {machine['redis']}, writes through the "
            f"{'duewatch module' if machine['writes'] == 'module' else 'script'}; loopback, "
            f"mock Kafka)")
        if "data" in res:
            d = res["data"]
            add(f"data: {d['events']} events, {d['mean_bytes']:.0f} B mean value, "
                f"{100 * d['clock_starts']:.1f}% start a clock, {self.partitions} partitions")
        add("")
        row = "  {:<44} {:>14}  {}".format
        if "e2e" in res:
            e = res["e2e"]
            add(row("duewatch end to end", f"{e['rate']:,.0f}/s",
                    f"{e['seconds']:.2f}s first batch stored -> last offset stored"))
            add(row("", "", f"{e['since_consuming_s']:.2f}s since 'consuming', "
                            f"{e['since_start_s']:.2f}s since start (group join)"))
            write_name = "DUEWATCH.APPLY" if machine["writes"] == "module" else "EVALSHA"
            add(row("  CPU duewatchd / redis-server / mock Kafka",
                    f"{e['cpu']['duewatchd']:.1f}s", f"{e['cpu']['redis']:.1f}s / "
                    f"{e['cpu']['kafka']:.1f}s"))
            add(row("  duewatchd peak RSS", f"{e['rss_peak_mib']:.1f} MiB", ""))
            if "mean_batch_events" in e:
                add(row("  batches (duewatchd's /metrics)", f"{e['mean_batch_events']:,.0f} ev",
                        f"mean per batch; {e['mean_batch_ms']:.1f} ms send -> reply; Redis in "
                        f"{write_name} {100 * e['evalsha_share']:.0f}% of the span; "
                        f"{e['claims']:.0f} claims; consumer paused "
                        f"{e['pauses']:.0f} times"))
            add(row(f"  {write_name} calls", f"{e['evalsha_calls']}",
                    f"{e['evalsha_usec_per_call'] / 1000:.1f} ms per call in Redis; "
                    f"Redis holds {e['redis_used_mib']:.0f} MiB"))
        def runs(limit):
            return "median of " + ", ".join(f"{rate:,.0f}" for rate in limit["rates"])
        if "kafka" in res:
            add(row("Kafka read limit (consumer + event_decode)",
                    f"{res['kafka']['rate']:,.0f}/s",
                    f"{res['kafka']['seconds']:.2f}s; {runs(res['kafka'])}"))
        if "redis" in res:
            add(row("Redis limit (SET NX EX, pipeline 128)", f"{res['redis']['rate']:,.0f}/s",
                    f"{res['redis']['seconds']:.2f}s; {runs(res['redis'])}"))
        ratio = script_ratio = None
        if {"e2e", "kafka", "redis"} <= res.keys():
            ratio = res["e2e"]["rate"] / min(res["kafka"]["rate"], res["redis"]["rate"])
            add(row("ratio duewatch / min(Kafka, Redis)", f"{ratio:.3f}", ""))
        if "script" in res:
            add(row("batch scripts back to back", f"{res['script']['rate']:,.0f}/s",
                    f"{res['script']['batches']:.0f} batches, {res['script']['seconds']:.2f}s"))
            add(row("", "", f"redis-server CPU {1e6 * res['script']['redis_cpu_s'] / self.events:.1f} "
                            f"us per event"))
            if "e2e" in res:
                script_ratio = res["e2e"]["rate"] / res["script"]["rate"]
                add(row("script ratio duewatch / script", f"{script_ratio:.3f}", ""))
        if "profile" in res:
            p = res["profile"]
            add(row("Redis time by command (us per event)",
                    f"{sum(p['phases_us_per_event'].values()):.2f}",
                    f"of {1e6 * p['redis_cpu_s'] / self.events:.1f} us of redis-server CPU "
                    f"({p['rate']:,.0f}/s; evalsha = the scripts' own Lua, duewatch.apply "
                    f"the module's own C)"))
            add(row("", "", "  ".join(f"{name} {us:.2f}"
                                      for name, us in p["phases_us_per_event"].items())))
            add(row("  calls per event", "", "  ".join(
                f"{name} {calls:.2f}" for name, calls in p["calls_per_event"].items())))
        if "clocks" in res:
            c = res["clocks"]
            add(row(f"Redis memory per clock ({c['count']:,} running)",
                    f"{c['bytes']:.0f} B", f"{c['bytes_with_dedupe']:.0f} B while the start "
                    f"events' dedupe keys live; clocks started at {c['start_rate']:,.0f}/s"))
            add(row("", "", f"clock key ~{c['clock_key_bytes']:.0f} B (MEMORY USAGE); "
                            f"{c['due_buckets']:,} due-index buckets, "
                            f"~{c['count'] / max(1, c['due_buckets']):.0f} clocks and "
                            f"~{c['due_bucket_bytes']:.0f} B each"))
            add(row("  of which the clock itself", f"{clock_state_bytes(c):.0f} B",
                    "its key and its share of the due index; the rest is the start's "
                    "counters (persons among them)"))
            if "ready_s" in c:
                add(row("duewatchd start -> READY=1", f"{c['ready_s']:.2f}s",
                        f"Redis set up after {c['redis_ready_s']:.3f}s; READY "
                        f"{c['assigned_to_ready_s']:.3f}s after the group assignment"))
                add(row("", "", "(the mock cluster holds a group's first join ~3 s)"))
                add(row(f"duewatchd RSS with {c['count']:,} clocks", f"{c['rss_mib']:.1f} MiB",
                        f"peak {c.get('rss_peak_mib', float('nan')):.1f} MiB "
                        f"after firing"))
        if "fire" in res:
            f = res["fire"]
            add(row(f"fire latency, {f['alerts']:,} due within 1 s",
                    f"p99 {f['p99']:.0f} ms", f"p50 {f['p50']:.0f} ms, max {f['max']:.0f} ms, "
                    f"min {f['min']:.0f} ms (emitted_at - due_at)"))
            add(row("", "", f"{f['slow_claims']} claim script calls over 1 ms took "
                            f"{f['slow_claim_ms_total']:.0f} ms in Redis, the longest "
                            f"{f['slow_claim_ms_max']:.0f} ms"))
            add(row("", "", f"CPU from the starts to the last alert: duewatchd "
                            f"{f['cpu_duewatchd']:.2f}s, redis-server {f['cpu_redis']:.2f}s"))
        if "replay" in res:
            r = res["replay"]
            add(row(f"replay of a district-year ({r['events']:,} events)",
                    f"{r['seconds']:.2f}s", f"{r['since_start_s']:.2f}s since start; "
                    f"{r['alerts']:,} alerts emitted by then; event-time mode"))
            b = r["counter_bytes"]
            add(row(f"counters per unit-month ({r['unit_months']:,})",
                    f"{r['counter_bytes_per_unit_month']:,.0f} B",
                    f"period buckets {b['buckets'] / 2**20:.1f} MiB, persons "
                    f"{b['persons'] / 2**20:.1f} MiB, overdue changes "
                    f"{b['changes'] / 2**20:.2f} MiB"))
            add(row(f"persons: per membership ({r['memberships']:,})",
                    f"{r['person_bytes_per_membership']:.0f} B",
                    "a person in one bucket and unit (MEMORY USAGE of dw:p*)"))
        for note in self.notes:
            add(f"note: {note}")
        add("")
        add(f"bench machine nproc={machine['nproc']} cpu=\"{machine['cpu']}\" "
            f"load1={machine['load1']:.2f} writes={machine['writes']}")
        if "e2e" in res:
            e = res["e2e"]
            line = (f"bench e2e_events_per_s={e['rate']:.0f} "
                    f"kafka_limit={res.get('kafka', {}).get('rate', float('nan')):.0f} "
                    f"redis_limit={res.get('redis', {}).get('rate', float('nan')):.0f}")
            if ratio is not None:
                line += f" ratio={ratio:.3f}"
            line += (f" duewatchd_cpu_s={e['cpu']['duewatchd']:.2f} "
                     f"redis_cpu_s={e['cpu']['redis']:.2f} rss_peak_mib={e['rss_peak_mib']:.1f}")
            add(line)
        if "script" in res:
            add(f"bench script_rate={res['script']['rate']:.0f}"
                + (f" script_ratio={script_ratio:.3f}" if script_ratio is not None else "")
                + f" redis_us_per_event={1e6 * res['script']['redis_cpu_s'] / self.events:.2f}")
        if "profile" in res:
            add("bench script_phases_us_per_event " + " ".join(
                f"{name}={us:.2f}" for name, us in res["profile"]["phases_us_per_event"].items()))
            add("bench script_calls_per_event " + " ".join(
                f"{name}={calls:.3f}" for name, calls in res["profile"]["calls_per_event"].items()))
        if "clocks" in res:
            c = res["clocks"]
            add(f"bench clock_memory_bytes={c['bytes']:.0f} "
                f"clock_memory_bytes_with_dedupe={c['bytes_with_dedupe']:.0f} "
                f"clock_state_bytes={clock_state_bytes(c):.0f} "
                f"rss_mib={c.get('rss_mib', float('nan')):.1f} "
                f"ready_s={c.get('ready_s', float('nan')):.3f} "
                f"redis_ready_s={c.get('redis_ready_s', float('nan')):.3f} "
                f"assigned_to_ready_s={c.get('assigned_to_ready_s', float('nan')):.3f}")
        if "fire" in res:
            f = res["fire"]
            add(f"bench fire_latency_ms p50={f['p50']:.0f} p99={f['p99']:.0f} max={f['max']:.0f}")
        if "replay" in res:
            r = res["replay"]
            add(f"bench replay_seconds={r['seconds']:.2f} "
                f"counter_bytes_per_unit_month={r['counter_bytes_per_unit_month']:.0f} "
                f"person_bytes_per_membership={r['person_bytes_per_membership']:.0f}")
        print("\n".join(lines), flush=True)
        (self.work / "results.json").write_text(json.dumps(
            {"machine": machine, **res}, indent=2, default=str))

    def run(self):
        machine = self.machine()
        phases = [("generate", self.generate), ("kafka limit", self.kafka_limit),
                  ("e2e", self.e2e), ("redis limit", self.redis_limit),
                  ("script rate", self.script_rate), ("profile", self.script_profile),
                  ("clock scale", self.clock_scale),
                  ("replay", self.replay)]
        only = [p.strip() for p in os.environ.get("BENCH_ONLY", "").split(",") if p.strip()]
        failed = False
        try:
            self.start_infrastructure()
            for name, phase in phases:
                if only and name.split()[0] not in only and name != "generate":
                    continue
                log(f"phase: {name}")
                started = time.monotonic()
                try:
                    phase()
                except Exception as error:  # report what was measured, go on
                    failed = True
                    self.notes.append(f"{name} failed: {error}")
                    log(f"{name} failed: {error}")
                    if name == "generate":
                        break
                log(f"phase {name} took {time.monotonic() - started:.1f}s")
        finally:
            self.report(machine)
            tl.kill_all_processes()
            if not self.keep:
                shutil.rmtree(self.work, ignore_errors=True)
            else:
                print(f"bench: work directory kept: {self.work}", file=sys.stderr)
        return 1 if failed else 0


def main():
    atexit.register(tl.kill_all_processes)

    def stop(signal_number, frame):
        raise SystemExit(128 + signal_number)
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(number, stop)
    return Bench().run()


if __name__ == "__main__":
    sys.exit(main())
