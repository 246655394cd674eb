"""Tests of the end-to-end test infrastructure itself, none needing duewatchd:
the mock Kafka cluster helper and the Kafka helpers, the private Redis
fixture, the Daemon class (driven by a stand-in program), and events.py,
whose malformed messages are checked against an independent implementation
of the event contract written here from the README, not from events.py."""

import collections
import datetime
import os
import random
import signal
import stat
import sys
import textwrap
import time

import pytest

import duewatch_testlib as lib
import events

# --------------------------------------------------------------------------
# Mock cluster and Kafka helpers


def test_mock_cluster_reads_back_exactly_what_was_produced(mock_cluster):
    messages = [(f"case-{i % 37}".encode(), f"value-{i}".encode() + bytes([i % 256]))
                for i in range(400)]
    positions = lib.produce(mock_cluster.bootstrap, "duewatch.events", messages)

    records = lib.consume_all(mock_cluster.bootstrap, "duewatch.events", count=400, settle=0.5)

    assert sorted((r.key, r.value) for r in records) == sorted(messages)
    by_partition = collections.defaultdict(list)
    for record in records:
        by_partition[record.partition].append(record.offset)
    assert len(by_partition) >= 4, "keys should spread over several of the 8 partitions"
    for offsets in by_partition.values():
        assert offsets == list(range(len(offsets)))  # contiguous from 0, nothing twice
    assert sorted(positions) == sorted((r.partition, r.offset) for r in records)
    # one key, one partition, order kept: what duewatch relies on per case
    for key in {key for key, _ in messages}:
        keyed = [r for r in records if r.key == key]
        assert len({r.partition for r in keyed}) == 1
        assert [r.value for r in keyed] == [v for k, v in messages if k == key]
    assert lib.high_watermarks(mock_cluster.bootstrap, "duewatch.events") == {
        p: len(by_partition.get(p, [])) for p in range(8)}


def test_consume_all_without_count_reads_to_the_high_watermarks(mock_cluster):
    # raw bytes: not the alert topic, whose messages consume_all checks
    # against the alert schema
    lib.produce(mock_cluster.bootstrap, "duewatch.events", [(None, b"a"), (b"k", b"b")],
                partition=2, headers=[("reason", b"bad_days")])
    lib.produce(mock_cluster.bootstrap, "duewatch.events", [(None, None)], partition=0)

    records = lib.consume_all(mock_cluster.bootstrap, "duewatch.events")

    assert [(r.partition, r.offset, r.key, r.value) for r in records] == [
        (0, 0, None, None), (2, 0, None, b"a"), (2, 1, b"k", b"b")]
    assert records[1].headers == {"reason": b"bad_days"}
    assert lib.consume_all(mock_cluster.bootstrap, "duewatch.deadletter") == []


def test_consume_all_times_out_when_messages_are_missing(mock_cluster):
    lib.produce(mock_cluster.bootstrap, "duewatch.deadletter", [(None, b"only one")])
    with pytest.raises(lib.WaitTimeout):
        lib.consume_all(mock_cluster.bootstrap, "duewatch.deadletter", count=2, timeout=2)


def test_committed_offsets_per_partition(mock_cluster):
    from confluent_kafka import Consumer, TopicPartition
    bootstrap = mock_cluster.bootstrap
    assert lib.committed_offsets(bootstrap, "nobody", "duewatch.events") == {
        p: None for p in range(8)}

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "g1",
                         "enable.auto.commit": False})
    try:
        consumer.commit(offsets=[TopicPartition("duewatch.events", 3, 17),
                                 TopicPartition("duewatch.events", 5, 2)], asynchronous=False)
    finally:
        consumer.close()

    committed = lib.committed_offsets(bootstrap, "g1", "duewatch.events")
    assert committed[3] == 17 and committed[5] == 2
    assert all(committed[p] is None for p in range(8) if p not in (3, 5))


def test_mock_cluster_topics_and_commands(mock_cluster_factory):
    cluster = mock_cluster_factory(topics={"in": 3}, brokers=3)
    assert len(cluster.bootstrap.split(",")) == 3
    assert all(address.startswith("127.0.0.1:") for address in cluster.bootstrap.split(","))
    assert lib.partitions_of(cluster.bootstrap, "in") == [0, 1, 2]

    cluster.create_topic("later", 5)
    assert lib.partitions_of(cluster.bootstrap, "later") == [0, 1, 2, 3, 4]
    assert cluster.command("ping") == "OK pong"
    cluster.broker_down(2)
    cluster.broker_up(2)
    cluster.set_rtt(1, 0)
    cluster.push_errors(cluster.FIND_COORDINATOR, ["COORDINATOR_NOT_AVAILABLE"])
    cluster.clear_errors(cluster.FIND_COORDINATOR)
    for bad in ("frobnicate", "topic x", "errors 0 2 6 6 6", "errors 0 1 NO_SUCH_ERROR",
                "broker_down x"):
        assert cluster.command(bad, check=False).startswith("ERR ")
        with pytest.raises(lib.MockClusterError):
            cluster.command(bad)
    assert cluster.stop() == 0, "closing stdin should make the helper exit cleanly"


def test_injected_produce_errors(mock_cluster):
    # Retriable errors are absorbed by the producer's retries ...
    mock_cluster.push_errors(mock_cluster.PRODUCE, ["NOT_LEADER_FOR_PARTITION"] * 2)
    lib.produce(mock_cluster.bootstrap, "duewatch.deadletter", [(None, b"after retries")])
    # ... a permanent one reaches the delivery report.
    mock_cluster.push_errors(mock_cluster.PRODUCE, ["TOPIC_AUTHORIZATION_FAILED"])
    with pytest.raises(AssertionError, match="delivery"):
        lib.produce(mock_cluster.bootstrap, "duewatch.deadletter", [(None, b"refused")])
    values = [r.value for r in lib.consume_all(mock_cluster.bootstrap, "duewatch.deadletter")]
    assert values == [b"after retries"]


def test_mock_cluster_stops_on_sigterm(mock_cluster):
    mock_cluster.process.send_signal(signal.SIGTERM)
    assert mock_cluster.process.wait(timeout=10) == 0


# --------------------------------------------------------------------------
# Redis fixture


def test_redis_restart_keeps_data_with_appendonly(redis_factory):
    server = redis_factory(appendonly=True)
    port = server.port
    server.client().hset("dw:d:2025-01-01:_all", mapping={"case.filed": 3})
    server.restart()
    assert server.port == port
    assert server.client().hgetall("dw:d:2025-01-01:_all") == {"case.filed": "3"}


def test_redis_kill9_keeps_fsynced_data(redis_factory):
    server = redis_factory(appendonly=True, extra_args=["--appendfsync", "always"])
    server.client().set("k", "v")
    server.kill()
    assert not server.ping()
    server.start()
    assert server.client().get("k") == "v"


def test_redis_without_appendonly_forgets_on_restart(redis_server):
    redis_server.client().set("k", "v")
    redis_server.restart()
    assert redis_server.client().get("k") is None


def test_redis_outage_in_background(redis_factory):
    server = redis_factory(password="s3cret")
    assert server.client().ping()
    started = time.monotonic()
    server.stop_for(1.0, background=True)
    assert not server.ping()
    server.wait_outage_over(timeout=20)
    assert server.ping() and time.monotonic() - started >= 1.0
    import redis
    with pytest.raises(redis.exceptions.ResponseError, match="WRONGPASS"):
        server.client(password="wrong").ping()


def test_redis_freeze_and_thaw(redis_server):
    import redis
    redis_server.freeze()
    try:
        with pytest.raises(redis.exceptions.TimeoutError):
            redis_server.client(timeout=0.5).ping()
    finally:
        redis_server.thaw()
    assert redis_server.ping()


def test_free_ports_are_distinct():
    ports = [lib.free_port() for _ in range(50)]
    assert len(set(ports)) == 50


# --------------------------------------------------------------------------
# Daemon class, driven by a stand-in for duewatchd

STUB_DAEMON = textwrap.dedent("""\
    #!/usr/bin/python3
    # Stand-in for duewatchd: logs its config, says READY=1, obeys signals.
    import os, signal, socket, sys, time
    config = open(sys.argv[sys.argv.index("-c") + 1]).read()
    sys.stderr.write("<6>config:\\n" + config)
    mode = os.environ.get("STUB_MODE", "")
    if mode == "crash":
        sys.stderr.write("<3>cannot start\\n")
        sys.exit(3)
    def on_term(*_):
        if mode == "asan":
            sys.stderr.write("==42==ERROR: AddressSanitizer: heap-use-after-free\\n")
        sys.stderr.write("<5>stopped\\n")
        sys.exit(0)
    signal.signal(signal.SIGTERM, signal.SIG_IGN if mode == "hang" else on_term)
    signal.signal(signal.SIGHUP, lambda *_: sys.stderr.write("<5>reloaded\\n"))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.sendto(b"READY=1\\nSTATUS=stub", os.environ["NOTIFY_SOCKET"])
    sys.stderr.write("<5>ready\\n")
    sys.stderr.flush()
    while True:
        time.sleep(0.05)
    """)


@pytest.fixture
def stub_daemon(tmp_path, monkeypatch, redis_server, mock_cluster):
    monkeypatch.delenv("DUEWATCH_WRAPPER", raising=False)
    monkeypatch.delenv("DUEWATCH_TIMEOUT_SCALE", raising=False)
    stub = tmp_path / "stub-duewatchd"
    stub.write_text(STUB_DAEMON)
    stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    made = []

    def make(mode="", **overrides):
        config = lib.default_daemon_config(bootstrap=mock_cluster.bootstrap, redis=redis_server)
        config.update(overrides)
        daemon = lib.Daemon(tmp_path / f"stub-{len(made)}", config, binary=stub,
                            env={"STUB_MODE": mode})
        made.append(daemon)
        return daemon

    yield make
    for daemon in made:
        if daemon.process is not None:
            lib.kill_process(daemon.process)


def test_daemon_config_log_and_signals(stub_daemon, redis_server, mock_cluster):
    daemon = stub_daemon(**{"batch_max_events": 50, "rules_file": None, "input_topics":
                            ["duewatch.events", "other"], "kafka.consumer.fetch.wait.max.ms": 10})
    daemon.start(wait_for=r"<5>ready")
    config = daemon.config_path.read_text()
    assert f"kafka.bootstrap.servers = {mock_cluster.bootstrap}\n" in config
    assert f"redis_port = {redis_server.port}\n" in config
    assert "batch_max_events = 50\n" in config
    assert "input_topics = duewatch.events,other\n" in config
    assert "kafka.consumer.fetch.wait.max.ms = 10\n" in config
    assert "\nhttp_listen =\n" in config
    assert "rules_file" not in config
    assert stat.S_IMODE(daemon.config_path.stat().st_mode) == 0o600
    assert "STATUS=stub" in daemon.wait_notify(r"READY=1")

    mark = daemon.log_offset()
    daemon.reload()
    daemon.wait_for_log(r"reloaded", since=mark)
    assert daemon.stop() == 0
    assert "<5>stopped" in daemon.log()

    daemon.update_config({"batch_max_events": 7})
    daemon.start(wait_for=r"ready")
    assert "batch_max_events = 7" in daemon.log()
    assert "batch_max_events = 50" not in daemon.log()  # this run only
    assert "batch_max_events = 50" in daemon.log(since="all")
    assert daemon.restart(wait_for="ready") == 0
    assert daemon.kill() == -signal.SIGKILL
    daemon.close()


def test_daemon_sanitizer_report_fails_the_stop(stub_daemon):
    daemon = stub_daemon(mode="asan").start(wait_for="ready")
    with pytest.raises(AssertionError, match="AddressSanitizer"):
        daemon.stop()


def test_daemon_that_ignores_sigterm_is_killed_and_reported(stub_daemon):
    daemon = stub_daemon(mode="hang").start(wait_for="ready")
    started = time.monotonic()
    with pytest.raises(AssertionError, match="did not exit"):
        daemon.stop(timeout=1)
    assert time.monotonic() - started < 10
    assert not daemon.running


def test_wait_for_log_fails_fast_when_the_daemon_exits(stub_daemon):
    daemon = stub_daemon(mode="crash").start()
    started = time.monotonic()
    with pytest.raises(lib.WaitTimeout, match=r"exited \(3\)"):
        daemon.wait_for_log("ready", timeout=30)
    assert time.monotonic() - started < 10
    assert daemon.wait_exit() == 3


def test_wrapper_prefixes_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("DUEWATCH_WRAPPER", "valgrind --error-exitcode=99 --leak-check=full")
    monkeypatch.delenv("DUEWATCH_TIMEOUT_SCALE", raising=False)
    daemon = lib.Daemon(tmp_path, {}, binary="/x/duewatchd")
    assert daemon.command_line() == ["valgrind", "--error-exitcode=99", "--leak-check=full",
                                     "/x/duewatchd", "-c", str(tmp_path / "duewatch.conf")]
    assert lib.timeout_scale() == 10.0


# --------------------------------------------------------------------------
# An independent reading of the event contract (README "Event contract")


class Malformed(Exception):
    pass


class TooDeep(Exception):
    pass


def _parse(data, pos, depth, max_depth):
    """Minimal msgpack reader: returns ((kind, value), next position).  Kinds:
    nil bool uint int float str bin array map ext; str and bin stay bytes."""
    def take(count):
        nonlocal pos
        if pos + count > len(data):
            raise Malformed("truncated")
        chunk = data[pos:pos + count]
        pos += count
        return chunk

    def container(kind, count):
        nonlocal pos
        if depth + 1 > max_depth:
            raise TooDeep()
        items = []
        for _ in range(count * (2 if kind == "map" else 1)):
            item, pos = _parse(data, pos, depth + 1, max_depth)
            items.append(item)
        if kind == "map":
            items = list(zip(items[0::2], items[1::2]))
        return (kind, items), pos

    byte = take(1)[0]
    big = lambda n: int.from_bytes(take(n), "big")  # noqa: E731
    signed = lambda n: int.from_bytes(take(n), "big", signed=True)  # noqa: E731
    if byte <= 0x7f:
        return ("uint", byte), pos
    if 0x80 <= byte <= 0x8f:
        return container("map", byte & 0x0f)
    if 0x90 <= byte <= 0x9f:
        return container("array", byte & 0x0f)
    if 0xa0 <= byte <= 0xbf:
        return ("str", take(byte & 0x1f)), pos
    if byte >= 0xe0:
        return ("int", byte - 0x100), pos
    simple = {0xc0: ("nil", None), 0xc2: ("bool", False), 0xc3: ("bool", True)}
    if byte in simple:
        return simple[byte], pos
    if byte == 0xc1:
        raise Malformed("reserved byte 0xc1")
    if byte in (0xc4, 0xc5, 0xc6):
        return ("bin", take(big(1 << (byte - 0xc4)))), pos
    if byte in (0xd9, 0xda, 0xdb):
        return ("str", take(big(1 << (byte - 0xd9)))), pos
    if byte in (0xca, 0xcb):
        take(4 if byte == 0xca else 8)
        return ("float", None), pos
    if 0xcc <= byte <= 0xcf:
        return ("uint", big(1 << (byte - 0xcc))), pos
    if 0xd0 <= byte <= 0xd3:
        return ("int", signed(1 << (byte - 0xd0))), pos
    if byte in (0xdc, 0xdd):
        return container("array", big(2 if byte == 0xdc else 4))
    if byte in (0xde, 0xdf):
        return container("map", big(2 if byte == 0xde else 4))
    if 0xd4 <= byte <= 0xd8:
        take(1 + (1 << (byte - 0xd4)))
        return ("ext", None), pos
    if byte in (0xc7, 0xc8, 0xc9):
        length = big(1 << (byte - 0xc7))
        take(1 + length)
        return ("ext", None), pos
    raise Malformed(f"byte {byte:#x}")  # pragma: no cover (every byte is handled above)


IDENTIFIER_BYTES = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
REQUIRED_BY_TYPE = {
    "incident.reported": "ref kind", "incident.accepted": "ref case", "incident.closed": "ref",
    "case.accepted": "case kind", "case.filed": "case", "case.filing_refused": "case",
    "case.suspended": "case",
    "case.resumed": "case", "case.closed": "case", "case.extended": "case days",
    "measure.started": "case ref subject kind", "measure.extended": "case ref days",
    "measure.ended": "case ref", "measure.arrest_requested": "case ref",
    "detention.decided": "case ref subject days",
    "detention.executed": "case ref", "detention.suspended": "case ref",
    "detention.cancelled": "case ref", "property.seized": "case ref kind",
    "property.extended": "case ref days", "property.released": "case ref",
    "decision.issued": "case ref", "decision.published": "case ref", "clock.tick": "",
}
KINDS = {"incident.reported": {"criminal", "admin", "other"}, "case.accepted": {"criminal", "admin"},
         "measure.started": {"bail", "rs", "rs_designated", "criminal_detention"},
         "property.seized": {"seize", "seal", "preserve"},
         "decision.issued": {"license", "penalty", "other"}}
# type -> (qualifier, its values, the kind requiring it or None: every event)
QUALIFIERS = {"property.seized": ("scope", {"criminal", "admin"}, None),
              "case.accepted": ("admin_type", {"public_security", "other"}, "admin"),
              "decision.issued": ("publish", {"required", "exempt"}, None)}
FIELD_KINDS = {"v": "uint", "days": "uint", "ts": "int", "until": "int", "id": "str",
               "type": "str", "unit": "str", "case": "str", "ref": "str", "subject": "str",
               "kind": "str", "ground": "str", "scope": "str", "admin_type": "str",
               "publish": "str"}
TS_MIN = int(datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc).timestamp() * 1000)
TS_MAX = int(datetime.datetime(2101, 1, 1, tzinfo=datetime.timezone.utc).timestamp() * 1000) - 1


def contract_reason(value, max_bytes=events.DEFAULT_MAX_BYTES, max_depth=8):
    """'valid' or the reject reason for a message value."""
    if value is None or len(value) == 0:
        return "empty"
    if len(value) > max_bytes:
        return "too_large"
    try:
        (kind, top), end = _parse(value, 0, 0, max_depth)
    except TooDeep:
        return "too_deep"
    except Malformed:
        return "not_msgpack"
    if end != len(value):
        return "trailing_bytes"
    if kind != "map":
        return "not_map"
    fields = {}
    for (key_kind, key), item in top:
        if key_kind != "str":
            return "key_not_string"
        name = key.decode("utf-8", "replace")
        if name in FIELD_KINDS:
            if name in fields:
                return "duplicate_key"
            fields[name] = item
    for name, (item_kind, item) in fields.items():
        wanted = FIELD_KINDS[name]
        ok = item_kind == wanted or (wanted == "int" and item_kind == "uint") or (
            wanted == "uint" and item_kind == "int" and item >= 0)
        if not ok:
            return "wrong_type"
    if "v" not in fields:
        return "missing_key"
    if fields["v"][1] != 1:
        return "bad_version"
    if any(name not in fields for name in ("id", "type", "ts", "unit")):
        return "missing_key"
    type_name = fields["type"][1].decode("utf-8", "replace")
    if type_name not in REQUIRED_BY_TYPE:
        return "unknown_type"
    required = REQUIRED_BY_TYPE[type_name].split()
    if any(name not in fields for name in required if name != "kind"):
        return "missing_key"
    for name in ("id", "unit", "case", "ref", "subject"):
        if name in fields:
            text = fields[name][1]
            if not 1 <= len(text) <= 64 or not set(text) <= IDENTIFIER_BYTES:
                return "bad_identifier"
    for name in ("ts", "until"):
        if name in fields and not TS_MIN <= fields[name][1] <= TS_MAX:
            return "ts_out_of_range"
    if fields["ts"][1] > time.time() * 1000 + events.DEFAULT_MAX_FUTURE_MS:
        return "ts_in_future"
    if "until" in fields and fields["until"][1] <= fields["ts"][1]:
        return "until_not_after_ts"
    if type_name in KINDS:
        if "kind" not in fields or fields["kind"][1].decode("utf-8", "replace") not in KINDS[type_name]:
            return "bad_kind"
    if "ground" in fields and fields["ground"][1].decode("utf-8", "replace") not in events.GROUNDS:
        return "bad_kind"
    if type_name in QUALIFIERS:
        name, values, when_kind = QUALIFIERS[type_name]
        if when_kind is None or fields["kind"][1].decode("utf-8", "replace") == when_kind:
            if name not in fields:
                return "missing_key"
            if fields[name][1].decode("utf-8", "replace") not in values:
                return "bad_value"
    if "days" in fields and not 1 <= fields["days"][1] <= 3650:
        return "bad_days"
    return "valid"


CATALOG = events.malformed_catalog(random.Random(20250101), max_bytes=4096)


def test_catalog_covers_at_least_15_reasons():
    reasons = {reason for _, reason, _ in CATALOG}
    assert len(reasons) >= 15
    assert reasons <= set(events.REJECT_REASONS)


@pytest.mark.parametrize("reason", sorted({reason for _, reason, _ in CATALOG}))
def test_malformed_events_are_rejected_for_their_reason(reason):
    mismatches = [(what, contract_reason(value, max_bytes=4096))
                  for value, expected, what in CATALOG if expected == reason
                  if contract_reason(value, max_bytes=4096) != reason]
    assert mismatches == []


def test_malformed_events_sampling(rng):
    sample = events.malformed_events(rng, n=len(CATALOG) + 50)
    assert len(sample) == len(CATALOG) + 50
    assert {reason for _, reason in sample} == set(events.REJECT_REASONS)
    assert all(contract_reason(value) == reason for value, reason in sample)


def test_valid_events_pass(rng):
    now = 1_760_000_000_000
    for type_name in events.EVENT_TYPES:
        event = events.valid_event(rng, type_name, now, "500112-XJ07")
        assert contract_reason(events.pack(event)) == "valid", event
    for value, what in events.edge_valid_events(rng, now):
        assert contract_reason(value) == "valid", what
    stream = events.realistic_stream(rng, now)
    assert all(contract_reason(value) == "valid" for _, value in events.to_messages(stream))


def test_realistic_stream_is_plausible_and_repeatable():
    now = 1_760_000_000_000
    stream = events.realistic_stream(random.Random(7), now)
    assert stream == events.realistic_stream(random.Random(7), now)
    assert stream != events.realistic_stream(random.Random(8), now)
    assert len(stream) > 500
    assert len({e["unit"] for e in stream}) == 40
    assert len({e["id"] for e in stream}) == len(stream)
    assert all(now - 20 * events.DAY_MS <= e["ts"] <= now for e in stream)
    assert [e["ts"] for e in stream] == sorted(e["ts"] for e in stream)
    assert {e["type"] for e in stream} >= set(events.EVENT_TYPES) - {"clock.tick"}
    order = ["incident.reported", "incident.accepted", "case.accepted", "case.filed"]
    by_case = collections.defaultdict(list)
    for event in stream:
        if "case" in event:
            by_case[event["case"]].append(event["type"])
    for case, types in by_case.items():
        present = [t for t in order if t in types]
        assert [t for t in types if t in order] == present, case
        if "case.closed" in types:
            assert types[-1] == "case.closed", case
        if "measure.ended" in types:
            assert types.index("measure.started") < types.index("measure.ended")
    messages = events.to_messages(stream)
    # keyed as the contract says: case events by case, the others by ref
    assert all(key == (e["case"] if e["type"].startswith("case.") else e["ref"]).encode()
               for (key, _), e in zip(messages, stream))
    assert max(len(value) for _, value in messages) < 400


def test_expected_counters_by_shanghai_day_iso_week_and_month(rng):
    def at(iso):
        return int(datetime.datetime.fromisoformat(iso).timestamp() * 1000)

    new_year = events.valid_event(rng, "case.filed", at("2024-12-31T16:30:00+00:00"), "U1")
    old_year = events.valid_event(rng, "case.filed", at("2024-12-31T15:59:59.999+00:00"), "U1")
    other_unit = events.valid_event(rng, "case.closed", at("2021-01-03T12:00:00+08:00"), "U2")
    tick = events.clock_tick(rng, at("2024-12-31T16:30:00+00:00"), "U1")
    stream = [new_year, old_year, dict(new_year), tick, other_unit]

    counters = events.expected_counters(stream, prefix="p:")

    assert counters == {
        "p:d:2025-01-01:U1": {"case.filed": 1}, "p:d:2025-01-01:_all": {"case.filed": 1},
        "p:m:2025-01:U1": {"case.filed": 1}, "p:m:2025-01:_all": {"case.filed": 1},
        "p:d:2024-12-31:U1": {"case.filed": 1}, "p:d:2024-12-31:_all": {"case.filed": 1},
        "p:m:2024-12:U1": {"case.filed": 1}, "p:m:2024-12:_all": {"case.filed": 1},
        # 2024-12-31 (a Tuesday) already belongs to ISO week 2025-W01
        "p:w:2025-W01:U1": {"case.filed": 2}, "p:w:2025-W01:_all": {"case.filed": 2},
        # 2021-01-03 (a Sunday) still belongs to ISO week 2020-W53
        "p:d:2021-01-03:U2": {"case.closed": 1}, "p:d:2021-01-03:_all": {"case.closed": 1},
        "p:w:2020-W53:U2": {"case.closed": 1}, "p:w:2020-W53:_all": {"case.closed": 1},
        "p:m:2021-01:U2": {"case.closed": 1}, "p:m:2021-01:_all": {"case.closed": 1},
        # quarters and years by the same local day
        "p:q:2025-Q1:U1": {"case.filed": 1}, "p:q:2025-Q1:_all": {"case.filed": 1},
        "p:q:2024-Q4:U1": {"case.filed": 1}, "p:q:2024-Q4:_all": {"case.filed": 1},
        "p:y:2025:U1": {"case.filed": 1}, "p:y:2025:_all": {"case.filed": 1},
        "p:y:2024:U1": {"case.filed": 1}, "p:y:2024:_all": {"case.filed": 1},
        "p:q:2021-Q1:U2": {"case.closed": 1}, "p:q:2021-Q1:_all": {"case.closed": 1},
        "p:y:2021:U2": {"case.closed": 1}, "p:y:2021:_all": {"case.closed": 1},
    }


def test_expected_counters_totals_match_the_stream(rng):
    stream = events.realistic_stream(rng, 1_760_000_000_000, cases=40)
    stream_with_repeats = events.with_duplicates(rng, stream, fraction=0.2)
    assert len(stream_with_repeats) > len(stream)
    counters = events.expected_counters(stream_with_repeats)
    day_totals = collections.Counter()
    for key, fields in counters.items():
        if key.startswith("dw:d:") and key.endswith(":_all"):
            day_totals.update({f: n for f, n in fields.items() if f in events.EVENT_TYPES})
    assert day_totals == collections.Counter(e["type"] for e in stream)


def test_expected_fields_of_kinds_qualifiers_and_persons(rng):
    """The checker's own rule for the fields beside <type>: a qualifier the
    type (and kind) does not take is ignored, as the daemon ignores it; a
    person counts once per bucket."""
    ts = 1_760_000_000_000
    criminal = events.valid_event(rng, "case.accepted", ts, "U1", kind="criminal",
                                  admin_type="public_security")
    seized = events.valid_event(rng, "property.seized", ts, "U1", kind="seal", scope="criminal")
    assert events.counted_fields(criminal) == ["case.accepted", "case.accepted:criminal"]
    assert events.counted_fields(seized) == ["property.seized", "property.seized:seal",
                                             "property.seized:criminal",
                                             "property.seized:seal:criminal"]
    bail = [events.valid_event(rng, "measure.started", ts + i, "U1", kind="bail", subject=s)
            for i, s in enumerate(["P1", "P2", "P1"])]
    day = events.period_buckets(ts)["d"]
    counters = events.expected_counters(bail)
    assert counters[f"dw:d:{day}:U1"] == {"measure.started": 3, "measure.started:bail": 3,
                                          "persons.measure.started:bail": 2}


def test_python_is_debians():
    # python3-confluent-kafka and friends are Debian packages: the pyenv
    # python3 earlier on some PATHs does not have them.
    assert sys.executable.startswith("/usr/bin/python3") or os.environ.get("DUEWATCH_ANY_PYTHON")
