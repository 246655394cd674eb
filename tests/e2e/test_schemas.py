"""The message schemas (schemas/*.schema.json) against what they describe,
so the contract is not written twice by hand without a check:
- the event schema's types, required keys, kinds, qualifiers, grounds and
  limits are those of the daemon's contract (daemon/event.c type_rules[],
  qualifier_rules[], include/event.h);
- every sample event the tests send (tests/e2e/events.py: each type, the
  edge cases, thousands of realistic case histories) validates, and every
  malformed one the daemon dead-letters for a reason a schema can express
  is refused;
- the alert schema's keys are the rows of README "Alert message";
- the daemon's alerts validate (consume_all validates every alert any e2e
  test reads; here a firing alert and a resolution of one clock, read by
  the README's Python consumer and by examples/alert_consumer.c)."""

import hashlib
import json
import random
import re
import subprocess
import sys
import threading
import time

import msgpack
import pytest

import duewatch_testlib as lib
import events as ev

EVENT_C = (lib.REPO_ROOT / "daemon" / "event.c").read_text()
EVENT_H = (lib.REPO_ROOT / "include" / "event.h").read_text()
README = (lib.REPO_ROOT / "README.md").read_text()


def load(name):
    return json.loads((lib.REPO_ROOT / "schemas" / f"{name}.schema.json").read_text())


def c_list(name):
    """The strings of `static const char *const <name>[] = {"a", ..., NULL};`."""
    body = re.search(r"\b" + name + r"\[\] = \{(.*?)\};", EVENT_C, re.S).group(1)
    return re.findall(r'"([^"]*)"', body)


def daemon_contract():
    """{type: (required keys beyond the base ones, kinds or None)},
    [(type, key, values, when_kind or None)], base keys, grounds: read
    from daemon/event.c."""
    keys = dict(re.findall(r"\[KEY_(\w+)\] = \{\"(\w+)\"\}", EVENT_C))
    masks = {"CASE_REF": ["CASE", "REF"]}
    body = re.search(r"type_rules\[EVENT_TYPE_COUNT\] = \{(.*?)\n\};", EVENT_C, re.S).group(1)
    types = {}
    for name, required, kinds in re.findall(
            r'NAME_AND_LENGTH\("([\w.]+)"\),\s*([^,]+),\s*(\w+),', body):
        bits = []
        for term in required.split("|"):
            term = term.strip()
            if term in masks:
                bits += masks[term]
            elif term != "0":
                bits.append(re.fullmatch(r"KEY_BIT\(KEY_(\w+)\)", term).group(1))
        types[name] = ({keys[bit] for bit in bits}, None if kinds == "NULL" else c_list(kinds))
    type_names = dict(re.findall(
        r'\[(EVENT_\w+)\] = \{NAME_AND_LENGTH\("([\w.]+)"\)', EVENT_C))
    enum_keys = {"EVENT_ENUM_ADMIN_TYPE": "admin_type", "EVENT_ENUM_SCOPE": "scope",
                 "EVENT_ENUM_PUBLISH": "publish"}
    qualifier_body = re.search(r"qualifier_rules\[\] = \{(.*?)\n\};", EVENT_C, re.S).group(1)
    qualifiers = [(type_names[t], enum_keys[k], c_list(values),
                   None if when == "NULL" else when.strip('"'))
                  for t, k, values, when in re.findall(
                      r"\{(EVENT_\w+), (EVENT_ENUM_\w+), (\w+), (NULL|\"\w+\")\}", qualifier_body)]
    always = re.search(r"#define ALWAYS_REQUIRED \\\s*\((.*?)\)\n", EVENT_C, re.S).group(1)
    base = [keys[k] for k in re.findall(r"KEY_BIT\(KEY_(\w+)\)", always)]
    return types, qualifiers, base, c_list("ground_values")


def test_the_schemas_are_valid_json_schema_2020_12():
    import jsonschema
    for name in ("alert", "event"):
        schema = load(name)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        jsonschema.Draft202012Validator.check_schema(schema)


def test_the_event_schema_is_the_daemons_contract():
    types, qualifiers, base, grounds = daemon_contract()
    assert len(types) >= 20 and len(qualifiers) == 3   # the parse found the tables
    schema = load("event")
    assert schema["required"] == base
    assert schema["properties"]["type"]["enum"] == list(types)
    assert schema["properties"]["ground"]["enum"] == grounds
    per_type = {}
    per_qualifier = {}
    for rule in schema["allOf"]:
        condition = rule["if"]["properties"]
        if "kind" in condition:
            key = (condition["type"]["const"], condition["kind"]["const"])
        else:
            key = (condition["type"]["const"], None)
        if len(rule["then"]["required"]) == 1 and rule["then"]["required"][0] in (
                "scope", "admin_type", "publish"):
            name = rule["then"]["required"][0]
            per_qualifier[key] = (name, rule["then"]["properties"][name]["enum"])
        else:
            per_type[key[0]] = (set(rule["then"]["required"]),
                                rule["then"].get("properties", {}).get("kind", {}).get("enum"))
    assert per_type == {name: (required | ({"kind"} if kinds else set()), kinds)
                        for name, (required, kinds) in types.items()}
    assert per_qualifier == {(t, when): (key, values) for t, key, values, when in qualifiers}
    limits = dict(re.findall(r"#define EVENT_(\w+) (\d+)", EVENT_H))
    properties, defs = schema["properties"], schema["$defs"]
    assert properties["days"]["maximum"] == int(limits["MAX_DAYS"])
    assert defs["instant"]["minimum"] == int(limits["MIN_TS_MS"])
    assert defs["instant"]["maximum"] == int(limits["MAX_TS_MS"])
    assert set(properties) == set(re.findall(r"\[KEY_\w+\] = \{\"(\w+)\"\}", EVENT_C))


def test_every_sample_event_validates():
    rng = random.Random(16)
    now = 1_760_000_000_000
    samples = [ev.valid_event(rng, name, now, "500112-XJ07") for name in ev.EVENT_TYPES]
    for kind in ev.MEASURE_KINDS:
        samples.append(ev.valid_event(rng, "measure.started", now, "500112-XJ07", kind=kind))
    samples += [msgpack.unpackb(value) for value, _ in ev.edge_valid_events(rng, now)]
    for seed in range(4):
        samples += ev.realistic_stream(random.Random(seed), now)
    assert len(samples) > 2000
    problems = [(event, lib.schema_errors("event", event)) for event in samples
                if lib.schema_errors("event", event)]
    assert problems == []


# Reasons a JSON Schema can express (the others are about bytes, sizes,
# duplicate or non-string keys, or the wall clock and `until` > `ts`).
EXPRESSIBLE = {"missing_key", "wrong_type", "bad_version", "unknown_type", "bad_identifier",
               "ts_out_of_range", "bad_kind", "bad_days", "bad_value", "not_map"}


def test_malformed_events_are_refused_where_a_schema_can_say_why():
    catalog = ev.malformed_catalog(random.Random(16), max_bytes=4096)
    checked, accepted = 0, []
    for value, reason, what in catalog:
        if reason not in EXPRESSIBLE:
            continue
        try:
            document = msgpack.unpackb(value, strict_map_key=False)
        except Exception:
            continue  # not decodable by a JSON-minded consumer either
        checked += 1
        if not lib.schema_errors("event", document):
            accepted.append((reason, what, document))
    assert accepted == []
    assert checked >= 30


def readme_alert_keys():
    """The keys of README "Alert message"'s field table, in order, and
    those it marks as present in a resolved alert only."""
    section = README.split("### Alert message", 1)[1].split("\n### ", 1)[0]
    keys, resolved_only = [], []
    for first, present in re.findall(r"^\| ([a-z_, ]+) \| [^|]+ \| (always|resolved only) \|",
                                     section, re.M):
        names = [name.strip() for name in first.split(",")]
        keys += names
        if present == "resolved only":
            resolved_only += names
    return keys, resolved_only


def test_the_alert_schema_has_the_readme_table_keys():
    keys, resolved_only = readme_alert_keys()
    schema = load("alert")
    assert list(schema["properties"]) == keys
    assert resolved_only == ["resolved_by", "late", "resolves"]
    assert schema["required"] == [key for key in keys if key not in resolved_only]
    conditional = schema["allOf"][0]
    assert conditional["then"]["required"] == resolved_only
    assert set(conditional["else"]["properties"]) == set(resolved_only)


def test_the_alert_schema_refuses_what_it_must():
    firing = {"v": 1, "alert_id": "0" * 32, "clock_id": "1" * 32, "rule": "bail_expiry",
              "level": "red", "state": "firing", "seq": 2, "unit": "U1", "case": "", "ref": "R1",
              "subject": "", "started_at": 1, "deadline": 2, "due_at": 3, "emitted_at": 4,
              "cause": "e1", "provisional": False, "basis": "b", "text": "t"}
    assert lib.schema_errors("alert", firing) == []
    resolved = dict(firing, state="resolved", seq=0, resolved_by="e2", late=True,
                    resolves=["2" * 32])
    assert lib.schema_errors("alert", resolved) == []
    for broken in (dict(firing, level="blue"), dict(firing, state="done"),
                   dict(firing, clock_id="X" * 32), dict(firing, resolves=[]),
                   dict(firing, late=False), dict(firing, extra=1), dict(firing, seq=-1),
                   dict(resolved, level="violation"), dict(resolved, resolves=["2" * 31]),
                   {k: v for k, v in resolved.items() if k != "resolves"},
                   {k: v for k, v in firing.items() if k != "clock_id"}):
        assert lib.schema_errors("alert", broken) != [], broken


# --------------------------------------------------------------------------
# The daemon's alerts, read by the README's consumers


def readme_python_consumer():
    section = README.split("### Alert message", 1)[1].split("\n### ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def read_lines(process, count, timeout):
    """The first `count` lines a consumer prints within `timeout` seconds
    (fewer when it ends or is killed at the timeout); it is killed after."""
    timer = threading.Timer(timeout, process.kill)
    timer.start()
    lines = []
    try:
        while len(lines) < count:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
    finally:
        timer.cancel()
        process.kill()
        process.wait(timeout=10)
    return lines


def test_alerts_of_one_clock_share_a_clock_id_and_the_consumers_read_them(
        mock_cluster_factory, redis_server, daemon_factory):
    """Wall mode, a bail counted in seconds (tests/e2e/rules/seconds.conf):
    yellow, orange and red fire, then the release; every alert validates
    (consume_all) and has clock_id = SHA-1("<rule>|<ref>") and the alert_id
    README says, the resolution resolves every alert that fired, and the
    README's Python consumer and examples/alert_consumer.c print the same
    lines."""
    cluster = mock_cluster_factory(topics={"duewatch.events": 1, "duewatch.deadletter": 1,
                                           lib.ALERT_TOPIC: 1})
    daemon_factory({"rules_file": lib.REPO_ROOT / "tests" / "e2e" / "rules" / "seconds.conf"},
                   cluster=cluster, wait_for=r"kafka: consuming duewatch\.events")
    rng = random.Random(1616)
    start = int(time.time() * 1000)
    begin = ev.valid_event(rng, "measure.started", start, "500112-XJ09", case="C16",
                           ref="QB16", subject="P16", kind="bail")
    lib.produce(cluster.bootstrap, "duewatch.events", ev.to_messages([begin]))
    # yellow +2 s, orange +4 s, red +6 s, its repeat +8 s: stop at +7 s
    time.sleep(max(0.0, (start + 7000) / 1000 - time.time()))
    end = ev.valid_event(rng, "measure.ended", start + 7000, "500112-XJ09", case="C16",
                         ref="QB16")
    lib.produce(cluster.bootstrap, "duewatch.events", ev.to_messages([end]))

    def resolved():
        records = lib.consume_all(cluster.bootstrap, lib.ALERT_TOPIC)
        last = msgpack.unpackb(records[-1].value) if records else {}
        return records if last.get("state") == "resolved" else None
    alerts = [msgpack.unpackb(r.value)
              for r in lib.wait_until(resolved, 30, interval=0.5, message="the resolution")]
    # the repeat at +8 s fires too when the stop is applied after it (a
    # loaded machine): the resolution then resolves it as well
    reds = len(alerts) - 3
    assert reds in (1, 2)
    assert [(a["level"], a["state"]) for a in alerts] == [
        ("yellow", "firing"), ("orange", "firing")] + [("red", "firing")] * reds + [
        ("red", "resolved")]
    clock_id = hashlib.sha1(b"quick_bail|QB16").hexdigest()[:32]
    assert {a["clock_id"] for a in alerts} == {clock_id}
    assert alerts[-1]["resolves"] == [a["alert_id"] for a in alerts[:-1]]
    for alert in alerts:
        level = "resolved" if alert["state"] == "resolved" else alert["level"]
        text = f"quick_bail|QB16|{alert['deadline']}|{level}|{alert['seq']}"
        assert alert["alert_id"] == hashlib.sha1(text.encode()).hexdigest()[:32]
    expected = [" ".join((a["alert_id"], a["clock_id"], a["level"], a["state"], a["text"]))
                for a in alerts]

    arguments = [cluster.bootstrap, lib.ALERT_TOPIC]
    python = subprocess.Popen([sys.executable, "-c", readme_python_consumer(), *arguments,
                               "readme-python"], stdout=subprocess.PIPE, text=True)
    assert read_lines(python, len(expected), 30) == expected
    c = subprocess.run([str(lib.build_dir() / "examples" / "alert_consumer"), *arguments,
                        "example-c", str(len(expected))], capture_output=True, text=True,
                       timeout=30)
    assert c.returncode == 0, c.stderr
    assert c.stdout.splitlines() == expected
