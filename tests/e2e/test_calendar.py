"""The holiday calendar's provisional years, end to end: a clock whose
deadline depends on a year with no official schedule yet runs (it is not
dead-lettered), is marked provisional in Redis and in its alerts, and is
recomputed when the official year is added and duewatchd reloads; the
coverage metrics say how far the official years reach."""

import datetime
import re
import time

import msgpack

import duewatch_testlib as lib
import events as ev
from ingest_checks import EVENT_TOPIC, wait_applied
from test_clocks import ALERT_TOPIC, EVENT_MODE, TOPICS, UNIT, Story, at, summary
from test_metrics import get, scrape, value

# These stories are dated years ahead of the wall clock: the ts bound
# (max_future_ms, ts_in_future) is off for them.
FUTURE_DATED = dict(EVENT_MODE, max_future_ms=0)

REPO = lib.REPO_ROOT
PARTITION = f"{EVENT_TOPIC}:0"
DEAD_LETTER_TOPIC = "duewatch.deadletter"


def day_number(text):
    return (datetime.date.fromisoformat(text) - datetime.date(1970, 1, 1)).days


def official_2027(shipped):
    """The shipped calendar with 2027 made official by a schedule written for
    this test (not the State Council's, which is not published yet): it
    differs from the provisional 2027 in making Tuesday 2027-01-19 a day
    off, so a last day on it moves to Wednesday 01-20."""
    text = shipped.replace("provisional 2027..2035", "provisional 2028..2035")
    block = re.search(r"# 2027 \(provisional.*?\n\n", text, re.S).group(0)
    official = ("# 2027 (a hypothetical official schedule, for tests only)\n"
                + "".join(line + "\n" for line in block.splitlines()[1:] if line)
                + "holiday 2027-01-18..2027-01-19   # test-only days off\n\n")
    return text.replace(block, official)


def alerts_on_topic(cluster, count, settle=1.5):
    records = lib.consume_all(cluster.bootstrap, ALERT_TOPIC, count=count, timeout=30,
                              settle=settle)
    return [msgpack.unpackb(record.value) for record in records]


def test_admin_case_in_a_provisional_year_recomputed_when_it_becomes_official(
        tmp_path, mock_cluster_factory, redis_server, daemon_factory, rng):
    shipped = (REPO / "conf" / "holidays-cn.conf").read_text()
    holidays = tmp_path / "holidays.conf"
    holidays.write_text(shipped)
    port = lib.free_port()
    cluster = mock_cluster_factory(topics=TOPICS)
    daemon = daemon_factory(dict(FUTURE_DATED, holidays_file=str(holidays),
                                 http_listen=f"127.0.0.1:{port}"),
                            cluster=cluster, wait_for=r"kafka: consuming duewatch\.events")
    client = redis_server.client()

    # Accepted Sunday 2026-12-20: 30 days, the last day Tuesday 2027-01-19
    # (a working day in the provisional 2027), yellow 7 days before it.
    s = Story(rng)
    s.add("case.accepted", "2026-12-20 10:00", case="AJ2026", kind="admin")
    s.tick("2027-01-13 12:00")
    lib.produce(cluster.bootstrap, EVENT_TOPIC, ev.to_messages(s.events))
    wait_applied(cluster.bootstrap, client)
    first = alerts_on_topic(cluster, 1)
    provisional_deadline = at("2027-01-20 00:00")
    assert summary(first) == [("admin_case_limit", "yellow", "firing", 0, at("2027-01-13 00:00"))]
    assert first[0]["deadline"] == provisional_deadline
    assert first[0]["provisional"] is True
    assert first[0]["text"].endswith("（到期日按暂定节假日安排计算，以国务院正式安排为准。）")
    assert client.hgetall(f"dw:provisional:{PARTITION}") == {"admin_case_limit:AJ2026": "S"}
    assert client.get(f"dw:active:admin_case_limit:{UNIT}") == "1"
    samples = scrape(port)
    assert value(samples, "duewatch_calendar_official_end_seconds") == at("2027-01-01 00:00") / 1000
    assert value(samples, "duewatch_calendar_end_seconds") == at("2036-01-01 00:00") / 1000

    # The official 2027 arrives: the clock is recomputed on reload.
    holidays.write_text(official_2027(shipped))
    offset = daemon.log_offset()
    daemon.reload()
    daemon.wait_for_log(r"provisional clocks: 1 recomputed with the calendar in force",
                        since=offset)
    assert client.hgetall(f"dw:provisional:{PARTITION}") == {}
    record = lib.decode_stored(client.get("dw:clock:admin_case_limit:AJ2026"))
    assert record["last_day"] == str(day_number("2027-01-20"))
    assert record["base_deadline"] == str(at("2027-01-21 00:00"))
    samples = scrape(port)
    assert value(samples, "duewatch_calendar_official_end_seconds") == at("2028-01-01 00:00") / 1000
    assert value(samples, "duewatch_provisional_clocks_recomputed_total") == 1

    # Time goes on: orange, red and a red repeat for the official deadline,
    # then the case closes late.  The yellow is not sent again.
    s.events = []
    s.tick("2027-01-22 00:00")
    s.add("case.closed", "2027-01-22 10:00", case="AJ2026")
    lib.produce(cluster.bootstrap, EVENT_TOPIC, ev.to_messages(s.events))
    wait_applied(cluster.bootstrap, client)
    alerts = alerts_on_topic(cluster, 5, settle=2.0)
    official_deadline = at("2027-01-21 00:00")
    sent = len(alerts)
    expected = [
        ("admin_case_limit", "yellow", "firing", 0, at("2027-01-13 00:00")),
        ("admin_case_limit", "orange", "firing", 0, at("2027-01-18 00:00")),
        ("admin_case_limit", "red", "firing", 0, official_deadline),
        ("admin_case_limit", "red", "firing", 1, at("2027-01-22 00:00")),
        ("admin_case_limit", "red", "resolved", 0, at("2027-01-22 10:00")),
    ]
    duplicated = sent - len({a["alert_id"] for a in alerts})
    print(f"calendar[provisional->official]: events=3 alerts_expected={len(expected)} "
          f"alerts_sent={sent} duplicated={duplicated}")
    assert summary(alerts) == expected
    assert duplicated == 0
    assert [a["deadline"] for a in alerts[1:]] == [official_deadline] * 4
    assert not any(a["provisional"] for a in alerts[1:])
    assert alerts[2]["text"].startswith("治安案件办案期限（案件AJ2026）已于2027-01-20到期")
    assert alerts[-1]["late"] is True
    assert lib.consume_all(cluster.bootstrap, DEAD_LETTER_TOPIC, settle=0.5) == []
    assert client.get(f"dw:active:admin_case_limit:{UNIT}") == "0"
    assert daemon.stop() == 0


def test_two_extensions_of_a_provisional_clock_recomputed_from_the_start(
        tmp_path, mock_cluster_factory, redis_server, daemon_factory, rng):
    """A provisional clock keeps, in its provisional entry, what its recompute
    needs: the start and every extension ("S,30,29").  The second extension
    reads the entry the first wrote (the read finds it by the partition the
    clock's record names), so the recompute with the official year moves
    the last day off rest days after each extension, as the law counts.  (Up
    to 2026-12-05 the read looked in the record's last field, which is no
    longer the partition since format 2: the entry was missed and rebuilt
    from the provisional last day, and the recompute ended on Friday 03-19.)"""
    shipped = (REPO / "conf" / "holidays-cn.conf").read_text()
    holidays = tmp_path / "holidays.conf"
    holidays.write_text(shipped)
    cluster = mock_cluster_factory(topics=TOPICS)
    daemon = daemon_factory(dict(FUTURE_DATED, holidays_file=str(holidays)),
                            cluster=cluster, wait_for=r"kafka: consuming duewatch\.events")
    client = redis_server.client()
    # Accepted 2026-12-20: last day Tuesday 2027-01-19 (provisional); extended
    # by 30 days (the law's one extension) and again by 29 (a violation the
    # clock follows), each in its own batch.
    s = Story(rng)
    s.add("case.accepted", "2026-12-20 10:00", case="AJ2027", kind="admin")
    lib.produce(cluster.bootstrap, EVENT_TOPIC, ev.to_messages(s.events))
    wait_applied(cluster.bootstrap, client)
    for when, days in (("2027-01-05 10:00", 30), ("2027-02-01 10:00", 29)):
        s.events = []
        s.add("case.extended", when, case="AJ2027", days=days)
        lib.produce(cluster.bootstrap, EVENT_TOPIC, ev.to_messages(s.events))
        wait_applied(cluster.bootstrap, client)
    assert client.hgetall(f"dw:provisional:{PARTITION}") == {"admin_case_limit:AJ2027": "S,30,29"}

    # The official 2027 makes 01-18..01-19 days off: 01-19 moves to Wednesday
    # 01-20; +30 days is Friday 02-19; +29 days is Saturday 03-20, which
    # moves to Monday 03-22.
    holidays.write_text(official_2027(shipped))
    offset = daemon.log_offset()
    daemon.reload()
    daemon.wait_for_log(r"provisional clocks: 1 recomputed with the calendar in force",
                        since=offset)
    record = lib.decode_stored(client.get("dw:clock:admin_case_limit:AJ2027"))
    assert record["last_day"] == str(day_number("2027-03-22"))
    assert record["base_deadline"] == str(at("2027-03-23 00:00"))
    assert record["extensions"] == "2"
    assert client.hgetall(f"dw:provisional:{PARTITION}") == {}
    assert daemon.stop() == 0


def test_beyond_the_provisional_years_is_dead_lettered(mock_cluster_factory, redis_server,
                                                        daemon_factory, rng):
    """A working-day deadline after the calendar's last (provisional) year is
    not guessed: the event is dead-lettered calendar_not_covered."""
    cluster = mock_cluster_factory(topics=TOPICS)
    daemon_factory(FUTURE_DATED, cluster=cluster, wait_for=r"kafka: consuming duewatch\.events")
    s = Story(rng)
    inside = s.add("decision.issued", "2035-12-10 10:00", case="AJ1", ref="JD1")
    beyond = s.add("decision.issued", "2035-12-28 10:00", case="AJ1", ref="JD2")
    lib.produce(cluster.bootstrap, EVENT_TOPIC, ev.to_messages(s.events))
    client = redis_server.client()
    wait_applied(cluster.bootstrap, client)
    letters = lib.consume_all(cluster.bootstrap, DEAD_LETTER_TOPIC, count=1, timeout=30,
                              settle=1.0)
    headers = [letter.headers for letter in letters]
    print(f"calendar[beyond]: events=2 applied=1 dead_letters={len(letters)}")
    assert [h["dw.reason"] for h in headers] == [b"calendar_not_covered"]
    assert b"2036-01-01" in headers[0]["dw.detail"]
    assert msgpack.unpackb(letters[0].value)["id"] == beyond["id"]
    assert client.exists(f"dw:clock:decision_publication:{inside['ref']}") == 1
    assert client.exists(f"dw:clock:decision_publication:{beyond['ref']}") == 0
