"""The bureau's bulletin (issue 17), end to end: a generated month of events
(October 2026, Asia/Shanghai, National Day inside it) is replayed through
Kafka (the librdkafka mock cluster, 4 partitions) into one real duewatchd in
event-time mode (lateness 0) and a real redis-server, and every figure the
daemon writes must equal what this test computes on its own from the
generated events (key layout: /work/shared/spec-17.md, README "Counters"):

- per period bucket (day, ISO week, month, quarter, year) and unit (and
  `_all`): `<type>`, `<type>:<kind>`, `<type>:<qualifier>`,
  `<type>:<kind>:<qualifier>`, `persons.measure.started:<kind>` and
  `persons.detention.decided` (distinct subjects), `resolved.<rule>.ontime`
  / `.late` (bucketed by the stopping event's time; a stop at or before the
  deadline is on time) and `violation.<rule>` (by the extension's time);
- the end-of-day snapshot in the day buckets of October: `running.<rule>`
  (clocks running at 24:00 local) and `overdue.<rule>` (of them, deadline
  before 24:00); the month-end backlog is the one of 2026-10-31;
- once the report tool exists (`duewatch report month 2026-10`), that its csv
  says the same, and that its text output names every unit.

Independence: the clocks are derived here from the event stream and the
rules file (which event starts, stops, extends, pauses and resumes which
rule), and every deadline comes from tests/golden/oracle.py (its own parsers
of conf/rules.conf and conf/holidays-cn.conf, plain Python dates); nothing
is asked of the daemon's C code.  The one field of the buckets not
compared: `alert.*` (bucketed by each level's due time).

The generator (seed SEED): 5 units, ~1,800 events, case histories from an
incident report through acceptance, filing review, measures, administrative
detention, seizures, decisions, extensions (lawful and violations), pauses,
to the stops, each clock stopped on time, late or never (some stops exactly
at the deadline -- for a day rule local midnight --, a second before or a
second after it), subjects drawn from a small pool (repeated across units
and kinds); a few histories start before October (September; residential
surveillance from April, whose six months end in October, moved off
National Day), some measures carry a document `until` inside October.
Every event is in the past, on a whole second, never at local midnight
(the bucket edge a snapshot cuts) except a stop exactly at a day rule's
deadline (on time, and running at the end of the day before: a stop counts
in its own day), with a unique id, keyed by its case (case.*) or ref (the
rest), so each clock's events reach one partition in time order (the
stream is sent sorted by time).  After the month one clock.tick per
partition at 2026-11-01 01:00 moves the daemon's time past the month end.

    /usr/bin/python3 tests/e2e/test_bulletin.py    # prints what the generator made
"""

import collections
import csv
import datetime
import importlib.machinery
import importlib.util
import io
import os
import random
import re
import sys
import time
from zoneinfo import ZoneInfo

import pytest

import duewatch_testlib as lib
import events as ev
from ingest_checks import DEAD_LETTER_TOPIC, EVENT_TOPIC, wait_applied
from test_tool import run_tool

sys.path.insert(0, str(lib.REPO_ROOT / "tests" / "golden"))
import oracle  # noqa: E402  (tests/golden/oracle.py: the independent deadline oracle)

# the generator's seed; DUEWATCH_SEED (as for the suite's rng fixture) overrides it
SEED = int(os.environ.get("DUEWATCH_SEED") or 20261031)
ZONE = ZoneInfo("Asia/Shanghai")
UNITS = ev.unit_names(5)
PARTITIONS = 4
ALERT_TOPIC = "duewatch.alerts"
TOPICS = {EVENT_TOPIC: PARTITIONS, DEAD_LETTER_TOPIC: 1, ALERT_TOPIC: 1}
EVENT_MODE = {"clock_mode": "event", "event_time_lateness_ms": 0,
              "event_time_idle_partition_ms": 600000}
READY = r"kafka: consuming duewatch\.events"
PREFIX = "dw:"
MONTH = "2026-10"
PREVIOUS_MONTH = "2026-09"
SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
SUBJECT_POOL = 70
# Whether the end-of-day snapshot is also written for the bureau (`_all`):
# spec-17 says "clocks of that rule and unit"; `_all` holds every other
# total, so the snapshot is expected there too.
SNAPSHOT_ALL = True

CALENDAR = oracle.Calendar(lib.REPO_ROOT / "conf" / "holidays-cn.conf")
RULES_FILE = "conf/rules.conf"
RULES = oracle.load_rules(lib.REPO_ROOT / RULES_FILE)
OCLOCK = oracle.Clock("Asia/Shanghai")


def local(year, month, day, hour=0, minute=0, second=0):
    return int(datetime.datetime(year, month, day, hour, minute, second, tzinfo=ZONE)
               .timestamp() * 1000)


MONTH_START = local(2026, 10, 1)
MONTH_END = local(2026, 11, 1)              # 2026-10-31 24:00
TICK_AT = local(2026, 11, 1, 1)             # one clock.tick per partition
OCTOBER_DAYS = [datetime.date(2026, 10, d) for d in range(1, 32)]
# the days whose end-of-day snapshot the test computes and checks: October's,
# and September's last (the report's previous month-end backlog)
SNAPSHOT_DAYS = [datetime.date(2026, 9, 30)] + OCTOBER_DAYS


def text(ms):
    return OCLOCK.text(ms)


def show(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, ZONE).strftime("%Y-%m-%d %H:%M:%S")


def is_midnight(ms):
    moment = datetime.datetime.fromtimestamp(ms / 1000, ZONE)
    return moment.hour == 0 and moment.minute == 0 and moment.second == 0


# --------------------------------------------------------------------------
# The rules, as the rules file states them (through the oracle's parser)


def split(listed):
    return [item.strip() for item in (listed or "").split(",") if item.strip()]


RULE_EVENTS = {}
for _name, _rule in RULES.items():
    _type, _filters = oracle.start_filters(_rule["start"])
    RULE_EVENTS[_name] = {"start": _type, "filters": _filters, "stop": split(_rule["stop"]),
                          "extend": split(_rule["extend"]), "pause": split(_rule["pause"]),
                          "resume": split(_rule["resume"]), "key": _rule["key"]}


def starts(event):
    """The rules whose start (type and every filter) the event passes."""
    return [name for name, r in RULE_EVENTS.items()
            if event["type"] == r["start"] and
            all(event.get(key) in values for key, values in r["filters"].items())]


def clock_key(rule, event):
    return event[RULE_EVENTS[rule]["key"]]


def deadline_of(rule, start, ops, until=None):
    """(deadline ms, [violation numbers]) of a clock of `rule` started at
    `start` with ops [(ts, op)] ("extend", days, ground) | ("pause",) |
    ("resume",), by the oracle."""
    case = {"rule": rule, "start": text(start), "until": None if until is None else text(until),
            "ops": []}
    for ts, op in ops:
        if op[0] == "extend":
            item = {"extend": op[1], "at": text(ts)}
            if op[2]:
                item["ground"] = op[2]
            case["ops"].append(item)
        else:
            case["ops"].append({op[0]: text(ts)})
    expect, _, outcome = oracle.compute(case, CALENDAR, {RULES_FILE: RULES}, OCLOCK)
    return OCLOCK.ms(expect["deadline"]), outcome["violations"]


# --------------------------------------------------------------------------
# The generator


class Month:
    """Generates the month: self.events (sorted by ts) and, for the
    generator's own coverage report, what it meant (self.intent)."""

    def __init__(self, seed=SEED):
        self.rng = random.Random(seed)
        self.events = []
        self.serial = 0
        self.subjects = [f"P{n:04d}" for n in range(1, SUBJECT_POOL + 1)]
        self.used = []
        self.on_deadline = set()   # stops exactly at a deadline (local midnight for day rules)
        self.intent = collections.Counter()
        self.generate()
        # stable: a history's order survives equal times
        self.events.sort(key=lambda e: e["ts"])

    # -- small pieces --

    def next_id(self, prefix):
        self.serial += 1
        return f"{prefix}{self.serial:05d}"

    def second(self, low, high):
        """A whole second in [low, high), never at local midnight."""
        ts = self.rng.randrange(low // SECOND, max(low // SECOND + 1, high // SECOND)) * SECOND
        return ts + SECOND if is_midnight(ts) else ts

    def after(self, ts, low, high):
        return self.second(ts + low, ts + high)

    def add(self, type, ts, unit, **fields):
        assert ts < MONTH_END and ts % SECOND == 0, (type, show(ts))
        assert not is_midnight(ts) or ts in self.on_deadline, (type, show(ts))
        event = ev.valid_event(self.rng, type, ts, unit, **fields)
        self.events.append(event)
        return event

    def subject(self):
        """From a small pool, and a third of the time one already used (the
        same person under several measures, units and kinds)."""
        if self.used and self.rng.random() < 0.33:
            return self.rng.choice(self.used)
        subject = self.rng.choice(self.subjects)
        self.used.append(subject)
        return subject

    def outcome(self, ontime=0.55, late=0.2):
        r = self.rng.random()
        return "ontime" if r < ontime else "late" if r < ontime + late else "never"

    def stop_time(self, rule, start, ops, earliest, outcome, until=None):
        """When the stop of a clock comes for the wanted outcome (None: never,
        or the outcome cannot happen before the month ends)."""
        deadline, _ = deadline_of(rule, start, ops, until)
        if outcome == "ontime":
            latest = min(deadline, MONTH_END - SECOND)
            if earliest > latest:
                return None
            edge = self.rng.random()
            if edge < 0.12 and deadline < MONTH_END and deadline >= earliest:
                self.intent[f"{rule}: stop exactly at the deadline"] += 1
                self.on_deadline.add(deadline)
                return deadline
            if edge < 0.24 and deadline - SECOND >= earliest and deadline < MONTH_END:
                self.intent[f"{rule}: stop a second before the deadline"] += 1
                return deadline - SECOND
            return self.second(earliest, latest + SECOND)
        if outcome == "late":
            low = max(earliest, deadline + SECOND)
            if low >= MONTH_END:
                return None
            if self.rng.random() < 0.2 and low == deadline + SECOND:
                self.intent[f"{rule}: stop a second after the deadline"] += 1
                return low
            return self.second(low, min(MONTH_END, low + 6 * DAY))
        return None

    # -- the flows (each returns the time its last event happened) --

    def incident(self, unit, t, kind, case=None):
        """An incident reported at t; accepted into `case` (or closed when
        case is None).  Returns the time of acceptance, or None when it was
        never accepted."""
        ref = self.next_id("J")
        self.add("incident.reported", t, unit, ref=ref, kind=kind)
        rule = "incident_unaccepted" if kind != "other" else None
        outcome = self.outcome(0.7, 0.15)
        if rule is None:
            when = self.after(t, 10 * MINUTE, 2 * DAY) if outcome != "never" else None
        else:
            when = self.stop_time(rule, t, [], t + SECOND, outcome)
        if when is None or when >= MONTH_END:
            self.intent["incident left open"] += 1
            return None
        if case is None:
            self.add("incident.closed", when, unit, ref=ref)
            return None
        self.add("incident.accepted", when, unit, ref=ref, case=case)
        return when

    def case_clock(self, unit, case, rule, t, stop_types, extension_choices, pause=False):
        """The case's own clock (filing review or case limit): extensions
        and pauses (case.*), then its stop.  Returns (stop type, ts) or None."""
        ops = []
        last = t
        deadline, _ = deadline_of(rule, t, [])
        if extension_choices and self.rng.random() < 0.3:
            for days, ground in self.rng.choice(extension_choices):
                at = self.after(last, HOUR, max(2 * HOUR, (deadline - last) // 2))
                if at >= MONTH_END:
                    break
                fields = {"ground": ground} if ground else {}
                self.add("case.extended", at, unit, case=case, days=days, **fields)
                ops.append((at, ("extend", days, ground)))
                last = at
                deadline, _ = deadline_of(rule, t, ops)
        if pause and self.rng.random() < 0.35:
            at = self.after(last, HOUR, 4 * DAY)
            back = self.after(at, 3 * HOUR, 3 * DAY)
            # paused only well before the deadline: a day's end inside the
            # pause is not overdue however a paused deadline is read
            if back < MONTH_END and back + 5 * DAY < deadline:
                self.add("case.suspended", at, unit, case=case)
                self.add("case.resumed", back, unit, case=case)
                ops += [(at, ("pause",)), (back, ("resume",))]
                last = back
                self.intent[f"{rule}: paused and resumed"] += 1
        outcome = self.outcome(0.5, 0.2)
        when = self.stop_time(rule, t, ops, last + SECOND, outcome)
        self.intent[f"{rule}: {outcome if when is not None else 'never'}"] += 1
        if when is None:
            return None
        type = self.rng.choice(stop_types)
        self.add(type, when, unit, case=case)
        return type, when

    def measure(self, unit, case, t, kind, until_chance=0.0):
        ref = self.next_id("QZ")
        fields = {}
        rule = {"bail": "bail_expiry", "rs": "rs_expiry", "rs_designated": "rs_expiry",
                "criminal_detention": "criminal_detention_limit"}[kind]
        until = None
        if until_chance and self.rng.random() < until_chance:
            # the document's own end, inside October (stricter than the law)
            until = t + self.rng.randrange(2, 20) * DAY + self.rng.randrange(0, 24) * HOUR
            until -= until % HOUR
            if until >= MONTH_END - HOUR or is_midnight(until):
                until = None
            else:
                fields["until"] = until
                self.intent[f"{rule}: until"] += 1
        self.add("measure.started", t, unit, case=case, ref=ref, subject=self.subject(),
                 kind=kind, **fields)
        ops, last = [], t
        if kind == "criminal_detention" and self.rng.random() < 0.35:
            days, ground = self.rng.choice([(4, None), (27, "gang"), (27, "roving"), (10, None),
                                            (2, None), (27, "complex")])
            at = self.after(t, 6 * HOUR, 2 * DAY)
            if at < MONTH_END:
                fields = {"ground": ground} if ground else {}
                self.add("measure.extended", at, unit, case=case, ref=ref, days=days, **fields)
                ops.append((at, ("extend", days, ground)))
                last = at
        elif kind != "criminal_detention" and until is None and self.rng.random() < 0.04:
            at = self.after(t, DAY, 5 * DAY)
            if at < MONTH_END:
                self.add("measure.extended", at, unit, case=case, ref=ref, days=30)
                ops.append((at, ("extend", 30, None)))
                last = at
        if kind == "criminal_detention":
            outcome = self.outcome(0.6, 0.25)
        else:
            outcome = self.outcome(0.25, 0.35 if until else 0.0)
        when = self.stop_time(rule, t, ops, last + SECOND, outcome, until)
        self.intent[f"{rule}: {outcome if when is not None else 'never'}"] += 1
        if when is None:
            return None
        type = ("measure.arrest_requested" if kind == "criminal_detention" and
                self.rng.random() < 0.75 else "measure.ended")
        self.add(type, when, unit, case=case, ref=ref)
        return type, when

    def detention(self, unit, case, t):
        ref = self.next_id("JL")
        self.add("detention.decided", t, unit, case=case, ref=ref, subject=self.subject(),
                 days=self.rng.choice((3, 5, 10, 15)))
        outcome = self.outcome(0.6, 0.2)
        when = self.stop_time("detention_unexecuted", t, [], t + SECOND, outcome)
        self.intent[f"detention_unexecuted: {outcome if when is not None else 'never'}"] += 1
        if when is not None:
            self.add(self.rng.choice(("detention.executed", "detention.executed",
                                      "detention.suspended", "detention.cancelled")),
                     when, unit, case=case, ref=ref)

    def seizure(self, unit, case, t, scope):
        ref = self.next_id("CW")
        kind = self.rng.choice(("seize", "seal", "preserve"))
        self.add("property.seized", t, unit, case=case, ref=ref, kind=kind, scope=scope)
        if scope != "admin":
            if self.rng.random() < 0.4:
                self.add("property.released", self.after(t, DAY, 10 * DAY) if
                         t + 10 * DAY < MONTH_END else self.second(t + SECOND, MONTH_END),
                         unit, case=case, ref=ref)
            if self.rng.random() < 0.15:
                at = self.after(t, HOUR, 3 * DAY)
                if at < MONTH_END:
                    # counted; no clock to extend (a criminal seizure has none)
                    self.add("property.extended", at, unit, case=case, ref=ref, days=30)
            return
        rule = "property_hold_limit" if kind != "preserve" else "evidence_preservation"
        ops, last = [], t
        if rule == "property_hold_limit" and self.rng.random() < 0.3:
            count = 2 if self.rng.random() < 0.3 else 1
            for _ in range(count):
                at = self.after(last, DAY, 10 * DAY)
                if at >= MONTH_END:
                    break
                days = self.rng.choice((30, 15, 31))
                self.add("property.extended", at, unit, case=case, ref=ref, days=days)
                ops.append((at, ("extend", days, None)))
                last = at
        outcome = self.outcome(0.5, 0.2)
        when = self.stop_time(rule, t, ops, last + SECOND, outcome)
        self.intent[f"{rule}: {outcome if when is not None else 'never'}"] += 1
        if when is not None:
            self.add("property.released", when, unit, case=case, ref=ref)

    def decision(self, unit, case, t, kinds):
        ref = self.next_id("JD")
        kind = self.rng.choice(kinds)
        publish = "exempt" if self.rng.random() < 0.2 else "required"
        self.add("decision.issued", t, unit, case=case, ref=ref, kind=kind, publish=publish)
        if publish == "exempt":
            return
        rule = "decision_publication" if kind != "other" else "decision_publication_other"
        outcome = self.outcome(0.55, 0.2)
        when = self.stop_time(rule, t, [], t + SECOND, outcome)
        self.intent[f"{rule}: {outcome if when is not None else 'never'}"] += 1
        if when is not None:
            self.add("decision.published", when, unit, case=case, ref=ref)

    # -- histories --

    def criminal_case(self, unit, t):
        case = self.next_id("AX")
        if self.rng.random() < 0.6:
            t = self.incident(unit, t, "criminal", case)
            if t is None:
                return
        t = self.after(t, MINUTE, HOUR)
        if t >= MONTH_END:
            return
        fields = {}
        if self.rng.random() < 0.1:
            fields["admin_type"] = self.rng.choice(("public_security", "other"))  # ignored
            self.intent["criminal case.accepted with an admin_type (ignored)"] += 1
        self.add("case.accepted", t, unit, case=case, kind="criminal", **fields)
        stopped = self.case_clock(unit, case, "criminal_filing_review", t,
                                  ["case.filed"] * 5 + ["case.filing_refused"],
                                  [[(4, None)], [(2, None), (2, None)], [(10, None)],
                                   [(27, "complex")], [(27, "gang")], [(4, None), (23, "complex")]])
        if stopped is None or stopped[0] == "case.filing_refused":
            return
        t = stopped[1]
        if self.rng.random() < 0.6:
            at = self.after(t, HOUR, 2 * DAY)
            if at < MONTH_END:
                ended = self.measure(unit, case, at, "criminal_detention")
                if ended and ended[0] == "measure.arrest_requested" and self.rng.random() < 0.5:
                    at = self.after(ended[1], HOUR, 3 * DAY)
                    if at < MONTH_END:
                        self.measure(unit, case, at, self.rng.choice(("bail", "bail", "rs")),
                                     until_chance=0.5)
        elif self.rng.random() < 0.6:
            at = self.after(t, HOUR, 3 * DAY)
            if at < MONTH_END:
                self.measure(unit, case, at,
                             self.rng.choice(("bail", "bail", "rs", "rs_designated")),
                             until_chance=0.5)
        if self.rng.random() < 0.4:
            at = self.after(t, HOUR, 4 * DAY)
            if at < MONTH_END:
                self.seizure(unit, case, at, "criminal" if self.rng.random() < 0.85 else "admin")
        if self.rng.random() < 0.15:
            at = self.after(t, DAY, 6 * DAY)
            if at < MONTH_END:
                self.decision(unit, case, at, ("other", "license"))
        if self.rng.random() < 0.25:
            at = self.after(t, 2 * DAY, 8 * DAY)
            if at < MONTH_END:
                self.add("case.closed", at, unit, case=case)  # counted; no criminal case clock

    def admin_case(self, unit, t, admin_type):
        case = self.next_id("AZ")
        if self.rng.random() < 0.5:
            t = self.incident(unit, t, "admin", case)
            if t is None:
                return
        t = self.after(t, MINUTE, HOUR)
        if t >= MONTH_END:
            return
        self.add("case.accepted", t, unit, case=case, kind="admin", admin_type=admin_type)
        rule = "admin_case_limit" if admin_type == "public_security" else \
            "admin_penalty_case_limit"
        if admin_type == "public_security" and self.rng.random() < 0.45:
            at = self.after(t, HOUR, 2 * DAY)
            if at < MONTH_END:
                self.detention(unit, case, at)
        elif self.rng.random() < 0.12:
            at = self.after(t, HOUR, 2 * DAY)
            if at < MONTH_END:
                self.detention(unit, case, at)
        if self.rng.random() < 0.35:
            at = self.after(t, HOUR, 3 * DAY)
            if at < MONTH_END:
                self.seizure(unit, case, at, "admin" if self.rng.random() < 0.85 else "criminal")
        if self.rng.random() < 0.55:
            at = self.after(t, DAY, 10 * DAY)
            if at < MONTH_END:
                self.decision(unit, case, at, ("penalty", "penalty", "license", "other"))
        self.case_clock(unit, case, rule, t, ["case.closed"],
                        [[(30, None)], [(15, None)], [(30, None), (10, None)], [(31, None)]],
                        pause=True)

    def standalone_incident(self, unit, t):
        self.incident(unit, t, self.rng.choice(("criminal", "admin", "other", "other")))

    def generate(self):
        rng = self.rng
        september = local(2026, 9, 14)
        for unit in UNITS:
            # residential surveillance from April: six months end in October
            # (one on 10-03, in National Day: moved to 10-08)
            for day in (3, 10, 17) if unit in UNITS[:3] else (24,):
                t = local(2026, 4, day, rng.randrange(8, 20), rng.randrange(60))
                case = self.next_id("AX")
                self.add("case.accepted", t - 3 * DAY, unit, case=case, kind="criminal")
                self.add("case.filed", t - 2 * DAY, unit, case=case)
                self.measure(unit, case, t, rng.choice(("rs", "rs_designated")))
            for _ in range(62):
                start = self.second(MONTH_START, MONTH_END - 2 * HOUR)
                if rng.random() < 0.25:
                    start = self.second(september, MONTH_START)
                r = rng.random()
                if r < 0.5:
                    self.criminal_case(unit, start)
                elif r < 0.8:
                    self.admin_case(unit, start, "public_security")
                else:
                    self.admin_case(unit, start, "other")
            for _ in range(40):
                self.standalone_incident(unit, self.second(september + 14 * DAY,
                                                           MONTH_END - HOUR))


# --------------------------------------------------------------------------
# The independent figures


def bucket_keys(ts, unit):
    day = datetime.datetime.fromtimestamp(ts / 1000, ZONE).date()
    year, week, _ = day.isocalendar()
    names = {"d": day.isoformat(), "w": f"{year}-W{week:02d}", "m": f"{day.year}-{day.month:02d}",
             "q": f"{day.year}-Q{(day.month - 1) // 3 + 1}", "y": f"{day.year}"}
    return [f"{PREFIX}{period}:{name}:{u}" for period, name in names.items()
            for u in (unit, "_all")]


QUALIFIER_KEYS = {"property.seized": ("scope", None), "decision.issued": ("publish", None),
                  "case.accepted": ("admin_type", "admin")}
PERSON_TYPES = ("measure.started", "detention.decided")


def count_fields(event):
    """The counter fields one event adds to each of its buckets."""
    type = event["type"]
    fields = [type]
    kind = event.get("kind")
    qualifier = None
    if type in QUALIFIER_KEYS:
        key, only_kind = QUALIFIER_KEYS[type]
        if only_kind is None or kind == only_kind:
            qualifier = event[key]
    if kind:
        fields.append(f"{type}:{kind}")
    if qualifier:
        fields.append(f"{type}:{qualifier}")
    if kind and qualifier:
        fields.append(f"{type}:{kind}:{qualifier}")
    return fields


class Clock:
    def __init__(self, rule, key, event):
        self.rule, self.key, self.unit = rule, key, event["unit"]
        self.start, self.until = event["ts"], event.get("until")
        self.ops = []            # [(ts, op)]
        self.stop = None         # (ts, type)
        self.paused = False

    def deadline(self, before=None):
        """(deadline, violations) with the ops before `before`; an open pause
        is left out (the deadline as it stood when the pause began)."""
        ops = [(ts, op) for ts, op in self.ops if before is None or ts < before]
        if ops and ops[-1][1][0] == "pause":
            ops = ops[:-1]
        return deadline_of(self.rule, self.start, ops, self.until)

    def open_pause(self, instant):
        ops = [op for ts, op in self.ops if ts < instant and op[0] in ("pause", "resume")]
        return bool(ops) and ops[-1][0] == "pause"


def model_clocks(events):
    """The clocks the rules file gives the stream: {(rule, key): Clock}."""
    clocks = {}
    for event in events:
        type = event["type"]
        for rule in starts(event):
            clocks.setdefault((rule, clock_key(rule, event)), Clock(rule, clock_key(rule, event),
                                                                    event))
        for rule, r in RULE_EVENTS.items():
            if type not in r["stop"] + r["extend"] + r["pause"] + r["resume"]:
                continue
            clock = clocks.get((rule, event.get(r["key"])))
            if clock is None or clock.stop is not None:
                continue
            if type in r["stop"]:
                clock.stop = (event["ts"], type)
            elif type in r["extend"]:
                clock.ops.append((event["ts"], ("extend", event["days"], event.get("ground"))))
            elif type in r["pause"] and not clock.paused:
                clock.ops.append((event["ts"], ("pause",)))
                clock.paused = True
            elif type in r["resume"] and clock.paused:
                clock.ops.append((event["ts"], ("resume",)))
                clock.paused = False
    return clocks


def expected_figures(events, clocks):
    """{bucket key: {field: value}} of every figure this test checks (no
    zero fields, no empty buckets)."""
    figures = collections.defaultdict(collections.Counter)
    persons = collections.defaultdict(lambda: collections.defaultdict(set))
    for event in events:
        if event["type"] == "clock.tick":
            continue
        keys = bucket_keys(event["ts"], event["unit"])
        for key in keys:
            for field in count_fields(event):
                figures[key][field] += 1
        if event["type"] in PERSON_TYPES:
            field = "persons." + event["type"] + (f":{event['kind']}" if "kind" in event else "")
            for key in keys:
                persons[key][field].add(event["subject"])
    for key, fields in persons.items():
        for field, subjects in fields.items():
            figures[key][field] = len(subjects)
    for clock in clocks.values():
        deadline, violations = clock.deadline()
        if clock.stop is not None:
            outcome = "late" if clock.stop[0] > deadline else "ontime"
            for key in bucket_keys(clock.stop[0], clock.unit):
                figures[key][f"resolved.{clock.rule}.{outcome}"] += 1
        extensions = [ts for ts, op in clock.ops if op[0] == "extend"]
        for number in violations:
            at = clock.start if number == 0 else extensions[number - 1]
            for key in bucket_keys(at, clock.unit):
                figures[key][f"violation.{clock.rule}"] += 1
    for day in SNAPSHOT_DAYS:
        end = OCLOCK.midnight(day + datetime.timedelta(days=1))
        for clock in clocks.values():
            if clock.start >= end or (clock.stop is not None and clock.stop[0] < end):
                continue
            deadline, _ = clock.deadline(before=end)
            if clock.open_pause(end) and deadline < end:
                raise AssertionError(f"generator: {clock.rule} {clock.key} paused at the end of "
                                     f"{day} past its deadline (ambiguous)")
            units = (clock.unit, "_all") if SNAPSHOT_ALL else (clock.unit,)
            for unit in units:
                key = f"{PREFIX}d:{day.isoformat()}:{unit}"
                figures[key][f"running.{clock.rule}"] += 1
                if deadline < end:
                    figures[key][f"overdue.{clock.rule}"] += 1
    return {key: dict(fields) for key, fields in figures.items() if fields}


SNAPSHOT_FIELDS = ("running.", "overdue.")
# Not compared: the alert counts (by each level's due time: what fires
# depends on the flood limits of the claims, tests/e2e/test_clocks.py and
# test_poisoned_time.py check them).
UNCOMPARED_FIELDS = ("alert.",)


def snapshot_day_checked(key):
    """Whether the snapshot fields of a bucket are compared: the day buckets
    of SNAPSHOT_DAYS (earlier days depend on where the daemon's time began)."""
    parts = key.split(":")
    return parts[1] == "d" and parts[2] in {day.isoformat() for day in SNAPSHOT_DAYS}


def actual_figures(client):
    """{bucket key: {field: value}} in Redis, without the alert counts (and
    the snapshot fields outside October's day buckets)."""
    result = {}
    for period in ("d", "w", "m", "q", "y"):
        for key in client.scan_iter(match=f"{PREFIX}{period}:*", count=1000):
            fields = {}
            for field, value in client.hgetall(key).items():
                if field.startswith(UNCOMPARED_FIELDS):
                    continue
                if field.startswith(SNAPSHOT_FIELDS) and (not snapshot_day_checked(key) or
                                                          int(value) == 0):
                    continue  # spec-17: an absent snapshot field is 0 (and 0 may be written)
                fields[field] = int(value)
            if fields:
                result[key] = fields
    return result


def differences(expected, actual, keys=None):
    """Readable lines, one per differing field: 'KEY FIELD: expected E, got A'."""
    lines = []
    for key in sorted(keys if keys is not None else set(expected) | set(actual)):
        want, got = expected.get(key, {}), actual.get(key, {})
        for field in sorted(set(want) | set(got)):
            if want.get(field) != got.get(field):
                lines.append(f"{key} {field}: expected {want.get(field, '(absent)')}, "
                             f"got {got.get(field, '(absent)')}")
    return lines


DIFF_DIR = []   # where assert_same writes every difference (set by bulletin_run)


def assert_same(expected, actual, keys, what):
    """The whole expected dict against the whole actual dict of each key."""
    lines = differences(expected, actual, keys)
    where = ""
    if lines and DIFF_DIR:
        path = DIFF_DIR[0] / (what.split(" (")[0].replace(" ", "-") + ".diff")
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        where = f" (all of them in {path})"
    assert not lines, (f"{what}: {len(lines)} field(s) differ{where}:\n  " +
                       "\n  ".join(lines[:80]) + ("\n  ..." if len(lines) > 80 else ""))
    for key in keys:
        assert actual.get(key, {}) == expected.get(key, {}), key


# --------------------------------------------------------------------------
# The run


@pytest.fixture(scope="module")
def month():
    return Month()


@pytest.fixture(scope="module")
def expected(month):
    clocks = model_clocks(month.events)
    return {"figures": expected_figures(month.events, clocks), "clocks": clocks}


@pytest.fixture(scope="module")
def bulletin_run(tmp_path_factory, real_kafka_broker, month):
    """One daemon fed the month; yields the Redis figures and more."""
    directory = tmp_path_factory.mktemp("bulletin")
    DIFF_DIR[:] = [directory]
    with lib.module_world(directory, TOPICS, **EVENT_MODE) as world:
        redis, cluster, daemon = world
        began = time.monotonic()
        daemon.start(wait_for=READY)
        rng = random.Random(SEED + 1)
        lib.produce(cluster.bootstrap, EVENT_TOPIC, ev.to_messages(month.events), timeout=60)
        for partition in range(PARTITIONS):
            tick = ev.clock_tick(rng, TICK_AT, UNITS[0])
            lib.produce(cluster.bootstrap, EVENT_TOPIC, ev.to_messages([tick]),
                        partition=partition)
        client = redis.client()
        wait_applied(cluster.bootstrap, client, timeout=40)
        try:
            lib.wait_until(lambda: (client.get(f"{PREFIX}snapshot") or "") >= "2026-10-31", 15,
                           interval=0.2, message="dw:snapshot reaches 2026-10-31")
            snapshot_error = None
        except lib.WaitTimeout as error:
            snapshot_error = f"{error} (dw:snapshot = {client.get(PREFIX + 'snapshot')!r})"
        letters = lib.consume_all(cluster.bootstrap, DEAD_LETTER_TOPIC, settle=0.2)
        figures = actual_figures(client)
        lib.print_ledger("bulletin", "month", events=len(month.events), ticks=PARTITIONS,
                         buckets=len(figures), dead_letters=len(letters),
                         snapshot=client.get(PREFIX + "snapshot"),
                         seconds=f"{time.monotonic() - began:.1f}")
        yield {"figures": figures, "letters": letters, "snapshot_error": snapshot_error,
               "daemon": daemon, "redis": redis, "cluster": cluster, "directory": directory}
        assert daemon.stop() == 0


@pytest.fixture
def run(bulletin_run, request):
    owners = getattr(request.node, "_duewatch_log_owners", None)
    if owners is None:
        owners = request.node._duewatch_log_owners = []
    owners.append(("duewatchd (shared by the module)", bulletin_run["daemon"]))
    return bulletin_run


def keys_of(figures, period, name=None):
    return {key for key in figures
            if key.split(":")[1] == period and (name is None or key.split(":")[2] == name)}


def test_generator_covers_the_contract(month, expected):
    """The month holds what the bulletin must be tested with (no daemon)."""
    events = [e for e in month.events if e["type"] != "clock.tick"]
    assert len({e["id"] for e in events}) == len(events)
    assert 1500 <= len(events) <= 3000, len(events)
    assert all(e["ts"] < MONTH_END and e["ts"] % SECOND == 0 for e in events)
    # only stops exactly at a day rule's deadline fall on local midnight
    stop_types = {t for r in RULE_EVENTS.values() for t in r["stop"]}
    assert all(e["type"] in stop_types for e in events if is_midnight(e["ts"]))
    assert any(is_midnight(e["ts"]) for e in events)
    fields = set()
    for event in events:
        fields.update(count_fields(event))
    for type, (_, kinds) in ev.EVENT_TYPES.items():
        if type == "clock.tick":
            continue
        assert type in fields, type
        for kind in kinds or ():
            assert f"{type}:{kind}" in fields, f"{type}:{kind}"
    for type, (key, values, _, _) in ev.QUALIFIERS.items():
        for value in values:
            assert f"{type}:{value}" in fields, f"{type}:{value}"
    assert {f for f in fields if f.startswith("property.seized:") and f.count(":") == 2} == {
        f"property.seized:{k}:{s}" for k in ev.PROPERTY_KINDS for s in ("criminal", "admin")}
    # repeated subjects: within a unit and kind, across units, across kinds
    people = collections.defaultdict(set)
    for event in events:
        if event["type"] in PERSON_TYPES:
            people[event["subject"]].add((event["unit"], event["type"], event.get("kind")))
    assert any(len({u for u, _, _ in uses}) > 1 for uses in people.values())
    assert any(len({(t, k) for _, t, k in uses}) > 1 for uses in people.values())
    figures = expected["figures"]
    m = f"{PREFIX}m:{MONTH}:_all"
    person_fields = [f"measure.started:{kind}" for kind in ev.MEASURE_KINDS] + \
        ["detention.decided"]
    assert all(figures[m][f"persons.{field}"] <= figures[m][field] for field in person_fields)
    assert sum(figures[m][field] - figures[m][f"persons.{field}"]
               for field in person_fields) >= 5, "too few repeated subjects"
    # every rule has clocks stopped on time, late, and left running; some
    # are overdue at the month end, some running and not overdue
    clocks = expected["clocks"].values()
    for rule in RULES:
        mine = [c for c in clocks if c.rule == rule]
        assert any(c.stop for c in mine), rule
        assert any(c.stop is None for c in mine) or rule == "detention_unexecuted", rule
    for outcome in ("ontime", "late"):
        assert sum(f.get(f"resolved.{r}.{outcome}", 0) for r in RULES
                   for f in [figures[m]]) > 20, outcome
    end = f"{PREFIX}d:{MONTH}-31:_all" if SNAPSHOT_ALL else None
    if end:
        running = sum(v for k, v in figures[end].items() if k.startswith("running."))
        overdue = sum(v for k, v in figures[end].items() if k.startswith("overdue."))
        assert overdue >= 10 and running - overdue >= 10, (running, overdue)
    assert any(k.startswith("violation.") for k in figures[m])


def test_no_dead_letters(run):
    assert [(r.headers.get("dw.reason"), r.headers.get("dw.detail")) for r in run["letters"]] == []


def test_month_buckets(run, expected):
    """dw:m:<month>:<unit> of every unit and _all (September and October):
    counts by type, kind and qualifier, distinct persons, resolutions and
    violations, exactly."""
    want, got = expected["figures"], run["figures"]
    keys = keys_of(want, "m") | keys_of(got, "m")
    assert keys_of(want, "m", MONTH) == {f"{PREFIX}m:{MONTH}:{u}" for u in UNITS + ["_all"]}
    assert_same(want, got, keys, "month buckets")


def test_month_end_backlog(run, expected):
    """running.<rule> / overdue.<rule> in dw:d:2026-10-31:<unit>: the clocks
    running at 2026-10-31 24:00 local, and of them those past their deadline
    (the oracle's)."""
    assert run["snapshot_error"] is None, run["snapshot_error"]

    keys = {f"{PREFIX}d:{MONTH}-31:{u}" for u in UNITS + ["_all"]}
    assert_same(only_snapshot(expected["figures"]), only_snapshot(run["figures"]), keys,
                "month-end backlog (day bucket of 2026-10-31)")


def without_snapshot(figures):
    return {key: {f: v for f, v in fields.items() if not f.startswith(SNAPSHOT_FIELDS)}
            for key, fields in figures.items()}


def only_snapshot(figures):
    return {key: {f: v for f, v in fields.items() if f.startswith(SNAPSHOT_FIELDS)}
            for key, fields in figures.items()}


@pytest.mark.parametrize("period", ["d", "w", "q", "y"])
def test_other_period_buckets(run, expected, period):
    """Every day, ISO week, quarter and year bucket, whole (the day buckets
    without their end-of-day snapshot: test_daily_snapshots)."""
    want, got = without_snapshot(expected["figures"]), without_snapshot(run["figures"])
    assert_same(want, got, keys_of(want, period) | keys_of(got, period), f"{period} buckets")


def test_daily_snapshots(run, expected):
    """running.<rule> / overdue.<rule> in the day bucket of every day of
    October and of 2026-09-30 (the month end: test_month_end_backlog).
    running.<rule> and overdue.<rule> must be exact every day, however late
    the daemon read them (the whole month is replayed at once)."""
    assert run["snapshot_error"] is None, run["snapshot_error"]
    want, got = only_snapshot(expected["figures"]), only_snapshot(run["figures"])
    keys = {key for key in set(want) | set(got) if snapshot_day_checked(key)}
    running = {key: {f: v for f, v in fields.items() if f.startswith("running.")}
               for key, fields in want.items()}
    assert_same(running, {key: {f: v for f, v in fields.items() if f.startswith("running.")}
                          for key, fields in got.items()}, keys,
                "daily snapshots, running (day buckets of 2026-09-30 and October)")
    assert_same(want, got, keys, "daily snapshots (day buckets of 2026-09-30 and October)")


# --------------------------------------------------------------------------
# The report tool (scripts/duewatch report, issue 17)

TOOL = lib.REPO_ROOT / "scripts" / "duewatch"


def tool_args(run):
    config = lib.write_config(run["directory"] / "tool.conf", {
        "kafka.bootstrap.servers": run["cluster"].bootstrap, "redis_host": "127.0.0.1",
        "redis_port": run["redis"].port})
    return ["-c", config]


def rate(fields, rule):
    ontime = fields.get(f"resolved.{rule}.ontime", 0)
    late = fields.get(f"resolved.{rule}.late", 0)
    return "" if ontime + late == 0 else f"{ontime / (ontime + late):.4f}"


def month_figures(figures, name, unit):
    """The test's figures of the month `name` for `unit`: its month bucket
    and the backlog of its last day."""
    first = datetime.date.fromisoformat(f"{name}-01")
    last = (first.replace(day=28) + datetime.timedelta(days=4)).replace(day=1) - \
        datetime.timedelta(days=1)
    fields = dict(figures.get(f"{PREFIX}m:{name}:{unit}", {}))
    for field, value in figures.get(f"{PREFIX}d:{last.isoformat()}:{unit}", {}).items():
        if field.startswith(SNAPSHOT_FIELDS):
            fields[field] = value
    return fields


# The figures the csv must have for every unit (the bulletin's new ones):
# each rule's on-time rate, resolutions and month-end backlog, and the
# distinct persons.
REQUIRED_FIGURES = ([f"{family}.{rule}" for rule in RULES
                     for family in ("ontime_rate", "running", "overdue")] +
                    [f"resolved.{rule}.{outcome}" for rule in RULES
                     for outcome in ("ontime", "late")] +
                    [f"persons.measure.started:{kind}" for kind in ev.MEASURE_KINDS] +
                    ["persons.detention.decided"])


def test_report_csv(run, expected):
    """`duewatch report month 2026-10 --format csv`: every row's value and
    previous (September) value equal the test's own figures (0 for a field
    the test never counted), the on-time rates are ontime / (ontime + late)
    with 4 decimals (empty when nothing was resolved), and every unit has
    the bulletin's figures (REQUIRED_FIGURES).  Only the alert counts are
    not compared."""
    assert run["snapshot_error"] is None, run["snapshot_error"]
    completed = run_tool(*tool_args(run), "report", "month", MONTH, "--format", "csv")
    assert completed.returncode == 0, completed.stderr
    rows = list(csv.DictReader(io.StringIO(completed.stdout)))
    assert rows and list(rows[0]) == ["period", "unit", "figure", "value", "previous"], \
        completed.stdout[:500]
    assert {row["period"] for row in rows} == {MONTH}
    got = {(row["unit"], row["figure"]): (row["value"], row["previous"]) for row in rows}
    assert len(got) == len(rows), "a (unit, figure) twice"
    assert {unit for unit, _ in got} == set(UNITS + ["_all"])
    figures = expected["figures"]
    lines, compared = [], 0
    for unit in UNITS + ["_all"]:
        now = month_figures(figures, MONTH, unit)
        before = month_figures(figures, PREVIOUS_MONTH, unit)
        for figure in REQUIRED_FIGURES:
            if (unit, figure) not in got:
                lines.append(f"{unit} {figure}: missing from the csv")
        for (row_unit, figure), values in sorted(got.items()):
            if row_unit != unit or figure.startswith(UNCOMPARED_FIELDS):
                continue
            if figure.startswith("ontime_rate."):
                want = (rate(now, figure.split(".", 1)[1]), rate(before, figure.split(".", 1)[1]))
            else:
                want = (str(now.get(figure, 0)), str(before.get(figure, 0)))
            compared += 1
            if values == want:
                continue
            lines.append(f"{unit} {figure}: expected (value, previous) {want}, csv {values}")
    print(f"report csv: rows={len(rows)} compared={compared} differences={len(lines)}")
    assert not lines, f"report csv: {len(lines)} difference(s):\n  " + "\n  ".join(lines[:80])


def load_source(name, path):
    """A Python file of the tree (no .py suffix needed) as a module."""
    loader = importlib.machinery.SourceFileLoader(name, str(path))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(name, loader))
    loader.exec_module(module)
    return module


def text_rows(text):
    """{label: [[numbers...], ...]} of the text report's table rows, in
    order: a label, then integers or "X(Y)" pairs (X and Y both kept), up to
    the first other word."""
    rows = {}
    for line in text.splitlines():
        words = line.split()
        numbers = []
        for word in words[1:]:
            pair = re.fullmatch(r"(\d+)\((\d+)\)", word)
            if pair:
                numbers += [int(pair[1]), int(pair[2])]
            elif re.fullmatch(r"[+-]?\d+", word):
                numbers.append(int(word))
            else:
                break
        if words and numbers:
            rows.setdefault(words[0], []).append(numbers)
    return rows


def test_report_text(run, expected):
    """`duewatch report month 2026-10` as text: the bureau's figures of
    sections 一 to 四 (value, previous, change), each rule's month-end
    backlog (section 七, running(previous) overdue(previous)) and the units'
    ranking by month-end overdue (section 八) equal the test's own
    figures."""
    completed = run_tool(*tool_args(run), "report", "month", MONTH, "--format", "text")
    assert completed.returncode == 0, completed.stderr
    rows = text_rows(completed.stdout)
    tool = load_source("duewatch_tool_text", TOOL)
    labels = {name: keys["label"] for name, keys, _ in load_source(
        "rules_table_text", lib.REPO_ROOT / "scripts" / "rules-table.py").read_rules(
            lib.REPO_ROOT / RULES_FILE)}
    now = month_figures(expected["figures"], MONTH, "_all")
    before = month_figures(expected["figures"], PREVIOUS_MONTH, "_all")
    problems, checked = [], 0
    for figure, label, section in tool.REPORT_FIGURES:
        if section not in ("intake", "persons", "property", "decisions") or "{rule}" in figure:
            continue
        want = [now.get(figure, 0), before.get(figure, 0)]
        want.append(want[0] - want[1])
        got = rows.get(label, [[]])[0]
        checked += 1
        if got[:2] != want[:2] or (want[2] and got[2:3] != want[2:3]):
            problems.append(f"{label} ({figure}): expected {want}, text {got}")
    for rule in RULES:
        want = [now.get(f"running.{rule}", 0), before.get(f"running.{rule}", 0),
                now.get(f"overdue.{rule}", 0), before.get(f"overdue.{rule}", 0)]
        got = [numbers for numbers in rows.get(labels[rule], []) if len(numbers) == 4]
        checked += 1
        if got[-1:] != [want]:
            problems.append(f"{rule} backlog: expected {want}, text {got}")
    for unit in UNITS:
        mine = month_figures(expected["figures"], MONTH, unit)
        theirs = month_figures(expected["figures"], PREVIOUS_MONTH, unit)
        overdue = sum(v for f, v in mine.items() if f.startswith("overdue."))
        previous = sum(v for f, v in theirs.items() if f.startswith("overdue."))
        line = [ln.split() for ln in completed.stdout.splitlines() if f" {unit} " in f" {ln} "]
        checked += 1
        if not any(words[1:2] == [unit] and words[2:4] == [str(overdue), str(previous)]
                   for words in line):
            problems.append(f"{unit} ranking: expected overdue {overdue} (previous {previous}), "
                            f"text {line}")
    print(f"report text: figures checked={checked} differences={len(problems)}")
    assert not problems, "\n".join(problems) + "\n" + completed.stdout[:4000]


if __name__ == "__main__":
    generated = Month()
    model = model_clocks(generated.events)
    computed = expected_figures(generated.events, model)
    print(f"{len(generated.events)} events, {len(model)} clocks")
    print(collections.Counter(e["type"] for e in generated.events).most_common())
    for item, count in sorted(generated.intent.items()):
        print(f"  {count:4d}  {item}")
    for unit in UNITS + ["_all"]:
        print(unit, {k: v for k, v in computed.get(f"{PREFIX}d:{MONTH}-31:{unit}", {}).items()
                     if k.startswith(SNAPSHOT_FIELDS)})
