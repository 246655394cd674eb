"""The golden table of legal deadline cases (tests/golden/deadlines.json), end
to end: a sample of its cases, one for every rule and the special cases
(month ends, a month term moved off Spring Festival and a custody one kept on
National Day, an hour term from the next whole hour, Spring Festival and
National Day with their 调休, extensions moved after each, a pause across a
holiday, a resume after the original deadline, `until`, a provisional year),
is fed through Kafka to one real
duewatchd in event-time mode, and the alerts it sends must carry exactly the
table's deadline and due times: yellow, orange, red and the next two red
repeats.

All sampled cases run in one stream (one daemon, one Redis, one mock
cluster for the module): each case gets its own case number and ref, its
events (start, extensions, pauses, resumes, then a stop one minute after the
second red repeat) are merged with the other cases' in time order, so event
time only moves forward and every level fires as it would live.

Extensions carry the case's `ground`; a case that states `violations` must
get exactly those violation alerts (their seq: the extensions' numbers).

DUEWATCH_GOLDEN_ALL=1 runs every case of the table instead of the sample (a
development check, about a minute).  A level that fired before a later
extension or pause moved the deadline is not sent again for the new one
(README "Deadline semantics"); the check allows exactly that."""

import datetime
import json
import os
import random
from zoneinfo import ZoneInfo

import msgpack
import pytest

import duewatch_testlib as lib
import events as ev
from ingest_checks import EVENT_TOPIC, wait_applied

TABLE_PATH = lib.REPO_ROOT / "tests" / "golden" / "deadlines.json"
TABLE = json.loads(TABLE_PATH.read_text(encoding="utf-8"))
ZONE = ZoneInfo(TABLE["time_zone"])
UNIT = "500112-XJ01"
ALERT_TOPIC = "duewatch.alerts"
DEAD_LETTER_TOPIC = "duewatch.deadletter"
TOPICS = {EVENT_TOPIC: 1, DEAD_LETTER_TOPIC: 1, ALERT_TOPIC: 1}
# The table holds cases dated up to 2029: the ts bound (max_future_ms,
# ts_in_future) is off.
EVENT_MODE = {"clock_mode": "event", "event_time_lateness_ms": 0,
              "event_time_idle_partition_ms": 600000, "max_future_ms": 0}
DEFAULT_RULES = "conf/rules.conf"
EXTRA_RULES = "tests/golden/rules-extra.conf"
MINUTE_MS = 60_000

# One or more cases per rule (every shipped rule and each test variant) and
# per special case; each is "clean": none of its levels falls due before its
# last extension, pause or resume, so every level fires once, for the final
# deadline.
SAMPLE = (
    "bail-12-months-readme-example",
    "bail-ends-in-spring-festival-2026-moved",
    "rs-start-on-march-31",
    "detention-decided-at-23-59-59-before-national-day",
    "detention-decided-10-37-ends-11-00-next-day",
    "criminal-detention-two-extensions-ending-in-spring-festival",
    "admin-two-extensions-moved-after-each",
    "admin-pause-across-spring-festival-2026",
    "admin-resume-after-original-deadline",
    "admin-until-then-extended-moved",
    "admin-provisional-2027-spring-festival",
    "property-extended-onto-labour-day-not-moved",
    "evidence-across-national-day-2026",
    "publication-across-new-year-2026",
    "incident-reported-on-new-years-eve",
    "month-moved-two-extensions-moved-after-each",
    "month-from-april-30-ends-may-31",
    "custody-2-months-ends-on-national-day-not-moved",
    "working-days-two-extensions-across-national-day-2026",
    "seconds-extended-one-day",
    "versioned-started-before-effective-date-extended-twice-violation",
    "versioned-started-on-effective-date-extended-twice-lawful",
    "criminal-detention-extended-to-31-days-with-ground-violation",
    "bail-extension-is-a-violation-clock-still-extended",
    "admin-penalty-90-days-moved-out-of-dragon-boat-2025",
    "other-decision-publication-20-working-days-across-national-day-2025",
    "criminal-seizure-no-clock",
    "exempt-decision-no-clock",
    "filing-review-extended-to-7-then-30-days-complex",
    "filing-review-extended-to-30-days-with-detention-ground-violation",
    "filing-review-admin-case-no-clock",
)
NO_CLOCK = "no clock"

RUN_ALL = os.environ.get("DUEWATCH_GOLDEN_ALL", "") not in ("", "0")
CASES = {case["name"]: case for case in TABLE["cases"]}
# Backfill cases (a start applied late, `applied`/`fires`) and cases that
# stop early (`stopped`) are the unit test's (tests/unit/test_golden.c; the
# stops end to end: test_law_stops_caps.py): here every start is applied on
# time and every clock runs past its second red repeat.
SELECTED = [name for name in CASES if "applied" not in CASES[name] and
            "stopped" not in CASES[name]] if RUN_ALL else list(SAMPLE)


def ms(text):
    """'2025-03-15 10:00[:SS]' local -> epoch ms."""
    form = "%Y-%m-%d %H:%M:%S" if text.count(":") == 2 else "%Y-%m-%d %H:%M"
    return int(datetime.datetime.strptime(text, form).replace(tzinfo=ZONE).timestamp() * 1000)


def read_rules(path):
    """{rule: {key: value}} of a rules file: only what the test needs to know
    (which events start, extend, pause, resume and stop a rule's clocks)."""
    rules, current = {}, None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = rules.setdefault(line.strip("[]"), {})
        else:
            key, _, value = line.partition("=")
            current[key.strip()] = value.strip()
    return rules


RULES = {**read_rules(lib.REPO_ROOT / DEFAULT_RULES), **read_rules(lib.REPO_ROOT / EXTRA_RULES)}


def first(listed):
    return listed.split(",")[0].strip()


def start_of(case, rule):
    """(type, fields) of the case's starting event: the rule's start type,
    the first value of each `key=v1,v2` filter, the case's start_event over
    them (tests/golden/README.md)."""
    words = rule["start"].split()
    fields = {word.split("=", 1)[0]: first(word.split("=", 1)[1])
              for word in words[1:] if "=" in word}
    fields.update(case.get("start_event") or {})
    return words[0], fields


def case_events(rng, number, case):
    """The case's events, in its own order: start, ops, stop.  The clock's
    key is the case number (G<n>) or the ref (R<n>), unique per case."""
    rule = RULES[case["rule"]]
    ids = {"case": f"G{number:03d}", "ref": f"R{number:03d}", "subject": f"P{number:03d}"}

    def event(type, when, **fields):
        required, _ = ev.EVENT_TYPES[type]
        for key in required:
            if key in ids and key not in fields:
                fields[key] = ids[key]
        if "days" in required and "days" not in fields:
            fields["days"] = 10  # detention.decided: the days of detention
        return ev.valid_event(rng, type, when, UNIT, **fields)

    start_type, fields = start_of(case, rule)
    if case["until"] is not None:
        fields["until"] = ms(case["until"])
    events = [event(start_type, ms(case["start"]), **fields)]
    for op in case["ops"]:
        if "extend" in op:
            grounds = {"ground": op["ground"]} if "ground" in op else {}
            events.append(event(first(rule["extend"]), ms(op["at"]), days=op["extend"],
                                **grounds))
        elif "pause" in op:
            events.append(event(first(rule["pause"]), ms(op["pause"])))
        else:
            events.append(event(first(rule["resume"]), ms(op["resume"])))
    expect = case["expect"]
    last_due = (ms(case["start"]) + 40 * ev.DAY_MS if expect == NO_CLOCK
                else ms((expect["red_repeats"] or [expect["deadline"]])[-1]))
    events.append(event(first(rule["stop"]), last_due + MINUTE_MS))
    times = [e["ts"] for e in events]
    assert times == sorted(times), f"{case['name']}: ops out of time order"
    key = ids["case"] if rule["key"] == "case" else ids["ref"]
    return events, (case["rule"], key)


def expected_alerts(case):
    """[(level, seq, due_at ms)] the final deadline's firing alerts, in order
    (none for a "no clock" case)."""
    expect = case["expect"]
    if expect == NO_CLOCK:
        return []
    alerts = [(level, 0, ms(expect[level])) for level in ("yellow", "orange")
              if expect[level] is not None]
    alerts.append(("red", 0, ms(expect["deadline"])))
    alerts += [("red", k, ms(when)) for k, when in enumerate(expect["red_repeats"], 1)]
    return sorted(alerts, key=lambda alert: alert[2])


@pytest.fixture(scope="module")
def golden_run(tmp_path_factory, real_kafka_broker):
    """One daemon fed every selected case; {(rule, key): [alert, ...]} in
    topic order, the dead letters, and the daemon (for its log)."""
    rng = random.Random(20250315)
    directory = tmp_path_factory.mktemp("golden")
    rules_file = directory / "rules.conf"
    rules_file.write_text((lib.REPO_ROOT / DEFAULT_RULES).read_text(encoding="utf-8") + "\n"
                          + (lib.REPO_ROOT / EXTRA_RULES).read_text(encoding="utf-8"),
                          encoding="utf-8")
    with lib.module_world(directory, TOPICS, **EVENT_MODE, rules_file=str(rules_file)) as world:
        redis, cluster, daemon = world
        daemon.start(wait_for=r"kafka: consuming duewatch\.events")

        stream, keys, expected_count = [], {}, 0
        for number, name in enumerate(SELECTED, 1):
            events, key = case_events(rng, number, CASES[name])
            keys[name] = key
            stream += [(e["ts"], number, index, e) for index, e in enumerate(events)]
            # time passes through every due time (a tick there), as in a live
            # run: a stop far ahead of its partition's time sends each level
            # once (README "Out of order and duplicates"), every repeat here
            stream += [(due, number, -1, ev.clock_tick(rng, due, UNIT))
                       for _, _, due in expected_alerts(CASES[name])]
            expected_alerts_of_case = len(expected_alerts(CASES[name]))
            # + the resolution, sent only for a clock that fired, and the violations
            expected_count += (expected_alerts_of_case + (expected_alerts_of_case > 0) +
                               len(CASES[name].get("violations", [])))
        stream.sort(key=lambda item: item[:3])
        events = [item[3] for item in stream]
        events.append(ev.clock_tick(rng, events[-1]["ts"] + MINUTE_MS, UNIT))
        lib.produce(cluster.bootstrap, EVENT_TOPIC, ev.to_messages(events))
        wait_applied(cluster.bootstrap, redis.client())
        records = lib.consume_all(cluster.bootstrap, ALERT_TOPIC, count=expected_count,
                                  timeout=60, settle=1.5)
        alerts = {}
        for record in records:
            alert = msgpack.unpackb(record.value)
            alerts.setdefault((alert["rule"], alert["ref"]), []).append(alert)
        letters = lib.consume_all(cluster.bootstrap, DEAD_LETTER_TOPIC, settle=0.2)
        print(f"golden: cases={len(SELECTED)} events={len(events)} "
              f"alerts_expected_at_least={expected_count} alerts={len(records)} "
              f"dead_letters={len(letters)}")
        yield {"alerts": alerts, "keys": keys, "letters": letters, "daemon": daemon}
        assert daemon.stop() == 0


def test_no_dead_letters(golden_run):
    assert golden_run["letters"] == []


@pytest.mark.parametrize("name", SELECTED)
def test_case(golden_run, request, name):
    owners = getattr(request.node, "_duewatch_log_owners", None)
    if owners is None:
        owners = request.node._duewatch_log_owners = []
    owners.append(("duewatchd (shared by the module)", golden_run["daemon"]))

    case = CASES[name]
    if case["expect"] == NO_CLOCK:
        # no alert of the case's rule about its key
        about = golden_run["alerts"].get(golden_run["keys"][name], [])
        assert about == [], f"{name}: expected no clock, got {about}"
        return
    deadline = ms(case["expect"]["deadline"])
    alerts = golden_run["alerts"].get(golden_run["keys"][name], [])
    violations = [a["seq"] for a in alerts if a["level"] == "violation"]
    if "violations" in case:
        assert violations == case["violations"], f"{name}: violations {violations}"
    firing = [a for a in alerts if a["state"] == "firing" and a["level"] != "violation"]
    final = sorted(((a["level"], a["seq"], a["due_at"]) for a in firing
                    if a["deadline"] == deadline), key=lambda alert: alert[2])
    expected = expected_alerts(case)
    # A warning sent before an extension or pause moved the deadline is not
    # sent again for the new one.
    earlier = {a["level"] for a in firing if a["deadline"] != deadline}
    expected = [alert for alert in expected
                if alert in final or alert[0] not in earlier or alert[0] == "red"]
    assert final == expected, (
        f"{name}: alerts for the deadline {case['expect']['deadline']} differ; all alerts: "
        + "; ".join(f"{a['level']}/{a['state']}/{a['seq']} due "
                    f"{datetime.datetime.fromtimestamp(a['due_at'] / 1000, ZONE):%Y-%m-%d %H:%M:%S}"
                    f" deadline "
                    f"{datetime.datetime.fromtimestamp(a['deadline'] / 1000, ZONE):%Y-%m-%d %H:%M:%S}"
                    for a in alerts))
    resolved = [a for a in alerts if a["state"] == "resolved"]
    assert len(resolved) == 1 and resolved[0]["late"] is True
    assert resolved[0]["deadline"] == deadline
    if not RUN_ALL:
        # the sample is chosen so that every level fires once, for the
        # final deadline
        assert all(a["deadline"] == deadline for a in alerts), f"{name}: not a clean case"
