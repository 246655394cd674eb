#!/usr/bin/env python3
"""An independent oracle for tests/golden/deadlines.json, the golden table of
legal deadline cases (the specification of duewatch's deadline semantics).

A development tool, not part of the daemon or of `make test`: it reads the
holiday calendar (conf/holidays-cn.conf) and the rules files the cases name
(conf/rules.conf, tests/golden/rules-extra.conf) with its own small parsers,
recomputes every case from the semantics written in README "Deadline
semantics" and include/deadline.h -- in plain Python dates and zoneinfo, not
a line of it taken from daemon/deadline.c or the Lua scripts -- and compares
the result with each case's `expect`.  It also checks the file's shape (the
format the C unit test reads with jansson) and prints what the table covers.

    /usr/bin/python3 tests/golden/oracle.py                # check; exit 1 on a difference
    /usr/bin/python3 tests/golden/oracle.py --show NAME    # one case, computed, as JSON
    /usr/bin/python3 tests/golden/oracle.py --fill         # write the computed `expect` of
                                                           # cases that have none (authoring)

The semantics it implements (the law as README "Deadline semantics" states it):
  - seconds (test rules only): deadline = start + length, never moved.
  - hours (刑事诉讼法 第一百零五条 "开始的时...不算在期间以内"): the local
    hour holding the start is not counted, even when the start is exactly on
    the hour; counting begins at the next whole local hour:
    deadline = (start with its local minutes, seconds and milliseconds set
    to 0) + 1 hour + N hours; never moved.
  - days: the start day is not counted; last day = the Nth day after the
    start date; deadline = 24:00 (local) of the last day.
  - months (刑诉法解释 第二百零二条第一款): the last day is the same
    day-of-month N months after the start date; the last day of the target
    month when the start date is the last day of its month or the target
    month has no such day.  N months are counted at once from the start
    date, not month by month (01-30 + 2 months = 03-30).
  - working days: the Nth working day after the start date.
  - move_to_working_day (day and month rules): a last day on a rest day moves
    to the next working day (第一百零五条 "以节假日后的第一日为期满日期");
    a `custody = yes` rule never moves ("在押期间...不得因节假日而延长"), and
    custody = yes with move_to_working_day = yes is an error.
  - `until` on the start: the deadline is `until`, the last day the local day
    holding until - 1 ms; nothing moves.  For a rule with extension caps (its
    term bounded by law), an `until` later than the deadline the rule
    computes is violation number 0 (a term beyond the law's).
  - each extension, in order: last day += days, then for a move_to_working_day
    or working-day rule the new last day moves to the next working day; the
    deadline is the end of the new last day (also when `until` gave it).  For
    hour/second rules an extension adds days x 86 400 000 ms to the deadline.
  - pause/resume: the deadline and every level move later by the paused
    milliseconds; a pause while paused, or a resume while running, is nothing.
  - warnings: N days = 00:00 of the Nth day counting back from the (unpaused)
    last day, the last day being the 1st; N working days = 00:00 of the Nth
    working day counting back, the last day the 1st if it is worked; N
    hours/seconds = deadline - N; then + the paused time.
  - red at the deadline, repeats at deadline + k x red_repeat (k = 1, 2).
  - expect.last_day = the local day holding (effective deadline - 1 ms).
  - extension caps (rules max_extensions, max_extension_days, max_total_days,
    ground_max_total_days): after each extension, its number n, the days all
    extensions added and the term from the start date to the new last day
    (in days); the extension violates when n > max_extensions, the days >
    max_extension_days, or the term > max_total_days (ground_max_total_days
    for an extension stating a `ground` among the rule's `grounds`; another
    ground counts as none).  A case's `violations` lists the
    numbers of the violating extensions (checked when the case has the key).
  - a stop op (`{"stop": TYPE, "at": T}`, last): TYPE must be among the
    rule's `stop` events; the case's `stopped` is "late" when T is after the
    effective deadline, else "ontime".
  - the starting event: the rule's `start =` type, and for each filter
    `key=v1,v2` of that line its first value, overridden by the case's
    `start_event` ({"scope": "criminal"}); the rule starts a clock only when
    every filter lists the event's value.  A case with expect "no clock"
    asserts that its starting event starts no clock of its rule (a criminal
    seizure, an exempt decision); every other case's starting event must
    start one.
  - backfill (a case with `applied`, no ops): the start is applied at
    `applied`; the levels due by then fire at once, in due order: when
    applied - start > the table's backfill_window_ms, only the latest of
    them; else the latest of those due at or before the start, then every
    one due after the start (red repeats counted on, "red <k>").
"""

import argparse
import datetime
import json
import re
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parents[2]
TABLE = REPO / "tests" / "golden" / "deadlines.json"
DEFAULT_RULES = "conf/rules.conf"
DAY_MS = 86_400_000
UNIT_MS = {"seconds": 1000, "hours": 3_600_000, "days": DAY_MS}
CASE_KEYS = ("name", "basis", "rules_file", "rule", "start", "start_event", "until", "applied",
             "fires", "ops", "violations", "stopped", "expect")
GROUNDS = ("roving", "repeated", "gang", "complex")
NO_CLOCK = "no clock"
EXPECT_KEYS = ("last_day", "deadline", "yellow", "orange", "red_repeats")


class Calendar:
    """Working days from a holidays file: Monday..Friday unless a listed
    holiday, plus the listed worked weekend days.  A day outside the file's
    years is an error."""

    def __init__(self, path):
        self.holidays, self.workdays = set(), set()
        self.first = self.last = None
        self.provisional_from = None
        for number, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            word, _, rest = line.partition(" ")
            rest = rest.strip()
            if word == "years":
                a, b = rest.split("..")
                self.first = datetime.date(int(a), 1, 1)
                self.last = datetime.date(int(b), 12, 31)
            elif word == "provisional":
                self.provisional_from = datetime.date(int(rest.split("..")[0]), 1, 1)
            elif word == "holiday":
                a, _, b = rest.partition("..")
                day, end = datetime.date.fromisoformat(a), datetime.date.fromisoformat(b or a)
                while day <= end:
                    self.holidays.add(day)
                    day += datetime.timedelta(days=1)
            elif word == "workday":
                day = datetime.date.fromisoformat(rest)
                if day.weekday() < 5:
                    raise ValueError(f"{path}:{number}: workday {day} is not a weekend day")
                self.workdays.add(day)
            else:
                raise ValueError(f"{path}:{number}: unknown entry {word!r}")
        if self.holidays & self.workdays:
            raise ValueError(f"{path}: days listed both ways")

    def working(self, day):
        if not (self.first <= day <= self.last):
            raise ValueError(f"{day} is outside the calendar's years")
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def provisional(self, day):
        return self.provisional_from is not None and day >= self.provisional_from


def parse_duration(text):
    """'12 months' -> (amount, unit) with unit seconds|hours|days|months|working days."""
    match = re.fullmatch(r"(\d+)\s+(second|hour|day|month|working day)s?", text.strip())
    if not match:
        raise ValueError(f"bad duration {text!r}")
    return int(match.group(1)), match.group(2) + "s"


VERSION_EVENT_KEYS = ("start", "stop", "extend", "pause", "resume", "key")


def load_sections(path):
    """{(name, since): keys} of a rules file, in file order: since is None
    for a rule's first section, else the date of a version section
    `[name since YYYY-MM-DD]`, whose keys are its rule's latest section's
    with its own on top (it may not change the events or the key, and must
    give its own basis)."""
    sections, latest, current = {}, {}, None
    for number, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            name, _, since = line.strip("[]").partition(" since ")
            name = name.strip()
            if since:
                since = datetime.date.fromisoformat(since.strip())
                if name not in latest or (latest[name] is not None and since <= latest[name]):
                    raise ValueError(f"{path}:{number}: version {since} of {name} out of order")
                current = {"__own__": set()}
                current.update({k: v for k, v in sections[(name, latest[name])].items()
                                if k != "__own__"})
            else:
                since, current = None, {"__own__": set()}
            latest[name] = since
            sections[(name, since)] = current
            continue
        key, _, value = line.partition("=")
        current[key.strip()] = value.strip()
        current["__own__"].add(key.strip())
    for (name, since), keys in sections.items():
        if since is not None and ("basis" not in keys["__own__"] or
                                  keys["__own__"] & set(VERSION_EVENT_KEYS)):
            raise ValueError(f"{path}: version {since} of {name}: own basis, same events")
    return sections


def in_force(rule, day):
    """The version of `rule` (load_rules) for a clock started on local date day."""
    chosen = rule
    for since, version in rule["versions"]:
        if since <= day:
            chosen = version
    return chosen


def load_rules(path):
    """{name: rule}; rule["versions"] lists (since, rule) of its later versions."""
    result = {}
    for (name, since), keys in load_sections(path).items():
        def warning(text):
            return None if text == "none" else parse_duration(text)
        repeat = warning(keys["red_repeat"])
        custody = keys.get("custody", "no") == "yes"
        if custody and keys.get("move_to_working_day", "no") == "yes":
            raise ValueError(f"{path}: rule {name}: custody = yes is never moved off rest days")

        def cap(key):
            value = keys.get(key, "none")
            return None if value == "none" else int(value)
        grounds = {g.strip() for g in keys.get("grounds", "").split(",") if g.strip()}
        if not grounds <= set(GROUNDS) or (bool(grounds) != (cap("ground_max_total_days")
                                                             is not None)):
            raise ValueError(f"{path}: rule {name}: grounds {sorted(grounds)} and "
                             "ground_max_total_days go together, from the contract's grounds")
        rule = {
            "caps": {key: cap(key) for key in ("max_extensions", "max_extension_days",
                                               "max_total_days", "ground_max_total_days")},
            "grounds": grounds,
            "length": parse_duration(keys["length"]),
            "move": keys.get("move_to_working_day", "no") == "yes",
            "yellow": warning(keys["yellow"]),
            "orange": warning(keys["orange"]),
            "repeat_ms": 0 if repeat is None else repeat[0] * UNIT_MS[repeat[1]],
            "start": keys["start"], "stop": keys["stop"], "extend": keys.get("extend"),
            "pause": keys.get("pause"), "resume": keys.get("resume"), "key": keys["key"],
            "versions": [],
        }
        if since is None:
            result[name] = rule
        else:
            result[name]["versions"].append((since, rule))
    return result


class Clock:
    """Local times <-> epoch ms in one zone."""

    def __init__(self, zone):
        self.zone = ZoneInfo(zone)

    def ms(self, text):
        for form in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"):
            try:
                moment = datetime.datetime.strptime(text, form)
                break
            except ValueError:
                continue
        else:
            raise ValueError(f"bad local time {text!r}")
        return int(moment.replace(tzinfo=self.zone).timestamp() * 1000)

    def local(self, ms):
        return datetime.datetime.fromtimestamp(ms / 1000, tz=self.zone)

    def text(self, ms):
        moment = self.local(ms)
        form = "%Y-%m-%d %H:%M" if moment.second == 0 and moment.microsecond == 0 else \
            "%Y-%m-%d %H:%M:%S"
        if moment.microsecond:
            raise ValueError(f"{ms} is not a whole second")
        return moment.strftime(form)

    def day(self, ms):
        return self.local(ms).date()

    def midnight(self, day):
        return int(datetime.datetime(day.year, day.month, day.day, tzinfo=self.zone)
                   .timestamp() * 1000)


def month_length(year, month):
    following = datetime.date(year + (month == 12), month % 12 + 1, 1)
    return (following - datetime.date(year, month, 1)).days


def month_term_last_day(start, months):
    """The last day of a term of `months` months starting on `start` (the start
    day not counted): "自本月某日至下月同日为一个月；期间起算日为本月最后一日的，
    至下月最后一日为一个月；下月同日不存在的，自本月某日至下月最后一日为一个月"."""
    year, month = divmod(start.year * 12 + (start.month - 1) + months, 12)
    month += 1
    target_length = month_length(year, month)
    if start.day == month_length(start.year, start.month) or start.day > target_length:
        return datetime.date(year, month, target_length)
    return datetime.date(year, month, start.day)


def hour_term_deadline(start_ms, hours, clock):
    """"开始的时不算": counting begins at the next whole local hour after the
    start (the hour holding the start is never counted, also at HH:00:00.000)."""
    local = clock.local(start_ms)
    into_hour = (local.minute * 60 + local.second) * 1000 + start_ms % 1000
    return start_ms - into_hour + UNIT_MS["hours"] + hours * UNIT_MS["hours"]


def next_working(calendar, day):
    while not calendar.working(day):
        day += datetime.timedelta(days=1)
    return day


def compute(case, calendar, rules_by_file, clock):
    """The case's expectations, from its rule, start, until and ops."""
    start = clock.ms(case["start"])
    rule = in_force(rules_by_file[case.get("rules_file") or DEFAULT_RULES][case["rule"]],
                    clock.day(start))
    amount, unit = rule["length"]
    exact = unit in ("seconds", "hours")
    one = datetime.timedelta(days=1)

    # The term as the rule defines it.
    if unit == "hours":
        base = hour_term_deadline(start, amount, clock)
        last = clock.day(base - 1)
    elif exact:
        base = start + amount * UNIT_MS[unit]
        last = clock.day(base - 1)
    else:
        start_day = clock.day(start)
        if unit == "days":
            last = start_day + datetime.timedelta(days=amount)
        elif unit == "months":
            last = month_term_last_day(start_day, amount)
        else:
            last, counted = start_day, 0
            while counted < amount:
                last += one
                counted += calendar.working(last)
        if rule["move"]:
            last = next_working(calendar, last)
        base = clock.midnight(last + one)
    # The starting event's `until` overrides it; one later than the rule's
    # term is a violation, number 0.
    violations = []
    if case.get("until") is not None:
        bounded = any(cap is not None for cap in rule["caps"].values())
        if bounded and clock.ms(case["until"]) > base:
            violations.append(0)
        base = clock.ms(case["until"])
        last = clock.day(base - 1)

    # Extensions, pauses and resumes, in order; a stop ends them.
    paused_total, paused_since = 0, None
    caps, extensions, extended = rule["caps"], 0, 0
    stop_at = None
    start_day = clock.day(start)
    for op in case["ops"]:
        if stop_at is not None:
            raise ValueError(f"{case['name']}: an op after the stop")
        if "stop" in op:
            if op["stop"] not in [t.strip() for t in rule["stop"].split(",")]:
                raise ValueError(f"{case['name']}: {op['stop']} does not stop {case['rule']}")
            stop_at = clock.ms(op["at"])
            continue
        if "extend" in op:
            days = op["extend"]
            if exact:
                base += days * DAY_MS
                last = clock.day(base - 1)
            else:
                last += datetime.timedelta(days=days)
                if rule["move"] or unit == "working days":
                    last = next_working(calendar, last)
                base = clock.midnight(last + one)
            extensions += 1
            extended += days
            total_cap = caps["max_total_days"]
            if op.get("ground") in rule["grounds"] and caps["ground_max_total_days"] is not None:
                total_cap = caps["ground_max_total_days"]
            if ((caps["max_extensions"] is not None and extensions > caps["max_extensions"]) or
                    (caps["max_extension_days"] is not None and
                     extended > caps["max_extension_days"]) or
                    (total_cap is not None and (last - start_day).days > total_cap)):
                violations.append(extensions)
        elif "pause" in op:
            if paused_since is None:
                paused_since = clock.ms(op["pause"])
        elif "resume" in op:
            if paused_since is not None:
                paused_total += max(0, clock.ms(op["resume"]) - paused_since)
                paused_since = None
        else:
            raise ValueError(f"{case['name']}: unknown op {op}")
    if paused_since is not None:
        raise ValueError(f"{case['name']}: ends paused (no deadline)")

    def warning(before):
        if before is None:
            return None
        n, kind = before
        if kind in ("seconds", "hours"):
            due = base - n * UNIT_MS[kind]
        elif kind == "days":
            due = clock.midnight(last - datetime.timedelta(days=n - 1))
        elif kind == "working days":
            day = last
            while not calendar.working(day):
                day -= one
            for _ in range(n - 1):
                day -= one
                while not calendar.working(day):
                    day -= one
            due = clock.midnight(day)
        else:
            raise ValueError(f"a warning in {kind}")
        return clock.text(due + paused_total)

    yellow, orange = warning(rule["yellow"]), warning(rule["orange"])
    deadline = base + paused_total
    repeat = rule["repeat_ms"]
    expect = {
        "last_day": clock.day(deadline - 1).isoformat(),
        "deadline": clock.text(deadline),
        "yellow": yellow,
        "orange": orange,
        "red_repeats": [clock.text(deadline + k * repeat) for k in (1, 2)] if repeat else [],
    }
    uses_calendar = (unit == "working days" or (rule["move"] and not exact) or
                     any(w and w[1] == "working days" for w in (rule["yellow"], rule["orange"])))
    provisional = uses_calendar and calendar.provisional(last)
    outcome = {"violations": violations,
               "stopped": None if stop_at is None else
               ("late" if stop_at > deadline else "ontime")}
    return expect, provisional, outcome


def start_filters(start):
    """'property.seized kind=seize,seal scope=admin' -> ('property.seized',
    {'kind': ['seize', 'seal'], 'scope': ['admin']}); a word without '='
    continues the previous value list ('kind=seize, seal')."""
    words = start.split()
    filters, current = {}, None
    for word in words[1:]:
        if "=" in word:
            current, _, word = word.partition("=")
            filters[current] = []
        filters[current] += [value for value in word.split(",") if value]
    return words[0], filters


def starts_clock(case, rule):
    """Whether the case's starting event passes its rule's start filters."""
    _, filters = start_filters(rule["start"])
    event = {key: values[0] for key, values in filters.items()}
    event.update(case.get("start_event") or {})
    return all(event.get(key) in values for key, values in filters.items())


def fires(case, expect, rule, window, clock):
    """The levels a backfill case's start fires when applied, in order."""
    start, applied = clock.ms(case["start"]), clock.ms(case["applied"])
    due = [(clock.ms(expect[level]), level) for level in ("yellow", "orange")
           if expect[level] is not None]
    deadline, k = clock.ms(expect["deadline"]), 0
    while deadline + k * rule["repeat_ms"] <= applied:
        due.append((deadline + k * rule["repeat_ms"], "red" if k == 0 else f"red {k}"))
        if rule["repeat_ms"] == 0:
            break
        k += 1
    due = sorted(level for level in due if level[0] <= applied)
    if applied - start > window:
        return [level for _, level in due[-1:]]
    before = [level for when, level in due if when <= start]
    return before[-1:] + [level for when, level in due if when > start]


def same_expect(table_expect, computed, clock):
    """Equal, comparing local times as instants ("08:01" == "08:01:00")."""
    def norm(key, value):
        if value is None or key == "last_day":
            return value
        if isinstance(value, list):
            return [clock.ms(v) for v in value]
        return clock.ms(value)
    try:
        return all(norm(k, table_expect.get(k)) == norm(k, computed.get(k)) for k in computed)
    except (ValueError, TypeError, AttributeError):
        return False


def check_shape(table):
    problems = []
    for key in ("format", "about", "calendar", "time_zone", "backfill_window_ms", "cases"):
        if key not in table:
            problems.append(f"top-level key {key!r} missing")
    if table.get("format") != 1:
        problems.append("format must be 1")
    names = set()
    for index, case in enumerate(table.get("cases", [])):
        name = case.get("name", f"#{index}")
        if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name):
            problems.append(f"{name}: name is not kebab-case")
        if name in names:
            problems.append(f"{name}: name used twice")
        names.add(name)
        unknown = set(case) - set(CASE_KEYS)
        if unknown:
            problems.append(f"{name}: unknown keys {sorted(unknown)}")
        for key in ("basis", "rule", "start", "ops"):
            if key not in case:
                problems.append(f"{name}: {key!r} missing")
        if "until" not in case:
            problems.append(f"{name}: 'until' missing (null when none)")
        if not case.get("basis") or not re.search(r"[\u4e00-\u9fff]", case.get("basis", "")):
            problems.append(f"{name}: basis must quote the law (in Chinese)")
        if ("applied" in case) != ("fires" in case) or ("applied" in case and case.get("ops")):
            problems.append(f"{name}: 'applied' and 'fires' go together, in a case without ops")
        for op in case.get("ops", []):
            if not (set(op) in ({"extend", "at"}, {"extend", "at", "ground"}, {"pause"},
                                {"resume"}, {"stop", "at"})):
                problems.append(f"{name}: bad op {op}")
            if "ground" in op and op["ground"] not in GROUNDS:
                problems.append(f"{name}: ground {op['ground']!r} is not one of {GROUNDS}")
        stops = any("stop" in op for op in case.get("ops", []))
        if stops != ("stopped" in case) or case.get("stopped", "ontime") not in ("ontime", "late"):
            problems.append(f"{name}: a stop op and 'stopped' (ontime|late) go together")
        expect = case.get("expect")
        start_event = case.get("start_event", {})
        if not isinstance(start_event, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in start_event.items()):
            problems.append(f"{name}: start_event must map enumerated keys to strings")
        if expect == NO_CLOCK:
            if case.get("ops") or "applied" in case or case.get("until") is not None:
                problems.append(f"{name}: a 'no clock' case has no ops, applied or until")
        elif expect is not None and tuple(expect) != EXPECT_KEYS:
            problems.append(f"{name}: expect keys must be {EXPECT_KEYS} in this order")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", default=str(TABLE))
    parser.add_argument("--show", metavar="NAME")
    parser.add_argument("--fill", action="store_true")
    args = parser.parse_args()

    table = json.loads(Path(args.table).read_text(encoding="utf-8"))
    calendar = Calendar(REPO / table["calendar"])
    clock = Clock(table["time_zone"])
    files = {case.get("rules_file") or DEFAULT_RULES for case in table["cases"]}
    rules_by_file = {f: load_rules(REPO / f) for f in files | {DEFAULT_RULES}}

    if args.show:
        case = next(c for c in table["cases"] if c["name"] == args.show)
        expect, provisional, outcome = compute(case, calendar, rules_by_file, clock)
        print(json.dumps({"expect": expect, "provisional": provisional, **outcome},
                         ensure_ascii=False, indent=2))
        return 0

    problems = check_shape(table)
    filled = 0
    coverage = {}
    provisional_cases = 0
    for case in table["cases"]:
        rules_file = case.get("rules_file") or DEFAULT_RULES
        rule = rules_by_file[rules_file].get(case.get("rule"))
        if rule is None:
            problems.append(f"{case.get('name')}: rule {case.get('rule')} is not in {rules_file}")
            continue
        if case.get("expect") == NO_CLOCK:
            coverage.setdefault(f"{rules_file}:{case['rule']}", []).append(case["name"])
            if starts_clock(case, rule):
                problems.append(f"{case['name']}: expects no clock, but its start event "
                                f"passes the start filters of {case['rule']}")
            continue
        if not starts_clock(case, rule):
            problems.append(f"{case['name']}: its start event does not pass the start "
                            f"filters of {case['rule']}")
        try:
            expect, provisional, outcome = compute(case, calendar, rules_by_file, clock)
        except (ValueError, KeyError) as error:
            problems.append(f"{case.get('name')}: cannot compute: {error}")
            continue
        for key in ("violations", "stopped"):
            if key in case and case[key] != outcome[key]:
                problems.append(f"{case['name']}: {key}: table {case[key]!r}, "
                                f"oracle {outcome[key]!r}")
        provisional_cases += provisional
        coverage.setdefault(f"{rules_file}:{case['rule']}", []).append(case["name"])
        if case.get("expect") is None:
            if args.fill:
                case["expect"] = expect
                filled += 1
            else:
                problems.append(f"{case['name']}: no expect")
            continue
        if "applied" in case:
            rule = in_force(rules_by_file[rules_file][case["rule"]],
                            clock.day(clock.ms(case["start"])))
            fired = fires(case, expect, rule, table["backfill_window_ms"], clock)
            if fired != case["fires"]:
                problems.append(f"{case['name']}: fires: table {case['fires']!r}, "
                                f"oracle {fired!r}")
        if not same_expect(case["expect"], expect, clock):
            for key in EXPECT_KEYS:
                if not same_expect({key: case["expect"].get(key)}, {key: expect[key]}, clock):
                    problems.append(f"{case['name']}: {key}: table {case['expect'].get(key)!r}, "
                                    f"oracle {expect[key]!r}")
    if args.fill and filled:
        Path(args.table).write_text(json.dumps(table, ensure_ascii=False, indent=2) + "\n",
                                    encoding="utf-8")
        print(f"filled {filled} expectations")

    shipped = set(rules_by_file[DEFAULT_RULES])
    used = {key.split(":", 1)[1] for key in coverage if key.startswith(DEFAULT_RULES + ":")}
    for name in sorted(shipped - used):
        problems.append(f"shipped rule {name} has no case")
    for key in sorted(coverage):
        print(f"  {len(coverage[key]):3d}  {key}")
    print(f"{len(table['cases'])} cases, {provisional_cases} on provisional calendar years")
    for problem in problems:
        print(f"DIFF {problem}")
    print("oracle: OK" if not problems else f"oracle: {len(problems)} problem(s)")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
