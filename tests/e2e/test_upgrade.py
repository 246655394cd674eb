"""Upgrade from stored format versions 0, 2 and 3: the current duewatchd
takes over the Redis state an older release left with clocks running and
alerts claimed but undelivered, and loses nothing, repeats nothing.  Version
0: 6b12055, untagged clock records and outbox payloads; version 2: 644d878,
values tagged "@2|", clock records with extension counts, outbox payloads
without a resolution's `resolves`; version 3: 6349ada, values tagged "@3|",
clock records with decimal numbers, outbox payloads with `resolves`
(include/formats.h).

The state is tests/e2e/fixtures/upgrade-v<N>.json, written by the old daemon
itself (tests/e2e/fixtures/make_upgrade_fixture.py says how).  The test loads
it into a fresh Redis, produces the same event messages to a fresh mock
cluster (so the offsets in dw:offsets are theirs), starts the current daemon
and checks:

  (a) every alert waiting in the old outbox is delivered with its
      original alert_id and payload, and the outbox empties;
  (b) the running clocks go on from what their old records hold: as
      event time advances, the next levels fire with the recorded deadlines,
      and a resume, an extension and stops act on them; the expected alerts
      (ids, deadlines, due times) come from a model of the clock rules
      applied to the fixture's records, not from the current code;
      a resolution names (resolves) the ids its clock sent under its
      deadline, the old release's included;
  (c) nothing is dead-lettered, no alert is sent twice, and every clock
      record the new daemon wrote is in the current format.
"""

import base64
import datetime
import hashlib
import json
import re
from zoneinfo import ZoneInfo

import msgpack
import pytest

import duewatch_testlib as lib
import events as ev
from ingest_checks import wait_applied

FIXTURES = lib.REPO_ROOT / "tests" / "e2e" / "fixtures"
ALERT_TOPIC = "duewatch.alerts"
DEAD_LETTER_TOPIC = "duewatch.deadletter"
READY = r"kafka: consuming duewatch\.events"
ZONE = ZoneInfo("Asia/Shanghai")
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
LEVELS = ("yellow", "orange", "red")

# The shipped rules (conf/rules.conf) of the clocks in the fixture: the
# warnings (unit, amount) before the deadline, the red repeat, whether an
# extension moves the last day to a working day (bail is not custody: since
# issue 14 its last day moves, 刑事诉讼法 第一百零五条), and how many extensions the
# law allows (an extension beyond raises a violation alert; README
# "Extension caps").
RULES = {
    "bail_expiry": {"yellow": ("d", 15), "orange": ("d", 3), "repeat": DAY_MS, "move": True,
                    "max_extensions": 0},
    "admin_case_limit": {"yellow": ("d", 7), "orange": ("d", 3), "repeat": DAY_MS, "move": True},
    "detention_unexecuted": {"yellow": None, "orange": ("h", 12), "repeat": DAY_MS, "move": False},
    "incident_unaccepted": {"yellow": None, "orange": ("h", 6), "repeat": DAY_MS, "move": False},
    "property_hold_limit": {"yellow": ("d", 7), "orange": ("d", 3), "repeat": DAY_MS,
                            "move": False},
}


def at(text):
    """'2025-05-31 12:00' in Asia/Shanghai -> epoch ms."""
    moment = datetime.datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=ZONE)
    return int(moment.timestamp() * 1000)


def day_start(day):
    """Epoch ms of the local midnight starting day number `day` (days since
    1970-01-01, local)."""
    date = datetime.date(1970, 1, 1) + datetime.timedelta(days=day)
    return int(datetime.datetime(date.year, date.month, date.day, tzinfo=ZONE).timestamp() * 1000)


def read_working_days(path):
    """working(day number) from a holidays file: Monday..Friday unless a
    listed holiday, plus the listed worked weekend days."""
    holidays, workdays = set(), set()
    for raw in path.read_text(encoding="utf-8").splitlines():
        words = raw.split("#", 1)[0].split()
        if len(words) != 2 or words[0] not in ("holiday", "workday"):
            continue
        first, _, last = words[1].partition("..")
        day = datetime.date.fromisoformat(first)
        end = datetime.date.fromisoformat(last or first)
        while day <= end:
            (holidays if words[0] == "holiday" else workdays).add(day)
            day += datetime.timedelta(days=1)

    def working(number):
        date = datetime.date(1970, 1, 1) + datetime.timedelta(days=number)
        return date in workdays or (date.weekday() < 5 and date not in holidays)
    return working


WORKING = read_working_days(lib.REPO_ROOT / "conf" / "holidays-cn.conf")


def local_day(ms):
    moment = datetime.datetime.fromtimestamp(ms / 1000, tz=ZONE)
    return (moment.date() - datetime.date(1970, 1, 1)).days


def alert_id(rule, key, deadline, level, seq):
    """Version 0's alert id (clock_lib.lua alert_id): stable per rule, key,
    deadline, level ('resolved' for a resolution) and repeat number."""
    return hashlib.sha1(f"{rule}|{key}|{deadline}|{level}|{seq}".encode()).hexdigest()[:32]


# --------------------------------------------------------------------------
# A model of the clock rules (version 0: daemon/lua/lib/clock_lib.lua at 6b12055;
# version 2, 644d878, computes the same in C, with issue 14's extension rules)


def optional_int(text):
    return int(text) if text != "" else None


def decimal_record(body, version, fields):
    """An old clock record's body with its numbers in decimal: version 4
    wrote them in base 36, defaults left empty, in the current version's
    layout (lib.decode_stored reads it)."""
    if version < 4:
        return body
    tag, _ = lib.stored_format("CLOCK_RECORD_FIELDS")
    decoded = lib.decode_stored(tag + body)
    return "|".join(decoded[name] for name in fields)


def due_shard(member):
    """The shard of a clock's due entry since format version 5: FNV-1a of
    "<rule>:<key>" modulo 8 (include/formats.h DUE_SHARDS), computed here
    apart from the daemon's code."""
    value = 2166136261
    for byte in member.encode():
        value = ((value ^ byte) * 16777619) & 0xFFFFFFFF
    return value % 8


def untagged(value, tag):
    """A stored value without its format tag (tag '' for version 0)."""
    assert value.startswith(tag) and not value[len(tag):].startswith("@"), (value, tag)
    return value[len(tag):]


class Clock:
    """One clock as an old record holds it, and what happens to it."""

    def __init__(self, rule, key, record, fields):
        values = record.split("|")
        assert len(values) == len(fields), (record, fields)
        r = dict(zip(fields, values))
        self.rule, self.key, self.spec = rule, key, RULES[rule]
        self.unit, self.case = r["unit"], r["case"]
        self.subject, self.cause = r["subject"], r["cause"]
        self.started_at = int(r["started_at"])
        self.last_day = optional_int(r["last_day"])
        self.base_deadline = int(r["base_deadline"])
        self.paused_total = int(r["paused_total"])
        self.paused_since = optional_int(r["paused_since"])
        self.fired = int(r["fired"])
        self.seq = int(r["seq"])
        self.next_due = optional_int(r["next_due"])
        self.partition = r["partition"]
        # not in a version-0 record: none counted
        self.extensions = int(r.get("extensions", 0))
        self.extended_days = int(r.get("extended_days", 0))
        self.stopped = False
        assert self.next_due == (None if self.paused_since is not None else self.next()[2]), \
            f"the model disagrees with the old record of {rule}:{key}: {record}"

    def deadline(self):
        return self.base_deadline + self.paused_total

    def warning_due(self, unit, amount):
        if unit == "h":
            return self.deadline() - amount * HOUR_MS
        assert unit == "d", unit
        last = self.last_day if self.last_day is not None else local_day(self.base_deadline - 1)
        return day_start(last - amount + 1) + self.paused_total

    def level_due(self, level, seq):
        if level < 2:
            warning = self.spec[LEVELS[level]]
            return None if warning is None else self.warning_due(*warning)
        return self.deadline() + seq * self.spec["repeat"]

    def next(self):
        """(level, seq, due) of the next level to fire, or None."""
        level, seq = (2, self.seq) if self.fired >= 2 else (self.fired + 1, 0)
        while level <= 2:
            due = self.level_due(level, seq)
            if due is not None:
                return level, seq, due
            level += 1
        return None

    def alert(self, level, seq, due, state="firing", resolved_by=None, late=None):
        name = LEVELS[level]
        alert = {"alert_id": alert_id(self.rule, self.key, self.deadline(),
                                      "resolved" if state == "resolved" else name,
                                      0 if state == "resolved" else seq),
                 "rule": self.rule, "level": name, "state": state, "seq": seq,
                 "unit": self.unit, "case": self.case, "ref": self.key, "subject": self.subject,
                 "started_at": self.started_at, "deadline": self.deadline(), "due_at": due,
                 "cause": self.cause}
        if state == "resolved":
            alert.update(resolved_by=resolved_by, late=late, resolves=self.resolves())
        return alert

    def resolves(self):
        """What a resolution now names (README "Alert message"): the ids of
        the levels under the current deadline, yellow and orange where the
        rule has them and the clock reached them, the latest 8 red repeats."""
        ids = [alert_id(self.rule, self.key, self.deadline(), LEVELS[level], 0)
               for level in (0, 1) if level <= self.fired and self.spec[LEVELS[level]]]
        if self.fired >= 2:
            ids += [alert_id(self.rule, self.key, self.deadline(), "red", seq)
                    for seq in range(max(0, self.seq - 8), self.seq)]
        return ids

    def fire_through(self, horizon):
        """Every level due by `horizon`, in order (event mode never collapses)."""
        fired = []
        while True:
            upcoming = self.next()
            if upcoming is None or upcoming[2] > horizon:
                return fired
            level, seq, due = upcoming
            fired.append(self.alert(level, seq, due))
            self.fired = level
            self.seq = seq + 1 if level == 2 else 0

    def claim(self, now):
        if self.stopped or self.paused_since is not None:
            return []  # a paused clock is not in the due index
        return self.fire_through(now)

    def resume(self, ts):
        assert self.paused_since is not None
        self.paused_total += max(0, ts - self.paused_since)
        self.paused_since = None
        return []

    def extend(self, days, ts):
        assert self.last_day is not None, "not modelled"
        fired = self.fire_through(ts)
        self.last_day += days
        while self.spec["move"] and not WORKING(self.last_day):
            self.last_day += 1
        self.base_deadline = day_start(self.last_day + 1)
        if self.fired >= 2:
            self.seq = 0
        self.extensions += 1
        self.extended_days += days
        cap = self.spec.get("max_extensions")
        if cap is not None and self.extensions > cap:
            fired.append({"alert_id": alert_id(self.rule, self.key, self.deadline(), "violation",
                                               self.extensions),
                          "rule": self.rule, "level": "violation", "state": "firing",
                          "seq": self.extensions, "unit": self.unit, "case": self.case,
                          "ref": self.key, "subject": self.subject,
                          "started_at": self.started_at, "deadline": self.deadline(),
                          "due_at": ts, "cause": self.cause})
        return fired

    def stop(self, ts, event_id):
        fired = self.fire_through(ts)
        self.stopped = True
        if self.fired >= 0:
            fired.append(self.alert(self.fired, 0, ts, "resolved", event_id,
                                    ts > self.deadline()))
        return fired

    def stored_fields(self):
        """What the record should hold now, by field name (strings)."""
        upcoming = None if self.paused_since is not None else self.next()
        text = lambda value: "" if value is None else str(value)
        return {"unit": self.unit, "case": self.case, "subject": self.subject,
                "cause": self.cause, "started_at": str(self.started_at),
                "last_day": text(self.last_day), "base_deadline": str(self.base_deadline),
                "paused_total": str(self.paused_total), "paused_since": text(self.paused_since),
                "fired": str(self.fired), "seq": str(self.seq),
                "next_due": text(upcoming[2] if upcoming else None),
                "partition": self.partition, "extensions": str(self.extensions),
                "extended_days": str(self.extended_days)}


# --------------------------------------------------------------------------
# Loading the fixture


def load_fixture(version):
    fixture = json.loads((FIXTURES / f"upgrade-v{version}.json").read_text())
    assert fixture["format_version"] == version
    return fixture


def restore(client, dump):
    """Writes the dumped keys (type-aware, with their remaining TTLs)."""
    pipe = client.pipeline(transaction=False)
    for key, entry in dump.items():
        kind, value = entry["type"], entry["value"]
        if kind == "string":
            pipe.set(key, value)
        elif kind == "hash":
            pipe.hset(key, mapping=value)
        elif kind == "zset":
            pipe.zadd(key, {member: score for member, score in value})
        elif kind == "set":
            pipe.sadd(key, *value)
        elif kind == "list":
            pipe.rpush(key, *value)
        else:
            raise AssertionError(f"{key}: type {kind}")
        if entry["pttl"] > 0:
            pipe.pexpire(key, entry["pttl"])
    pipe.execute()


def read_alerts(bootstrap, count, settle):
    records = lib.consume_all(bootstrap, ALERT_TOPIC, count=count, timeout=30, settle=settle)
    return [msgpack.unpackb(record.value) for record in records]


def comparable(alert):
    """The fields an alert message shares with its outbox payload and the model."""
    keys = ("alert_id", "rule", "level", "state", "seq", "unit", "case", "ref", "subject",
            "started_at", "deadline", "due_at", "cause")
    result = {key: alert.get(key) for key in keys}
    if alert.get("state") == "resolved":
        result.update(resolved_by=alert.get("resolved_by"), late=alert.get("late"),
                      resolves=alert.get("resolves"))
    return result


def ordered(alerts):
    return sorted(alerts, key=lambda a: (a["ref"], a["due_at"], a["alert_id"]))


def from_payload(alert_id_text, payload, fields):
    """An old outbox payload (untagged) as the alert message must carry it."""
    values = payload.split("|")
    assert len(values) == len(fields), payload
    p = dict(zip(fields, values))
    alert = {"alert_id": alert_id_text}
    for key in ("rule", "level", "state", "unit", "case", "ref", "subject", "cause"):
        alert[key] = p[key]
    for key in ("seq", "started_at", "deadline", "due_at"):
        alert[key] = int(p[key])
    if p["state"] == "resolved":
        # a version 0 to 2 resolution names no ids
        alert.update(resolved_by=p["resolved_by"], late=p["late"] == "1",
                     resolves=p["resolves"].split(",") if p.get("resolves") else [])
    return alert


@pytest.mark.parametrize("version", [0, 2, 3, 4],
                         ids=["format_v0", "format_v2", "format_v3", "format_v4"])
def test_upgrade_keeps_clocks_and_outbox(version, mock_cluster_factory, redis_server,
                                         daemon_factory, rng):
    fixture = load_fixture(version)
    tag = fixture["format_tag"]
    prefix, partition, unit = fixture["key_prefix"], fixture["partition"], fixture["unit"]
    event_topic = fixture["event_topic"]
    topic_partition = int(partition.rpartition(":")[2])
    outbox_key = f"{prefix}outbox:{partition}"
    client = redis_server.client()

    # The model's clocks, checked against the records they come from.
    records = {c["key"]: fixture["redis"][f"{prefix}clock:{c['rule']}:{c['key']}"]["value"]
               for c in fixture["clocks"]}
    clocks = {c["key"]: Clock(c["rule"], c["key"],
                              decimal_record(untagged(records[c["key"]], tag), version,
                                             fixture["clock_record_fields"]),
                              fixture["clock_record_fields"])
              for c in fixture["clocks"]}
    # the old release's due index: every armed clock in its unsharded bucket
    old_buckets = {key for key in fixture["redis"]
                   if key.startswith(f"{prefix}due:{partition}:")}
    assert old_buckets and all("." not in key.rpartition(":")[2] for key in old_buckets)
    waiting = {alert_id_text: from_payload(alert_id_text, untagged(payload, tag),
                                           fixture["outbox_payload_fields"])
               for alert_id_text, payload in fixture["outbox"].items()}
    assert len(waiting) >= 3
    for alert in waiting.values():  # the ids are the old release's own
        assert alert["alert_id"] == alert_id(alert["rule"], alert["ref"], alert["deadline"],
                                             alert["level"], alert["seq"])

    restore(client, fixture["redis"])
    assert client.dbsize() == len(fixture["redis"])
    cluster = mock_cluster_factory(topics=fixture["topics"])
    messages = [(base64.b64decode(m["key"]), base64.b64decode(m["value"]))
                for m in fixture["messages"]]
    positions = lib.produce(cluster.bootstrap, event_topic, messages, partition=topic_partition)
    assert [offset for _, offset in positions] == [m["offset"] for m in fixture["messages"]]
    assert client.hget(f"{prefix}offsets", partition) == str(len(messages))

    daemon = daemon_factory(dict(fixture["daemon_settings"], key_prefix=prefix),
                            cluster=cluster, wait_for=READY)

    # (a) the old outbox is delivered as it was claimed
    first = read_alerts(cluster.bootstrap, len(waiting), settle=1.5)
    assert sorted(map(comparable, first), key=lambda a: a["alert_id"]) == \
        sorted(waiting.values(), key=lambda a: a["alert_id"])
    lib.wait_until(lambda: client.hlen(outbox_key) == 0, 15, message="the outbox emptied")

    # (b) event time goes on; the clocks go on from their old records
    def event(type, when, **fields):
        return ev.valid_event(rng, type, at(when), unit, **fields)

    stop_incident = event("incident.accepted", "2025-05-31 13:00", ref="JQ9", case="A9")
    resume_x6 = event("case.resumed", "2025-06-01 00:00", case="X6")
    extend_qb1 = event("measure.extended", "2025-06-02 00:00", case="A1", ref="QB1", days=10)
    release_ky7 = event("property.released", "2025-06-02 10:00", case="A7", ref="KY7")
    execute_jl3 = event("detention.executed", "2025-06-02 12:00", case="X3", ref="JL3")
    phases = [
        [event("clock.tick", "2025-05-31 12:00")],
        [stop_incident, resume_x6, extend_qb1, release_ky7, execute_jl3],
        [event("clock.tick", "2025-06-21 12:00")],
    ]
    operations = {
        stop_incident["id"]: lambda e: clocks["JQ9"].stop(e["ts"], e["id"]),
        resume_x6["id"]: lambda e: clocks["X6"].resume(e["ts"]),
        extend_qb1["id"]: lambda e: clocks["QB1"].extend(e["days"], e["ts"]),
        release_ky7["id"]: lambda e: clocks["KY7"].stop(e["ts"], e["id"]),
        execute_jl3["id"]: lambda e: clocks["JL3"].stop(e["ts"], e["id"]),
    }
    expected = []
    for phase in phases:
        for e in phase:
            if e["id"] in operations:
                expected += operations[e["id"]](e)
            for clock in clocks.values():
                expected += clock.claim(e["ts"])
        lib.produce(cluster.bootstrap, event_topic, ev.to_messages(phase),
                    partition=topic_partition)
        wait_applied(cluster.bootstrap, client)
    levels_after = {(a["ref"], a["level"], a["state"]) for a in expected}
    # what the story is meant to cover
    covered = {("QB1", "orange", "firing"), ("QB1", "red", "firing"), ("QB2", "red", "firing"),
               ("QB1", "violation", "firing"),
               ("X5", "yellow", "firing"), ("X6", "red", "firing"), ("JL3", "red", "firing"),
               ("JQ9", "orange", "firing"), ("JQ9", "red", "resolved"),
               ("KY7", "red", "resolved"), ("JL3", "red", "resolved")}
    assert covered <= levels_after, covered - levels_after

    everything = read_alerts(cluster.bootstrap, len(waiting) + len(expected), settle=2.0)
    later = [comparable(a) for a in everything if a["alert_id"] not in waiting]
    assert ordered(later) == ordered(expected)

    # a resolution names what its clock sent under its deadline, before the
    # upgrade (the old release's ids) and after: KY7's yellow, orange and latest 8
    # reds, JL3's orange and red (event mode fires every level: none skipped)
    for ref in ("KY7", "JL3"):
        # in level and repeat order (the old outbox was re-sent in any order)
        sent = sorted((a for a in everything if a["ref"] == ref and a["state"] == "firing"),
                      key=lambda a: (LEVELS.index(a["level"]), a["seq"]))
        resolution, = [a for a in everything if a["ref"] == ref and a["state"] == "resolved"]
        reds = [a["alert_id"] for a in sent if a["level"] == "red"]
        assert resolution["resolves"] == [a["alert_id"] for a in sent
                                          if a["level"] != "red"] + reds[-8:], ref
        if ref == "KY7":  # it names ids the old release sent
            assert set(resolution["resolves"]) & set(waiting), ref

    # (c) once each, nothing dead-lettered, the outbox empty, records current
    ids = [a["alert_id"] for a in everything]
    assert len(ids) == len(set(ids)) == len(waiting) + len(expected)
    assert all(a.get("provisional") is False for a in everything)
    assert lib.high_watermarks(cluster.bootstrap, DEAD_LETTER_TOPIC) == {0: 0}
    lib.wait_until(lambda: client.hlen(outbox_key) == 0, 15, message="the outbox emptied")
    for key, clock in clocks.items():
        stored = client.get(f"{prefix}clock:{clock.rule}:{key}")
        if clock.stopped:
            assert stored is None, (key, stored)
        else:
            assert lib.decode_stored(stored) == clock.stored_fields(), key
    running = {rule: sum(1 for c in clocks.values() if c.rule == rule and not c.stopped)
               for rule in RULES}
    for rule, count in running.items():
        assert client.get(f"{prefix}active:{rule}:{unit}") == str(count), rule
    for rule in ("bail_expiry", "admin_case_limit"):
        overdue = {k: float(c.deadline()) for k, c in clocks.items()
                   if c.rule == rule and c.fired >= 2 and not c.stopped}
        assert dict(client.zrange(f"{prefix}overdue:{rule}:{unit}", 0, -1,
                                  withscores=True)) == overdue
    assert client.zcard(f"{prefix}overdue:property_hold_limit:{unit}") == 0
    # (d) the due index: each armed clock once, at its next level, in its
    # shard of the 10-minute bucket; the old release's buckets are emptied
    # (a bucket gone from Redis once its last entry left)
    entries = {}
    for key in client.scan_iter(match=f"{prefix}due:{partition}:*"):
        for member, score in client.zrange(key, 0, -1, withscores=True):
            entries.setdefault(member, []).append((key, int(score)))
    armed = {}
    for key, clock in clocks.items():
        stored = client.get(f"{prefix}clock:{clock.rule}:{key}")
        next_due = lib.decode_stored(stored)["next_due"] if stored else ""
        if next_due:
            member = f"{clock.rule}:{key}"
            bucket = int(next_due) // 600000
            armed[member] = [(f"{prefix}due:{partition}:{bucket}.{due_shard(member)}",
                              int(next_due))]
    assert armed and entries == armed
    assert not any(client.exists(key) for key in old_buckets)
    log = daemon.log()
    assert not [line for line in log.splitlines() if re.match(r"(\S+Z )?<[0-3]>", line)]
    print(f"v{version}_outbox={len(waiting)} delivered_as_claimed={len(first)} "
          f"alerts_after_upgrade={len(later)} expected={len(expected)} duplicates="
          f"{len(ids) - len(set(ids))} dead_letters=0")
