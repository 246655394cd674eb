"""/metrics, /healthz and /readyz of a running duewatchd: the counters match
what was sent, and the output parses as Prometheus text format."""

import collections
import time
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

import duewatch_testlib as lib
from ingest_checks import build_stream, produce_in_chunks, unique_valid_count, wait_applied

READY = r"kafka: consuming duewatch\.events"


def get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def scrape(port):
    status, text = get(port, "/metrics")
    assert status == 200
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels):
    return samples[(name, tuple(sorted(labels.items())))]


def test_metrics_match_what_was_sent(daemon_factory, mock_cluster, redis_server, rng):
    port = lib.free_port()
    daemon = daemon_factory({"http_listen": f"127.0.0.1:{port}"}, wait_for=READY)
    assert get(port, "/healthz") == (200, "ok\n")
    lib.wait_until(lambda: get(port, "/readyz")[0] == 200, 15, message="/readyz answers 200")
    messages, valid, malformed = build_stream(rng, 5000, malformed_fraction=0.02)
    produce_in_chunks(mock_cluster.bootstrap, messages, chunks=2)
    client = redis_server.client()
    wait_applied(mock_cluster.bootstrap, client)
    time.sleep(6)  # clocks running are read from Redis every 5 s
    samples = scrape(port)
    unique = unique_valid_count(valid)
    assert value(samples, "duewatch_messages_consumed_total") == len(messages)
    assert value(samples, "duewatch_events_applied_total") == unique
    assert value(samples, "duewatch_events_duplicate_total") == len(valid) - unique
    reasons = collections.Counter(reason for _, reason in malformed)
    for reason, count in reasons.items():
        assert value(samples, "duewatch_events_rejected_total", reason=reason) == count
    assert sum(v for (name, _), v in samples.items()
               if name == "duewatch_events_rejected_total") == len(malformed)
    batches = value(samples, "duewatch_batches_applied_total")
    assert batches >= 1
    assert value(samples, "duewatch_redis_batch_duration_seconds_count") == batches
    assert value(samples, "duewatch_batch_events_count") == batches
    assert value(samples, "duewatch_batch_events_sum") == len(valid) + 0  # every valid event
    assert value(samples, "duewatch_redis_up") == 1
    assert value(samples, "duewatch_consumer_paused") == 0
    lags = {labels: v for (name, labels), v in samples.items()
            if name == "duewatch_consumer_lag_messages"}
    assert len(lags) == 8 and all(v == 0 for v in lags.values())
    for key in client.scan_iter(match="dw:active:*:_all"):
        rule = key.split(":")[2]
        assert value(samples, "duewatch_clocks_running", rule=rule) == int(client.get(key))
    delivered = sum(v for (name, _), v in samples.items()
                    if name == "duewatch_alerts_emitted_total")
    alerts = lib.consume_all(mock_cluster.bootstrap, "duewatch.alerts")
    assert delivered == len(alerts)
    status, _ = get(port, "/nope")
    assert status == 404
    print(f"sent={len(messages)} applied={unique} rejected={len(malformed)} batches={batches:.0f} "
          f"alerts={len(alerts)} metric_samples={len(samples)}")
    daemon.reload()
    lib.wait_until(lambda: value(scrape(port), "duewatch_reloads_total", result="applied") == 1,
                   10, message="reload counted")


def test_due_entries_without_a_clock_are_dropped_and_counted(daemon_factory, mock_cluster,
                                                             redis_server):
    """A due-index entry whose clock record is gone (or unreadable) cannot
    fire: the claim takes it out of the index, logs an unreadable one, and
    counts both in duewatch_due_entries_dropped_total."""
    port = lib.free_port()
    client = redis_server.client()
    partition = "duewatch.events:0"
    due = int(time.time() * 1000) - 60_000
    bucket = due // 600_000
    client.zadd(f"dw:due:{partition}", {str(bucket): bucket * 600_000})
    client.zadd(f"dw:due:{partition}:{bucket}",
                {"bail_expiry:R-gone": due, "bail_expiry:R-garbled": due})
    client.set("dw:clock:bail_expiry:R-garbled", "@9|not a record")
    daemon = daemon_factory({"http_listen": f"127.0.0.1:{port}"}, wait_for=READY)
    lib.wait_until(lambda: value(scrape(port), "duewatch_due_entries_dropped_total") == 2, 15,
                   message="two due entries dropped")
    assert client.zcard(f"dw:due:{partition}:{bucket}") == 0
    daemon.wait_for_log(r"clock bail_expiry:R-garbled holds no record this daemon reads", 5)
    assert lib.consume_all(mock_cluster.bootstrap, "duewatch.alerts", settle=1.0) == []
