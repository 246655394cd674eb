"""Hostile input and least privilege, end to end: the real duewatchd against a
real redis-server and the mock Kafka cluster.

  - key injection: identifiers built to break out of a Redis key (':', '*',
    spaces, newlines, '{}' hash tags, '|', invalid UTF-8, 64 KiB strings) are
    dead-lettered, and afterwards every key in Redis follows the documented
    schema, byte for byte;
  - least privilege: duewatchd runs as a Redis ACL user allowed only the
    commands and the key pattern it needs (ACL_RULES below; the README quotes
    them), with the default user switched off;
  - secrets: the Redis password never reaches the log or --print-config;
  - resource bounds: a flood of maximum-size messages keeps the daemon's
    resident memory under a bound derived from its configuration.
"""

import collections
import os
import re
import subprocess
import time
import uuid

import msgpack
import pytest

import duewatch_testlib as lib
import events as ev
from ingest_checks import (DEAD_LETTER_TOPIC, EVENT_TOPIC, assert_counters_exact,
                           redis_positions, wait_applied)

ALERT_TOPIC = "duewatch.alerts"
READY = r"kafka: consuming duewatch\.events"
RULES = lib.REPO_ROOT / "tests" / "e2e" / "rules"
UNIT = "500112-XJ07"

# --------------------------------------------------------------------------
# The documented key schema (README "Counters", "Deadline clocks and alerts",
# "Exactly once"), prefix "dw:".  Identifiers (unit, case, ref, id) are the
# contract's 1..64 bytes of [A-Za-z0-9._-] ("_all" is the bureau-wide unit);
# rule names are [a-z0-9_] (clock_setup.c); topics are Kafka topic names.

IDENT = r"[A-Za-z0-9._-]{1,64}"
RULE = r"[a-z0-9_]{1,40}"
TOPIC = r"[A-Za-z0-9._-]{1,249}"
PARTITION = rf"{TOPIC}:[0-9]+"
KEY_SCHEMA = {
    "day counters": rf"dw:d:[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}:{IDENT}",
    "week counters": rf"dw:w:[0-9]{{4}}-W[0-9]{{2}}:{IDENT}",
    "month counters": rf"dw:m:[0-9]{{4}}-[0-9]{{2}}:{IDENT}",
    "quarter counters": rf"dw:q:[0-9]{{4}}-Q[1-4]:{IDENT}",
    "year counters": rf"dw:y:[0-9]{{4}}:{IDENT}",
    "persons": rf"dw:p(d:[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}|w:[0-9]{{4}}-W[0-9]{{2}}"
               rf"|m:[0-9]{{4}}-[0-9]{{2}}|q:[0-9]{{4}}-Q[1-4]|y:[0-9]{{4}}):{IDENT}",
    "snapshot marker": r"dw:snapshot",
    "overdue list changes": r"dw:(un|re)listed:[0-9]{4}-[0-9]{2}-[0-9]{2}",
    "running count changes": r"dw:changes:[0-9]{4}-[0-9]{2}-[0-9]{2}",
    "running counts listed": r"dw:running",
    "hour window": rf"dw:wh:[0-9]+:{IDENT}",
    "minute window": rf"dw:wm:[0-9]+:{IDENT}",
    "dedupe": r"dw:ev:[0-9]{4}-[0-9]{2}-[0-9]{2}",
    "batch fence": r"dw:fence:[0-9a-f]{16}-[0-9]+",
    "offsets": r"dw:offsets",
    "generation": r"dw:generation",
    "event time": r"dw:eventtime",
    "claimed up to": r"dw:claimed",
    "active clocks": rf"dw:active:{RULE}:{IDENT}",
    "overdue": rf"dw:overdue:{RULE}:{IDENT}",
    "clock": rf"dw:clock:{RULE}:{IDENT}",
    "due index": rf"dw:due:{PARTITION}",
    "due bucket": rf"dw:due:{PARTITION}:[0-9]+(\.[0-7])?",  # sharded since format 5
    "outbox": rf"dw:outbox:{PARTITION}",
    "stopped": r"dw:stopped:[0-9]{4}-[0-9]{2}-[0-9]{2}",
    "provisional clocks": rf"dw:provisional:{PARTITION}",
}
KEY_PATTERNS = {name: re.compile(pattern.encode() + rb"\Z") for name, pattern in KEY_SCHEMA.items()}
# Every byte any key may hold: the union of the above.  Notably no '|' (the
# separator of clock records and outbox payloads), no '{', '}', '*', '?', '[',
# space or control byte.
KEY_BYTES = re.compile(rb"[A-Za-z0-9._:-]+\Z")
IDENT_BYTES = re.compile(IDENT.encode() + rb"\Z")
# Hash fields, sorted-set members: event types, alert./resolved./violation. counter names,
# "<topic>:<partition>", alert ids, "<rule>:<key>" due members, refs (but the
# persons hashes' fields, "<type>[:<kind>]|<subject>").
MEMBER_BYTES = KEY_BYTES

LINE_PREFIX = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z )?<[0-7]>")


def schema_name(key):
    for name, pattern in KEY_PATTERNS.items():
        if pattern.match(key):
            return name
    return None



def stored_as_defined(value, list_name):
    """Whether a stored value has the current format's tag and its field
    count (include/formats.h), and a clock record's numbers read (base 36,
    only the optional and defaulted ones empty)."""
    tag, names = lib.stored_format(list_name)
    text = value.decode()
    if not (text.startswith(tag) and len(text[len(tag):].split("|")) == len(names)):
        return False
    try:
        lib.decode_stored(text, list_name)
    except (AssertionError, ValueError):
        return False
    return True


def audit_keyspace(client):
    """SCANs every key (client with decode_responses=False) and checks it
    against the schema, and the fields, members and record layouts inside.
    Returns {schema name: key count}."""
    counts = collections.Counter()
    problems = []
    for key in client.scan_iter(match=b"*", count=1000):
        name = schema_name(key)
        if name is None or not KEY_BYTES.match(key):
            problems.append(f"key outside the schema: {key!r}")
            continue
        counts[name] += 1
        kind = client.type(key)
        if kind == b"hash":
            for field, value in client.hgetall(key).items():
                if name == "persons":  # "<type>[:<kind>]|<subject>"
                    if not re.match(rb"[a-z._:]+\|" + IDENT.encode() + rb"\Z", field):
                        problems.append(f"{key!r}: person {field!r}")
                elif not MEMBER_BYTES.match(field):
                    problems.append(f"{key!r}: field {field!r}")
                if name == "stopped" and not (
                        re.match(rb"(ref|case):" + IDENT.encode() + rb"\Z", field)
                        and re.match(rb"[a-z._]+\|[0-9]+(\|" + IDENT.encode() + rb")?\Z", value)):
                    problems.append(f"{key!r}: stop marker {field!r} -> {value!r}")
                if name == "provisional clocks" and not (
                        re.match(RULE.encode() + rb":" + IDENT.encode() + rb"\Z", field)
                        and re.match(rb"(S|D-?[0-9]+)(,-?[0-9]+)*\Z", value)):
                    problems.append(f"{key!r}: provisional entry {field!r} -> {value!r}")
                if name == "outbox" and not stored_as_defined(value, "OUTBOX_PAYLOAD_FIELDS"):
                    problems.append(f"{key!r}: outbox payload not in the current format: "
                                    f"{value!r}")
        elif kind == b"zset":
            for member in client.zrange(key, 0, -1):
                if not MEMBER_BYTES.match(member):
                    problems.append(f"{key!r}: member {member!r}")
        elif kind == b"string":
            value = client.get(key)
            if name == "clock" and not stored_as_defined(value, "CLOCK_RECORD_FIELDS"):
                problems.append(f"{key!r}: clock record not in the current format: {value!r}")
    assert not problems, f"{len(problems)} problems, e.g.:\n" + "\n".join(problems[:20])
    return dict(counts)


def assert_log_lines_prefixed(daemon):
    """Every line the daemon wrote carries a journald priority prefix: no
    input byte (a newline in a rejected identifier) starts a line of its own."""
    bad = [line for line in daemon.log().splitlines()
           if line and not LINE_PREFIX.match(line) and not line.startswith("=== duewatch_testlib")]
    assert not bad, f"log lines without a priority prefix: {bad[:5]}"


# --------------------------------------------------------------------------
# Key injection

HOSTILE_VALUES = [
    (b"a:b", "':' (key separator)"),
    (b"500112:XJ01", "':' inside a plausible unit"),
    (b"a b", "space"),
    (b"a*", "'*' (SCAN/KEYS pattern)"),
    (b"*", "lone '*'"),
    (b"a?b", "'?' (pattern)"),
    (b"[ab]", "'[]' (pattern)"),
    (b"a\nb", "newline"),
    (b"a\r\nDEL dw:offsets\r\n", "CRLF with a command"),
    (b"{tag}", "'{}' hash tag"),
    (b"a{dw}b", "embedded hash tag"),
    (b"a|b", "'|' (record separator)"),
    (b"a\tb", "tab"),
    (b"a\x00b", "NUL"),
    (b"a\x1b[31mred", "terminal escape"),
    (b"%s%n", "printf directives"),
    (b"a/b", "'/'"),
    (b"a\\b", "backslash"),
    (b"a'b\"c", "quotes"),
    (b"\xff\xfe", "invalid UTF-8"),
    (b"A\xc3\x28", "invalid UTF-8 sequence"),
    ("案件01".encode(), "non-ASCII UTF-8"),
    (b"", "empty"),
    (b"x" * 65, "65 bytes"),
    (b"x" * 60000, "60000 bytes"),
    (b"x" * 65536, "64 KiB"),
    (b"dw:ev:" + b"1" * 10, "a key of the schema"),
]


def hostile_messages(rng, ts):
    """[(key bytes, value bytes, expected reason, what)] for every identifier
    key and every hostile value (the rest of the event valid)."""
    messages = []
    for field in ev.IDENTIFIER_KEYS:
        for value, what in HOSTILE_VALUES:
            event = ev.valid_event(rng, "measure.started", ts, UNIT, kind="bail")
            pairs = [(ev.raw_str(k.encode()), ev.raw_str(value) if k == field else ev.pack(v))
                     for k, v in event.items()]
            raw = ev.raw_map(pairs)
            reason = "too_large" if len(raw) > ev.DEFAULT_MAX_BYTES else "bad_identifier"
            messages.append((f"hostile-{len(messages)}".encode(), raw, reason,
                             f"{field} with {what}"))
    return messages


def test_key_injection_is_dead_lettered_and_keys_follow_the_schema(
        daemon_factory, mock_cluster, redis_server, rng):
    now = int(time.time() * 1000)
    hostile = hostile_messages(rng, now - 3_600_000)
    valid = ev.realistic_stream(rng, now, cases=60, units=8)
    # Valid identifiers at the edges of the charset, with clocks that start
    # and stop (clock, due, stopped, outbox keys) and a backfilled detention
    # that is already overdue (overdue set, outbox, alerts).
    for ident in ("Az09._-Z", "-", ".", "_", "a" * 64, "..", "-.-"):
        valid.append(ev.valid_event(rng, "measure.started", now - 1000, UNIT, case=f"C{ident}"[:64],
                                    ref=ident, subject=ident, kind="bail"))
        valid.append(ev.valid_event(rng, "detention.decided", now - 3 * ev.DAY_MS, ident,
                                    case=ident, ref=f"D{ident}"[:64], subject=ident, days=5))
        valid.append(ev.valid_event(rng, "measure.ended", now, UNIT, case=f"X{ident}"[:64],
                                    ref=f"X{ident}"[:64]))
    messages = [(key, value) for key, value, _, _ in hostile] + ev.to_messages(valid)
    rng.shuffle(messages)
    daemon = daemon_factory(wait_for=READY)
    lib.produce(mock_cluster.bootstrap, EVENT_TOPIC, messages)
    client = redis_server.client()
    wait_applied(mock_cluster.bootstrap, client)

    records = lib.consume_all(mock_cluster.bootstrap, DEAD_LETTER_TOPIC, count=len(hostile),
                              timeout=60, settle=1.0)
    got = sorted((record.value, record.headers["dw.reason"].decode()) for record in records)
    want = sorted((value, reason) for _, value, reason, _ in hostile)
    assert len(got) == len(want), f"{len(got)} dead letters for {len(want)} hostile messages"
    assert got == want, "dead letters differ from the hostile messages or their reasons"
    for record in records:
        detail = record.headers["dw.detail"]
        assert re.match(rb"[\x20-\x7e]+\Z", detail), f"dw.detail carries raw bytes: {detail!r}"

    assert_counters_exact(client, valid)
    counts = audit_keyspace(redis_server.client(decode_responses=False))
    for name in ("day counters", "dedupe", "offsets", "active clocks", "clock", "due index",
                 "due bucket", "stopped", "overdue"):
        assert counts.get(name), f"no {name} key: the stream did not reach every key kind"
    assert_log_lines_prefixed(daemon)
    print(f"hostile={len(hostile)} valid={len(valid)} keys={sum(counts.values())} "
          f"by_kind={counts}")


def test_unit_named_all_is_refused(daemon_factory, mock_cluster, redis_server, rng):
    now = int(time.time() * 1000)
    event = ev.valid_event(rng, "case.filed", now, "_all")
    daemon_factory(wait_for=READY)
    lib.produce(mock_cluster.bootstrap, EVENT_TOPIC, ev.to_messages([event]))
    wait_applied(mock_cluster.bootstrap, redis_server.client())
    day, _, _ = ev.bucket_names(now)
    assert redis_server.client().hget(f"dw:d:{day}:_all", "case.filed") is None
    records = lib.consume_all(mock_cluster.bootstrap, DEAD_LETTER_TOPIC, count=1, timeout=10)
    assert records[0].headers["dw.reason"] == b"bad_identifier"


# --------------------------------------------------------------------------
# Least privilege: a Redis ACL user

ACL_USER = "duewatch"
ACL_PASSWORD = "acl-" + uuid.uuid4().hex
ADMIN_PASSWORD = "admin-" + uuid.uuid4().hex
# Everything duewatchd sends (daemon/redis_client.c, batch_queue.c, positions.c,
# alerts.c; a batch's read is a MULTI ... EXEC transaction) and everything its
# Lua scripts call (daemon/lua/), on keys under its prefix.
# SELECT only when redis_database != 0; TIME dates the dedupe sets; INFO
# (memory, stats) tells whether Redis may evict (redis_eviction.c).  Not
# granted: FCALL (the dw_window function is for operators), KEYS/SCAN, FLUSH*,
# CONFIG, pub/sub.
ACL_RULES = ("on", f">{ACL_PASSWORD}", "resetkeys", "~dw:*", "resetchannels", "-@all",
             "+select", "+script|load", "+function|load", "+evalsha", "+duewatch.apply",
             "+multi", "+exec",
             "+time", "+hmget",
             "+hgetall", "+hdel", "+mget", "+mset", "+get", "+set", "+del", "+exists",
             "+incrby", "+hget", "+hset", "+hincrby", "+expire", "+sadd", "+smismember", "+smembers", "+zcount",
             "+zadd", "+zrem", "+zrange", "+zrangebyscore", "+zcard", "+hscan", "+info")


class AclRedisServer(lib.RedisServer):
    """redis-server with the default user switched off, an `admin` user for
    the test's own reads, and the duewatch user.  The harness's client() and
    ping() log in as admin."""

    def __init__(self, directory):
        super().__init__(directory, extra_args=[
            "--user", "default", "off", "resetkeys", "-@all",
            "--user", "admin", "on", f">{ADMIN_PASSWORD}", "~*", "&*", "+@all",
            "--user", ACL_USER, *ACL_RULES])

    def client(self, decode_responses=True, username=None, password=None, timeout=5):
        import redis
        if username is None:
            username, password = "admin", ADMIN_PASSWORD
        return redis.Redis(host=self.host, port=self.port, username=username, password=password,
                           decode_responses=decode_responses, socket_timeout=timeout,
                           socket_connect_timeout=timeout)


@pytest.fixture
def acl_redis(tmp_path):
    server = AclRedisServer(tmp_path / "redis-acl")
    server.start()
    yield server
    server.stop(timeout=5)
    server.kill()


def acl_line():
    """The line for redis.conf / users.acl (password shown as a placeholder)."""
    rules = " ".join(r if not r.startswith(">") else ">CHANGE-ME" for r in ACL_RULES)
    return f"user {ACL_USER} {rules}"


def test_acl_user_with_least_privilege_runs_clocks_and_alerts(acl_redis, daemon_factory,
                                                            mock_cluster, rng):
    import redis
    print(f"ACL: {acl_line()}")
    # The ACL is what it claims: nothing for strangers, nothing outside dw:*.
    with pytest.raises(redis.exceptions.RedisError):
        acl_redis.client(username="default", password="").ping()
    limited = acl_redis.client(username=ACL_USER, password=ACL_PASSWORD)
    with pytest.raises(redis.exceptions.NoPermissionError):
        limited.set("other:key", "1")
    with pytest.raises(redis.exceptions.NoPermissionError):
        limited.keys("*")
    with pytest.raises(redis.exceptions.NoPermissionError):
        limited.flushall()
    admin = acl_redis.client()
    admin.execute_command("ACL", "LOG", "RESET")

    daemon = daemon_factory({"rules_file": RULES / "seconds.conf", "redis_user": ACL_USER,
                             "redis_password": ACL_PASSWORD, "clock_mode": "wall"},
                            redis=acl_redis, wait_for=READY)
    # Every kind of clock operation, with outcomes that do not depend on
    # timing to the second (seconds.conf: quick_bail 6 s, levels at +2/+4/+6 s
    # and red every 2 s; quick_detention 5 s, orange at +2 s, red at +5 s):
    #   bails: start, extend by a day, stop at +1.5 s: nothing fires, on time
    #   a stop for a measure never started (remembered)
    #   detentions left running: orange, red, overdue
    #   detentions executed at +6 s: orange, red, then resolved late
    start = int(time.time() * 1000)
    tag = uuid.uuid4().hex[:6]

    def clock(type, prefix, n, ts, **fields):
        return ev.valid_event(rng, type, ts, UNIT, case=f"C{prefix}{tag}{n}",
                              ref=f"R{prefix}{tag}{n}", **fields)
    bails = [clock("measure.started", "B", n, start, subject=f"S{n}", kind="bail")
             for n in range(3)]
    bail_steps = [clock("measure.extended", "B", n, start + 200, days=1) for n in range(3)] + \
        [clock("measure.ended", "B", n, start + 1500) for n in range(3)]
    never_started = [clock("measure.ended", "N", 0, start)]
    running = [clock("detention.decided", "O", n, start, subject=f"S{n}", days=5)
               for n in range(2)]
    executed = [clock("detention.decided", "E", n, start, subject=f"S{n}", days=5)
                for n in range(3)]
    lib.produce(mock_cluster.bootstrap, EVENT_TOPIC,
                ev.to_messages(bails + bail_steps + never_started + running + executed))
    time.sleep(max(0.0, (start + 6000 - int(time.time() * 1000)) / 1000))
    done = [clock("detention.executed", "E", n, start + 6000) for n in range(3)]
    lib.produce(mock_cluster.bootstrap, EVENT_TOPIC, ev.to_messages(done))

    alerts = [msgpack.unpackb(r.value) for r in
              lib.consume_all(mock_cluster.bootstrap, ALERT_TOPIC, count=13, timeout=60,
                              settle=2.0)]
    got = sorted((a["ref"], a["level"], a["state"], a["seq"]) for a in alerts)
    want = sorted([(e["ref"], level, "firing", 0) for e in running + executed
                   for level in ("orange", "red")] +
                  [(e["ref"], "red", "resolved", 0) for e in executed])
    assert got == want
    wait_applied(mock_cluster.bootstrap, admin)

    assert admin.get(f"dw:active:quick_bail:{UNIT}") == "0"
    assert admin.get(f"dw:active:quick_detention:{UNIT}") == "2"
    assert admin.get("dw:active:quick_detention:_all") == "2"
    assert admin.zcard(f"dw:overdue:quick_bail:{UNIT}") == 0
    assert sorted(admin.zrange(f"dw:overdue:quick_detention:{UNIT}", 0, -1)) == \
        sorted(e["ref"] for e in running)
    assert any(admin.hexists(key, f"ref:{never_started[0]['ref']}")
               for key in admin.scan_iter(match="dw:stopped:*"))
    totals = collections.Counter()
    for key in admin.scan_iter(match=f"dw:d:*:{UNIT}"):
        totals.update({field: int(value) for field, value in admin.hgetall(key).items()})
    assert dict(totals) == {
        "measure.started": 3, "measure.started:bail": 3, "measure.extended": 3,
        "measure.ended": 4, "detention.decided": 5, "detention.executed": 3,
        # persons S0..S2 (the same three on bail and detained)
        "persons.measure.started:bail": 3, "persons.detention.decided": 3,
        "alert.quick_detention.orange": 5, "alert.quick_detention.red": 5,
        "resolved.quick_bail.ontime": 3, "resolved.quick_detention.late": 3,
    }
    lib.wait_until(lambda: sum(admin.hlen(k) for k in admin.scan_iter(match="dw:outbox:*")) == 0,
                   30, message="outbox emptied")
    # Anything the daemon was refused is in Redis's ACL log, and in its own.
    denied = admin.execute_command("ACL", "LOG")
    assert denied == [], f"Redis refused the daemon: {denied}"
    assert "NOPERM" not in daemon.log() and "NOAUTH" not in daemon.log()
    assert daemon.stop() == 0


# --------------------------------------------------------------------------
# Secrets

REDIS_SECRET = "rp-" + uuid.uuid4().hex
KAFKA_SECRET = "kp-" + uuid.uuid4().hex


def secret_forms(secret):
    """The secret as text, and as the hex a log line might show bytes in."""
    return (secret, secret.encode().hex())


def assert_no_secret(text, where):
    for secret in (REDIS_SECRET, KAFKA_SECRET):
        for form in secret_forms(secret):
            assert form not in text, f"a password appears in {where}"


def run_daemon_command(config_path, *args):
    completed = subprocess.run([str(lib.daemon_binary()), "-c", str(config_path), *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    return completed.returncode, completed.stdout.decode(errors="replace") + \
        completed.stderr.decode(errors="replace")


def test_password_never_logged_nor_printed(daemon_factory, mock_cluster, redis_factory, rng,
                                          tmp_path):
    redis = redis_factory(password=REDIS_SECRET)
    settings = {"log_level": "debug", "kafka.sasl.password": KAFKA_SECRET,
                "kafka.sasl.username": "duewatch"}
    daemon = daemon_factory(settings, redis=redis, wait_for=READY, timeout=30)
    now = ev.suite_now_ms()
    stream = ev.realistic_stream(rng, now, cases=10, units=3)
    lib.produce(mock_cluster.bootstrap, EVENT_TOPIC, ev.to_messages(stream))
    wait_applied(mock_cluster.bootstrap, redis.client())
    daemon.reload()
    daemon.wait_for_log(r"reload: configuration")
    assert daemon.stop() == 0
    assert_no_secret(daemon.log("all"), "the daemon's log (debug level)")

    code, output = run_daemon_command(daemon.config_path, "--print-config")
    assert code == 0, output
    assert_no_secret(output, "--print-config")
    assert re.search(r"^redis_password = \*{8}$", output, re.MULTILINE), output
    assert re.search(r"^kafka\.sasl\.password = \*{8}$", output, re.MULTILINE), output
    code, output = run_daemon_command(daemon.config_path, "--check-config")
    assert code == 0, output
    assert_no_secret(output, "--check-config")

    # A wrong password: the refusal is logged, the password it tried is not.
    wrong = daemon_factory(dict(settings, redis_password=KAFKA_SECRET), redis=redis)
    wrong.wait_for_log(r"redis: AUTH failed", timeout=15)
    time.sleep(2)
    assert wrong.stop() == 0
    assert_no_secret(wrong.log("all"), "the log of a daemon with a wrong password")
    # A config error on the password's line names the key, not the value.
    bad = tmp_path / "bad.conf"
    lib.write_config(bad, dict(daemon.config, redis_password=REDIS_SECRET + "\x01"))
    code, output = run_daemon_command(bad, "--check-config")
    assert code != 0
    assert_no_secret(output, "a config error message")


def test_warns_when_config_with_password_is_world_readable(mock_cluster, redis_factory,
                                                           tmp_path):
    redis = redis_factory(password=REDIS_SECRET)
    config = lib.write_config(tmp_path / "duewatch.conf",
                              lib.default_daemon_config(mock_cluster.bootstrap, redis))
    config.chmod(0o644)
    log_path = tmp_path / "duewatchd.log"
    with open(log_path, "wb") as log:
        process = lib.spawn([lib.daemon_binary(), "-c", config], stdin=subprocess.DEVNULL,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        lib.wait_until(lambda: re.search(READY + "|readable by others", log_path.read_text()),
                       30 * lib.timeout_scale(), message="daemon ready")
    finally:
        lib.terminate_process(process, 30)
    text = log_path.read_text()
    assert_no_secret(text, "the daemon's log")
    assert re.search(r"^(\S+Z )?<4>.*readable by others", text, re.MULTILINE), text


# --------------------------------------------------------------------------
# Resource bounds

MIB = 1 << 20


def vm_rss_bytes(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def padded_event(rng, size, ts):
    """A valid event whose encoding is exactly `size` bytes (an unknown key
    'pad' holds the filler)."""
    return ev._pad_to(ev.valid_event(rng, "case.filed", ts, UNIT), size)


def test_flood_of_maximum_size_messages_stays_bounded(daemon_factory, mock_cluster, redis_server,
                                                     rng):
    """Memory bound, derived from what the daemon may hold at once:
         baseline RSS after start-up (measured)
       + max_inflight_events x max_message_bytes      messages held until applied
       + the same again                               dead-letter copies (RD_KAFKA_MSG_F_COPY)
       + queued.max.messages.kbytes                   librdkafka's pre-fetch queue
       + fetch.max.bytes                              one fetch response being decoded
       + 64 MiB                                       allocator slack, librdkafka buffers
    With the settings below (100 in flight, 1 MiB messages, 16 MiB queue, 8 MiB
    fetches) that is baseline + 296 MiB.  Sanitizer builds keep freed memory
    in quarantine (256 MiB by default) and shadow memory: +512 MiB there.

    Messages go in waves of 24 (3 per partition of 8) so librdkafka's mock
    broker (which keeps 5 MiB per partition) never drops an unread one."""
    max_bytes = MIB
    inflight = 100
    queue_kbytes = 16 * 1024
    fetch_bytes = 8 * MIB
    # The producer must accept dead letters as large as the messages: see
    # test_oversized_message_does_not_stall_consumption for the default.
    daemon = daemon_factory({"max_message_bytes": max_bytes, "max_inflight_events": inflight,
                             "batch_max_events": 10,
                             "kafka.consumer.queued.max.messages.kbytes": queue_kbytes,
                             "kafka.consumer.fetch.max.bytes": fetch_bytes,
                             "kafka.producer.message.max.bytes": 4 * max_bytes},
                            wait_for=READY)
    time.sleep(1)
    baseline = vm_rss_bytes(daemon.pid)
    sanitizer_slack = 512 * MIB if "address" in str(lib.build_dir()) else 0
    bound = (baseline + 2 * inflight * max_bytes + queue_kbytes * 1024 + fetch_bytes
             + 64 * MIB + sanitizer_slack)

    now = ev.suite_now_ms()
    kinds = ("exact", "too_large", "garbage", "exact", "deep", "exact")
    valid, expected_dead = [], collections.Counter()
    peak = baseline
    client = redis_server.client()
    waves = 9  # 9 x 24 = 216 messages
    for wave in range(waves):
        messages = []
        for index in range(24):
            kind = kinds[(wave * 24 + index) % len(kinds)]
            key = f"flood-{wave}-{index}".encode()
            if kind == "exact":
                event_ts = now - rng.randrange(0, 3_600_000)
                value = padded_event(rng, max_bytes, event_ts)
                valid.append(msgpack.unpackb(value))
            elif kind == "too_large":
                value = padded_event(rng, max_bytes + 1, now)
                expected_dead["too_large"] += 1
            elif kind == "garbage":
                value = b"\xc1" + bytes(rng.getrandbits(8) for _ in range(max_bytes - 1))
                expected_dead["not_msgpack"] += 1
            else:
                # a maximum-size map whose value nests arrays a million deep
                value = b"\x81\xa1x" + b"\x91" * (max_bytes - 4) + b"\xc0"
                expected_dead["too_deep"] += 1
            messages.append((key, value))
        lib.produce(mock_cluster.bootstrap, EVENT_TOPIC, messages, timeout=120)

        def wave_applied():
            nonlocal peak
            peak = max(peak, vm_rss_bytes(daemon.pid))
            highs = lib.high_watermarks(mock_cluster.bootstrap, EVENT_TOPIC)
            positions = redis_positions(client)
            return all(positions.get(p, 0) >= high for p, high in highs.items() if high > 0)
        lib.wait_until(wave_applied, 120, interval=0.1, message=f"wave {wave} applied")
    peak = max(peak, vm_rss_bytes(daemon.pid))

    dead_highs = lib.high_watermarks(mock_cluster.bootstrap, DEAD_LETTER_TOPIC)
    assert sum(dead_highs.values()) == sum(expected_dead.values())
    assert_counters_exact(client, valid)
    assert daemon.stop() == 0
    # One log line per dead letter, or its place in the rate limit's summary
    # (log.h: 50 lines of one call site per 10 s; the rest counted).
    log = daemon.log()
    for reason, count in expected_dead.items():
        assert len(re.findall(rf"<4>dead letter: .*: {reason}: ", log)) <= count, reason
    suppressed = sum(int(n) for n in re.findall(r'log: (\d+) more lines like "dead letter: ', log))
    assert len(re.findall(r"<4>dead letter: ", log)) + suppressed == sum(expected_dead.values())
    print(f"messages={waves * 24} applied={len(valid)} dead={dict(expected_dead)} "
          f"rss_baseline_mib={baseline / MIB:.0f} rss_peak_mib={peak / MIB:.0f} "
          f"bound_mib={bound / MIB:.0f}")
    assert peak <= bound, f"RSS peaked at {peak / MIB:.0f} MiB, bound {bound / MIB:.0f} MiB"


def test_oversized_message_does_not_stall_consumption(daemon_factory, mock_cluster,
                                                      redis_server, rng):
    """With the default configuration (max_message_bytes 65536), one message
    of 1 000 100 bytes (a Kafka broker accepts 1 048 588 by default) is
    too_large: it must be dead-lettered (or otherwise disposed of) and the
    events behind it applied."""
    daemon_factory(wait_for=READY)
    now = ev.suite_now_ms()
    big = b"\xc1" + bytes(1_000_099)
    lib.produce(mock_cluster.bootstrap, EVENT_TOPIC, [(b"big", big)], partition=0)
    valid = ev.realistic_stream(rng, now, cases=5, units=2)
    lib.produce(mock_cluster.bootstrap, EVENT_TOPIC, ev.to_messages(valid))
    client = redis_server.client()
    wait_applied(mock_cluster.bootstrap, client, timeout=30)
    assert_counters_exact(client, valid)
    assert sum(lib.high_watermarks(mock_cluster.bootstrap, DEAD_LETTER_TOPIC).values()) == 1
