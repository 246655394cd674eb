"""End-to-end tests of the operator tool scripts/duewatch: `send` against the
mock Kafka cluster (what arrives on the topic, field by field), `tail` on
alerts and dead letters produced here, `counters` and `overdue` against a
Redis filled by hand with the documented keys, `check-config` relaying the
daemon, and the tool together with a running duewatchd."""

import argparse
import datetime
import importlib.machinery
import importlib.util
import json
import os
import re
import select
import subprocess
import time
import uuid
from zoneinfo import ZoneInfo

import msgpack
import pytest

import duewatch_testlib as lib
import events as ev
from ingest_checks import (CLOCK_FIELDS, DEAD_LETTER_TOPIC, EVENT_TOPIC, event_counters,
                           wait_applied)

TOOL = lib.REPO_ROOT / "scripts" / "duewatch"
ALERT_TOPIC = "duewatch.alerts"
ZONE = ZoneInfo("Asia/Shanghai")
READY = r"kafka: consuming duewatch\.events"
RULES = lib.REPO_ROOT / "tests" / "e2e" / "rules"
TS = 1742004000000  # 2025-03-15T10:00:00+08:00


def run_tool(*args, input=None, timeout=60, env=None):
    """Runs scripts/duewatch (by its #! line) and returns the CompletedProcess
    with text stdout/stderr."""
    env = dict(os.environ, LC_ALL="C.UTF-8", **(env or {}))
    if isinstance(input, str):
        input = input.encode()
    completed = subprocess.run([str(TOOL)] + [str(a) for a in args], input=input,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                               timeout=timeout)
    completed.stdout = completed.stdout.decode()
    completed.stderr = completed.stderr.decode()
    assert "Traceback" not in completed.stderr, completed.stderr
    return completed


def tool_config(tmp_path, cluster=None, redis=None, **extra):
    settings = {"kafka.bootstrap.servers": cluster.bootstrap if cluster else "127.0.0.1:9",
                "redis_host": "127.0.0.1", "redis_port": redis.port if redis else 6379,
                # consumer-only properties the tool's producer must take quietly
                "kafka.session.timeout.ms": 6000}
    settings.update(extra)
    return lib.write_config(tmp_path / f"tool-{uuid.uuid4().hex[:6]}.conf", settings)


def json_lines(events):
    return "".join(json.dumps(event, ensure_ascii=False) + "\n" for event in events)


def read_events(cluster, count, topic=EVENT_TOPIC):
    records = lib.consume_all(cluster.bootstrap, topic, count=count, timeout=30, settle=0.5)
    assert len(records) == count, records
    return records


def local_minute(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, ZONE).strftime("%Y-%m-%d %H:%M")


def blocks(text):
    """Output split at blank lines into lists of lines."""
    result, current = [], []
    for line in text.split("\n"):
        if line.strip():
            current.append(line)
        elif current:
            result.append(current)
            current = []
    if current:
        result.append(current)
    return result


def parse_by_columns(lines):
    """A left-aligned table (header + rows) -> list of dicts, cutting each row
    at the header's column starts (cells may contain spaces)."""
    header = lines[0]
    names = header.split()
    starts = []
    position = 0
    for name in names:
        position = header.index(name, position)
        starts.append(position)
        position += len(name)
    rows = []
    for line in lines[1:]:
        cells = []
        for index, start in enumerate(starts):
            end = starts[index + 1] if index + 1 < len(starts) else len(line)
            cells.append(line[start:end].strip())
        rows.append(dict(zip(names, cells)))
    return rows


def parse_counts(lines):
    """A counters table (no spaces in cells) -> (columns, {field: [ints]})."""
    columns = lines[0].split()
    assert columns[0] == "field"
    table = {}
    for line in lines[1:]:
        cells = line.split()
        assert len(cells) == len(columns), line
        assert cells[0] not in table
        table[cells[0]] = [int(c) for c in cells[1:]]
    return columns[1:], table


# --------------------------------------------------------------------------
# Command line


@pytest.mark.parametrize("command", [[], ["send"], ["tail"], ["counters"], ["overdue"],
                                     ["check-config"], ["recover"], ["dlq"], ["dlq", "replay"],
                                     ["report"]])
def test_every_command_has_help(command):
    result = run_tool(*command, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: duewatch")
    assert result.stderr == ""


def test_user_errors_are_one_line_without_traceback(tmp_path):
    port = lib.free_port()  # nobody listens
    result = run_tool("--redis", f"127.0.0.1:{port}", "counters", "U1")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"duewatch: cannot reach Redis at 127.0.0.1:{port}: ")
    assert result.stderr.count("\n") == 1

    result = run_tool("-c", tmp_path / "absent.conf", "overdue")
    assert (result.returncode, result.stderr) == (
        1, f"duewatch: {tmp_path / 'absent.conf'}: cannot open: No such file or directory\n")

    bad = tmp_path / "bad.conf"
    bad.write_text("# comment\nredis_port 6379\n")
    result = run_tool("-c", bad, "overdue")
    assert (result.returncode, result.stderr) == (1, f"duewatch: {bad}:2: expected 'key = value'\n")

    bad.write_text("redis_port = 6379\nredis_database = 99\n")
    result = run_tool("-c", bad, "overdue")
    assert (result.returncode, result.stderr) == (
        1, f"duewatch: {bad}:2: key 'redis_database': 99 is out of range 0..15\n")

    bad.write_text("timezone = Mars/Olympus\n")
    result = run_tool("-c", bad, "counters", "U1")
    assert (result.returncode, result.stderr) == (
        1, f"duewatch: {bad}: timezone: unknown time zone 'Mars/Olympus' (no "
           f"/usr/share/zoneinfo/Mars/Olympus; is tzdata installed?)\n")

    result = run_tool("--redis", "127.0.0.1:99999", "overdue")
    assert (result.returncode, result.stderr) == (
        2, "duewatch: --redis '127.0.0.1:99999': port 99999 is out of range 1..65535\n")

    result = run_tool("--redis", f"127.0.0.1:{port}", "counters", "U1", "2025-13-01")
    assert (result.returncode, result.stderr) == (
        2, "duewatch: date '2025-13-01': expected YYYY-MM-DD\n")

    result = run_tool("--redis", f"127.0.0.1:{port}", "counters", "U 1")
    assert result.returncode == 2
    assert result.stderr == ("duewatch: unit 'U 1': expected 1..64 characters of "
                             "A-Z a-z 0-9 . _ - (or _all)\n")

    result = run_tool("send", tmp_path / "absent.jsonl")
    assert (result.returncode, result.stderr) == (
        1, f"duewatch: {tmp_path / 'absent.jsonl'}: cannot open: No such file or directory\n")

    result = run_tool("tail", "--count", "-1")
    assert (result.returncode, result.stderr) == (2, "duewatch: --count must be 0 or more\n")


def test_a_key_set_twice_is_read_as_the_daemon_reads_it(tmp_path, redis_server):
    """The tool's settings are duewatchd's own (--print-config): a key set
    twice stops the daemon, and now the tool too, with the daemon's words.
    (The tool's own parser took the last value and read a prefix the daemon
    never would.)"""
    redis_server.client().zadd("b:overdue:bail_expiry:U1", {"M1": 1741968000000})
    config = tmp_path / "twice.conf"
    config.write_text(f"redis_port = {redis_server.port}\nkey_prefix = a:\nkey_prefix = b:\n")
    refused = f"{config}:3: key 'key_prefix': set twice (first on line 2)"
    daemon = subprocess.run([str(lib.daemon_binary()), "-c", str(config), "--print-config"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert (daemon.returncode, daemon.stdout, daemon.stderr) == (1, "", f"duewatchd: {refused}\n")
    result = run_tool("-c", config, "overdue")
    assert (result.returncode, result.stdout, result.stderr) == (1, "", f"duewatch: {refused}\n")

    # Set once, both read b: (and the tool finds the clock under it).
    config.write_text(f"redis_port = {redis_server.port}\nkey_prefix = b:\n")
    daemon = subprocess.run([str(lib.daemon_binary()), "-c", str(config), "--print-config"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert daemon.returncode == 0 and "\nkey_prefix = b:\n" in daemon.stdout
    result = run_tool("-c", config, "overdue")
    assert (result.returncode, result.stderr) == (0, "")
    assert [row["ref"] for row in parse_by_columns(blocks(result.stdout)[0])] == ["M1"]


def test_the_daemon_is_found_or_named(tmp_path):
    """--duewatchd and $DUEWATCHD name the binary that reads the
    configuration; one that cannot run is a one-line error."""
    config = lib.write_config(tmp_path / "c.conf", {"key_prefix": "q:"})
    for args, env in (((("--duewatchd", tmp_path / "nope"), {})),
                      ((), {"DUEWATCHD": str(tmp_path / "nope")})):
        result = run_tool(*args, "-c", config, "overdue", env=env)
        assert (result.returncode, result.stdout, result.stderr) == (
            1, "", f"duewatch: cannot run {tmp_path / 'nope'}: No such file or directory\n")


# --------------------------------------------------------------------------
# send


def test_send_valid_events_arrive_exactly(tmp_path, mock_cluster):
    lines = [
        {"v": 1, "id": "ev-0001", "type": "case.filed", "ts": TS, "unit": "500112-XJ01",
         "case": "A2025-001", "source": {"system": "jz", "tags": ["x", 1, None, 2.5]}},
        {"type": "measure.started", "ts": "2025-03-15T10:00:00+08:00", "unit": "500112-XJ01",
         "case": "A2025-001", "ref": "M-1", "subject": "P9", "kind": "bail",
         "until": "2026-03-15T00:00:00Z"},
        {"type": "incident.reported", "ts": "2025-03-15T02:00:00.250Z", "unit": "500112-XJ02",
         "ref": "J-77", "kind": "criminal", "id": "ev-0003"},
        {"type": "clock.tick", "ts": "2025-03-15T10:00:00", "unit": "500112-XJ03", "v": 1},
        {"type": "detention.decided", "ts": TS + 1, "unit": "500112-XJ01", "case": "A2025-002",
         "ref": "D-5", "subject": "P10", "days": 3650, "note": "中文备注"},
    ]
    text = json_lines(lines[:2]) + "\n   \n" + json_lines(lines[2:])
    config = tool_config(tmp_path, cluster=mock_cluster)
    result = run_tool("-c", config, "send", input=text)
    assert (result.returncode, result.stdout, result.stderr) == (0, "sent 5 events\n", "")

    records = read_events(mock_cluster, 5)
    got = [msgpack.unpackb(record.value) for record in records]
    by_type = {event["type"]: (event, record.key) for event, record in zip(got, records)}
    generated = [by_type[t][0]["id"] for t in ("measure.started", "clock.tick",
                                               "detention.decided")]
    for event_id in generated:
        assert len(event_id) == 32 and int(event_id, 16) >= 0 and event_id == event_id.lower()
    assert len(set(generated)) == 3
    expected = {
        "case.filed": ({"v": 1, "id": "ev-0001", "type": "case.filed", "ts": TS,
                        "unit": "500112-XJ01", "case": "A2025-001",
                        "source": {"system": "jz", "tags": ["x", 1, None, 2.5]}}, b"A2025-001"),
        "measure.started": ({"v": 1, "id": generated[0], "type": "measure.started", "ts": TS,
                             "unit": "500112-XJ01", "case": "A2025-001", "ref": "M-1",
                             "subject": "P9", "kind": "bail", "until": 1773532800000},
                            b"M-1"),
        "incident.reported": ({"v": 1, "id": "ev-0003", "type": "incident.reported",
                               "ts": 1742004000250, "unit": "500112-XJ02", "ref": "J-77",
                               "kind": "criminal"}, b"J-77"),
        # no offset: the configured time zone (Asia/Shanghai)
        "clock.tick": ({"v": 1, "id": generated[1], "type": "clock.tick", "ts": TS,
                        "unit": "500112-XJ03"}, b"500112-XJ03"),
        "detention.decided": ({"v": 1, "id": generated[2], "type": "detention.decided",
                               "ts": TS + 1, "unit": "500112-XJ01", "case": "A2025-002",
                               "ref": "D-5", "subject": "P10", "days": 3650,
                               "note": "中文备注"}, b"D-5"),
    }
    assert by_type == expected
    # v and id come first when filled in, the rest keeps the line's order
    assert list(by_type["measure.started"][0]) == ["v", "id", "type", "ts", "unit", "case", "ref",
                                                   "subject", "kind", "until"]
    # keyed as the contract says (case events by case, the others by ref):
    # one clock, one partition
    partitions = {record.partition for record, event in zip(records, got)
                  if event.get("ref") == "M-1"}
    assert len(partitions) == 1


BAD_LINES = [
    ('{"type":"case.filed","ts":1742004000000,"unit":"U1"}',
     "key 'case' is required for type case.filed"),
    ('{"type":"case.filed","ts":1742004000000,"unit":"U1",}',
     "invalid JSON: Expecting property name enclosed in double quotes (column 53)"),
    ("not json", "invalid JSON: Expecting value (column 1)"),
    ("[1, 2]", "not a JSON object but an array"),
    ('"case.filed"', "not a JSON object but a string"),
    ('{"type":"case.filed","ts":1742004000000,"unit":"U1","case":"A","case":"B"}',
     "key 'case' appears twice"),
    ('{"v":2,"type":"case.filed","ts":1742004000000,"unit":"U1","case":"A"}',
     "v is 2, only version 1 is supported"),
    ('{"v":"1","type":"case.filed","ts":1742004000000,"unit":"U1","case":"A"}',
     "key 'v' is a string, expected a non-negative integer"),
    ('{"v":true,"type":"case.filed","ts":1742004000000,"unit":"U1","case":"A"}',
     "key 'v' is a boolean, expected a non-negative integer"),
    ('{"type":"case.opened","ts":1742004000000,"unit":"U1","case":"A"}',
     "type 'case.opened' is not in the catalog"),
    ('{"type":"case\\nfiled","ts":1742004000000,"unit":"U1","case":"A"}',
     'type "case\\nfiled" is not in the catalog'),
    ('{"type":"case.filed","ts":1742004000000,"case":"A"}', "key 'unit' is required"),
    ('{"type":"case.filed","unit":"U1","case":"A"}', "key 'ts' is required"),
    ('{"ts":1742004000000,"unit":"U1","case":"A"}', "key 'type' is required"),
    ('{"type":"case.filed","ts":1742004000000,"unit":"U 1","case":"A"}',
     "key 'unit' has byte 0x20 at offset 1 (allowed: A-Z a-z 0-9 . _ -)"),
    ('{"type":"case.filed","ts":1742004000000,"unit":"U1","case":"案1"}',
     "key 'case' has byte 0xe6 at offset 0 (allowed: A-Z a-z 0-9 . _ -)"),
    ('{"id":"' + "x" * 65 + '","type":"case.filed","ts":1742004000000,"unit":"U1","case":"A"}',
     "key 'id' has 65 bytes (at most 64)"),
    ('{"type":"case.filed","ts":1742004000000,"unit":"U1","case":""}', "key 'case' is empty"),
    ('{"type":"case.filed","ts":1742004000000,"unit":"U1","case":7}',
     "key 'case' is an integer, expected a string"),
    ('{"type":"measure.started","ts":1742004000000,"unit":"U1","case":"A","ref":"R",'
     '"subject":null,"kind":"bail"}', "key 'subject' is null, expected a string"),
    ('{"type":"case.filed","ts":946684799999,"unit":"U1","case":"A"}',
     "ts 946684799999 is before 2000-01-01"),
    ('{"type":"case.filed","ts":"2101-01-01T00:00:00Z","unit":"U1","case":"A"}',
     "ts 4133980800000 (2101-01-01T00:00:00Z) is after 2100-12-31"),
    ('{"type":"case.filed","ts":"yesterday","unit":"U1","case":"A"}',
     "key 'ts': 'yesterday' is not an ISO 8601 time (e.g. 2025-03-15T10:00:00+08:00) nor "
     "epoch milliseconds"),
    ('{"type":"case.filed","ts":1742004000000.5,"unit":"U1","case":"A"}',
     "key 'ts' is a number with a fraction or exponent, expected epoch milliseconds (integer) "
     "or an ISO 8601 time string"),
    ('{"type":"case.filed","ts":1742004000000,"unit":"U1","case":"A","until":1}',
     "until 1 is before 2000-01-01"),
    ('{"type":"measure.started","ts":1742004000000,"unit":"U1","case":"A","ref":"R",'
     '"subject":"P"}',
     "key 'kind' is required for type measure.started (one of bail, rs, rs_designated, "
     "criminal_detention)"),
    ('{"type":"measure.started","ts":1742004000000,"unit":"U1","case":"A","ref":"R",'
     '"subject":"P","kind":"bail2"}',
     "kind 'bail2' is not valid for type measure.started (one of bail, rs, rs_designated, "
     "criminal_detention)"),
    ('{"type":"detention.decided","ts":1742004000000,"unit":"U1","case":"A","ref":"R",'
     '"subject":"P"}', "key 'days' is required for type detention.decided"),
    ('{"type":"property.seized","ts":1742004000000,"unit":"U1","case":"A","ref":"R",'
     '"kind":"seize"}',
     "key 'scope' is required for type property.seized (one of criminal, admin)"),
    ('{"type":"case.accepted","ts":1742004000000,"unit":"U1","case":"A","kind":"admin"}',
     "key 'admin_type' is required for type case.accepted kind admin "
     "(one of public_security, other)"),
    ('{"type":"decision.issued","ts":1742004000000,"unit":"U1","case":"A","ref":"R",'
     '"kind":"penalty","publish":"no"}',
     "publish 'no' is not valid for type decision.issued (one of required, exempt)"),
    ('{"type":"case.extended","ts":1742004000000,"unit":"U1","case":"A","days":0}',
     "days 0 is outside 1..3650"),
    ('{"type":"case.extended","ts":1742004000000,"unit":"U1","case":"A","days":3651}',
     "days 3651 is outside 1..3650"),
    ('{"type":"case.extended","ts":1742004000000,"unit":"U1","case":"A","days":-1}',
     "key 'days' is negative (-1), expected a non-negative integer"),
    ('{"type":"case.filed","ts":1742004000000,"unit":"U1","case":"A","x":' + "{\"a\":" * 8 +
     "1" + "}" * 8 + "}", "nested 9 levels deep (at most 8, the event object being the 1st)"),
]


def test_send_reports_each_bad_line_and_sends_the_rest(tmp_path, mock_cluster):
    good = [{"id": "good-1", "type": "case.filed", "ts": TS, "unit": "U1", "case": "A1"},
            {"id": "good-2", "type": "case.closed", "ts": TS, "unit": "U1", "case": "A1",
             # nested exactly 8 levels: allowed
             "x": {"a": {"a": {"a": {"a": {"a": {"a": {"a": 1}}}}}}}}]
    big = {"id": "big", "type": "case.filed", "ts": TS, "unit": "U1", "case": "A1",
           "blob": "y" * 65600}
    big_size = len(msgpack.packb({"v": 1, **big}, use_bin_type=True))
    lines = [json.dumps(good[0]).encode()]
    expected_errors = []
    for text, message in BAD_LINES:
        lines.append(text.encode())
        expected_errors.append(f"duewatch: line {len(lines)}: {message}")
    lines.append(json.dumps(big).encode())
    expected_errors.append(f"duewatch: line {len(lines)}: event has {big_size} bytes as msgpack "
                           f"(at most 65536)")
    lines.append(b'{"type":"case.filed","unit":"U\xff"}')
    expected_errors.append(f"duewatch: line {len(lines)}: not UTF-8 (byte 0xff at column 31)")
    lines.append(json.dumps(good[1]).encode())
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")

    result = run_tool("--bootstrap", mock_cluster.bootstrap, "send", path)
    assert result.returncode == 1
    assert result.stdout == "sent 2 events\n"
    assert result.stderr.splitlines() == expected_errors

    records = read_events(mock_cluster, 2)
    got = sorted((msgpack.unpackb(r.value) for r in records), key=lambda e: e["id"])
    assert got == [{"v": 1, **good[0]}, {"v": 1, **good[1]}]


def test_send_stdin_with_topic_override_and_all_bad(mock_cluster):
    event = {"id": "t1", "type": "case.filed", "ts": TS, "unit": "U1", "case": "A1"}
    # another topic than the input: the dead-letter one (the alert topic's
    # messages are checked against the alert schema as they are read)
    result = run_tool("--bootstrap", mock_cluster.bootstrap, "send", "--topic",
                      "duewatch.deadletter", "-", input=json_lines([event]))
    assert (result.returncode, result.stdout, result.stderr) == (0, "sent 1 events\n", "")
    records = read_events(mock_cluster, 1, topic="duewatch.deadletter")
    assert msgpack.unpackb(records[0].value) == {"v": 1, **event}
    assert lib.high_watermarks(mock_cluster.bootstrap, EVENT_TOPIC) == {p: 0 for p in range(8)}

    result = run_tool("--bootstrap", mock_cluster.bootstrap, "send", input="{}\n")
    assert (result.returncode, result.stdout, result.stderr) == (
        1, "sent 0 events\n", "duewatch: line 1: key 'type' is required\n")


def test_send_reports_an_unreachable_broker():
    port = lib.free_port()
    result = run_tool("--bootstrap", f"127.0.0.1:{port}", "send", "--timeout", "1",
                      input=json_lines([{"type": "clock.tick", "ts": TS, "unit": "U1"}]))
    assert result.returncode == 1
    assert result.stdout == "sent 0 events\n"
    assert result.stderr.startswith(f"duewatch: line 1: not delivered to duewatch.events at "
                                    f"127.0.0.1:{port}: Local: Message timed out")
    assert result.stderr.count("\n") == 1


# --------------------------------------------------------------------------
# tail


def produce_at(cluster, topic, items):
    """items: (partition, timestamp ms, key, value, headers) produced in order."""
    from confluent_kafka import Producer
    producer = Producer({"bootstrap.servers": cluster.bootstrap})
    errors = []
    for partition, timestamp, key, value, headers in items:
        producer.produce(topic, key=key, value=value, partition=partition, timestamp=timestamp,
                         headers=headers,
                         on_delivery=lambda error, message: errors.append(error) if error else None)
    assert producer.flush(30) == 0
    assert errors == []


def alert(**fields):
    """An alert as the daemon sends it (schemas/alert.schema.json)."""
    base = {"v": 1, "alert_id": "0" * 32, "clock_id": "a" * 32, "rule": "bail_expiry",
            "level": "yellow", "state": "firing", "seq": 0, "unit": "500112-XJ01",
            "case": "A123", "ref": "M1", "subject": "P9", "started_at": 1710432000000,
            "deadline": 1741968000000, "due_at": 1740672000000, "emitted_at": 1740672000050,
            "cause": "ev-1", "provisional": False, "basis": "《中华人民共和国刑事诉讼法》第七十九条",
            "text": "取保候审（案件A123，人员P9）将于2025-03-14到期，剩余15天，请及时解除或变更强制措施。"}
    base.update(fields)
    assert lib.schema_errors("alert", base) == []
    return base


def test_tail_alerts_prints_exact_json_lines(mock_cluster):
    yellow = alert()
    red = alert(alert_id="1" * 32, level="red", seq=1, due_at=1742054400123,
                emitted_at=1742054400200, text="取保候审（案件A123，人员P9）已于2025-03-14到期，"
                "已超期1天，请及时解除或变更强制措施。")
    resolved = alert(alert_id="2" * 32, clock_id="b" * 32, level="red", state="resolved",
                     case="A124", ref="M2", due_at=1742140800000, emitted_at=1742140800010,
                     resolved_by="ev-9", late=True, resolves=["3" * 32], text="取保候审（案件A124，人员P9）已办结，超期2天，预警解除。")
    # time order differs from partition order
    produce_at(mock_cluster, ALERT_TOPIC, [
        (3, 1000, b"A123", msgpack.packb(yellow), None),
        (0, 3000, b"A124", msgpack.packb(resolved), None),
        (1, 2000, b"A123", msgpack.packb(red), None),
    ])
    expected = [
        dict(yellow, deadline_local="2025-03-15T00:00:00+08:00",
             due_at_local="2025-02-28T00:00:00+08:00"),
        dict(red, deadline_local="2025-03-15T00:00:00+08:00",
             due_at_local="2025-03-16T00:00:00.123+08:00"),
        dict(resolved, deadline_local="2025-03-15T00:00:00+08:00",
             due_at_local="2025-03-17T00:00:00+08:00"),
    ]
    lines = [json.dumps(e, ensure_ascii=False) for e in expected]

    def tail(*extra):
        result = run_tool("--bootstrap", mock_cluster.bootstrap, "tail", *extra)
        assert (result.returncode, result.stderr) == (0, "")
        return result.stdout.splitlines()

    assert tail("--from-beginning") == lines
    assert tail() == lines
    assert tail("--alerts", "--count", "2") == lines[1:]
    assert tail("--from-beginning", "--count", "1") == lines[:1]
    assert tail("--count", "0") == []
    assert [json.loads(line) for line in tail()] == expected
    # what tail prints is the alert schema's map plus the two local times
    for line in tail():
        printed = json.loads(line)
        del printed["deadline_local"], printed["due_at_local"]
        assert lib.schema_errors("alert", printed) == []

    # something that is not an alert still gets a line
    produce_at(mock_cluster, ALERT_TOPIC, [(2, 4000, None, b"\xc1\xc1", None)])
    last = json.loads(tail("--count", "1")[0])
    assert last["partition"] == 2 and last["offset"] == 0 and last["value_hex"] == "c1c1"
    assert last["error"].startswith("not one msgpack value")


def test_tail_dead_letters_prints_exact_json_lines(tmp_path, mock_cluster):
    missing_case = msgpack.packb({"v": 1, "id": "e1", "type": "case.filed", "ts": TS,
                                  "unit": "U1"})
    long_value = msgpack.packb({"v": 1, "id": "e2", "type": "case.filed", "ts": TS,
                                "unit": "U1", "case": "A", "pad": "z" * 80, 7: b"\x00\x01"})
    garbage = b"\xc1not msgpack"

    def headers(reason, detail, partition, offset):
        return [("dw.reason", reason.encode()), ("dw.detail", detail.encode()),
                ("dw.topic", EVENT_TOPIC.encode()), ("dw.partition", str(partition).encode()),
                ("dw.offset", str(offset).encode())]
    produce_at(mock_cluster, DEAD_LETTER_TOPIC, [
        (0, 1000, b"U1", missing_case,
         headers("missing_key", "key 'case' is required for type case.filed", 3, 17)),
        (0, 1001, b"A", long_value, headers("too_large", "value has 200 bytes (at most 100)", 5, 0)),
        (0, 1002, None, garbage, headers("not_msgpack", "reserved byte 0xc1 at offset 0", 0, 4)),
        (0, 1003, None, None, [("dw.reason", b"empty")]),
    ])
    expected = [
        {"reason": "missing_key", "detail": "key 'case' is required for type case.filed",
         "topic": EVENT_TOPIC, "partition": 3, "offset": 17, "value_hex": missing_case.hex(),
         "value_json": {"v": 1, "id": "e1", "type": "case.filed", "ts": TS, "unit": "U1"}},
        {"reason": "too_large", "detail": "value has 200 bytes (at most 100)",
         "topic": EVENT_TOPIC, "partition": 5, "offset": 0, "value_hex": long_value[:64].hex(),
         "value_json": {"v": 1, "id": "e2", "type": "case.filed", "ts": TS, "unit": "U1",
                        "case": "A", "pad": "z" * 80, "7": "0001"}},
        {"reason": "not_msgpack", "detail": "reserved byte 0xc1 at offset 0",
         "topic": EVENT_TOPIC, "partition": 0, "offset": 4, "value_hex": garbage.hex(),
         "value_json": None},
        {"reason": "empty", "detail": None, "topic": None, "partition": None, "offset": None,
         "value_hex": "", "value_json": None},
    ]
    assert len(long_value) > 64
    config = tool_config(tmp_path, cluster=mock_cluster)
    result = run_tool("-c", config, "tail", "--dead-letters", "--from-beginning")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [json.dumps(e, ensure_ascii=False) for e in expected]
    # --topic reads another topic the same way
    result = run_tool("-c", config, "tail", "--dead-letters", "--topic", ALERT_TOPIC)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def read_line(process, timeout=20):
    deadline = time.monotonic() + timeout
    buffer = b""
    fd = process.stdout.fileno()
    while not buffer.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no line from tail --follow within {timeout}s (got {buffer!r})"
        readable, _, _ = select.select([fd], [], [], remaining)
        if readable:
            chunk = os.read(fd, 1)
            assert chunk, f"tail --follow exited ({process.poll()})"
            buffer += chunk
    return json.loads(buffer)


def test_tail_follow_prints_new_messages(mock_cluster):
    produce_at(mock_cluster, ALERT_TOPIC, [(0, 1000, b"A", msgpack.packb(alert()), None)])
    process = lib.spawn([TOOL, "--bootstrap", mock_cluster.bootstrap, "tail", "--follow"],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert read_line(process)["alert_id"] == "0" * 32
        for number in (1, 2):
            produce_at(mock_cluster, ALERT_TOPIC,
                       [(number, int(time.time() * 1000), b"A",
                         msgpack.packb(alert(alert_id=str(number) * 32)), None)])
            assert read_line(process)["alert_id"] == str(number) * 32
        assert process.poll() is None
    finally:
        lib.kill_process(process)
        process.stdout.close()
        stderr = process.stderr.read().decode()
        process.stderr.close()
    assert stderr == ""

    # with --from-beginning --count N, --follow stops after N messages
    process = lib.spawn([TOOL, "--bootstrap", mock_cluster.bootstrap, "tail", "--follow",
                         "--from-beginning", "--count", "4"],
                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        produce_at(mock_cluster, ALERT_TOPIC,
                   [(3, int(time.time() * 1000), b"A", msgpack.packb(alert(alert_id="3" * 32)),
                     None)])
        out, _ = process.communicate(timeout=30)
    finally:
        lib.kill_process(process)
    assert process.returncode == 0
    assert [json.loads(line)["alert_id"] for line in out.decode().splitlines()] == \
        [str(n) * 32 for n in range(4)]


# --------------------------------------------------------------------------
# counters


def load_window_function(client):
    code = (lib.REPO_ROOT / "daemon" / "lua" / "windows.lua").read_text()
    client.execute_command("FUNCTION", "LOAD", "REPLACE", code)


def test_counters_table_from_hand_made_keys(tmp_path, redis_server):
    client = redis_server.client()
    load_window_function(client)
    day_fields = {"case.closed": 2, "case.accepted": 5, "measure.started": 1,
                  "alert.bail_expiry.red": 1, "alert.bail_expiry.yellow": 3,
                  "alert.admin_case_limit.orange": 2, "resolved.bail_expiry.late": 1,
                  "resolved.bail_expiry.ontime": 4, "incident.reported": 7}
    week_fields = dict(day_fields, **{"case.accepted": 9, "case.filed": 1})
    month_fields = dict(week_fields, **{"case.accepted": 30, "decision.issued": 2})
    client.hset("dw:d:2025-03-14:500112-XJ01", mapping=day_fields)
    client.hset("dw:w:2025-W11:500112-XJ01", mapping=week_fields)
    client.hset("dw:m:2025-03:500112-XJ01", mapping=month_fields)
    # not shown: another day, another unit, another prefix
    client.hset("dw:d:2025-03-13:500112-XJ01", mapping={"case.filed": 99})
    client.hset("dw:d:2025-03-14:500112-XJ02", mapping={"case.filed": 99})
    client.hset("other:d:2025-03-14:500112-XJ01", mapping={"case.filed": 99})
    now = int(client.time()[0])
    minute, hour = now // 60, now // 3600
    client.hset(f"dw:wm:{minute}:500112-XJ01", mapping={"case.filed": 3})
    client.hset(f"dw:wm:{minute - 61}:500112-XJ01", mapping={"case.filed": 50})  # outside 1h
    client.hset(f"dw:wh:{hour}:500112-XJ01", mapping={"case.filed": 4})
    client.hset(f"dw:wh:{hour - 30}:500112-XJ01", mapping={"case.filed": 10})
    client.hset(f"dw:wh:{hour - 200}:500112-XJ01", mapping={"case.closed": 1})
    client.hset(f"dw:wh:{hour - 800}:500112-XJ01", mapping={"case.closed": 60})  # outside 30d

    config = tool_config(tmp_path, redis=redis_server)
    result = run_tool("-c", config, "counters", "500112-XJ01", "2025-03-14")
    assert (result.returncode, result.stderr) == (0, "")
    parts = blocks(result.stdout)
    assert parts[0] == ["unit 500112-XJ01: day 2025-03-14, week 2025-W11, month 2025-03 "
                        "(Asia/Shanghai)"]
    columns, table = parse_counts(parts[1])
    assert columns == ["2025-03-14", "2025-W11", "2025-03"]
    order = ["incident.reported", "case.accepted", "case.filed", "case.closed", "measure.started",
             "decision.issued", "alert.admin_case_limit.orange", "alert.bail_expiry.yellow",
             "alert.bail_expiry.red", "resolved.bail_expiry.ontime", "resolved.bail_expiry.late"]
    assert list(table) == order
    assert table == {field: [day_fields.get(field, 0), week_fields.get(field, 0),
                             month_fields.get(field, 0)] for field in order}
    assert len(parts[2]) == 1 and parts[2][0].startswith("sliding windows ending ")
    assert parts[2][0].endswith(" (Redis clock)")
    columns, windows = parse_counts(parts[3])
    assert columns == ["1h", "24h", "7d", "30d"]
    assert windows == {"case.filed": [3, 4, 14, 14], "case.closed": [0, 0, 0, 1]}
    assert list(windows) == ["case.filed", "case.closed"]
    assert len(parts) == 4

    # ISO week and month of a day at the turn of the year; --prefix; _all
    client.hset("other:d:2024-12-30:_all", mapping={"case.filed": 1})
    client.hset("other:w:2025-W01:_all", mapping={"case.filed": 2})
    client.hset("other:m:2024-12:_all", mapping={"case.filed": 3})
    result = run_tool("-c", config, "counters", "--prefix", "other:", "_all", "2024-12-30")
    assert (result.returncode, result.stderr) == (0, "")
    parts = blocks(result.stdout)
    assert parts[0] == ["unit _all: day 2024-12-30, week 2025-W01, month 2024-12 (Asia/Shanghai)"]
    assert parse_counts(parts[1]) == (["2024-12-30", "2025-W01", "2024-12"], {"case.filed": [1, 2, 3]})
    assert parts[3] == ["(no events)"]


def test_counters_default_date_and_missing_function(tmp_path, redis_server):
    client = redis_server.client()
    today = datetime.datetime.now(ZONE).date()
    day, week, month = ev.bucket_names(int(time.time() * 1000))
    assert day == today.isoformat()
    client.hset(f"dw:d:{day}:U2", mapping={"case.filed": 6})
    # without the function library (duewatchd loads it): tables, then an error
    result = run_tool("--redis", f"127.0.0.1:{redis_server.port}", "counters", "U2")
    assert result.returncode == 1
    parts = blocks(result.stdout)
    assert parts[0] == [f"unit U2: day {day}, week {week}, month {month} (Asia/Shanghai)"]
    assert parse_counts(parts[1]) == ([day, week, month], {"case.filed": [6, 0, 0]})
    assert parts[3] == ["(not available)"]
    assert result.stderr == (f"duewatch: Redis at 127.0.0.1:{redis_server.port}: FCALL "
                             f"dw_window: Function not found (duewatchd loads it when it "
                             f"connects)\n")

    load_window_function(client)
    result = run_tool("--redis", f"127.0.0.1:{redis_server.port}", "counters", "U3")
    assert (result.returncode, result.stderr) == (0, "")
    parts = blocks(result.stdout)
    assert parts[1] == ["(no counts)"] and parts[3] == ["(no events)"]


# --------------------------------------------------------------------------
# overdue


def clock_record(unit, case, subject, deadline, version=None):
    """A clock record in the current format (include/formats.h), or as an
    earlier release wrote it: version 3 ("@3|", every field, numbers in
    decimal) or version 0 (no tag, the fields up to partition, without the
    extension counts)."""
    values = {"unit": unit, "case": case, "subject": subject, "cause": "ev-x",
              "started_at": deadline - 86400000, "last_day": None, "base_deadline": deadline,
              "paused_total": 0, "paused_since": None, "fired": 2, "seq": 1,
              "next_due": deadline + 86400000, "partition": "duewatch.events:0",
              "extensions": 1, "extended_days": 30}
    if version is None:
        return lib.encode_clock_record(values)
    _, names = lib.stored_format("CLOCK_RECORD_FIELDS")
    if version == 0:
        names = names[:names.index("partition") + 1]
    return ("@3|" if version == 3 else "") + \
        "|".join("" if values[name] is None else str(values[name]) for name in names)


def test_the_tool_reads_clock_records_as_the_daemon_defines_them():
    """The tool's copy of the record layout is the one include/formats.h
    defines (the tool runs without the source tree, so it carries a copy)."""
    tool = (lib.REPO_ROOT / "scripts" / "duewatch").read_text()
    tag, names = lib.stored_format("CLOCK_RECORD_FIELDS")
    assert f'CLOCK_RECORD_TAG = "{tag}"' in tool
    listed = re.search(r"CLOCK_RECORD_FIELDS = \((.*?)\)", tool, re.S).group(1)
    assert re.findall(r'"(\w+)"', listed) == names


def test_overdue_table_from_hand_made_keys(tmp_path, redis_server):
    client = redis_server.client()
    now = int(time.time() * 1000)
    minute, hour, day = 60000, 3600000, 86400000
    d1 = now - (3 * day + 5 * hour + 30 * minute)   # oldest
    d2 = now - (2 * hour + 30 * minute + 30000)
    d3 = now - (1 * day + 30 * minute)
    d4 = now - (40 * minute + 30000)
    d5 = now - (10 * day + 30 * minute)
    client.zadd("dw:overdue:bail_expiry:500112-XJ01", {"M1": d1, "M2": d2})
    # M1 as the release of version 0 stored it, D7 as that of version 3, the
    # others in the current format
    client.set("dw:clock:bail_expiry:M1",
               clock_record("500112-XJ01", "A1", "P1", d1, version=0))
    # M2 has no clock record (stopped meanwhile): case and subject unknown
    client.zadd("dw:overdue:detention_unexecuted:500112-XJ02", {"D7": d3})
    client.set("dw:clock:detention_unexecuted:D7",
               clock_record("500112-XJ02", "A7", "P7", d3, version=3))
    client.zadd("dw:overdue:admin_case_limit:500112-XJ01", {"A9": d4})
    client.set("dw:clock:admin_case_limit:A9", clock_record("500112-XJ01", "A9", "", d4))
    # the daemon keeps every unit's overdue clocks in _all too (not listed twice)
    client.zadd("dw:overdue:bail_expiry:_all", {"M1": d1, "M2": d2})
    client.zadd("other:overdue:bail_expiry:500112-XJ01", {"M5": d5})  # another prefix
    client.set("dw:active:bail_expiry:500112-XJ01", 2)

    rows = {
        "M1": {"rule": "bail_expiry", "unit": "500112-XJ01", "ref": "M1",
               "deadline": local_minute(d1), "overdue-for": "3d 5h", "case": "A1",
               "subject": "P1"},
        "M2": {"rule": "bail_expiry", "unit": "500112-XJ01", "ref": "M2",
               "deadline": local_minute(d2), "overdue-for": "2h 30m", "case": "-",
               "subject": "-"},
        "D7": {"rule": "detention_unexecuted", "unit": "500112-XJ02", "ref": "D7",
               "deadline": local_minute(d3), "overdue-for": "1d 0h", "case": "A7",
               "subject": "P7"},
        "A9": {"rule": "admin_case_limit", "unit": "500112-XJ01", "ref": "A9",
               "deadline": local_minute(d4), "overdue-for": "0h 40m", "case": "A9",
               "subject": "-"},
    }
    config = tool_config(tmp_path, redis=redis_server)

    def overdue(*args):
        result = run_tool("-c", config, "overdue", *args)
        assert (result.returncode, result.stderr) == (0, "")
        return blocks(result.stdout)

    parts = overdue()
    assert parts[0][0].split() == ["rule", "unit", "ref", "deadline", "overdue-for", "case",
                                   "subject"]
    assert parse_by_columns(parts[0]) == [rows[r] for r in ("M1", "D7", "M2", "A9")]
    assert len(parts) == 2 and parts[1][0].startswith("4 overdue (now ")
    assert parts[1][0].endswith(" Asia/Shanghai)")

    parts = overdue("bail_expiry")
    assert parse_by_columns(parts[0]) == [rows["M1"], rows["M2"]]
    assert parts[1][0].startswith("2 overdue for rule bail_expiry (now ")
    parts = overdue("-", "500112-XJ01")
    assert parse_by_columns(parts[0]) == [rows["M1"], rows["M2"], rows["A9"]]
    parts = overdue("admin_case_limit", "500112-XJ01")
    assert parse_by_columns(parts[0]) == [rows["A9"]]
    parts = overdue("--prefix", "other:")
    assert [r["ref"] for r in parse_by_columns(parts[0])] == ["M5"]
    assert parse_by_columns(parts[0])[0]["overdue-for"] == "10d 0h"

    parts = overdue("rs_expiry")
    assert len(parts) == 1 and parts[0][0].startswith("nothing overdue for rule rs_expiry (now ")


# --------------------------------------------------------------------------
# check-config


def test_check_config_relays_the_daemon(tmp_path):
    good = lib.write_config(tmp_path / "good.conf", {
        "rules_file": lib.REPO_ROOT / "conf" / "rules.conf",
        "holidays_file": lib.REPO_ROOT / "conf" / "holidays-cn.conf"})
    result = run_tool("check-config", good)
    # rules, not their versions (`[name since DATE]`)
    rules = sum(1 for line in (lib.REPO_ROOT / "conf" / "rules.conf").read_text().splitlines()
                if line.startswith("[") and " since " not in line)
    calendar = (lib.REPO_ROOT / "conf" / "holidays-cn.conf").read_text()
    first, last = re.search(r"^years (\d{4})\.\.(\d{4})$", calendar, re.M).groups()
    provisional = re.search(r"^provisional (\d{4})\.\.\d{4}$", calendar, re.M).group(1)
    ok = (f"{good}: configuration OK ({rules} rules)\n"
          f"holiday calendar: official {first}..{int(provisional) - 1}, provisional "
          f"{provisional}..{last} (statutory holidays only)\n")
    assert (result.returncode, result.stdout, result.stderr) == (0, ok, "")
    # the global -c names the file too
    result = run_tool("-c", good, "check-config")
    assert (result.returncode, result.stdout) == (0, ok)

    bad = lib.write_config(tmp_path / "bad.conf", {
        "rules_file": lib.REPO_ROOT / "conf" / "rules.conf", "redis_port": 0})
    result = run_tool("check-config", bad)
    assert result.returncode == 1
    assert result.stdout == ""
    assert f"{bad}:3: key 'redis_port': 0 is out of range 1..65535" in result.stderr

    result = run_tool("check-config", "--duewatchd", tmp_path / "nope", good)
    assert (result.returncode, result.stderr) == (
        1, f"duewatch: cannot run {tmp_path / 'nope'}: No such file or directory\n")


# --------------------------------------------------------------------------
# With a running duewatchd


def test_send_then_counters_show_what_the_daemon_applied(daemon_factory, mock_cluster,
                                                         redis_server, rng):
    daemon = daemon_factory(wait_for=READY)
    now = int(time.time() * 1000)
    ts = now - 120_000
    unit = "500112-XJ07"
    events = []
    for number in range(40):
        event_type = rng.choice(["case.accepted", "case.filed", "incident.reported",
                                 "measure.started", "property.seized", "case.closed"])
        event = ev.valid_event(rng, event_type, ts + number, rng.choice([unit, "500112-XJ08"]))
        if number % 3 == 0:
            event = {k: v for k, v in event.items() if k not in ("v", "id")}
            event["ts"] = datetime.datetime.fromtimestamp(
                (ts + number) / 1000, ZONE).isoformat(timespec="milliseconds")
        events.append(event)
    # the daemon's own configuration file serves the tool
    result = run_tool("-c", daemon.config_path, "send", input=json_lines(events))
    assert (result.returncode, result.stdout, result.stderr) == (0, "sent 40 events\n", "")
    client = redis_server.client()
    wait_applied(mock_cluster.bootstrap, client, timeout=60)

    sent = [msgpack.unpackb(r.value) for r in lib.consume_all(mock_cluster.bootstrap, EVENT_TOPIC)]
    assert len(sent) == 40
    expected = ev.expected_counters(sent)
    day, week, month = ev.bucket_names(ts)
    for who in (unit, "_all"):
        result = run_tool("-c", daemon.config_path, "counters", who, day)
        assert (result.returncode, result.stderr) == (0, "")
        parts = blocks(result.stdout)
        _, table = parse_counts(parts[1])
        want = {}
        for position, key in enumerate((f"dw:d:{day}:{who}", f"dw:w:{week}:{who}",
                                        f"dw:m:{month}:{who}")):
            for field, count in expected[key].items():
                want.setdefault(field, [0, 0, 0])[position] = count
        event_rows = {f: v for f, v in table.items() if not f.startswith(CLOCK_FIELDS)}
        assert event_rows == want
        _, windows = parse_counts(parts[3])
        # the windows count event types only
        day_counts = {field: counts[0] for field, counts in want.items() if field in ev.EVENT_TYPES}
        assert windows == {field: [count] * 4 for field, count in day_counts.items()}


def test_overdue_and_tail_follow_a_running_daemon(daemon_factory, mock_cluster, redis_server):
    # quick_bail: 6 s to the deadline, yellow 4 s and orange 2 s before it
    daemon = daemon_factory({"rules_file": RULES / "seconds.conf"}, wait_for=READY)
    ts = int(time.time() * 1000)
    start = {"type": "measure.started", "ts": ts, "unit": "500112-XJ05", "case": "A55",
             "ref": "M55", "subject": "P55", "kind": "bail"}
    result = run_tool("-c", daemon.config_path, "send", input=json_lines([start]))
    assert (result.returncode, result.stdout) == (0, "sent 1 events\n")
    client = redis_server.client()
    lib.wait_until(lambda: client.zscore("dw:overdue:quick_bail:500112-XJ05", "M55"), 30,
                   message="M55 overdue")
    result = run_tool("-c", daemon.config_path, "overdue")
    assert (result.returncode, result.stderr) == (0, "")
    parts = blocks(result.stdout)
    row, = parse_by_columns(parts[0])
    assert row == {"rule": "quick_bail", "unit": "500112-XJ05", "ref": "M55",
                   "deadline": local_minute(ts + 6000), "overdue-for": "0h 0m", "case": "A55",
                   "subject": "P55"}

    records = lib.consume_all(mock_cluster.bootstrap, ALERT_TOPIC, count=3, timeout=30)
    result = run_tool("-c", daemon.config_path, "tail", "--from-beginning", "--count", "3")
    assert (result.returncode, result.stderr) == (0, "")
    got = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(a["level"], a["state"], a["seq"]) for a in got] == [
        ("yellow", "firing", 0), ("orange", "firing", 0), ("red", "firing", 0)]
    assert sorted(json.dumps(a, sort_keys=True) for a in got) == sorted(
        json.dumps(dict(msgpack.unpackb(r.value),
                        deadline_local=datetime.datetime.fromtimestamp(
                            (ts + 6000) / 1000, ZONE).isoformat(
                                timespec="milliseconds" if (ts + 6000) % 1000 else "seconds"),
                        due_at_local=datetime.datetime.fromtimestamp(
                            msgpack.unpackb(r.value)["due_at"] / 1000, ZONE).isoformat(
                                timespec="milliseconds" if msgpack.unpackb(r.value)["due_at"]
                                % 1000 else "seconds")),
                   sort_keys=True) for r in records[:3])
    assert all(a["deadline"] == ts + 6000 and a["case"] == "A55" for a in got)



def golden_case(name):
    table = json.loads((lib.REPO_ROOT / "tests" / "golden" / "deadlines.json").read_text())
    return next(case for case in table["cases"] if case["name"] == name)


def test_clock_shows_a_running_clock_as_the_engine_computes_it(daemon_factory, mock_cluster,
                                                               redis_server):
    """`duewatch clock RULE KEY` on the golden table's
    bail-12-months-readme-example, started by a real event: the last day, the
    deadline and every level's due time are the table's; the levels past at
    the start are done (collapsed into the latest red repeat, the one alert
    sent) and the next red repeat follows that one.  A clock not running is
    one line and status 1."""
    case = golden_case("bail-12-months-readme-example")
    zone = ZoneInfo("Asia/Shanghai")

    def ms(text):
        local = datetime.datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=zone)
        return int(local.timestamp() * 1000)
    daemon = daemon_factory({}, wait_for=READY)
    event_id = uuid.uuid4().hex
    start = {"id": event_id, "type": "measure.started", "ts": ms(case["start"]),
             "unit": "500112-XJ07", "case": "A2024-0315", "ref": "M0315", "subject": "P0315",
             "kind": "bail"}
    result = run_tool("-c", daemon.config_path, "send", input=json_lines([start]))
    assert (result.returncode, result.stdout) == (0, "sent 1 events\n")
    record, = lib.consume_all(mock_cluster.bootstrap, ALERT_TOPIC, count=1, timeout=30,
                              settle=1.0)
    alert = msgpack.unpackb(record.value)
    assert (alert["level"], alert["state"]) == ("red", "firing")
    expect, day = case["expect"], 86400000
    following = {"level": "red", "repeat": alert["seq"] + 1,
                 "due_at": ms(expect["deadline"]) + (alert["seq"] + 1) * day}

    result = run_tool("-c", daemon.config_path, "clock", "--json", "bail_expiry", "M0315")
    assert (result.returncode, result.stderr) == (0, "")
    clock = json.loads(result.stdout)
    partition = clock.pop("partition")
    assert re.fullmatch(r"duewatch\.events:[0-9]+", partition)
    assert clock == {
        "rule": "bail_expiry", "key": "M0315", "unit": "500112-XJ07", "case": "A2024-0315",
        "subject": "P0315", "cause": event_id, "started_at": ms(case["start"]),
        "deadline": ms(expect["deadline"]), "last_day": expect["last_day"],
        "paused_since": None, "paused_total_ms": 0, "extensions": 0, "extended_days": 0,
        "provisional": False,
        "levels": [{"level": "yellow", "due_at": ms(expect["yellow"]), "done": True},
                   {"level": "orange", "due_at": ms(expect["orange"]), "done": True},
                   {"level": "red", "due_at": ms(expect["deadline"]), "done": True}],
        "red_repeat_ms": day, "fired": "red", "next": following}

    result = run_tool("-c", daemon.config_path, "clock", "bail_expiry", "M0315")
    assert (result.returncode, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    assert lines[:-1] == [
        "clock     bail_expiry:M0315",
        "unit      500112-XJ07",
        "case      A2024-0315",
        "subject   P0315",
        f"started   2024-03-15 10:00 by event {event_id} ({partition})",
        "last day  2025-03-17",
        "deadline  2025-03-18 00:00",
        "paused    no",
        "extended  no",
        "yellow    2025-03-03 00:00  (done)",
        "orange    2025-03-15 00:00  (done)",
        f"red       2025-03-18 00:00, then every 1d  (done; next: repeat {alert['seq'] + 1} at "
        f"{local_minute(following['due_at'])})"]
    assert re.fullmatch(r"now       \d{4}-\d\d-\d\d \d\d:\d\d Asia/Shanghai: overdue for "
                        r"\d+d \d+h", lines[-1]), lines[-1]

    result = run_tool("-c", daemon.config_path, "clock", "bail_expiry", "M9999")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == ("duewatch: no running clock bail_expiry:M9999 "
                             "(dw:clock:bail_expiry:M9999 does not exist: the clock never "
                             "started, or it stopped)\n")
    result = run_tool("-c", daemon.config_path, "clock", "no_such_rule", "M0315")
    assert result.returncode == 1

def test_redis_password_and_database_come_from_the_config(tmp_path, redis_factory):
    redis = redis_factory(password="s3cret pass")
    admin = redis.client()
    admin.execute_command("SELECT", 3)
    admin.zadd("dw:overdue:bail_expiry:U1", {"M1": 1741968000000})
    good = tool_config(tmp_path, redis=redis, redis_password='"s3cret pass"', redis_database=3)
    result = run_tool("-c", good, "overdue")
    assert (result.returncode, result.stderr) == (0, "")
    assert [row["ref"] for row in parse_by_columns(blocks(result.stdout)[0])] == ["M1"]

    result = run_tool("-c", good, "--redis", f"127.0.0.1:{redis.port}", "overdue",
                      "--prefix", "x:")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("nothing overdue (now ")

    wrong = tool_config(tmp_path, redis=redis, redis_password="wrong")
    result = run_tool("-c", wrong, "overdue")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith(f"duewatch: Redis at 127.0.0.1:{redis.port}: ")
    assert result.stderr.count("\n") == 1


# --------------------------------------------------------------------------
# dlq replay


def calendar_without_2035(shipped):
    """The shipped holiday calendar cut at 2034: a working-day deadline in
    2035 is then outside it (calendar_not_covered) until the shipped file,
    which covers 2035, is put back."""
    text = shipped.replace("years 2024..2035", "years 2024..2034")
    text = text.replace("provisional 2027..2035", "provisional 2027..2034")
    block = re.search(r"^# 2035 \(provisional.*\Z", text, re.S | re.M).group(0)
    return text.replace(block, "")


def test_dlq_replay_after_the_calendar_is_extended_applies_once(
        tmp_path, mock_cluster_factory, redis_server, daemon_factory, rng):
    from test_calendar import FUTURE_DATED
    from test_clocks import TOPICS, UNIT, Story
    shipped = (lib.REPO_ROOT / "conf" / "holidays-cn.conf").read_text()
    holidays = tmp_path / "holidays.conf"
    holidays.write_text(calendar_without_2035(shipped))
    cluster = mock_cluster_factory(topics=TOPICS)
    daemon = daemon_factory(dict(FUTURE_DATED, holidays_file=str(holidays)), cluster=cluster,
                            wait_for=READY)
    client = redis_server.client()

    # The second decision's publication deadline (working days) falls in 2035.
    s = Story(rng)
    inside = s.add("decision.issued", "2034-12-10 10:00", case="AJ1", ref="JD1")
    beyond = s.add("decision.issued", "2034-12-28 10:00", case="AJ1", ref="JD2")
    lib.produce(cluster.bootstrap, EVENT_TOPIC, ev.to_messages(s.events))
    wait_applied(cluster.bootstrap, client)
    [letter] = lib.consume_all(cluster.bootstrap, DEAD_LETTER_TOPIC, count=1, settle=1.0)
    assert letter.headers["dw.reason"] == b"calendar_not_covered"
    assert event_counters(client) == ev.expected_counters([inside])
    assert client.exists("dw:clock:decision_publication:JD2") == 0
    name = f"{DEAD_LETTER_TOPIC}/{letter.partition}/{letter.offset}"
    line = f"{name} calendar_not_covered key JD2 id {beyond['id']} -> {EVENT_TOPIC}\n"

    def replay(*options):
        result = run_tool("-c", daemon.config_path, "dlq", "replay", *options)
        assert result.stderr == ""
        return result.returncode, result.stdout

    # Dry runs, and filters that select nothing: nothing is sent.
    assert replay("--dry-run") == (0, line + "would replay 1 dead letters (dry run: nothing "
                                             "sent)\n")
    assert replay("--reason", "not_msgpack") == (0, "replayed 0 dead letters\n")
    assert replay("--since", "1m", "--reason", "bad_kind", "--reason", "calendar_not_covered",
                  "--dry-run") == (0, line + "would replay 1 dead letters (dry run: nothing "
                                             "sent)\n")
    assert replay("--since", "2099-01-01") == (0, "replayed 0 dead letters\n")
    assert lib.high_watermarks(cluster.bootstrap, EVENT_TOPIC) == {0: 2}

    # The fix: the calendar covers 2035 again, and the daemon reloads it.
    holidays.write_text(shipped)
    offset = daemon.log_offset()
    daemon.reload()
    daemon.wait_for_log(r"reload: configuration and \d+ rules applied", since=offset)

    # Replayed: the original key and value, and where it came from.
    assert replay("--reason", "calendar_not_covered") == (0, line + "replayed 1 dead letters\n")
    records = lib.consume_all(cluster.bootstrap, EVENT_TOPIC, count=3, settle=0.5)
    assert len(records) == 3
    assert (records[2].key, records[2].value, records[2].headers) == (
        letter.key, letter.value, {"dw.replayed_from": name.encode()})
    wait_applied(cluster.bootstrap, client)
    assert event_counters(client) == ev.expected_counters([inside, beyond])
    assert client.exists("dw:clock:decision_publication:JD2") == 1

    # Again: sent, but the daemon has seen the event id: nothing changes.
    assert replay() == (0, line + "replayed 1 dead letters\n")
    assert lib.high_watermarks(cluster.bootstrap, EVENT_TOPIC) == {0: 4}
    wait_applied(cluster.bootstrap, client)
    assert event_counters(client) == ev.expected_counters([inside, beyond])
    assert len(lib.consume_all(cluster.bootstrap, DEAD_LETTER_TOPIC, settle=0.5)) == 1
    print(f"dlq replay: events=2 dead_letters=1 replays=2 applied_once="
          f"{event_counters(client) == ev.expected_counters([inside, beyond])}")
    assert daemon.stop() == 0


# --------------------------------------------------------------------------
# The README's list of commands


def tool_parser():
    loader = importlib.machinery.SourceFileLoader("duewatch_tool", str(TOOL))
    spec = importlib.util.spec_from_loader("duewatch_tool", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module.build_parser()


def leaf_commands(parser, words=()):
    """(words, parser) of every command the tool runs, e.g. (("dlq", "replay"), ...)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from leaf_commands(sub, words + (name,))
            return
    yield words, parser


def long_options(parser, group_title=None):
    return {option for action in parser._actions for option in action.option_strings
            if option.startswith("--") and option != "--help" and
            (group_title is None or any(action in group._group_actions for group in
                                        parser._action_groups if group.title == group_title))}


def test_the_readme_lists_every_command_with_its_options():
    text = (lib.REPO_ROOT / "README.md").read_text()
    section = re.search(r"^### The operator tool \(`duewatch`\)\n(.*?)^##", text,
                        re.M | re.S).group(1)
    rows = [line for line in section.splitlines() if line.startswith("| `duewatch ")]
    parser = tool_parser()
    commands = list(leaf_commands(parser))
    assert len(rows) == len(commands), rows
    connection = long_options(parser)
    for option in connection:
        assert f"`{option}" in section, option
    for words, sub in commands:
        name = "duewatch " + " ".join(words)
        [row] = [r for r in rows if re.match(rf"\| `{re.escape(name)}[` \[]", r)]
        for option in long_options(sub) - connection:
            assert f"`{option}" in row.split("|")[2], (name, option)
