"""End-to-end stories of rule versions by effective date (issue 14), in
event-time mode, each asserting the exact sequence of alerts on the output
topic: a clock follows the version of its rule in force on its start date
(the starting event's local date, Asia/Shanghai) for its whole life, also
when it is extended after a later version took effect.

  - the test variant golden_versioned (tests/golden/rules-extra.conf: 30
    days and one extension until 2025-12-31, 20 days and two extensions from
    2026-01-01; test figures, not the law): a clock started 2025-12-31 23:30
    and extended twice in January 2026 raises a violation at the second
    extension, one started 2026-01-01 00:30 and extended the same way none,
    and each alert carries its version's basis;
  - the shipped admin_case_limit: the 2025 revision of 治安管理处罚法 takes
    effect on 2026-01-01, but its case-handling-limit text was not found
    (README "Rule versions"), so its version keeps the 2012 figures: a 治安
    case accepted 2025-12-31 and one accepted 2026-01-05, each extended
    twice, both raise a violation; their alerts' basis says which version.
"""

import pytest

import duewatch_testlib as lib
from test_clocks import EVENT_MODE, TOPICS, UNIT, Story, at, run_story, summary
from test_law_stops_caps import counters, violation_id

SUITE = "law_versions"
EXTRA_RULES = "tests/golden/rules-extra.conf"


@pytest.fixture
def versions_world(tmp_path, mock_cluster_factory, redis_server, daemon_factory):
    """The shipped rules with the golden table's test variants appended (as
    tests/e2e/test_golden.py loads them), in event-time mode."""
    rules_file = tmp_path / "rules.conf"
    rules_file.write_text((lib.REPO_ROOT / "conf/rules.conf").read_text(encoding="utf-8") + "\n"
                          + (lib.REPO_ROOT / EXTRA_RULES).read_text(encoding="utf-8"),
                          encoding="utf-8")
    cluster = mock_cluster_factory(topics=TOPICS)
    daemon = daemon_factory({**EVENT_MODE, "rules_file": str(rules_file)}, cluster=cluster,
                            wait_for=r"kafka: consuming duewatch\.events")
    return cluster, redis_server, daemon




def test_each_clock_follows_the_version_of_its_start_date(versions_world, rng):
    s = Story(rng)
    seized = {"case": "A1", "kind": "seize", "scope": "criminal"}
    s.add("property.seized", "2025-12-31 23:30", ref="W1", **seized)
    s.add("property.seized", "2026-01-01 00:30", ref="W2", **seized)
    for when in ("2026-01-05 09:00", "2026-01-08 09:00"):
        for ref in ("W1", "W2"):
            s.add("property.extended", when, case="A1", ref=ref, days=10)
    second = s.events[-2]  # W1's second extension
    s.tick("2026-02-06 00:00")
    s.tick("2026-02-10 00:00")
    s.add("property.released", "2026-02-11 10:00", case="A1", ref="W2")
    s.tick("2026-02-18 00:00")
    s.add("property.released", "2026-02-19 10:00", case="A1", ref="W1")
    alerts = run_story(versions_world, s, 6)
    lib.print_ledger(SUITE, "golden_versioned", events=len(s.events), alerts_expected=6,
                     alerts_delivered=len(alerts))
    # W1, first version: 12-31 + 30 = 01-30; + 10 = 02-09; + 10 = 02-19 (Spring
    # Festival) moved to 02-24: yellow 7 days before at 02-18.  Its second
    # extension goes beyond "once", though made after 2026-01-01.
    # W2, the version from 2026-01-01: 01-01 + 20 = 01-21; + 10 = Saturday 01-31
    # moved to 02-02; + 10 = 02-12: yellow 02-06, orange 02-10; two extensions
    # are within its cap.
    assert summary(alerts) == [
        ("golden_versioned", "violation", "firing", 2, second["ts"]),
        ("golden_versioned", "yellow", "firing", 0, at("2026-02-06 00:00")),
        ("golden_versioned", "orange", "firing", 0, at("2026-02-10 00:00")),
        ("golden_versioned", "orange", "resolved", 0, at("2026-02-11 10:00")),
        ("golden_versioned", "yellow", "firing", 0, at("2026-02-18 00:00")),
        ("golden_versioned", "yellow", "resolved", 0, at("2026-02-19 10:00")),
    ]
    assert [a["ref"] for a in alerts] == ["W1", "W2", "W2", "W2", "W1", "W1"]
    w1_deadline, w2_deadline = at("2026-02-25 00:00"), at("2026-02-13 00:00")
    assert [a["deadline"] for a in alerts] == [w1_deadline] + [w2_deadline] * 3 + \
        [w1_deadline] * 2
    assert alerts[0]["alert_id"] == violation_id("golden_versioned", "W1", w1_deadline, 2)
    assert "第2次延长超出法律规定（测试用：延长一次，不超过三十日），期限已按记录延至2026-02-24" in \
        alerts[0]["text"]
    first_basis = "黄金用例表的规则变体（测试用），2025-12-31 及以前起算的版本；法律依据见各用例的 basis"
    later_basis = "黄金用例表的规则变体（测试用），2026-01-01 起起算的版本（测试数字，不是法律规定）"
    assert [a["basis"] for a in alerts] == [first_basis] + [later_basis] * 3 + [first_basis] * 2
    assert alerts[3]["late"] is False and alerts[5]["late"] is False
    client = versions_world[1].client()
    assert counters(client, "m:2026-01", "violation.golden_versioned") == ("1", "1")
    assert counters(client, "m:2026-02", "resolved.golden_versioned.ontime") == ("2", "2")


def test_shipped_admin_case_versions_keep_the_2012_figures(versions_world, rng):
    s = Story(rng)
    case = {"kind": "admin", "admin_type": "public_security"}
    s.add("case.accepted", "2025-12-31 10:00", case="ZA1", subject="P1", **case)
    s.add("case.accepted", "2026-01-05 10:00", case="ZA2", subject="P2", **case)
    for when in ("2026-01-20 09:00", "2026-02-01 09:00"):
        for number in ("ZA1", "ZA2"):
            s.add("case.extended", when, case=number, days=10)
    second = s.events[-2]["ts"]
    alerts = run_story(versions_world, s, 2)
    lib.print_ledger(SUITE, "admin_case_limit", events=len(s.events), alerts_expected=2,
                     alerts_delivered=len(alerts))
    # ZA1: 12-31 + 30 = 01-30; + 10 = 02-09; + 10 = 02-19 moved to 02-24.
    # ZA2: 01-05 + 30 = 02-04; + 10 = 02-14 (a working Saturday); + 10 = 02-24.
    assert summary(alerts) == [
        ("admin_case_limit", "violation", "firing", 2, second),
        ("admin_case_limit", "violation", "firing", 2, second),
    ]
    assert [a["case"] for a in alerts] == ["ZA1", "ZA2"]
    assert all(a["deadline"] == at("2026-02-25 00:00") for a in alerts)
    assert all("治安管理处罚法第九十九条：案情重大、复杂的，经上一级公安机关批准，可以延长三十日" in a["text"]
               for a in alerts)
    assert alerts[0]["basis"].startswith("《中华人民共和国治安管理处罚法》（2012年修正）第九十九条：")
    assert alerts[1]["basis"].startswith("《中华人民共和国治安管理处罚法》（2025年修订，2026年1月1日起施行）"
                                         "办理治安案件期限的条文原文未查到")
    client = versions_world[1].client()
    assert counters(client, "m:2026-02", "violation.admin_case_limit") == ("2", "2")
