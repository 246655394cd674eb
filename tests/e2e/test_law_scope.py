"""The law's scope in the event contract (issue 14): clocks only where the law
gives one, counters for every event whatever its scope.

- 行政强制法 第二十五条 ("查封、扣押的期限不得超过三十日") is a term of
  administrative 查封/扣押 only: a criminal seizure (scope=criminal) starts
  no clock, an administrative one (scope=admin) the 30-day clock.
- property.seized without scope, or with a scope the contract does not list,
  is dead-lettered (missing_key, bad_value) with its detail line.
- 行政处罚法 第六十条 ("自行政处罚案件立案之日起九十日内作出行政处罚决定"):
  an administrative case that is not a 治安 case (admin_type=other) gets a
  90-day clock; a 治安 case (admin_type=public_security) the 30-day one.
- A decision exempt from publication (publish=exempt) starts no clock; a
  许可/处罚 decision to be published 7 working days, another decision 20.

Each test runs one story in event-time mode, asserts the exact alerts, dead
letters and counters, and prints its ledger."""

import pytest

import duewatch_testlib as lib
import events as ev
from ingest_checks import EVENT_TOPIC, assert_counters_exact, wait_applied
from test_clocks import ALERT_TOPIC, EVENT_MODE, UNIT, Story, at, run_story, summary
from test_metrics import scrape, value

DEAD_LETTER_TOPIC = "duewatch.deadletter"
TOPICS = {EVENT_TOPIC: 1, DEAD_LETTER_TOPIC: 1, ALERT_TOPIC: 1}
READY = r"kafka: consuming duewatch\.events"


@pytest.fixture
def scope_world(mock_cluster_factory, redis_server, daemon_factory):
    cluster = mock_cluster_factory(topics=TOPICS)
    port = lib.free_port()
    daemon = daemon_factory(dict(EVENT_MODE, http_listen=f"127.0.0.1:{port}"), cluster=cluster,
                            wait_for=READY)
    return cluster, redis_server, daemon, port


def counted(events):
    return sum(1 for event in events if event["type"] != "clock.tick")


def test_criminal_seizure_has_no_clock_administrative_one_has_30_days(scope_world, rng):
    s = Story(rng)
    s.add("property.seized", "2025-03-03 10:00", case="A1", ref="KY1", kind="seize",
          scope="criminal")
    s.add("property.seized", "2025-03-03 10:00", case="A1", ref="KY3", kind="seal",
          scope="criminal")
    start = s.add("property.seized", "2025-03-03 10:00", case="X2", ref="KY2", kind="seize",
                  scope="admin")
    for when in ("2025-03-27 00:00", "2025-03-31 00:00", "2025-04-03 00:00", "2025-04-04 00:00"):
        s.tick(when)
    for ref, case in (("KY1", "A1"), ("KY3", "A1"), ("KY2", "X2")):
        s.add("property.released", "2025-04-04 10:00", case=case, ref=ref)
    alerts = run_story(scope_world[:3], s, 5)
    client = scope_world[1].client()
    lib.print_ledger("law_scope", "seizures", sent=len(s.events), counted=counted(s.events),
                     clocks_expected=1, alerts_expected=5, alerts_sent=len(alerts))
    # 30 days from 03-03: last day 04-02, deadline 04-03 00:00, not moved.
    assert summary(alerts) == [
        ("property_hold_limit", "yellow", "firing", 0, at("2025-03-27 00:00")),
        ("property_hold_limit", "orange", "firing", 0, at("2025-03-31 00:00")),
        ("property_hold_limit", "red", "firing", 0, at("2025-04-03 00:00")),
        ("property_hold_limit", "red", "firing", 1, at("2025-04-04 00:00")),
        ("property_hold_limit", "red", "resolved", 0, at("2025-04-04 10:00")),
    ]
    assert {a["ref"] for a in alerts} == {"KY2"} and alerts[0]["cause"] == start["id"]
    # every seizure counted, criminal ones too; one clock stopped (late)
    assert client.hget(f"dw:d:2025-03-03:{UNIT}", "property.seized") == "3"
    assert client.hget("dw:m:2025-04:_all", "property.released") == "3"
    assert client.hget(f"dw:m:2025-04:{UNIT}", "resolved.property_hold_limit.late") == "1"
    assert client.get(f"dw:active:property_hold_limit:{UNIT}") == "0"
    assert_counters_exact(client, s.events)


def test_missing_or_invalid_scope_is_dead_lettered(scope_world, rng):
    cluster, redis, _, port = scope_world
    s = Story(rng)
    good = s.add("property.seized", "2025-03-03 10:00", case="X1", ref="KY1", kind="preserve",
                 scope="admin")
    valid = list(s.events)
    bad = [
        ev.valid_event(rng, "property.seized", at("2025-03-03 11:00"), UNIT, case="X1",
                       ref="KY4", kind="seize", scope=None),
        ev.valid_event(rng, "property.seized", at("2025-03-03 11:00"), UNIT, case="X1",
                       ref="KY5", kind="seize", scope="Admin"),
        ev.valid_event(rng, "case.accepted", at("2025-03-03 11:00"), UNIT, case="X6",
                       kind="admin", admin_type=None),
        ev.valid_event(rng, "decision.issued", at("2025-03-03 11:00"), UNIT, case="X1",
                       ref="CF7", kind="penalty", publish="maybe"),
    ]
    lib.produce(cluster.bootstrap, EVENT_TOPIC, ev.to_messages(valid + bad))
    client = redis.client()
    wait_applied(cluster.bootstrap, client)
    records = lib.consume_all(cluster.bootstrap, DEAD_LETTER_TOPIC, count=4, timeout=30,
                              settle=0.5)
    letters = [(r.headers["dw.reason"].decode(), r.headers["dw.detail"].decode())
               for r in records]
    samples = scrape(port)
    lib.print_ledger("law_scope", "dead_letters", sent=len(valid) + len(bad),
                     applied=len(valid), dead_lettered=len(letters))
    assert letters == [
        ("missing_key",
         "key 'scope' is required for type property.seized (one of criminal, admin)"),
        ("bad_value",
         "scope 'Admin' is not valid for type property.seized (one of criminal, admin)"),
        ("missing_key",
         "key 'admin_type' is required for type case.accepted kind admin "
         "(one of public_security, other)"),
        ("bad_value",
         "publish 'maybe' is not valid for type decision.issued (one of required, exempt)"),
    ]
    assert [r.value for r in records] == [ev.pack(event) for event in bad]
    assert value(samples, "duewatch_events_rejected_total", reason="missing_key") == 2
    assert value(samples, "duewatch_events_rejected_total", reason="bad_value") == 2
    assert value(samples, "duewatch_events_applied_total") == 1
    assert client.hget(f"dw:d:2025-03-03:{UNIT}", "property.seized") == "1"
    assert client.get(f"dw:active:evidence_preservation:{UNIT}") == "1"
    assert client.exists(f"dw:clock:evidence_preservation:{good['ref']}") == 1
    assert client.get(f"dw:active:property_hold_limit:{UNIT}") is None
    assert_counters_exact(client, valid)


def test_other_administrative_case_has_90_days_public_security_case_30(scope_world, rng):
    s = Story(rng)
    s.add("case.accepted", "2025-03-03 10:00", case="X9", kind="admin", admin_type="other")
    s.add("case.accepted", "2025-03-03 10:00", case="X10", kind="admin",
          admin_type="public_security")
    s.add("case.accepted", "2025-03-03 10:00", case="A11", kind="criminal")
    # the criminal case has its filing review (criminal_filing_review), no
    # administrative limit: filed the next day, it sends nothing
    s.add("case.filed", "2025-03-04 10:00", case="A11")
    s.tick("2025-03-27 00:00")
    s.tick("2025-03-31 00:00")
    s.add("case.closed", "2025-04-01 10:00", case="X10")
    for when in ("2025-05-20 00:00", "2025-05-28 00:00", "2025-06-04 00:00", "2025-06-05 00:00"):
        s.tick(when)
    s.add("case.closed", "2025-06-05 10:00", case="X9")
    alerts = run_story(scope_world[:3], s, 8)
    client = scope_world[1].client()
    lib.print_ledger("law_scope", "admin_cases", sent=len(s.events), counted=counted(s.events),
                     clocks_expected=2, alerts_expected=8, alerts_sent=len(alerts))
    # 治安 X10: 30 days, last day 04-02; other X9: 90 days from 03-03 end
    # on Sunday 06-01 in the 端午 holiday (05-31..06-02), moved to 06-03.
    assert summary(alerts) == [
        ("admin_case_limit", "yellow", "firing", 0, at("2025-03-27 00:00")),
        ("admin_case_limit", "orange", "firing", 0, at("2025-03-31 00:00")),
        ("admin_case_limit", "orange", "resolved", 0, at("2025-04-01 10:00")),
        ("admin_penalty_case_limit", "yellow", "firing", 0, at("2025-05-20 00:00")),
        ("admin_penalty_case_limit", "orange", "firing", 0, at("2025-05-28 00:00")),
        ("admin_penalty_case_limit", "red", "firing", 0, at("2025-06-04 00:00")),
        ("admin_penalty_case_limit", "red", "firing", 1, at("2025-06-05 00:00")),
        ("admin_penalty_case_limit", "red", "resolved", 0, at("2025-06-05 10:00")),
    ]
    assert [a["ref"] for a in alerts] == ["X10"] * 3 + ["X9"] * 5
    assert alerts[3]["deadline"] == at("2025-06-04 00:00")
    assert alerts[3]["text"] == ("行政案件办案期限（案件X9）将于2025-06-03到期，剩余15天，"
                                 "请及时作出行政处罚决定或依法处理。")
    assert client.hget(f"dw:d:2025-03-03:{UNIT}", "case.accepted") == "3"
    assert client.hget(f"dw:m:2025-03:{UNIT}", "resolved.criminal_filing_review.ontime") == "1"
    assert client.hget(f"dw:m:2025-04:{UNIT}", "resolved.admin_case_limit.ontime") == "1"
    assert client.hget(f"dw:m:2025-06:{UNIT}", "resolved.admin_penalty_case_limit.late") == "1"
    assert_counters_exact(client, s.events)


def test_exempt_decision_has_no_clock_others_7_or_20_working_days(scope_world, rng):
    s = Story(rng)
    s.add("decision.issued", "2025-09-26 10:00", case="X1", ref="CF1", kind="penalty",
          publish="exempt")
    s.add("decision.issued", "2025-09-26 10:00", case="X1", ref="CF2", kind="penalty",
          publish="required")
    s.add("decision.issued", "2025-09-26 10:00", case="X1", ref="CF3", kind="other",
          publish="required")
    s.add("decision.issued", "2025-09-26 10:00", case="X1", ref="CF4", kind="other",
          publish="exempt")
    for when in ("2025-10-11 00:00", "2025-10-14 00:00"):
        s.tick(when)
    s.add("decision.published", "2025-10-14 12:00", case="X1", ref="CF2")
    for when in ("2025-10-24 00:00", "2025-10-31 00:00", "2025-11-01 00:00"):
        s.tick(when)
    s.add("decision.published", "2025-11-01 09:00", case="X1", ref="CF3")
    s.tick("2025-12-31 00:00")
    s.tick("2026-03-01 00:00")
    alerts = run_story(scope_world[:3], s, 7)
    client = scope_world[1].client()
    lib.print_ledger("law_scope", "decisions", sent=len(s.events), counted=counted(s.events),
                     clocks_expected=2, alerts_expected=7, alerts_sent=len(alerts))
    # CF2 (处罚): 7 working days across National Day, last day 10-13; CF3
    # (other): 20 working days, last day 10-30; CF1, CF4 exempt: nothing,
    # months later still.
    assert summary(alerts) == [
        ("decision_publication", "orange", "firing", 0, at("2025-10-11 00:00")),
        ("decision_publication", "red", "firing", 0, at("2025-10-14 00:00")),
        ("decision_publication", "red", "resolved", 0, at("2025-10-14 12:00")),
        ("decision_publication_other", "orange", "firing", 0, at("2025-10-24 00:00")),
        ("decision_publication_other", "red", "firing", 0, at("2025-10-31 00:00")),
        ("decision_publication_other", "red", "firing", 1, at("2025-11-01 00:00")),
        ("decision_publication_other", "red", "resolved", 0, at("2025-11-01 09:00")),
    ]
    assert [a["ref"] for a in alerts] == ["CF2"] * 3 + ["CF3"] * 4
    assert client.hget(f"dw:m:2025-09:{UNIT}", "decision.issued") == "4"
    assert client.get(f"dw:active:decision_publication:{UNIT}") == "0"
    assert client.get(f"dw:active:decision_publication_other:{UNIT}") == "0"
    assert client.zcard(f"dw:overdue:decision_publication:{UNIT}") == 0
    assert_counters_exact(client, s.events)
