"""End-to-end tests of `duewatch report` (scripts/duewatch): a private Redis is
filled by hand with the keys of the Issue 17 layout (period buckets with
<type>:<kind> and persons.* fields, end-of-day snapshots running.<rule> /
overdue.<rule>, dw:snapshot, the live overdue sets and clock records) for two
units over two months, and the report is read back in csv (exact rows),
text (Chinese, 80 display columns) and html (self-contained, rendered by
headless chromium into a non-blank screenshot)."""

import csv
import datetime
import io
import shutil
import subprocess
import time
import unicodedata

import pytest

import duewatch_testlib as lib
from test_tool import clock_record, run_tool, tool_config

U1, U2, U3 = "500112-XJ01", "500112-XJ02", "500112-XJ03"
RULES = ("bail_expiry", "rs_expiry", "detention_unexecuted", "criminal_detention_limit",
         "admin_case_limit", "property_hold_limit", "evidence_preservation",
         "decision_publication", "decision_publication_other", "admin_penalty_case_limit",
         "incident_unaccepted", "criminal_filing_review")
# The fixed figures in the order the report lists them, then per rule.
FIXED_FIGURES = (
    "incident.reported", "incident.reported:criminal", "incident.reported:admin",
    "incident.reported:other", "case.accepted:criminal", "case.accepted:admin",
    "case.accepted:public_security", "case.accepted:other", "case.filed",
    "persons.measure.started:criminal_detention", "persons.measure.started:bail",
    "persons.measure.started:rs", "persons.measure.started:rs_designated",
    "persons.detention.decided", "measure.started:criminal_detention", "measure.started:bail",
    "measure.started:rs", "measure.started:rs_designated", "detention.decided",
    "detention.executed", "property.seized:seize", "property.seized:seal",
    "property.seized:preserve", "property.seized:criminal", "property.seized:admin",
    "property.seized:seize:criminal", "property.seized:seize:admin",
    "property.seized:seal:criminal", "property.seized:seal:admin",
    "property.seized:preserve:criminal", "property.seized:preserve:admin",
    "decision.issued:required", "decision.published")
RULE_FIGURES = ("alert.{}.yellow", "alert.{}.orange", "alert.{}.red", "violation.{}",
                "resolved.{}.ontime", "resolved.{}.late", "ontime_rate.{}", "running.{}",
                "overdue.{}")
FIGURES = list(FIXED_FIGURES) + [template.format(rule) for template in RULE_FIGURES
                                 for rule in RULES]

# November 2026 (the period) and October 2026 (the previous one).
NOVEMBER = {
    "_all": {"incident.reported": 12, "incident.reported:criminal": 5,
             "incident.reported:admin": 6, "incident.reported:other": 1,
             "case.accepted": 9, "case.accepted:criminal": 4, "case.accepted:admin": 5,
             "case.accepted:public_security": 3, "case.accepted:admin:public_security": 3,
             "case.accepted:other": 2, "case.filed": 3,
             "measure.started": 6, "measure.started:bail": 4, "measure.started:rs": 1,
             "measure.started:criminal_detention": 1,
             "persons.measure.started:bail": 3, "persons.measure.started:rs": 1,
             "persons.measure.started:criminal_detention": 1,
             "detention.decided": 2, "persons.detention.decided": 2, "detention.executed": 1,
             "property.seized:seize": 2, "property.seized:seal": 1,
             "property.seized:criminal": 2, "property.seized:admin": 1,
             "property.seized:seize:criminal": 2, "property.seized:seal:admin": 1,
             "decision.issued:required": 4, "decision.issued:penalty:required": 4,
             "decision.published": 3,
             "alert.bail_expiry.yellow": 4, "alert.bail_expiry.red": 2,
             "alert.decision_publication.orange": 1, "violation.rs_expiry": 1,
             "resolved.bail_expiry.ontime": 5, "resolved.bail_expiry.late": 1,
             "resolved.decision_publication.ontime": 2,
             "resolved.decision_publication.late": 1},
    U1: {"incident.reported": 8, "incident.reported:criminal": 5,
         "incident.reported:admin": 3, "case.accepted:criminal": 4, "case.filed": 3,
         "measure.started:bail": 3, "persons.measure.started:bail": 2,
         "measure.started:criminal_detention": 1,
         "persons.measure.started:criminal_detention": 1,
         "property.seized:seize": 2, "property.seized:criminal": 2,
         "property.seized:seize:criminal": 2,
         "alert.bail_expiry.yellow": 3, "alert.bail_expiry.red": 2,
         "resolved.bail_expiry.ontime": 3, "resolved.bail_expiry.late": 1},
    U2: {"incident.reported": 4, "incident.reported:admin": 3,
         "incident.reported:other": 1, "case.accepted:admin": 5,
         "case.accepted:public_security": 3, "case.accepted:other": 2,
         "measure.started:bail": 1, "persons.measure.started:bail": 1,
         "measure.started:rs": 1, "persons.measure.started:rs": 1,
         "detention.decided": 2, "persons.detention.decided": 2, "detention.executed": 1,
         "property.seized:seal": 1, "property.seized:admin": 1,
         "property.seized:seal:admin": 1,
         "decision.issued:required": 4, "decision.published": 3,
         "alert.bail_expiry.yellow": 1, "alert.decision_publication.orange": 1,
         "violation.rs_expiry": 1, "resolved.bail_expiry.ontime": 2,
         "resolved.decision_publication.ontime": 2,
         "resolved.decision_publication.late": 1},
}
OCTOBER = {
    "_all": {"incident.reported": 10, "incident.reported:criminal": 4, "case.filed": 1,
             "measure.started:bail": 2, "persons.measure.started:bail": 2,
             "alert.bail_expiry.red": 1, "resolved.bail_expiry.ontime": 1,
             "resolved.bail_expiry.late": 1, "resolved.decision_publication.ontime": 1},
    U1: {"incident.reported": 10, "incident.reported:criminal": 4, "case.filed": 1,
         "measure.started:bail": 2, "persons.measure.started:bail": 2,
         "alert.bail_expiry.red": 1, "resolved.bail_expiry.ontime": 1,
         "resolved.bail_expiry.late": 1},
    # U2 has no October bucket; U3 only a September one (not in the report)
}
# End-of-day snapshots of the months' last days (the backlog at month end).
NOVEMBER_END = {
    "_all": {"running.bail_expiry": 6, "overdue.bail_expiry": 2, "running.rs_expiry": 1,
             "overdue.detention_unexecuted": 3, "running.detention_unexecuted": 3},
    U1: {"running.bail_expiry": 5, "overdue.bail_expiry": 2},
    U2: {"running.bail_expiry": 1, "running.rs_expiry": 1,
         "overdue.detention_unexecuted": 3, "running.detention_unexecuted": 3},
}
OCTOBER_END = {
    "_all": {"running.bail_expiry": 4, "overdue.bail_expiry": 1},
    U1: {"running.bail_expiry": 4, "overdue.bail_expiry": 1},
}
# overdue.bail_expiry of _all at the end of each Sunday (the weekly trend)
SUNDAYS = {"2026-10-04": 9, "2026-10-11": 1, "2026-10-18": 2, "2026-10-25": 2,
           "2026-11-01": 3, "2026-11-08": 5, "2026-11-15": 4, "2026-11-22": 3,
           "2026-11-29": 2}


def populate(client):
    """Writes the period buckets, snapshots and live views above (and keys
    the report must not read)."""
    for month, buckets in (("2026-11", NOVEMBER), ("2026-10", OCTOBER)):
        for unit, fields in buckets.items():
            client.hset(f"dw:m:{month}:{unit}", mapping=fields)
    for day, buckets in (("2026-11-30", NOVEMBER_END), ("2026-10-31", OCTOBER_END)):
        for unit, fields in buckets.items():
            client.hset(f"dw:d:{day}:{unit}", mapping=dict(fields, **{"incident.reported": 1}))
    for day, value in SUNDAYS.items():
        client.hset(f"dw:d:{day}:_all", mapping={"overdue.bail_expiry": value})
    client.set("dw:snapshot", "2026-12-03")
    client.hset(f"dw:m:2026-09:{U3}", mapping={"incident.reported": 50})
    client.hset(f"other:m:2026-11:{U1}", mapping={"incident.reported": 70})
    client.hset(f"dw:pm:2026-11:{U1}", mapping={"measure.started:bail|P1": 1})
    now = int(time.time() * 1000)
    deadline = now - (3 * 86400000 + 5 * 3600000 + 60000)
    client.zadd(f"dw:overdue:bail_expiry:{U1}", {"M1": deadline})
    client.zadd("dw:overdue:bail_expiry:_all", {"M1": deadline})
    client.set("dw:clock:bail_expiry:M1", clock_record(U1, "A1", "P1", deadline))


def csv_rows(text):
    return list(csv.reader(io.StringIO(text)))


def display_width(line):
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line)


@pytest.fixture
def filled(tmp_path, redis_server):
    """(config path) of a tool configuration on a Redis filled by populate()."""
    populate(redis_server.client())
    return tool_config(tmp_path, redis=redis_server)


def report(config, *args):
    result = run_tool("-c", config, "report", *args)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    return result.stdout


def test_csv_month_rows_are_exact(filled):
    rows = csv_rows(report(filled, "month", "2026-11", "--format", "csv"))
    assert rows[0] == ["period", "unit", "figure", "value", "previous"]
    units = ["_all", U1, U2]  # U3 has no November bucket; other: is another prefix
    assert [(r[1], r[2]) for r in rows[1:]] == [(u, f) for u in units for f in FIGURES]
    assert {r[0] for r in rows[1:]} == {"2026-11"}
    table = {(r[1], r[2]): (r[3], r[4]) for r in rows[1:]}
    expected = {
        ("_all", "incident.reported"): ("12", "10"),
        ("_all", "incident.reported:criminal"): ("5", "4"),
        ("_all", "case.accepted:public_security"): ("3", "0"),
        ("_all", "case.filed"): ("3", "1"),
        ("_all", "measure.started:bail"): ("4", "2"),
        ("_all", "persons.measure.started:bail"): ("3", "2"),
        ("_all", "persons.detention.decided"): ("2", "0"),
        ("_all", "property.seized:seize:criminal"): ("2", "0"),
        ("_all", "decision.issued:required"): ("4", "0"),
        ("_all", "alert.bail_expiry.red"): ("2", "1"),
        ("_all", "resolved.bail_expiry.ontime"): ("5", "1"),
        ("_all", "resolved.bail_expiry.late"): ("1", "1"),
        ("_all", "ontime_rate.bail_expiry"): ("0.8333", "0.5000"),
        ("_all", "ontime_rate.decision_publication"): ("0.6667", "1.0000"),
        ("_all", "ontime_rate.rs_expiry"): ("", ""),
        ("_all", "running.bail_expiry"): ("6", "4"),
        ("_all", "overdue.bail_expiry"): ("2", "1"),
        ("_all", "overdue.detention_unexecuted"): ("3", "0"),
        (U1, "incident.reported"): ("8", "10"),
        (U1, "measure.started:criminal_detention"): ("1", "0"),
        (U1, "persons.measure.started:criminal_detention"): ("1", "0"),
        (U1, "ontime_rate.bail_expiry"): ("0.7500", "0.5000"),
        (U1, "running.bail_expiry"): ("5", "4"),
        (U1, "overdue.bail_expiry"): ("2", "1"),
        (U2, "case.accepted:admin"): ("5", "0"),
        (U2, "case.accepted:other"): ("2", "0"),
        (U2, "measure.started:rs"): ("1", "0"),
        (U2, "persons.measure.started:rs"): ("1", "0"),
        (U2, "detention.executed"): ("1", "0"),
        (U2, "property.seized:seal:admin"): ("1", "0"),
        (U2, "decision.published"): ("3", "0"),
        (U2, "violation.rs_expiry"): ("1", "0"),
        (U2, "alert.decision_publication.orange"): ("1", "0"),
        (U2, "ontime_rate.bail_expiry"): ("1.0000", ""),
        (U2, "ontime_rate.decision_publication"): ("0.6667", ""),
        (U2, "running.rs_expiry"): ("1", "0"),
        (U2, "overdue.detention_unexecuted"): ("3", "0"),
    }
    for key, values in expected.items():
        assert table[key] == values, key
    # every other figure: the stored count, 0 when absent; rates empty
    for (unit, figure), values in table.items():
        if (unit, figure) in expected:
            continue
        if figure.startswith("ontime_rate."):
            assert values == ("", ""), (unit, figure)
            continue
        now = {**NOVEMBER.get(unit, {}), **NOVEMBER_END.get(unit, {})}.get(figure, 0)
        before = {**OCTOBER.get(unit, {}), **OCTOBER_END.get(unit, {})}.get(figure, 0)
        assert values == (str(now), str(before)), (unit, figure)


def test_csv_unit_quarter_year_and_default_period(filled, redis_server):
    client = redis_server.client()
    client.hset(f"dw:q:2026-Q4:{U1}", mapping={"case.filed": 7, "resolved.bail_expiry.ontime": 1})
    client.hset(f"dw:q:2026-Q3:{U1}", mapping={"case.filed": 2})
    client.hset("dw:y:2026:_all", mapping={"detention.decided": 11})
    client.hset("dw:y:2025:_all", mapping={"detention.decided": 13})

    rows = csv_rows(report(filled, "quarter", "2026-Q4", "--unit", U1, "--format", "csv"))
    assert {(r[0], r[1]) for r in rows[1:]} == {("2026-Q4", U1)}
    table = {r[2]: (r[3], r[4]) for r in rows[1:]}
    assert [r[2] for r in rows[1:]] == FIGURES
    assert table["case.filed"] == ("7", "2")
    assert table["ontime_rate.bail_expiry"] == ("1.0000", "")
    # backlog: the quarter's last day (2026-12-31) is not snapshotted yet
    # (dw:snapshot 2026-12-03): the snapshot of 2026-12-03, absent here: 0;
    # the previous quarter's: 2026-09-30, not written: 0
    assert table["running.bail_expiry"] == ("0", "0")

    rows = csv_rows(report(filled, "year", "2026", "--format", "csv", "--unit", "_all"))
    table = {r[2]: (r[3], r[4]) for r in rows[1:]}
    assert {r[1] for r in rows[1:]} == {"_all"} and table["detention.decided"] == ("11", "13")

    today = datetime.datetime.now(datetime.timezone(datetime.timedelta(hours=8))).date()
    client.hset(f"dw:d:{today}:{U2}", mapping={"case.filed": 4})
    rows = csv_rows(report(filled, "day", "--format", "csv"))
    assert {r[0] for r in rows[1:]} == {today.isoformat()}
    assert ("_all", "case.filed", "0", "0") in {tuple(r[1:]) for r in rows[1:]}
    assert (U2, "case.filed", "4", "0") in {tuple(r[1:]) for r in rows[1:]}

    rows = csv_rows(report(filled, "week", "2026-W48", "--format", "csv"))
    assert rows[1][0] == "2026-W48"


def test_text_is_chinese_and_fits_80_columns(filled, tmp_path):
    text = report(filled, "month", "2026-11")
    lines = text.splitlines()
    too_wide = [line for line in lines if display_width(line) > 80]
    assert not too_wide, too_wide
    assert lines[0] == "2026年11月 执法监督通报"
    assert "统计期间：2026-11-01 至 2026-11-30（Asia/Shanghai）" in lines
    assert "对比上期：2026年10月" in lines
    for label in ("接警", "受案：刑事案件", "刑事立案", "刑事拘留（人）", "取保候审（人）",
                  "指定居所监视居住（人）", "行政拘留（人）", "扣押", "先行登记保存",
                  "应公开的决定", "处罚决定按时公开率", "取保候审", "刑事拘留提请批准逮捕",
                  "警情应受未受", "黄色预警", "按时率", "期末超期", "各单位期末超期排名",
                  "当前超期事项", "期末数取自 2026-11-30 日终快照。"):
        assert label in text, label
    assert any(line.split() == ["接警", "12", "10", "+2"] for line in lines)
    assert any(line.split() == ["刑事立案", "3", "1", "+2"] for line in lines)
    bail = [line.split() for line in lines if line.startswith("取保候审  ")]
    assert ["取保候审", "4(0)", "0(0)", "2(1)", "0(0)"] in bail              # alerts
    assert ["取保候审", "5(1)", "1(1)", "83.3%", "50.0%", "+33.3个百分点"] in bail
    assert ["取保候审", "6(4)", "2(1)"] in bail                             # backlog
    assert ["处罚决定按时公开率", "66.7%", "100.0%", "-33.3个百分点"] in \
        [line.split() for line in lines]
    ranking = lines.index("八、各单位期末超期排名")
    assert lines[ranking + 3].split() == ["1", U2, "3", "0", "+3", "5", "0"]
    assert lines[ranking + 4].split() == ["2", U1, "2", "1", "+1", "5", "2"]
    overdue = [line for line in lines if line.startswith("取保候审  " + U1)]
    assert len(overdue) == 1 and overdue[0].split()[2:3] == ["M1"]
    assert "3天5小时" in overdue[0] and overdue[0].split()[-1] == "A1"

    # --unit: that unit alone, no ranking; a month without snapshot says so
    text = report(filled, "month", "2026-12", "--unit", U2)
    assert "范围：单位 500112-XJ02" in text and "各单位期末超期排名" not in text
    assert "期末数取自 2026-12-03 日终快照（本期尚未结束）。" in text
    text = report(filled, "month", "2026-11", "--unit", "_all")
    assert "范围：全局" in text and "各单位期末超期排名" not in text
    assert [line for line in text.splitlines() if " M1 " in line]  # every unit's overdue
    text = report(filled, "month", "2027-01")
    assert "本期尚无日终快照，期末在办与超期数按 0 计。" in text
    assert all(display_width(line) <= 80 for line in text.splitlines())


def test_bad_period_exits_2_with_a_message(filled):
    for args, message in ((("month", "2026-13"), "month '2026-13': expected YYYY-MM"),
                          (("week", "2026-W54"), "week '2026-W54': expected YYYY-Www"),
                          (("day", "2026-02-30"), "day '2026-02-30': expected YYYY-MM-DD"),
                          (("quarter", "2026-Q5"), "quarter '2026-Q5': expected YYYY-Qn"),
                          (("year", "26"), "year '26': expected YYYY"),
                          (("month", "2026-11-01"), "month '2026-11-01': expected")):
        result = run_tool("-c", filled, "report", *args)
        assert result.returncode == 2, args
        assert result.stdout == "" and result.stderr.startswith(f"duewatch: {message}"), \
            result.stderr
    result = run_tool("-c", filled, "report", "fortnight")
    assert result.returncode == 2 and "invalid choice" in result.stderr


def non_white_share_and_colours(png):
    """(share of pixels that are not white, number of distinct colours)."""
    from PIL import Image
    with Image.open(png) as image:
        pixels = image.convert("RGB")
        colours = pixels.getcolors(maxcolors=1 << 24)
        total = pixels.width * pixels.height
    white = sum(count for count, colour in colours if colour == (255, 255, 255))
    return (total - white) / total, len(colours)


def test_html_is_self_contained_and_renders(filled, tmp_path):
    page = tmp_path / "report.html"
    assert report(filled, "month", "2026-11", "--format", "html", "--output", page) == ""
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and html.count("<svg") == 2
    for forbidden in ("http://", "https://", "<script", "<link", "@import", "url("):
        if forbidden in ("http://", "https://"):
            # only the SVG namespace, never a src or href
            assert html.replace('xmlns="http://www.w3.org/2000/svg"', "").count(forbidden) == 0
        else:
            assert forbidden not in html, forbidden
    for text in ("2026年11月 执法监督通报", "各单位期末超期", "每周超期趋势", "取保候审",
                 "刑事拘留提请批准逮捕", U1, U2, "10/11", "11/29", "<polyline"):
        assert text in html, text
    assert "10/4<" not in html  # the trend: the 8 weeks up to 2026-11-29

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed (scripts/install-deps.sh installs it): "
                    "the page was checked but not rendered")
    shot = tmp_path / "report.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                    f"--user-data-dir={tmp_path / 'chromium'}", f"--screenshot={shot}",
                    "--window-size=1280,2000", f"file://{page}"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60,
                   env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}, check=True)
    assert shot.is_file() and shot.stat().st_size > 0
    share, colours = non_white_share_and_colours(shot)
    assert share > 0.03 and colours > 2, (share, colours)


def test_readme_shows_each_format():
    text = (lib.REPO_ROOT / "README.md").read_text(encoding="utf-8")
    for example in ("    duewatch report month 2026-11 ", "--format csv >",
                    "--format html --output"):
        assert example in text, example
