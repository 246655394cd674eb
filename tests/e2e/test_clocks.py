"""End-to-end stories of the deadline clocks in event-time mode: one scripted
story per rule, and the special cases, each asserting the exact sequence of
alerts on the output topic and the supervisors' Redis views."""

import datetime
import hashlib
import time
import zlib
from zoneinfo import ZoneInfo

import msgpack
import pytest

import duewatch_testlib as lib
import events as ev
from ingest_checks import EVENT_TOPIC, wait_applied

ALERT_TOPIC = "duewatch.alerts"
ZONE = ZoneInfo("Asia/Shanghai")
UNIT = "500112-XJ01"
TOPICS = {EVENT_TOPIC: 1, "duewatch.deadletter": 1, ALERT_TOPIC: 1}
EVENT_MODE = {"clock_mode": "event", "event_time_lateness_ms": 0,
              "event_time_idle_partition_ms": 600000}


def at(text):
    """'2025-03-15 00:00' in Asia/Shanghai -> epoch ms."""
    moment = datetime.datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=ZONE)
    return int(moment.timestamp() * 1000)


class Story:
    """Builds a story's events with fresh ids."""

    def __init__(self, rng):
        self.rng = rng
        self.events = []

    def add(self, type, when, **fields):
        self.events.append(ev.valid_event(self.rng, type, at(when), UNIT, **fields))
        return self.events[-1]

    def tick(self, when):
        return self.add("clock.tick", when)


@pytest.fixture
def clock_world(mock_cluster_factory, redis_server, daemon_factory):
    cluster = mock_cluster_factory(topics=TOPICS)
    daemon = daemon_factory(EVENT_MODE, cluster=cluster,
                            wait_for=r"kafka: consuming duewatch\.events")
    return cluster, redis_server, daemon


def run_story(world, story, expected_count):
    cluster, redis, _ = world
    lib.produce(cluster.bootstrap, EVENT_TOPIC, ev.to_messages(story.events))
    wait_applied(cluster.bootstrap, redis.client())
    records = lib.consume_all(cluster.bootstrap, ALERT_TOPIC, count=expected_count, timeout=30,
                              settle=1.5)
    alerts = [msgpack.unpackb(record.value) for record in records]
    print(f"events={len(story.events)} alerts_expected={expected_count} "
          f"alerts_delivered={len(alerts)}")
    return alerts


def summary(alerts):
    return [(a["rule"], a["level"], a["state"], a["seq"], a["due_at"]) for a in alerts]


def test_bail_released_on_the_moved_legal_last_day_is_on_time(clock_world, rng):
    """Bail decided 2024-03-15 for 12 months (刑事诉讼法 第七十九条): the start
    day is not counted and a month runs to the same date (刑诉法解释 第二百零
    二条第一款 "自本月某日至下月同日为一个月"), so the term ends on 2025-03-15;
    that is a Saturday and bail is not custody, so the last day moves to
    Monday 2025-03-17 (第一百零五条 "以节假日后的第一日为期满日期") and the
    deadline is 2025-03-18 00:00.  A release late on Monday is on time: the
    orange is resolved with late false, counted resolved.bail_expiry.ontime,
    and no red ever fires."""
    s = Story(rng)
    start = s.add("measure.started", "2024-03-15 10:00", case="A20", ref="QB20", subject="P20",
                  kind="bail")
    for when in ("2025-03-02 23:59", "2025-03-03 00:00", "2025-03-14 23:59",
                 "2025-03-15 00:00", "2025-03-17 23:58"):
        s.tick(when)
    end = s.add("measure.ended", "2025-03-17 23:59", case="A20", ref="QB20")
    s.tick("2025-03-20 00:00")
    alerts = run_story(clock_world, s, 3)
    deadline = at("2025-03-18 00:00")
    assert summary(alerts) == [
        ("bail_expiry", "yellow", "firing", 0, at("2025-03-03 00:00")),
        ("bail_expiry", "orange", "firing", 0, at("2025-03-15 00:00")),
        ("bail_expiry", "orange", "resolved", 0, at("2025-03-17 23:59")),
    ]
    assert all(a["deadline"] == deadline and a["cause"] == start["id"] for a in alerts)
    assert alerts[1]["text"] == ("取保候审（案件A20，人员P20）将于2025-03-17到期，剩余3天，"
                                 "请及时解除或变更强制措施。")
    assert alerts[-1]["resolved_by"] == end["id"] and alerts[-1]["late"] is False
    client = clock_world[1].client()
    assert client.get(f"dw:active:bail_expiry:{UNIT}") == "0"
    assert client.zcard(f"dw:overdue:bail_expiry:{UNIT}") == 0
    assert client.hget(f"dw:m:2025-03:_all", "resolved.bail_expiry.ontime") == "1"
    assert client.hget(f"dw:m:2025-03:_all", "resolved.bail_expiry.late") is None
    assert client.hget(f"dw:m:2025-03:{UNIT}", "alert.bail_expiry.red") is None


def test_bail_full_sequence_resolved_late(clock_world, rng):
    s = Story(rng)
    start = s.add("measure.started", "2024-03-15 10:00", case="A123", ref="QB1", subject="P9",
                  kind="bail")
    for when in ("2025-03-02 23:59", "2025-03-03 00:00", "2025-03-15 00:00", "2025-03-17 23:59",
                 "2025-03-18 00:00", "2025-03-19 00:00", "2025-03-20 00:00"):
        s.tick(when)
    end = s.add("measure.ended", "2025-03-20 10:00", case="A123", ref="QB1")
    alerts = run_story(clock_world, s, 6)
    # 12 months from 2024-03-15 end on 2025-03-15 (Saturday), moved to Monday
    # 03-17: deadline 03-18 00:00, then a red every day until the release.
    deadline = at("2025-03-18 00:00")
    assert summary(alerts) == [
        ("bail_expiry", "yellow", "firing", 0, at("2025-03-03 00:00")),
        ("bail_expiry", "orange", "firing", 0, at("2025-03-15 00:00")),
        ("bail_expiry", "red", "firing", 0, deadline),
        ("bail_expiry", "red", "firing", 1, at("2025-03-19 00:00")),
        ("bail_expiry", "red", "firing", 2, at("2025-03-20 00:00")),
        ("bail_expiry", "red", "resolved", 0, at("2025-03-20 10:00")),
    ]
    assert all(a["deadline"] == deadline and a["cause"] == start["id"] for a in alerts)
    assert alerts[1]["text"] == ("取保候审（案件A123，人员P9）将于2025-03-17到期，剩余3天，"
                                 "请及时解除或变更强制措施。")
    assert alerts[-1]["resolved_by"] == end["id"] and alerts[-1]["late"] is True
    assert len({a["alert_id"] for a in alerts}) == 6
    # one clock id, as README "Alert message" says to recompute it; the
    # resolution names the five alerts it resolves
    clock_id = hashlib.sha1(b"bail_expiry|QB1").hexdigest()[:32]
    assert {a["clock_id"] for a in alerts} == {clock_id}
    assert alerts[-1]["resolves"] == [a["alert_id"] for a in alerts[:5]]
    client = clock_world[1].client()
    assert client.get(f"dw:active:bail_expiry:{UNIT}") == "0"
    assert client.zcard(f"dw:overdue:bail_expiry:{UNIT}") == 0
    assert client.hget(f"dw:m:2025-03:{UNIT}", "alert.bail_expiry.red") == "3"
    assert client.hget(f"dw:m:2025-03:_all", "resolved.bail_expiry.late") == "1"
    assert client.hget(f"dw:m:2025-03:{UNIT}", "alert.bail_expiry.yellow") == "1"


def test_residential_surveillance_month_end_released_on_last_day_on_time(clock_world, rng):
    s = Story(rng)
    s.add("measure.started", "2024-08-31 09:00", case="A2", ref="JS2", subject="P2", kind="rs")
    s.tick("2025-02-26 00:00")
    s.add("measure.ended", "2025-02-28 15:00", case="A2", ref="JS2")
    alerts = run_story(clock_world, s, 3)
    # 6 months from 08-31, the last day of August: the last day of February
    # (刑诉法解释 第二百零二条第一款 "期间起算日为本月最后一日的，至下月最后一日"),
    # 2025-02-28, a Friday; the deadline 03-01 00:00, so a release that
    # afternoon is on time.
    assert summary(alerts) == [
        ("rs_expiry", "yellow", "firing", 0, at("2025-02-14 00:00")),
        ("rs_expiry", "orange", "firing", 0, at("2025-02-26 00:00")),
        ("rs_expiry", "orange", "resolved", 0, at("2025-02-28 15:00")),
    ]
    assert alerts[0]["deadline"] == at("2025-03-01 00:00")
    assert alerts[-1]["late"] is False


def test_detention_unexecuted_hours(clock_world, rng):
    s = Story(rng)
    s.add("detention.decided", "2025-01-10 08:00", case="X3", ref="JL3", subject="P3", days=10)
    s.tick("2025-01-12 09:30")
    s.add("detention.executed", "2025-01-12 10:00", case="X3", ref="JL3")
    alerts = run_story(clock_world, s, 4)
    # Decided exactly at 08:00: the hour 08:00..09:00 is still the starting
    # hour and not counted (刑事诉讼法 第一百零五条), 24 hours from 09:00.
    assert summary(alerts) == [
        ("detention_unexecuted", "orange", "firing", 0, at("2025-01-10 21:00")),
        ("detention_unexecuted", "red", "firing", 0, at("2025-01-11 09:00")),
        ("detention_unexecuted", "red", "firing", 1, at("2025-01-12 09:00")),
        ("detention_unexecuted", "red", "resolved", 0, at("2025-01-12 10:00")),
    ]
    assert alerts[0]["text"] == ("应拘未拘（案件X3，人员P3）将于2025-01-11 09:00到期，剩余12小时，"
                                 "请及时送拘留所执行或依法作出暂缓执行决定。")


def test_detention_decided_at_10_37_ends_11_00_next_day(clock_world, rng):
    """README's example: decided 10:37, the hour 10:00..11:00 is not counted
    (开始的时不算), so the 24 hours end at 11:00 the next day; executed at
    10:59 that day, on time."""
    s = Story(rng)
    s.add("detention.decided", "2025-03-12 10:37", case="X13", ref="JL13", subject="P13",
          days=5)
    s.tick("2025-03-13 10:58")
    s.add("detention.executed", "2025-03-13 10:59", case="X13", ref="JL13")
    s.tick("2025-03-14 12:00")
    alerts = run_story(clock_world, s, 2)
    assert summary(alerts) == [
        ("detention_unexecuted", "orange", "firing", 0, at("2025-03-12 23:00")),
        ("detention_unexecuted", "orange", "resolved", 0, at("2025-03-13 10:59")),
    ]
    assert alerts[0]["deadline"] == at("2025-03-13 11:00")
    assert alerts[-1]["late"] is False
    client = clock_world[1].client()
    assert client.hget(f"dw:m:2025-03:_all", "resolved.detention_unexecuted.ontime") == "1"


def test_criminal_detention_extended_over_spring_festival(clock_world, rng):
    s = Story(rng)
    s.add("measure.started", "2025-01-27 15:00", case="A4", ref="XJ4", subject="P4",
          kind="criminal_detention")
    s.add("measure.extended", "2025-01-29 10:00", case="A4", ref="XJ4", days=4)
    s.tick("2025-02-03 00:00")
    s.add("measure.ended", "2025-02-03 09:00", case="A4", ref="XJ4")
    alerts = run_story(clock_world, s, 2)
    # 3 days from 01-27 end 01-30 (custody: never moved for the holiday);
    # +4 days: last day 02-03, deadline 02-04 00:00, orange a day before.
    assert summary(alerts) == [
        ("criminal_detention_limit", "orange", "firing", 0, at("2025-02-03 00:00")),
        ("criminal_detention_limit", "orange", "resolved", 0, at("2025-02-03 09:00")),
    ]
    assert alerts[0]["deadline"] == at("2025-02-04 00:00")


def test_admin_case_paused_moved_and_late(clock_world, rng):
    s = Story(rng)
    s.add("case.accepted", "2025-01-02 10:00", case="X5", kind="admin")
    s.add("case.suspended", "2025-01-10 00:00", case="X5")
    s.add("case.resumed", "2025-01-15 00:00", case="X5")
    for when in ("2025-02-04 00:00", "2025-02-08 00:00", "2025-02-11 00:00", "2025-02-12 00:00"):
        s.tick(when)
    s.add("case.closed", "2025-02-12 12:00", case="X5")
    alerts = run_story(clock_world, s, 5)
    # 30 days from 01-02: 02-01 falls in Spring Festival, moves to 02-05
    # (deadline 02-06 00:00); paused 5 days: deadline 02-11 00:00.
    assert summary(alerts) == [
        ("admin_case_limit", "yellow", "firing", 0, at("2025-02-04 00:00")),
        ("admin_case_limit", "orange", "firing", 0, at("2025-02-08 00:00")),
        ("admin_case_limit", "red", "firing", 0, at("2025-02-11 00:00")),
        ("admin_case_limit", "red", "firing", 1, at("2025-02-12 00:00")),
        ("admin_case_limit", "red", "resolved", 0, at("2025-02-12 12:00")),
    ]
    assert alerts[0]["ref"] == "X5" and alerts[0]["deadline"] == at("2025-02-11 00:00")


def test_property_hold_extended(clock_world, rng):
    s = Story(rng)
    s.add("property.seized", "2025-03-01 10:00", case="A6", ref="KY6", kind="seize")
    s.tick("2025-03-25 00:00")
    s.add("property.extended", "2025-03-26 10:00", case="A6", ref="KY6", days=30)
    for when in ("2025-04-28 00:00", "2025-05-01 00:00", "2025-05-02 00:00"):
        s.tick(when)
    s.add("property.released", "2025-05-02 10:00", case="A6", ref="KY6")
    alerts = run_story(clock_world, s, 5)
    assert summary(alerts) == [
        ("property_hold_limit", "yellow", "firing", 0, at("2025-03-25 00:00")),
        ("property_hold_limit", "orange", "firing", 0, at("2025-04-28 00:00")),
        ("property_hold_limit", "red", "firing", 0, at("2025-05-01 00:00")),
        ("property_hold_limit", "red", "firing", 1, at("2025-05-02 00:00")),
        ("property_hold_limit", "red", "resolved", 0, at("2025-05-02 10:00")),
    ]
    assert alerts[0]["deadline"] == at("2025-04-01 00:00")
    assert alerts[1]["deadline"] == at("2025-05-01 00:00")


def test_evidence_preservation_working_days_across_spring_festival(clock_world, rng):
    s = Story(rng)
    s.add("property.seized", "2025-01-24 10:00", case="X7", ref="BC7", kind="preserve")
    s.tick("2025-02-08 00:00")
    s.add("property.released", "2025-02-09 10:00", case="X7", ref="BC7")
    alerts = run_story(clock_world, s, 2)
    # working days after 01-24: 01-26 (adjusted Sunday), 01-27, 02-05, 02-06,
    # 02-07, 02-08 (adjusted Saturday), 02-10 = last day.
    assert summary(alerts) == [
        ("evidence_preservation", "orange", "firing", 0, at("2025-02-08 00:00")),
        ("evidence_preservation", "orange", "resolved", 0, at("2025-02-09 10:00")),
    ]
    assert alerts[0]["deadline"] == at("2025-02-11 00:00")
    assert alerts[1]["late"] is False


def test_decision_publication_across_national_day(clock_world, rng):
    s = Story(rng)
    s.add("decision.issued", "2025-09-26 10:00", case="X8", ref="CF8")
    s.tick("2025-10-14 00:00")
    s.add("decision.published", "2025-10-14 12:00", case="X8", ref="CF8")
    alerts = run_story(clock_world, s, 3)
    # 09-28 (adjusted Sunday), 09-29, 09-30, 10-09, 10-10, 10-11 (adjusted
    # Saturday), 10-13 = 7th working day; orange 2 working days before = 10-11.
    assert summary(alerts) == [
        ("decision_publication", "orange", "firing", 0, at("2025-10-11 00:00")),
        ("decision_publication", "red", "firing", 0, at("2025-10-14 00:00")),
        ("decision_publication", "red", "resolved", 0, at("2025-10-14 12:00")),
    ]


def test_incident_accepted_in_time_raises_nothing(clock_world, rng):
    s = Story(rng)
    s.add("incident.reported", "2025-05-01 08:00", ref="JQ9", kind="criminal")
    s.add("incident.accepted", "2025-05-02 01:00", ref="JQ9", case="A9")
    s.tick("2025-05-10 00:00")
    alerts = run_story(clock_world, s, 0)
    assert alerts == []
    client = clock_world[1].client()
    assert client.get(f"dw:active:incident_unaccepted:{UNIT}") == "0"
    assert client.hget(f"dw:m:2025-05:{UNIT}", "resolved.incident_unaccepted.ontime") == "1"


def test_duplicate_start_and_stop_before_start(clock_world, rng):
    s = Story(rng)
    s.add("measure.started", "2025-01-01 10:00", case="A10", ref="QB10", subject="P10",
          kind="bail")
    s.add("measure.started", "2025-01-02 10:00", case="A10", ref="QB10", subject="P10",
          kind="bail")
    # the end of QB11 arrives before its start
    s.add("measure.ended", "2025-01-05 10:00", case="A11", ref="QB11")
    s.add("measure.started", "2025-01-03 10:00", case="A11", ref="QB11", subject="P11",
          kind="bail")
    s.tick("2025-12-21 00:00")
    alerts = run_story(clock_world, s, 1)
    # QB10 from 2025-01-01: 2026-01-01 (元旦) moves to 01-04 (worked Sunday);
    # 15 days before = 2025-12-21 00:00.
    assert summary(alerts) == [
        ("bail_expiry", "yellow", "firing", 0, at("2025-12-21 00:00")),
    ]
    assert alerts[0]["ref"] == "QB10"
    client = clock_world[1].client()
    assert client.get(f"dw:active:bail_expiry:{UNIT}") == "1"


def test_backfilled_start_fires_one_red(clock_world, rng):
    s = Story(rng)
    s.tick("2026-01-10 00:00")
    s.add("measure.started", "2024-03-15 10:00", case="A12", ref="QB12", subject="P12",
          kind="bail")
    alerts = run_story(clock_world, s, 1)
    # deadline 2025-03-18 00:00 (2025-03-15 moved off the weekend); by
    # 2026-01-10 the latest daily repeat is 298
    assert summary(alerts) == [
        ("bail_expiry", "red", "firing", 298, at("2026-01-10 00:00")),
    ]
    client = clock_world[1].client()
    assert client.zrange(f"dw:overdue:bail_expiry:{UNIT}", 0, -1, withscores=True) == [
        ("QB12", float(at("2025-03-18 00:00")))]
    assert client.get(f"dw:active:bail_expiry:{UNIT}") == "1"


def replay(cluster, redis, daemon_factory, messages_by_partition, order, tick_ts, rng):
    daemon_factory(EVENT_MODE, cluster=cluster, redis=redis,
                   wait_for=r"kafka: consuming duewatch\.events")
    for partition in order:
        lib.produce(cluster.bootstrap, EVENT_TOPIC, messages_by_partition[partition],
                    partition=partition)
    for partition in order:
        tick = ev.valid_event(rng, "clock.tick", tick_ts, UNIT)
        lib.produce(cluster.bootstrap, EVENT_TOPIC, ev.to_messages([tick]), partition=partition)
    wait_applied(cluster.bootstrap, redis.client())
    lib.wait_until(lambda: sum(redis.client().hlen(k)
                               for k in redis.client().scan_iter(match="dw:outbox:*")) == 0,
                   30, message="outboxes delivered")
    time.sleep(1.0)
    records = lib.consume_all(cluster.bootstrap, ALERT_TOPIC)
    return [msgpack.unpackb(record.value) for record in records]


def test_replay_gives_the_same_alerts_however_partitions_interleave(
        mock_cluster_factory, redis_factory, daemon_factory, rng):
    now = at("2025-06-30 00:00")
    stream = ev.realistic_stream(rng, now, cases=120, window_days=60)
    topics = {EVENT_TOPIC: 4, "duewatch.deadletter": 1, ALERT_TOPIC: 1}
    by_partition = {p: [] for p in range(4)}
    for key, value in ev.to_messages(stream):
        by_partition[zlib.crc32(key) % 4].append((key, value))
    runs = []
    for order in ([0, 1, 2, 3], [3, 2, 1, 0]):
        cluster = mock_cluster_factory(topics=topics)
        redis = redis_factory()
        runs.append(replay(cluster, redis, daemon_factory, by_partition, order, now, rng))
    first, second = ({(a["alert_id"], a["rule"], a["level"], a["state"], a["seq"], a["due_at"])
                      for a in alerts} for alerts in runs)
    print(f"events={len(stream)} alerts_run1={len(runs[0])} alerts_run2={len(runs[1])} "
          f"distinct={len(first)}")
    assert len(first) > 20
    assert first == second
