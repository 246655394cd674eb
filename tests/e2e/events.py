"""Contract events for duewatch's end-to-end tests: builders for valid events,
a seeded realistic stream of case histories, a catalog of malformed messages
labelled with the reason the daemon must give, and an independent model of
the Redis counters a stream must produce.

The contract (README "Event contract"): a msgpack map with string keys
  v (uint, must be 1), id, type, ts (int epoch ms, years 2000..2100), unit,
  and per type case, ref, subject, kind, days (uint 1..3650), until (int ms),
  and the qualifiers (QUALIFIERS: scope, admin_type, publish).
Identifiers (id, unit, case, ref, subject) are 1..64 bytes of [A-Za-z0-9._-].
Unknown keys are allowed (and ignored) as long as nesting stays within 8.

Events are plain dicts; pack() turns one into the message value.
"""

import datetime
import os
import time
import uuid
from zoneinfo import ZoneInfo

import msgpack

CONTRACT_VERSION = 1
MAX_IDENTIFIER = 64
MAX_DAYS = 3650
MIN_TS_MS = 946684800000     # 2000-01-01T00:00:00Z
MAX_TS_MS = 4133980799999    # 2100-12-31T23:59:59.999Z
DEFAULT_MAX_DEPTH = 8
DEFAULT_MAX_BYTES = 65536
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
TIME_ZONE = "Asia/Shanghai"

BASE_KEYS = ("v", "id", "type", "ts", "unit")
IDENTIFIER_KEYS = ("id", "unit", "case", "ref", "subject")
STRING_KEYS = ("id", "type", "unit", "case", "ref", "subject", "kind", "ground", "scope",
               "admin_type", "publish")
CONTRACT_KEYS = ("v", "id", "type", "ts", "unit", "case", "ref", "subject", "kind", "days", "until",
                 "ground", "scope", "admin_type", "publish")
GROUNDS = ("roving", "repeated", "gang", "complex")

INCIDENT_KINDS = ("criminal", "admin", "other")
CASE_KINDS = ("criminal", "admin")
MEASURE_KINDS = ("bail", "rs", "rs_designated", "criminal_detention")
PROPERTY_KINDS = ("seize", "seal", "preserve")
DECISION_KINDS = ("license", "penalty", "other")

# Qualifiers (README "Event contract"): type -> (key, values, the one kind
# that requires it or None for every event, the default valid_event gives).
# The defaults keep the meaning events had before the qualifiers existed:
# every seizure administrative (a 30-day clock), every administrative case a
# 治安 case (30 days), every decision to be published.
QUALIFIERS = {
    "property.seized": ("scope", ("criminal", "admin"), None, "admin"),
    "case.accepted": ("admin_type", ("public_security", "other"), "admin", "public_security"),
    "decision.issued": ("publish", ("required", "exempt"), None, "required"),
}
# Kinds valid_event gives without drawing from rng (decision.issued had no
# kind before: a 处罚 decision, as its rule then read).
DEFAULT_KINDS = {"decision.issued": "penalty"}
# type -> (keys required beyond BASE_KEYS, allowed kinds or None when no kind)
EVENT_TYPES = {
    "incident.reported": (("ref",), INCIDENT_KINDS),
    "incident.accepted": (("ref", "case"), None),
    "incident.closed": (("ref",), None),
    "case.accepted": (("case",), CASE_KINDS),
    "case.filed": (("case",), None),
    "case.filing_refused": (("case",), None),
    "case.extended": (("case", "days"), None),
    "case.suspended": (("case",), None),
    "case.resumed": (("case",), None),
    "case.closed": (("case",), None),
    "measure.started": (("case", "ref", "subject"), MEASURE_KINDS),
    "measure.extended": (("case", "ref", "days"), None),
    "measure.ended": (("case", "ref"), None),
    "measure.arrest_requested": (("case", "ref"), None),
    "detention.decided": (("case", "ref", "subject", "days"), None),
    "detention.executed": (("case", "ref"), None),
    "detention.suspended": (("case", "ref"), None),
    "detention.cancelled": (("case", "ref"), None),
    "property.seized": (("case", "ref"), PROPERTY_KINDS),
    "property.extended": (("case", "ref", "days"), None),
    "property.released": (("case", "ref"), None),
    "decision.issued": (("case", "ref"), DECISION_KINDS),
    "decision.published": (("case", "ref"), None),
    "clock.tick": ((), None),
}

REJECT_REASONS = (
    "too_large", "empty", "not_msgpack", "trailing_bytes", "not_map", "too_deep",
    "key_not_string", "duplicate_key", "missing_key", "wrong_type", "bad_version",
    "unknown_type", "bad_identifier", "ts_out_of_range", "ts_in_future", "until_not_after_ts",
    "bad_kind", "bad_days", "bad_value",
)
# The daemon's default max_future_ms: a ts later than the wall clock plus
# this is dead-lettered ts_in_future.
DEFAULT_MAX_FUTURE_MS = 300_000


def suite_now_ms():
    """The instant the suite dates its generated streams by (epoch ms): the
    real clock, or the environment variable DUEWATCH_TEST_NOW when set, as an
    ISO date (2031-06-15: local midnight), an ISO date-time
    (2031-06-15T10:00:00+08:00; without an offset, local time) or epoch
    milliseconds.  Local means TIME_ZONE.  Wall-clock timing (alerts due in
    seconds, sliding windows) keeps using the real clock."""
    value = os.environ.get("DUEWATCH_TEST_NOW", "").strip()
    if not value:
        return int(time.time() * 1000)
    if value.isdigit():
        return int(value)
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"DUEWATCH_TEST_NOW={value!r}: expected an ISO date, an ISO "
                         f"date-time or epoch milliseconds") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(TIME_ZONE))
    return int(moment.timestamp() * 1000)


def pack(event):
    """Message value for an event dict (str -> msgpack str, bytes -> bin)."""
    return msgpack.packb(event, use_bin_type=True)


def unit_names(count=40, district="500112"):
    """Police unit identifiers: 500112-XJ01, 500112-XJ02, ..."""
    return [f"{district}-XJ{i:02d}" for i in range(1, count + 1)]


def random_event_id(rng):
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def random_subject(rng):
    return f"S{rng.getrandbits(48):012x}"


def random_case(rng, unit="500112-XJ01", ts=None):
    month = _local_datetime(ts).strftime("%Y%m") if ts is not None else "202501"
    return f"A{unit.replace('-', '')}{month}{rng.randrange(10000):04d}"


def random_ref(rng, prefix="R"):
    return f"{prefix}{rng.getrandbits(40):010x}"


def valid_event(rng, type, ts, unit, /, **fields):
    """A valid event of `type`: the base keys, every key the type requires
    (random plausible values unless given in fields), plus any other fields
    given (e.g. until=..., or unknown keys).  A field given as None is left
    out, to build an event that misses it on purpose.  A type's qualifier
    (QUALIFIERS) gets its default when the event's kind requires it and it
    is not given; decision.issued's kind defaults to penalty (DEFAULT_KINDS).  The parameters are
    positional-only so fields can also override type, ts and unit."""
    required, kinds = EVENT_TYPES[type]
    event = {"v": CONTRACT_VERSION, "id": random_event_id(rng), "type": type, "ts": ts, "unit": unit}
    defaults = {
        "case": lambda: random_case(rng, unit, ts),
        "ref": lambda: random_ref(rng),
        "subject": lambda: random_subject(rng),
        "days": lambda: rng.choice((7, 15, 30, 60, 90)),
    }
    for key in required:
        if key not in fields:
            event[key] = defaults[key]()
    if kinds is not None and "kind" not in fields:
        event["kind"] = DEFAULT_KINDS[type] if type in DEFAULT_KINDS else rng.choice(kinds)
    event.update(fields)
    if type in QUALIFIERS:
        key, _, when_kind, default = QUALIFIERS[type]
        if key not in fields and (when_kind is None or event.get("kind") == when_kind):
            event[key] = default
    return {key: value for key, value in event.items() if value is not None}


def kafka_key(event):
    """Partitioning key, as the contract names it (README "Event contract"):
    the case for case.* events, the ref for the others, so every event of
    one clock stays in order on one partition; a clock.tick's unit."""
    if event.get("type") == "clock.tick":
        return event["unit"].encode()
    name = "case" if str(event.get("type", "")).startswith("case.") else "ref"
    return (event.get(name) or event.get("unit")).encode()


def to_messages(events):
    """[(key bytes, value bytes)] for duewatch_testlib.produce()."""
    return [(kafka_key(event), pack(event)) for event in events]


# --------------------------------------------------------------------------
# A realistic stream


def _local_datetime(ts_ms, zone=TIME_ZONE):
    return datetime.datetime.fromtimestamp(ts_ms / 1000, tz=ZoneInfo(zone))


def _near_local_midnight(rng, ts_ms):
    """An instant within 3 minutes of a local (Shanghai) midnight near ts_ms,
    so day, week and month buckets are exercised at their edges."""
    local = _local_datetime(ts_ms)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return int(midnight.timestamp() * 1000) + rng.randrange(-180_000, 180_000)


def _case_history(rng, unit, start_ms):
    """(type, fields, offset from start in ms) for one plausible case."""
    criminal = rng.random() < 0.6
    case = random_case(rng, unit, start_ms)
    steps = []
    clock = 0

    def later(low_ms, high_ms):
        nonlocal clock
        clock += rng.randrange(low_ms, high_ms)
        return clock

    if rng.random() < 0.6:  # most cases start from a reported incident
        incident_ref = random_ref(rng, "J")
        steps.append(("incident.reported", {"ref": incident_ref,
                                            "kind": "criminal" if criminal else "admin"}, 0))
        steps.append(("incident.accepted", {"ref": incident_ref, "case": case},
                      later(10 * 60_000, 12 * HOUR_MS)))
    steps.append(("case.accepted", {"case": case, "kind": "criminal" if criminal else "admin"},
                  later(0, HOUR_MS)))
    if criminal and rng.random() < 0.1:
        # the filing review ends in a refusal (不予立案): nothing follows
        steps.append(("case.filing_refused", {"case": case}, later(HOUR_MS, 3 * DAY_MS)))
        return steps
    steps.append(("case.filed", {"case": case}, later(HOUR_MS, 3 * DAY_MS)))
    if criminal and rng.random() < 0.7:
        measure_ref = random_ref(rng, "QZ")
        subject = random_subject(rng)
        measure_kind = rng.choice(MEASURE_KINDS)
        steps.append(("measure.started", {"case": case, "ref": measure_ref,
                                          "subject": subject, "kind": measure_kind},
                      later(HOUR_MS, 2 * DAY_MS)))
        if rng.random() < 0.3:
            steps.append(("measure.extended", {"case": case, "ref": measure_ref,
                                               "days": rng.choice((7, 30, 60))},
                          later(DAY_MS, 4 * DAY_MS)))
        if rng.random() < 0.6:
            # a criminal detention ends in the request for arrest (提请批准逮捕)
            ending = ("measure.arrest_requested" if measure_kind == "criminal_detention"
                      else "measure.ended")
            steps.append((ending, {"case": case, "ref": measure_ref},
                          later(DAY_MS, 5 * DAY_MS)))
    if not criminal and rng.random() < 0.5:
        detention_ref = random_ref(rng, "JL")
        steps.append(("detention.decided", {"case": case, "ref": detention_ref,
                                            "subject": random_subject(rng),
                                            "days": rng.choice((3, 5, 10, 15))},
                      later(HOUR_MS, DAY_MS)))
        outcome = rng.random()
        if outcome < 0.7:
            steps.append(("detention.executed", {"case": case, "ref": detention_ref},
                          later(10 * 60_000, 6 * HOUR_MS)))
        elif outcome < 0.85:
            steps.append(("detention.suspended", {"case": case, "ref": detention_ref},
                          later(10 * 60_000, 6 * HOUR_MS)))
        else:
            steps.append(("detention.cancelled", {"case": case, "ref": detention_ref},
                          later(10 * 60_000, 6 * HOUR_MS)))
    if rng.random() < 0.4:
        property_ref = random_ref(rng, "CW")
        steps.append(("property.seized", {"case": case, "ref": property_ref,
                                          "kind": rng.choice(PROPERTY_KINDS),
                                          "scope": "criminal" if criminal else "admin"},
                      later(HOUR_MS, 2 * DAY_MS)))
        if rng.random() < 0.2:
            steps.append(("property.extended", {"case": case, "ref": property_ref,
                                                "days": rng.choice((30, 60))},
                          later(DAY_MS, 5 * DAY_MS)))
        if rng.random() < 0.5:
            steps.append(("property.released", {"case": case, "ref": property_ref},
                          later(DAY_MS, 5 * DAY_MS)))
    if rng.random() < 0.15:
        steps.append(("case.extended", {"case": case, "days": rng.choice((30, 60))},
                      later(DAY_MS, 3 * DAY_MS)))
    if rng.random() < 0.1:
        steps.append(("case.suspended", {"case": case}, later(DAY_MS, 3 * DAY_MS)))
        if rng.random() < 0.6:
            steps.append(("case.resumed", {"case": case}, later(DAY_MS, 3 * DAY_MS)))
    if rng.random() < 0.5:
        decision_ref = random_ref(rng, "JD")
        steps.append(("decision.issued", {"case": case, "ref": decision_ref},
                      later(HOUR_MS, 3 * DAY_MS)))
        if rng.random() < 0.8:
            steps.append(("decision.published", {"case": case, "ref": decision_ref},
                          later(HOUR_MS, 2 * DAY_MS)))
    if rng.random() < 0.4:
        steps.append(("case.closed", {"case": case}, later(DAY_MS, 4 * DAY_MS)))
    return steps


def realistic_stream(rng, now_ms, cases=150, units=40, window_days=20, standalone_incidents=40,
                     midnight_fraction=0.1):
    """Events of `cases` case histories and `standalone_incidents` incidents
    (reported, then closed or left open) spread over `units` units, all with
    ts in (now - window_days, now], sorted by ts (ties keep history order).
    Events a history would place after now are left out, as in life.  About
    midnight_fraction of the histories start within minutes of a local
    midnight.  Same seed, same stream."""
    unit_list = unit_names(units)
    window_start = now_ms - window_days * DAY_MS
    events = []
    for number in range(cases):
        # every unit gets at least one case (when there are enough cases)
        unit = unit_list[number] if number < len(unit_list) else rng.choice(unit_list)
        start = rng.randrange(window_start, now_ms - HOUR_MS)
        if rng.random() < midnight_fraction:
            start = max(window_start + 1, _near_local_midnight(rng, start))
        for type, fields, offset in _case_history(rng, unit, start):
            if start + offset <= now_ms:
                events.append(valid_event(rng, type, start + offset, unit, **fields))
    for _ in range(standalone_incidents):
        unit = rng.choice(unit_list)
        start = rng.randrange(window_start, now_ms - HOUR_MS)
        ref = random_ref(rng, "J")
        events.append(valid_event(rng, "incident.reported", start, unit, ref=ref,
                                  kind=rng.choice(INCIDENT_KINDS)))
        if rng.random() < 0.6:
            closed = start + rng.randrange(10 * 60_000, 2 * DAY_MS)
            if closed <= now_ms:
                events.append(valid_event(rng, "incident.closed", closed, unit, ref=ref))
    events.sort(key=lambda event: event["ts"])  # stable: a history's order survives ties
    return events


def clock_tick(rng, ts, unit="500112-XJ01"):
    return valid_event(rng, "clock.tick", ts, unit)


def with_duplicates(rng, events, fraction=0.1):
    """The stream with about `fraction` of its events sent again (same id and
    content) somewhat later, as a redelivering producer would."""
    result = list(events)
    for event in events:
        if rng.random() < fraction:
            position = min(len(result), result.index(event) + rng.randrange(1, 50))
            result.insert(position, dict(event))
    return result


def edge_valid_events(rng, ts, unit="500112-XJ01"):
    """(value bytes, what) pairs that are valid but sit on a limit of the
    contract: a strict decoder must accept every one."""
    cases = []

    def add(what, event=None, raw=None):
        cases.append((raw if raw is not None else pack(event), what))

    add("id of exactly 64 bytes", valid_event(rng, "case.filed", ts, unit, id="a" * 64))
    add("identifier of 1 byte", valid_event(rng, "case.filed", ts, unit, case="7"))
    add("every identifier character class",
        valid_event(rng, "case.filed", ts, unit, case="Az09._-Z"))
    add("ts at 2000-01-01T00:00:00Z", valid_event(rng, "case.filed", MIN_TS_MS, unit))
    add("ts one minute ahead of the wall clock (within max_future_ms)",
        valid_event(rng, "case.filed", int(time.time() * 1000) + 60_000, unit))
    add("days = 3650", valid_event(rng, "case.extended", ts, unit, days=MAX_DAYS))
    add("days = 1", valid_event(rng, "case.extended", ts, unit, days=1))
    add("until present", valid_event(rng, "measure.started", ts, unit, until=ts + 30 * DAY_MS))
    add("unknown keys are ignored",
        valid_event(rng, "case.filed", ts, unit, note="x", extra={"a": [1, 2.5, None, b"b"]}))
    nested = 1
    for _ in range(DEFAULT_MAX_DEPTH - 1):  # top map is depth 1; 7 arrays reach 8
        nested = [nested]
    add("nesting of exactly 8 (map + 7 arrays)",
        valid_event(rng, "case.filed", ts, unit, deep=nested))
    event = valid_event(rng, "case.filed", ts, unit)
    add("keys in reverse order", dict(reversed(list(event.items()))))
    event = valid_event(rng, "case.filed", ts, unit)
    pairs = [(raw_str(k.encode()), pack(v)) for k, v in event.items() if k != "v"]
    pairs.append((raw_str(b"v"), b"\xcc\x01"))  # v as uint8, not fixint
    add("v encoded as uint8", raw=raw_map(pairs))
    event = valid_event(rng, "case.filed", ts, unit)
    pairs = [(raw_str(k.encode(), force=0xda), raw_str(v.encode(), force=0xda)
              if isinstance(v, str) else pack(v)) for k, v in event.items()]
    add("keys and strings encoded as str16", raw=raw_map(pairs))
    pairs = [(raw_str(k.encode()), pack(v)) for k, v in event.items() if k != "ts"]
    pairs.append((raw_str(b"ts"), b"\xcf" + ts.to_bytes(8, "big")))
    add("ts encoded as uint64", raw=raw_map(pairs))
    pairs = [(raw_str(k.encode()), pack(v)) for k, v in event.items() if k != "ts"]
    pairs.append((raw_str(b"ts"), b"\xd3" + ts.to_bytes(8, "big", signed=True)))
    add("ts encoded as int64", raw=raw_map(pairs))
    add("clock.tick", clock_tick(rng, ts, unit))
    return cases


# --------------------------------------------------------------------------
# Raw msgpack pieces, for what python-msgpack will not write (duplicate keys,
# non-string keys, invalid UTF-8, chosen encodings)


def raw_str(data, force=None):
    """msgpack str of raw bytes (not checked for UTF-8); force = 0xd9/0xda/0xdb."""
    n = len(data)
    if force is None:
        force = 0xa0 if n < 32 else 0xd9 if n < 256 else 0xda if n < 65536 else 0xdb
    if force == 0xa0:
        return bytes([0xa0 | n]) + data
    size = {0xd9: 1, 0xda: 2, 0xdb: 4}[force]
    return bytes([force]) + n.to_bytes(size, "big") + data


def raw_map(pairs):
    """msgpack map from already encoded (key bytes, value bytes) pairs."""
    n = len(pairs)
    if n < 16:
        header = bytes([0x80 | n])
    elif n < 65536:
        header = b"\xde" + n.to_bytes(2, "big")
    else:
        header = b"\xdf" + n.to_bytes(4, "big")
    return header + b"".join(key + value for key, value in pairs)


def _encoded_pairs(event):
    return [(raw_str(key.encode()), pack(value)) for key, value in event.items()]


# --------------------------------------------------------------------------
# Malformed messages


def malformed_catalog(rng, ts=None, unit="500112-XJ01", max_bytes=DEFAULT_MAX_BYTES,
                      max_depth=DEFAULT_MAX_DEPTH):
    """Every defect this module knows, once: [(value, reason, what)].  value is
    bytes, or None for a tombstone (a message without value).  Each value has
    exactly one defect, so its reason does not depend on the order in which a
    decoder checks things."""
    if ts is None:
        ts = 1_740_000_000_000  # 2025-02-19
    catalog = []

    def event(event_type="case.filed", /, **fields):
        return valid_event(rng, event_type, ts, unit, **fields)

    def add(reason, what, value):
        catalog.append((value, reason, what))

    # too_large: a valid event padded past the limit with an unknown key
    add("too_large", f"valid event padded to {max_bytes + 1} bytes",
        _pad_to(event(), max_bytes + 1))
    add("too_large", "valid event padded to twice the limit", _pad_to(event(), 2 * max_bytes))

    add("empty", "zero bytes", b"")
    add("empty", "tombstone (no value)", None)

    good = pack(event())
    add("not_msgpack", "reserved byte 0xc1", b"\xc1")
    add("not_msgpack", "garbage starting with 0xc1", b"\xc1" + bytes(rng.randrange(256)
                                                                       for _ in range(40)))
    add("not_msgpack", "event cut one byte short", good[:-1])
    add("not_msgpack", "event cut in half", good[: len(good) // 2])
    add("not_msgpack", "map header promising 5 pairs, 1 present",
        b"\x85" + raw_str(b"v") + b"\x01")
    add("not_msgpack", "str8 announcing 200 bytes, 3 present", b"\x81\xa1x\xd9\xc8abc")
    add("not_msgpack", "reserved byte 0xc1 as a value inside the map",
        raw_map(_encoded_pairs(event()) + [(raw_str(b"note"), b"\xc1")]))
    add("not_msgpack", "lone map32 header", b"\xdf\x00\x00\x00\x05")

    add("trailing_bytes", "event followed by 0x00", good + b"\x00")
    add("trailing_bytes", "two events back to back", good + pack(event()))
    add("trailing_bytes", "event followed by nil", good + b"\xc0")

    add("not_map", "array holding an event", pack([event()]))
    add("not_map", "string", pack("case.filed"))
    add("not_map", "positive int", pack(42))
    add("not_map", "negative int", pack(-7))
    add("not_map", "nil", b"\xc0")
    add("not_map", "true", b"\xc3")
    add("not_map", "float", pack(1.5))
    add("not_map", "bin", pack(b"\x81\xa1v\x01"))

    deep_arrays = 1
    for _ in range(max_depth):  # map + max_depth arrays = max_depth + 1
        deep_arrays = [deep_arrays]
    add("too_deep", f"unknown key nested {max_depth + 1} deep (arrays)", pack(event(x=deep_arrays)))
    deep_maps = "leaf"
    for _ in range(max_depth):
        deep_maps = {"a": deep_maps}
    add("too_deep", f"unknown key nested {max_depth + 1} deep (maps)", pack(event(x=deep_maps)))
    add("too_deep", "unknown key nested 1000 deep",
        raw_map(_encoded_pairs(event()) + [(raw_str(b"x"), b"\x91" * 1000 + b"\x01")]))

    add("key_not_string", "int key", raw_map(_encoded_pairs(event()) + [(pack(1), pack("x"))]))
    add("key_not_string", "bin key", raw_map(_encoded_pairs(event()) + [(pack(b"note"), pack(1))]))
    add("key_not_string", "nil key", raw_map(_encoded_pairs(event()) + [(b"\xc0", pack(1))]))
    add("key_not_string", "float key", raw_map(_encoded_pairs(event()) + [(pack(2.5), pack(1))]))

    for key in ("id", "ts", "type", "case"):
        base = event()
        pairs = _encoded_pairs(base)
        pairs.append((raw_str(key.encode()), pack(base[key])))
        add("duplicate_key", f"'{key}' twice with the same value", raw_map(pairs))
    base = event()
    add("duplicate_key", "'id' twice with different values",
        raw_map(_encoded_pairs(base) + [(raw_str(b"id"), pack(random_event_id(rng)))]))

    for key in BASE_KEYS:
        add("missing_key", f"no '{key}'", pack(event(**{key: None})))
    for type, key in (("case.filed", "case"), ("incident.reported", "ref"),
                      ("incident.accepted", "case"), ("measure.started", "subject"),
                      ("measure.ended", "ref"), ("case.extended", "days"),
                      ("detention.decided", "days"), ("property.released", "case"),
                      ("decision.published", "ref")):
        add("missing_key", f"{type} without '{key}'", pack(event(type, **{key: None})))

    for what, fields, type in (
            ("ts as float", {"ts": float(ts)}, "case.filed"),
            ("ts as str", {"ts": str(ts)}, "case.filed"),
            ("id as int", {"id": 12345}, "case.filed"),
            ("v as str", {"v": "1"}, "case.filed"),
            ("v as float", {"v": 1.0}, "case.filed"),
            ("type as int", {"type": 9}, "case.filed"),
            ("unit as bin", {"unit": unit.encode()}, "case.filed"),
            ("case as array", {"case": ["A1"]}, "case.filed"),
            ("days as str", {"days": "30"}, "case.extended"),
            ("days as float", {"days": 30.0}, "case.extended"),
            ("kind as int", {"kind": 1}, "measure.started"),
            ("ref as bool", {"ref": True}, "measure.ended"),
            ("until as str", {"until": str(ts)}, "case.filed"),
            ("subject as map", {"subject": {"x": "y"}}, "measure.started")):
        add("wrong_type", what, pack(event(type, **fields)))

    for version in (0, 2, 255):
        add("bad_version", f"v = {version}", pack(event(v=version)))

    for name in ("case.opened", "CASE.FILED", "case.filed ", "clock", "incident.reported.x",
                 "tick"):
        add("unknown_type", f"type {name!r}", pack(event(type=name)))

    for key, value, what in (
            ("id", "a:b", "':'"), ("id", "a b", "' '"), ("id", "a*", "'*'"),
            ("id", "a\nb", "newline"), ("id", "x" * 65, "65 bytes"), ("id", "", "empty"),
            ("case", "案件01", "non-ASCII"), ("ref", "{slot}", "'{}' (a Redis hash tag)"),
            ("unit", "500112/XJ01", "'/'"), ("subject", "S1\x00", "NUL")):
        type = "measure.started" if key == "subject" else "measure.ended"
        add("bad_identifier", f"{key} with {what}", pack(event(type, **{key: value})))
    base = event("measure.ended")
    pairs = [(raw_str(k.encode()), raw_str(b"A\xff\xfe1") if k == "case" else pack(v))
             for k, v in base.items()]
    add("bad_identifier", "case with invalid UTF-8", raw_map(pairs))

    for value, what in ((MIN_TS_MS - 1, "1999-12-31T23:59:59.999Z"),
                        (MAX_TS_MS + 1, "2101-01-01T00:00:00Z"), (-1, "negative"), (0, "zero"),
                        (2**63 - 1, "int64 max")):
        add("ts_out_of_range", f"ts {what}", pack(event(ts=value)))
    add("ts_out_of_range", "until in 2101", pack(event(until=MAX_TS_MS + 1)))
    add("ts_out_of_range", "until negative", pack(event(until=-5)))
    future = int(time.time() * 1000) + 7 * DAY_MS
    add("ts_in_future", "ts a week ahead of the wall clock", pack(event(ts=future)))
    add("ts_in_future", "clock.tick in 2099", pack(event("clock.tick", ts=MAX_TS_MS - 400 * DAY_MS)))
    add("until_not_after_ts", "until equal to ts", pack(event(until=ts)))
    add("until_not_after_ts", "until a day before ts",
        pack(event("measure.started", until=ts - DAY_MS)))

    add("bad_kind", "measure.started without kind", pack(event("measure.started", kind=None)))
    add("bad_kind", "measure.started kind 'jail'", pack(event("measure.started", kind="jail")))
    add("bad_kind", "case.accepted without kind", pack(event("case.accepted", kind=None)))
    add("bad_kind", "case.accepted kind 'other' (incidents only)",
        pack(event("case.accepted", kind="other")))
    add("bad_kind", "property.seized kind 'bail'", pack(event("property.seized", kind="bail")))
    add("bad_kind", "incident.reported kind ''", pack(event("incident.reported", kind="")))
    add("bad_kind", "incident.reported kind 'Criminal'",
        pack(event("incident.reported", kind="Criminal")))

    add("bad_kind", "decision.issued without kind", pack(event("decision.issued", kind=None)))

    add("missing_key", "property.seized without 'scope'", pack(event("property.seized", scope=None)))
    add("missing_key", "case.accepted kind admin without 'admin_type'",
        pack(event("case.accepted", kind="admin", admin_type=None)))
    add("missing_key", "decision.issued without 'publish'",
        pack(event("decision.issued", publish=None)))
    add("bad_value", "property.seized scope 'Criminal'",
        pack(event("property.seized", scope="Criminal")))
    add("bad_value", "property.seized scope ''", pack(event("property.seized", scope="")))
    add("bad_value", "case.accepted kind admin admin_type 'zhian'",
        pack(event("case.accepted", kind="admin", admin_type="zhian")))
    add("bad_value", "decision.issued publish 'no'", pack(event("decision.issued", publish="no")))

    for type in ("case.extended", "measure.extended", "detention.decided", "property.extended"):
        add("bad_days", f"{type} days = 0", pack(event(type, days=0)))
    add("bad_days", f"days = {MAX_DAYS + 1}", pack(event("case.extended", days=MAX_DAYS + 1)))
    return catalog


def _pad_to(event, size):
    """The event with an unknown key 'pad' making its encoding exactly `size` bytes."""
    event = dict(event, pad="")
    overhead = len(pack(event))
    padding = size - overhead
    event["pad"] = "x" * padding
    while len(pack(event)) > size:  # str8/str16 headers grow with the string
        padding -= 1
        event["pad"] = "x" * padding
    assert len(pack(event)) == size or size < overhead
    return pack(event)


def malformed_events(rng, n=None, **catalog_args):
    """[(value, expected_reason)]: every defect of malformed_catalog() once
    (n=None), or n of them: each defect once in a shuffled order, then random
    picks.  catalog_args: ts, unit, max_bytes, max_depth."""
    catalog = [(value, reason) for value, reason, _ in malformed_catalog(rng, **catalog_args)]
    if n is None:
        return catalog
    rng.shuffle(catalog)
    return catalog[:n] + [rng.choice(catalog) for _ in range(max(0, n - len(catalog)))]


# --------------------------------------------------------------------------
# Expected counters


def bucket_names(ts_ms, zone=TIME_ZONE):
    """(day "YYYY-MM-DD", ISO week "YYYY-Www", month "YYYY-MM") of an instant
    in local civil time."""
    local = _local_datetime(ts_ms, zone).date()
    iso_year, iso_week, _ = local.isocalendar()
    return local.isoformat(), f"{iso_year}-W{iso_week:02d}", f"{local.year}-{local.month:02d}"


def period_buckets(ts_ms, zone=TIME_ZONE):
    """{letter: bucket name} of the five counter periods holding an instant:
    d day, w ISO week, m month, q quarter ("2026-Q4"), y year."""
    day, week, month = bucket_names(ts_ms, zone)
    local = _local_datetime(ts_ms, zone).date()
    return {"d": day, "w": week, "m": month, "q": f"{local.year}-Q{(local.month - 1) // 3 + 1}",
            "y": f"{local.year}"}


def counted_fields(event):
    """The counter fields one valid event counts in: its type, and where it
    has them type:kind, type:qualifier and type:kind:qualifier -- a
    qualifier only where its type (and kind) requires it (QUALIFIERS)."""
    kind = event.get("kind")
    fields = [event["type"]] + ([f"{event['type']}:{kind}"] if kind else [])
    if event["type"] in QUALIFIERS:
        key, _, when_kind, _ = QUALIFIERS[event["type"]]
        value = event.get(key)
        if value is not None and (when_kind is None or kind == when_kind):
            fields.append(f"{event['type']}:{value}")
            if kind:
                fields.append(f"{event['type']}:{kind}:{value}")
    return fields


def person_field(event):
    """persons.<type>[:<kind>] for an event that names a person (its type
    requires subject), else None."""
    if "subject" not in EVENT_TYPES[event["type"]][0]:
        return None
    kind = event.get("kind")
    return f"persons.{event['type']}" + (f":{kind}" if kind else "")


def expected_counters(events, prefix="dw:", zone=TIME_ZONE):
    """What the counters must hold after `events` (valid ones) were applied:
    {key: {field: count}} for keys <prefix><d|w|m|q|y>:<bucket>:<unit>, each
    also with unit `_all`: the fields of counted_fields, and the distinct
    persons (person_field).  An id seen before is not counted again;
    clock.tick is never counted."""
    counters = {}
    persons = {}
    seen_ids = set()
    for event in events:
        if event["id"] in seen_ids:
            continue
        seen_ids.add(event["id"])
        if event["type"] == "clock.tick":
            continue
        person = person_field(event)
        for letter, bucket in period_buckets(event["ts"], zone).items():
            for unit in (event["unit"], "_all"):
                key = f"{prefix}{letter}:{bucket}:{unit}"
                fields = counters.setdefault(key, {})
                for field in counted_fields(event):
                    fields[field] = fields.get(field, 0) + 1
                if person:
                    persons.setdefault((key, person), set()).add(event["subject"])
    for (key, field), subjects in persons.items():
        counters[key][field] = len(subjects)
    return counters