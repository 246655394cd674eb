"""Fault injection against the whole pipeline (issue "Against the real thing").

Each test breaks one piece while a stream flows (the Kafka broker, Redis,
duewatchd itself, the consumer group, single Kafka requests) and then asserts
the exact outcome: every counter bucket equal to an independent count of the
valid events sent, every malformed message dead-lettered (exactly once but
where a crash or a lost assignment allows duplicates), every due alert level
delivered with a stable alert_id (exactly once where no instance died).  Each
prints the figures it checks on one line starting with "faults[<name>]:":
events sent and applied, dead letters expected, found and duplicated, alerts
expected, delivered, distinct and duplicated.

Runs against librdkafka's mock cluster (default) and against a real Kafka
broker (DUEWATCH_KAFKA=real, see kafka_real.py); a test that needs one of
them skips on the other.
"""

import collections
import datetime
import os
import re
import signal
import threading
import time
import uuid
from zoneinfo import ZoneInfo

import msgpack
import pytest

import duewatch_testlib as lib
import events as ev
import kafka_real
from ingest_checks import (DEAD_LETTER_TOPIC, EVENT_TOPIC, applied_events,
                           assert_counters_exact, build_stream, redis_positions,
                           wait_applied)

READY = r"kafka: consuming duewatch\.events"
RULES = lib.REPO_ROOT / "tests" / "e2e" / "rules"
ALERT_TOPIC = "duewatch.alerts"
UNIT = "500112-FT01"
# The types that start the clocks of tests/e2e/rules/*.conf.
CLOCK_STARTS = ("measure.started", "detention.decided")

needs_mock_cluster = pytest.mark.skipif(
    kafka_real.enabled(), reason="injects request errors: librdkafka's mock cluster only")


def now_ms():
    return int(time.time() * 1000)


def scaled(seconds):
    return seconds * lib.timeout_scale()


def figures(name, **values):
    return lib.print_ledger("faults", name, **values)


# --------------------------------------------------------------------------
# A stream whose every message's position is known


class Stream:
    """build_stream()'s messages, produced in parts with their positions
    recorded, so dead letters can be matched to their source messages."""

    def __init__(self, rng, total, pad_to=None, max_message_bytes=None, exclude_types=(),
                 malformed_fraction=0.01):
        if pad_to is None:
            self.messages, self.valid, self.malformed = build_stream(
                rng, total, malformed_fraction=malformed_fraction)
            if exclude_types:
                # Without the events that start a test rule's clocks (their
                # past starts would fire backfilled alerts of their own).
                self.valid = [e for e in self.valid if e["type"] not in exclude_types]
                self.messages = [(key, value) for key, value in self.messages
                                 if key.startswith(b"bad-")
                                 or msgpack.unpackb(value)["type"] not in exclude_types]
        else:
            # Valid events padded with an unknown key (ignored by the daemon)
            # to pad_to bytes, malformed ones built against max_message_bytes.
            self.messages, self.valid, _ = build_stream(rng, total, malformed_fraction=0)
            self.messages = [(key, ev._pad_to(msgpack.unpackb(value), pad_to))
                             for key, value in self.messages]
            self.malformed = ev.malformed_events(rng, total // 100, max_bytes=max_message_bytes)
            for value, _ in self.malformed:
                position = rng.randrange(0, len(self.messages) + 1)
                self.messages.insert(position, (f"bad-{rng.randrange(10**9)}".encode(), value))
        self.reason_of = {value or b"": reason for value, reason in self.malformed}
        self.positions = [None] * len(self.messages)
        self.sent = 0

    def __len__(self):
        return len(self.messages)

    @property
    def bytes(self):
        return sum(len(value or b"") for _, value in self.messages)

    def send(self, bootstrap, part, parts):
        """Produces part `part` (0-based) of `parts` equal parts."""
        size = (len(self.messages) + parts - 1) // parts
        start, end = part * size, min(len(self.messages), (part + 1) * size)
        if start < end:
            self.positions[start:end] = lib.produce(bootstrap, EVENT_TOPIC,
                                                    self.messages[start:end], timeout=180)
            self.sent += end - start

    def send_all(self, bootstrap):
        self.send(bootstrap, 0, 1)

    def malformed_sent(self):
        """How many malformed messages the parts sent so far hold."""
        return sum(1 for key, _ in self.messages[:self.sent]
                   if key is not None and key.startswith(b"bad-"))

    def malformed_positions(self):
        return {self.positions[i]: value or b""
                for i, (key, value) in enumerate(self.messages)
                if key is not None and key.startswith(b"bad-")}

    @property
    def unique_valid(self):
        return len({event["id"] for event in self.valid if event["type"] != "clock.tick"})


class DeadLetters:
    """The dead-letter topic compared with the stream's malformed messages,
    matched by source position (dw.partition, dw.offset): .records,
    .distinct, .duplicates; check() asserts."""

    def __init__(self, bootstrap, stream, timeout=60):
        self.expected = stream.malformed_positions()
        deadline = time.monotonic() + scaled(timeout)
        while True:
            records = lib.consume_all(bootstrap, DEAD_LETTER_TOPIC)
            seen = {(int(r.headers["dw.partition"]), int(r.headers["dw.offset"]))
                    for r in records}
            if seen >= set(self.expected) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.problems = []
        self.by_position = collections.Counter()
        for record in records:
            headers = record.headers
            position = (int(headers["dw.partition"]), int(headers["dw.offset"]))
            if headers["dw.topic"] != EVENT_TOPIC.encode() or position not in self.expected:
                self.problems.append(f"dead letter of {position}, which was not malformed")
            elif (record.value or b"") != self.expected[position]:
                self.problems.append(f"dead letter of {position} has other bytes")
            elif headers["dw.reason"].decode() != stream.reason_of[self.expected[position]]:
                self.problems.append(f"dead letter of {position}: reason "
                                     f"{headers['dw.reason']!r}")
            self.by_position[position] += 1
        self.records = len(records)
        self.distinct = len(self.by_position)
        self.duplicates = self.records - self.distinct

    def figures(self):
        """The figures a test prints: malformed messages (expected dead
        letters), dead-letter records found, records beyond one per message."""
        return {"dead_letters_expected": len(self.expected), "dead_lettered": self.records,
                "dead_letter_duplicates": self.duplicates}

    def check(self, allow_duplicates):
        assert not self.problems, self.problems[:5]
        missing = set(self.expected) - set(self.by_position)
        assert not missing, (f"{len(missing)} malformed messages not dead-lettered, "
                             f"e.g. {sorted(missing)[:3]}")
        if not allow_duplicates:
            assert self.duplicates == 0, (
                f"{self.duplicates} dead letters sent twice, e.g. "
                f"{[p for p, n in self.by_position.items() if n > 1][:5]}")


def applied_in_redis(client):
    """Events counted in Redis (ingest_checks.applied_events)."""
    return applied_events(client)


# --------------------------------------------------------------------------
# Clocks and alerts


def detention_starts(rng, count, ts, prefix="D", unit=UNIT):
    """detention.decided events: with rules/seconds.conf (quick_detention)
    orange is due at ts + 2 s and red at ts + 5 s, nothing after."""
    batch = uuid.uuid4().hex[:6]
    return [ev.valid_event(rng, "detention.decided", ts, unit, case=f"C{prefix}{batch}{n:04d}",
                           ref=f"{prefix}{batch}{n:04d}", subject=f"P{batch}{n:04d}", days=5)
            for n in range(count)]


def bail_starts(rng, count, ts, prefix="B", unit=UNIT):
    """measure.started kind=bail (a bail rule's clocks: the rebalance test's
    own rules fire yellow at ts + 8 s, orange at + 12 s, red at + 16 s)."""
    batch = uuid.uuid4().hex[:6]
    return [ev.valid_event(rng, "measure.started", ts, unit, case=f"C{prefix}{batch}{n:04d}",
                           ref=f"{prefix}{batch}{n:04d}", subject=f"P{batch}{n:04d}", kind="bail")
            for n in range(count)]


def read_alerts(bootstrap, count, timeout=60, settle=2.0):
    records = lib.consume_all(bootstrap, ALERT_TOPIC, count=count, timeout=scaled(timeout),
                              settle=settle)
    return [msgpack.unpackb(record.value) for record in records]


def check_alerts(alerts, expected):
    """expected: set of (ref, level) firing alerts.  Asserts each is there,
    nothing else is, and an alert_id always names the same alert.  Returns
    (distinct alert ids, duplicates)."""
    got = {(a["ref"], a["level"]) for a in alerts if a["state"] == "firing"}
    assert got == expected, (f"missing {sorted(expected - got)[:5]}, "
                             f"unexpected {sorted(got - expected)[:5]}")
    assert all(a["state"] == "firing" for a in alerts)
    by_id = collections.defaultdict(set)
    for alert in alerts:
        by_id[alert["alert_id"]].add((alert["ref"], alert["level"], alert["seq"], alert["due_at"],
                                      alert["deadline"]))
    unstable = {k: v for k, v in by_id.items() if len(v) > 1}
    assert not unstable, f"alert ids naming different alerts: {list(unstable.items())[:3]}"
    assert len(by_id) == len(expected), f"{len(by_id)} alert ids for {len(expected)} alerts"
    return len(by_id), len(alerts) - len(by_id)


def outbox_size(client):
    return sum(client.hlen(key) for key in client.scan_iter(match="dw:outbox:*"))


def active_views(client):
    return {key: client.get(key) for key in client.scan_iter(match="dw:active:*")}


# --------------------------------------------------------------------------
# The Kafka broker goes away


def broker_outage_begin(cluster):
    """The whole Kafka cluster goes away: the real broker stops (SIGTERM, a
    clean shutdown), or every mock broker goes down (connections closed and
    refused)."""
    if kafka_real.enabled():
        cluster.stop_broker()
    else:
        cluster.broker_down()


def broker_outage_end(cluster):
    if kafka_real.enabled():
        cluster.start_broker()
    else:
        cluster.broker_up()


@pytest.mark.parametrize("session_timeout_ms", [45000, 6000], ids=["session45s", "session6s"])
def test_broker_down_10s_mid_stream(daemon_factory, mock_cluster, redis_server, rng,
                                    session_timeout_ms):
    """The Kafka broker goes away (real: SIGTERM; mock: every broker down)
    for 10 s while the daemon consumes and while alerts fall due: afterwards
    every counter is exact, every malformed message dead-lettered, and the
    alerts due during the outage are all delivered after it, once each, every
    level.  With librdkafka's default session timeout (45 s) the daemon keeps
    its partitions through the outage; with the 6 s the other tests use, the
    outage revokes them (assignment lost), and the levels that fell due while
    no one owned the partitions are each still claimed on re-assignment (not
    collapsed to the latest)."""
    cluster = mock_cluster  # a kafka_real.RealKafka with DUEWATCH_KAFKA=real
    daemon = daemon_factory({"rules_file": RULES / "seconds.conf", "redis_reconnect_max_ms": 500,
                             "kafka.session.timeout.ms": session_timeout_ms}, wait_for=READY)
    client = redis_server.client()
    stream = Stream(rng, 20_000, exclude_types=CLOCK_STARTS)
    # Levels due 10 s and 13 s from now: the broker is down by then (and, with
    # a 6 s session, the partitions are revoked), and not up again yet.
    clock_ts = now_ms() + 8000
    clocks = detention_starts(rng, 40, clock_ts)
    lib.produce(cluster.bootstrap, EVENT_TOPIC, ev.to_messages(clocks))
    lib.wait_until(lambda: client.get(f"dw:active:quick_detention:{UNIT}") == "40", scaled(30),
                   message="40 clocks running")
    stream.send(cluster.bootstrap, 0, 2)
    down_at = now_ms()
    applied_at_stop = sum(redis_positions(client).values())
    broker_outage_begin(cluster)
    stopped_at = now_ms()
    # 10 s, and at least until both levels are due (the mock goes down at once).
    time.sleep(max(10.0, (clock_ts + 5000 + 1000 - now_ms()) / 1000))
    broker_outage_end(cluster)
    up_at = now_ms()
    stream.send(cluster.bootstrap, 1, 2)
    wait_applied(cluster.bootstrap, client, timeout=scaled(180))
    expected = {(c["ref"], level) for c in clocks for level in ("orange", "red")}
    try:
        alerts = read_alerts(cluster.bootstrap, len(expected), timeout=30)
    except lib.WaitTimeout:  # reported by check_alerts below, after the figures
        alerts = [msgpack.unpackb(r.value)
                  for r in lib.consume_all(cluster.bootstrap, ALERT_TOPIC)]
    distinct = len({a["alert_id"] for a in alerts})
    revoked = "partition(s) revoked" in daemon.log()
    dead = DeadLetters(cluster.bootstrap, stream)
    due = sorted(a["due_at"] for a in alerts) or [0]
    figures(f"broker_down_10s_session{session_timeout_ms // 1000}s",
            kafka="real" if kafka_real.enabled() else "mock",
            sent=len(stream) + len(clocks),
            applied=applied_in_redis(client), valid_unique=stream.unique_valid + len(clocks),
            **dead.figures(),
            alerts_expected=len(expected), delivered=len(alerts), distinct=distinct,
            duplicates=len(alerts) - distinct,
            buckets=len(ev.expected_counters(stream.valid + clocks)),
            levels_delivered=dict(collections.Counter(a["level"] for a in alerts)),
            revoked=revoked, positions_at_stop=applied_at_stop,
            broker_stop_ms=stopped_at - down_at, outage_ms=f"0..{up_at - down_at}",
            due_ms=f"{due[0] - down_at}..{due[-1] - down_at}")
    assert_counters_exact(client, stream.valid + clocks)
    # The scenario: only an outage longer than the session loses the partitions.
    assert revoked == (session_timeout_ms < up_at - down_at), daemon.log()[-3000:]
    # A lost assignment drops the consumed batches not yet applied (another
    # member may own the partitions already): their dead letters may be sent
    # again after the re-assignment (never lost).
    dead.check(allow_duplicates=revoked)
    check_alerts(alerts, expected)
    assert len(alerts) == len(expected), "an alert was delivered twice"
    # They fell due while the broker was away, and were delivered after.
    assert stopped_at < due[0] and due[-1] < up_at
    lib.wait_until(lambda: outbox_size(client) == 0, scaled(30), message="outbox emptied")
    assert client.get(f"dw:active:quick_detention:{UNIT}") == "40"
    assert client.zcard(f"dw:overdue:quick_detention:{UNIT}") == 40
    assert daemon.running


# --------------------------------------------------------------------------
# Redis crashes


def test_redis_sigkill_mid_stream(daemon_factory, mock_cluster, redis_factory, rng):
    """redis-server (appendonly, fsync always) is SIGKILLed while batches are
    applied and restarted 3 s later: counters exact, dw:active exact (known
    clocks of our own unit, and every dw:active key equal to a fault-free
    reference run over the same topic)."""
    redis = redis_factory(appendonly=True, extra_args=["--appendfsync", "always"])
    daemon = daemon_factory({"redis_reconnect_max_ms": 500, "batch_max_events": 500},
                            redis=redis, wait_for=READY)
    stream = Stream(rng, 30_000)
    # Clocks of a unit of our own: 60 bail started (20 ended later), 30
    # detentions decided (10 executed later); their stops come after their
    # starts on the same partition (same key).
    ts = ev.suite_now_ms() - 3 * ev.DAY_MS
    bails = [ev.valid_event(rng, "measure.started", ts, UNIT,
                            case=f"CK{n:04d}{rng.randrange(10**6)}",
                            ref=f"RK{n:04d}{rng.randrange(10**6)}", subject=f"PK{n:04d}",
                            kind="bail") for n in range(60)]
    detentions = [ev.valid_event(rng, "detention.decided", ts, UNIT,
                                 case=f"CD{n:04d}{rng.randrange(10**6)}",
                                 ref=f"RD{n:04d}{rng.randrange(10**6)}", subject=f"PD{n:04d}",
                                 days=5) for n in range(30)]
    stops = [ev.valid_event(rng, "measure.ended", ts + ev.HOUR_MS, UNIT, case=b["case"],
                            ref=b["ref"]) for b in bails[:20]]
    stops += [ev.valid_event(rng, "detention.executed", ts + ev.HOUR_MS, UNIT, case=d["case"],
                             ref=d["ref"]) for d in detentions[:10]]
    half = len(stream.messages) // 2
    for event in bails + detentions:
        stream.messages.insert(rng.randrange(0, half), ev.to_messages([event])[0])
    for event in stops:
        stream.messages.insert(rng.randrange(half + 90, len(stream.messages)),
                               ev.to_messages([event])[0])
    stream.positions = [None] * len(stream.messages)
    own = bails + detentions + stops
    client = redis.client()
    stream.send(mock_cluster.bootstrap, 0, 4)
    stream.send(mock_cluster.bootstrap, 1, 4)
    lib.wait_until(lambda: sum(redis_positions(client).values()) > len(stream) // 8, scaled(60),
                   interval=0.01, message="part of the stream applied")
    at_kill = sum(redis_positions(client).values())
    redis.kill()
    outage = threading.Thread(target=lambda: (time.sleep(3), redis.start()), daemon=True)
    outage.start()
    stream.send(mock_cluster.bootstrap, 2, 4)
    outage.join(60)
    stream.send(mock_cluster.bootstrap, 3, 4)
    client = redis.client()
    wait_applied(mock_cluster.bootstrap, client, timeout=scaled(180))
    dead = DeadLetters(mock_cluster.bootstrap, stream)
    # Reference: a second daemon (own group, own Redis) over the same topic.
    reference_redis = redis_factory()
    daemon_factory({"batch_max_events": 500}, redis=reference_redis,
                   bootstrap=mock_cluster.bootstrap, wait_for=READY)
    wait_applied(mock_cluster.bootstrap, reference_redis.client(), timeout=scaled(180))
    expected_active = active_views(reference_redis.client())
    actual_active = active_views(client)
    figures("redis_sigkill", sent=len(stream), applied=applied_in_redis(client),
            valid_unique=stream.unique_valid + len(own),
            duplicate_events_sent=len(stream.valid) + len(own) - stream.unique_valid - len(own),
            **dead.figures(),
            positions_at_kill=at_kill, buckets=len(ev.expected_counters(stream.valid + own)),
            own_active=f"{client.get(f'dw:active:bail_expiry:{UNIT}')}/"
                       f"{client.get(f'dw:active:detention_unexecuted:{UNIT}')}",
            active_keys=len(actual_active),
            active_equal_reference=actual_active == expected_active,
            active_clocks_all=sum(int(v) for k, v in actual_active.items() if k.endswith(":_all")))
    assert_counters_exact(client, stream.valid + own)
    assert client.get(f"dw:active:bail_expiry:{UNIT}") == "40"
    assert client.get(f"dw:active:detention_unexecuted:{UNIT}") == "20"
    assert actual_active == expected_active
    dead.check(allow_duplicates=False)
    log = daemon.log()
    assert "redis: connection lost" in log
    assert "pausing consumption: Redis is unavailable" in log and "resuming consumption" in log


# --------------------------------------------------------------------------
# Redis hangs


def test_slow_redis_pauses_and_memory_stays_bounded(daemon_factory, mock_cluster_factory,
                                                     redis_factory, rng):
    """Redis stops answering (SIGSTOP for 6 s, then DEBUG SLEEP 2 three
    times) while a ~35 MB stream arrives: consumption pauses at
    max_inflight_events, the daemon's RSS stays below a bound derived from
    the limits (and below what holding the stream would take), and
    everything is applied exactly once afterwards."""
    # 12 partitions: librdkafka's mock cluster keeps at most ~5 MB per
    # partition and drops older messages (the consumer then jumps ahead with
    # "Offset out of range"), so the stream is spread thin.
    partitions = 12
    cluster = mock_cluster_factory(topics={EVENT_TOPIC: partitions, DEAD_LETTER_TOPIC: 1,
                                           ALERT_TOPIC: 4})
    redis = redis_factory(extra_args=["--enable-debug-command", "local"])
    max_inflight, batch_max, max_bytes, pad_to = 1000, 250, 2048, 1800
    queued_kbytes, partition_fetch, fetch_max = 1024, 262144, 1048576
    port = lib.free_port()
    daemon = daemon_factory({
        "batch_max_events": batch_max, "max_inflight_events": max_inflight,
        "max_message_bytes": max_bytes, "http_listen": f"127.0.0.1:{port}",
        "kafka.consumer.queued.max.messages.kbytes": queued_kbytes,
        "kafka.consumer.max.partition.fetch.bytes": partition_fetch,
        "kafka.consumer.fetch.max.bytes": fetch_max,
    }, cluster=cluster, redis=redis, wait_for=READY)
    stream = Stream(rng, 20_000, pad_to=pad_to, max_message_bytes=max_bytes)
    client = redis.client()
    stream.send(cluster.bootstrap, 0, 6)
    wait_applied(cluster.bootstrap, client, timeout=scaled(60))
    baseline = lib.process_rss_bytes(daemon.pid)
    # The bound: what the daemon may hold (max_inflight_events messages of at
    # most max_message_bytes, counted twice: the message and its copy in the
    # batch being sent), what librdkafka may prefetch (queued.max.messages
    # .kbytes, plus a fetch response per partition and one whole fetch), and
    # 16 MiB for allocator slack and hiredis/Lua buffers.
    held = max_inflight * max_bytes
    prefetch = queued_kbytes * 1024 + partitions * partition_fetch + fetch_max
    slack = 16 << 20
    sanitized = "address" in os.environ.get("DUEWATCH_BUILD", "") or \
        bool(os.environ.get("DUEWATCH_WRAPPER"))
    if sanitized:
        slack += 512 << 20  # ASan's quarantine and shadow memory
    bound = baseline + 2 * held + prefetch + slack
    inflight_seen = [0]
    sleep_errors = []
    with lib.RssSampler(daemon.pid) as rss:
        redis.freeze()
        try:
            frozen_at = time.monotonic()
            for part in range(1, 5):
                stream.send(cluster.bootstrap, part, 6)
            daemon.wait_for_log(r"pausing consumption: in-flight limit reached", timeout=30)
            for _ in range(20):
                inflight_seen.append(lib.scrape_metrics(port).get("duewatch_inflight_messages", 0))
                time.sleep(0.1)
            time.sleep(max(0.0, 6 - (time.monotonic() - frozen_at)))
        finally:
            redis.thaw()
        sleeper = redis.client(timeout=30)

        def sleeps():
            try:
                for _ in range(3):
                    sleeper.execute_command("DEBUG", "SLEEP", "2")
                    time.sleep(0.5)
            except Exception as error:  # reported below
                sleep_errors.append(error)
        slow = threading.Thread(target=sleeps, daemon=True)
        slow.start()
        stream.send(cluster.bootstrap, 5, 6)
        slow.join(60)
        wait_applied(cluster.bootstrap, client, timeout=scaled(180))
    log = daemon.log()
    dead = DeadLetters(cluster.bootstrap, stream)
    figures("slow_redis", sent=len(stream), applied=applied_in_redis(client),
            valid_unique=stream.unique_valid, **dead.figures(),
            buckets=len(ev.expected_counters(stream.valid)),
            stream_mb=f"{stream.bytes / 2**20:.1f}", max_inflight_events=max_inflight,
            inflight_max_seen=int(max(inflight_seen)),
            pauses=log.count("pausing consumption"),
            slow_batches_logged=log.count("redis: a batch of"),
            rss_baseline_mb=f"{baseline / 2**20:.1f}", rss_peak_mb=f"{rss.peak / 2**20:.1f}",
            rss_bound_mb=f"{bound / 2**20:.1f}",
            growth_allowed_mb=f"{(bound - baseline) / 2**20:.1f}", rss_samples=rss.samples)
    assert not sleep_errors
    assert "Offset out of range" not in log, "the mock cluster dropped messages: stream too big"
    assert_counters_exact(client, stream.valid)
    dead.check(allow_duplicates=False)
    assert "resuming consumption" in log
    assert 0 < max(inflight_seen) <= max_inflight
    assert rss.peak < bound, f"RSS {rss.peak} >= bound {bound}"
    if not sanitized:
        # The bound means something: holding the whole stream would pass it.
        assert bound - baseline < stream.bytes


def error_replies(client, code):
    """How many error replies starting with `code` Redis has sent (INFO
    errorstats; redis-py leaves the line's value as "count=N")."""
    value = client.info("errorstats").get(f"errorstat_{code}", {})
    if isinstance(value, dict):
        return int(value.get("count", 0))
    return int(dict(item.split("=") for item in value.split(","))["count"])


# How a test makes Redis refuse, and the error code its replies carry.
def earliest_due_ms(client, prefix="dw:"):
    """The earliest due level in the due index (epoch ms), or None."""
    earliest = None
    for key in client.scan_iter(match=f"{prefix}due:*", count=1000):
        if key.count(":") < 4:  # <prefix>due:<topic>:<partition>, the bucket list
            continue
        head = client.zrange(key, 0, 0, withscores=True)
        if head and (earliest is None or head[0][1] < earliest):
            earliest = head[0][1]
    return earliest


def wait_for_quiet_clocks(client, seconds):
    """Waits until the daemon has no write of its own coming in the next
    `seconds` of wall time: no clock level falls due (hour rules' levels
    fall due at whole hours, so a stream dated now has some within minutes)
    and no local midnight passes (a day's end is claimed for the snapshots),
    and the outbox is empty.  A fault test that refuses writes for a while
    then sees only the refusals of the writes it means to test."""
    zone = ZoneInfo(ev.TIME_ZONE)

    def quiet():
        now = time.time()
        local = datetime.datetime.fromtimestamp(now, zone)
        midnight = (local + datetime.timedelta(days=1)).replace(hour=0, minute=0, second=0,
                                                                microsecond=0)
        due = earliest_due_ms(client)
        return (sum(client.hlen(key) for key in client.scan_iter(match="dw:outbox:*")) == 0
                and (due is None or due / 1000 > now + seconds)
                and midnight.timestamp() > now + seconds)

    lib.wait_until(quiet, timeout=seconds + scaled(60), interval=0.5,
                   message=f"no level due and no day's end in the next {seconds}s, the outbox "
                           "empty")


REFUSALS = {
    # no replica to write to: writes are refused, reads are served
    "writes": ({"min-replicas-to-write": "1"}, {"min-replicas-to-write": "0"}, "NOREPLICAS"),
    # over maxmemory: writes are refused, and so is every command queued in a
    # transaction (a batch's read), to bound what queuing holds
    "memory": ({"maxmemory": "1", "maxmemory-policy": "noeviction"}, {"maxmemory": "0"}, "OOM"),
}


@pytest.mark.parametrize("refusal", sorted(REFUSALS))
def test_redis_refusing_with_two_batches_in_flight(daemon_factory, mock_cluster, redis_server,
                                                   rng, refusal):
    """Redis refuses while a backlog is applied in small batches, two in
    flight.  Refusing writes (no replica): the batch ahead fails at its first
    write, before writing anything, and the one behind it fails STALE on its
    fence and changes nothing.  Over maxmemory: every batch's read is refused
    (Redis refuses whatever a transaction queues then).  Either way the
    batches go again, in order, until Redis accepts them, the log names the
    refusal (not EXECABORT), and the counters come out exact with no dead
    letter twice."""
    refuse, accept, code = REFUSALS[refusal]
    daemon = daemon_factory({"batch_max_events": 100, "redis_reconnect_min_ms": 50,
                             "redis_reconnect_max_ms": 400}, wait_for=READY)
    client = redis_server.client()
    stream = Stream(rng, 12_000)
    stream.send(mock_cluster.bootstrap, 0, 4)
    wait_applied(mock_cluster.bootstrap, client, timeout=scaled(60))
    # a claim or an outbox deletion refused first would leave no batch to
    # refuse: the daemon reconnects to verify, and Redis refuses the scripts'
    # loading until it accepts writes again (seen at a whole hour, 2026-12-05)
    wait_for_quiet_clocks(client, scaled(30))
    for key, value in refuse.items():
        client.config_set(key, value)
    try:
        for part in range(1, 4):
            stream.send(mock_cluster.bootstrap, part, 4)

        # Redis refuses until a batch has failed on it (claims and outbox
        # deletions are refused too, and may come first), and, refusing
        # writes, one behind it has failed STALE on its fence.
        daemon.wait_for_log(rf"redis: batch of \d+ events failed: {code}", timeout=60)
        lib.wait_until(lambda: refusal != "writes" or error_replies(client, "STALE") >= 1,
                       scaled(60), message="STALE replies")
    finally:
        for key, value in accept.items():
            client.config_set(key, value)
    wait_applied(mock_cluster.bootstrap, client, timeout=scaled(120))
    dead = DeadLetters(mock_cluster.bootstrap, stream)
    figures(f"redis_refusing_{refusal}", sent=len(stream), applied=applied_in_redis(client),
            valid_unique=stream.unique_valid, **dead.figures(),
            buckets=len(ev.expected_counters(stream.valid)),
            refused_replies=error_replies(client, code),
            stale_replies=error_replies(client, "STALE"))
    assert_counters_exact(client, stream.valid)
    dead.check(allow_duplicates=False)
    assert error_replies(client, code) >= 1
    assert "EXECABORT" not in daemon.log()
    assert daemon.stop() == 0


# --------------------------------------------------------------------------
# duewatchd crashes


def test_daemon_sigkill_between_apply_and_commit(daemon_factory, mock_cluster, redis_server, rng):
    """duewatchd is SIGKILLed three times, each right after Redis recorded a
    batch's positions and before Kafka has the offsets committed (auto-commit
    every 60 s here): each restart resumes from the positions in Redis, and
    the counters come out exact."""
    daemon = daemon_factory({"batch_max_events": 200, "kafka.session.timeout.ms": 3000,
                             "kafka.consumer.auto.commit.interval.ms": 60000}, wait_for=READY)
    group = daemon.config["kafka.group.id"]
    client = redis_server.client()
    stream = Stream(rng, 30_000)
    stream.send_all(mock_cluster.bootstrap)
    kills = []
    for number in range(3):
        target = len(stream) * (number + 1) // 4
        before = sum(redis_positions(client).values())
        lib.wait_until(lambda: sum(redis_positions(client).values()) >= target
                       and sum(redis_positions(client).values()) > before,
                       scaled(120), interval=0.002, message=f"positions pass {target}")
        daemon.kill()
        in_redis = redis_positions(client)
        committed = lib.committed_offsets(mock_cluster.bootstrap, group, EVENT_TOPIC)
        behind = sum(max(0, position - (committed.get(p) or 0))
                     for p, position in in_redis.items())
        kills.append((sum(in_redis.values()), sum(v or 0 for v in committed.values()), behind))
        # The window the test is about: Redis is ahead of Kafka's commits.
        assert behind > 0, (f"kill #{number + 1}: committed offsets {committed} "
                            f"not behind {in_redis}")
        daemon.start(wait_for=READY, timeout=60)
        run_log = daemon.log()
        for partition, position in in_redis.items():
            assert re.search(rf"consuming duewatch\.events\[{partition}\] from its position in "
                             rf"Redis", run_log) or position == 0, run_log[-2000:]
    wait_applied(mock_cluster.bootstrap, client, timeout=scaled(180))
    dead = DeadLetters(mock_cluster.bootstrap, stream)
    figures("kill_between_apply_and_commit", sent=len(stream), applied=applied_in_redis(client),
            valid_unique=stream.unique_valid,
            duplicate_events_sent=len(stream.valid) - stream.unique_valid,
            **dead.figures(),
            buckets=len(ev.expected_counters(stream.valid)), kills=len(kills),
            redis_committed_behind=";".join(f"{a}/{b}/{c}" for a, b, c in kills))
    assert_counters_exact(client, stream.valid)
    # A crash may send a dead letter again (at least once), never lose one.
    dead.check(allow_duplicates=True)
    assert daemon.stop() == 0


@needs_mock_cluster
def test_daemon_sigkill_repeatedly_with_alerts_in_outbox(daemon_factory, mock_cluster,
                                                         redis_factory, rng):
    """Alerts are claimed into the outbox but the broker refuses every
    Produce; duewatchd is SIGKILLed three times in a row (orange claimed,
    red claimed, right after a restart).  Once Produce works, every due alert
    is delivered at least once, always with the same alert_id, and the
    outbox empties."""
    redis = redis_factory(appendonly=True)
    daemon = daemon_factory({"rules_file": RULES / "seconds.conf",
                             "kafka.session.timeout.ms": 3000}, redis=redis, wait_for=READY)
    client = redis.client()
    clocks = detention_starts(rng, 30, now_ms())
    lib.produce(mock_cluster.bootstrap, EVENT_TOPIC, ev.to_messages(clocks))
    wait_applied(mock_cluster.bootstrap, client)
    mock_cluster.command("errors 0 1000 NOT_ENOUGH_REPLICAS")
    outbox_at_kill = []
    lib.wait_until(lambda: outbox_size(client) >= 30, scaled(30), interval=0.05,
                   message="30 orange alerts claimed")
    outbox_at_kill.append(outbox_size(client))
    daemon.kill()
    daemon.start(wait_for=READY, timeout=60)
    lib.wait_until(lambda: outbox_size(client) == 60, scaled(30), interval=0.05,
                   message="orange and red of 30 clocks claimed")
    outbox_at_kill.append(outbox_size(client))
    daemon.kill()
    daemon.start(wait_for=READY, timeout=60)
    outbox_at_kill.append(outbox_size(client))
    daemon.kill()
    mock_cluster.clear_errors(0)
    daemon.start(wait_for=READY, timeout=60)
    expected = {(c["ref"], level) for c in clocks for level in ("orange", "red")}
    alerts = read_alerts(mock_cluster.bootstrap, len(expected), timeout=60, settle=3.0)
    lib.wait_until(lambda: outbox_size(client) == 0, scaled(30), message="outbox emptied")
    figures("kill_with_outbox", sent=len(clocks), applied=applied_in_redis(client),
            alerts_expected=len(expected), delivered=len(alerts),
            distinct=len({a["alert_id"] for a in alerts}),
            duplicates=len(alerts) - len({a["alert_id"] for a in alerts}), kills=3,
            outbox_at_kills="/".join(map(str, outbox_at_kill)))
    check_alerts(alerts, expected)
    assert outbox_at_kill[:2] == [30, 60] and outbox_at_kill[2] == 60
    assert client.get(f"dw:active:quick_detention:{UNIT}") == "30"
    assert client.zcard(f"dw:overdue:quick_detention:{UNIT}") == 30


# --------------------------------------------------------------------------
# The consumer group changes


def test_rebalance_second_joins_then_first_leaves(daemon_factory, mock_cluster_factory,
                                                  redis_server, rng, tmp_path):
    """A second instance joins the group mid-stream, then the first leaves
    with SIGTERM: no event lost or counted twice, every malformed message
    dead-lettered exactly once, every alert emitted exactly once (no crash:
    the normal path), including alerts of clocks whose partition changed
    owner before they fell due."""
    cluster = mock_cluster_factory(topics={EVENT_TOPIC: 4, DEAD_LETTER_TOPIC: 1, ALERT_TOPIC: 4})
    # Levels 8, 12 and 16 s after the start, 4 s apart; a level falling due
    # while its partition changes owner is claimed by the next owner (two in
    # one ownership gap would both be: test_broker_down_10s_mid_stream).
    rules = tmp_path / "rebalance_rules.conf"
    rules.write_text("[rebalance_bail]\nlabel = 取保候审\n"
                     "action = 请及时解除或变更强制措施\nbasis = 测试规则，无法律依据\n"
                     "start = measure.started kind=bail\nstop = measure.ended\nkey = ref\n"
                     "length = 16 seconds\nyellow = 8 seconds\norange = 4 seconds\n"
                     "red_repeat = none\n", encoding="utf-8")
    group = f"duewatch-rebalance-{uuid.uuid4().hex[:8]}"
    settings = {"rules_file": rules, "kafka.group.id": group, "kafka.session.timeout.ms": 3000}
    client = redis_server.client()
    stream = Stream(rng, 30_000, exclude_types=CLOCK_STARTS)
    first = daemon_factory(settings, cluster=cluster, wait_for=READY)
    t0 = now_ms()
    early = bail_starts(rng, 20, t0, prefix="E")
    lib.produce(cluster.bootstrap, EVENT_TOPIC, ev.to_messages(early))
    stream.send(cluster.bootstrap, 0, 3)
    second = daemon_factory(settings, cluster=cluster, wait_for=READY, timeout=60)
    lib.wait_until(lambda: "revoked" in first.log(), scaled(30), message="first rebalanced")
    joined_ms = now_ms() - t0
    stream.send(cluster.bootstrap, 1, 3)
    # Started 12 s after t0: due 20..28 s, while and after the first leaves.
    time.sleep(max(0.0, (t0 + 12_000 - now_ms()) / 1000))
    late = bail_starts(rng, 20, t0 + 12_000, prefix="L")
    lib.produce(cluster.bootstrap, EVENT_TOPIC, ev.to_messages(late))
    early_expected = {(c["ref"], level) for c in early for level in ("yellow", "orange", "red")}
    read_alerts(cluster.bootstrap, len(early_expected), timeout=60, settle=0)
    # Every early alert is out (emitted while both ran); the first leaves.
    left_at = now_ms() - t0
    assert first.stop() == 0
    stream.send(cluster.bootstrap, 2, 3)
    expected = early_expected | {(c["ref"], level) for c in late
                                 for level in ("yellow", "orange", "red")}
    alerts = read_alerts(cluster.bootstrap, len(expected), timeout=90, settle=3.0)
    wait_applied(cluster.bootstrap, client, timeout=scaled(180))
    distinct = len({a["alert_id"] for a in alerts})
    dead = DeadLetters(cluster.bootstrap, stream)
    figures("rebalance", sent=len(stream) + len(early) + len(late),
            applied=applied_in_redis(client),
            valid_unique=stream.unique_valid + len(early) + len(late),
            buckets=len(ev.expected_counters(stream.valid + early + late)),
            **dead.figures(),
            alerts_expected=len(expected),
            delivered=len(alerts), distinct=distinct, duplicates=len(alerts) - distinct,
            joined_ms=joined_ms, left_ms=left_at,
            late_due_ms=f"{min(a['due_at'] for a in alerts if a['ref'].startswith('L')) - t0}")
    assert_counters_exact(client, stream.valid + early + late)
    check_alerts(alerts, expected)
    assert len(alerts) == len(expected), "an alert was emitted twice"
    # Dead letters: each exactly once (a revoke and a stop finish the
    # consumed batches before the partitions change hands).
    dead.check(allow_duplicates=False)
    assert "revoked" in second.log()


def test_dead_letters_once_across_join_and_leave(daemon_factory, mock_cluster_factory,
                                                 redis_factory, rng):
    """A second instance joins the group, and later leaves with SIGTERM, each
    time while the instances hold consumed batches whose dead letters are
    delivered already but which Redis has not applied yet (Redis is frozen
    with SIGSTOP around the rebalance and the stop).  The revoke, and the
    stop, finish those batches before the partitions change hands, so no
    owner consumes them again: every malformed message is dead-lettered
    exactly once (the dead-letter topic is counted after the join and at the
    end), and every counter is exact."""
    cluster = mock_cluster_factory(topics={EVENT_TOPIC: 4, DEAD_LETTER_TOPIC: 1, ALERT_TOPIC: 4})
    redis = redis_factory()
    client = redis.client()
    group = f"duewatch-deadletters-{uuid.uuid4().hex[:8]}"
    # Small batches, 5% malformed: many batches, nearly each with dead letters,
    # wait behind the frozen Redis.  The stop and the revoke may wait longer
    # than the freeze for them.
    settings = {"kafka.group.id": group, "kafka.session.timeout.ms": 3000,
                "batch_max_events": 100, "shutdown_timeout_ms": 30000}
    stream = Stream(rng, 12_000, malformed_fraction=0.05)

    def dead_letter_records():
        return len(lib.consume_all(cluster.bootstrap, DEAD_LETTER_TOPIC))

    def hold_batches(part):
        """Freezes Redis, sends part `part` of 4 and waits until every dead
        letter of the parts sent is in the topic: the batches behind them are
        consumed, and not applied."""
        redis.freeze()
        stream.send(cluster.bootstrap, part, 4)
        lib.wait_until(lambda: dead_letter_records() >= stream.malformed_sent(), scaled(30),
                       interval=0.2, message=f"dead letters of parts 0..{part} delivered")

    first = daemon_factory(settings, cluster=cluster, redis=redis, wait_for=READY)
    stream.send(cluster.bootstrap, 0, 4)
    wait_applied(cluster.bootstrap, client, timeout=scaled(120))
    # The join: the first instance's partitions are revoked while it holds
    # the batches of part 1.
    first_log = first.log_offset()
    try:
        hold_batches(1)
        second = daemon_factory(settings, cluster=cluster, redis=redis, start=False)
        second.start()  # not ready before Redis answers
        first.wait_for_log(r"partition\(s\) revoked", timeout=30, since=first_log)
        time.sleep(1.0)
    finally:
        redis.thaw()
    second.wait_for_log(READY, timeout=60)
    wait_applied(cluster.bootstrap, client, timeout=scaled(120))
    after_join = dead_letter_records()
    expected_after_join = stream.malformed_sent()
    stream.send(cluster.bootstrap, 2, 4)
    wait_applied(cluster.bootstrap, client, timeout=scaled(120))
    # The leave: SIGTERM while both hold the batches of part 3.
    first_log = first.log_offset()
    try:
        hold_batches(3)
        second.signal(signal.SIGTERM)
        second.wait_for_log(r"stopping", timeout=10)
        time.sleep(1.0)
    finally:
        redis.thaw()
    stop_code = second.wait_exit(timeout=60)
    first.wait_for_log(r"partition\(s\) revoked", timeout=30, since=first_log)
    wait_applied(cluster.bootstrap, client, timeout=scaled(120))
    dead = DeadLetters(cluster.bootstrap, stream)
    figures("dead_letters_join_leave", sent=len(stream), applied=applied_in_redis(client),
            valid_unique=stream.unique_valid, buckets=len(ev.expected_counters(stream.valid)),
            **dead.figures(), dead_lettered_after_join=after_join,
            dead_letters_expected_after_join=expected_after_join,
            first_revokes=first.log().count("partition(s) revoked"),
            second_revokes=second.log().count("partition(s) revoked"),
            second_exit=stop_code)
    assert_counters_exact(client, stream.valid)
    dead.check(allow_duplicates=False)
    assert after_join == expected_after_join, "dead letters sent twice across the join"
    assert stop_code == 0
    assert "dropping them" not in first.log("all") + second.log("all")


# --------------------------------------------------------------------------
# Single Kafka requests fail (librdkafka's mock cluster)


@needs_mock_cluster
def test_find_coordinator_not_available(daemon_factory, mock_cluster, redis_server, rng):
    """FindCoordinator answers COORDINATOR_NOT_AVAILABLE 10 times at
    start-up, and 10 times more mid-stream after the coordinator moved
    (NOT_COORDINATOR on a heartbeat): counters, dead letters and committed
    offsets come out exact."""
    mock_cluster.push_errors(mock_cluster.FIND_COORDINATOR, ["COORDINATOR_NOT_AVAILABLE"] * 10)
    daemon = daemon_factory({"kafka.consumer.auto.commit.interval.ms": 500}, wait_for=READY,
                            timeout=60)
    client = redis_server.client()
    stream = Stream(rng, 20_000)
    stream.send(mock_cluster.bootstrap, 0, 2)
    mock_cluster.push_errors(mock_cluster.FIND_COORDINATOR, ["COORDINATOR_NOT_AVAILABLE"] * 10)
    mock_cluster.push_errors(mock_cluster.HEARTBEAT, ["NOT_COORDINATOR"])
    stream.send(mock_cluster.bootstrap, 1, 2)
    highs = wait_applied(mock_cluster.bootstrap, client, timeout=scaled(180))
    wait_committed(mock_cluster.bootstrap, daemon.config["kafka.group.id"], highs)
    dead = DeadLetters(mock_cluster.bootstrap, stream)
    figures("find_coordinator", sent=len(stream), applied=applied_in_redis(client),
            valid_unique=stream.unique_valid, buckets=len(ev.expected_counters(stream.valid)),
            **dead.figures(),
            errors_injected=20)
    assert_counters_exact(client, stream.valid)
    dead.check(allow_duplicates=False)
    assert daemon.stop() == 0


@needs_mock_cluster
def test_offset_commit_request_timed_out(daemon_factory, mock_cluster, redis_server, rng):
    """OffsetCommit answers REQUEST_TIMED_OUT 30 times mid-stream: the
    positions in Redis carry on, counters are exact, and the committed
    offsets still reach the end (auto-commit retries; shutdown commits)."""
    daemon = daemon_factory({"kafka.consumer.auto.commit.interval.ms": 500}, wait_for=READY)
    client = redis_server.client()
    group = daemon.config["kafka.group.id"]
    stream = Stream(rng, 20_000)
    stream.send(mock_cluster.bootstrap, 0, 2)
    mock_cluster.push_errors(mock_cluster.OFFSET_COMMIT, ["REQUEST_TIMED_OUT"] * 30)
    stream.send(mock_cluster.bootstrap, 1, 2)
    highs = wait_applied(mock_cluster.bootstrap, client, timeout=scaled(180))
    wait_committed(mock_cluster.bootstrap, group, highs, timeout=60)
    assert daemon.stop() == 0
    committed = lib.committed_offsets(mock_cluster.bootstrap, group, EVENT_TOPIC)
    dead = DeadLetters(mock_cluster.bootstrap, stream)
    figures("offset_commit_timeout", sent=len(stream), applied=applied_in_redis(client),
            valid_unique=stream.unique_valid, buckets=len(ev.expected_counters(stream.valid)),
            **dead.figures(),
            errors_injected=30, committed=sum(v or 0 for v in committed.values()),
            end=sum(highs.values()))
    assert_counters_exact(client, stream.valid)
    dead.check(allow_duplicates=False)
    assert committed == {p: high for p, high in highs.items()}


@needs_mock_cluster
def test_produce_request_timed_out(daemon_factory, mock_cluster, redis_server, rng):
    """Produce answers REQUEST_TIMED_OUT 40 times while the daemon sends dead
    letters, and 20 times more while it sends alerts (nobody else produces
    meanwhile): every dead letter and every alert arrives exactly once,
    counters are exact."""
    daemon = daemon_factory({"rules_file": RULES / "seconds.conf"}, start=False)
    client = redis_server.client()
    stream = Stream(rng, 10_000, exclude_types=CLOCK_STARTS)
    stream.send_all(mock_cluster.bootstrap)
    mock_cluster.create_topic("duewatch.probe", 1)
    # Dead letters: the daemon is the only producer from here on.
    mock_cluster.push_errors(mock_cluster.PRODUCE, ["REQUEST_TIMED_OUT"] * 40)
    daemon.start(wait_for=READY, timeout=30)
    wait_applied(mock_cluster.bootstrap, client, timeout=scaled(180))
    left_after_dead_letters = produce_errors_left(mock_cluster)
    # Alerts: orange 2 s and red 5 s after the clocks start.
    clocks = detention_starts(rng, 20, now_ms())
    lib.produce(mock_cluster.bootstrap, EVENT_TOPIC, ev.to_messages(clocks))
    lib.wait_until(lambda: client.get(f"dw:active:quick_detention:{UNIT}") == "20", scaled(10),
                   interval=0.02, message="20 clocks running")
    mock_cluster.push_errors(mock_cluster.PRODUCE, ["REQUEST_TIMED_OUT"] * 20)
    expected = {(c["ref"], level) for c in clocks for level in ("orange", "red")}
    alerts = read_alerts(mock_cluster.bootstrap, len(expected), timeout=60, settle=2.0)
    left_after_alerts = produce_errors_left(mock_cluster)
    dead = DeadLetters(mock_cluster.bootstrap, stream)
    distinct = len({a["alert_id"] for a in alerts})
    figures("produce_timeout", sent=len(stream) + len(clocks), applied=applied_in_redis(client),
            valid_unique=stream.unique_valid + len(clocks),
            buckets=len(ev.expected_counters(stream.valid + clocks)),
            **dead.figures(), alerts_expected=len(expected),
            delivered=len(alerts), distinct=distinct, duplicates=len(alerts) - distinct,
            errors_injected="40+20",
            errors_left_unused=f"{left_after_dead_letters}+{left_after_alerts}")
    assert_counters_exact(client, stream.valid + clocks)
    dead.check(allow_duplicates=False)
    check_alerts(alerts, expected)
    assert len(alerts) == len(expected)
    # The daemon did meet the injected errors (else the probe would have).
    assert left_after_dead_letters < 40 and left_after_alerts < 20


def produce_errors_left(cluster, limit=1000):
    """How many injected Produce errors were still queued: produces probe
    messages without retries until one gets through."""
    from confluent_kafka import Producer
    failures = 0
    while failures < limit:
        producer = Producer({"bootstrap.servers": cluster.bootstrap, "retries": 0,
                             "enable.idempotence": False, "acks": 1, "linger.ms": 0})
        outcome = []
        producer.produce("duewatch.probe", b"probe", on_delivery=lambda e, m: outcome.append(e))
        producer.flush(10)
        if outcome and outcome[0] is None:
            return failures
        failures += 1
    return failures


def wait_committed(bootstrap, group_id, highs, timeout=30):
    def done():
        committed = lib.committed_offsets(bootstrap, group_id, EVENT_TOPIC)
        return all((committed.get(p) or 0) >= high for p, high in highs.items())
    lib.wait_until(done, scaled(timeout), interval=0.5, message="committed offsets reach the end")
