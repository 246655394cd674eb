"""Redis's state under the daemon's feet (issue 15, items 3 and 9): a Redis
rolled back to a snapshot while duewatchd keeps running, an empty Redis
swapped in, a Redis that refuses writes (a replica after a switch), and
`--check-config` on librdkafka properties."""

import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request

import duewatch_testlib as lib
import events as ev
from ingest_checks import (EVENT_TOPIC, applied_events, assert_counters_exact, redis_positions,
                           wait_applied)

READY = r"kafka: consuming duewatch\.events"
TOOL = lib.REPO_ROOT / "scripts" / "duewatch"


def get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except (urllib.error.URLError, OSError) as error:
        return 0, str(error)


def events_for(rng, count, unit="500112-XJ03"):
    """`count` valid events, each counted once (unique ids), dated now."""
    now = ev.suite_now_ms()
    types = ["case.filed", "incident.reported", "case.accepted", "measure.started",
             "property.seized", "decision.issued"]
    return [ev.valid_event(rng, types[i % len(types)], now - 60_000 + i, unit)
            for i in range(count)]


def produce(bootstrap, events):
    lib.produce(bootstrap, EVENT_TOPIC, ev.to_messages(events), timeout=60)


def applied_total(client):
    """Events counted in Redis (ingest_checks.applied_events)."""
    return applied_events(client)


def metric(port, name):
    return lib.scrape_metrics(port).get(name)


def state_daemon(daemon_factory, redis, port, **overrides):
    settings = {"http_listen": f"127.0.0.1:{port}", "redis_reconnect_min_ms": 50,
                "redis_reconnect_max_ms": 300, "batch_linger_ms": 20}
    settings.update(overrides)
    return daemon_factory(settings, redis=redis, wait_for=READY, timeout=30)


def test_rollback_while_running_replays_the_lost_events(daemon_factory, mock_cluster,
                                                        redis_factory, rng, tmp_path):
    """Produce 1000, SAVE, produce 1000, restore the snapshot and restart Redis
    on the same port with the daemon left running, produce 1000: 3000
    counted, each once."""
    redis = redis_factory(appendonly=False)
    port = lib.free_port()
    daemon = state_daemon(daemon_factory, redis, port)
    client = redis.client()
    batches = [events_for(rng, 1000, unit=f"500112-XJ1{i}") for i in range(3)]
    produce(mock_cluster.bootstrap, batches[0])
    wait_applied(mock_cluster.bootstrap, client, timeout=60)
    client.save()
    snapshot = tmp_path / "snapshot.rdb"
    shutil.copy(redis.directory / "dump.rdb", snapshot)
    at_snapshot = sum(redis_positions(client).values())
    produce(mock_cluster.bootstrap, batches[1])
    wait_applied(mock_cluster.bootstrap, client, timeout=60)
    redis.stop()
    shutil.copy(snapshot, redis.directory / "dump.rdb")
    redis.start()
    client = redis.client()
    assert sum(redis_positions(client).values()) == at_snapshot
    produce(mock_cluster.bootstrap, batches[2])
    wait_applied(mock_cluster.bootstrap, client, timeout=60)
    sent = sum(len(b) for b in batches)
    applied = applied_total(client)
    lib.print_ledger("failures", "redis_rollback_while_running", sent=sent, applied=applied,
                     at_snapshot=at_snapshot)
    assert applied == sent
    assert_counters_exact(client, [e for b in batches for e in b])
    assert metric(port, "duewatch_redis_rollbacks_total") == 1
    assert "redis: rolled back" in daemon.log()
    assert get(port, "/readyz")[0] == 200


def test_empty_redis_holds_consumption_until_recovered(daemon_factory, mock_cluster,
                                                       redis_factory, rng):
    """An empty Redis swapped in: /readyz says not ready, the metric and an
    error line say why, nothing is written over the loss (also after a
    restart of the daemon), and `duewatch recover` replays from the earliest
    retained offsets: every event counted once."""
    redis = redis_factory(appendonly=False)
    port = lib.free_port()
    daemon = state_daemon(daemon_factory, redis, port)
    client = redis.client()
    first, second = events_for(rng, 1000), events_for(rng, 500, unit="500112-XJ04")
    produce(mock_cluster.bootstrap, first)
    wait_applied(mock_cluster.bootstrap, client, timeout=60)
    assert get(port, "/readyz")[0] == 200
    redis.stop()
    for name in ("dump.rdb", "appendonly.aof"):
        path = redis.directory / name
        if path.exists():
            path.unlink()
    redis.start()
    client = redis.client()
    lib.wait_until(lambda: "state lost" in get(port, "/readyz")[1], 20,
                   message="/readyz says Redis's state was lost")
    assert get(port, "/readyz")[0] == 503
    assert metric(port, "duewatch_redis_state_lost") == 1
    assert metric(port, "duewatch_redis_up") == 0
    daemon.wait_for_log(r"<3>.*redis: state lost", timeout=5)
    produce(mock_cluster.bootstrap, second)
    # Restarted, the daemon still holds: the loss is recorded in Redis.
    assert daemon.stop() == 0
    daemon.start(wait_for=r"redis: state lost", timeout=30)
    lib.wait_until(lambda: get(port, "/readyz")[0] == 503, 10, message="/readyz 503")
    assert client.keys("*") == ["dw:generation"], "nothing written over the loss"
    assert client.get("dw:generation").startswith("lost ")

    result = subprocess.run([str(TOOL), "-c", daemon.config_path, "recover"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
                            env=dict(os.environ, LC_ALL="C.UTF-8"))
    assert result.returncode == 0, result.stderr.decode()
    assert "replaying from the earliest retained offsets" in result.stdout.decode()
    wait_applied(mock_cluster.bootstrap, client, timeout=60)
    sent = len(first) + len(second)
    applied = applied_total(client)
    lib.print_ledger("failures", "empty_redis_recovered", sent=sent, applied=applied)
    assert applied == sent
    assert_counters_exact(client, first + second)
    lib.wait_until(lambda: get(port, "/readyz")[0] == 200, 15, message="/readyz 200 again")
    assert metric(port, "duewatch_redis_state_lost") == 0
    daemon.wait_for_log(r"redis: state recovered", timeout=5)
    # A Redis holding the state is not "recovered" over.
    again = subprocess.run([str(TOOL), "-c", daemon.config_path, "recover"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert again.returncode == 1 and b"not a recorded loss" in again.stderr


def test_readonly_redis_is_not_ready_and_nothing_is_lost(daemon_factory, mock_cluster,
                                                         redis_factory, rng):
    """The daemon's Redis becomes a replica (a switch-over: its data moved to
    another server that is now the primary): every write answers READONLY, so
    /readyz and duewatch_redis_up say not ready; promoted again, the daemon
    applies what waited, each once."""
    redis = redis_factory(appendonly=False)
    other = redis_factory(appendonly=False)
    port = lib.free_port()
    daemon = state_daemon(daemon_factory, redis, port)
    client, other_client = redis.client(), other.client()
    first, second = events_for(rng, 500), events_for(rng, 500, unit="500112-XJ05")
    produce(mock_cluster.bootstrap, first)
    wait_applied(mock_cluster.bootstrap, client, timeout=60)
    assert metric(port, "duewatch_redis_up") == 1
    # The switch: `other` takes a copy and becomes the primary, ours its replica.
    other_client.replicaof(redis.host, redis.port)
    lib.wait_until(lambda: other_client.info("replication").get("master_link_status") == "up",
                   20, message="replica in sync")
    other_client.replicaof("NO", "ONE")
    client.replicaof(other.host, other.port)
    lib.wait_until(lambda: client.info("replication").get("master_link_status") == "up", 20,
                   message="the daemon's Redis is a replica")
    produce(mock_cluster.bootstrap, second)
    lib.wait_until(lambda: "refuses writes" in get(port, "/readyz")[1], 20,
                   message="/readyz says Redis refuses writes")
    assert get(port, "/readyz")[0] == 503
    assert metric(port, "duewatch_redis_up") == 0
    client.replicaof("NO", "ONE")
    wait_applied(mock_cluster.bootstrap, client, timeout=60)
    sent = len(first) + len(second)
    applied = applied_total(client)
    lib.print_ledger("failures", "redis_readonly", sent=sent, applied=applied)
    assert applied == sent
    lib.wait_until(lambda: get(port, "/readyz")[0] == 200, 15, message="/readyz 200 again")
    assert metric(port, "duewatch_redis_up") == 1



def test_a_redis_that_may_evict_and_an_eviction_are_reported(daemon_factory, mock_cluster,
                                                             redis_factory, rng):
    """A Redis set to evict when full (maxmemory with allkeys-lru) would drop
    clocks, event ids and outbox entries without a word: the daemon names the
    policy in a warning as it connects and duewatch_redis_may_evict says 1;
    set to noeviction, one line and 0.  Keys evicted all the same (INFO
    evicted_keys grows) are a warning with their number, and
    duewatch_redis_evicted_keys is Redis's count."""
    redis = redis_factory(appendonly=False,
                          extra_args=["--maxmemory", "1gb", "--maxmemory-policy", "allkeys-lru"])
    port = lib.free_port()
    daemon = state_daemon(daemon_factory, redis, port)
    daemon.wait_for_log(r"<4>.*redis: maxmemory-policy allkeys-lru with maxmemory 1073741824 "
                        r"bytes: Redis may evict duewatch's keys when full", timeout=10)
    assert metric(port, "duewatch_redis_may_evict") == 1
    assert metric(port, "duewatch_redis_evicted_keys") == 0
    client = redis.client()
    client.config_set("maxmemory-policy", "noeviction")
    daemon.wait_for_log(r"<6>.*redis: Redis no longer evicts keys \(maxmemory-policy noeviction, "
                        r"maxmemory 1073741824 bytes\)", timeout=15)
    lib.wait_until(lambda: metric(port, "duewatch_redis_may_evict") == 0, 10,
                   message="duewatch_redis_may_evict 0")
    assert len(re.findall(r"may evict duewatch's keys", daemon.log())) == 1, "warned once"

    # Another application's keys with a TTL, and Redis made to evict some.
    other = redis.client()
    other.execute_command("SELECT", 9)
    pipe = other.pipeline(transaction=False)
    for i in range(500):
        pipe.set(f"other:{i}", "x" * 1000, ex=3600)
    pipe.execute()
    client.config_set("maxmemory-policy", "volatile-random")
    client.config_set("maxmemory", int(client.info("memory")["used_memory"]) - 200_000)
    other.set("other:trigger", "x", ex=3600)  # Redis evicts before it runs a write
    evicted = int(client.info("stats")["evicted_keys"])
    client.config_set("maxmemory", 0)
    assert evicted > 0
    daemon.wait_for_log(rf"<4>.*redis: Redis evicted {evicted} keys since the last check \(INFO "
                        rf"stats evicted_keys {evicted}\)", timeout=15)
    lib.wait_until(lambda: metric(port, "duewatch_redis_evicted_keys") == evicted, 10,
                   message=f"duewatch_redis_evicted_keys {evicted}")
    assert metric(port, "duewatch_redis_may_evict") == 0  # maxmemory 0: nothing to evict
    # Still applying events, each once.
    sent = events_for(rng, 200, unit="500112-XJ06")
    produce(mock_cluster.bootstrap, sent)
    wait_applied(mock_cluster.bootstrap, client, timeout=60)
    assert applied_total(client) == len(sent)

def check_config(tmp_path, extra):
    settings = {"rules_file": lib.REPO_ROOT / "conf" / "rules.conf",
                "holidays_file": lib.REPO_ROOT / "conf" / "holidays-cn.conf"}
    settings.update(extra)
    path = lib.write_config(tmp_path / "check.conf", settings)
    completed = subprocess.run([str(lib.daemon_binary()), "-c", str(path), "--check-config"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    return path, completed.returncode, completed.stderr.decode()


def test_check_config_refuses_what_librdkafka_refuses(tmp_path):
    path, code, err = check_config(tmp_path, {"kafka.security.protocol": "SASL_SSLX"})
    assert code == 1
    assert err == (f"duewatchd: {path}:4: key 'kafka.security.protocol': librdkafka: Invalid "
                   f"value \"SASL_SSLX\" for configuration property \"security.protocol\"\n")
    path, code, err = check_config(tmp_path, {"kafka.consumer.no.such.property": "1"})
    assert code == 1
    assert err == (f"duewatchd: {path}:4: key 'kafka.consumer.no.such.property': librdkafka: "
                   f"No such configuration property: \"no.such.property\"\n")
    path, code, err = check_config(tmp_path, {"kafka.producer.linger.ms": "nope"})
    assert code == 1 and f"{path}:4: key 'kafka.producer.linger.ms': librdkafka: " in err
    path, code, err = check_config(tmp_path, {"kafka.security.protocol": "SASL_SSL",
                                              "kafka.consumer.fetch.wait.max.ms": "50"})
    assert (code, err) == (0, "")
