"""Process fixtures for duewatch's end-to-end tests.

Starts and controls the real pieces a test needs, each in a process of its own
so a test can kill one and watch the others cope:

  RedisServer   a private redis-server on a free loopback port
  RedisSentinel a private redis-sentinel watching a RedisServer
  MockCluster   build/tests/mock_cluster (librdkafka's mock Kafka cluster)
  Daemon        build/duewatchd with a config file written from a dict

plus Kafka helpers built on confluent_kafka (produce, read a whole topic back,
committed offsets, high watermarks).

Every process started here is registered in one place and killed at teardown
(conftest.py) or at interpreter exit, even when a test fails, and every wait
has a hard timeout.  Run with /usr/bin/python3 so Debian's python3-redis,
python3-msgpack and python3-confluent-kafka are the ones imported.

Environment knobs:
  DUEWATCH_BUILD          build directory holding duewatchd and tests/ (default "build")
  DUEWATCH_WRAPPER        command prefix for the daemon, e.g. "valgrind --error-exitcode=99"
  DUEWATCH_TIMEOUT_SCALE  multiplies daemon wait timeouts (default 1, or 10 with a wrapper)
  DUEWATCH_REDIS_SERVER   redis-server binary (default: the one on PATH)
  DUEWATCH_REDIS_MODULE   "0": every redis-server runs without duewatch's module
                          (the daemon then writes through apply_effects.lua);
                          default: loaded from the build directory
"""

import base64
import contextlib
import ctypes
import itertools
import os
import re
import select
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------
# Paths, timeouts, waiting


def build_dir():
    """The build directory (env DUEWATCH_BUILD, relative to the repo root)."""
    return REPO_ROOT / os.environ.get("DUEWATCH_BUILD", "build")


def redis_module_path():
    """duewatch's Redis module (redis_module/) as `make` built it."""
    path = build_dir() / "duewatch_redis.so"
    if not path.exists():
        raise FileNotFoundError(f"{path} not built (run make, or set DUEWATCH_BUILD)")
    return path


def stored_format(list_name):
    """The version tag and field names of a stored format, as include/formats.h
    defines them (FORMAT_TAG, and the X-list `list_name`, e.g.
    CLOCK_RECORD_FIELDS): the tests read records by name, never by a
    position written twice."""
    header = (REPO_ROOT / "include" / "formats.h").read_text()
    tag = re.search(r'#define FORMAT_TAG "([^"]*)"', header).group(1)
    body = re.search(r"#define " + list_name + r"\(X\)(.*?)\n\n", header, re.S).group(1)
    return tag, [name.lower() for name in re.findall(r"X\((\w+)\)", body)]


def clock_record_numbers():
    """The clock record's numbers as include/formats.h lists them
    (CLOCK_RECORD_NUMBERS): {name: what version 4 leaves empty}, an int (the
    default), "optional" (absent) or "required" (never empty)."""
    header = (REPO_ROOT / "include" / "formats.h").read_text()
    body = re.search(r"#define CLOCK_RECORD_NUMBERS\(X\)(.*?)\n\n", header, re.S).group(1)
    markers = {"CLOCK_NUMBER_REQUIRED": "required", "CLOCK_NUMBER_OPTIONAL": "optional"}
    return {name.lower(): markers[empty] if empty in markers else int(empty)
            for name, empty in re.findall(r"X\((\w+),\s*([-\w]+)\)", body)}


def base36(number):
    """`number` in base 36 as version 4's clock record writes it."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text, rest = "", abs(number)
    while True:
        text, rest = digits[rest % 36] + text, rest // 36
        if rest == 0:
            return ("-" if number < 0 else "") + text


def record_number(number):
    """A clock record's number as version 5 writes it: base 36, a whole number
    of minutes as its sixty-thousandths and '.'."""
    return base36(number // 60000) + "." if number and number % 60000 == 0 else base36(number)


UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")


def record_cause(cause):
    """A clock record's cause as version 5 writes it: a canonical UUID as '~'
    and its bytes in base64url without padding, anything else as it is."""
    if not UUID_TEXT.match(cause):
        return cause
    return "~" + base64.urlsafe_b64encode(uuid.UUID(cause).bytes).rstrip(b"=").decode()


def decode_stored(value, list_name="CLOCK_RECORD_FIELDS"):
    """A stored value (clock record, outbox payload) of the current format as
    a dict by field name.  A clock record's numbers read as decimal text (a
    default left empty filled in, an absent one ""), as versions up to 3
    wrote them, and its cause as the event id."""
    tag, names = stored_format(list_name)
    assert value.startswith(tag), f"not in the current format {tag!r}: {value!r}"
    fields = value[len(tag):].split("|")
    assert len(fields) == len(names), (fields, names)
    decoded = dict(zip(names, fields))
    if list_name == "CLOCK_RECORD_FIELDS":
        for name, empty in clock_record_numbers().items():
            text = decoded[name]
            assert text == text.lower(), (name, value)
            assert text != "" or empty != "required", (name, value)
            number = int(text[:-1], 36) * 60000 if text.endswith(".") else \
                int(text, 36) if text else None
            decoded[name] = str(number) if number is not None else \
                "" if empty == "optional" else str(empty)
        cause = decoded["cause"]
        if cause.startswith("~"):
            decoded["cause"] = str(uuid.UUID(bytes=base64.urlsafe_b64decode(cause[1:] + "==")))
    return decoded


def encode_clock_record(values):
    """A clock record in the current format from its fields by name (numbers
    as ints, None for an absent optional one), as duewatchd writes it."""
    tag, names = stored_format("CLOCK_RECORD_FIELDS")
    assert sorted(values) == sorted(names), (sorted(values), names)
    numbers = clock_record_numbers()
    texts = []
    for name in names:
        value = values[name]
        if name == "cause":
            texts.append(record_cause(str(value)))
        elif name not in numbers:
            texts.append(str(value))
        elif value is None or value == "":
            assert numbers[name] == "optional", name
            texts.append("")
        else:
            texts.append("" if value == numbers[name] else record_number(int(value)))
    return tag + "|".join(texts)


# --------------------------------------------------------------------------
# The message schemas (schemas/*.schema.json, JSON Schema 2020-12)

# The alert topic every test configures (daemon_settings' alert_topic):
# consume_all validates each message it reads there against the alert schema.
ALERT_TOPIC = "duewatch.alerts"
_validators = {}


def schema_validator(name):
    """A jsonschema validator of schemas/<name>.schema.json ('alert', 'event').
    `integer` is a msgpack integer, as the schemas say: a float with no
    fraction (1.0), which JSON Schema's integer admits, is not one."""
    if name not in _validators:
        import json
        import jsonschema
        schema = json.loads((REPO_ROOT / "schemas" / f"{name}.schema.json").read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        base = jsonschema.Draft202012Validator
        checker = base.TYPE_CHECKER.redefine(
            "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool))
        _validators[name] = jsonschema.validators.extend(base, type_checker=checker)(schema)
    return _validators[name]


def schema_errors(name, document):
    """The messages of every way `document` breaks schemas/<name>.schema.json."""
    return [f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
            for error in schema_validator(name).iter_errors(document)]


def validate_alert(value):
    """Decodes one alert-topic message value (msgpack) and raises
    AssertionError unless it is what schemas/alert.schema.json describes.
    Returns the decoded map."""
    import msgpack
    alert = msgpack.unpackb(value)
    errors = schema_errors("alert", alert)
    if errors:
        raise AssertionError(f"alert breaks schemas/alert.schema.json: {errors}: {alert!r}")
    return alert


def daemon_binary():
    return build_dir() / "duewatchd"


def mock_cluster_binary():
    return build_dir() / "tests" / "mock_cluster"


def timeout_scale():
    """How much slower the daemon runs than plain: valgrind is ~10x."""
    configured = os.environ.get("DUEWATCH_TIMEOUT_SCALE")
    if configured:
        return float(configured)
    return 10.0 if os.environ.get("DUEWATCH_WRAPPER") else 1.0


class WaitTimeout(AssertionError):
    """A wait ran out of time.  An AssertionError so pytest reports it as a
    test failure with the message, not as an internal error."""


def wait_until(predicate, timeout, interval=0.05, message="condition"):
    """Calls predicate until it returns something truthy and returns that, or
    raises WaitTimeout after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:.1f}s waiting for {message}")
        time.sleep(interval)


_ports_handed_out = set()
_ports_lock = threading.Lock()


def print_ledger(suite, name, **values):
    """Print, and return, one "<suite>[<name>]: key=value ..." line: the
    figures a fault or failure-mode test checks (events sent and applied,
    alerts expected, sent and duplicated...), kept in the test log."""
    line = f"{suite}[{name}]: " + " ".join(f"{key}={value}" for key, value in values.items())
    print("\n" + line)
    return line


def free_port():
    """A loopback TCP port nobody listens on now and that this process has not
    handed out before (so two fixtures of one test never get the same one)."""
    with _ports_lock:
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            if port not in _ports_handed_out:
                _ports_handed_out.add(port)
                return port
    raise RuntimeError("no free loopback port found")


# --------------------------------------------------------------------------
# Process registry: everything started here dies at teardown.

_live_processes = []
_live_lock = threading.Lock()
_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    # Runs in the child between fork and exec: if the test runner is killed
    # (e.g. by `timeout`), the kernel kills this child too.  Only used for
    # processes started from the main thread, because the signal fires when
    # the *thread* that forked exits.
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


def spawn(argv, **popen_kwargs):
    """subprocess.Popen in a new session (so a kill reaches a wrapper's
    children too), registered for kill_all_processes()."""
    if threading.current_thread() is threading.main_thread():
        popen_kwargs.setdefault("preexec_fn", _die_with_parent)
    process = subprocess.Popen([str(a) for a in argv], start_new_session=True, **popen_kwargs)
    with _live_lock:
        _live_processes.append(process)
    return process


def kill_process(process):
    """SIGKILL to the process group and reap it; safe on an already dead one."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        except PermissionError:
            process.kill()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    with _live_lock:
        if process in _live_processes:
            _live_processes.remove(process)


def terminate_process(process, timeout):
    """SIGTERM, wait up to `timeout` s, then SIGKILL.  Returns (exit code,
    whether it exited by itself within the timeout)."""
    if process.poll() is None:
        try:
            process.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_process(process)
            return process.returncode, False
    kill_process(process)  # reaps and unregisters; also kills leftover group members
    return process.returncode, True


def kill_all_processes():
    """Kills every process spawned here that is still alive."""
    with _live_lock:
        remaining = list(_live_processes)
    for process in remaining:
        kill_process(process)


# --------------------------------------------------------------------------
# Redis


class RedisServer:
    """A private redis-server: `--port P --bind 127.0.0.1 --save "" --appendonly
    yes|no --dir DIR --daemonize no`.  Data lives in `directory`, so restart()
    after stop() or kill() finds what the persistence mode kept."""

    def __init__(self, directory, port=None, appendonly=False, password=None,
                 extra_args=(), name="redis", module=None):
        """module: load duewatch's Redis module (True), or not (False); None
        follows DUEWATCH_REDIS_MODULE (loaded unless "0")."""
        if module is None:
            module = os.environ.get("DUEWATCH_REDIS_MODULE", "1") != "0"
        self.module = module
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._port_chosen_by_caller = port is not None
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.appendonly = appendonly
        self.password = password
        self.extra_args = list(extra_args)
        self.log_path = self.directory / f"{name}.log"
        self.process = None
        self._outage_thread = None

    # -- lifecycle --

    def command_line(self):
        binary = os.environ.get("DUEWATCH_REDIS_SERVER") or shutil.which("redis-server") \
            or "/usr/bin/redis-server"
        argv = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "yes" if self.appendonly else "no",
                "--dir", str(self.directory), "--daemonize", "no",
                "--logfile", "", "--protected-mode", "yes"]
        if self.password is not None:
            argv += ["--requirepass", self.password]
        if self.module:
            argv += ["--loadmodule", str(redis_module_path())]
        return argv + self.extra_args

    def start(self, timeout=15):
        if self.running:
            raise RuntimeError("redis-server already running")
        for attempt in range(5):
            with open(self.log_path, "ab") as log:
                self.process = spawn(self.command_line(), stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=subprocess.STDOUT)
            try:
                self.wait_ready(timeout)
                return self
            except WaitTimeout:
                exited = self.process.poll() is not None
                kill_process(self.process)
                log_text = self.log_path.read_text(errors="replace")
                # Another process may have taken the port between free_port()
                # and bind(); a new port is fine unless the test pinned it.
                if exited and "Address already in use" in log_text[-2000:] \
                        and not self._port_chosen_by_caller and attempt < 4:
                    self.port = free_port()
                    continue
                raise WaitTimeout(f"redis-server on port {self.port} did not answer PING "
                                  f"within {timeout}s; log tail:\n{log_text[-2000:]}")
        raise AssertionError("unreachable")

    def wait_ready(self, timeout=15):
        def ready():
            if self.process.poll() is not None:
                raise WaitTimeout(f"redis-server exited with {self.process.returncode}")
            return self.ping()
        wait_until(ready, timeout, message=f"redis-server PING on port {self.port}")

    def stop(self, timeout=15):
        """SIGTERM (redis flushes the AOF when appendonly is on); returns the exit code."""
        if self.process is None:
            return None
        code, _ = terminate_process(self.process, timeout)
        return code

    def kill(self):
        """SIGKILL: no shutdown work, like a crash or an OOM kill."""
        if self.process is not None:
            kill_process(self.process)

    def restart(self, timeout=15):
        """Graceful stop, then start again on the same port and directory."""
        self.stop()
        return self.start(timeout)

    def stop_for(self, seconds, background=False, kill=False):
        """Makes Redis unreachable for `seconds` (SIGTERM, or SIGKILL when
        kill=True), then starts it again.  With background=True returns at once
        and the restart happens in a thread; call wait_outage_over() to join."""
        if kill:
            self.kill()
        else:
            self.stop()
        if not background:
            time.sleep(seconds)
            self.start()
            return None

        def restart_later():
            time.sleep(seconds)
            self.start()
        self._outage_thread = threading.Thread(target=restart_later, daemon=True,
                                               name=f"redis-outage-{self.port}")
        self._outage_thread.start()
        return self._outage_thread

    def wait_outage_over(self, timeout=60):
        if self._outage_thread is not None:
            self._outage_thread.join(timeout)
            if self._outage_thread.is_alive():
                raise WaitTimeout("redis restart after outage did not finish")
            self._outage_thread = None

    def freeze(self):
        """SIGSTOP: connections stay open but nothing answers (a hung Redis)."""
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self):
        os.kill(self.process.pid, signal.SIGCONT)

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None

    # -- clients --

    def client(self, decode_responses=True, username=None, password=None, timeout=5):
        """A python3-redis client (strings decoded as UTF-8 unless told not to)."""
        import redis
        return redis.Redis(host=self.host, port=self.port, username=username,
                           password=password if password is not None else self.password,
                           decode_responses=decode_responses,
                           socket_timeout=timeout, socket_connect_timeout=timeout)

    def ping(self):
        import redis
        try:
            return bool(self.client(timeout=1).ping())
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            return False
        except redis.exceptions.ResponseError as error:
            # Loading the AOF/RDB answers -LOADING: alive but not ready yet.
            if "LOADING" in str(error):
                return False
            raise

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class RedisSentinel:
    """A private redis-sentinel (Debian's redis-sentinel package) on a free
    loopback port, watching `master` (a RedisServer) as `name` with quorum 2,
    down-after `down_after_ms` and failover-timeout `failover_timeout_ms`.
    With `password`, the Sentinel requires AUTH and uses the same password
    towards the other Sentinels; with `username` too, the ACL users are the
    caller's `extra_lines` (`user ...`, `sentinel sentinel-user ...`) and this
    helper's client logs in as that user."""

    def __init__(self, directory, master, name="duewatch", password=None, down_after_ms=1000,
                 failover_timeout_ms=3000, username=None, extra_lines=()):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.host = "127.0.0.1"
        self.name = name
        self.password = password
        self.username = username
        self.log_path = self.directory / "sentinel.log"
        lines = [f"port {self.port}", "bind 127.0.0.1", "daemonize no", 'logfile ""',
                 f"dir {self.directory}",
                 f"sentinel monitor {name} {master.host} {master.port} 2",
                 f"sentinel down-after-milliseconds {name} {down_after_ms}",
                 f"sentinel failover-timeout {name} {failover_timeout_ms}",
                 f"sentinel parallel-syncs {name} 1"]
        if master.password is not None:
            lines.append(f"sentinel auth-pass {name} {master.password}")
        if password is not None and username is None:
            lines += [f"requirepass {password}", f"sentinel sentinel-pass {password}"]
        lines += list(extra_lines)
        # Sentinel rewrites its config file: it must be writable and its own.
        self.config_path = self.directory / "sentinel.conf"
        self.config_path.write_text("\n".join(lines) + "\n")
        self.process = None

    def start(self, timeout=15):
        binary = shutil.which("redis-sentinel") or "/usr/bin/redis-sentinel"
        with open(self.log_path, "ab") as log:
            self.process = spawn([binary, self.config_path], stdin=subprocess.DEVNULL,
                                 stdout=log, stderr=subprocess.STDOUT)

        def ready():
            if self.process.poll() is not None:
                raise WaitTimeout(f"redis-sentinel exited with {self.process.returncode}:\n"
                                  f"{self.log()[-2000:]}")
            try:
                return bool(self.client(timeout=1).ping())
            except Exception:  # noqa: BLE001 - not listening yet
                return False
        wait_until(ready, timeout, message=f"redis-sentinel PING on port {self.port}")
        return self

    def client(self, timeout=5):
        import redis
        return redis.Redis(host=self.host, port=self.port, username=self.username,
                           password=self.password, decode_responses=True, socket_timeout=timeout,
                           socket_connect_timeout=timeout)

    def master_address(self):
        """(host, port) this Sentinel names as the master now."""
        host, port = self.client().execute_command("SENTINEL", "get-master-addr-by-name",
                                                   self.name)
        return host, int(port)

    def knows(self, replicas, sentinels):
        """True once it has found `replicas` replicas and `sentinels` other
        Sentinels of the master (the quorum a failover needs)."""
        client = self.client()
        found_replicas = client.execute_command("SENTINEL", "replicas", self.name)
        found_sentinels = client.execute_command("SENTINEL", "sentinels", self.name)
        return len(found_replicas) >= replicas and len(found_sentinels) >= sentinels

    def stop(self, timeout=5):
        if self.process is not None:
            terminate_process(self.process, timeout)

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


# --------------------------------------------------------------------------
# Mock Kafka cluster

DEFAULT_TOPICS = {"duewatch.events": 8, "duewatch.deadletter": 1, "duewatch.alerts": 4}


class MockClusterError(AssertionError):
    pass


class MockCluster:
    """build/tests/mock_cluster in its own process.  `bootstrap` is its
    bootstrap.servers string; command() sends one stdin command and returns
    the reply (raising MockClusterError on "ERR ...")."""

    # Kafka protocol API keys for errors().
    PRODUCE, FETCH, LIST_OFFSETS, METADATA = 0, 1, 2, 3
    OFFSET_COMMIT, OFFSET_FETCH, FIND_COORDINATOR = 8, 9, 10
    JOIN_GROUP, HEARTBEAT, LEAVE_GROUP, SYNC_GROUP = 11, 12, 13, 14

    def __init__(self, directory, topics=None, brokers=1, binary=None):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.topics = dict(DEFAULT_TOPICS if topics is None else topics)
        self.brokers = brokers
        self.binary = Path(binary) if binary else mock_cluster_binary()
        self.log_path = self.directory / "mock_cluster.log"
        self.process = None
        self.bootstrap = None
        self._stdout_buffer = b""
        self._lock = threading.Lock()

    def start(self, timeout=15):
        if not self.binary.exists():
            raise FileNotFoundError(f"{self.binary} not built (run make, or set DUEWATCH_BUILD)")
        argv = [self.binary, "--brokers", str(self.brokers)]
        for name, partitions in self.topics.items():
            argv += ["--topic", f"{name}:{partitions}"]
        with open(self.log_path, "ab") as log:
            # stdin stays a pipe for commands; its EOF (we died) stops the cluster.
            self.process = spawn(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=log)
        line = self._read_line(timeout)
        if not line.startswith("BOOTSTRAP="):
            raise MockClusterError(f"mock_cluster said {line!r}, expected BOOTSTRAP=...")
        self.bootstrap = line[len("BOOTSTRAP="):]
        return self

    def _read_line(self, timeout):
        deadline = time.monotonic() + timeout
        fd = self.process.stdout.fileno()
        while b"\n" not in self._stdout_buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout(f"mock_cluster gave no line within {timeout}s; "
                                  f"stderr:\n{self.log()[-2000:]}")
            readable, _, _ = select.select([fd], [], [], remaining)
            if readable:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise MockClusterError(f"mock_cluster exited ({self.process.poll()}); "
                                           f"stderr:\n{self.log()[-2000:]}")
                self._stdout_buffer += chunk
        line, _, self._stdout_buffer = self._stdout_buffer.partition(b"\n")
        return line.decode(errors="replace")

    def command(self, line, timeout=15, check=True):
        """Sends one command line, returns the reply line ("OK..." or "ERR ...")."""
        with self._lock:
            if not self.running:
                raise MockClusterError("mock_cluster is not running")
            self.process.stdin.write(line.encode() + b"\n")
            self.process.stdin.flush()
            reply = self._read_line(timeout)
        if check and not reply.startswith("OK"):
            raise MockClusterError(f"mock_cluster: {line!r} -> {reply!r}")
        return reply

    def create_topic(self, name, partitions):
        self.command(f"topic {name} {partitions}")
        self.topics[name] = partitions

    def push_errors(self, api_key, errors):
        """The next len(errors) requests of api_key fail with these codes
        (ints or librdkafka names like "NOT_COORDINATOR", "_TRANSPORT")."""
        errors = list(errors)
        self.command(f"errors {api_key} {len(errors)} " + " ".join(str(e) for e in errors))

    def clear_errors(self, api_key):
        self.command(f"clear_errors {api_key}")

    def broker_down(self, broker_id=-1):
        self.command(f"broker_down {broker_id}")

    def broker_up(self, broker_id=-1):
        self.command(f"broker_up {broker_id}")

    def set_rtt(self, broker_id, milliseconds):
        self.command(f"rtt {broker_id} {milliseconds}")

    def stop(self, timeout=10):
        if self.process is None:
            return None
        if self.running:
            try:
                self.process.stdin.close()  # EOF: the helper exits on its own
            except OSError:
                pass
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        code, _ = terminate_process(self.process, timeout)
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except (OSError, ValueError):
                pass
        return code

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


# --------------------------------------------------------------------------
# The daemon

SANITIZER_PATTERNS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def format_config_value(value):
    """Python value -> text after `key = ` in duewatch.conf."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def write_config(path, settings):
    """Writes `key = value` lines; a None value leaves the key out (the daemon
    default applies).  Mode 0600: the file may hold redis_password."""
    lines = ["# written by duewatch_testlib"]
    for key, value in settings.items():
        if value is None:
            continue
        lines.append(f"{key} = {format_config_value(value)}".rstrip())
    path = Path(path)
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def default_daemon_config(bootstrap=None, redis=None, group_id=None):
    """Settings for a test daemon wired to a MockCluster bootstrap string and a
    RedisServer; HTTP off.  Override or drop (value None) keys per test."""
    config = {
        "kafka.bootstrap.servers": bootstrap,
        "kafka.group.id": group_id or f"duewatch-test-{uuid.uuid4().hex[:12]}",
        "input_topics": "duewatch.events",
        "dead_letter_topic": "duewatch.deadletter",
        "alert_topic": ALERT_TOPIC,
        "redis_host": redis.host if redis is not None else "127.0.0.1",
        "redis_port": redis.port if redis is not None else None,
        "key_prefix": "dw:",
        "log_level": "info",
        "http_listen": "",
        # librdkafka's mock cluster keeps a departed member (even one that left
        # cleanly) until its session times out: keep restarts quick.
        "kafka.session.timeout.ms": 6000,
        "kafka.heartbeat.interval.ms": 500,
        "rules_file": str(REPO_ROOT / "conf" / "rules.conf"),
        "holidays_file": str(REPO_ROOT / "conf" / "holidays-cn.conf"),
    }
    if redis is not None and redis.password is not None:
        config["redis_password"] = redis.password
    return config


class Daemon:
    """build/duewatchd -c <dir>/duewatch.conf, stderr into <dir>/duewatchd.log.

    The log file spans restarts (each start writes a marker line first);
    log() and wait_for_log() look at the current run unless told otherwise.
    The daemon also gets NOTIFY_SOCKET pointing at a socket owned here, so a
    test can wait for sd_notify READY=1 / WATCHDOG=1 / STATUS= messages."""

    def __init__(self, directory, config, binary=None, extra_args=(), env=None):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config = dict(config)
        self.binary = Path(binary) if binary else daemon_binary()
        self.extra_args = list(extra_args)
        self.extra_env = dict(env or {})
        self.config_path = self.directory / "duewatch.conf"
        self.log_path = self.directory / "duewatchd.log"
        self.process = None
        self.run_count = 0
        self._run_log_offset = 0
        self._checked_log_offset = 0
        self._notify_dir = None
        self._notify_socket = None
        self._notifications = []

    # -- configuration --

    def write_config(self, **changes):
        """Applies changes (keys with dots via update_config) and rewrites the file."""
        self.config.update(changes)
        return write_config(self.config_path, self.config)

    def update_config(self, changes):
        self.config.update(changes)
        return write_config(self.config_path, self.config)

    # -- lifecycle --

    def command_line(self):
        wrapper = shlex.split(os.environ.get("DUEWATCH_WRAPPER", ""))
        return wrapper + [str(self.binary), "-c", str(self.config_path)] + self.extra_args

    def _environment(self):
        env = dict(os.environ)  # keeps ASAN_OPTIONS / LSAN_OPTIONS / UBSAN_OPTIONS
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        env["NOTIFY_SOCKET"] = str(self._notify_path())
        env.update(self.extra_env)
        return env

    def _notify_path(self):
        if self._notify_socket is None:
            # A short path of its own: AF_UNIX paths are limited to 107 bytes
            # and pytest's tmp_path can be longer.
            self._notify_dir = tempfile.mkdtemp(prefix="dw-notify-")
            path = os.path.join(self._notify_dir, "notify.sock")
            self._notify_socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._notify_socket.bind(path)
            self._notify_socket.setblocking(False)
        return self._notify_socket.getsockname()

    def start(self, wait_for=None, timeout=15):
        """Writes the config, starts the daemon; with wait_for (a regex) waits
        until it appears in this run's log."""
        if self.running:
            raise RuntimeError("daemon already running")
        if not self.binary.exists():
            raise FileNotFoundError(f"{self.binary} not built (run make, or set DUEWATCH_BUILD)")
        write_config(self.config_path, self.config)
        self.run_count += 1
        with open(self.log_path, "ab") as log:
            log.write(f"=== duewatch_testlib: start #{self.run_count}: "
                      f"{shlex.join(self.command_line())} ===\n".encode())
            log.flush()
            self._run_log_offset = log.tell()
            self.process = spawn(self.command_line(), stdin=subprocess.DEVNULL,
                                 stdout=log, stderr=subprocess.STDOUT, cwd=self.directory,
                                 env=self._environment())
        if wait_for is not None:
            self.wait_for_log(wait_for, timeout)
        return self

    def stop(self, timeout=30, check_sanitizers=True):
        """SIGTERM, wait up to timeout (scaled), SIGKILL if still alive.
        Returns the exit code (negative = killed by that signal); raises
        AssertionError when it had to be killed or a sanitizer reported."""
        if self.process is None:
            return None
        code, exited = terminate_process(self.process, timeout * timeout_scale())
        if check_sanitizers:
            self.check_sanitizer_log()
        if not exited:
            raise AssertionError(f"duewatchd did not exit within {timeout * timeout_scale():.0f}s "
                                 f"of SIGTERM; log tail:\n{self.log()[-3000:]}")
        return code

    def kill(self):
        """SIGKILL: a crash.  Returns the exit code (-9)."""
        if self.process is None:
            return None
        kill_process(self.process)
        return self.process.returncode

    def restart(self, wait_for=None, timeout=15, stop_timeout=30):
        """Graceful stop, then start with the current config (rewritten).
        Returns the stop's exit code for the test to check."""
        if self.running:
            code = self.stop(stop_timeout)
        else:
            code = self.process.returncode if self.process is not None else None
        self.start(wait_for=wait_for, timeout=timeout)
        return code

    def signal(self, signal_number):
        self.process.send_signal(signal_number)

    def reload(self):
        """SIGHUP: re-read the config file (write_config() first)."""
        self.signal(signal.SIGHUP)

    def wait_exit(self, timeout=30):
        """Waits for the daemon to exit by itself; returns its exit code."""
        try:
            return self.process.wait(timeout=timeout * timeout_scale())
        except subprocess.TimeoutExpired as error:
            raise WaitTimeout(f"duewatchd still running after {timeout}s") from error

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self):
        return self.process.pid if self.process is not None else None

    def close(self):
        """Teardown: stop if still running, check sanitizers, drop the notify socket."""
        try:
            if self.running:
                self.stop(timeout=15)
            elif self.process is not None:
                self.check_sanitizer_log()
        finally:
            if self.process is not None:
                kill_process(self.process)
            if self._notify_socket is not None:
                self._notify_socket.close()
                shutil.rmtree(self._notify_dir, ignore_errors=True)
                self._notify_socket = None

    # -- log --

    def log(self, since="run"):
        """The log text: since="run" (this run), "all" (every run), or a byte offset."""
        if not self.log_path.exists():
            return ""
        offset = {"run": self._run_log_offset, "all": 0}.get(since, since)
        with open(self.log_path, "rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def log_offset(self):
        """Current end of the log, to pass as since= for 'after this point'."""
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def wait_for_log(self, pattern, timeout=15, since="run"):
        """Waits until regex `pattern` matches the log (multiline); returns the
        match.  Fails early when the daemon exits without printing it."""
        regex = re.compile(pattern, re.MULTILINE)
        scaled = timeout * timeout_scale()

        def found():
            match = regex.search(self.log(since))
            if match:
                return match
            if self.process is not None and self.process.poll() is not None:
                match = regex.search(self.log(since))  # printed just before exiting
                if match:
                    return match
                raise WaitTimeout(f"duewatchd exited ({self.process.returncode}) before "
                                  f"logging /{pattern}/; log tail:\n{self.log()[-3000:]}")
            return None
        try:
            return wait_until(found, scaled, interval=0.05, message=f"log /{pattern}/")
        except WaitTimeout as error:
            raise WaitTimeout(f"{error}; log tail:\n{self.log()[-3000:]}") from None

    def check_sanitizer_log(self):
        """Raises AssertionError when the log (since the last check) holds an
        AddressSanitizer, LeakSanitizer or UndefinedBehaviorSanitizer report."""
        text = self.log(self._checked_log_offset)
        self._checked_log_offset = self.log_offset()
        for pattern in SANITIZER_PATTERNS:
            index = text.find(pattern)
            if index >= 0:
                raise AssertionError(f"sanitizer report in {self.log_path}:\n"
                                     f"{text[max(0, index - 500):index + 4000]}")

    # -- sd_notify --

    def notifications(self):
        """All sd_notify datagrams received so far, oldest first."""
        if self._notify_socket is not None:
            while True:
                try:
                    self._notifications.append(self._notify_socket.recv(65536).decode(
                        errors="replace"))
                except BlockingIOError:
                    break
        return list(self._notifications)

    def wait_notify(self, pattern, timeout=15, after=0):
        """Waits for an sd_notify message matching regex pattern (e.g.
        r"READY=1"), looking at messages from index `after` on."""
        regex = re.compile(pattern, re.MULTILINE)

        def found():
            for message in self.notifications()[after:]:
                if regex.search(message):
                    return message
            return None
        return wait_until(found, timeout * timeout_scale(), message=f"sd_notify /{pattern}/")


# --------------------------------------------------------------------------
# Kafka helpers (confluent_kafka 1.7)


def produce(bootstrap, topic, messages, partition=None, headers=None, timeout=30):
    """Produces (key bytes|None, value bytes|None) pairs in order, flushes and
    checks every delivery.  Returns [(partition, offset)] per message."""
    from confluent_kafka import Producer
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5,
                         "message.max.bytes": 10_000_000, "enable.idempotence": True})
    results = [None] * len(messages)
    errors = []

    def make_report(index):
        def report(error, message):
            if error is not None:
                errors.append((index, error))
            else:
                results[index] = (message.partition(), message.offset())
        return report

    for index, (key, value) in enumerate(messages):
        kwargs = {"key": key, "value": value, "on_delivery": make_report(index)}
        if partition is not None:
            kwargs["partition"] = partition
        if headers is not None:
            kwargs["headers"] = headers
        while True:
            try:
                producer.produce(topic, **kwargs)
                break
            except BufferError:  # local queue full: let deliveries drain
                producer.poll(0.1)
        producer.poll(0)
    remaining = producer.flush(timeout)
    if remaining:
        raise WaitTimeout(f"{remaining} messages to {topic} not delivered within {timeout}s")
    if errors:
        raise AssertionError(f"delivery to {topic} failed: {errors[:5]}")
    return results


class Record:
    """One consumed message."""
    __slots__ = ("topic", "partition", "offset", "key", "value", "headers", "timestamp")

    def __init__(self, message):
        self.topic = message.topic()
        self.partition = message.partition()
        self.offset = message.offset()
        self.key = message.key()
        self.value = message.value()
        self.headers = dict((k, v) for k, v in (message.headers() or []))
        self.timestamp = message.timestamp()[1]

    def __repr__(self):
        return (f"Record({self.topic}[{self.partition}]@{self.offset} key={self.key!r} "
                f"value={self.value[:60] if self.value else self.value!r} headers={self.headers})")


_consumer_ids = itertools.count()


def _plain_consumer(bootstrap, group_id=None):
    from confluent_kafka import Consumer
    return Consumer({
        "bootstrap.servers": bootstrap,
        # confluent_kafka wants a group.id even for assign(); with assign() and
        # no commits the group is never joined nor written to.
        "group.id": group_id or f"duewatch-testlib-reader-{os.getpid()}-{next(_consumer_ids)}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": False,
        "auto.offset.reset": "earliest",
    })


def partitions_of(bootstrap, topic, timeout=10):
    """Partition numbers of a topic, sorted."""
    consumer = _plain_consumer(bootstrap)
    try:
        metadata = consumer.list_topics(topic, timeout=timeout)
        topic_metadata = metadata.topics.get(topic)
        if topic_metadata is None or topic_metadata.error is not None:
            raise AssertionError(f"topic {topic}: {topic_metadata.error if topic_metadata else 'absent'}")
        return sorted(topic_metadata.partitions)
    finally:
        consumer.close()


def consume_all(bootstrap, topic, count=None, timeout=30, settle=0.0):
    """Reads a topic from the beginning of every partition (explicit
    assignment, no group).  With count, until that many messages arrived (or
    timeout: WaitTimeout), then `settle` more seconds to catch extras; without
    count, everything up to the high watermarks at call time.  Returns Records
    sorted by (partition, offset).  Every message of ALERT_TOPIC is validated
    against schemas/alert.schema.json (AssertionError when one breaks it)."""
    from confluent_kafka import OFFSET_BEGINNING, TopicPartition
    consumer = _plain_consumer(bootstrap)
    records = []
    try:
        partitions = partitions_of(bootstrap, topic)
        targets = None
        if count is None:
            targets = {p: high for p, high in high_watermarks(bootstrap, topic).items() if high > 0}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        deadline = time.monotonic() + timeout
        positions = {}

        def done():
            if count is not None:
                return len(records) >= count
            return all(positions.get(p, 0) >= high for p, high in targets.items())
        while not done():
            if time.monotonic() >= deadline:
                raise WaitTimeout(f"read {len(records)} of {count if count is not None else targets}"
                                  f" messages from {topic} within {timeout}s")
            for message in consumer.consume(num_messages=1000, timeout=0.2):
                if message.error() is not None:
                    raise AssertionError(f"consume {topic}: {message.error()}")
                records.append(Record(message))
                positions[message.partition()] = message.offset() + 1
        settle_end = time.monotonic() + settle
        while time.monotonic() < settle_end:
            for message in consumer.consume(num_messages=1000, timeout=0.1):
                if message.error() is None:
                    records.append(Record(message))
    finally:
        consumer.close()
    records.sort(key=lambda r: (r.partition, r.offset))
    if topic == ALERT_TOPIC:
        for record in records:
            validate_alert(record.value)
    return records


def high_watermarks(bootstrap, topic, timeout=10):
    """{partition: high watermark (next offset to be written)}."""
    from confluent_kafka import TopicPartition
    consumer = _plain_consumer(bootstrap)
    try:
        result = {}
        for partition in partitions_of(bootstrap, topic):
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                     timeout=timeout, cached=False)
            result[partition] = high
        return result
    finally:
        consumer.close()


def committed_offsets(bootstrap, group_id, topic, timeout=10):
    """{partition: committed offset of group_id, or None when nothing committed}."""
    from confluent_kafka import TopicPartition
    consumer = _plain_consumer(bootstrap, group_id=group_id)
    try:
        partitions = [TopicPartition(topic, p) for p in partitions_of(bootstrap, topic)]
        committed = consumer.committed(partitions, timeout=timeout)
        return {tp.partition: (tp.offset if tp.offset >= 0 else None) for tp in committed}
    finally:
        consumer.close()


def consumer_lag(bootstrap, group_id, topic, timeout=10):
    """{partition: high watermark - committed offset (uncommitted = whole partition)}."""
    highs = high_watermarks(bootstrap, topic, timeout)
    committed = committed_offsets(bootstrap, group_id, topic, timeout)
    return {p: high - (committed.get(p) or 0) for p, high in highs.items()}


# --------------------------------------------------------------------------
# Fault-test helpers (tests/e2e/test_faults.py)


def process_rss_bytes(pid):
    """Resident set size of a live process in bytes (VmRSS), None when gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


class RssSampler:
    """Samples a process's RSS every `interval` s in a thread; .peak, .samples."""

    def __init__(self, pid, interval=0.05):
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"rss-{pid}")

    def _run(self):
        while not self._stop.is_set():
            rss = process_rss_bytes(self.pid)
            if rss is not None:
                self.peak = max(self.peak, rss)
                self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)
        return False


def scrape_metrics(port, timeout=5):
    """{metric name with labels as printed: value} from a daemon's /metrics
    (http_listen = 127.0.0.1:port); {} when it does not answer."""
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as reply:
            text = reply.read().decode()
    except (urllib.error.URLError, OSError):
        return {}
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                values[name] = float(value)
            except ValueError:
                pass
    return values


@contextlib.contextmanager
def module_world(directory, topics, **config_updates):
    """For a module-scoped fixture (the function-scoped fixtures cannot
    serve it): a redis-server and a mock Kafka cluster started under
    `directory`, and a duewatchd configured for them (default config updated
    with config_updates), not started.  Yields (redis, cluster, daemon); stops
    all three after."""
    redis = RedisServer(directory / "redis")
    cluster = MockCluster(directory / "kafka", topics=topics)
    daemon = None
    try:
        redis.start()
        cluster.start()
        config = default_daemon_config(bootstrap=cluster.bootstrap, redis=redis)
        config.update(config_updates)
        daemon = Daemon(directory / "daemon", config)
        yield redis, cluster, daemon
    finally:
        if daemon is not None:
            daemon.close()
        cluster.stop(timeout=5)
        redis.stop(timeout=5)
        redis.kill()
