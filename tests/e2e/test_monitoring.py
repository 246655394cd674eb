"""Monitoring that ships: the alerting rules (monitoring/duewatch-alerts.yml)
pass `promtool check rules` and their own `promtool test rules`, name only
metrics the daemon exports, and the daemon's /metrics passes `promtool check
metrics` in wall and in event mode, with build_info, process_* and the
overdue gauge holding the values the test can check."""

import os
import re
import subprocess
import time
import uuid

import confluent_kafka
import yaml
from prometheus_client.parser import text_string_to_metric_families

import duewatch_testlib as lib
import events as ev
from ingest_checks import EVENT_TOPIC, wait_applied
from test_clocks import EVENT_MODE, TOPICS, at
from test_metrics import get

MONITORING = lib.REPO_ROOT / "monitoring"
RULES_FILE = MONITORING / "duewatch-alerts.yml"
SECONDS_RULES = lib.REPO_ROOT / "tests" / "e2e" / "rules" / "seconds.conf"
READY = r"kafka: consuming duewatch\.events"
UNITS = ("500112-XJ21", "500112-XJ22")


def promtool(*args, stdin=None):
    return subprocess.run(["promtool", *args], input=stdin, capture_output=True, text=True,
                          timeout=60, check=False)


def test_alerting_rules_pass_check_and_their_unit_tests():
    checked = promtool("check", "rules", str(RULES_FILE))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 11 rules found" in checked.stdout
    tested = subprocess.run(["promtool", "test", "rules", "duewatch-alerts.test.yml"],
                            cwd=MONITORING, capture_output=True, text=True, timeout=120,
                            check=False)
    print(tested.stdout)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
    # every alert has a test that fires it
    alerts = {rule["alert"] for group in yaml.safe_load(RULES_FILE.read_text())["groups"]
              for rule in group["rules"]}
    tests = yaml.safe_load((MONITORING / "duewatch-alerts.test.yml").read_text())["tests"]
    fired = {case["alertname"] for test in tests for case in test["alert_rule_test"]
             if case["exp_alerts"]}
    quiet = {case["alertname"] for test in tests for case in test["alert_rule_test"]
             if not case["exp_alerts"]}
    assert fired == alerts and quiet == alerts


def metric_names_in_rules():
    names = set()
    for group in yaml.safe_load(RULES_FILE.read_text())["groups"]:
        for rule in group["rules"]:
            names.update(re.findall(r"\bduewatch_[a-z_]+", rule["expr"]))
    return names


def scrape_checked(port):
    """/metrics text, after `promtool check metrics` found nothing in it."""
    status, text = get(port, "/metrics")
    assert status == 200
    checked = promtool("check", "metrics", stdin=text)
    assert (checked.returncode, checked.stdout, checked.stderr) == (0, "", "")
    return text


def samples_of(text):
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def per_rule(samples, name):
    return {dict(labels)["rule"]: value for (metric, labels), value in samples.items()
            if metric == name}


def check_build_and_process(samples, pid, started_before, started_after):
    build = [dict(labels) for (name, labels), value in samples.items()
             if name == "duewatch_build_info" and value == 1]
    assert len(build) == 1
    assert build[0]["version"] == (lib.REPO_ROOT / "VERSION").read_text().strip()
    assert build[0]["librdkafka"] == confluent_kafka.libversion()[0]
    assert re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+(-\w+)?", build[0]["libevent"])
    assert re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", build[0]["hiredis"])

    def value(name):
        return samples[(name, ())]
    # btime has whole seconds: the start read from /proc is up to 1 s early
    assert started_before - 1.0 <= value("process_start_time_seconds") <= started_after
    with open(f"/proc/{pid}/limits") as limits_file:
        limits = limits_file.read()
    soft = re.search(r"^Max open files\s+(\d+)", limits, re.M).group(1)
    assert value("process_max_fds") == int(soft)
    with open(f"/proc/{pid}/stat") as stat_file:
        stat = stat_file.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu_now = (int(stat[11]) + int(stat[12])) / ticks  # utime, stime: fields 14, 15
    assert 0 < value("process_cpu_seconds_total") <= cpu_now + 0.05
    vsize, rss = int(stat[20]), int(stat[21]) * os.sysconf("SC_PAGE_SIZE")
    assert abs(value("process_virtual_memory_bytes") - vsize) <= vsize * 0.1
    assert abs(value("process_resident_memory_bytes") - rss) <= rss * 0.1
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    assert abs(value("process_open_fds") - fds) <= 3  # the scrape's own connection, librdkafka


def detention(rng, ts, unit, tag, n):
    ref = f"R{tag}{n}"
    return ev.valid_event(rng, "detention.decided", ts, unit, case=f"C{ref}", ref=ref,
                          subject=f"P{ref}", days=5)


def test_metrics_pass_promtool_in_wall_mode(daemon_factory, mock_cluster, redis_server, rng):
    """seconds.conf: quick_detention is overdue 5 s after its start,
    quick_bail 6 s.  Three detentions (two units) are left running, two are
    executed at once, two bails are ended at once: 3 overdue, 0 overdue."""
    port = lib.free_port()
    started_before = time.time()
    daemon = daemon_factory({"http_listen": f"127.0.0.1:{port}", "rules_file": SECONDS_RULES},
                            wait_for=READY)
    lib.wait_until(lambda: get(port, "/readyz")[0] == 200, 15, message="/readyz answers 200")
    started_after = time.time()
    tag = uuid.uuid4().hex[:6]
    now = int(time.time() * 1000)
    overdue = [detention(rng, now, UNITS[n % 2], tag, n) for n in range(3)]
    executed = [detention(rng, now, UNITS[0], tag, n) for n in range(3, 5)]
    bails = [ev.valid_event(rng, "measure.started", now, UNITS[1], case=f"CB{tag}{n}",
                            ref=f"RB{tag}{n}", kind="bail") for n in range(2)]
    stops = [ev.valid_event(rng, "detention.executed", now + 500, e["unit"], case=e["case"],
                            ref=e["ref"]) for e in executed] + \
        [ev.valid_event(rng, "measure.ended", now + 500, e["unit"], case=e["case"],
                        ref=e["ref"]) for e in bails]
    lib.produce(mock_cluster.bootstrap, EVENT_TOPIC, ev.to_messages(overdue + executed + bails))
    lib.produce(mock_cluster.bootstrap, EVENT_TOPIC, ev.to_messages(stops))
    client = redis_server.client()
    wait_applied(mock_cluster.bootstrap, client)
    # red at +5 s, then the gauge is read from Redis every 5 s
    lib.wait_until(lambda: per_rule(samples_of(get(port, "/metrics")[1]),
                                    "duewatch_clocks_overdue").get("quick_detention") == 3,
                   30, interval=0.5, message="3 quick_detention clocks overdue")
    assert client.zcard("dw:overdue:quick_detention:_all") == 3
    assert client.zcard(f"dw:overdue:quick_detention:{UNITS[0]}") == 2
    text = scrape_checked(port)
    samples = samples_of(text)
    assert per_rule(samples, "duewatch_clocks_overdue") == {"quick_detention": 3,
                                                            "quick_bail": 0}
    assert per_rule(samples, "duewatch_clocks_running") == {"quick_detention": 3,
                                                            "quick_bail": 0}
    assert samples[("duewatch_ready", ())] == 1
    assert ("duewatch_event_time_seconds", ()) not in samples
    check_build_and_process(samples, daemon.pid, started_before, started_after)
    exported = {name for name, _ in samples} | {
        family.name for family in text_string_to_metric_families(text)}
    assert metric_names_in_rules() <= exported, metric_names_in_rules() - exported
    # after a stop the clock leaves both lists
    stop = ev.valid_event(rng, "detention.executed", int(time.time() * 1000), overdue[0]["unit"],
                          case=overdue[0]["case"], ref=overdue[0]["ref"])
    lib.produce(mock_cluster.bootstrap, EVENT_TOPIC, ev.to_messages([stop]))
    lib.wait_until(lambda: per_rule(samples_of(get(port, "/metrics")[1]),
                                    "duewatch_clocks_overdue").get("quick_detention") == 2,
                   30, interval=0.5, message="2 quick_detention clocks overdue")
    assert client.zcard("dw:overdue:quick_detention:_all") == 2


def test_metrics_pass_promtool_in_event_mode(daemon_factory, mock_cluster_factory, redis_server,
                                            rng):
    """Event time: two detentions started at T are overdue once a tick at
    T + 10 s is applied (red at T + 5 s); a bail started at T + 8 s is not
    (red at T + 14 s)."""
    cluster = mock_cluster_factory(topics=TOPICS)
    port = lib.free_port()
    started_before = time.time()
    daemon = daemon_factory({**EVENT_MODE, "http_listen": f"127.0.0.1:{port}",
                             "rules_file": SECONDS_RULES}, cluster=cluster, wait_for=READY)
    started_after = time.time()
    start = at("2025-03-10 10:00")
    tag = uuid.uuid4().hex[:6]
    events = [detention(rng, start, UNITS[n], tag, n) for n in range(2)]
    events.append(ev.valid_event(rng, "measure.started", start + 8000, UNITS[0],
                                 case=f"CB{tag}", ref=f"RB{tag}", kind="bail"))
    events.append(ev.valid_event(rng, "clock.tick", start + 10_000, UNITS[0]))
    lib.produce(cluster.bootstrap, EVENT_TOPIC, ev.to_messages(events))
    wait_applied(cluster.bootstrap, redis_server.client())
    lib.wait_until(lambda: per_rule(samples_of(get(port, "/metrics")[1]),
                                    "duewatch_clocks_overdue") == {"quick_detention": 2,
                                                                   "quick_bail": 0},
                   30, interval=0.5, message="2 quick_detention clocks overdue, no bail")
    text = scrape_checked(port)
    samples = samples_of(text)
    assert samples[("duewatch_event_time_seconds", ())] == (start + 10_000) / 1000
    assert per_rule(samples, "duewatch_clocks_running") == {"quick_detention": 2,
                                                            "quick_bail": 1}
    check_build_and_process(samples, daemon.pid, started_before, started_after)
