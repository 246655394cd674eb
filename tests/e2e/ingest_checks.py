"""Shared checks for the ingest end-to-end tests: build a stream of valid and
malformed events, wait until the daemon has applied everything, and compare
Redis with an independent count."""

import time

import duewatch_testlib as lib
import events as ev

EVENT_TOPIC = "duewatch.events"
DEAD_LETTER_TOPIC = "duewatch.deadletter"


def build_stream(rng, total, malformed_fraction=0.01, now_ms=None):
    """(messages [(key, value)], valid events, malformed [(value, reason)]):
    about `total` messages of which `malformed_fraction` are malformed in
    every way the catalog knows, interleaved at random, plus ~2% redelivered
    duplicates of valid events, dated up to now_ms (default ev.suite_now_ms())."""
    now_ms = now_ms or ev.suite_now_ms()
    malformed_count = int(total * malformed_fraction)
    valid = []
    cases = max(10, total // 7)
    while len(valid) < total - malformed_count:
        valid = ev.realistic_stream(rng, now_ms, cases=cases)
        cases = int(cases * 1.3) + 1
    valid = ev.with_duplicates(rng, valid[: total - malformed_count], fraction=0.02)
    malformed = ev.malformed_events(rng, malformed_count)
    messages = ev.to_messages(valid)
    for value, reason in malformed:
        position = rng.randrange(0, len(messages) + 1)
        key = f"bad-{rng.randrange(10**9)}".encode()
        messages.insert(position, (key, value))
    return messages, valid, malformed


def produce_in_chunks(bootstrap, messages, chunks=4, pause=0.0, between=None):
    """Produces messages in `chunks` parts, calling between(index) after each
    part but the last (for faults in the middle of a run)."""
    size = (len(messages) + chunks - 1) // chunks
    for index in range(chunks):
        part = messages[index * size:(index + 1) * size]
        if part:
            lib.produce(bootstrap, EVENT_TOPIC, part, timeout=120)
        if between and index < chunks - 1:
            between(index)
        if pause:
            time.sleep(pause)


def redis_positions(client, prefix="dw:"):
    """{partition: next offset} recorded by the daemon in Redis."""
    positions = {}
    for field, value in client.hgetall(f"{prefix}offsets").items():
        topic, _, partition = field.rpartition(":")
        if topic == EVENT_TOPIC:
            positions[int(partition)] = int(value)
    return positions


def wait_applied(bootstrap, client, timeout=180, prefix="dw:"):
    """Waits until Redis records every partition's end offset as its position."""
    highs = lib.high_watermarks(bootstrap, EVENT_TOPIC)

    def done():
        positions = redis_positions(client, prefix)
        return all(positions.get(p, 0) >= high for p, high in highs.items() if high > 0)

    lib.wait_until(done, timeout, interval=0.2, message=f"positions reach {highs}")
    return highs


CLOCK_FIELDS = ("alert.", "resolved.", "violation.", "running.", "overdue.")


def event_counters(client, prefix="dw:"):
    """{key: {field: count}} of every day/week/month/quarter/year bucket in
    Redis, without what clocks add to the same hashes (CLOCK_FIELDS)."""
    result = {}
    for letter in "dwmqy":
        for key in client.scan_iter(match=f"{prefix}{letter}:*", count=1000):
            fields = {field: int(value) for field, value in client.hgetall(key).items()
                      if not field.startswith(CLOCK_FIELDS)}
            if fields:
                result[key] = fields
    return result


def applied_events(client, prefix="dw:"):
    """Events counted in Redis: the event types' fields (not the kinds,
    qualifiers, persons or clock fields beside them) over the day buckets of
    unit _all."""
    return sum(count for key, fields in event_counters(client, prefix).items()
               if key.startswith(f"{prefix}d:") and key.endswith(":_all")
               for field, count in fields.items() if field in ev.EVENT_TYPES)


def assert_counters_exact(client, valid, prefix="dw:"):
    expected = ev.expected_counters(valid, prefix=prefix)
    actual = event_counters(client, prefix)
    missing = {k: v for k, v in expected.items() if actual.get(k) != v}
    extra = {k: v for k, v in actual.items() if k not in expected}
    assert not missing and not extra, (
        f"{len(missing)} buckets differ (e.g. {list(missing.items())[:3]}, "
        f"actual {[actual.get(k) for k in list(missing)[:3]]}); {len(extra)} unexpected")
    total = sum(count for k, fields in expected.items() if ":_all" in k and
                k.startswith(f"{prefix}d:") for t, count in fields.items() if t in ev.EVENT_TYPES)
    return len(expected), total


def unique_valid_count(valid):
    return len({event["id"] for event in valid if event["type"] != "clock.tick"})
