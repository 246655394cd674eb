"""End-to-end stories of the criminal filing review (应立未立, issue 14), in
event-time mode, each asserting the exact sequence of alerts on the output
topic, the dead letters and the counters in Redis.

公安部关于改革完善受案立案制度的意见 (公通字〔2015〕32号), 及时审查办理:
"刑事案件立案审查期限原则上不超过3日；涉嫌犯罪线索需要查证的，立案审查期限
不超过7日；重大疑难复杂案件，经县级以上公安机关负责人批准，立案审查期限可以
延长至30日。"  Rule criminal_filing_review: a criminal matter accepted
(case.accepted kind=criminal) has 3 days, the start day not counted, until
it is filed (case.filed) or filing is refused (case.filing_refused);
extensions (case.extended) may bring it to 7 days in all, or to 30 with the
ground `complex` (重大疑难复杂); another ground (a criminal detention's
roving, repeated, gang) does not unlock the 30.

  - filed on day 3 and refused on day 3: orange, then resolved on time;
  - not filed: red and its repeat, then filed late;
  - extended to 7 and to 30 with complex: no alert; to 31 with complex, and
    to 30 with a detention's ground: one violation each;
  - case.filing_refused without its case, a ground the contract does not
    list: dead-lettered.
"""

import duewatch_testlib as lib
import events as ev
from ingest_checks import EVENT_TOPIC, assert_counters_exact, wait_applied
from test_clocks import UNIT, Story, at, run_story, summary
from test_law_stops_caps import violation_id
from test_metrics import scrape, value
# scope_world: the shipped rules in event-time mode, with the metrics endpoint
from test_law_scope import scope_world  # noqa: F401

SUITE = "law_filing"
RULE = "criminal_filing_review"
DEAD_LETTER_TOPIC = "duewatch.deadletter"
BASIS = ("《公安部关于改革完善受案立案制度的意见》（公通字〔2015〕32号）“及时审查办理”：“刑事案件立案"
         "审查期限原则上不超过3日；涉嫌犯罪线索需要查证的，立案审查期限不超过7日；重大疑难复杂案件，"
         "经县级以上公安机关负责人批准，立案审查期限可以延长至30日”")
LIMIT = ("公安部关于改革完善受案立案制度的意见：涉嫌犯罪线索需要查证的，立案审查期限不超过7日；"
         "重大疑难复杂案件，经县级以上公安机关负责人批准，立案审查期限可以延长至30日")




def counters(client, bucket, field):
    """field's count in the day/week/month hash `bucket` for UNIT and _all."""
    return (client.hget(f"dw:{bucket}:{UNIT}", field), client.hget(f"dw:{bucket}:_all", field))


def test_filed_or_refused_on_day_3_is_on_time(scope_world, rng):
    s = Story(rng)
    first = s.add("case.accepted", "2025-03-03 09:00", case="F1", kind="criminal")
    second = s.add("case.accepted", "2025-03-04 09:00", case="F2", kind="criminal")
    # an administrative case has no filing review
    s.add("case.accepted", "2025-03-04 09:30", case="X1", kind="admin",
          admin_type="public_security")
    s.tick("2025-03-06 00:00")
    filed = s.add("case.filed", "2025-03-06 16:00", case="F1")
    s.tick("2025-03-07 00:00")
    refused = s.add("case.filing_refused", "2025-03-07 11:00", case="F2")
    s.add("case.closed", "2025-03-07 12:00", case="X1")
    for when in ("2025-03-08 00:00", "2025-03-09 00:00"):
        s.tick(when)
    alerts = run_story(scope_world[:3], s, 4)
    lib.print_ledger(SUITE, "on_time", events=len(s.events), alerts_expected=4,
                     alerts_delivered=len(alerts))
    # F1: 3 days from 03-03, last day 03-06, deadline 03-07 00:00, orange a
    # day before; F2 a day later
    assert summary(alerts) == [
        (RULE, "orange", "firing", 0, at("2025-03-06 00:00")),
        (RULE, "orange", "resolved", 0, at("2025-03-06 16:00")),
        (RULE, "orange", "firing", 0, at("2025-03-07 00:00")),
        (RULE, "orange", "resolved", 0, at("2025-03-07 11:00")),
    ]
    assert [a["ref"] for a in alerts] == ["F1", "F1", "F2", "F2"]
    assert [a["deadline"] for a in alerts] == [at("2025-03-07 00:00")] * 2 + \
        [at("2025-03-08 00:00")] * 2
    assert [a["cause"] for a in alerts] == [first["id"]] * 2 + [second["id"]] * 2
    assert alerts[0]["text"] == ("刑事案件立案审查（案件F1）将于2025-03-06到期，剩余1天，"
                                 "请及时作出立案或不予立案决定。")
    assert alerts[1]["resolved_by"] == filed["id"] and alerts[1]["late"] is False
    assert alerts[3]["resolved_by"] == refused["id"] and alerts[3]["late"] is False
    assert alerts[3]["text"] == "刑事案件立案审查（案件F2）已在期限内办结，预警解除。"
    assert all(a["basis"] == BASIS for a in alerts)
    client = scope_world[1].client()
    assert client.get(f"dw:active:{RULE}:{UNIT}") == "0"
    assert counters(client, "m:2025-03", f"resolved.{RULE}.ontime") == ("2", "2")
    assert counters(client, "m:2025-03", f"alert.{RULE}.red") == (None, None)
    assert counters(client, "d:2025-03-07", "case.filing_refused") == ("1", "1")
    assert_counters_exact(client, s.events)


def test_not_filed_goes_red_and_a_late_filing_is_late(scope_world, rng):
    s = Story(rng)
    s.add("case.accepted", "2025-03-03 09:00", case="F3", kind="criminal")
    for when in ("2025-03-06 00:00", "2025-03-07 00:00", "2025-03-08 00:00"):
        s.tick(when)
    filed = s.add("case.filed", "2025-03-08 10:00", case="F3")
    s.tick("2025-03-09 00:00")
    alerts = run_story(scope_world[:3], s, 4)
    lib.print_ledger(SUITE, "late", events=len(s.events), alerts_expected=4,
                     alerts_delivered=len(alerts))
    assert summary(alerts) == [
        (RULE, "orange", "firing", 0, at("2025-03-06 00:00")),
        (RULE, "red", "firing", 0, at("2025-03-07 00:00")),
        (RULE, "red", "firing", 1, at("2025-03-08 00:00")),
        (RULE, "red", "resolved", 0, at("2025-03-08 10:00")),
    ]
    assert alerts[1]["text"] == ("刑事案件立案审查（案件F3）已于2025-03-06到期，"
                                 "请及时作出立案或不予立案决定。")
    assert alerts[2]["text"] == ("刑事案件立案审查（案件F3）已于2025-03-06到期，已超期1天，"
                                 "请及时作出立案或不予立案决定。")
    assert alerts[3]["resolved_by"] == filed["id"] and alerts[3]["late"] is True
    # 34 hours past the deadline count as 2 days
    assert alerts[3]["text"] == "刑事案件立案审查（案件F3）已办结，超期2天，预警解除。"
    client = scope_world[1].client()
    assert client.get(f"dw:active:{RULE}:{UNIT}") == "0"
    assert client.zcard(f"dw:overdue:{RULE}:{UNIT}") == 0
    assert counters(client, "m:2025-03", f"resolved.{RULE}.late") == ("1", "1")
    assert counters(client, "m:2025-03", f"alert.{RULE}.red") == ("2", "2")


def test_extensions_to_7_and_30_are_lawful_beyond_is_a_violation(scope_world, rng):
    s = Story(rng)
    for case in ("F4", "F5", "F6", "F7"):
        s.add("case.accepted", "2025-03-03 09:00", case=case, kind="criminal")
    # 3 + 4 = 7 days in all: leads to verify, lawful without a ground
    s.add("case.extended", "2025-03-05 09:00", case="F4", days=4)
    # 3 + 27 = 30 days in all, 重大疑难复杂 (complex): lawful
    s.add("case.extended", "2025-03-05 09:30", case="F5", days=27, ground="complex")
    # 3 + 28 = 31 days: beyond "延长至30日" whatever the ground
    too_long = s.add("case.extended", "2025-03-05 10:00", case="F6", days=28, ground="complex")
    # 3 + 27 = 30 days on a criminal detention's ground: counts as none, 7 days
    wrong_ground = s.add("case.extended", "2025-03-05 11:00", case="F7", days=27,
                         ground="roving")
    s.add("case.filed", "2025-03-09 10:00", case="F4")
    for case in ("F5", "F6", "F7"):
        s.add("case.filing_refused", "2025-03-20 10:00", case=case)
    s.tick("2025-04-10 00:00")
    alerts = run_story(scope_world[:3], s, 2)
    lib.print_ledger(SUITE, "extensions", events=len(s.events), alerts_expected=2,
                     alerts_delivered=len(alerts))
    assert summary(alerts) == [
        (RULE, "violation", "firing", 1, too_long["ts"]),
        (RULE, "violation", "firing", 1, wrong_ground["ts"]),
    ]
    # F6: last day 03-06 + 28 = 04-03; F7: 03-06 + 27 = 04-02
    assert [(a["ref"], a["deadline"]) for a in alerts] == [
        ("F6", at("2025-04-04 00:00")), ("F7", at("2025-04-03 00:00"))]
    assert alerts[0]["alert_id"] == violation_id(RULE, "F6", at("2025-04-04 00:00"), 1)
    assert alerts[1]["alert_id"] == violation_id(RULE, "F7", at("2025-04-03 00:00"), 1)
    assert all(a["basis"] == BASIS for a in alerts)
    assert alerts[0]["text"] == (f"刑事案件立案审查（案件F6）第1次延长超出法律规定（{LIMIT}），"
                                 "期限已按记录延至2025-04-03，请核查延长的依据和审批。")
    assert alerts[1]["text"] == (f"刑事案件立案审查（案件F7）第1次延长超出法律规定（{LIMIT}），"
                                 "期限已按记录延至2025-04-02，请核查延长的依据和审批。")
    client = scope_world[1].client()
    assert counters(client, "d:2025-03-05", f"violation.{RULE}") == ("2", "2")
    assert counters(client, "m:2025-03", f"resolved.{RULE}.ontime") == ("4", "4")
    assert client.get(f"dw:active:{RULE}:{UNIT}") == "0"


def test_refusal_without_case_and_an_unknown_ground_are_dead_lettered(scope_world, rng):
    cluster, redis, _, port = scope_world
    s = Story(rng)
    s.add("case.accepted", "2025-03-03 09:00", case="F8", kind="criminal")
    valid = list(s.events)
    bad = [
        ev.valid_event(rng, "case.filing_refused", at("2025-03-04 10:00"), UNIT, case=None),
        ev.valid_event(rng, "case.extended", at("2025-03-04 11:00"), UNIT, case="F8", days=27,
                       ground="Complex"),
    ]
    lib.produce(cluster.bootstrap, EVENT_TOPIC, ev.to_messages(valid + bad))
    client = redis.client()
    wait_applied(cluster.bootstrap, client)
    records = lib.consume_all(cluster.bootstrap, DEAD_LETTER_TOPIC, count=2, timeout=30,
                              settle=0.5)
    letters = [(r.headers["dw.reason"].decode(), r.headers["dw.detail"].decode())
               for r in records]
    samples = scrape(port)
    lib.print_ledger(SUITE, "dead_letters", sent=len(valid) + len(bad), applied=len(valid),
                     dead_lettered=len(letters))
    assert letters == [
        ("missing_key", "key 'case' is required for type case.filing_refused"),
        ("bad_kind", "ground 'Complex' is not one of roving, repeated, gang, complex"),
    ]
    assert [r.value for r in records] == [ev.pack(event) for event in bad]
    assert value(samples, "duewatch_events_rejected_total", reason="missing_key") == 1
    assert value(samples, "duewatch_events_rejected_total", reason="bad_kind") == 1
    assert value(samples, "duewatch_events_applied_total") == 1
    # the clock runs on, unextended: 3 days
    assert client.get(f"dw:active:{RULE}:{UNIT}") == "1"
    assert client.exists(f"dw:clock:{RULE}:F8") == 1
    assert_counters_exact(client, valid)
