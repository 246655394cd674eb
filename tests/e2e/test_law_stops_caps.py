"""End-to-end stories of the stop events and extension caps the law sets
(issue 14), in event-time mode, each asserting the exact sequence of alerts
on the output topic and the counters in Redis:

  - a criminal detention whose arrest is requested on the third day
    (刑事诉讼法 第九十一条 "应当在拘留后的三日以内，提请人民检察院审查批准")
    stops on time: no red while the procuratorate reviews;
  - one without a request goes red and repeats;
  - a bail extended (第七十九条 sets a maximum, no extension) raises one
    violation alert and the clock still follows the extension;
  - a detention extended to 31 days in total with a ground raises one
    violation ("延长至三十日" is a total), one extended to 30 with a ground
    none;
  - a bail whose decision's `until` goes beyond 12 months raises one
    violation (seq 0) at the start and follows the document; one whose
    `until` is earlier raises none;
  - a red alert states what the law requires (the rule's overdue_text) and
    every alert carries the rule's basis.
"""

import hashlib

import duewatch_testlib as lib
# clock_world: the shipped rules in event-time mode, as test_clocks.py runs them
from test_clocks import UNIT, Story, at, clock_world, run_story, summary  # noqa: F401

SUITE = "law_stops_caps"


def violation_id(rule, key, deadline, number):
    """The alert id of a violating extension (clock_engine.h): the rule, the
    key, the deadline as extended, level "violation" and the extension's
    number."""
    return hashlib.sha1(f"{rule}|{key}|{deadline}|violation|{number}".encode()).hexdigest()[:32]


def counters(client, bucket, field):
    """field's count in the day/week/month hash `bucket` for UNIT and _all."""
    return (client.hget(f"dw:{bucket}:{UNIT}", field), client.hget(f"dw:{bucket}:_all", field))


def test_arrest_requested_on_day_3_stops_on_time(clock_world, rng):
    s = Story(rng)
    start = s.add("measure.started", "2025-03-03 09:00", case="A1", ref="XJ1", subject="P1",
                  kind="criminal_detention")
    s.tick("2025-03-06 00:00")
    request = s.add("measure.arrest_requested", "2025-03-06 16:00", case="A1", ref="XJ1")
    # the procuratorate's seven days pass: nothing more for this clock
    for when in ("2025-03-07 00:00", "2025-03-08 00:00", "2025-03-13 00:00"):
        s.tick(when)
    alerts = run_story(clock_world, s, 2)
    lib.print_ledger(SUITE, "arrest_requested_day_3", events=len(s.events), alerts_expected=2,
                     alerts_delivered=len(alerts))
    # 3 days from 03-03: last day 03-06, deadline 03-07 00:00, orange a day before
    assert summary(alerts) == [
        ("criminal_detention_limit", "orange", "firing", 0, at("2025-03-06 00:00")),
        ("criminal_detention_limit", "orange", "resolved", 0, at("2025-03-06 16:00")),
    ]
    assert all(a["deadline"] == at("2025-03-07 00:00") and a["cause"] == start["id"]
               for a in alerts)
    assert alerts[1]["resolved_by"] == request["id"] and alerts[1]["late"] is False
    assert alerts[1]["text"] == "刑事拘留提请批准逮捕（案件A1，人员P1）已在期限内办结，预警解除。"
    client = clock_world[1].client()
    assert client.get(f"dw:active:criminal_detention_limit:{UNIT}") == "0"
    assert client.zcard(f"dw:overdue:criminal_detention_limit:{UNIT}") == 0
    assert counters(client, "m:2025-03", "resolved.criminal_detention_limit.ontime") == ("1", "1")
    assert counters(client, "m:2025-03", "alert.criminal_detention_limit.red") == (None, None)
    assert counters(client, "d:2025-03-06", "measure.arrest_requested") == ("1", "1")


def test_detention_without_request_goes_red(clock_world, rng):
    s = Story(rng)
    s.add("measure.started", "2025-03-03 09:00", case="A2", ref="XJ2", subject="P2",
          kind="criminal_detention")
    for when in ("2025-03-06 00:00", "2025-03-07 00:00", "2025-03-08 00:00"):
        s.tick(when)
    alerts = run_story(clock_world, s, 3)
    lib.print_ledger(SUITE, "no_request", events=len(s.events), alerts_expected=3,
                     alerts_delivered=len(alerts))
    assert summary(alerts) == [
        ("criminal_detention_limit", "orange", "firing", 0, at("2025-03-06 00:00")),
        ("criminal_detention_limit", "red", "firing", 0, at("2025-03-07 00:00")),
        ("criminal_detention_limit", "red", "firing", 1, at("2025-03-08 00:00")),
    ]
    assert alerts[2]["text"] == ("刑事拘留提请批准逮捕（案件A2，人员P2）已于2025-03-06到期，"
                                 "已超期1天，请及时提请批准逮捕或变更强制措施。")
    assert all(a["basis"].startswith("《中华人民共和国刑事诉讼法》第九十一条：“公安机关对被拘留的人，"
                                      "认为需要逮捕的，应当在拘留后的三日以内") for a in alerts)
    client = clock_world[1].client()
    assert client.get(f"dw:active:criminal_detention_limit:{UNIT}") == "1"
    assert client.zrange(f"dw:overdue:criminal_detention_limit:{UNIT}", 0, -1) == ["XJ2"]


def test_bail_extension_is_a_violation_and_the_clock_follows_it(clock_world, rng):
    s = Story(rng)
    start = s.add("measure.started", "2024-03-15 10:00", case="A3", ref="QB3", subject="P3",
                  kind="bail")
    extension = s.add("measure.extended", "2025-01-10 10:00", case="A3", ref="QB3", days=30)
    s.tick("2025-03-03 00:00")   # the yellow of the original term: not due any more
    s.tick("2025-04-02 00:00")   # the yellow of the extended term
    s.add("measure.ended", "2025-04-03 10:00", case="A3", ref="QB3")
    alerts = run_story(clock_world, s, 3)
    lib.print_ledger(SUITE, "bail_extended", events=len(s.events), alerts_expected=3,
                     alerts_delivered=len(alerts))
    # 2024-03-15 + 12 months = Saturday 2025-03-15, moved to Monday 03-17
    # (刑诉法 第一百零五条, not in custody); + 30 = 04-16, deadline 04-17 00:00;
    # 15 days before: 04-02
    deadline = at("2025-04-17 00:00")
    assert summary(alerts) == [
        ("bail_expiry", "violation", "firing", 1, extension["ts"]),
        ("bail_expiry", "yellow", "firing", 0, at("2025-04-02 00:00")),
        ("bail_expiry", "yellow", "resolved", 0, at("2025-04-03 10:00")),
    ]
    assert all(a["deadline"] == deadline and a["cause"] == start["id"] for a in alerts)
    assert alerts[0]["alert_id"] == violation_id("bail_expiry", "QB3", deadline, 1)
    assert alerts[0]["text"] == ("取保候审（案件A3，人员P3）第1次延长超出法律规定（刑事诉讼法第七十九条："
                                 "取保候审最长不得超过十二个月，不得延长），期限已按记录延至"
                                 "2025-04-16，请核查延长的依据和审批。")
    assert "resolved_by" not in alerts[0] and alerts[0]["provisional"] is False
    assert all("第七十九条：“取保候审最长不得超过十二个月”" in a["basis"] for a in alerts)
    assert alerts[2]["late"] is False
    client = clock_world[1].client()
    assert counters(client, "d:2025-01-10", "violation.bail_expiry") == ("1", "1")
    assert counters(client, "w:2025-W02", "violation.bail_expiry") == ("1", "1")
    assert counters(client, "m:2025-01", "violation.bail_expiry") == ("1", "1")
    assert counters(client, "m:2025-03", "violation.bail_expiry") == (None, None)
    assert counters(client, "m:2025-04", "resolved.bail_expiry.ontime") == ("1", "1")


def test_bail_red_states_what_the_law_requires(clock_world, rng):
    """A red alert says what the law requires once the term is over (the
    rule's overdue_text: 刑事诉讼法 第七十九条 "期限届满的，应当及时解除"), and
    carries the rule's basis."""
    s = Story(rng)
    s.add("measure.started", "2024-03-15 10:00", case="A6", ref="QB6", subject="P6",
          kind="bail")
    # 2024-03-15 + 12 months = Saturday 2025-03-15, moved to Monday 03-17
    for when in ("2025-03-02 00:00", "2025-03-15 00:00", "2025-03-18 00:00",
                 "2025-03-19 00:00"):
        s.tick(when)
    alerts = run_story(clock_world, s, 4)
    lib.print_ledger(SUITE, "bail_red", events=len(s.events), alerts_expected=4,
                     alerts_delivered=len(alerts))
    assert summary(alerts) == [
        ("bail_expiry", "yellow", "firing", 0, at("2025-03-03 00:00")),
        ("bail_expiry", "orange", "firing", 0, at("2025-03-15 00:00")),
        ("bail_expiry", "red", "firing", 0, at("2025-03-18 00:00")),
        ("bail_expiry", "red", "firing", 1, at("2025-03-19 00:00")),
    ]
    law = ("依法应当及时解除（刑事诉讼法第七十九条：取保候审、监视居住期限届满的，应当及时解除"
           "取保候审、监视居住），")
    assert alerts[1]["text"] == ("取保候审（案件A6，人员P6）将于2025-03-17到期，剩余3天，"
                                 "请及时解除或变更强制措施。")
    assert alerts[2]["text"] == ("取保候审（案件A6，人员P6）已于2025-03-17到期，" + law +
                                 "请及时解除或变更强制措施。")
    assert alerts[3]["text"] == ("取保候审（案件A6，人员P6）已于2025-03-17到期，已超期1天，" + law +
                                 "请及时解除或变更强制措施。")
    assert all(a["basis"].startswith("《中华人民共和国刑事诉讼法》第七十九条：“取保候审最长不得超过"
                                      "十二个月”") for a in alerts)


def test_bail_until_beyond_12_months_is_a_violation(clock_world, rng):
    s = Story(rng)
    beyond = s.add("measure.started", "2025-03-15 10:00", case="A7", ref="QB7", subject="P7",
                   kind="bail", until=at("2026-04-01 00:00"))
    # earlier than the law's 2026-03-16: the document is stricter, no violation
    s.add("measure.started", "2025-03-15 10:00", case="A8", ref="QB8", subject="P8",
          kind="bail", until=at("2025-09-15 00:00"))
    s.tick("2025-03-16 00:00")
    alerts = run_story(clock_world, s, 1)
    lib.print_ledger(SUITE, "bail_until_beyond", events=len(s.events), alerts_expected=1,
                     alerts_delivered=len(alerts))
    deadline = at("2026-04-01 00:00")
    assert summary(alerts) == [("bail_expiry", "violation", "firing", 0, beyond["ts"])]
    assert alerts[0]["ref"] == "QB7" and alerts[0]["deadline"] == deadline
    assert alerts[0]["alert_id"] == violation_id("bail_expiry", "QB7", deadline, 0)
    assert alerts[0]["text"] == ("取保候审（案件A7，人员P7）文书载明的期限超出法律规定（刑事诉讼法第七十九条："
                                 "取保候审最长不得超过十二个月，不得延长），期限已按文书记至"
                                 "2026-03-31，请核查期限的依据和审批。")
    client = clock_world[1].client()
    assert counters(client, "d:2025-03-15", "violation.bail_expiry") == ("1", "1")
    assert client.get(f"dw:active:bail_expiry:{UNIT}") == "2"


def test_detention_extended_to_31_days_is_a_violation(clock_world, rng):
    s = Story(rng)
    s.add("measure.started", "2025-03-03 09:00", case="A4", ref="XJ4", subject="P4",
          kind="criminal_detention")
    s.add("measure.started", "2025-03-03 09:00", case="A5", ref="XJ5", subject="P5",
          kind="criminal_detention")
    # 3 + 28 = 31 days in all, with a ground: beyond "延长至三十日"
    too_long = s.add("measure.extended", "2025-03-05 10:00", case="A4", ref="XJ4", days=28,
                     ground="roving")
    # 3 + 27 = 30 days in all, with a ground: lawful
    s.add("measure.extended", "2025-03-05 11:00", case="A5", ref="XJ5", days=27, ground="gang")
    s.tick("2025-03-20 00:00")
    for ref, case in (("XJ4", "A4"), ("XJ5", "A5")):
        s.add("measure.arrest_requested", "2025-03-20 10:00", case=case, ref=ref)
    s.tick("2025-04-10 00:00")
    alerts = run_story(clock_world, s, 1)
    lib.print_ledger(SUITE, "detention_31_days", events=len(s.events), alerts_expected=1,
                     alerts_delivered=len(alerts))
    # last day 03-06 + 28 = 04-03, deadline 04-04 00:00
    deadline = at("2025-04-04 00:00")
    assert summary(alerts) == [
        ("criminal_detention_limit", "violation", "firing", 1, too_long["ts"]),
    ]
    assert alerts[0]["ref"] == "XJ4" and alerts[0]["deadline"] == deadline
    assert alerts[0]["alert_id"] == violation_id("criminal_detention_limit", "XJ4", deadline, 1)
    assert alerts[0]["text"] == (
        "刑事拘留提请批准逮捕（案件A4，人员P4）第1次延长超出法律规定（刑事诉讼法第九十一条：提请审查批准"
        "的时间可以延长一日至四日；对于流窜作案、多次作案、结伙作案的重大嫌疑分子，可以延长至三十日），"
        "期限已按记录延至2025-04-03，请核查延长的依据和审批。")
    client = clock_world[1].client()
    assert counters(client, "m:2025-03", "violation.criminal_detention_limit") == ("1", "1")
    assert counters(client, "m:2025-03", "resolved.criminal_detention_limit.ontime") == \
        ("2", "2")
    assert client.get(f"dw:active:criminal_detention_limit:{UNIT}") == "0"
