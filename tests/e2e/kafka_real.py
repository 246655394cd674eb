"""A real Apache Kafka broker for the end-to-end tests (env DUEWATCH_KAFKA=real).

  RealBroker  one single-node KRaft broker process, run by
              scripts/kafka-broker.sh in a directory of its own: start(),
              stop() (SIGTERM), kill() (SIGKILL), outage(seconds), log().
  RealKafka   MockCluster's interface on a RealBroker, so the fixtures and
              tests written for the mock run unchanged: bootstrap,
              create_topic(name, partitions), start(), stop(), running, log(),
              plus stop_broker()/start_broker()/kill_broker()/outage() for
              fault tests.  The mock's fault commands (command, push_errors,
              clear_errors, broker_down, broker_up, set_rtt) skip the test.

One broker serves the whole pytest session (conftest.py starts it when
DUEWATCH_KAFKA=real and makes mock_cluster_factory build RealKafka objects).
Isolation between tests: a RealKafka creates its topics (the standard names
the tests hard-code) when it starts and deletes them, waiting until they are
gone, when it stops at the test's teardown; consumer groups are unique per
test already.  A second RealKafka alive in the same test that wants a topic
name the first one holds gets a private broker of its own (started and
stopped with it).

Environment:
  DUEWATCH_KAFKA=real   use the real broker (conftest.py)
  DUEWATCH_KAFKA_DIR    directory for the session broker (default: a temp dir)
  and those of scripts/kafka-broker.sh (DUEWATCH_KAFKA_VERSION, DUEWATCH_KAFKA_HOME, ...)
"""

import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

import duewatch_testlib as lib

SCRIPT = lib.REPO_ROOT / "scripts" / "kafka-broker.sh"


def enabled():
    return os.environ.get("DUEWATCH_KAFKA", "mock") == "real"


def _script(*args, timeout=300):
    env = dict(os.environ)
    # The broker dies with the test runner even when it is SIGKILLed.
    env["DUEWATCH_KAFKA_WATCH_PID"] = str(os.getpid())
    result = subprocess.run([str(SCRIPT), *[str(a) for a in args]], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"kafka-broker.sh {' '.join(map(str, args))} failed "
                           f"({result.returncode}):\n{result.stdout}{result.stderr}")
    return result.stdout


def fetch():
    """Makes sure Kafka's jars are in the cache (mvn, only when missing)."""
    return _script("fetch", timeout=900)


class RealBroker:
    """A single-node KRaft broker in `directory` (scripts/kafka-broker.sh)."""

    def __init__(self, directory):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.bootstrap = None
        self.start_seconds = None
        self._outage_thread = None
        self._outage_error = None

    def start(self, timeout=180):
        began = time.monotonic()
        out = _script("start", self.directory, timeout=timeout)
        lines = [line for line in out.splitlines() if line.startswith("BOOTSTRAP=")]
        if not lines:
            raise RuntimeError(f"kafka-broker.sh start printed no BOOTSTRAP line:\n{out}")
        bootstrap = lines[-1][len("BOOTSTRAP="):]
        if self.bootstrap is not None and bootstrap != self.bootstrap:
            raise RuntimeError(f"broker restarted on {bootstrap}, was {self.bootstrap}")
        self.bootstrap = bootstrap
        self.start_seconds = time.monotonic() - began
        return self

    def stop(self, timeout=60):
        """SIGTERM, SIGKILL after DUEWATCH_KAFKA_STOP_TIMEOUT (30 s)."""
        _script("stop", self.directory, timeout=timeout)

    def kill(self):
        _script("kill", self.directory, timeout=30)

    @property
    def running(self):
        try:
            return _script("status", self.directory, timeout=30).startswith("running")
        except RuntimeError:
            return False

    def outage(self, seconds, background=False, kill=False):
        """Stops the broker (SIGTERM, or SIGKILL with kill=True) for `seconds`,
        then starts it again on the same ports and data.  With background=True
        returns at once; wait_outage_over() joins."""
        if kill:
            self.kill()
        else:
            self.stop()

        def restart_later():
            try:
                time.sleep(seconds)
                self.start()
            except Exception as error:  # reported by wait_outage_over()
                self._outage_error = error
        if not background:
            restart_later()
            if self._outage_error is not None:
                raise self._outage_error
            return None
        self._outage_error = None
        self._outage_thread = threading.Thread(target=restart_later, daemon=True,
                                               name="kafka-outage")
        self._outage_thread.start()
        return self._outage_thread

    def wait_outage_over(self, timeout=240):
        if self._outage_thread is not None:
            self._outage_thread.join(timeout)
            if self._outage_thread.is_alive():
                raise lib.WaitTimeout("Kafka broker restart after the outage did not finish")
            self._outage_thread = None
        if self._outage_error is not None:
            error, self._outage_error = self._outage_error, None
            raise error

    def log(self):
        path = self.directory / "broker.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def log_offset(self):
        path = self.directory / "broker.log"
        return path.stat().st_size if path.exists() else 0

    # -- topics --

    def _admin(self):
        from confluent_kafka.admin import AdminClient
        return AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 3})

    def topics(self, timeout=10):
        """{name: partition count} of the non-internal topics."""
        metadata = self._admin().list_topics(timeout=timeout)
        return {name: len(topic.partitions) for name, topic in metadata.topics.items()
                if not name.startswith("__") and topic.error is None}

    def create_topics(self, topics, timeout=60):
        """Creates {name: partitions} (replication 1) and waits until the
        metadata shows every partition with a leader."""
        from confluent_kafka import KafkaError, KafkaException
        from confluent_kafka.admin import NewTopic
        admin = self._admin()
        deadline = time.monotonic() + timeout
        remaining = dict(topics)
        while remaining:
            futures = admin.create_topics(
                [NewTopic(name, num_partitions=partitions, replication_factor=1)
                 for name, partitions in remaining.items()], operation_timeout=30)
            for name, future in futures.items():
                try:
                    future.result()
                    del remaining[name]
                except KafkaException as error:
                    code = error.args[0].code()
                    if code != KafkaError.TOPIC_ALREADY_EXISTS:
                        raise
                    # The deletion of an earlier topic of that name is
                    # still settling: try again.
                    if time.monotonic() > deadline:
                        raise lib.WaitTimeout(f"topic {name} still exists after {timeout}s")
            if remaining:
                time.sleep(0.2)

        def ready():
            metadata = self._admin().list_topics(timeout=5)
            for name, partitions in topics.items():
                topic = metadata.topics.get(name)
                if topic is None or topic.error is not None or len(topic.partitions) != partitions:
                    return False
                if any(p.leader < 0 or p.error is not None for p in topic.partitions.values()):
                    return False
            return True
        lib.wait_until(ready, max(1.0, deadline - time.monotonic()), interval=0.1,
                       message=f"topics {sorted(topics)} have leaders")

    def delete_topics(self, names, timeout=60):
        """Deletes the topics and waits until the metadata no longer lists them."""
        from confluent_kafka import KafkaError, KafkaException
        names = [name for name in names if name in self.topics()]
        if not names:
            return
        admin = self._admin()  # must outlive the futures
        futures = admin.delete_topics(names, operation_timeout=30)
        for name, future in futures.items():
            try:
                future.result()
            except KafkaException as error:
                if error.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                    raise
        lib.wait_until(lambda: not set(names) & set(self.topics()), timeout, interval=0.1,
                       message=f"topics {names} deleted")


class RealKafka:
    """MockCluster's interface on a real broker (see the module docstring)."""

    PRODUCE, FETCH, LIST_OFFSETS, METADATA = 0, 1, 2, 3
    OFFSET_COMMIT, OFFSET_FETCH, FIND_COORDINATOR = 8, 9, 10
    JOIN_GROUP, HEARTBEAT, LEAVE_GROUP, SYNC_GROUP = 11, 12, 13, 14

    # Topic names held by live RealKafka objects on the session broker.
    _held = set()
    _held_lock = threading.Lock()

    def __init__(self, directory, topics=None, brokers=1, broker=None):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.topics = dict(lib.DEFAULT_TOPICS if topics is None else topics)
        self.brokers = brokers
        self.session_broker = broker
        self.broker = None
        self.private = False
        self.process = None  # no process of its own (MockCluster has one)
        self.bootstrap = None
        self._log_offset = 0
        self._started = False

    def start(self, timeout=180):
        if self.brokers != 1:
            pytest.skip(f"the real-broker suite runs one broker ({self.brokers} asked)")
        with RealKafka._held_lock:
            clash = set(self.topics) & RealKafka._held
            if self.session_broker is not None and not clash:
                RealKafka._held |= set(self.topics)
                self.broker = self.session_broker
            else:
                self.private = True
        if self.private:
            # Same topic names alive in this test already: a broker of our own.
            private_dir = tempfile.mkdtemp(prefix="dw-kafka-", dir=self.directory)
            self.broker = RealBroker(Path(private_dir))
            self.broker.start(timeout)
        elif not self.broker.running:
            self.broker.start(timeout)  # a fault test left it stopped
        self._started = True
        self.bootstrap = self.broker.bootstrap
        self._log_offset = self.broker.log_offset()
        # Leftovers (a teardown that failed) would carry old messages.
        self.broker.delete_topics(list(self.topics))
        self.broker.create_topics(self.topics)
        return self

    def create_topic(self, name, partitions):
        if not self.private:
            with RealKafka._held_lock:
                RealKafka._held.add(name)
        self.broker.create_topics({name: partitions})
        self.topics[name] = partitions

    def stop(self, timeout=60):
        """Teardown: deletes this cluster's topics (the session broker stays
        up; a private broker stops).  Returns 0 like a clean MockCluster exit."""
        if not self._started:
            return None
        self._started = False
        try:
            self.broker.wait_outage_over()
            if self.private:
                self.broker.stop()
                shutil.rmtree(self.broker.directory, ignore_errors=True)
            else:
                if not self.broker.running:
                    self.broker.start()
                self.broker.delete_topics(list(self.topics), timeout=max(timeout, 60))
        finally:
            if not self.private:
                with RealKafka._held_lock:
                    RealKafka._held -= set(self.topics)
        return 0

    @property
    def running(self):
        return self._started and self.broker.running

    def log(self):
        text = self.broker.log() if self.broker is not None else ""
        return text[self._log_offset:] if not self.private else text

    # -- faults a real broker can have --

    def stop_broker(self):
        self.broker.stop()

    def kill_broker(self):
        self.broker.kill()

    def start_broker(self, timeout=180):
        self.broker.start(timeout)

    def outage(self, seconds, background=False, kill=False):
        return self.broker.outage(seconds, background=background, kill=kill)

    def wait_outage_over(self, timeout=240):
        self.broker.wait_outage_over(timeout)

    # -- the mock's fault injection: not on a real broker --

    def _mock_only(self, what):
        pytest.skip(f"{what} needs the mock cluster (DUEWATCH_KAFKA=real runs a real broker)")

    def command(self, line, timeout=15, check=True):
        self._mock_only(f"mock_cluster command {line.split()[0] if line else ''!r}")

    def push_errors(self, api_key, errors):
        self._mock_only("injected request errors")

    def clear_errors(self, api_key):
        self._mock_only("injected request errors")

    def broker_down(self, broker_id=-1):
        self._mock_only("broker_down")

    def broker_up(self, broker_id=-1):
        self._mock_only("broker_up")

    def set_rtt(self, broker_id, milliseconds):
        self._mock_only("set_rtt")


def cluster_class(session_broker):
    """A drop-in for lib.MockCluster whose objects use session_broker."""
    def make(directory, topics=None, brokers=1, binary=None):
        return RealKafka(directory, topics=topics, brokers=brokers, broker=session_broker)
    return make


def session_broker(directory=None):
    """Fetches Kafka if needed and starts the session's broker."""
    directory = directory or os.environ.get("DUEWATCH_KAFKA_DIR") or tempfile.mkdtemp(
        prefix="dw-kafka-session-")
    began = time.monotonic()
    fetch()
    fetched = time.monotonic() - began
    broker = RealBroker(directory).start()
    print(f"\nreal Kafka broker: BOOTSTRAP={broker.bootstrap} dir={directory} "
          f"fetch_check={fetched:.1f}s start={broker.start_seconds:.1f}s")
    return broker
