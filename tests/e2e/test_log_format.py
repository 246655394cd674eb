"""duewatchd's log lines on stderr: each starts with its own time (ISO 8601,
UTC, milliseconds) before the journald priority prefix when stderr is not the
journal, and with the bare prefix when JOURNAL_STREAM names stderr's device
and inode (journald stamps each line itself)."""

import datetime
import os
import re
import time

STAMP = r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z "
STAMPED = re.compile(rf"^{STAMP}<[3-7]>\S")
BARE = re.compile(r"^<[3-7]>\S")
READY = r"kafka: consuming duewatch\.events"


def run_lines(daemon):
    """This run's lines, without the test library's start marker."""
    return [line for line in daemon.log().splitlines()
            if line and not line.startswith("=== duewatch_testlib:")]


def test_lines_are_stamped_unless_stderr_is_the_journal(daemon_factory):
    before = time.time()
    daemon = daemon_factory(wait_for=READY)
    assert daemon.stop() == 0
    after = time.time()
    lines = run_lines(daemon)
    assert len(lines) >= 4, lines
    assert [line for line in lines if not STAMPED.match(line)] == []
    for line in lines:
        moment = datetime.datetime.strptime(STAMPED.match(line).group(1) + "+0000",
                                            "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
        assert before - 1 <= moment <= after + 1, line

    # JOURNAL_STREAM naming another stream: stderr is not the journal.
    log = os.stat(daemon.log_path)
    daemon.extra_env["JOURNAL_STREAM"] = f"{log.st_dev}:{log.st_ino + 1}"
    daemon.start(wait_for=READY)
    assert daemon.stop() == 0
    assert [line for line in run_lines(daemon) if not STAMPED.match(line)] == []

    # JOURNAL_STREAM naming stderr (what systemd sets): journald stamps lines.
    daemon.extra_env["JOURNAL_STREAM"] = f"{log.st_dev}:{log.st_ino}"
    daemon.start(wait_for=READY)
    assert daemon.stop() == 0
    lines = run_lines(daemon)
    assert len(lines) >= 4, lines
    assert [line for line in lines if not BARE.match(line)] == []
    print(f"log format: stamped and bare runs, {len(lines)} lines in the journal run")
