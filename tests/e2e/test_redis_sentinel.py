"""Redis Sentinel (issue 16): a master, a replica and three Sentinels of
Debian's redis-sentinel on loopback, duewatchd configured with the Sentinels
only (redis_host/redis_port point at a port nobody listens on), and the
master SIGKILLed while events stream in and clocks fall due.

Replication is cut just before the kill (the master starts requiring a
password its replica does not know, and drops the replica's link), so the
writes of the last half second before the kill never reach the replica: the
promoted replica is behind what the daemon applied, and those writes come back
through the rollback handling (positions behind -> the partitions sought back).
"""

import os
import re
import subprocess
import threading
import time

import pytest

import duewatch_testlib as lib
import events as ev
from ingest_checks import EVENT_TOPIC, assert_counters_exact, redis_positions, wait_applied
from test_faults import RULES, UNIT, check_alerts, detention_starts, read_alerts
from test_redis_state import applied_total, get, metric

READY = r"kafka: consuming duewatch\.events"
TOOL = lib.REPO_ROOT / "scripts" / "duewatch"
MASTER_NAME = "duewatch"
SENTINEL_PASSWORD = "sentinel-secret"


@pytest.fixture
def sentinels(tmp_path):
    started = []

    def make(master, count=3):
        for i in range(count):
            started.append(lib.RedisSentinel(tmp_path / f"sentinel-{i}", master,
                                             name=MASTER_NAME, password=SENTINEL_PASSWORD,
                                             down_after_ms=1000, failover_timeout_ms=3000))
            started[-1].start()
        return started

    yield make
    for sentinel in started:
        sentinel.stop()


def counted_events(rng, count, unit):
    """`count` valid events dated now that start no clock of rules/seconds.conf
    (only counters), unique ids."""
    now = ev.suite_now_ms()
    types = ["case.filed", "incident.reported", "case.accepted", "property.seized",
             "decision.issued"]
    return [ev.valid_event(rng, types[i % len(types)], now - 60_000 + i, unit)
            for i in range(count)]


def role(server):
    try:
        return server.client(timeout=1).execute_command("ROLE")[0]
    except Exception:  # noqa: BLE001 - gone or busy: not a master
        return "unreachable"


def test_sigkill_master_under_load_follows_the_failover(daemon_factory, mock_cluster,
                                                         redis_factory, sentinels, rng):
    started_at = time.monotonic()
    master = redis_factory(appendonly=True)
    replica = redis_factory(extra_args=["--replicaof", master.host, str(master.port)])
    watchers = sentinels(master)
    lib.wait_until(lambda: replica.client().info("replication")["master_link_status"] == "up",
                   30, message="replica in sync")
    lib.wait_until(lambda: all(s.knows(replicas=1, sentinels=2) for s in watchers), 30,
                   interval=0.2, message="every Sentinel knows the replica and the others")
    http_port = lib.free_port()
    # The first "Sentinel" listed is down: the daemon asks the next ones.
    sentinel_list = ",".join([f"127.0.0.1:{lib.free_port()}"] +
                             [f"127.0.0.1:{s.port}" for s in watchers])
    daemon = daemon_factory({"redis_sentinels": sentinel_list, "redis_master_name": MASTER_NAME,
                             "redis_sentinel_password": SENTINEL_PASSWORD,
                             "redis_port": lib.free_port(), "rules_file": RULES / "seconds.conf",
                             "http_listen": f"127.0.0.1:{http_port}",
                             "redis_reconnect_min_ms": 50, "redis_reconnect_max_ms": 300,
                             "batch_linger_ms": 20}, redis=master, wait_for=READY, timeout=30)
    assert f"connected to master {MASTER_NAME} at 127.0.0.1:{master.port}" in daemon.log()

    parts = [counted_events(rng, 1000, f"500112-SN{i}") for i in range(4)]
    # Clocks whose orange (ts + 2 s) and red (ts + 5 s) fall due during and
    # after the failover, none before the kill.
    clocks = detention_starts(rng, 30, int(time.time() * 1000) + 2000)
    lib.produce(mock_cluster.bootstrap, EVENT_TOPIC, ev.to_messages(parts[0] + clocks),
                timeout=60)
    wait_applied(mock_cluster.bootstrap, master.client(), timeout=60)
    assert master.client().execute_command("WAIT", 1, 5000) == 1

    # Cut replication, stream until the master holds writes the replica has
    # not received, SIGKILL the master.
    at_cut = sum(redis_positions(master.client()).values())
    master.client().config_set("requirepass", "not-known-to-the-replica")
    cut = master.client(password="not-known-to-the-replica")
    cut.client_kill_filter(_type="slave")
    streamer = threading.Thread(target=lambda: [
        lib.produce(mock_cluster.bootstrap, EVENT_TOPIC, ev.to_messages(part), timeout=60)
        for part in parts[1:3]], daemon=True)
    streamer.start()
    lib.wait_until(lambda: sum(redis_positions(cut).values()) >= at_cut + 200, 30,
                   interval=0.01, message="writes the replica does not have")
    at_kill = sum(redis_positions(cut).values())
    master.kill()
    killed_at = time.monotonic()

    # Until the replica is promoted and the daemon is set up on it, /readyz
    # must not answer 200: sampled from the moment the daemon saw the loss.
    daemon.wait_for_log("redis: connection lost", timeout=10)
    samples = []
    while time.monotonic() - killed_at < 40:
        status = get(http_port, "/readyz")[0]
        replica_role = role(replica)  # after: a 200 while it is still a replica is wrong
        samples.append((replica_role, status))
        if status == 200:
            break
        time.sleep(0.05)
    ready_at = time.monotonic()
    streamer.join(60)
    lib.produce(mock_cluster.bootstrap, EVENT_TOPIC, ev.to_messages(parts[3]), timeout=60)
    client = replica.client()
    wait_applied(mock_cluster.bootstrap, client, timeout=90)

    expected = {(c["ref"], level) for c in clocks for level in ("orange", "red")}
    alerts = read_alerts(mock_cluster.bootstrap, len(expected), timeout=60, settle=3.0)
    sent = sum(len(p) for p in parts) + len(clocks)
    applied = applied_total(client)
    rollbacks = metric(http_port, "duewatch_redis_rollbacks_total")
    lib.print_ledger("failures", "redis_sentinel_failover", sent=sent, applied=applied,
                     clocks=len(clocks), alerts_expected=len(expected), delivered=len(alerts),
                     distinct=len({a["alert_id"] for a in alerts}),
                     duplicates=len(alerts) - len({a["alert_id"] for a in alerts}),
                     positions_at_cut=at_cut, positions_at_kill=at_kill,
                     rollbacks=rollbacks, readyz_samples=len(samples),
                     not_ready_while_replica=sum(1 for r, s in samples if r == "slave"),
                     seconds_kill_to_ready=round(ready_at - killed_at, 2),
                     seconds_total=round(time.monotonic() - started_at, 1))

    assert samples and samples[-1][1] == 200, samples[-5:]
    assert all(status != 200 for replica_role, status in samples if replica_role != "master"), \
        samples
    assert all(s.master_address() == (replica.host, replica.port) for s in watchers)
    log = daemon.log()
    assert f"connected to master {MASTER_NAME} at 127.0.0.1:{replica.port}" in log
    assert rollbacks == 1 and "redis: rolled back" in log
    assert applied == sent
    assert_counters_exact(client, [e for p in parts for e in p] + clocks)
    check_alerts(alerts, expected)
    assert len(alerts) == len(expected)
    assert client.get(f"dw:active:quick_detention:{UNIT}") == "30"
    assert get(http_port, "/readyz")[0] == 200

    # The operator tool finds the new master through the same Sentinels.
    tool = subprocess.run([str(TOOL), "-c", daemon.config_path, "counters", "500112-SN0"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
                          env=dict(os.environ, LC_ALL="C.UTF-8"))
    output = tool.stdout.decode()
    assert tool.returncode == 0, tool.stderr.decode()
    assert re.search(r"^\s*case\.filed\s+200\b", output, re.MULTILINE), output


def test_sentinel_acl_user(daemon_factory, mock_cluster, redis_factory, tmp_path):
    """Sentinels whose default user is off: the daemon logs in to them as an
    ACL user allowed only AUTH, SENTINEL get-master-addr-by-name and
    SUBSCRIBE +switch-master, finds the master and gets ready; with a wrong
    password it never does, and says why."""
    master = redis_factory()
    admin_password, user_password = "admin-pw", "duewatch-sentinel-pw"
    acl = ["user default off",
           f"user admin on >{admin_password} ~* &* +@all",
           f"user duewatch on >{user_password} -@all +auth "
           "+sentinel|get-master-addr-by-name +subscribe &+switch-master",
           "sentinel sentinel-user admin", f"sentinel sentinel-pass {admin_password}"]
    sentinel = lib.RedisSentinel(tmp_path / "sentinel-acl", master, name=MASTER_NAME,
                                 username="admin", password=admin_password, extra_lines=acl)
    sentinel.start()
    try:
        settings = {"redis_sentinels": f"127.0.0.1:{sentinel.port}",
                    "redis_master_name": MASTER_NAME, "redis_sentinel_username": "duewatch",
                    "redis_sentinel_password": user_password, "redis_port": lib.free_port()}
        good = daemon_factory(settings, redis=master, wait_for=READY, timeout=30)
        assert f"connected to master {MASTER_NAME} at 127.0.0.1:{master.port}" in good.log()
        assert "cannot subscribe" not in good.log()
        assert good.stop() == 0

        wrong = daemon_factory(dict(settings, redis_sentinel_password="wrong"), redis=master)
        wrong.wait_for_log(rf"sentinel 127\.0\.0\.1:{sentinel.port} does not name master "
                           rf"{MASTER_NAME}: .*(WRONGPASS|NOAUTH)", timeout=15)
        wrong.wait_for_log(r"cannot subscribe to sentinel failover notices: .*(WRONGPASS|NOAUTH)",
                           timeout=15)
        assert "and ready" not in wrong.log()
    finally:
        sentinel.stop()
