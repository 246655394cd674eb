"""pytest fixtures for duewatch's end-to-end tests (see duewatch_testlib.py for
the classes behind them).

  redis_server            a started private RedisServer (appendonly no)
  redis_factory(...)      more of them: redis_factory(appendonly=True, password=...)
  mock_cluster            a started MockCluster with DEFAULT_TOPICS, 1 broker
  mock_cluster_factory    mock_cluster_factory(topics={"t": 3}, brokers=3)
  daemon_factory(...)     a Daemon wired to redis_server + mock_cluster:
                            daemon = daemon_factory({"batch_max_events": 10},
                                                    wait_for=r"ready")
  rng                     random.Random seeded per test (env DUEWATCH_SEED overrides)
  real_bootstrap          env DUEWATCH_REAL_BOOTSTRAP; tests marked realbroker
                          are skipped without it
  real_kafka_broker       (session, autouse) with env DUEWATCH_KAFKA=real a real
                          Kafka broker, and mock_cluster* build kafka_real.RealKafka
  kafka_kind              "real" or "mock"

Teardown stops every process a test started, also when the test failed; a
daemon whose log holds a sanitizer report fails the test at teardown.  When a
test fails, the tails of its daemons' and helpers' logs are attached to the
report.
"""

import atexit
import os
import random
import signal
import zlib

import pytest

import duewatch_testlib as lib
import kafka_real

atexit.register(lib.kill_all_processes)

LOG_TAIL_CHARS = 6000


def pytest_configure(config):
    # `timeout` (run-tests.sh) sends SIGTERM; turning it into KeyboardInterrupt
    # lets pytest run fixture teardown, so no redis-server outlives the run.
    def interrupt(signal_number, frame):
        raise KeyboardInterrupt(f"signal {signal_number}")
    signal.signal(signal.SIGTERM, interrupt)


def pytest_unconfigure(config):
    lib.kill_all_processes()


def pytest_collection_modifyitems(config, items):
    if os.environ.get("DUEWATCH_REAL_BOOTSTRAP"):
        return
    skip = pytest.mark.skip(reason="needs a real Kafka broker: set DUEWATCH_REAL_BOOTSTRAP")
    for item in items:
        if "realbroker" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for title, owner in getattr(item, "_duewatch_log_owners", []):
            text = owner.log()
            if text:
                report.sections.append((f"{title} log (tail)", text[-LOG_TAIL_CHARS:]))


def _remember_logs(request, title, owner):
    owners = getattr(request.node, "_duewatch_log_owners", None)
    if owners is None:
        owners = request.node._duewatch_log_owners = []
    owners.append((title, owner))


@pytest.fixture
def rng(request):
    seed = os.environ.get("DUEWATCH_SEED")
    seed = int(seed) if seed else zlib.crc32(request.node.nodeid.encode())
    request.node.user_properties.append(("seed", seed))
    return random.Random(seed)


@pytest.fixture
def redis_factory(request, tmp_path):
    servers = []

    def make(appendonly=False, password=None, extra_args=(), port=None, start=True, module=None):
        server = lib.RedisServer(tmp_path / f"redis-{len(servers)}", port=port,
                                 appendonly=appendonly, password=password,
                                 extra_args=extra_args, module=module)
        servers.append(server)
        _remember_logs(request, f"redis-{len(servers) - 1}", server)
        return server.start() if start else server

    yield make
    for server in servers:
        server.wait_outage_over(timeout=60)
        if server.process is not None and server.running:
            try:
                server.thaw()  # a frozen redis would ignore SIGTERM until killed
            except ProcessLookupError:
                pass
        server.stop(timeout=5)
        server.kill()


@pytest.fixture
def redis_server(redis_factory):
    return redis_factory()


@pytest.fixture
def mock_cluster_factory(request, tmp_path):
    clusters = []

    def make(topics=None, brokers=1):
        cluster = lib.MockCluster(tmp_path / f"kafka-{len(clusters)}", topics=topics,
                                  brokers=brokers)
        clusters.append(cluster)
        _remember_logs(request, f"mock_cluster-{len(clusters) - 1}", cluster)
        return cluster.start()

    yield make
    for cluster in clusters:
        cluster.stop(timeout=5)


@pytest.fixture
def mock_cluster(mock_cluster_factory):
    return mock_cluster_factory()


@pytest.fixture
def real_bootstrap():
    bootstrap = os.environ.get("DUEWATCH_REAL_BOOTSTRAP")
    if not bootstrap:
        pytest.skip("needs a real Kafka broker: set DUEWATCH_REAL_BOOTSTRAP")
    return bootstrap


@pytest.fixture
def daemon_factory(request, tmp_path, redis_factory, mock_cluster_factory):
    """daemon_factory(overrides=None, start=True, wait_for=None, timeout=15,
    redis=None, cluster=None, bootstrap=None, binary=None, extra_args=(), env=None)

    Without redis/cluster/bootstrap it uses the test's redis_server and
    mock_cluster fixtures.  overrides update default_daemon_config(); a value
    None removes a key."""
    # Taking the factories as arguments makes their teardown run after this
    # one's: daemons stop while Redis and Kafka are still up.
    daemons = []

    def make(overrides=None, start=True, wait_for=None, timeout=15, redis=None, cluster=None,
             bootstrap=None, binary=None, extra_args=(), env=None):
        if redis is None:
            redis = request.getfixturevalue("redis_server")
        if bootstrap is None:
            if cluster is None:
                cluster = request.getfixturevalue("mock_cluster")
            bootstrap = cluster.bootstrap
        config = lib.default_daemon_config(bootstrap=bootstrap, redis=redis)
        config.update(overrides or {})
        daemon = lib.Daemon(tmp_path / f"daemon-{len(daemons)}", config, binary=binary,
                            extra_args=extra_args, env=env)
        daemons.append(daemon)
        _remember_logs(request, f"duewatchd-{len(daemons) - 1}", daemon)
        if start:
            daemon.start(wait_for=wait_for, timeout=timeout)
        return daemon

    yield make
    problems = []
    for daemon in daemons:
        try:
            daemon.close()
        except AssertionError as problem:
            problems.append(str(problem))
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


# --------------------------------------------------------------------------
# The real Kafka broker (env DUEWATCH_KAFKA=real; see kafka_real.py)


@pytest.fixture(scope="session", autouse=True)
def real_kafka_broker(tmp_path_factory):
    """With DUEWATCH_KAFKA=real: one real single-node Kafka broker for the
    whole session (scripts/kafka-broker.sh), and lib.MockCluster replaced by
    kafka_real.RealKafka so mock_cluster / mock_cluster_factory (and every
    test using them) run against it; each cluster object creates its topics
    at start and deletes them at teardown.  Otherwise None."""
    if not kafka_real.enabled():
        yield None
        return
    directory = os.environ.get("DUEWATCH_KAFKA_DIR") or tmp_path_factory.mktemp("kafka-broker")
    broker = kafka_real.session_broker(directory)
    original = lib.MockCluster
    lib.MockCluster = kafka_real.cluster_class(broker)
    try:
        yield broker
    finally:
        lib.MockCluster = original
        try:
            broker.wait_outage_over()
        finally:
            broker.stop()


@pytest.fixture
def kafka_kind():
    """"real" (DUEWATCH_KAFKA=real) or "mock"."""
    return "real" if kafka_real.enabled() else "mock"
