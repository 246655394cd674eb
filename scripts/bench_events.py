"""Event data for `make bench` (scripts/bench.sh, scripts/bench_run.py).

Streams are built from the end-to-end tests' builders (tests/e2e/events.py:
valid_event, the case histories of realistic_stream) and written to a data
file the C helpers read too, so every figure of one run uses the same events:

  records of  u32 partition, u32 key length, key, u32 value length, value
  (little endian; value = the msgpack event, key = ev.kafka_key: as the event contract says)

Streams:
  live(n)  n events with ts in the last hour (case histories compressed in
           time so a whole history fits, most clocks stopping within the
           stream), over 40 units, every type; about one event in five starts
           a clock: the rest are case steps, stops and incidents of kind
           `other` (most calls to the police never become a case).  No
           deadline or warning falls due within hours of the run.
  year(n)  about n events of realistic_stream() with ts spread over the last
           365 days (a district-year: every rule, open clocks included).
  due(n)   n incident.reported kind=other (the benchmark's seconds rule
           starts on them) with ts spread evenly over one second from t0.
"""

import os
import random
import struct
import sys
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))
import events as ev  # noqa: E402  (tests/e2e/events.py)

DAY_MS = ev.DAY_MS
HOUR_MS = ev.HOUR_MS
MINUTE_MS = 60_000

CLOCK_STARTS = {
    ("incident.reported", "criminal"), ("incident.reported", "admin"),
    ("case.accepted", "admin"), ("measure.started", None), ("detention.decided", None),
}
# Qualifiers the shipped rules start on (conf/rules.conf): administrative
# seizures only, decisions to be published only.
QUALIFIED_STARTS = {"property.seized": ("scope", "admin"),
                    "decision.issued": ("publish", "required")}


def starts_clock(event):
    if event["type"] in QUALIFIED_STARTS:
        key, value = QUALIFIED_STARTS[event["type"]]
        return event.get(key) == value
    return ((event["type"], event.get("kind")) in CLOCK_STARTS
            or (event["type"], None) in CLOCK_STARTS)


def live(rng, n, now_ms, units=40, clock_share=0.2):
    """n events in (now - 60 min, now], see the module docstring."""
    unit_list = ev.unit_names(units)
    compress = 1 / 720  # a day of a case history becomes 2 minutes
    events = []
    starts = 0
    while len(events) < n:
        unit = rng.choice(unit_list)
        begin = now_ms - 60 * MINUTE_MS + rng.randrange(0, 40 * MINUTE_MS)
        for type, fields, offset in ev._case_history(rng, unit, begin):
            ts = begin + int(offset * compress)
            if ts <= now_ms:
                event = ev.valid_event(rng, type, ts, unit, **fields)
                starts += starts_clock(event)
                events.append(event)
        # incidents that never become a case, until clock starts are ~clock_share
        while len(events) < n and starts > clock_share * len(events):
            unit = rng.choice(unit_list)
            reported = now_ms - 60 * MINUTE_MS + rng.randrange(0, 55 * MINUTE_MS)
            ref = ev.random_ref(rng, "J")
            events.append(ev.valid_event(rng, "incident.reported", reported, unit, ref=ref,
                                         kind="other"))
            if rng.random() < 0.9:
                closed = reported + rng.randrange(MINUTE_MS, 5 * MINUTE_MS)
                events.append(ev.valid_event(rng, "incident.closed", min(closed, now_ms), unit,
                                             ref=ref))
    events = events[:n]
    events.sort(key=lambda event: event["ts"])
    return events


def year(rng, n, now_ms):
    """About n events of a district-year (realistic_stream over 365 days)."""
    cases = max(1, round(n / 7.03))
    return ev.realistic_stream(rng, now_ms, cases=cases, units=40, window_days=365,
                               standalone_incidents=max(1, round(cases * 0.27)))


def due(rng, n, t0_ms, spread_ms=1000, units=40):
    unit_list = ev.unit_names(units)
    return [ev.valid_event(rng, "incident.reported", t0_ms + i * spread_ms // n,
                           unit_list[i % units], ref=f"DUE{i:07d}", kind="other")
            for i in range(n)]


def write(path, events, partitions):
    """Writes the data file; returns (count, bytes of values, clock starts)."""
    packer = ev.msgpack.Packer(use_bin_type=True)
    total = 0
    starts = 0
    pack_u32 = struct.Struct("<I").pack
    with open(path, "wb") as out:
        chunks = []
        for event in events:
            key = ev.kafka_key(event)
            value = packer.pack(event)
            total += len(value)
            starts += starts_clock(event)
            chunks.append(b"".join((pack_u32(zlib.crc32(key) % partitions), pack_u32(len(key)),
                                    key, pack_u32(len(value)), value)))
            if len(chunks) >= 10000:
                out.write(b"".join(chunks))
                chunks = []
        out.write(b"".join(chunks))
    return len(events), total, starts


def read(path):
    """Yields (partition, key, value) from a data file."""
    data = Path(path).read_bytes()
    at = 0
    unpack = struct.Struct("<I").unpack_from
    while at + 12 <= len(data):
        partition = unpack(data, at)[0]
        key_length = unpack(data, at + 4)[0]
        key = data[at + 8:at + 8 + key_length]
        value_length = unpack(data, at + 8 + key_length)[0]
        value = data[at + 12 + key_length:at + 12 + key_length + value_length]
        at += 12 + key_length + value_length
        yield partition, key, value


def produce(bootstrap, topic, path, timeout=120):
    """Produces a data file's records to their partitions, in file order;
    returns the count.  Batches large (linger, batch.num.messages) since the
    mock cluster returns one producer batch per partition per fetch."""
    from confluent_kafka import Producer
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1000,
                         "batch.num.messages": 10000, "batch.size": 1_000_000,
                         "queue.buffering.max.messages": 1_000_000,
                         "queue.buffering.max.kbytes": 1_048_576, "acks": 1,
                         "enable.idempotence": False, "log_level": 3})
    failures = []

    def report(error, message):
        if error is not None:
            failures.append(error)

    count = 0
    for partition, key, value in read(path):
        while True:
            try:
                producer.produce(topic, value=value, key=key, partition=partition,
                                 on_delivery=report if count % 1000 == 0 else None)
                break
            except BufferError:
                producer.poll(0.05)
        count += 1
        if count % 10000 == 0:
            producer.poll(0)
    left = producer.flush(timeout)
    if left or failures:
        raise RuntimeError(f"produce to {topic}: {left} not delivered, failures {failures[:3]}")
    return count


if __name__ == "__main__":
    import argparse
    import time
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=("live", "year", "due"))
    parser.add_argument("count", type=int)
    parser.add_argument("out")
    parser.add_argument("--partitions", type=int, default=64)
    parser.add_argument("--seed", type=int, default=int(os.environ.get("BENCH_SEED", "1")))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    now = ev.suite_now_ms()  # the due stream fires on the real clock
    stream = {"live": lambda: live(rng, args.count, now), "year": lambda: year(rng, args.count, now),
              "due": lambda: due(rng, args.count, int(time.time() * 1000) + 10_000)}[args.kind]()
    print(write(args.out, stream, args.partitions))
