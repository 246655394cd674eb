#!/usr/bin/python3
"""Feeds `make run`'s duewatchd a sample stream: a few hundred realistic case
histories of the last 20 days, a few malformed messages, and a handful of
measures whose deadlines are near or past today, so several rules raise real
alerts at once.  Usage: demo_events.py BOOTSTRAP TOPIC"""

import pathlib
import random
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "e2e"))

import events as ev  # noqa: E402
from confluent_kafka import Producer  # noqa: E402

DAY = ev.DAY_MS
HOUR = ev.HOUR_MS
STORY_UNIT = "500112-FZ01"  # the stories' own unit, so their alerts are easy to pick out


def deadline_stories(rng, now):
    """Clocks that fire now: (description, event)."""
    unit = STORY_UNIT

    def event(kind_of_event, ts, **fields):
        return ev.valid_event(rng, kind_of_event, ts, unit, **fields)

    return [
        ("bail started 360 days ago: yellow (its 12 months end on the same date, "
         "5 or 6 days ahead, moved off rest days: within 15 days)",
         event("measure.started", now - 360 * DAY, case="A2025-0101", ref="QB-0101",
               subject="P-0101", kind="bail")),
        ("residential surveillance started 181 days ago: orange (its 6 months end "
         "on the same date 0 to 3 days ahead, moved off rest days: orange within 2)",
         event("measure.started", now - 181 * DAY, case="A2025-0102", ref="JS-0102",
               subject="P-0102", kind="rs")),
        ("administrative detention decided 30 hours ago, not executed: red",
         event("detention.decided", now - 30 * HOUR, case="X2025-0103", ref="JL-0103",
               subject="P-0103", days=10)),
        ("criminal detention started 3 days ago: orange (its third day is today)",
         event("measure.started", now - 72 * HOUR, case="A2025-0104", ref="XJ-0104",
               subject="P-0104", kind="criminal_detention")),
        ("incident reported 20 hours ago, not accepted: orange (24 hours from the next "
         "whole hour, 6 hours before)",
         event("incident.reported", now - 20 * HOUR, ref="JQ-0105", kind="criminal")),
        ("penalty decision issued 12 days ago, not published: red",
         event("decision.issued", now - 12 * DAY, case="X2025-0106", ref="CF-0106",
               kind="penalty", publish="required")),
        ("administrative (non-治安) case accepted 80 days ago: yellow (15 days before its 90)",
         event("case.accepted", now - 80 * DAY, case="X2025-0107", kind="admin",
               admin_type="other")),
        ("criminal seizure 40 days ago: no clock (no 30-day term in criminal procedure)",
         event("property.seized", now - 40 * DAY, case="A2025-0108", ref="KY-0108",
               kind="seize", scope="criminal")),
        ("decision exempt from publication issued 12 days ago: no clock",
         event("decision.issued", now - 12 * DAY, case="X2025-0109", ref="CF-0109",
               kind="penalty", publish="exempt")),
    ]


def main():
    bootstrap, topic = sys.argv[1], sys.argv[2]
    rng = random.Random(20250314)
    now = int(time.time() * 1000)
    stream = ev.realistic_stream(rng, now, cases=300)
    stories = deadline_stories(rng, now)
    malformed = ev.malformed_events(rng, 5)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for event in stream + [story for _, story in stories]:
        producer.produce(topic, key=ev.kafka_key(event), value=ev.pack(event))
    for value, _ in malformed:
        producer.produce(topic, key=b"bad", value=value)
    left = producer.flush(30)
    if left:
        sys.exit(f"demo: {left} messages not delivered")
    print(f"sent {len(stream)} events of {len({e.get('case') for e in stream})} case histories, "
          f"{len(malformed)} malformed messages, and these deadline stories:")
    for description, _ in stories:
        print(f"  - {description}")


if __name__ == "__main__":
    main()
