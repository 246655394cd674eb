"""Poisoned timestamps and partitioning (issue 15, items 1, 7 and 8): one
event's time can neither flood the alert topic nor stall Redis, an incident
whose events are spread over partitions alerts as on one partition, and
`event_time_idle_partition_ms = 0` waits for every partition.

Each test asserts the exact alerts and dead letters, prints its ledger, and
reads Redis's SLOWLOG (every script call over 100 ms is logged there) where a
poisoned input used to make one script call run for seconds."""

import time

import msgpack

import duewatch_testlib as lib
import events as ev
from ingest_checks import EVENT_TOPIC, wait_applied
from test_clocks import ALERT_TOPIC, EVENT_MODE, UNIT, Story, at, summary
from test_metrics import scrape, value

DEAD_LETTER_TOPIC = "duewatch.deadletter"
DAY_MS = 86_400_000
SLOW_SCRIPT_US = 100_000  # a script call longer than 100 ms is logged


def watch_slow_calls(redis):
    client = redis.client()
    client.config_set("slowlog-log-slower-than", SLOW_SCRIPT_US)
    client.slowlog_reset()
    return client


def slow_calls(client):
    return [(entry["duration"], entry["command"][:60]) for entry in client.slowlog_get(128)]


def dead_letters(bootstrap, count):
    records = lib.consume_all(bootstrap, DEAD_LETTER_TOPIC, count=count, timeout=30, settle=0.5)
    return [record.headers["dw.reason"].decode() for record in records]


def alerts_of(bootstrap, count, settle=1.5):
    records = lib.consume_all(bootstrap, ALERT_TOPIC, count=count, timeout=30, settle=settle)
    return [msgpack.unpackb(record.value) for record in records]


def produce_events(bootstrap, events, partition=None, key=None):
    messages = [(key or ev.kafka_key(event), ev.pack(event)) for event in events]
    lib.produce(bootstrap, EVENT_TOPIC, messages, partition=partition)


def test_wall_mode_future_stops_and_until_before_ts_are_dead_lettered(
        mock_cluster_factory, redis_server, daemon_factory, rng):
    """Wall mode: ten running bail clocks, then their stops dated two years
    ahead and in 2099 (they used to send a red per day up to that date, 262,690
    alerts in one 8 s script call), and a start whose `until` precedes its
    ts (it used to fire at once, "overdue 9833 days").  The stops and that
    start are dead-lettered; the clocks keep running; a backfilled clock
    started after them fires its one red, so the claims have run."""
    cluster = mock_cluster_factory(topics={EVENT_TOPIC: 1, DEAD_LETTER_TOPIC: 1,
                                           ALERT_TOPIC: 1})
    client = watch_slow_calls(redis_server)
    port = lib.free_port()
    daemon_factory({"http_listen": f"127.0.0.1:{port}"}, cluster=cluster,
                   wait_for=r"kafka: consuming duewatch\.events")
    now = int(time.time() * 1000)
    starts = [ev.valid_event(rng, "measure.started", now - 3_600_000, UNIT, case=f"AW{i}",
                             ref=f"QW{i}", kind="bail") for i in range(10)]
    produce_events(cluster.bootstrap, starts)
    wait_applied(cluster.bootstrap, client)
    stops = [ev.valid_event(rng, "measure.ended", now + 730 * DAY_MS if i == 0
                            else at("2099-06-01 10:00"), UNIT, case=f"AW{i}", ref=f"QW{i}")
             for i in range(10)]
    until_before = ev.valid_event(rng, "measure.started", now - 3_600_000, UNIT, case="AU1",
                                  ref="QU1", kind="bail", until=now - 30 * DAY_MS)
    backfill = ev.valid_event(rng, "measure.started", now - 400 * DAY_MS, UNIT, case="AB1",
                              ref="QB1", kind="bail")
    produce_events(cluster.bootstrap, stops + [until_before, backfill])
    wait_applied(cluster.bootstrap, client)
    reasons = dead_letters(cluster.bootstrap, 11)
    alerts = alerts_of(cluster.bootstrap, 1)
    slow = slow_calls(client)
    samples = scrape(port)
    lib.print_ledger("failures", "wall_mode_future_stops", sent=len(starts) + 12,
                     applied=len(starts) + 1, dead_lettered=len(reasons), alerts_expected=1,
                     alerts_sent=len(alerts),
                     alerts_duplicated=len(alerts) - len({a["alert_id"] for a in alerts}),
                     slow_script_calls=len(slow))
    assert reasons == ["ts_in_future"] * 10 + ["until_not_after_ts"]
    assert [(a["ref"], a["level"], a["state"]) for a in alerts] == [("QB1", "red", "firing")]
    assert client.get(f"dw:active:bail_expiry:{UNIT}") == "11"
    assert value(samples, "duewatch_events_rejected_total", reason="ts_in_future") == 10
    assert value(samples, "duewatch_events_rejected_total", reason="until_not_after_ts") == 1
    assert slow == []


def test_event_mode_tick_in_2030_and_a_stop_years_late(
        mock_cluster_factory, redis_server, daemon_factory, rng):
    """Event mode: a clock.tick dated 2030 is dead-lettered and does not move
    the partition's time (it used to fire thousands of alerts and make every
    later start red at once); a stop 17 months after its bail clock's
    deadline, with no time passing in between, sends each level once -- the
    red at its latest repeat -- and the late resolution, not one red per
    day; a detention decided after that fires its orange when time reaches
    it, not at once."""
    cluster = mock_cluster_factory(topics={EVENT_TOPIC: 1, DEAD_LETTER_TOPIC: 1,
                                           ALERT_TOPIC: 1})
    client = watch_slow_calls(redis_server)
    daemon_factory(EVENT_MODE, cluster=cluster, wait_for=r"kafka: consuming duewatch\.events")
    s = Story(rng)
    s.add("measure.started", "2023-01-01 10:00", case="A1", ref="QB1", subject="P1", kind="bail")
    s.tick("2030-01-01 00:00")
    end = s.add("measure.ended", "2025-06-01 10:00", case="A1", ref="QB1")
    s.add("detention.decided", "2025-06-01 12:00", case="X2", ref="JL2", subject="P2", days=5)
    s.tick("2025-06-02 01:00")
    produce_events(cluster.bootstrap, s.events)
    wait_applied(cluster.bootstrap, client)
    reasons = dead_letters(cluster.bootstrap, 1)
    alerts = alerts_of(cluster.bootstrap, 5)
    slow = slow_calls(client)
    lib.print_ledger("failures", "event_mode_tick_in_2030", sent=len(s.events),
                     applied=len(s.events) - 1, dead_lettered=len(reasons), alerts_expected=5,
                     alerts_sent=len(alerts),
                     alerts_duplicated=len(alerts) - len({a["alert_id"] for a in alerts}),
                     slow_script_calls=len(slow))
    assert reasons == ["ts_in_future"]
    # 12 months from 2023-01-01 end on 2024-01-01 (元旦), moved to 01-02:
    # deadline 2024-01-03 00:00.  The detention decided 12:00 counts from
    # 13:00: deadline 06-02 13:00, orange 12 hours before, at 01:00.
    deadline = at("2024-01-03 00:00")
    latest = (at("2025-06-01 00:00") - deadline) // DAY_MS  # 515 daily repeats were due
    assert latest == 515
    assert summary(alerts) == [
        ("bail_expiry", "yellow", "firing", 0, at("2023-12-19 00:00")),
        ("bail_expiry", "orange", "firing", 0, at("2023-12-31 00:00")),
        ("bail_expiry", "red", "firing", latest, at("2025-06-01 00:00")),
        ("bail_expiry", "red", "resolved", 0, at("2025-06-01 10:00")),
        ("detention_unexecuted", "orange", "firing", 0, at("2025-06-02 01:00")),
    ]
    assert alerts[3]["late"] is True and alerts[3]["resolved_by"] == end["id"]
    assert client.hget("dw:eventtime", f"{EVENT_TOPIC}:0") == str(at("2025-06-02 01:00"))
    assert client.zcard(f"dw:overdue:bail_expiry:{UNIT}") == 0
    assert slow == []


def incident_run(mock_cluster_factory, redis_factory, daemon_factory, rng, two_partitions):
    """The issue's incident: reported I1 2025-03-01 10:00 (key I1), accepted
    I1 as case A1 2025-03-03 06:00.  On one partition in order; on two, the
    acceptance keyed by its case on partition 1 and applied first."""
    cluster = mock_cluster_factory(topics={EVENT_TOPIC: 2, DEAD_LETTER_TOPIC: 1,
                                           ALERT_TOPIC: 1})
    redis = redis_factory()
    port = lib.free_port()
    daemon_factory(dict(EVENT_MODE, http_listen=f"127.0.0.1:{port}"), cluster=cluster,
                   redis=redis, wait_for=r"kafka: consuming duewatch\.events")
    s = Story(rng)
    reported = s.add("incident.reported", "2025-03-01 10:00", ref="I1", kind="criminal")
    accepted = s.add("incident.accepted", "2025-03-03 06:00", ref="I1", case="A1")
    if two_partitions:
        produce_events(cluster.bootstrap, [accepted], partition=1, key=b"A1")
        lib.wait_until(lambda: redis.client().hget("dw:offsets", f"{EVENT_TOPIC}:1") == "1",
                       30, message="the acceptance applied first")
        produce_events(cluster.bootstrap, [reported], partition=0)
    else:
        produce_events(cluster.bootstrap, [reported, accepted], partition=0)
    wait_applied(cluster.bootstrap, redis.client())
    alerts = alerts_of(cluster.bootstrap, 3)
    samples = scrape(port)
    return alerts, samples.get(("duewatch_events_misrouted_total", ())), accepted


def test_incident_spread_over_two_partitions_alerts_as_on_one(
        mock_cluster_factory, redis_factory, daemon_factory, rng):
    """The acceptance (a stop) applied before the report (the start) used to
    be remembered as a stop-before-start, and the report raised nothing.
    Now the start runs to the remembered stop: the same orange, red and late
    resolution, with the same alert ids, as on one partition; the message
    keyed by its case, not its ref, is counted as misrouted."""
    one, misrouted_one, accepted_one = incident_run(mock_cluster_factory, redis_factory,
                                                    daemon_factory, rng, False)
    two, misrouted_two, accepted_two = incident_run(mock_cluster_factory, redis_factory,
                                                    daemon_factory, rng, True)
    # reported 10:00: counted from 11:00, deadline 03-02 11:00, orange 05:00
    expected = [
        ("incident_unaccepted", "orange", "firing", 0, at("2025-03-02 05:00")),
        ("incident_unaccepted", "red", "firing", 0, at("2025-03-02 11:00")),
        ("incident_unaccepted", "red", "resolved", 0, at("2025-03-03 06:00")),
    ]
    duplicated = sum(len(run) - len({a["alert_id"] for a in run}) for run in (one, two))
    lib.print_ledger("failures", "incident_two_partitions", sent=4, applied=4,
                     alerts_expected=2 * len(expected), alerts_sent=len(one) + len(two),
                     alerts_duplicated=duplicated, misrouted=misrouted_two)
    assert summary(one) == expected
    assert summary(two) == expected
    assert [a["alert_id"] for a in two] == [a["alert_id"] for a in one]
    assert two[-1]["late"] is True and two[-1]["resolved_by"] == accepted_two["id"]
    assert one[-1]["resolved_by"] == accepted_one["id"]
    assert (misrouted_one, misrouted_two) == (0, 1)


def test_idle_partition_zero_waits_for_every_partition(
        mock_cluster_factory, redis_server, daemon_factory, rng):
    """event_time_idle_partition_ms = 0 means "always wait for every
    partition": a bail clock started on partition 0 must not fire because
    partition 1 is a year ahead.  Daemon time follows partition 0 to
    2025-12-21, so only the yellow (due 12-21: the term ends 2026-01-01,
    元旦, moved to the worked Sunday 01-04) fires.  It used to take the
    most advanced partition's time at once: yellow, orange, red and a red per
    day up to 2026-02-01."""
    cluster = mock_cluster_factory(topics={EVENT_TOPIC: 2, DEAD_LETTER_TOPIC: 1,
                                           ALERT_TOPIC: 1})
    client = redis_server.client()
    daemon_factory(dict(EVENT_MODE, event_time_idle_partition_ms=0), cluster=cluster,
                   wait_for=r"kafka: consuming duewatch\.events")
    s = Story(rng)
    start = s.add("measure.started", "2025-01-01 10:00", case="A8", ref="QB8", subject="P8",
                  kind="bail")
    ahead = s.tick("2026-02-01 00:00")
    produce_events(cluster.bootstrap, [start], partition=0)
    produce_events(cluster.bootstrap, [ahead], partition=1)
    wait_applied(cluster.bootstrap, client)
    produce_events(cluster.bootstrap, [s.tick("2025-12-21 00:00")], partition=0)
    wait_applied(cluster.bootstrap, client)
    alerts = alerts_of(cluster.bootstrap, 1)
    lib.print_ledger("failures", "idle_partition_zero", sent=3, applied=3, alerts_expected=1,
                     alerts_sent=len(alerts),
                     alerts_duplicated=len(alerts) - len({a["alert_id"] for a in alerts}))
    assert summary(alerts) == [("bail_expiry", "yellow", "firing", 0, at("2025-12-21 00:00"))]


def test_extension_past_the_calendar_is_dead_lettered(
        mock_cluster_factory, redis_server, daemon_factory, rng):
    """An extension whose new last day must be moved off rest days but falls
    after the holiday calendar's last day (2035-12-31 with the shipped file)
    used to be applied without the move (a guess); it is dead-lettered
    calendar_not_covered and the clock keeps its deadline.  The story is
    dated 2035, so the ts bound is off (max_future_ms = 0)."""
    cluster = mock_cluster_factory(topics={EVENT_TOPIC: 1, DEAD_LETTER_TOPIC: 1,
                                           ALERT_TOPIC: 1})
    client = redis_server.client()
    daemon_factory(dict(EVENT_MODE, max_future_ms=0), cluster=cluster,
                   wait_for=r"kafka: consuming duewatch\.events")
    s = Story(rng)
    s.add("case.accepted", "2035-11-01 10:00", case="AX1", kind="admin")
    s.add("case.extended", "2035-11-20 10:00", case="AX1", days=45)
    s.add("case.extended", "2035-11-21 10:00", case="AX1", days=10)
    produce_events(cluster.bootstrap, s.events)
    wait_applied(cluster.bootstrap, client)
    records = lib.consume_all(cluster.bootstrap, DEAD_LETTER_TOPIC, count=1, timeout=30,
                              settle=0.5)
    record = client.get("dw:clock:admin_case_limit:AX1")
    lib.print_ledger("failures", "extension_past_calendar", sent=3, applied=2,
                     dead_lettered=len(records))
    assert [r.headers["dw.reason"] for r in records] == [b"calendar_not_covered"]
    assert b"2035-12-31" in records[0].headers["dw.detail"]
    # 30 days from 11-01: last day 12-01 (a Saturday) moved to Monday 12-03;
    # + 10 days: 12-13 (a Thursday)
    assert lib.decode_stored(record)["base_deadline"] == str(int(at("2035-12-14 00:00")))
