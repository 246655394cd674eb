"""End-of-day snapshots (README "Counters"): once the daemon's time passes a
local day's end, that day's bucket holds running.<rule> and overdue.<rule>
per unit as they stood at 24:00 -- whatever the events after midnight did
and however the batches fell."""

import pytest

import duewatch_testlib as lib
import events as ev
from ingest_checks import EVENT_TOPIC, wait_applied
from test_clocks import EVENT_MODE, TOPICS, at

U1, U2 = "500112-XJ01", "500112-XJ02"


def story(rng):
    """应拘未拘 (detention_unexecuted, 24 hours) and one bail, 2026-10-10..13:
      JL1 U1 decided 10-10 09:30, executed 10-11 08:00 (on time)
      JL2 U1 decided 10-10 10:30, overdue from 10-11 10:30, executed 10-12 00:30
      JL3 U1 decided 10-11 01:30, overdue from 10-12 01:30, never executed
      JL4 U2 decided 10-11 20:30, overdue from 10-12 20:30, never executed
      JL5 U1 decided 10-12 02:30, due 10-13 02:30
      B1  U2 bail from 10-10 12:00 (12 months)
    and a tick at 10-13 01:00, so the daemon's time passes the end of 10-12."""
    def event(type, when, unit, **fields):
        return ev.valid_event(rng, type, at(when), unit, **fields)
    decided = dict(days=5)
    return [
        event("detention.decided", "2026-10-10 09:30", U1, ref="JL1", case="C1", **decided),
        event("detention.decided", "2026-10-10 10:30", U1, ref="JL2", case="C2", **decided),
        event("measure.started", "2026-10-10 12:00", U2, ref="B1", case="C6", kind="bail"),
        event("detention.decided", "2026-10-11 01:30", U1, ref="JL3", case="C3", **decided),
        event("detention.executed", "2026-10-11 08:00", U1, ref="JL1", case="C1"),
        event("detention.decided", "2026-10-11 20:30", U2, ref="JL4", case="C4", **decided),
        event("detention.executed", "2026-10-12 00:30", U1, ref="JL2", case="C2"),
        event("detention.decided", "2026-10-12 02:30", U1, ref="JL5", case="C5", **decided),
        event("clock.tick", "2026-10-13 01:00", U1),
    ]


EXPECTED = {
    # end of 10-10: JL1, JL2 running, none overdue yet; the bail
    "2026-10-10": {
        U1: {"running.detention_unexecuted": "2", "overdue.detention_unexecuted": "0"},
        U2: {"running.bail_expiry": "1", "overdue.bail_expiry": "0"},
        "_all": {"running.detention_unexecuted": "2", "overdue.detention_unexecuted": "0",
                 "running.bail_expiry": "1", "overdue.bail_expiry": "0"},
    },
    # end of 10-11: JL2 (overdue) and JL3; JL4; JL2's late execution after
    # midnight does not change it
    "2026-10-11": {
        U1: {"running.detention_unexecuted": "2", "overdue.detention_unexecuted": "1"},
        U2: {"running.detention_unexecuted": "1", "overdue.detention_unexecuted": "0",
             "running.bail_expiry": "1", "overdue.bail_expiry": "0"},
        "_all": {"running.detention_unexecuted": "3", "overdue.detention_unexecuted": "1",
                 "running.bail_expiry": "1", "overdue.bail_expiry": "0"},
    },
    # end of 10-12: JL3 (overdue), JL5; JL4 (overdue)
    "2026-10-12": {
        U1: {"running.detention_unexecuted": "2", "overdue.detention_unexecuted": "1"},
        U2: {"running.detention_unexecuted": "1", "overdue.detention_unexecuted": "1",
             "running.bail_expiry": "1", "overdue.bail_expiry": "0"},
        "_all": {"running.detention_unexecuted": "3", "overdue.detention_unexecuted": "2",
                 "running.bail_expiry": "1", "overdue.bail_expiry": "0"},
    },
}


def snapshots(client, days, units):
    return {day: {unit: {field: value for field, value in
                         client.hgetall(f"dw:d:{day}:{unit}").items()
                         if field.startswith(("running.", "overdue."))}
                  for unit in units}
            for day in days}


@pytest.mark.parametrize("batch_max_events", [1, 5000], ids=["one_event_batches", "one_batch"])
def test_snapshots_are_the_state_at_midnight_however_batches_fall(
        mock_cluster_factory, redis_server, daemon_factory, rng, batch_max_events):
    cluster = mock_cluster_factory(topics=TOPICS)
    settings = dict(EVENT_MODE, batch_max_events=batch_max_events, batch_linger_ms=200)
    daemon_factory(settings, cluster=cluster, wait_for=r"kafka: consuming duewatch\.events")
    lib.produce(cluster.bootstrap, EVENT_TOPIC, ev.to_messages(story(rng)))
    client = redis_server.client()
    wait_applied(cluster.bootstrap, client)
    lib.wait_until(lambda: client.get("dw:snapshot") == "2026-10-12", 30,
                   message="the end of 2026-10-12 snapshotted")
    assert snapshots(client, EXPECTED, (U1, U2, "_all")) == EXPECTED
    # the day before the first event has no snapshot: nothing ran then
    assert client.hgetall(f"dw:d:2026-10-09:{U1}") == {}
    print(f"snapshots: batch_max_events={batch_max_events} days=3 exact")
