"""Issue 15, items 2 and 6: a rule removed and put back, and clock starts
applied late after a failover, in wall-clock mode with rules counted in
seconds.

- A reload (or a restart) without a rule parks its clocks when they fall
  due: out of the due index, listed in <prefix>parked:<rule>:<partition>,
  counted in <prefix>parked and in duewatch_clocks_parked{rule}, logged.
  Put back (SIGHUP, or a restart), they resume, and every level that fell
  due meanwhile fires once, in order.
- Two instances in one group, one SIGSTOPped for 12 s while clock starts
  wait on its partitions: the survivor takes the partitions over and
  applies the starts late, after their orange and red were due; every
  orange is sent, then every red, each once (the starts are well inside
  backfill_window_ms)."""

import collections
import signal
import time
import urllib.request
import uuid

import msgpack

import duewatch_testlib as lib
import events as ev
from ingest_checks import EVENT_TOPIC, wait_applied

ALERT_TOPIC = "duewatch.alerts"
UNIT = "500112-XJ15"
READY = r"kafka: consuming duewatch\.events"
CLOCKS = 10

KEPT_RULE = """# kept by every reload of the test
[kept_detention]
label = 应拘未拘
action = 请及时送拘留所执行
basis = 测试规则，无法律依据
start = detention.decided
stop = detention.executed
key = ref
length = 5 seconds
yellow = none
orange = 3 seconds
red_repeat = none
"""

# yellow at +4 s, orange at +6 s, red at +8 s, no repeat
PARKED_RULE = """
[park_bail]
label = 取保候审
action = 请及时解除或变更强制措施
basis = 测试规则，无法律依据
start = measure.started kind=bail
stop = measure.ended
key = ref
length = 8 seconds
yellow = 4 seconds
orange = 2 seconds
red_repeat = none
"""

# orange at +3 s, red at +6 s, no repeat: both are due by the time a
# survivor takes over (mock cluster session timeout 6 s)
FAILOVER_RULE = """
[failover_bail]
label = 取保候审
action = 请及时解除或变更强制措施
basis = 测试规则，无法律依据
start = measure.started kind=bail
stop = measure.ended
key = ref
length = 6 seconds
yellow = none
orange = 3 seconds
red_repeat = none
"""


def now_ms():
    return int(time.time() * 1000)


def starts(rng, count, ts, prefix):
    batch = uuid.uuid4().hex[:6]
    return [ev.valid_event(rng, "measure.started", ts, UNIT, case=f"C{prefix}{batch}{n:03d}",
                           ref=f"{prefix}{batch}{n:03d}", subject=f"P{batch}{n:03d}",
                           kind="bail")
            for n in range(count)]


def read_alerts(bootstrap, count, timeout, settle=2.0):
    """The alerts on the topic: `count` of them (then `settle` seconds for
    extras), or all there are when fewer came within `timeout`."""
    try:
        records = lib.consume_all(bootstrap, ALERT_TOPIC, count=count, timeout=timeout,
                                  settle=settle)
    except lib.WaitTimeout:
        records = lib.consume_all(bootstrap, ALERT_TOPIC)
    return [msgpack.unpackb(record.value) for record in records]


def parked_metric(port, rule):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    for line in text.splitlines():
        if line.startswith(f'duewatch_clocks_parked{{rule="{rule}"}} '):
            return int(float(line.split()[-1]))
    return None


def sleep_until(ms):
    time.sleep(max(0.0, (ms - now_ms()) / 1000))


def park(daemon, rules_file, cluster, client, rng, prefix, port):
    """Starts CLOCKS park_bail clocks, removes the rule (SIGHUP) before
    their first level is due, and waits until every level is due and the
    clocks are parked.  Returns the clocks."""
    rules_file.write_text(KEPT_RULE + PARKED_RULE, encoding="utf-8")
    start = now_ms()
    clocks = starts(rng, CLOCKS, start, prefix)
    lib.produce(cluster.bootstrap, EVENT_TOPIC, ev.to_messages(clocks))
    wait_applied(cluster.bootstrap, client)
    rules_file.write_text(KEPT_RULE, encoding="utf-8")
    offset = daemon.log_offset()
    daemon.reload()
    daemon.wait_for_log(r"reload: configuration and 1 rules applied", since=offset)
    assert now_ms() < start + 4000, "the reload came after the first level was due"
    sleep_until(start + 9000)  # yellow, orange and red all due, no claim can fire them
    lib.wait_until(lambda: client.hget("dw:parked", "park_bail") == str(CLOCKS), 10,
                   interval=0.2, message=f"{CLOCKS} clocks parked")
    lib.wait_until(lambda: parked_metric(port, "park_bail") == CLOCKS, 10, interval=0.5,
                   message="duewatch_clocks_parked{rule=park_bail} says so")
    daemon.wait_for_log(r"clocks: \d+ parked: rule park_bail is not configured", since=offset)
    parked = set()
    for key in client.scan_iter(match="dw:parked:park_bail:*"):
        parked |= set(client.zrange(key, 0, -1))
    assert parked == {c["ref"] for c in clocks}
    due = set()
    for key in client.scan_iter(match="dw:due:*:*"):
        due |= {m for m in client.zrange(key, 0, -1) if m.startswith("park_bail:")}
    assert due == set(), "parked clocks left in the due index"
    return clocks


def check_resumed(alerts, clocks):
    """Each clock: yellow, orange, red, in due order, each once."""
    by_ref = collections.defaultdict(list)
    for alert in alerts:
        by_ref[alert["ref"]].append((alert["level"], alert["seq"], alert["due_at"]))
    ours = {c["ref"] for c in clocks}
    for ref in ours:
        levels = by_ref.get(ref, [])
        assert [(level, seq) for level, seq, _ in levels] == [
            ("yellow", 0), ("orange", 0), ("red", 0)], f"{ref}: {levels}"
        assert [due for _, _, due in levels] == sorted(due for _, _, due in levels)


def test_rule_removed_then_back_resumes_parked_clocks(daemon_factory, mock_cluster,
                                                       redis_server, rng, tmp_path):
    rules_file = tmp_path / "rules.conf"
    rules_file.write_text(KEPT_RULE + PARKED_RULE, encoding="utf-8")
    port = lib.free_port()
    daemon = daemon_factory({"rules_file": rules_file, "http_listen": f"127.0.0.1:{port}"},
                            wait_for=READY)
    client = redis_server.client()

    # Back by a reload.
    first = park(daemon, rules_file, mock_cluster, client, rng, "H", port)
    rules_file.write_text(KEPT_RULE + PARKED_RULE, encoding="utf-8")
    daemon.reload()
    alerts = read_alerts(mock_cluster.bootstrap, 3 * CLOCKS, timeout=20)
    ours = [a for a in alerts if a["ref"].startswith("H")]
    lib.print_ledger("failures", "rule_back_by_reload", sent=CLOCKS, applied=CLOCKS,
                     alerts_expected=3 * CLOCKS, alerts_sent=len(ours),
                     alerts_duplicated=len(ours) - len({a["alert_id"] for a in ours}))
    check_resumed(ours, first)
    assert len(ours) == 3 * CLOCKS
    daemon.wait_for_log(r"clocks: \d+ parked clocks resumed")

    # Back by a restart.
    second = park(daemon, rules_file, mock_cluster, client, rng, "S", port)
    rules_file.write_text(KEPT_RULE + PARKED_RULE, encoding="utf-8")
    assert daemon.restart(wait_for=READY) == 0
    alerts = read_alerts(mock_cluster.bootstrap, 6 * CLOCKS, timeout=20)
    ours = [a for a in alerts if a["ref"].startswith("S")]
    lib.print_ledger("failures", "rule_back_by_restart", sent=CLOCKS, applied=CLOCKS,
                     alerts_expected=3 * CLOCKS, alerts_sent=len(ours),
                     alerts_duplicated=len(ours) - len({a["alert_id"] for a in ours}))
    check_resumed(ours, second)
    assert len(ours) == 3 * CLOCKS
    assert len(alerts) == 6 * CLOCKS
    daemon.wait_for_log(r"clocks: \d+ parked clocks resumed")  # this run's log

    lib.wait_until(lambda: client.hget("dw:parked", "park_bail") == "0", 10, interval=0.2,
                   message="no clock parked any more")
    assert list(client.scan_iter(match="dw:parked:park_bail:*")) == []
    # never stopped: all still running, counted once
    assert client.get("dw:active:park_bail:_all") == str(2 * CLOCKS)
    assert client.get(f"dw:active:park_bail:{UNIT}") == str(2 * CLOCKS)


def test_failover_backlog_sends_every_warning(daemon_factory, mock_cluster_factory,
                                              redis_server, rng, tmp_path):
    rules_file = tmp_path / "rules.conf"
    rules_file.write_text(KEPT_RULE + FAILOVER_RULE, encoding="utf-8")
    cluster = mock_cluster_factory(topics={EVENT_TOPIC: 4, "duewatch.deadletter": 1,
                                           ALERT_TOPIC: 4})
    settings = {"rules_file": rules_file,
                "kafka.group.id": f"duewatch-failover-{uuid.uuid4().hex[:8]}"}
    paused = daemon_factory(settings, cluster=cluster, wait_for=READY)
    survivor = daemon_factory(settings, cluster=cluster, wait_for=READY, timeout=30)
    lib.wait_until(lambda: "revoked" in paused.log(), 30, message="first instance rebalanced")
    time.sleep(2)
    paused.signal(signal.SIGSTOP)
    try:
        start = now_ms()
        clocks = starts(rng, 40, start, "F")
        lib.produce(cluster.bootstrap, EVENT_TOPIC, ev.to_messages(clocks))
        # the paused instance's partitions wait until the survivor takes
        # them over (session timeout 6 s), after their orange and red fell due
        sleep_until(start + 12000)
    finally:
        paused.signal(signal.SIGCONT)
    alerts = read_alerts(cluster.bootstrap, 80, timeout=30, settle=3.0)
    ours = [a for a in alerts if a["ref"].startswith("F")]
    orange = [a for a in ours if a["level"] == "orange"]
    red = [a for a in ours if a["level"] == "red"]
    # starts applied late: their orange went out late, or not at all
    on_time = {a["ref"] for a in orange if a["emitted_at"] - a["due_at"] <= 2000}
    late = {c["ref"] for c in clocks} - on_time
    distinct = {(a["ref"], a["level"], a["seq"]) for a in ours}
    lib.print_ledger("failures", "failover_backlog", sent=len(clocks),
                     applied_late=len(late), alerts_expected=80, alerts_sent=len(ours),
                     orange_sent=len({a["ref"] for a in orange}), red_sent=len(red),
                     alerts_duplicated=len(ours) - len(distinct))
    assert {(a["ref"], a["level"]) for a in ours} == {
        (c["ref"], level) for c in clocks for level in ("orange", "red")}
    assert len(ours) == 80 and len({a["alert_id"] for a in ours}) == 80
    # in order per clock: orange before red on the alert topic
    for clock in clocks:
        levels = [a["level"] for a in ours if a["ref"] == clock["ref"]]
        assert levels == ["orange", "red"], f"{clock['ref']}: {levels}"
    # the scenario happened: some starts were applied after their red was due
    assert late, "no start waited for the takeover"
