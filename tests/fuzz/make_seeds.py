#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/.

Deterministic (fixed seed): running it again rewrites the same files, so the
committed seeds can be regenerated and reviewed.  Run with /usr/bin/python3
(Debian's python3-msgpack):

    /usr/bin/python3 tests/fuzz/make_seeds.py

Seeds:
  event     a valid contract event of every type (and every kind of the types
            that have kinds, and every value of each qualifier), the contract's edge cases (tests/e2e/events.py
            edge_valid_events) and its malformed catalog, except values over
            4 KiB (they would raise libFuzzer's default max_len for the whole
            run; too_large is reached by the fuzzer from the size check)
  config    conf/duewatch.conf, a small test configuration with secrets
  rules     conf/rules.conf, tests/e2e/rules/*.conf, tests/golden/rules-extra.conf
  holidays  conf/holidays-cn.conf and a few small calendars
  alert     outbox entries "<alert id>\\n<payload>" of both format versions
            (include/formats.h): version 0 (no tag) as releases up to
            2026-12-03 wrote them, version 1 ("@1|") as the deadline engine
            (daemon/clock_engine.c) writes them; and clock records of both
            versions (fuzz_alert also reads the payload as a clock record)

Crash inputs found later are added by hand as regression seeds
(crash-<sha1> files); this script leaves files it did not write alone.
"""

import random
import re
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

import events  # noqa: E402  (tests/e2e/events.py)

CORPUS = HERE / "corpus"
TS = 1_741_917_600_000  # 2025-03-14 10:00 +08
UNIT = "500112-XJ01"
MAX_SEED_BYTES = 4096


def slug(text):
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")[:60]


def write(target, name, data):
    directory = CORPUS / target
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(data)


def event_seeds():
    rng = random.Random(20250314)
    for event_type, (_, kinds) in events.EVENT_TYPES.items():
        for kind in kinds or (None,):
            fields = {} if kind is None else {"kind": kind}
            event = events.valid_event(rng, event_type, TS, UNIT, **fields)
            name = f"valid_{slug(event_type)}" + (f"_{kind}" if kind else "")
            write("event", name + ".msgpack", events.pack(event))
    for event_type, (key, values, when_kind, _) in events.QUALIFIERS.items():
        for value in values:
            fields = {key: value} if when_kind is None else {"kind": when_kind, key: value}
            event = events.valid_event(rng, event_type, TS, UNIT, **fields)
            write("event", f"valid_{slug(event_type)}_{key}_{value}.msgpack", events.pack(event))
    for index, (value, what) in enumerate(events.edge_valid_events(rng, TS, UNIT)):
        write("event", f"edge_{index:02d}_{slug(what)}.msgpack", value)
    for index, (value, reason, what) in enumerate(events.malformed_catalog(rng, ts=TS, unit=UNIT)):
        if value is None or len(value) > MAX_SEED_BYTES:
            continue
        write("event", f"bad_{index:03d}_{reason}_{slug(what)}.msgpack", value)


SMALL_CONFIG = """\
# a test daemon's configuration (tests/e2e/duewatch_testlib.py), with secrets
kafka.bootstrap.servers = 127.0.0.1:9092
kafka.group.id = duewatch-test
input_topics = duewatch.events, duewatch.more
dead_letter_topic = duewatch.deadletter
alert_topic = duewatch.alerts
redis_host = 127.0.0.1
redis_port = 6390
redis_user = duewatch
redis_password = "  s3cret with spaces  "
kafka.sasl.password = hunter2
kafka.consumer.session.timeout.ms = 6000
kafka.producer.linger.ms = 5
key_prefix = dw:
clock_mode = event
rules_file = rules.conf
holidays_file = /etc/duewatch/holidays-cn.conf
log_level = debug
http_listen = ""
"""


def config_seeds():
    shutil.copyfile(REPO / "conf" / "duewatch.conf", CORPUS / "config" / "duewatch.conf")
    write("config", "small_with_secrets.conf", SMALL_CONFIG.encode())
    write("config", "bom_and_crlf.conf",
          b"\xef\xbb\xbfkafka.bootstrap.servers = b:9092\r\nredis_port = 6379\r\n")


def rules_seeds():
    shutil.copyfile(REPO / "conf" / "rules.conf", CORPUS / "rules" / "rules.conf")
    for path in sorted((REPO / "tests" / "e2e" / "rules").glob("*.conf")):
        shutil.copyfile(path, CORPUS / "rules" / path.name)
    shutil.copyfile(REPO / "tests" / "golden" / "rules-extra.conf",
                    CORPUS / "rules" / "golden_rules_extra.conf")


HOLIDAY_SEEDS = {
    "one_year.conf": "years 2025..2025\nholiday 2025-01-01\nworkday 2025-01-26\n",
    "range_spaces.conf": "years 2024 .. 2026\nholiday 2025-01-28 .. 2025-02-04  # spring\n"
                         "workday 2025-02-08\n",
    "empty_years.conf": "# nothing but the years\nyears 1970..1970\n",
}


def holidays_seeds():
    shutil.copyfile(REPO / "conf" / "holidays-cn.conf", CORPUS / "holidays" / "holidays-cn.conf")
    for name, text in HOLIDAY_SEEDS.items():
        write("holidays", name, text.encode())


# Format version 0 (no tag):
# rule|level|state|seq|unit|case|ref|subject|started_at|deadline|due_at|cause|
# resolved_by|late|last_day
ALERT_SEEDS = {
    "bail_yellow": "5f1c9e0b2a7d4e31b8c6d0a9e4f7b213\n"
                   "bail_expiry|yellow|firing|0|500112-XJ01|A500112202403001|QZ0a1b2c3d4e|"
                   "S00000000a1b2|1710468000000|1741968000000|1740672000000|"
                   "0f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a||0|20161",
    "detention_orange_hours": "a1b2c3d4e5f60718293a4b5c6d7e8f90\n"
                              "detention_unexecuted|orange|firing|0|500112-XJ02|A5001122025030007|"
                              "JL00000000ff|S0000000000ff|1741917600000|1742004000000|"
                              "1741960800000|ev-77||0|",
    "admin_red_repeat": "00112233445566778899aabbccddeeff\n"
                        "admin_case_limit|red|firing|3|500112-XJ03|A500112202501|"
                        "A500112202501||1736000000000|1738771200000|1739030400000|ev-1||0|20124",
    "bail_resolved_late": "ffeeddccbbaa99887766554433221100\n"
                          "bail_expiry|red|resolved|0|500112-XJ01|A1|R1|S1|1710468000000|"
                          "1741968000000|1742400000000|ev-start|ev-stop|1|20161",
    "incident_no_case": "0123456789abcdef0123456789abcdef\n"
                        "incident_unaccepted|orange|firing|0|500112-XJ04||J0000000001||"
                        "1741917600000|1742004000000|1741982400000|ev-9||0|",
    "unknown_rule_negative": "deadbeefdeadbeefdeadbeefdeadbeef\n"
                             "removed_rule|red|firing|0|u|c|r|s|-1|-9223372036854775808|"
                             "9223372036854775807|x|y|0|-2147483648",
    "quick_bail_seconds": "quick_bail|red|firing|2|500112-XJ01|C1|R1|S1|1741917600000|"
                          "1741917606000|1741917610000|e1||0|",
}


# Version 1: the tag, then the same fields (three of the seeds above).
FORMAT_TAG = "@1|"
TAGGED_SEEDS = ("bail_yellow", "detention_orange_hours", "bail_resolved_late")
# Version 3: the tag, the same fields and `resolves` (ids joined by ',').
V3_SEEDS = {
    "bail_resolved_late_v3": ("bail_resolved_late", "0123456789abcdef0123456789abcdef,"
                              "fedcba9876543210fedcba9876543210"),
    "bail_yellow_v3": ("bail_yellow", ""),
}

# Clock records, <prefix>clock:<rule>:<key> (include/formats.h):
# unit|case|subject|cause|started_at|last_day|base_deadline|paused_total|
# paused_since|fired|seq|next_due|partition
CLOCK_RECORD_SEEDS = {
    "clock_v0_bail": "500112-XJ01|A1|P9|e1|1796004000000|20786|1827504000000|0||-1|0|"
                     "1826208000000|events:0",
    "clock_v1_hours_paused": "@1|500112-XJ02||||1700000000000||1700086400000|3600000|"
                             "1700003600000|2|5||duewatch.events:3",
    # version 4: numbers in base 36, those at their defaults empty
    "clock_v4_bail": "@4|500112-XJ01|A1|P9|e1|mx2merk0|g1e|nbjkp340|||||nay53b40|events:0||",
    # version 5: whole minutes as base 36 and '.', a UUID cause as '~' and base64url
    "clock_v5_bail_uuid": "@5|500112-XJ01|A1|P9|~ChssPRI0SryhIwEjRWeJqw|htkrc.|g1e|i4tuo.|||||"
                          "i4d6o.|events:0||",
}


def alert_seeds():
    for name, text in ALERT_SEEDS.items():
        write("alert", name + ".txt", text.encode())
    for name in TAGGED_SEEDS:
        alert_id, _, payload = ALERT_SEEDS[name].partition("\n")
        write("alert", name + "_v1.txt", f"{alert_id}\n{FORMAT_TAG}{payload}".encode())
    for name, (seed, resolves) in V3_SEEDS.items():
        alert_id, _, payload = ALERT_SEEDS[seed].partition("\n")
        write("alert", name + ".txt", f"{alert_id}\n@3|{payload}|{resolves}".encode())
    # versions 4 and 5 changed only the clock record: their payload is version 3's
    alert_id, _, payload = ALERT_SEEDS["bail_yellow"].partition("\n")
    write("alert", "bail_yellow_v4.txt", f"{alert_id}\n@4|{payload}|".encode())
    write("alert", "bail_yellow_v5.txt", f"{alert_id}\n@5|{payload}|".encode())
    for name, text in CLOCK_RECORD_SEEDS.items():
        write("alert", name + ".txt", f"0123456789abcdef0123456789abcdef\n{text}".encode())


def main():
    for target in ("event", "config", "rules", "holidays", "alert"):
        (CORPUS / target).mkdir(parents=True, exist_ok=True)
    event_seeds()
    config_seeds()
    rules_seeds()
    holidays_seeds()
    alert_seeds()
    for target in sorted(p.name for p in CORPUS.iterdir()):
        print(f"{target}: {len(list((CORPUS / target).iterdir()))} seeds")


if __name__ == "__main__":
    main()
