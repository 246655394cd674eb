"""Redis TLS (issue 16): duewatchd talks to Debian's redis-server over TLS
only (`--port 0 --tls-port P`, `tls-auth-clients yes`, so the daemon's client
certificate is checked too), with a CA and certificates that openssl makes in
the test's directory.

TLS needs duewatchd built against hiredis >= 1.0 with hiredis_ssl, which CI's
hiredis 1.x pass (scripts/check-hiredis1.sh) builds and where these tests run;
against Debian's hiredis 0.14 they skip (`duewatchd --version` says
"redis TLS: no"), and such a build must refuse the settings instead, saying
why (test_redis_tls_refused_by_a_build_without_tls, and
tests/unit/test_config.c).
"""

import re
import subprocess
import time

import pytest

import duewatch_testlib as lib
from ingest_checks import (DEAD_LETTER_TOPIC, assert_counters_exact, build_stream,
                           produce_in_chunks, unique_valid_count, wait_applied)
from test_redis_state import get, metric
from test_tool import run_tool  # the tool finds the daemon under test through DUEWATCH_BUILD

READY = r"kafka: consuming duewatch\.events"
SERVER_NAME = "redis.test"  # the server certificate's only name (not 127.0.0.1)


def daemon_tls_build():
    """(True, "") when the daemon under test speaks TLS, else (False, why)."""
    binary = lib.daemon_binary()
    try:
        version = subprocess.run([str(binary), "--version"], capture_output=True, text=True,
                                 timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError) as error:
        return False, f"cannot run {binary} --version: {error}"
    if "redis TLS: yes" in version:
        return True, ""
    line = next((l for l in version.splitlines() if l.startswith("redis TLS:")), "no TLS line")
    return False, (f"{binary} was built without Redis TLS ({line.strip()}); "
                   "scripts/check-hiredis1.sh builds it against hiredis 1.x with SSL")


@pytest.fixture
def needs_tls_build():
    supported, why = daemon_tls_build()
    if not supported:
        pytest.skip(why)


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(directory, name):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.pem",
            cwd=directory)
    return directory / f"{name}.pem"


def make_signed(directory, ca, name, extensions):
    """A key and a certificate for `name` signed by `ca` (its .pem and .key)."""
    (directory / f"{name}.ext").write_text(extensions + "\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=directory)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", ca.name, "-CAkey",
            ca.with_suffix(".key").name, "-CAcreateserial", "-days", "2",
            "-extfile", f"{name}.ext", "-out", f"{name}.pem", cwd=directory)
    return directory / f"{name}.pem", directory / f"{name}.key"


@pytest.fixture
def certs(needs_tls_build, tmp_path):
    directory = tmp_path / "tls"
    directory.mkdir()
    ca = make_ca(directory, "ca")
    server = make_signed(directory, ca, "server",
                         f"subjectAltName=DNS:{SERVER_NAME}\nextendedKeyUsage=serverAuth")
    client = make_signed(directory, ca, "client", "extendedKeyUsage=clientAuth")
    other_ca = make_ca(directory, "other-ca")  # signed nothing here
    return {"ca": ca, "server": server, "client": client, "other_ca": other_ca}


class TlsRedisServer(lib.RedisServer):
    """A RedisServer that listens with TLS only: no plain port, `tls-port` on a
    free loopback port, clients must show a certificate of the CA."""

    def __init__(self, directory, certs):
        super().__init__(directory)
        self.certs = certs

    def command_line(self):
        argv = super().command_line()
        at = argv.index("--port")
        argv[at:at + 2] = ["--port", "0", "--tls-port", str(self.port)]
        return argv + ["--tls-cert-file", str(self.certs["server"][0]),
                       "--tls-key-file", str(self.certs["server"][1]),
                       "--tls-ca-cert-file", str(self.certs["ca"]),
                       "--tls-auth-clients", "yes"]

    def client(self, decode_responses=True, username=None, password=None, timeout=5):
        import redis
        return redis.Redis(host=self.host, port=self.port, decode_responses=decode_responses,
                           socket_timeout=timeout, socket_connect_timeout=timeout, ssl=True,
                           ssl_ca_certs=str(self.certs["ca"]),
                           ssl_certfile=str(self.certs["client"][0]),
                           ssl_keyfile=str(self.certs["client"][1]),
                           ssl_check_hostname=False)


@pytest.fixture
def tls_redis(needs_tls_build, tmp_path, certs):
    server = TlsRedisServer(tmp_path / "redis-tls", certs)
    server.start()
    yield server
    server.stop(timeout=5)
    server.kill()


def tls_settings(certs, ca=None):
    return {"redis_tls": True, "redis_tls_ca_file": str(ca or certs["ca"]),
            "redis_tls_cert_file": str(certs["client"][0]),
            "redis_tls_key_file": str(certs["client"][1]),
            "redis_tls_server_name": SERVER_NAME}


def test_redis_tls_ready_and_counters_exact(needs_tls_build, daemon_factory, mock_cluster, tls_redis, certs, rng):
    http_port = lib.free_port()
    daemon = daemon_factory({**tls_settings(certs), "http_listen": f"127.0.0.1:{http_port}"},
                            redis=tls_redis, wait_for=READY, timeout=30)
    assert "redis: connected to 127.0.0.1 and ready" in daemon.log()
    assert get(http_port, "/readyz")[0] == 200
    messages, valid, malformed = build_stream(rng, 5_000)
    produce_in_chunks(mock_cluster.bootstrap, messages, chunks=2)
    client = tls_redis.client()
    wait_applied(mock_cluster.bootstrap, client, timeout=120)
    buckets, counted = assert_counters_exact(client, valid)
    assert counted == unique_valid_count(valid)
    dead = lib.consume_all(mock_cluster.bootstrap, DEAD_LETTER_TOPIC, count=len(malformed),
                           timeout=60, settle=1.0)
    assert len(dead) == len(malformed)
    # The operator tool reads the same counters over TLS, with the daemon's
    # settings: the day column of `counters _all DAY` is the day bucket.
    day_key = sorted(client.scan_iter(match="dw:d:*:_all"))[-1]
    tool = run_tool("-c", daemon.config_path, "counters", "_all", day_key.split(":")[2])
    assert tool.returncode == 0, tool.stderr
    shown = {m.group(1): int(m.group(2)) for m in
             re.finditer(r"^\s*(\S+)\s+(-?\d+)\s+-?\d+\s+-?\d+\s*$", tool.stdout, re.M)}
    stored = {field: int(value) for field, value in client.hgetall(day_key).items()}
    assert {f: n for f, n in shown.items() if n} == {f: n for f, n in stored.items() if n}
    assert stored
    # Every connection the server accepted was TLS: it has no plain port.
    assert tls_redis.client().config_get("port") == {"port": "0"}
    lib.print_ledger("redis_tls", "ready_and_counters_exact", sent=len(messages),
                     valid_unique=unique_valid_count(valid), counted=counted, buckets=buckets,
                     dead_lettered=len(dead),
                     redis_connects=metric(http_port, "duewatch_redis_connects_total"))


@pytest.mark.parametrize("case", ["wrong_ca", "wrong_name"])
def test_redis_tls_unverified_server_is_not_ready(needs_tls_build, daemon_factory, mock_cluster, tls_redis, certs,
                                                  case):
    """A server certificate of another CA, or one that does not name what the
    daemon expects (no redis_tls_server_name: 127.0.0.1, which the certificate
    does not carry), is refused: a clear log line, never ready."""
    http_port = lib.free_port()
    settings = tls_settings(certs, ca=certs["other_ca"] if case == "wrong_ca" else None)
    if case == "wrong_name":
        settings["redis_tls_server_name"] = None
    daemon = daemon_factory({**settings, "http_listen": f"127.0.0.1:{http_port}",
                             "redis_reconnect_min_ms": 100, "redis_reconnect_max_ms": 300},
                            redis=tls_redis, timeout=30)
    line = daemon.wait_for_log(r"^.*redis: connection failed before it was ready: "
                               r"TLS: certificate verify failed.*$", timeout=30)
    # It keeps retrying and is never ready, nor does it consume.
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        assert get(http_port, "/readyz")[0] == 503
        time.sleep(0.2)
    assert "redis: connected" not in daemon.log()
    assert "kafka: consuming" not in daemon.log()
    # The operator tool refuses the server as the daemon does, in one line.
    tool = run_tool("-c", daemon.config_path, "overdue")
    assert tool.returncode == 1 and tool.stdout == "", tool
    assert len(tool.stderr.splitlines()) == 1, tool.stderr
    assert "cannot reach Redis at 127.0.0.1:" in tool.stderr
    assert "certificate verify failed" in tool.stderr.lower(), tool.stderr
    lib.print_ledger("redis_tls", case, log_line=repr(line.group(0).strip()),
                     tool=repr(tool.stderr.strip()))


def test_redis_tls_refused_by_a_build_without_tls(tmp_path):
    """Debian's hiredis 0.14 build: --check-config refuses redis_tls and says
    why (the unit test checks config_load's message; this, the command's)."""
    supported, _ = daemon_tls_build()
    if supported:
        pytest.skip("this duewatchd speaks TLS (the tests above cover it)")
    config = lib.write_config(tmp_path / "duewatch.conf",
                              {**lib.default_daemon_config(bootstrap="127.0.0.1:9"),
                               "redis_tls": True})
    result = subprocess.run([str(lib.daemon_binary()), "--check-config", "-c", str(config)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"duewatchd: {config}:"), result.stderr
    assert ": key 'redis_tls': duewatchd was built against hiredis 0." in lines[0]
    assert "without TLS support; rebuild it against hiredis >= 1.0 with SSL" in lines[0]
