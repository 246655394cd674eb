"""End-to-end tests of the ingest pipeline (issue: events from Kafka into
Redis counters, exactly-once effects): the real duewatchd against a real
redis-server and librdkafka's mock cluster in its own process."""

import collections
import datetime
import shutil
import time
from zoneinfo import ZoneInfo

import duewatch_testlib as lib
import events as ev
from ingest_checks import (DEAD_LETTER_TOPIC, EVENT_TOPIC, applied_events, assert_counters_exact,
                           build_stream, produce_in_chunks, redis_positions, unique_valid_count,
                           wait_applied)

READY = r"kafka: consuming duewatch\.events"


def check_dead_letters(bootstrap, malformed, timeout=60):
    """The dead-letter topic holds exactly the malformed values, each once,
    each with its expected reason and its source position in headers."""
    records = lib.consume_all(bootstrap, DEAD_LETTER_TOPIC, count=len(malformed), timeout=timeout,
                              settle=1.0)
    got = sorted((record.value or b"", dict(record.headers)["dw.reason"].decode())
                 for record in records)
    want = sorted((value or b"", reason) for value, reason in malformed)
    assert len(got) == len(want), f"{len(got)} dead letters, {len(want)} malformed sent"
    assert got == want
    for record in records:
        headers = dict(record.headers)
        assert headers["dw.topic"] == EVENT_TOPIC.encode()
        assert int(headers["dw.offset"]) >= 0 and int(headers["dw.partition"]) >= 0
        assert headers["dw.detail"]
    return records


def wait_committed(bootstrap, group_id, highs, timeout=30):
    def done():
        committed = lib.committed_offsets(bootstrap, group_id, EVENT_TOPIC)
        return all((committed.get(p) or 0) >= high for p, high in highs.items())
    lib.wait_until(done, timeout, interval=0.5, message="committed offsets reach the end")


def test_hundred_thousand_events_counted_exactly(daemon_factory, mock_cluster, redis_server, rng):
    messages, valid, malformed = build_stream(rng, 100_000)
    daemon = daemon_factory(wait_for=READY)
    started = time.monotonic()
    produce_in_chunks(mock_cluster.bootstrap, messages, chunks=10)
    client = redis_server.client()
    highs = wait_applied(mock_cluster.bootstrap, client)
    elapsed = time.monotonic() - started
    buckets, _ = assert_counters_exact(client, valid)
    check_dead_letters(mock_cluster.bootstrap, malformed)
    wait_committed(mock_cluster.bootstrap, daemon.config["kafka.group.id"], highs)
    reasons = sorted({reason for _, reason in malformed})
    print(f"sent={len(messages)} valid_unique={unique_valid_count(valid)} "
          f"duplicates={len(valid) - unique_valid_count(valid)} dead_lettered={len(malformed)} "
          f"reasons={len(reasons)} buckets={buckets} seconds={elapsed:.1f}")
    assert len(reasons) >= 15
    assert daemon.stop() == 0
    log = daemon.log()
    assert "stopped:" in log and f"{len(malformed)} dead-lettered" in log


def test_idle_stream_keeps_the_partitions(daemon_factory, mock_cluster, redis_server, rng):
    """A quiet stream (a district at night) is no reason to leave the consumer
    group: the daemon calls librdkafka while no message comes, so its
    max.poll.interval.ms (here 6 s, librdkafka's default is 5 min) never
    runs out.  Found by hand: the demo, idle for 5 minutes, logged MAXPOLL,
    lost its partitions and took 44 s to get them back, and the alerts of
    those partitions waited meanwhile.  Events after the quiet spell are
    counted exactly."""
    daemon = daemon_factory({"kafka.consumer.max.poll.interval.ms": 6000}, wait_for=READY)
    client = redis_server.client()
    first, valid_first, _ = build_stream(rng, 200, malformed_fraction=0)
    produce_in_chunks(mock_cluster.bootstrap, first, chunks=1)
    wait_applied(mock_cluster.bootstrap, client)
    time.sleep(10)  # idle for longer than max.poll.interval.ms
    log = daemon.log()
    assert "maximum poll interval" not in log, log[-2000:]
    assert "revoked" not in log, log[-2000:]
    second, valid_second, _ = build_stream(rng, 200, malformed_fraction=0)
    produce_in_chunks(mock_cluster.bootstrap, second, chunks=1)
    wait_applied(mock_cluster.bootstrap, client, timeout=15)
    assert_counters_exact(client, valid_first + valid_second)
    assert "revoked" not in daemon.log()


def test_stream_dated_2031_counts_exactly_with_no_dead_letters(daemon_factory, mock_cluster,
                                                               redis_server, rng):
    """The suite's own stream, dated up to 2031-06-15 12:00 Asia/Shanghai, is
    counted exactly and only the malformed messages are dead-lettered: no
    valid event (in particular none calendar_not_covered) may be, so the
    holiday calendar must cover the working-day deadlines of that year."""
    now_ms = int(datetime.datetime(2031, 6, 15, 12, tzinfo=ZoneInfo(ev.TIME_ZONE))
                 .timestamp() * 1000)
    messages, valid, malformed = build_stream(rng, 20_000, now_ms=now_ms)
    # dated years ahead of the wall clock, so the ts bound is off
    # (max_future_ms = 0, below): the catalog's ts_in_future messages are valid
    future = {value for value, reason in malformed if reason == "ts_in_future"}
    messages = [message for message in messages if message[1] not in future]
    malformed = [(value, reason) for value, reason in malformed if reason != "ts_in_future"]
    # rules.conf counts working days for these starts (property.seized kind
    # preserve scope admin, decision.issued publish required): the stream
    # must hold some.
    working_day_starts = sum(1 for event in valid
                             if (event["type"] == "decision.issued" and
                                 event["publish"] == "required") or
                             (event["type"] == "property.seized" and event["kind"] == "preserve"
                              and event["scope"] == "admin"))
    assert working_day_starts > 0
    daemon = daemon_factory({"max_future_ms": 0}, wait_for=READY)
    produce_in_chunks(mock_cluster.bootstrap, messages, chunks=4)
    client = redis_server.client()
    wait_applied(mock_cluster.bootstrap, client)
    # A batch is applied only after its dead letters are delivered: the topic is complete.
    records = lib.consume_all(mock_cluster.bootstrap, DEAD_LETTER_TOPIC)
    expected = collections.Counter((value or b"", reason) for value, reason in malformed)
    unmatched = expected.copy()
    unexpected = []
    for record in records:
        found = (record.value or b"", record.headers["dw.reason"].decode())
        if unmatched[found] > 0:
            unmatched[found] -= 1
        else:
            unexpected.append(record)
    unexpected_reasons = collections.Counter(r.headers["dw.reason"].decode() for r in unexpected)
    applied = applied_events(client)
    print(f"\ningest[dated_2031]: sent={len(messages)} applied={applied} "
          f"valid_unique={unique_valid_count(valid)} working_day_starts={working_day_starts} "
          f"dead_letters_expected={len(malformed)} dead_lettered={len(records)} "
          f"unexpected_dead_letters={len(unexpected)} "
          f"calendar_not_covered={unexpected_reasons['calendar_not_covered']}")
    assert not unexpected_reasons, (
        f"{len(unexpected)} dead letters are not malformed messages sent, by reason "
        f"{dict(unexpected_reasons)}; e.g. "
        f"{[r.headers['dw.detail'].decode() for r in unexpected[:3]]}")
    assert not +unmatched, f"{sum(unmatched.values())} malformed messages not dead-lettered"
    assert_counters_exact(client, valid)
    assert applied == unique_valid_count(valid)
    assert daemon.stop() == 0


def test_sigkill_mid_run_counts_once(daemon_factory, mock_cluster, redis_server, rng):
    messages, valid, malformed = build_stream(rng, 30_000)
    daemon = daemon_factory({"batch_max_events": 500}, wait_for=READY)
    client = redis_server.client()
    half = len(messages) // 2
    lib.produce(mock_cluster.bootstrap, EVENT_TOPIC, messages[:half], timeout=120)
    lib.wait_until(lambda: sum(redis_positions(client).values()) > half // 3, 60,
                   message="part of the first half applied")
    daemon.kill()
    applied_at_kill = sum(redis_positions(client).values())
    lib.produce(mock_cluster.bootstrap, EVENT_TOPIC, messages[half:], timeout=120)
    daemon.start(wait_for=READY, timeout=30)
    wait_applied(mock_cluster.bootstrap, client)
    buckets, _ = assert_counters_exact(client, valid)
    print(f"sent={len(messages)} applied_before_kill={applied_at_kill} buckets={buckets}")
    # Dead letters may repeat after a crash (at least once), never go missing.
    records = lib.consume_all(mock_cluster.bootstrap, DEAD_LETTER_TOPIC, count=len(malformed),
                              timeout=60, settle=1.0)
    assert {r.value or b"" for r in records} == {value or b"" for value, _ in malformed}


def dedupe_span_key(spans_back, ttl_days=30, prefix="dw:"):
    """The dedupe set `spans_back` spans before the current one (README:
    dw:ev:<first UTC day of the span>, spans of ceil(ttl / 4) days)."""
    span_days = (ttl_days + 3) // 4
    today = int(time.time() // 86400)
    first = (today // span_days - spans_back) * span_days
    return f"{prefix}ev:{datetime.date(1970, 1, 1) + datetime.timedelta(days=first)}"


def test_ids_in_a_span_that_appears_later_are_duplicates(daemon_factory, mock_cluster,
                                                         redis_server, rng):
    """A read asks only the dedupe sets the previous read found (and checks
    every one's existence in the same transaction).  A set that appears
    after that read -- here an older span another writer filled, holding ten
    ids -- is found by the next read's check: that read goes again, asking
    it, and the ten events are duplicates, counted once."""
    daemon = daemon_factory(wait_for=READY)
    client = redis_server.client()
    ts = ev.suite_now_ms() - 3600_000
    first = [ev.valid_event(rng, "case.filed", ts, "500112-XJ01") for _ in range(20)]
    lib.produce(mock_cluster.bootstrap, EVENT_TOPIC, ev.to_messages(first))
    wait_applied(mock_cluster.bootstrap, client)
    assert applied_events(client) == 20
    older = dedupe_span_key(2)
    assert not client.exists(older)

    seen = [ev.valid_event(rng, "case.filed", ts, "500112-XJ01") for _ in range(10)]
    client.sadd(older, *[event["id"] for event in seen])
    fresh = [ev.valid_event(rng, "case.filed", ts, "500112-XJ01") for _ in range(5)]
    lib.produce(mock_cluster.bootstrap, EVENT_TOPIC, ev.to_messages(seen + fresh))
    wait_applied(mock_cluster.bootstrap, client)
    assert applied_events(client) == 25
    assert daemon.stop() == 0
    assert "stopped: 35 messages consumed, 25 events applied, 10 duplicates" in daemon.log()


def test_redis_outage_pauses_and_loses_nothing(daemon_factory, mock_cluster, redis_factory, rng):
    redis = redis_factory(appendonly=True)
    messages, valid, malformed = build_stream(rng, 30_000)
    daemon = daemon_factory({"redis_reconnect_max_ms": 500}, redis=redis, wait_for=READY)
    client = redis.client()

    def outage(index):
        if index == 1:
            redis.stop_for(5, background=True)
    produce_in_chunks(mock_cluster.bootstrap, messages, chunks=4, between=outage, pause=0.5)
    redis.wait_outage_over()
    client = redis.client()
    wait_applied(mock_cluster.bootstrap, client)
    buckets, _ = assert_counters_exact(client, valid)
    log = daemon.log()
    assert "pausing consumption: Redis is unavailable" in log
    assert "resuming consumption" in log
    assert "redis: connection lost" in log
    check_dead_letters(mock_cluster.bootstrap, malformed)
    print(f"sent={len(messages)} buckets={buckets} outage=5s")


def test_redis_rollback_is_refilled_from_kafka(daemon_factory, mock_cluster, redis_factory, rng,
                                               tmp_path):
    redis = redis_factory(appendonly=False)
    messages, valid, malformed = build_stream(rng, 20_000)
    daemon = daemon_factory(redis=redis, wait_for=READY)
    client = redis.client()
    half = len(messages) // 2
    lib.produce(mock_cluster.bootstrap, EVENT_TOPIC, messages[:half], timeout=120)
    wait_applied(mock_cluster.bootstrap, client)
    client.save()
    snapshot = tmp_path / "snapshot.rdb"
    shutil.copy(redis.directory / "dump.rdb", snapshot)
    position_at_snapshot = sum(redis_positions(client).values())
    lib.produce(mock_cluster.bootstrap, EVENT_TOPIC, messages[half:], timeout=120)
    highs = wait_applied(mock_cluster.bootstrap, client)
    wait_committed(mock_cluster.bootstrap, daemon.config["kafka.group.id"], highs)
    assert daemon.stop() == 0
    redis.stop()
    shutil.copy(snapshot, redis.directory / "dump.rdb")
    redis.start()
    client = redis.client()
    assert sum(redis_positions(client).values()) == position_at_snapshot
    daemon.start(wait_for=READY, timeout=30)
    assert "from its position in Redis" in daemon.log()
    wait_applied(mock_cluster.bootstrap, client)
    buckets, _ = assert_counters_exact(client, valid)
    print(f"sent={len(messages)} position_at_snapshot={position_at_snapshot} "
          f"end={sum(highs.values())} buckets={buckets}")
